"""Level control shared by the stages that listen for speech: a slow automatic gain control.

A quiet talker (far from the microphone, the quiet side of a call) sits 10-20 dB under the others.
Both speech detectors, the diariser's segmentation and the transcription's Silero VAD, hear it
better once quiet stretches are lifted towards the loud ones (:func:`gain_curve`); the speaker
embeddings and Whisper keep the original samples. The gain is a curve of 10 ms frames, applied to
the pieces a detector reads (:func:`apply_gain`), so a long recording is never copied whole.
"""

from __future__ import annotations

import numpy as np

from audiotools.audio import SAMPLE_RATE


def moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    return np.convolve(
        np.pad(x, (width // 2, width - 1 - width // 2), mode="edge"), np.ones(width) / width, mode="valid"
    )


def moving_max(x: np.ndarray, width: int) -> np.ndarray:
    """Max of x over ``width`` values centred on each one (edges padded with the end values)."""
    padded = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, width).max(axis=1)


def frame_rms(samples: np.ndarray, frame: int) -> np.ndarray:
    """RMS of each whole ``frame``-sample frame, (frames,), summed in float64 a block of frames at a
    time (all at once, the float64 squares of a 4 h recording took 1.8 GB)."""
    n = len(samples) // frame
    power = np.empty(n)
    block = 1 << 16
    for k in range(0, n, block):
        m = min(block, n - k)
        power[k : k + m] = np.mean(
            np.square(samples[k * frame : (k + m) * frame].reshape(m, frame), dtype=np.float64), axis=1
        )
    return np.sqrt(power + 1e-20)


def gain_curve(samples: np.ndarray, window: float, max_gain_db: float) -> np.ndarray | None:
    """Gain per 10 ms frame of a slow automatic gain control, (frames,); None when it is off.

    Envelope: 10 ms frame RMS, max then mean over ``window`` s, never under 6 dB over the noise floor
    (10th percentile). Gain: the file's loud level (95th percentile of frame RMS) over the envelope,
    within [1, max_gain_db]. A pause is lifted as much as the speech around it (at most
    ``max_gain_db``), never to the loud level; fading the gain out near the floor costs a quiet
    talker in noise its lift (docs/diarization.md). A quiet talker
    (far from the microphone) then reaches the level the speech detectors were trained on, instead
    of sitting 10-20 dB under the others in the same stretch of audio. Samples past the last whole frame
    take the last frame's gain (:func:`apply_gain`).
    """
    frame = SAMPLE_RATE // 100
    n = len(samples) // frame
    if max_gain_db <= 0 or n == 0:
        return None
    rms = frame_rms(samples, frame)
    width = max(1, round(window * 100))
    envelope = np.maximum(moving_mean(moving_max(rms, width), width), 2.0 * np.percentile(rms, 10))
    return np.clip(np.percentile(rms, 95) / envelope, 1.0, 10 ** (max_gain_db / 20)).astype(np.float32)


def apply_gain(chunk: np.ndarray, gain: np.ndarray, start: int) -> np.ndarray:
    """``chunk`` (the samples from ``start`` on) times the gain of the 10 ms frames it covers, a new array."""
    frame = SAMPLE_RATE // 100
    first = start // frame
    frames = gain[first : (start + len(chunk) - 1) // frame + 1]
    if len(frames) * frame < len(chunk) + start - first * frame:  # past the last whole frame: its gain
        frames = np.concatenate([frames, np.full(len(chunk) // frame + 2, gain[-1], np.float32)])
    per_sample = np.repeat(frames, frame)[start - first * frame :][: len(chunk)]
    return chunk.astype(np.float32) * per_sample


def gain_control(samples: np.ndarray, window: float, max_gain_db: float) -> np.ndarray:
    """The samples with :func:`gain_curve` applied (the whole recording at once)."""
    gain = gain_curve(samples, window, max_gain_db)
    return samples if gain is None else apply_gain(np.asarray(samples), gain, 0)
