"""Decoding any audio file to 16 kHz mono float32, its hashes, and its recording condition."""
