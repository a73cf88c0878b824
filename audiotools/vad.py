"""Voice activity detection with Silero VAD (the model file ships in the ``silero-vad`` package).

Real recordings are often quiet (RMS 0.003-0.01) and far-field; the level is normalised before
detection so quiet speech is not reported as silence.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
_model_lock = threading.Lock()
_models: dict[str, object] = {}


@dataclass
class VADOptions:
    threshold: float = 0.45             # speech probability threshold
    min_speech_duration: float = 0.2    # seconds; shorter bursts are dropped
    min_silence_duration: float = 0.6   # seconds of silence that end a speech region
    speech_pad: float = 0.2             # seconds added on both sides of each region
    normalize: bool = True              # bring quiet recordings to a working level first
    target_level: float = 0.1           # RMS of the loud (speech) frames after normalisation
    max_gain_db: float = 40.0
    silence_floor_db: float = -75.0     # stretches quieter than this (dBFS, before normalisation) skip the model


def load_vad_model(device: str = "cpu"):
    with _model_lock:
        if device not in _models:
            from silero_vad import load_silero_vad
            model = load_silero_vad(onnx=False)
            _models[device] = model.to(device) if device != "cpu" else model
        return _models[device]


def speech_level(samples: np.ndarray, frame: int = 320) -> float:
    """RMS of the loud frames (90th percentile of 20 ms frame RMS): a level estimate for speech."""
    n = len(samples) // frame
    if n == 0:
        return float(np.sqrt(np.mean(np.square(samples, dtype=np.float32)))) if len(samples) else 0.0
    frames = samples[: n * frame].reshape(n, frame)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float32), axis=1))
    return float(np.percentile(rms, 90))


def normalize_level(samples: np.ndarray, target: float = 0.1, max_gain_db: float = 40.0) -> np.ndarray:
    level = speech_level(samples)
    if level <= 1e-6:
        return samples
    gain = min(target / level, 10 ** (max_gain_db / 20))
    if 0.7 < gain < 1.4:
        return samples
    out = samples * np.float32(gain)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def active_spans(samples: np.ndarray, floor_db: float = -75.0, frame: int = 1600,
                 pad: float = 1.0) -> list[tuple[int, int]]:
    """Sample spans that are not near-digital silence (100 ms frames above ``floor_db`` dBFS), padded.

    A cheap vectorised gate: hours of dead air (muted line, gaps in a wiretap) never reach the model.
    """
    n = len(samples) // frame
    if n == 0:
        return [(0, len(samples))] if len(samples) else []
    frames = samples[: n * frame].reshape(n, frame)
    peak = np.maximum(frames.max(axis=1), -frames.min(axis=1))  # no full-size temporary
    loud = peak > 10 ** (floor_db / 20)
    if len(samples) > n * frame and np.abs(samples[n * frame:]).max() > 10 ** (floor_db / 20):
        loud = np.append(loud, True)
    pad_f = int(pad * SAMPLE_RATE / frame)
    spans: list[tuple[int, int]] = []
    idx = np.flatnonzero(loud)
    if len(idx) == 0:
        return []
    start = prev = idx[0]
    for i in idx[1:]:
        if i - prev > 2 * pad_f + 1:
            spans.append((start, prev))
            start = i
        prev = i
    spans.append((start, prev))
    out = []
    for a, b in spans:
        out.append((max(0, (a - pad_f) * frame), min(len(samples), (b + 1 + pad_f) * frame)))
    return out


def speech_regions(samples: np.ndarray, options: VADOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions as (start, end) seconds, sorted and non-overlapping."""
    import torch
    from silero_vad import get_speech_timestamps

    options = options or VADOptions()
    if len(samples) < SAMPLE_RATE // 10:
        return []
    spans = active_spans(samples, options.silence_floor_db)
    if not spans:
        return []
    model = load_vad_model()
    regions: list[tuple[float, float]] = []
    for a, b in spans:
        part = samples[a:b]
        if options.normalize:
            part = normalize_level(part, options.target_level, options.max_gain_db)
        with _model_lock, torch.inference_mode():
            model.reset_states()
            stamps = get_speech_timestamps(
                torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32)), model,
                threshold=options.threshold, sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=int(options.min_speech_duration * 1000),
                min_silence_duration_ms=int(options.min_silence_duration * 1000),
                speech_pad_ms=int(options.speech_pad * 1000))
        regions.extend(((s["start"] + a) / SAMPLE_RATE, (s["end"] + a) / SAMPLE_RATE) for s in stamps)
    return regions
