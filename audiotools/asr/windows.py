"""Cut speech regions into decoding windows of at most 30 s (Whisper's input length).

Neighbouring VAD regions are merged while the window stays within ``max_len``; a region
longer than that is split at the quietest 100 ms inside the last half of the window, so a
cut rarely falls inside a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiotools.audio import SAMPLE_RATE

MAX_WINDOW = 30.0


@dataclass(frozen=True)
class Window:
    start: float  # seconds in the file
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def _quietest_cut(samples: np.ndarray, lo: float, hi: float) -> float:
    """Time (s) of the quietest 100 ms frame between lo and hi."""
    a, b = int(lo * SAMPLE_RATE), int(hi * SAMPLE_RATE)
    seg = samples[a:b]
    frame = SAMPLE_RATE // 10
    n = len(seg) // frame
    if n < 2:
        return hi
    energy = np.square(seg[: n * frame].reshape(n, frame), dtype=np.float32).mean(axis=1)
    return lo + (int(np.argmin(energy)) + 0.5) * frame / SAMPLE_RATE


def make_windows(
    regions: list[tuple[float, float]],
    samples: np.ndarray | None = None,
    max_len: float = MAX_WINDOW,
    max_gap: float = 4.0,
) -> list[Window]:
    """Merge regions into windows <= max_len; regions further apart than ``max_gap`` start a new window."""
    pieces: list[tuple[float, float]] = []
    for s, e in regions:
        while e - s > max_len:
            cut = _quietest_cut(samples, s + max_len / 2, s + max_len - 0.2) if samples is not None else s + max_len
            pieces.append((s, cut))
            s = cut
        if e > s:
            pieces.append((s, e))
    windows: list[Window] = []
    cur_s = cur_e = None
    for s, e in pieces:
        if cur_s is None:
            cur_s, cur_e = s, e
        elif e - cur_s <= max_len and s - cur_e <= max_gap:
            cur_e = e
        else:
            windows.append(Window(cur_s, cur_e))
            cur_s, cur_e = s, e
    if cur_s is not None:
        windows.append(Window(cur_s, cur_e))
    return windows


def speech_windows(
    samples: np.ndarray, vad_options=None, vad: bool = True
) -> tuple[list[Window], list[tuple[float, float]] | None]:
    """The engine's decoding windows for ``samples`` and the speech regions they were cut from:
    Silero VAD (``vad_options``: a ``VADOptions``, or None for the defaults), or fixed 30 s windows
    and no regions when ``vad`` is off. The transcriber and the batch's decode workers both cut their windows here."""
    from audiotools.vad.silero import VADOptions, speech_regions

    if not vad:
        return fixed_windows(len(samples) / SAMPLE_RATE), None
    regions = speech_regions(samples, vad_options or VADOptions())
    return make_windows(regions, samples), regions


def fixed_windows(duration: float, max_len: float = MAX_WINDOW) -> list[Window]:
    """Windows covering the whole file (used when VAD is off)."""
    out, t = [], 0.0
    while t < duration:
        out.append(Window(t, min(duration, t + max_len)))
        t += max_len
    return out
