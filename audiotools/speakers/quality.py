"""The quality gate of speaker comparisons: net speech and signal-to-noise ratio per compared unit.

Forensic practice does not report a likelihood ratio for material the system was not shown to
handle. Each questioned unit (a diarised speaker, a segment, the whole recording) is measured:

* **net speech**: seconds of VAD speech inside the unit's regions (pauses and other speakers left
  out), the speech that is actually embedded;
* **SNR**: an estimate of the speech-to-noise power ratio in dB (:func:`estimate_snr`).

A unit with less than ``min_net_speech`` seconds of net speech, or an SNR below ``min_snr_db``, gets
the verdict "insufficient quality" instead of a likelihood ratio; ``force`` gives the likelihood
ratio anyway, flagged with the reasons. The default thresholds (3 s, 10 dB) come from the
measurement in ``benchmarks/verify.py --quality`` (held-out EER and Cllr with test speech cut to
1/2/3/5 s and with white noise added at 20/10/5 dB); see docs/voiceprints.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import UsageError
from audiotools.options import Options

FRAME_S = 0.02  # power is measured on 20 ms frames, hopped by 10 ms
HOP_S = 0.01
MIN_NOISE_SECONDS = 0.5  # non-speech needed to measure the noise there
NOISE_PERCENTILE = 10  # else: the quietest 10 % of the speech frames (gaps between words)
SNR_CEILING_DB = 60.0  # digital silence: report 60 dB rather than infinity


@dataclass(frozen=True)
class QualityOptions(Options):
    """Thresholds of the quality gate (``verify``, ``identify`` and the ``identify`` step)."""

    STEP: ClassVar[str] = "quality"

    min_net_speech: float = 3.0  # seconds of VAD speech a compared unit needs for a likelihood ratio
    min_snr_db: float = 10.0  # estimated speech-to-noise ratio a compared unit needs
    force: bool = False  # report the likelihood ratio below the thresholds too (flagged)

    def check(self) -> None:
        if self.min_net_speech < 0:
            raise UsageError(f"min_net_speech must be >= 0, got {self.min_net_speech:g}")


def _frame_powers(x: np.ndarray) -> np.ndarray:
    frame, hop = int(FRAME_S * SAMPLE_RATE), int(HOP_S * SAMPLE_RATE)
    if len(x) < frame:
        return np.zeros(0)
    n = 1 + (len(x) - frame) // hop
    out = np.empty(n)
    block = 8192  # frames at a time: memory stays bounded on long recordings, each frame computed alike
    for k in range(0, n, block):
        m = min(block, n - k)
        idx = np.arange(frame)[None, :] + hop * (k + np.arange(m))[:, None]
        f = x[idx].astype(np.float64)
        f = f - f.mean(axis=1, keepdims=True)  # a DC offset is not signal
        out[k : k + m] = np.mean(f * f, axis=1)
    return out


def _mask(n_frames: int, regions: Sequence[tuple[float, float]]) -> np.ndarray:
    centres = (np.arange(n_frames) * HOP_S) + FRAME_S / 2
    m = np.zeros(n_frames, dtype=bool)
    for a, b in regions:
        m |= (centres >= a) & (centres < b)
    return m


def estimate_snr(
    samples: np.ndarray,
    speech: Sequence[tuple[float, float]],
    regions: Sequence[tuple[float, float]] | None = None,
) -> dict:
    """Estimated SNR (dB) of the speech inside ``regions`` (None: the whole recording).

    ``speech`` are the VAD speech regions of the whole recording. Frame powers (20 ms frames, 10 ms
    hop, DC removed) are split into speech frames (VAD speech inside ``regions``) and non-speech
    frames (outside all VAD speech, anywhere in the recording: the background is the recording's).
    Noise power N: the larger of two estimates, the ``NOISE_PERCENTILE``-th percentile of the unit's
    speech frames (the gaps between words: the noise under the speech itself; it errs towards lower
    SNR) and, when there is at least ``MIN_NOISE_SECONDS`` of non-speech, its median power. Neither
    alone is safe: padding a noisy recording with digital silence (or a quieter stretch) brings the
    non-speech median down to nothing, and on clean speech the percentile is a quiet sound, not
    noise. ``method`` names the estimate used. Speech-plus-noise power P:
    the mean power of the speech frames. SNR = 10 log10((P - N) / N), limited to
    [-20, ``SNR_CEILING_DB``] dB. Returns ``{"snr_db", "method", "noise_seconds"}``; ``snr_db`` is
    None when there is no speech frame.
    """
    p = _frame_powers(np.asarray(samples))
    sp = _mask(len(p), speech)
    unit = sp & (_mask(len(p), regions) if regions is not None else True)
    noise_frames = ~sp
    out = {"snr_db": None, "method": None, "noise_seconds": round(float(noise_frames.sum()) * HOP_S, 2)}
    if not unit.any():
        return out
    noise = float(np.percentile(p[unit], NOISE_PERCENTILE))
    out["method"] = f"{NOISE_PERCENTILE}th percentile of speech-frame power"
    if noise_frames.sum() * HOP_S < MIN_NOISE_SECONDS:
        out["method"] += " (too little non-speech)"
    else:
        background = float(np.median(p[noise_frames]))
        if background > noise:
            noise = background
            out["method"] = "median power of non-speech frames"
    total = float(np.mean(p[unit]))
    if noise <= 1e-12 * max(total, 1e-12) or noise <= 0.0:
        out["snr_db"] = SNR_CEILING_DB
        return out
    ratio = max(total - noise, 0.0) / noise
    snr = 10 * math.log10(ratio) if ratio > 0 else -20.0
    out["snr_db"] = round(float(min(max(snr, -20.0), SNR_CEILING_DB)), 1)
    return out


def assess(net_speech: float, snr: dict, options: QualityOptions) -> dict:
    """The gate's verdict for one unit: ``{"net_speech_seconds", "snr_db", ..., "passed", "reasons"}``."""
    reasons = []
    if net_speech < options.min_net_speech:
        reasons.append(f"{net_speech:.1f} s of net speech (needs {options.min_net_speech:g} s)")
    s = snr.get("snr_db")
    if s is not None and s < options.min_snr_db:
        reasons.append(f"estimated SNR {s:.1f} dB (needs {options.min_snr_db:g} dB)")
    return {
        "net_speech_seconds": round(float(net_speech), 2),
        "snr_db": s,
        "snr_method": snr.get("method"),
        "thresholds": {"min_net_speech": options.min_net_speech, "min_snr_db": options.min_snr_db},
        "passed": not reasons,
        "reasons": reasons,
    }
