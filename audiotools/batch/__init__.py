"""Batch processing: plan, resume, the engine loop, decode workers and Ray."""
