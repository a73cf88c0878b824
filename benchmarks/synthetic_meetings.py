"""Synthetic meetings from LibriSpeech utterances (../shared/data/speakers) with exact reference turns.

Used by ``benchmarks/diarize.py`` (robustness figures: ``meeting_set``, the benchmark's six, and
``tuning_set``, the fourteen the diariser's parameters were chosen on). A
meeting has 2-4 speakers taking short turns (0.6-6 s pieces cut from their utterances), pauses
of 0.1-1.2 s, some overlaps at turn changes (when asked), talkers at different levels with at
least one quiet talker (speech RMS 0.005), optional far-field simulation (a synthetic room impulse
response: exponentially decaying noise with the given RT60) and a noise floor. The reference turns
of a piece are the Silero speech frames of the dry, isolated piece with pauses under 0.3 s
bridged (as a forced alignment would mark them: word gaps stay inside, real pauses do not).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16000
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass
class Meeting:
    name: str
    samples: np.ndarray
    turns: list[tuple[float, float, str]]  # reference (start, end, speaker)

    @property
    def duration(self) -> float:
        return len(self.samples) / SR

    @property
    def speakers(self) -> list[str]:
        return sorted({t[2] for t in self.turns})

    def speaker_rms(self, speaker: str) -> float:
        """RMS of the mix over ``speaker``'s reference turns: that talker's level as heard."""
        x = np.concatenate([self.samples[int(a * SR) : int(b * SR)] for a, b, s in self.turns if s == speaker])
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))

    def quietest_speaker(self) -> str:
        return min(self.speakers, key=self.speaker_rms)


def speaker_files(root: Path = SHARED / "speakers") -> dict[str, list[str]]:
    """LibriSpeech speaker id -> utterance files (the five test speakers; cohort speakers have one each)."""
    out: dict[str, list[str]] = {}
    for f in sorted(glob.glob(str(root / "*" / "*.flac"))):
        out.setdefault(os.path.basename(f).split("-")[0], []).append(f)
    return out


def _read(path: str) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32")
    assert sr == SR, path
    return x if x.ndim == 1 else x.mean(axis=1)


def _speech_bounds(x: np.ndarray, frame: int = 160, rel_db: float = -30.0) -> tuple[int, int] | None:
    n = len(x) // frame
    if n == 0:
        return None
    rms = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1))
    level = np.percentile(rms, 90)
    on = np.flatnonzero(rms > level * 10 ** (rel_db / 20))
    if len(on) == 0:
        return None
    return int(on[0] * frame), int((on[-1] + 1) * frame)


def _speech_islands(x: np.ndarray, bridge: float = 0.3, min_len: float = 0.1) -> list[tuple[int, int]]:
    """Sample ranges of speech inside a clean, isolated piece: Silero speech frames (p >= 0.5) of
    the dry piece at full level, pauses shorter than ``bridge`` s bridged. This is the reference a
    forced alignment would give (word gaps inside a turn, real pauses not); it leaves out the
    LibriSpeech recordings' own background noise, which an energy threshold would count as speech."""
    from audiotools.vad.silero import PLAIN_VAD, speech_probabilities

    p = speech_probabilities(x, PLAIN_VAD)
    frame = 512
    on = p >= 0.5
    d = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    runs = list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))
    out: list[list[int]] = []
    for a, b in runs:
        if out and (a - out[-1][1]) * frame / SR < bridge:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a * frame, min(len(x), b * frame)) for a, b in out if (b - a) * frame / SR >= min_len]


def _rms(x: np.ndarray) -> float:
    b = _speech_bounds(x)
    if b is None:
        return 0.0
    seg = x[b[0] : b[1]]
    n = len(seg) // 320
    if n == 0:
        return float(np.sqrt(np.mean(np.square(seg))))
    r = np.sqrt(np.mean(np.square(seg[: n * 320].reshape(n, 320)), axis=1))
    return float(np.sqrt(np.mean(np.square(r[r > np.percentile(r, 30)]))))


def room_impulse_response(rt60: float, rng: np.random.Generator, length: float | None = None) -> np.ndarray:
    length = length or min(1.0, rt60 * 1.2)
    t = np.arange(int(length * SR)) / SR
    decay = np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    h = rng.standard_normal(len(t)) * decay
    h[: int(0.003 * SR)] = 0
    h[0] = 1.0  # direct path
    return (h / np.sqrt(np.sum(h**2))).astype(np.float32)


