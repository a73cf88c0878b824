"""The built-in offline diariser: Silero VAD -> GE2E window embeddings -> clustering -> resegmentation.

1. Speech activity: Silero speech probabilities per 32 ms frame on level-normalised audio (quiet
   far-field recordings at RMS 0.003-0.01 are brought to a working level first; vad.py), Silero's
   own hysteresis and durations (speech above 0.5, ends below 0.35, 100 ms pauses, 250 ms bursts,
   30 ms padding).
2. Embeddings: speech regions closer than ``embed_gap`` are joined, then 1.6 s GE2E windows every
   ``step`` s inside each, each window volume-normalised on its own (window_embeddings.py).
3. Clustering on at most 2000 representatives with a size-aware merge rule (clustering.py).
4. Resegmentation: HMM/Viterbi decoding of every window against the centroids, centroid
   re-estimation from clean windows, redundant speakers merged or dropped (resegmentation.py).
5. Fine pass: 1.0 s windows every 0.15 s, decoded against the same speakers, place the changes.
6. Turns: a boundary halfway between neighbouring window centres whose labels differ; turns are
   cut to the detected speech and same-speaker turns less than ``bridge_gap`` apart are joined.

Cost is linear in the file length (the clustering is bounded); memory is the window embeddings
(1 KB per window, 5 windows per second of speech) plus one region's mel spectrogram at a time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.diarize.clustering import RHO, THRESHOLD, cluster, weighted_centroids
from audiotools.diarize.resegmentation import core_windows, resegment
from audiotools.diarize.window_embeddings import WindowEmbeddings, embed_regions

log = logging.getLogger(__name__)
VAD_FRAME = 512 / SAMPLE_RATE


@dataclass
class BuiltinOptions:
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    device: str = "cpu"
    # speech activity (Silero's defaults)
    vad_onset: float = 0.5
    vad_offset: float = 0.35
    min_silence: float = 0.1
    min_speech: float = 0.25
    pad: float = 0.03
    # embeddings, clustering, resegmentation
    embed_gap: float = 0.25  # speech regions closer than this are embedded/decoded as one
    step: float = 0.2  # seconds between window centres (the decision resolution)
    threshold: float = THRESHOLD
    rho: float = RHO
    min_speaker_seconds: float = 3.0  # a speaker needs this much speech (or 10 % of it, if less) ...
    min_speaker_fraction: float = 0.1
    kappa: float = 12.0
    switch_prob: float = 0.05
    bridge_gap: float = 0.3  # join same-speaker turns across pauses shorter than this
    max_speakers_auto: int = 32  # upper bound when nothing is asked for
    threads: int | None = None  # torch CPU threads while diarising (None: leave torch's setting)
    window: float = 1.6
    edge_window: float = 1.0  # shorter windows flush with each region's edges (short turns there)
    fine_window: float = 1.0  # second pass: shorter windows place the speaker changes (0: off)
    fine_step: float = 0.15  # (0.1 gave the same DER on our files at 1.5x the cost of the pass)
    fine_short_region: float = 5.0  # regions shorter than this are refined even without a change
    timings: dict = field(default_factory=dict)


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


def merge_close(regions: list[tuple[float, float]], max_gap: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in regions:
        if out and a - out[-1][1] < max_gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def intersect(
    turns: list[tuple[float, float, int]], regions: list[tuple[float, float]]
) -> list[tuple[float, float, int]]:
    """The parts of ``turns`` inside ``regions`` (both sorted, regions non-overlapping)."""
    out = []
    if not regions:
        return out
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


def turns_from_labels(
    we: WindowEmbeddings, labels: np.ndarray, regions: list[tuple[float, float]]
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
        cur = a
        for t in range(i + 1, j):
            if labels[t] != labels[t - 1]:
                cut = float(np.clip((centre[t - 1] + centre[t]) / 2, a, b))
                turns.append((cur, cut, int(labels[t - 1])))
                cur = cut
        turns.append((cur, b, int(labels[j - 1])))
        i = j
    return [t for t in turns if t[1] > t[0]]


def labelled_turns(
    we: WindowEmbeddings,
    labels: np.ndarray,
    regions: list[tuple[float, float]],
    speech: list[tuple[float, float]],
    bridge_gap: float,
) -> list[tuple[float, float, int]]:
    """Window labels -> speaker turns: boundaries between windows, cut to the detected ``speech``,
    same-speaker turns closer than ``bridge_gap`` joined (step 6 of the diariser)."""
    return bridge(intersect(turns_from_labels(we, labels, regions), speech), bridge_gap)


def bridge(turns: list[tuple[float, float, int]], max_gap: float) -> list[tuple[float, float, int]]:
    """Join consecutive turns of the same speaker separated by less than ``max_gap`` seconds."""
    out: list[list] = []
    for s, e, k in sorted(turns):
        if out and out[-1][2] == k and s - out[-1][1] < max_gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, k])
    return [(s, e, k) for s, e, k in out]


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch CPU threads, then restore. The diariser's work is small batches and a
    sequential LSTM: one thread already runs it fast, while two threads on a busy machine spin
    against the other process and run several times slower."""
    import torch

    old = torch.get_num_threads()
    if not n or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def speech_activity(samples: np.ndarray, options: BuiltinOptions | None = None) -> list[tuple[float, float]]:
    """Speech regions (s) of mono 16 kHz ``samples``, for diarisation (tight boundaries)."""
    from audiotools.vad.silero import speech_probabilities

    options = options or BuiltinOptions()
    duration = len(samples) / SAMPLE_RATE
    if len(samples) < SAMPLE_RATE // 10 or not np.any(samples):
        return []
    probs = speech_probabilities(samples)
    return hysteresis_regions(
        probs, options.vad_onset, options.vad_offset, options.min_silence, options.min_speech, options.pad, duration
    )


