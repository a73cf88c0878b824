"""Profanity masking of transcripts (English, Russian, Ukrainian, Belarusian)."""
