"""Resegmentation: frame-level speaker decisions from sliding-window embeddings (VBx-style).

Clustering gives speaker centroids; every 1.6 s window (one every ``step`` s) is then scored against
each centroid and a hidden Markov model with one state per speaker picks the most likely speaker
sequence (Viterbi) inside each speech region. The emission log-likelihood is a von Mises-Fisher
model on the unit sphere, ``kappa * cos(x, mu_k)``; the transition model stays with the current
speaker or switches to any other with probability ``switch_prob`` per step. This recovers short
turns and speaker changes inside one speech region that a region-level view misses: the window
similarity to the two speakers crosses where the change lies.

As VBx re-estimates its speaker models from the frame posteriors and lets redundant speakers
vanish, the loop here alternates

1. decode all windows against the current centroids;
2. re-estimate each centroid from its *core* windows (whose decoded label does not change within
   half a window on either side: windows straddling a change are mixtures of two voices);
3. drop a speaker left with less than ``min_speaker_seconds`` of speech, or merge the two speakers
   whose re-estimated centroids are as similar as one talker's would be (clustering.merge_scores);

until nothing changes, then decodes once more.
"""

from __future__ import annotations

import numpy as np

from audiotools.diarize.clustering import RHO, THRESHOLD, merge_scores
from audiotools.speakers.vectors import l2_normalize


def viterbi(emissions: np.ndarray, log_stay: float, log_switch: float) -> np.ndarray:
    """Most likely state path for log ``emissions`` (T, K) with a uniform switch model."""
    t_len, k = emissions.shape
    if k == 1 or t_len == 0:
        return np.zeros(t_len, dtype=np.int64)
    trans = np.full((k, k), log_switch)
    np.fill_diagonal(trans, log_stay)
    back = np.empty((t_len, k), dtype=np.int64)
    delta = emissions[0] - np.log(k)
    cols = np.arange(k)
    for t in range(1, t_len):
        cand = delta[:, None] + trans  # (from, to)
        back[t] = np.argmax(cand, axis=0)
        delta = cand[back[t], cols] + emissions[t]
    path = np.empty(t_len, dtype=np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def region_spans(regions: np.ndarray) -> list[tuple[int, int]]:
    n = len(regions)
    if n == 0:
        return []
    bounds = np.flatnonzero(np.diff(regions)) + 1
    return list(zip(np.concatenate([[0], bounds]).tolist(), np.concatenate([bounds, [n]]).tolist()))


def decode(
    vectors: np.ndarray, centroids: np.ndarray, spans: list[tuple[int, int]], kappa: float, switch_prob: float
) -> np.ndarray:
    k = len(centroids)
    labels = np.zeros(len(vectors), dtype=np.int64)
    if k <= 1:
        return labels
    log_stay = float(np.log1p(-switch_prob))
    log_switch = float(np.log(switch_prob / (k - 1)))
    emissions = kappa * (vectors @ centroids.T)
    for a, b in spans:
        labels[a:b] = viterbi(emissions[a:b], log_stay, log_switch)
    return labels


def core_windows(centres: np.ndarray, regions: np.ndarray, labels: np.ndarray, half: float = 0.8) -> np.ndarray:
    """Windows whose decoded label (and region) is the same from ``centre - half`` to ``centre + half``."""
    n = len(centres)
    if n == 0:
        return np.zeros(0, dtype=bool)
    changes = np.concatenate([[0], np.cumsum((labels[1:] != labels[:-1]) | (regions[1:] != regions[:-1]))])
    lo = np.clip(np.searchsorted(centres, centres - half), 0, n - 1)
    hi = np.clip(np.searchsorted(centres, centres + half, side="right") - 1, 0, n - 1)
    return changes[hi] == changes[lo]


def resegment(
    vectors: np.ndarray,
    centres: np.ndarray,
    regions: np.ndarray,
    weights: np.ndarray,
    centroids: np.ndarray,
    *,
    kappa: float = 12.0,
    switch_prob: float = 0.05,
    min_speaker_seconds: float = 1.0,
    merge: bool = True,
    min_speakers: int = 1,
    max_speakers: int | None = None,
    threshold: float = THRESHOLD,
    rho: float = RHO,
    max_rounds: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels for every window (n,) and the final centroids (k, d).

    ``centres``: window centre times (s), in time order; ``regions``: the speech-region index of every
    window (decoding restarts at each region); ``weights``: speech seconds each window stands for.
    ``merge=False`` keeps the number of speakers (re-estimation only), as when it was given.
    """
    n = len(vectors)
    centroids = l2_normalize(centroids, dtype=np.float32)
    if n == 0 or len(centroids) == 0:
        return np.zeros(n, dtype=np.int64), centroids
    spans = region_spans(regions)
    # every round merges or drops one speaker, or re-estimates; bounded either way
    for _ in range(max_rounds or 2 * len(centroids) + 10):
        labels = decode(vectors, centroids, spans, kappa, switch_prob)
        k = len(centroids)
        mass = np.bincount(labels, weights=weights, minlength=k).astype(np.float64)
        core = core_windows(centres, regions, labels)
        sums = np.zeros((k, vectors.shape[1]))
        np.add.at(sums, labels[core], vectors[core].astype(np.float64))
        core_mass = np.bincount(labels[core], weights=weights[core], minlength=k).astype(np.float64)
        no_core = core_mass <= 0
        sums[no_core] = centroids[no_core]  # keep the old estimate for a speaker without core windows
        new = l2_normalize(sums, dtype=None).astype(np.float32)
        if merge and k > max(1, min_speakers):
            small = np.flatnonzero(mass < min_speaker_seconds)
            if len(small) and k > 1:
                centroids = np.delete(new, int(small[np.argmin(mass[small])]), axis=0)
                continue
            score = merge_scores(sums, np.where(no_core, mass, core_mass), threshold, rho)
            a, b = np.unravel_index(int(np.argmax(score)), score.shape)
            if score[a, b] >= 1.0 or (max_speakers is not None and k > max_speakers):
                merged = l2_normalize((sums[a] + sums[b])[None], dtype=None)[0]
                new[a] = merged
                centroids = np.delete(new, b, axis=0)
                continue
        if np.allclose(new, centroids, atol=1e-4):
            centroids = new
            break
        centroids = new
    labels = decode(vectors, centroids, spans, kappa, switch_prob)
    return labels, centroids
