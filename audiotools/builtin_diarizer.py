"""The built-in offline diariser: Silero VAD -> GE2E window embeddings -> clustering -> resegmentation.

1. Speech activity: Silero speech probabilities per 32 ms frame on level-normalised audio (quiet
   far-field recordings at RMS 0.003-0.01 are brought to a working level first), hysteresis
   thresholds, short pauses bridged, tiny bursts dropped.
2. Embeddings: 1.6 s GE2E windows every ``step`` s inside each speech region, each window
   volume-normalised on its own (so a quiet talker is embedded like a loud one).
3. Clustering: average-linkage agglomerative clustering on at most 2000 representatives, cut at a
   similarity threshold (automatic number of speakers) or at the requested number.
4. Resegmentation: every window scored against the centroids, HMM/Viterbi decoding per speech
   region, centroids re-estimated, decoded again (see resegmentation.py).
5. Turns: label changes between neighbouring windows become turn boundaries (midpoint of the two
   window centres); same-speaker turns separated by less than ``bridge_gap`` are joined.

Everything is linear in the file length except the clustering, which is bounded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .clustering import RATIO_THRESHOLD, cluster
from .resegmentation import resegment
from .window_embeddings import WindowEmbeddings, embed_regions

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000
VAD_FRAME = 512 / SAMPLE_RATE


@dataclass
class BuiltinOptions:
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    device: str = "cpu"
    # speech activity
    vad_onset: float = 0.5            # Silero defaults: speech starts above 0.5 ...
    vad_offset: float = 0.35          # ... and ends below 0.35
    min_silence: float = 0.1          # shorter pauses do not end a region (Silero default, 100 ms)
    min_speech: float = 0.25          # shorter bursts are dropped (Silero default, 250 ms)
    pad: float = 0.03                 # Silero default, 30 ms
    # embeddings, clustering, resegmentation
    step: float = 0.2
    ratio_threshold: float = RATIO_THRESHOLD
    min_cluster_seconds: float = 1.0
    kappa: float = 12.0
    switch_prob: float = 0.05
    iterations: int = 2
    embed_gap: float = 0.5            # speech regions closer than this are embedded/decoded as one
    bridge_gap: float = 0.3           # join same-speaker turns across pauses shorter than this
    max_speakers_auto: int = 32       # upper bound when nothing is asked for
    timings: dict = field(default_factory=dict)


def hysteresis_regions(probs: np.ndarray, onset: float, offset: float, min_silence: float, min_speech: float,
                       pad: float, duration: float, frame: float = VAD_FRAME) -> list[tuple[float, float]]:
    """Speech regions (s) from frame probabilities: a run of frames >= ``offset`` is speech when it
    reaches ``onset`` somewhere; pauses < ``min_silence`` are bridged, regions < ``min_speech``
    dropped, the rest padded by ``pad`` (without overlapping)."""
    above = probs >= offset
    if not above.any():
        return []
    d = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    peak = np.maximum.reduceat(probs, starts) if len(starts) else np.zeros(0)
    runs = [(s, e) for s, e, p in zip(starts, ends, peak) if p >= onset]
    merged: list[list[int]] = []
    for s, e in runs:
        if merged and (s - merged[-1][1]) * frame < min_silence:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    out: list[list[float]] = []
    for s, e in merged:
        if (e - s) * frame < min_speech:
            continue
        a, b = max(0.0, s * frame - pad), min(duration, e * frame + pad)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out if b > a]


def merge_close(regions: list[tuple[float, float]], max_gap: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in regions:
        if out and a - out[-1][1] < max_gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def intersect(turns: list[tuple[float, float, int]], regions: list[tuple[float, float]]
              ) -> list[tuple[float, float, int]]:
    """The parts of ``turns`` inside ``regions`` (both sorted, regions non-overlapping)."""
    out = []
    starts = np.array([a for a, _ in regions])
    for s, e, k in turns:
        i = max(0, int(np.searchsorted(starts, s, side="right")) - 1)
        while i < len(regions) and regions[i][0] < e:
            a, b = max(s, regions[i][0]), min(e, regions[i][1])
            if b > a:
                out.append((a, b, k))
            i += 1
    return out


def window_weights(we: WindowEmbeddings, regions: list[tuple[float, float]]) -> np.ndarray:
    """Speech seconds each window stands for: its region's length shared among its windows."""
    if len(we) == 0:
        return np.zeros(0)
    counts = np.bincount(we.region, minlength=len(regions))
    lengths = np.array([b - a for a, b in regions])
    return lengths[we.region] / np.maximum(counts[we.region], 1)