def far_field(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` heard in a synthetic room: half the dry signal plus its convolution with
    :func:`room_impulse_response` (direct-to-reverberant ratio about -6 dB)."""
    from scipy.signal import fftconvolve

    h = room_impulse_response(rt60, rng)
    wet = fftconvolve(x, h)[: len(x)].astype(np.float32)
    return (0.5 * x + wet).astype(np.float32) / 1.2


def make_meeting(
    seed: int,
    n_speakers: int,
    duration: float = 60.0,
    *,
    overlap_prob: float = 0.0,
    rt60: float | None = None,
    quiet_rms: float = 0.005,
    noise_rms: float = 0.0005,
    pool: dict[str, list[str]] | None = None,
    max_turn: float = 6.0,
) -> Meeting:
    rng = np.random.default_rng(seed)
    pool = pool or speaker_files()
    multi = [s for s, fs in pool.items() if len(fs) > 1]
    single = [s for s, fs in pool.items() if len(fs) == 1]
    ids = list(rng.choice(multi, size=min(n_speakers, len(multi)), replace=False))
    if len(ids) < n_speakers:
        ids += list(rng.choice(single, size=n_speakers - len(ids), replace=False))
    # per-speaker source audio: their utterances, concatenated, consumed piece by piece
    sources, cursor = {}, {}
    for s in ids:
        files = list(pool[s])
        rng.shuffle(files)
        sources[s] = np.concatenate([_read(f) for f in files[:6]])
        cursor[s] = 0
    levels = {s: float(rng.choice([0.02, 0.04, 0.06])) for s in ids}
    levels[ids[int(rng.integers(len(ids)))]] = quiet_rms
    out = np.zeros(int((duration + 10) * SR), dtype=np.float32)
    turns: list[tuple[float, float, str]] = []
    pos = int(rng.uniform(0.3, 1.0) * SR)
    prev = None
    order_weights = rng.dirichlet(np.ones(len(ids)) * 2)
    while pos < duration * SR:
        choices = [s for s in ids if s != prev]
        w = np.array([order_weights[ids.index(s)] for s in choices])
        spk = str(rng.choice(choices, p=w / w.sum()))
        length = float(np.clip(rng.lognormal(np.log(2.2), 0.6), 0.6, max_turn))
        src = sources[spk]
        n = int(length * SR)
        if cursor[spk] + n > len(src):
            cursor[spk] = 0
        piece = src[cursor[spk] : cursor[spk] + n].copy()
        cursor[spk] += n
        b = _speech_bounds(piece)
        if b is None or b[1] - b[0] < int(0.3 * SR):
            continue
        piece = piece[b[0] : b[1]]
        piece *= levels[spk] / max(_rms(piece), 1e-6)
        end = pos + len(piece)
        if end > len(out):
            break
        out[pos:end] += piece
        for a, b2 in _speech_islands(piece):
            turns.append(((pos + a) / SR, (pos + b2) / SR, f"spk{spk}"))
        prev = spk
        if rng.random() < overlap_prob:
            gap = -rng.uniform(0.1, 0.6)
        else:
            gap = rng.uniform(0.1, 1.2)
        pos = max(pos + int(0.3 * SR), end + int(gap * SR))
    total = max(t[1] for t in turns) + rng.uniform(0.3, 1.0)
    out = out[: int(total * SR)]
    if rt60:
        out = far_field(out, rt60, rng)
    noise = np.cumsum(rng.standard_normal(len(out))).astype(np.float32)  # brown-ish noise floor
    noise -= np.convolve(noise, np.ones(801) / 801, mode="same").astype(np.float32)
    noise *= noise_rms / max(float(np.sqrt(np.mean(noise**2))), 1e-9)
    out = np.clip(out + noise, -1, 1).astype(np.float32)
    name = f"meeting{seed}_{n_speakers}spk" + (f"_rt{rt60:g}" if rt60 else "") + ("_ovl" if overlap_prob else "")
    return Meeting(name, out, turns)


def meeting_set(pool: dict[str, list[str]] | None = None) -> list[Meeting]:
    """The benchmark's fixed set: 2-4 speakers, short turns, quiet talkers, some far-field and overlap."""
    pool = pool or speaker_files()
    specs = [
        (1, 2, 0.0, None),
        (2, 3, 0.0, None),
        (3, 4, 0.0, None),
        (4, 2, 0.0, 0.4),
        (5, 3, 0.15, 0.5),
        (6, 4, 0.15, 0.3),
    ]
    return [make_meeting(seed, k, 60.0, overlap_prob=ov, rt60=rt, pool=pool) for seed, k, ov, rt in specs]


def tuning_set(pool: dict[str, list[str]] | None = None) -> list[Meeting]:
    """The set the diariser's parameters were chosen on: 14 meetings of other seeds (100-113) than
    the benchmark's, 2-5 speakers, 60-150 s, reverberation (RT60 0.2-0.6 s) and overlap (10-20 % of
    turn changes) drawn at random, so that a setting is judged on more than the benchmark files."""
    pool = pool or speaker_files()
    rng = np.random.default_rng(7)
    specs = []
    for i in range(14):
        k = int(rng.choice([2, 3, 3, 4, 4, 5]))
        rt = [None, None, 0.2, 0.3, 0.4, 0.5, 0.6][int(rng.integers(7))]
        ov = float(rng.choice([0.0, 0.1, 0.2]))
        dur = float(rng.choice([60, 90, 120, 150]))
        specs.append((100 + i, k, dur, ov, rt))
    out = []
    for seed, k, dur, ov, rt in specs:
        m = make_meeting(seed, k, dur, overlap_prob=ov, rt60=rt, pool=pool)
        out.append(Meeting(f"{m.name}_{int(dur)}s", m.samples, m.turns))
    return out
