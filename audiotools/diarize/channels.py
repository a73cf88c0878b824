"""Split-channel diarisation (``--channels split``): one speaker per channel, as phone calls are
recorded. Speech is detected on each channel with Silero; speech that is much louder on another
channel at the same moment (crosstalk, echo) is not counted twice."""

from __future__ import annotations

import numpy as np

from audiotools.audio import SAMPLE_RATE

CROSSTALK_DB = 15.0  # a channel this much quieter than the loudest one at a moment is crosstalk
# speech activity per channel: Silero's own hysteresis and durations
VAD_ONSET, VAD_OFFSET = 0.5, 0.35
MIN_SILENCE, MIN_SPEECH, PAD = 0.1, 0.25, 0.03
BRIDGE_GAP = 0.3  # join a channel's turns across pauses shorter than this
VAD_FRAME = 512 / SAMPLE_RATE  # s per Silero frame


def split_channels(channels: np.ndarray) -> tuple[list, dict[str, int]]:
    """Turns from each channel's own speech; crosstalk (a channel far quieter than another at the
    same moment) is not speech of that channel."""
    from audiotools.vad.silero import FRAME_SAMPLES, PLAIN_VAD, speech_probabilities

    n_ch, n = channels.shape
    duration = n / SAMPLE_RATE
    frames = (n + FRAME_SAMPLES - 1) // FRAME_SAMPLES
    probs = np.zeros((n_ch, frames), dtype=np.float32)
    energy = np.zeros((n_ch, frames), dtype=np.float64)
    for c in range(n_ch):
        x = channels[c]
        if np.any(x):
            probs[c] = speech_probabilities(x, PLAIN_VAD)[:frames]  # each channel is one voice: no gain control
        block = 1 << 14  # frames per block: no full-length temporaries
        for f0 in range(0, frames, block):
            f1 = min(frames, f0 + block)
            seg = x[f0 * FRAME_SAMPLES : f1 * FRAME_SAMPLES]
            if len(seg) < (f1 - f0) * FRAME_SAMPLES:
                seg = np.pad(seg, (0, (f1 - f0) * FRAME_SAMPLES - len(seg)))
            energy[c, f0:f1] = np.mean(np.square(seg.reshape(f1 - f0, FRAME_SAMPLES), dtype=np.float64), axis=1)
    loudest = energy.max(axis=0)
    turns = []
    channel_of: dict[str, int] = {}
    for c in range(n_ch):
        p = probs[c].copy()
        p[energy[c] * 10 ** (CROSSTALK_DB / 10) < loudest] = 0.0
        regions = hysteresis_regions(p, VAD_ONSET, VAD_OFFSET, MIN_SILENCE, MIN_SPEECH, PAD, duration)
        label = f"CHANNEL_{c + 1}"
        if regions:
            channel_of[label] = c + 1
        turns += [(s, e, label) for s, e, _ in bridge([(s, e, 0) for s, e in regions], BRIDGE_GAP)]
    return turns, channel_of


def hysteresis_regions(
    probs: np.ndarray,
    onset: float,
    offset: float,
    min_silence: float,
    min_speech: float,
    pad: float,
    duration: float,
    frame: float = VAD_FRAME,
) -> list[tuple[float, float]]:
    """Speech regions (s) from frame probabilities: a run of frames >= ``offset`` is speech when it
    reaches ``onset`` somewhere; pauses < ``min_silence`` are bridged, regions < ``min_speech``
    dropped, the rest padded by ``pad`` (without overlapping)."""
    probs = np.asarray(probs, dtype=np.float32)
    above = probs >= offset
    if not above.any():
        return []
    d = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    peak = np.maximum.reduceat(probs, starts)
    merged: list[list[int]] = []
    for s, e, p in zip(starts, ends, peak):
        if p < onset:
            continue
        if merged and (s - merged[-1][1]) * frame < min_silence:
            merged[-1][1] = e
        else:
            merged.append([int(s), int(e)])
    out: list[list[float]] = []
    for s, e in merged:
        if (e - s) * frame < min_speech:
            continue
        a, b = max(0.0, s * frame - pad), min(duration, e * frame + pad)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(float(a), float(b)) for a, b in out if b > a]


def bridge(turns: list[tuple[float, float, int]], max_gap: float) -> list[tuple[float, float, int]]:
    """Join consecutive turns of the same speaker separated by less than ``max_gap`` seconds."""
    out: list[list] = []
    for s, e, k in sorted(turns):
        if out and out[-1][2] == k and s - out[-1][1] < max_gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, k])
    return [(s, e, k) for s, e, k in out]
