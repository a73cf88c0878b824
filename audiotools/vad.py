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


def speech_regions(samples: np.ndarray, options: VADOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions as (start, end) seconds, sorted and non-overlapping."""
    import torch
    from silero_vad import get_speech_timestamps

    options = options or VADOptions()
    if len(samples) < SAMPLE_RATE // 10:
        return []
    audio = normalize_level(samples, options.target_level, options.max_gain_db) if options.normalize else samples
    model = load_vad_model()
    with _model_lock, torch.inference_mode():
        model.reset_states()
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), model,
            threshold=options.threshold, sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=int(options.min_speech_duration * 1000),
            min_silence_duration_ms=int(options.min_silence_duration * 1000),
            speech_pad_ms=int(options.speech_pad * 1000))
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