def turns_from_labels(we: WindowEmbeddings, labels: np.ndarray, regions: list[tuple[float, float]]
                      ) -> list[tuple[float, float, int]]:
    """Per region: a boundary halfway between neighbouring window centres whose labels differ."""
    turns: list[tuple[float, float, int]] = []
    centre = we.centre
    n = len(we)
    i = 0
    while i < n:
        r = int(we.region[i])
        j = i
        while j < n and we.region[j] == r:
            j += 1
        a, b = regions[r]
        cur_start = a
        for t in range(i + 1, j):
            if labels[t] != labels[t - 1]:
                cut = float(np.clip((centre[t - 1] + centre[t]) / 2, a, b))
                turns.append((cur_start, cut, int(labels[t - 1])))
                cur_start = cut
        turns.append((cur_start, b, int(labels[j - 1])))
        i = j
    return [t for t in turns if t[1] > t[0]]


def bridge(turns: list[tuple[float, float, int]], max_gap: float) -> list[tuple[float, float, int]]:
    """Join consecutive turns of the same speaker separated by less than ``max_gap`` seconds."""
    out: list[list] = []
    for s, e, k in sorted(turns):
        if out and out[-1][2] == k and s - out[-1][1] < max_gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, k])
    return [(s, e, k) for s, e, k in out]


def speech_activity(samples: np.ndarray, options: BuiltinOptions) -> list[tuple[float, float]]:
    from .vad import speech_probabilities
    duration = len(samples) / SAMPLE_RATE
    if len(samples) < SAMPLE_RATE // 10:
        return []
    probs = speech_probabilities(samples, device="cpu")
    return hysteresis_regions(probs, options.vad_onset, options.vad_offset, options.min_silence,
                              options.min_speech, options.pad, duration)


def diarize_samples(samples: np.ndarray, options: BuiltinOptions | None = None,
                    regions: list[tuple[float, float]] | None = None) -> list[tuple[float, float, int]]:
    """Speaker turns ``(start, end, speaker index)`` for mono 16 kHz ``samples``; indices are
    0..k-1 in order of first appearance. ``regions`` skips the speech detection."""
    from .embedding import SpeakerEncoder

    options = options or BuiltinOptions()
    t0 = time.perf_counter()
    if regions is None:
        regions = speech_activity(samples, options)
    speech = regions
    regions = merge_close(speech, options.embed_gap)
    t1 = time.perf_counter()
    options.timings["vad"] = round(t1 - t0, 3)
    if not regions:
        return []
    encoder = SpeakerEncoder.get(options.device)
    we = embed_regions(samples, regions, encoder, step=options.step)
    t2 = time.perf_counter()
    options.timings["embeddings"] = round(t2 - t1, 3)
    if len(we) == 0:
        return []
    weights = window_weights(we, regions)
    max_k = options.max_speakers or options.max_speakers_auto
    cl = cluster(we.vectors, we.start, we.end, weights, we.region, num_speakers=options.num_speakers,
                 min_speakers=options.min_speakers, max_speakers=max_k, ratio_threshold=options.ratio_threshold,
                 min_cluster_seconds=options.min_cluster_seconds)
    fixed = bool(options.num_speakers or options.min_speakers)
    labels, centroids = resegment(we.vectors, we.region, weights, cl.centroids, kappa=options.kappa,
                                  switch_prob=options.switch_prob, iterations=options.iterations,
                                  min_speaker_seconds=0.0 if fixed else options.min_cluster_seconds)
    t3 = time.perf_counter()
    options.timings["clustering"] = round(t3 - t2, 3)
    turns = bridge(intersect(turns_from_labels(we, labels, regions), speech), options.bridge_gap)
    # speaker indices in order of first appearance
    order: dict[int, int] = {}
    for _, _, k in turns:
        order.setdefault(k, len(order))
    log.debug("builtin diarizer: %d regions, %d windows, %d speakers, timings %s", len(regions), len(we),
              len(order), options.timings)
    return [(s, e, order[k]) for s, e, k in turns]
