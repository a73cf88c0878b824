"""Speaker clustering of sliding-window embeddings with an automatic number of speakers.

Memory is bounded for any file length: the agglomerative step runs on at most ``max_points``
representatives (means of runs of consecutive windows of one speech region), so its distance
matrix never exceeds ``max_points``² / 2 entries (2000 points: 16 MB) however long the recording;
every window is then assigned through its representative and, later, decoded against the
centroids (resegmentation.py).

Stopping rule: *size-aware centroid similarity*. Absolute cosine thresholds on single windows do
not carry over between recordings (GE2E window cosines of different talkers range from 0.45 on clean
LibriSpeech to 0.68 in one room on one microphone; same talker 0.70-0.80), and the cosine between two
cluster *centroids* depends on how much speech each holds: a centroid estimated from ``n``
independent windows is the speaker's mean direction plus noise of variance ``sigma² / n``. For one
talker whose windows have mean pairwise cosine ``s`` (so ``sigma²/|mu|² = (1 - s)/s = rho``), two
centroids of ``nA`` and ``nB`` windows meet at an expected cosine of

    drift / sqrt((1 + rho / nA) (1 + rho / nB))

where ``drift`` < 1 allows for a voice changing between turns. Two clusters are merged when their
centroid cosine reaches ``threshold`` times that shrink factor, i.e. when they are as similar as one
talker's two halves would be. ``rho`` = 0.34 comes from LibriSpeech statistics (same-speaker
window cosine 0.745 over 80 cohort speakers, docs/diarization.md); ``n`` counts 1.6 s of speech as
one independent window. ``threshold`` (0.91) sits between the ratio of between- to within-speaker
similarity measured for different talkers (0.57-0.87, the highest for two similar synthetic voices
and the pyannote sample's two speakers) and for one talker across utterances (0.94-1.04).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiotools.speakers.vectors import l2_normalize

MAX_POINTS = 2000
THRESHOLD = 0.91
RHO = 0.34  # (1 - s) / s for the same-speaker window cosine s = 0.745 (LibriSpeech)
WINDOW_SECONDS = 1.6  # speech per independent window
MIN_CLUSTER_SECONDS = 1.0


@dataclass
class Clustering:
    labels: np.ndarray  # (n,) cluster index per input vector, 0..k-1
    centroids: np.ndarray  # (k, d) L2-normalised


def relabel(labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    return inv.astype(np.int64).reshape(-1)


def representatives(
    vectors: np.ndarray, groups: np.ndarray, weights: np.ndarray, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_points`` representatives: means of runs of ``g`` consecutive vectors in the same
    group (speech region). Returns (rep vectors, rep weights, rep index of every input vector)."""
    n = len(vectors)
    g = max(1, int(np.ceil(n / max_points)))
    if g == 1:
        return l2_normalize(vectors, dtype=None), weights.astype(np.float64), np.arange(n)
    idx = np.arange(n)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = groups[1:] != groups[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, idx, 0))
    owner = np.cumsum(new_group | (((idx - group_start) % g) == 0)) - 1
    while owner[-1] + 1 > max_points * 1.5:  # very many short regions: merge neighbouring runs pairwise
        owner = owner // 2
    k = int(owner[-1]) + 1
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, vectors * weights[:, None])
    w = np.bincount(owner, weights=weights, minlength=k)
    return l2_normalize(sums, dtype=None).astype(np.float32), w, owner


def weighted_sums(vectors: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, vectors * weights[:, None])
    return sums


