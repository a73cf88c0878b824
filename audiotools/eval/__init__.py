"""Evaluation metrics: DER, EER, Cllr."""