def diarize_samples(
    samples: np.ndarray, options: BuiltinOptions | None = None, speech: list[tuple[float, float]] | None = None
) -> list[tuple[float, float, int]]:
    """Speaker turns ``(start, end, speaker index)`` for mono 16 kHz ``samples``, sorted by start;
    indices are 0..k-1 in order of first appearance. ``speech`` skips the speech detection."""
    options = options or BuiltinOptions()
    with torch_threads(options.threads if options.device == "cpu" else None):
        return _diarize(samples, options, speech)


def refine(
    samples: np.ndarray,
    regions: list[tuple[float, float]],
    we: WindowEmbeddings,
    labels: np.ndarray,
    weights: np.ndarray,
    encoder,
    options: BuiltinOptions,
) -> tuple[WindowEmbeddings, np.ndarray]:
    """Second, finer pass over the speech regions where the first pass found a speaker change:
    shorter windows (``fine_window`` s every ``fine_step`` s) place the changes. The speakers stay
    those found on the long windows (whose statistics the counting rule was calibrated on); each
    short window starts with the label of the nearest long window of its region, short-window
    centroids are estimated from those labels (a speaker without short windows keeps its long-window
    centroid), then the same HMM resegmentation (without merging) decodes the short windows.
    Regions with one speaker throughout keep their long-window labels (half the cost of refining
    everything on conversational audio, for the same DER on our benchmark files)."""
    changed = np.zeros(len(regions), dtype=bool)
    same_region = we.region[1:] == we.region[:-1]
    changed[we.region[1:][same_region & (labels[1:] != labels[:-1])]] = True
    lengths = np.array([b - a for a, b in regions])
    changed |= lengths < options.fine_short_region
    picked = np.flatnonzero(changed)
    if len(picked) == 0:
        return we, labels
    fine = embed_regions(
        samples, [regions[i] for i in picked], encoder, step=options.fine_step, window=options.fine_window
    )
    if len(fine) == 0:
        return we, labels
    fine.region = picked[fine.region]  # back to indices into ``regions``
    k = int(labels.max()) + 1
    # nearest long window of the same region (both sorted by region, then time)
    key_long = we.region * 1e6 + we.centre
    key_fine = fine.region * 1e6 + fine.centre
    pos = np.clip(np.searchsorted(key_long, key_fine), 1, len(we) - 1)
    left_closer = np.abs(key_long[pos - 1] - key_fine) <= np.abs(key_long[pos] - key_fine)
    init = labels[np.where(left_closer, pos - 1, pos)]
    fine_weights = window_weights(fine, regions)
    core = core_windows(fine.centre, fine.region, init)
    centroids = weighted_centroids(we.vectors, labels, weights, k)
    have = np.bincount(init[core], minlength=k) > 0
    centroids[have] = weighted_centroids(fine.vectors[core], init[core], fine_weights[core], k)[have]
    fine_labels, _ = resegment(
        fine.vectors,
        fine.centre,
        fine.region,
        fine_weights,
        centroids,
        kappa=options.kappa,
        switch_prob=options.switch_prob,
        merge=False,
    )
    # long windows of the untouched regions + short windows of the refined ones, in (region, time) order
    keep = ~changed[we.region]
    start, end, region, vectors, all_labels = (
        np.concatenate([a[keep], b])
        for a, b in (
            (we.start, fine.start),
            (we.end, fine.end),
            (we.region, fine.region),
            (we.vectors, fine.vectors),
            (labels, fine_labels),
        )
    )
    order = np.lexsort(((start + end) / 2, region))
    return WindowEmbeddings(start[order], end[order], region[order], vectors[order]), all_labels[order]


