"""Decoding any audio file to 16 kHz mono float32, its hashes, and its recording condition."""

SAMPLE_RATE = 16000  # every stage works on 16 kHz mono float32
