"""Profanity masking of transcripts (English, Russian, Ukrainian, Belarusian)."""

from audiotools.mask.masking import Masker, MaskOptions

__all__ = ["Masker", "MaskOptions"]