def weighted_centroids(vectors: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    return l2_normalize(weighted_sums(vectors, labels, weights, k), dtype=None).astype(np.float32)


def merge_scores(
    sums: np.ndarray | None,
    mass: np.ndarray,
    threshold: float = THRESHOLD,
    rho: float = RHO,
    window_seconds: float = WINDOW_SECONDS,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """(k, k): centroid cosine / the cosine one talker's two halves of these sizes would reach
    (>= 1: as similar as one talker). Diagonal and empty clusters are -inf. ``gram`` (= sums @ sums.T)
    may be passed instead of ``sums``."""
    gram = sums @ sums.T if gram is None else gram
    norms = np.sqrt(np.maximum(np.diag(gram), 1e-24))
    cos = gram / np.outer(norms, norms)
    n_eff = np.maximum(mass / window_seconds, 1.0)
    shrink = 1.0 / np.sqrt(1.0 + rho / n_eff)
    score = cos / (threshold * np.outer(shrink, shrink))
    dead = mass <= 0
    score[dead, :] = -np.inf
    score[:, dead] = -np.inf
    np.fill_diagonal(score, -np.inf)
    return score


def cluster(
    vectors: np.ndarray,
    weights: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    *,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    threshold: float = THRESHOLD,
    rho: float = RHO,
    min_cluster_seconds: float = MIN_CLUSTER_SECONDS,
    max_points: int = MAX_POINTS,
    initial_clusters: int = 40,
) -> Clustering:
    """Cluster L2-normalised window embeddings ``vectors`` (n, d) in time order; ``weights`` = speech
    seconds each stands for; ``groups`` = the speech region of each (representatives never span two).

    1. average-linkage clustering (cosine) of the representatives into ``initial_clusters`` small,
       pure clusters;
    2. closest-first merging while the size-aware score (``merge_scores``) is >= 1, or while there
       are more clusters than ``max_speakers``; never below ``min_speakers``;
    3. clusters under ``min_cluster_seconds`` of speech are folded into their nearest neighbour.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(vectors)
    dim = vectors.shape[1] if vectors.ndim == 2 else 256
    if n == 0:
        return Clustering(np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    lo = max(1, min_speakers or 1)
    hi = max(lo, max_speakers) if max_speakers else None
    if num_speakers:
        lo = hi = int(num_speakers)

    x, _, owner = representatives(vectors, groups, weights, max_points)
    m = len(x)
    if m == 1:
        rep_labels = np.zeros(1, dtype=np.int64)
    else:
        z = linkage(x.astype(np.float64), method="average", metric="cosine")
        np.clip(z[:, 2], 0, None, out=z[:, 2])
        # over-cluster, then merge closest-first (an exact-k cut of the dendrogram would spend
        # clusters on outlier windows and leave real talkers together)
        k0 = min(m, max(initial_clusters, lo))
        rep_labels = relabel(fcluster(z, t=k0, criterion="maxclust"))
    labels = rep_labels[owner]

    k = int(labels.max()) + 1
    sums = weighted_sums(vectors, labels, np.ones(n), k)
    gram = sums @ sums.T  # kept up to date on every merge: no matrix product inside the loop
    mass = np.bincount(labels, weights=weights, minlength=k).astype(np.float64)
    parent = np.arange(k)

    def merge(a: int, b: int) -> None:
        gram[a, :] += gram[b, :]
        gram[:, a] += gram[:, b]
        gram[b, :] = 0
        gram[:, b] = 0
        mass[a] += mass[b]
        mass[b] = 0
        parent[parent == b] = a

    while True:
        alive = int((mass > 0).sum())
        if alive <= 1:
            break
        score = merge_scores(None, mass, threshold, rho, gram=gram)
        a, b = np.unravel_index(int(np.argmax(score)), score.shape)
        if hi is not None and alive > hi:
            # forced merges: fold too-small (outlier) clusters first, so the last merges are
            # decided between clusters that hold real amounts of speech
            tiny = np.flatnonzero((mass > 0) & (mass < min_cluster_seconds))
            if len(tiny) and alive > 1:
                b = int(tiny[np.argmin(mass[tiny])])
                a = int(np.argmax(score[b]))
        else:  # merging is optional from here on
            if alive <= lo:
                break
            if score[a, b] < 1.0:
                # no pair looks like one talker: fold the smallest too-small cluster, else stop
                tiny = np.flatnonzero((mass > 0) & (mass < min_cluster_seconds))
                if len(tiny) == 0:
                    break
                b = int(tiny[np.argmin(mass[tiny])])
                a = int(np.argmax(score[b]))
                if not np.isfinite(score[b, a]):
                    break
        merge(int(a), int(b))
    final = relabel(parent[labels])
    k = int(final.max()) + 1
    return Clustering(final, weighted_centroids(vectors, final, weights, k))
