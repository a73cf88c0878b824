"""Profanity masking for published transcripts (skeleton; rules in audiotools.profanity)."""

from __future__ import annotations

from dataclasses import dataclass

STEP_PARAMS = {"enabled": True, "style": "stars", "language": None, "mask_words": None,
               "allow_words": None, "unmasked_copy": None}


@dataclass
class MaskOptions:
    style: str = "stars"
    language: str | None = None
    extra_words: tuple[str, ...] = ()
    allow_words: tuple[str, ...] = ()