def _diarize(samples: np.ndarray, options: BuiltinOptions, speech) -> list[tuple[float, float, int]]:
    from audiotools.speakers.ge2e import SpeakerEncoder

    t0 = time.perf_counter()
    if speech is None:
        speech = speech_activity(samples, options)
    t1 = time.perf_counter()
    options.timings["vad"] = round(t1 - t0, 3)
    if not speech:
        return []
    regions = merge_close(speech, options.embed_gap)
    encoder = SpeakerEncoder.get(options.device)
    we = embed_regions(
        samples, regions, encoder, step=options.step, window=options.window, edge_window=options.edge_window
    )
    t2 = time.perf_counter()
    options.timings["embeddings"] = round(t2 - t1, 3)
    if len(we) == 0:
        return []
    weights = window_weights(we, regions)
    total = float(weights.sum())
    fixed = options.num_speakers
    min_k = options.min_speakers or 1
    max_k = options.max_speakers or options.max_speakers_auto
    min_seconds = min(options.min_speaker_seconds, max(0.5, options.min_speaker_fraction * total))
    # over-cluster first (about 2 clusters per expected speaker), the merge rule does the rest
    initial = min(128, max(40, 2 * (options.max_speakers or 0), 2 * min_k))
    cl = cluster(
        we.vectors,
        weights,
        we.region,
        num_speakers=fixed,
        min_speakers=options.min_speakers,
        max_speakers=max_k,
        threshold=min(0.999, options.threshold + 0.03),
        rho=options.rho,
        min_cluster_seconds=min(1.0, min_seconds),
        initial_clusters=initial,
    )
    labels, _ = resegment(
        we.vectors,
        we.centre,
        we.region,
        weights,
        cl.centroids,
        kappa=options.kappa,
        switch_prob=options.switch_prob,
        min_speaker_seconds=min_seconds,
        merge=not fixed,
        min_speakers=min_k,
        max_speakers=max_k,
        threshold=options.threshold,
        rho=options.rho,
    )
    t3 = time.perf_counter()
    options.timings["clustering"] = round(t3 - t2, 3)
    if options.fine_window and options.fine_window < options.window and labels.max(initial=0) > 0:
        we, labels = refine(samples, regions, we, labels, weights, encoder, options)
        options.timings["refine"] = round(time.perf_counter() - t3, 3)
    turns = labelled_turns(we, labels, regions, speech, options.bridge_gap)
    order: dict[int, int] = {}
    for _, _, k in turns:
        order.setdefault(k, len(order))
    log.debug(
        "builtin diarizer: %d speech regions, %d windows, %d speakers, timings %s",
        len(speech),
        len(we),
        len(order),
        options.timings,
    )
    return [(s, e, order[k]) for s, e, k in turns]
