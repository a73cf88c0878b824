"""Segment and word timestamps.

Segments come from Whisper's timestamp tokens; words from cross-attention alignment (DTW over
the model's alignment heads), using openai-whisper's ``add_word_timestamps`` on the encoder
features already computed for decoding, so word timing costs one decoder pass, not an encoder pass.
"""

from __future__ import annotations

import torch
from whisper.timing import add_word_timestamps

HOP_LENGTH = 160
SAMPLE_RATE = 16000
TIME_PRECISION = 0.02  # seconds per timestamp token


def split_segments(tokens: list[int], tokenizer, offset: float, window_duration: float) -> list[dict]:
    """Cut one window's tokens into segments at consecutive timestamp tokens.

    Returns dicts with absolute ``start``/``end`` (seconds) and the segment's ``tokens``.
    """
    tb = tokenizer.timestamp_begin
    tokens = [t for t in tokens if t != tokenizer.eot]
    if not tokens:
        return []
    is_ts = [t >= tb for t in tokens]
    segments = []

    def add(start_pos: float, end_pos: float, toks: list[int]):
        text_tokens = [t for t in toks if t < tokenizer.eot]
        if not text_tokens:
            return
        start = offset + min(start_pos, window_duration)
        end = offset + min(max(end_pos, start_pos), window_duration)
        segments.append({"start": start, "end": max(end, start), "tokens": text_tokens})

    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    single_ending = len(tokens) >= 2 and not is_ts[-2] and is_ts[-1]
    if cuts:
        if single_ending:
            cuts.append(len(tokens))
        last = 0
        for cut in cuts:
            piece = tokens[last:cut]
            s = (piece[0] - tb) * TIME_PRECISION if piece[0] >= tb else 0.0
            e = (piece[-1] - tb) * TIME_PRECISION if piece[-1] >= tb else window_duration
            add(s, e, piece)
            last = cut
        rest = tokens[last:]
        if rest and any(t < tokenizer.eot for t in rest):  # unterminated tail: runs to the window's end
            s = (rest[0] - tb) * TIME_PRECISION if rest[0] >= tb else (segments[-1]["end"] - offset if segments else 0)
            add(s, window_duration, rest)
    else:
        stamps = [t for t in tokens if t >= tb]
        end = window_duration
        if stamps and stamps[-1] != tb:
            end = (stamps[-1] - tb) * TIME_PRECISION
        start = (stamps[0] - tb) * TIME_PRECISION if stamps and tokens[0] >= tb else 0.0
        add(start, end if end > start else window_duration, tokens)
    return segments


class _FeatureModel:
    """Looks like a ``Whisper`` module to ``find_alignment`` but takes encoder features instead of mel."""

    def __init__(self, model):
        self._model = model
        self.decoder = model.decoder
        self.dims = model.dims
        self.alignment_heads = model.alignment_heads
        self.device = model.device

    def __call__(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self._model.decoder(tokens, features)


def add_words(model, tokenizer, segments: list[dict], features: torch.Tensor, offset: float,
              window_duration: float, last_speech: float) -> float:
    """Fill ``segment["words"]`` for one window's segments; returns the new last-speech time."""
    if not segments:
        return last_speech
    for s in segments:
        s["seek"] = offset * SAMPLE_RATE / HOP_LENGTH
    num_frames = max(1, min(3000, int(round(window_duration * SAMPLE_RATE / HOP_LENGTH))))
    add_word_timestamps(segments=segments, model=_FeatureModel(model), tokenizer=tokenizer,
                        mel=features,
                        num_frames=num_frames, last_speech_timestamp=last_speech)
    end = offset + window_duration
    for s in segments:
        for w in s.get("words", []):
            w["start"] = min(max(w["start"], offset), end)
            w["end"] = min(max(w["end"], w["start"]), end)
        if s.get("words"):
            s["start"] = min(s["start"], s["words"][0]["start"])
            s["end"] = max(s["end"], s["words"][-1]["end"])
            last_speech = s["end"]
    return last_speech
