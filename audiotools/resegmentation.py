"""Resegmentation: frame-level speaker decisions from sliding-window embeddings (VBx-style).

Clustering gives speaker centroids; every 1.6 s window (one every ``step`` s) is then scored against
each centroid and a hidden Markov model with one state per speaker picks the most likely speaker
sequence (Viterbi) inside each speech region. The emission log-likelihood is a von Mises-Fisher
model on the unit sphere, ``kappa * cos(x, mu_k)``; the transition model stays with the current
speaker or switches to any other with probability ``switch_prob`` per step. This recovers short
turns and speaker changes inside one speech region that the region-level view would miss: the
window similarity to the two speakers crosses where the change lies. Centroids are re-estimated
from the decoded frames and the decoding repeated (``iterations``), as VBx re-estimates its
speaker models; a speaker left with too little speech is dropped.
"""

from __future__ import annotations

import numpy as np

from .clustering import normalize_rows, weighted_centroids


def viterbi(emissions: np.ndarray, log_stay: float, log_switch: float) -> np.ndarray:
    """Most likely state path for log ``emissions`` (T, K) with a uniform switch model."""
    t_len, k = emissions.shape
    if k == 1:
        return np.zeros(t_len, dtype=np.int64)
    trans = np.full((k, k), log_switch)
    np.fill_diagonal(trans, log_stay)
    back = np.empty((t_len, k), dtype=np.int64)
    delta = emissions[0] - np.log(k)
    back[0] = np.arange(k)
    for t in range(1, t_len):
        cand = delta[:, None] + trans          # (from, to)
        back[t] = np.argmax(cand, axis=0)
        delta = cand[back[t], np.arange(k)] + emissions[t]
    path = np.empty(t_len, dtype=np.int64)
    path[-1] = int(np.argmax(delta))
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _decode(vectors, centroids, spans, kappa, switch_prob) -> np.ndarray:
    k = len(centroids)
    log_stay = float(np.log1p(-switch_prob)) if k > 1 else 0.0
    log_switch = float(np.log(switch_prob / max(1, k - 1)))
    emissions = kappa * (vectors @ centroids.T)
    labels = np.zeros(len(vectors), dtype=np.int64)
    for a, b in spans:
        labels[a:b] = viterbi(emissions[a:b], log_stay, log_switch)
    return labels


def resegment(vectors: np.ndarray, regions: np.ndarray, weights: np.ndarray, centroids: np.ndarray, *,
              kappa: float = 12.0, switch_prob: float = 0.05, iterations: int = 2,
              min_speaker_seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels for every window (n,) and the final centroids (k, d).

    ``regions``: the speech-region index of every window (windows are in time order); decoding
    restarts at each region. ``weights``: speech seconds each window stands for. A speaker whose
    decoded frames add up to less than ``min_speaker_seconds`` is dropped (set it to 0 to keep
    every speaker, e.g. when the number of speakers is given).
    """
    n = len(vectors)
    if n == 0 or len(centroids) == 0:
        return np.zeros(n, dtype=np.int64), np.asarray(centroids)
    centroids = normalize_rows(np.asarray(centroids, dtype=np.float32))
    bounds = np.flatnonzero(np.diff(regions)) + 1
    spans = list(zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [n]])))
    for _ in range(max(0, iterations)):
        labels = _decode(vectors, centroids, spans, kappa, switch_prob)
        k = len(centroids)
        mass = np.bincount(labels, weights=weights, minlength=k)
        keep = np.flatnonzero(mass >= min_speaker_seconds) if min_speaker_seconds > 0 else np.arange(k)
        if len(keep) == 0:
            keep = np.array([int(np.argmax(mass))])
        if len(keep) < k:          # drop the speakers with too little speech, decode again without them
            centroids = centroids[keep]
            continue
        present = mass > 0
        updated = weighted_centroids(vectors, labels, weights, k)
        centroids = np.where(present[:, None], updated, centroids)
    labels = _decode(vectors, centroids, spans, kappa, switch_prob)
    return labels, centroids
