"""Speaker diarisation: segmentation-3.0 windows for when and how many, CAM++ on short chunks for who.

1. segment: the segmentation-3.0 network (PyanNet) runs on 10 s windows every ``step`` seconds and
   gives, per window, up to 3 *local* speakers' activity on 16.875 ms frames (powerset argmax); the
   rounded mean over windows of the local speaker count is the number of speakers of each frame.
2. chunk: frames where one speaker speaks are split at pauses and where the windows hear the local
   speaker change, and cut into ``chunk`` s pieces every ``chunk_hop`` s.
3. embed: one CAM++ embedding per chunk (Kaldi fbank, mean-normalised).
4. cluster: agglomerative clustering of the chunk embeddings (average linkage on cosine distance,
   part of the recording's mean embedding removed first, clusters smaller than
   ``min_cluster_size`` absorbed, the count clamped to num_speakers / min_speakers / max_speakers),
   then clusters whose voices (all their speech embedded at once) are alike are merged, and at a
   lower voice similarity those whose chunks are no farther apart than one speaker's spread
   explains (a few chunks split off one voice by noise or a room).
5. assign and reconstruct: each window's local speakers are mapped to the global speakers their
   chunk-labelled frames belong to (frame by frame when a local speaker mixes two voices); each
   global speaker's activity is the mean over the windows covering a frame; stretches of 0.3 s or
   more where one speaker talks alone at a level 20 dB or more under that speaker's median are
   pauses (count 0: a room's reverberant pauses, which the network hears as speech); stretches the
   network called silence that are well over the noise floor get a second look (segmented again
   with the heard speech silenced, kept where Silero VAD agrees, given the most alike speaker: a
   quiet talker drowned by louder ones); at each frame the top-``count`` speakers are active, so
   overlapped speech carries two labels. The exclusive track keeps only the most active one.

The segmentation's local speakers are not trusted to tell two voices apart inside a window (on
short turns it often gives two similar voices one local speaker); it is trusted for when speech
happens, how many talk at once, and where a voice changes. The chunk embeddings decide who.

Inputs are 16 kHz mono float arrays at any level: a slow gain control lifts quiet stretches (a far
talker) before the segmentation, which also normalises each window; the embeddings see
mean-normalised log fbank of the original samples.
"""

from __future__ import annotations

import threading
import time
import weakref
from copy import deepcopy
from dataclasses import dataclass, field, replace
from itertools import combinations

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage

from audiotools.audio import SAMPLE_RATE
from audiotools.audio.level import apply_gain, frame_rms, gain_curve, moving_max
from audiotools.device import autocast, network_precision, release_freed_memory
from audiotools.diarize.segmentation import (
    FrameResolution,
    PyanNet,
    WindowScores,
    aggregate,
    segmentation_model,
    sliding_windows,
)
from audiotools.speakers.campplus import CAMPPlus, CampplusEncoder, embed_features, padded_batches
from audiotools.speakers.fbank import kaldi_fbank

FBANK_SHIFT = 160  # samples between fbank frames (10 ms)
FBANK_LENGTH = 400  # samples per fbank frame (25 ms)
# Past this many samples (10 min) the freed heap is given back to the system after each stage: a
# long recording's stages leave hundreds of MB of it; on a short one giving it back costs more
# (the next stage faults the pages in again: about a tenth of a 30 s file's diarisation time).
TRIM_SAMPLES = 600 * SAMPLE_RATE


def release_after_stage(num_samples: int) -> None:
    """Give a stage's freed heap back to the system when the recording is long (see TRIM_SAMPLES)."""
    if num_samples > TRIM_SAMPLES:
        release_freed_memory()


Turn = tuple[float, float, str]


@dataclass(frozen=True)
class Config:
    """Parameters of the pipeline. The defaults were chosen on a tuning set (synthetic LibriSpeech
    meetings of other seeds than the benchmark's, quiet and telephone copies of sample.wav and
    conversation.wav) and checked on the benchmark files (docs/diarization.md)."""

    step: float = 2.0  # s between segmentation windows (1.0: twice the segmentation cost, fewer counts right)
    agc_window: float = 1.5  # s; level envelope of the gain control before the segmentation
    agc_max_gain_db: float = 12.0  # most the gain control lifts a quiet stretch (0: no gain control)
    batch_size: int = 32  # windows per segmentation batch (on 2 CPU cores 32 costs half the CPU time of 8)
    embed_batch_frames: int = 4000  # fbank frames (with padding) per CAM++ batch (speed and memory only)
    # CAM++'s arithmetic. float32 gave the same figures on every benchmark file on CPUs with and without
    # bfloat16 hardware; bfloat16 (or auto: bfloat16 on a CPU with AVX512-BF16 or AMX, float32 elsewhere,
    # device.network_precision) is opt-in: on such a CPU a 1 h file 1.06-1.17x faster, short files 1.03x,
    # and 3 of 125 benchmark counts changed, 2 of them away from the truth (docs/diarization.md). The
    # segmentation always runs in float32: in bfloat16 its LSTM moved turn edges enough to change counts.
    precision: str = "float32"
    chunk: float = 1.5  # s of single-speaker speech per embedded chunk
    chunk_hop: float = 0.75  # s between chunk starts inside one run of single-speaker speech
    min_chunk: float = 0.5  # s; shorter runs of single-speaker speech get no chunk
    min_embed: float = 0.2  # s; least speech embedded at all (the fallback chunks, a local speaker)
    min_clean: float = 1.0  # s a local speaker left without a speaker needs to become one (orphans)
    centering: float = 0.65  # share of the recording's mean embedding removed before clustering
    linkage: str = "average"  # "average" (cosine) or "centroid" (Euclidean between unit vectors)
    threshold: float = 0.8  # cosine distance at which agglomerative clustering stops
    min_cluster_size: int = 5  # chunks a cluster needs to count as a speaker (at most a tenth of them)
    max_train: int = 4000  # at most this many embeddings go into the O(n^2) clustering
    kmeans_iterations: int = 3  # centroid refinement steps after the clustering
    merge_threshold: float = 0.65  # cosine similarity of two clusters' voices above which they merge
    # ... or above which they merge when their chunks cannot tell them apart: the distance between
    # the clusters' mean chunk embeddings is under ``close_separation`` times what one speaker's own
    # chunk spread gives two samples of those sizes (:func:`separation`; a split-off cluster of a
    # few chunks in noise or a room)
    close_merge_threshold: float = 0.5
    close_separation: float = 3.0
    # most chunks a cluster counts for in that ratio: a cluster's chunks overlap and share their
    # stretch of the recording, so its mean is no surer than that of about 10 s of speech; uncapped,
    # the ratio of two large clusters of one speaker grows with their sizes (0: no cap)
    separation_chunks: int = 12
    merge_seconds: float = 10.0  # s of a cluster's speech embedded as its voice (evenly spaced chunks)
    purity: float = 0.8  # share of a local speaker's labelled frames on one speaker to take it whole
    min_gap: float = 0.1  # s; shorter pauses inside one speaker's speech are bridged
    # a lone speaker's frames this many dB under that speaker's median level, in runs of at least
    # pause_gate_min s, are a pause (reverberant rooms; 0: off). Relative to each speaker's own level,
    # so a quiet talker near the noise floor keeps its speech (:func:`gate_pauses`)
    pause_gate_db: float = 20.0
    pause_gate_min: float = 0.3
    # second look (:func:`second_look`): stretches the network called silence, at least
    # second_look_min s long and second_look_margin s away from the speech it heard, whose level is
    # more than second_look_db over the noise floor, are segmented again with that speech silenced;
    # what it then hears goes to the most alike speaker (a quiet talker a louder one drowned; 0: off)
    second_look_db: float = 10.0
    second_look_min: float = 0.3
    second_look_margin: float = 0.15
    min_duration: float = 0.1  # s; shorter turns are dropped
    # s of speech (overlap included) a speaker needs to be reported; one with less joins the speaker
    # whose centroid is most alike (a second of one voice split off by noise or a room), never
    # below --num-speakers / --min-speakers (0: off)
    min_speaker_speech: float = 1.5


@dataclass
class Diarization:
    turns: list[Turn]  # overlapped speech carries two labels
    exclusive: list[Turn]  # one speaker at a time (for assigning words)
    num_speakers: int
    timings: dict[str, float] = field(default_factory=dict)  # CPU s per stage
    precision: str = "float32"  # CAM++'s arithmetic (Config.precision resolved)


def load_models(device: str = "cpu") -> tuple[PyanNet, CAMPPlus]:
    """The segmentation and embedding networks (registered, sha256-checked weights), once per device."""
    return segmentation_model(device), CampplusEncoder.get(device).model


# ---------------------------------------------------------------- 1. segmentation


def segment(model: PyanNet, samples: np.ndarray, config: Config) -> WindowScores:
    """Powerset segmentation of 10 s windows every config.step s, after the gain control (applied
    window by window, so a long recording is not copied)."""
    samples = np.asarray(samples, dtype=np.float32)
    gain = gain_curve(samples, config.agc_window, config.agc_max_gain_db)
    waveform = torch.from_numpy(np.ascontiguousarray(samples))

    def levelled(chunk: torch.Tensor, start: int) -> torch.Tensor:
        return torch.from_numpy(apply_gain(chunk.numpy(), gain, start))

    transform = None if gain is None else levelled
    scores = sliding_windows(model, waveform, step=config.step, batch_size=config.batch_size, transform=transform)
    release_after_stage(len(samples))  # the batches' buffers (4 h: about 1 GB), before anything else is allocated
    return scores


def num_output_frames(scores: WindowScores, model: PyanNet, num_samples: int) -> int:
    """Frames of the file's grid: those whose receptive field fits in the file (at least one)."""
    res = model.resolution
    covered = round(scores.starts[-1] / res.step) + scores.log_probs.shape[1]
    return min(max(res.num_frames(num_samples), 1), covered)


# ---------------------------------------------------------------- 2. speaker-homogeneous chunks


def speaker_count(scores: WindowScores, model: PyanNet, num_frames: int) -> np.ndarray:
    """(frames,) int: per file frame, the rounded mean number of local speakers over the windows
    covering it."""
    hard_count = scores.hard.sum(-1).float()
    return aggregate(hard_count, scores.starts, model.resolution, num_frames).round().numpy().astype(int)


def speaker_changes(scores: WindowScores, step: int, num_frames: int) -> np.ndarray:
    """(frames,) bool: True at frame t when the local speaker changes between frames t and t + 1.

    Counted over the windows in which exactly one local speaker is active at both frames: a change
    when at least half of them hear a different local speaker at t + 1 than at t. (Which local
    speaker a window calls a voice means nothing across windows, but inside one window a change of
    local speaker is a change of voice.)"""
    hard = scores.hard.numpy()
    frames = hard.shape[1]
    changed = np.zeros(num_frames)
    counted = np.zeros(num_frames)
    for k, start in enumerate(scores.starts):
        offset = round(start / step)
        span = max(0, min(frames, num_frames - offset))
        if span < 2:
            continue
        h = hard[k, :span]
        one = h.sum(1) == 1
        who = h.argmax(1)
        both = one[:-1] & one[1:]
        changed[offset : offset + span - 1] += both & (who[:-1] != who[1:])
        counted[offset : offset + span - 1] += both
    return (counted > 0) & (changed >= 0.5 * counted)


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def cut_run(start: int, stop: int, length: int, hop: int) -> list[tuple[int, int]]:
    """Pieces of ``length`` frames every ``hop`` frames covering [start, stop); a remainder shorter
    than half a hop joins the last piece. A run no longer than ``length`` is one piece."""
    if stop - start <= length:
        return [(start, stop)]
    pieces, a = [], start
    while True:
        b = min(a + length, stop)
        if stop - b < hop // 2:
            b = stop
        pieces.append((a, b))
        if b >= stop:
            return pieces
        a += hop


def speech_chunks(count: np.ndarray, changes: np.ndarray, frame_s: float, config: Config) -> list[tuple[int, int]]:
    """Frame ranges [a, b) of single-speaker speech to embed: runs of frames where one speaker speaks,
    split at pauses and at speaker changes, cut into ``chunk`` s pieces every ``chunk_hop`` s; runs
    shorter than ``min_chunk`` s are left out. When no run is that long (a short or overlapped
    recording), every run of speech of at least ``min_embed`` s is one chunk."""
    length, hop = max(1, round(config.chunk / frame_s)), max(1, round(config.chunk_hop / frame_s))
    shortest = max(1, round(config.min_chunk / frame_s))
    chunks: list[tuple[int, int]] = []
    for a, b in runs_of(count == 1):
        cuts = [a] + [int(t) + 1 for t in np.flatnonzero(changes[a : b - 1]) + a] + [b]
        for s, e in zip(cuts[:-1], cuts[1:]):
            if e - s >= shortest:
                chunks += cut_run(s, e, length, hop)
    if not chunks:
        least = max(1, round(config.min_embed / frame_s))
        chunks = [(a, b) for a, b in runs_of(count >= 1) if b - a >= least]
    return chunks


# ---------------------------------------------------------------- 3. embeddings


class FileFbank:
    """The Kaldi fbank of a whole recording, computed where it is read: ``fbank[a:b]`` (frames a to
    b) and ``fbank[mask]`` (the frames where a (frames,) bool tensor is True, in order) are those
    frames of the file's fbank, frame f covering samples [160 f, 160 f + 400), without holding all
    of it (80 floats per 10 ms: 115 MB per audio hour). Every frame depends on its own 400 samples
    only, so a piece equals the same frames of the whole; computing a frame twice (chunks overlap)
    costs about 1 s per audio hour, against CAM++'s minutes."""

    def __init__(self, samples: np.ndarray, device: str | torch.device) -> None:
        self.samples = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))  # a view, no copy
        self.device = torch.device(device)
        n = len(self.samples)
        self.num_frames = 1 + (n - FBANK_LENGTH) // FBANK_SHIFT if n >= FBANK_LENGTH else 0

    def __len__(self) -> int:
        return self.num_frames

    def frames(self, first: int, stop: int) -> torch.Tensor:
        """Frames [first, stop) (clipped to the file), (frames, 80) on the device."""
        first, stop = max(first, 0), min(stop, self.num_frames)
        if stop <= first:
            return torch.zeros((0, 80), device=self.device)
        piece = self.samples[first * FBANK_SHIFT : (stop - 1) * FBANK_SHIFT + FBANK_LENGTH]
        return kaldi_fbank(piece.to(self.device))[0][0]

    def __getitem__(self, key: slice | torch.Tensor) -> torch.Tensor:
        if isinstance(key, slice):
            first, stop, step = key.indices(self.num_frames)
            if step != 1:
                raise ValueError("FileFbank slices take every frame (step 1)")
            return self.frames(first, stop)
        runs = runs_of(key.cpu().numpy())
        return torch.cat([self.frames(a, b) for a, b in runs]) if runs else self.frames(0, 0)


def fbank_span(first: int, stop: int, model: PyanNet, num_fbank: int) -> tuple[int, int]:
    """Fbank frames [f0, f1) whose centres fall in segmentation frames [first, stop) of the file grid
    (at least one frame)."""
    res = model.resolution
    begin = first * res.step + (res.duration - res.step) / 2  # samples
    end = (stop - 1) * res.step + (res.duration + res.step) / 2
    f0 = max(0, round((begin - FBANK_LENGTH / 2) / FBANK_SHIFT))
    f1 = min(num_fbank, round((end - FBANK_LENGTH / 2) / FBANK_SHIFT))
    return min(f0, max(num_fbank - 1, 0)), max(f1, min(f0 + 1, num_fbank))


_cast_models: weakref.WeakKeyDictionary[CAMPPlus, CAMPPlus] = weakref.WeakKeyDictionary()  # model -> its copy
_cast_lock = threading.Lock()


def bfloat16_weights(model: CAMPPlus) -> CAMPPlus:
    """A copy of ``model`` (made once per model) whose convolutions hold their weights in bfloat16,
    the values autocast would cast them to; batch norms keep float32 parameters, as under autocast.
    Autocast casts a float32 weight again on every call (its cache lives only as long as the
    context), which cost about 20 ms per CAM++ call here, more than a short input's whole forward."""
    with _cast_lock:
        if model not in _cast_models:
            copy = deepcopy(model)
            for module in copy.modules():
                if isinstance(module, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Linear):
                    module.to(torch.bfloat16)
            _cast_models[model] = copy
        return _cast_models[model]


@torch.inference_mode()
def embed_batch(model: CAMPPlus, pieces: list[torch.Tensor], precision: str = "float32") -> torch.Tensor:
    """Unit CAM++ embeddings (float32) of fbank pieces of different lengths, (n, dim); the network runs
    in ``precision`` (``auto`` resolved by :func:`audiotools.device.network_precision`)."""
    lengths = torch.tensor([len(p) for p in pieces])
    feats = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True)
    device = str(feats.device)
    precision = network_precision(precision, device)
    if precision == "bfloat16":
        model = bfloat16_weights(model)
    with autocast(precision, device):
        vectors = embed_features(model, feats, lengths.to(feats.device))
    return torch.nn.functional.normalize(vectors.float(), dim=-1).cpu()


def embed_chunks(
    model: CAMPPlus, seg_model: PyanNet, fbank: FileFbank, chunks: list[tuple[int, int]], config: Config
) -> np.ndarray:
    """One unit CAM++ embedding per chunk, (chunks, dim); the fbank pieces are cut batch by batch."""
    spans = [fbank_span(a, b, seg_model, len(fbank)) for a, b in chunks]
    out = np.zeros((len(chunks), model.xvector.embedding_size), dtype=np.float32)
    order = np.argsort([f1 - f0 for f0, f1 in spans], kind="stable")
    for part in padded_batches([spans[i][1] - spans[i][0] for i in order], max_frames=config.embed_batch_frames):
        idx = order[part]
        out[idx] = embed_batch(model, [fbank[spans[i][0] : spans[i][1]] for i in idx], config.precision).numpy()
    return out


# ---------------------------------------------------------------- 4. clustering


def target_range(num_speakers: int | None, min_speakers: int | None, max_speakers: int | None) -> tuple[int, int]:
    """Allowed number of speakers, (low, high)."""
    if num_speakers is not None:
        return num_speakers, num_speakers
    low = max(1, min_speakers or 1)
    return low, max(low, max_speakers or 10_000)


def centroids_of(x: np.ndarray, labels: np.ndarray, keep: list[int]) -> np.ndarray:
    """Unit mean vector of each kept cluster, (len(keep), dim)."""
    means = np.stack([x[labels == c].mean(0) for c in keep])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def cut_tree(tree: np.ndarray, num_leaves: int, distance: float, min_size: int, low: int, high: int) -> np.ndarray:
    """Flat clusters of the dendrogram: cut at ``distance``, unless the number of large clusters falls
    outside [low, high]; then the cut that brings it nearest to the range."""
    labels = fcluster(tree, t=distance, criterion="distance")
    large = int(np.sum(np.bincount(labels) >= min_size))
    if low <= large <= high:
        return labels
    best, best_gap = labels, abs(large - np.clip(large, low, high))
    for n in range(1, num_leaves + 1):
        cut = fcluster(tree, t=n, criterion="maxclust")
        count = int(np.sum(np.bincount(cut) >= min_size))
        gap = abs(count - np.clip(count, low, high))
        if gap < best_gap:
            best, best_gap = cut, gap
        if gap == 0 or count > high:
            break
    return best


def cluster(x: np.ndarray, config: Config, low: int = 1, high: int = 10_000) -> np.ndarray:
    """Unit centroids (speakers, dim) of the unit embeddings x (n, dim).

    Agglomerative clustering (``config.linkage``: average linkage on cosine distance, or centroid
    linkage on the Euclidean distance between unit vectors, sqrt(2 * cosine distance)), large
    clusters kept (the small ones are absorbed by the later nearest-centroid steps), the
    count clamped to [low, high] (largest clusters first when there are too many large ones), then
    k-means iterations with cosine similarity.
    """
    if len(x) == 0:
        return np.zeros((0, x.shape[1]), dtype=np.float32)
    if len(x) == 1:
        return x.copy()
    if len(x) > config.max_train:
        x = x[np.linspace(0, len(x) - 1, config.max_train).round().astype(int)]
    min_size = min(config.min_cluster_size, max(2, len(x) // 10))
    if config.linkage == "centroid":
        tree, distance = linkage(x, method="centroid", metric="euclidean"), np.sqrt(2 * config.threshold)
    else:
        tree, distance = linkage(x, method=config.linkage, metric="cosine"), config.threshold
    labels = cut_tree(tree, len(x), float(distance), min_size, low, high)
    sizes = np.bincount(labels)
    order = [c for c in np.argsort(-sizes) if sizes[c] > 0]
    keep = [c for c in order if sizes[c] >= min_size][:high] or order[:1]
    if len(keep) < low:
        keep = order[:low]
    centroids = centroids_of(x, labels, keep)
    for _ in range(config.kmeans_iterations):
        nearest = np.argmax(x @ centroids.T, axis=1)
        filled = [c for c in range(len(centroids)) if np.any(nearest == c)]
        centroids = centroids_of(x, nearest, filled)
    return centroids


def centre(vectors: np.ndarray, mean: np.ndarray, weight: float) -> np.ndarray:
    """Unit vectors of ``vectors - weight * mean`` (NaN rows stay NaN).

    Removing part of the recording's mean embedding takes out what all its speakers share (channel,
    room, band limits), which otherwise raises every similarity in, e.g., telephone speech.
    """
    shifted = vectors - weight * mean
    return shifted / np.linalg.norm(shifted, axis=-1, keepdims=True)


def cluster_voice(
    model: CAMPPlus,
    seg_model: PyanNet,
    fbank: FileFbank,
    chunks: list[tuple[int, int]],
    members: np.ndarray,
    config: Config,
) -> np.ndarray:
    """Unit CAM++ embedding of a cluster's speech: its chunks (``members``, indices) embedded as one
    utterance, at most ``merge_seconds`` of them, evenly spaced in time."""
    per_chunk = [fbank_span(*chunks[i], seg_model, len(fbank)) for i in members]
    limit = config.merge_seconds * SAMPLE_RATE / FBANK_SHIFT
    total = sum(f1 - f0 for f0, f1 in per_chunk)
    if total > limit:
        take = max(1, int(len(per_chunk) * limit / total))
        per_chunk = [per_chunk[i] for i in np.linspace(0, len(per_chunk) - 1, take).round().astype(int)]
    frames = torch.zeros(len(fbank), dtype=torch.bool)
    for f0, f1 in per_chunk:
        frames[f0:f1] = True
    return embed_batch(model, [fbank[frames]], config.precision).numpy()[0]


def separation(x: np.ndarray, labels: np.ndarray, max_chunks: int = 0) -> np.ndarray:
    """(clusters, clusters): squared distance between two clusters' mean embeddings over what it
    would be on average if their chunks were one speaker's (the pooled within-cluster variance of
    the recording's chunks times 1/n_i + 1/n_j). Two clusters of two chunks need their means far
    apart to be two people; two of forty do not. ``max_chunks`` > 0 caps each n: a cluster's
    chunks overlap and come from one stretch of the recording, so they are not independent
    samples, and uncapped the ratio of two large clusters of one speaker grows with their sizes."""
    k = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    means = np.stack([x[labels == c].mean(0) if sizes[c] else np.zeros(x.shape[1]) for c in range(k)])
    scatter = float(np.sum((x - means[labels]) ** 2))
    variance = max(scatter / max(len(x) - k, 1), 1e-9)  # summed over dimensions
    d2 = np.sum((means[:, None] - means[None]) ** 2, axis=-1)
    n = np.minimum(sizes, max_chunks) if max_chunks > 0 else sizes
    with np.errstate(divide="ignore"):
        return d2 / (variance * (1 / n[:, None] + 1 / n[None]))


def merge_clusters(
    labels: np.ndarray,
    voices: list[np.ndarray],
    revoice,
    threshold: float,
    low: int,
    *,
    x: np.ndarray | None = None,
    close_threshold: float = 1.0,
    close_separation: float = 0.0,
    separation_chunks: int = 0,
) -> tuple[np.ndarray, int]:
    """Merge, two at a time, the clusters whose voices (embeddings of their whole speech) are most
    alike while more than ``low`` clusters remain: a pair merges when that cosine similarity exceeds
    ``threshold``, or exceeds ``close_threshold`` while the clusters' chunk embeddings ``x`` are
    less than ``close_separation`` apart (:func:`separation`, each cluster counting for at most
    ``separation_chunks`` chunks; 0: no cap). ``revoice(members)`` embeds a merged cluster. Returns
    labels 0 .. k-1 and k."""
    voices = list(voices)
    while len(voices) > max(low, 1):
        v = np.stack(voices)
        sims = v @ v.T
        allowed = sims > threshold
        if x is not None and close_separation > 0:
            allowed |= (sims > close_threshold) & (separation(x, labels, separation_chunks) < close_separation)
        np.fill_diagonal(allowed, False)
        if not allowed.any():
            break
        i, j = np.unravel_index(int(np.argmax(np.where(allowed, sims, -np.inf))), sims.shape)
        i, j = min(i, j), max(i, j)
        labels = np.where(labels == j, i, labels)
        labels = np.where(labels > j, labels - 1, labels)
        del voices[j]
        voices[i] = revoice(np.flatnonzero(labels == i))
    return labels, len(voices)


def cluster_chunks(
    model: CAMPPlus,
    seg_model: PyanNet,
    fbank: FileFbank,
    chunks: list[tuple[int, int]],
    vectors: np.ndarray,
    config: Config,
    low: int,
    high: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Speaker label of every chunk (chunks,) and the speakers' centroids (speakers, dim), centred.

    Agglomerative clustering of the centred chunk embeddings (:func:`cluster`), each chunk labelled
    with its nearest centroid; then clusters whose voices, each embedded from all of its speech,
    have a cosine similarity above ``merge_threshold`` are merged (one speaker split in two by the
    room or the channel), or above ``close_merge_threshold`` when their chunks are within
    ``close_separation`` (:func:`separation`), never below ``low`` speakers."""
    mean = vectors.mean(0)
    x = centre(vectors, mean, config.centering)
    centroids = cluster(x, config, low, high)
    labels = np.argmax(x @ centroids.T, axis=1)
    used = np.unique(labels)  # a centroid no chunk is nearest to is no speaker
    labels = np.searchsorted(used, labels)

    def voice(members: np.ndarray) -> np.ndarray:
        return cluster_voice(model, seg_model, fbank, chunks, members, config)

    if len(used) > max(low, 1) and config.merge_threshold < 1.0:
        voices = [voice(np.flatnonzero(labels == c)) for c in range(len(used))]
        labels, _ = merge_clusters(
            labels,
            voices,
            voice,
            config.merge_threshold,
            low,
            x=x,
            close_threshold=config.close_merge_threshold,
            close_separation=config.close_separation,
            separation_chunks=config.separation_chunks,
        )
    return labels, centroids_of(x, labels, list(range(labels.max() + 1)))


# ---------------------------------------------------------------- 5. assignment and reconstruction


def chunk_votes(chunks: list[tuple[int, int]], labels: np.ndarray, num_frames: int) -> np.ndarray:
    """(frames,) int: per file frame, the speaker of the chunk whose centre is nearest among the
    chunks covering it; -1 where no chunk does."""
    out = np.full(num_frames, -1, dtype=np.int32)
    nearest = np.full(num_frames, np.inf, dtype=np.float32)
    for (a, b), c in zip(chunks, labels):
        b = min(b, num_frames)
        distance = np.abs(np.arange(a, b) - (a + b - 1) / 2)
        closer = distance < nearest[a:b]
        nearest[a:b][closer] = distance[closer]
        out[a:b][closer] = c
    return out


def orphan_voice(
    model: CAMPPlus,
    seg_model: PyanNet,
    fbank: FileFbank,
    scores: WindowScores,
    window: int,
    speaker: int,
    num_frames: int,
    precision: str = "float32",
) -> np.ndarray | None:
    """Embedding of one local speaker of one window, from the frames where it speaks alone when they
    amount to 0.2 s, else all its frames; None when it speaks less than that."""
    res = seg_model.resolution
    offset = round(scores.starts[window] / res.step)
    hard = scores.hard[window].numpy()
    span = max(0, min(hard.shape[0], num_frames - offset))
    active = hard[:span, speaker] > 0
    alone = active & (hard[:span].sum(1) == 1)
    least = round(0.2 / res.step_s)
    for mask in (alone, active):
        if mask.sum() >= least:
            frames = torch.zeros(len(fbank), dtype=torch.bool)
            for a, b in runs_of(mask):
                f0, f1 = fbank_span(offset + a, offset + b, seg_model, len(fbank))
                frames[f0:f1] = True
            return embed_batch(model, [fbank[frames]], precision).numpy()[0]
    return None


@dataclass
class LocalSpeaker:
    """How one active local speaker of one window maps to a global speaker."""

    speaker: int  # global speaker; -1 when unassigned
    mixed: bool = False  # its frames follow the chunk labels one by one (unlabelled ones: ``speaker``)
    votes: float = 0.0  # labelled frames of ``speaker`` it covers


def assign_local_speakers(
    scores: WindowScores, frame_labels: np.ndarray, num_clusters: int, frame_step: int, config: Config
) -> list[dict[int, LocalSpeaker]]:
    """Per window, how each active local speaker's frames map to global speakers.

    A local speaker whose labelled frames (``frame_labels``, from the chunks) fall at least
    ``purity`` on one speaker is that speaker in this window: its whole activity, with the
    segmentation's frame-exact boundaries and its overlapped frames, goes to that speaker. One that
    mixes voices (the network gave two similar voices one local speaker) follows the chunk labels
    frame by frame, its unlabelled frames going to its majority speaker. A local speaker with no
    labelled frame is unassigned (see :func:`resolve_orphans`). Two local speakers that talk at the
    same time for ``min_embed`` s are never the same speaker: the one with fewer votes for it is
    unassigned.
    """
    hard = scores.hard.numpy()
    frames = hard.shape[1]
    num_frames = len(frame_labels)
    frame_s = frame_step / SAMPLE_RATE
    out: list[dict[int, LocalSpeaker]] = []
    for start in scores.starts:
        offset = round(start / frame_step)
        span = max(0, min(frames, num_frames - offset))
        h = hard[len(out), :span]
        mapping: dict[int, LocalSpeaker] = {}
        for s in np.flatnonzero(h.any(0)).tolist():
            lab = frame_labels[offset : offset + span][(h[:, s] > 0)]
            co = np.bincount(lab[lab >= 0], minlength=max(num_clusters, 1)).astype(np.float32)
            total = float(co.sum())
            if total == 0:
                mapping[s] = LocalSpeaker(-1)
            else:
                best = int(co.argmax())
                mapping[s] = LocalSpeaker(best, bool(co[best] < config.purity * total), float(co[best]))
        for s, r in combinations(sorted(mapping), 2):  # simultaneous local speakers are different people
            a, b = mapping[s], mapping[r]
            if a.speaker < 0 or a.speaker != b.speaker:
                continue
            if np.sum(h[:, s] * h[:, r]) * frame_s >= config.min_embed:
                mapping[s if a.votes < b.votes else r] = LocalSpeaker(-1)
        out.append(mapping)
    return out


def resolve_orphans(
    mappings: list[dict[int, LocalSpeaker]],
    scores: WindowScores,
    centroids: np.ndarray,
    embed_local,
    frame_s: float,
    config: Config,
    high: int,
) -> np.ndarray:
    """Give the unassigned local speakers that speak at least ``min_clean`` s a global speaker.

    ``embed_local(window, speaker)`` gives its centred embedding (or None). Less similar to every
    centroid than the clustering's own cut (1 - ``threshold``), it is a new speaker (while there are
    fewer than ``high``); otherwise it takes the most similar speaker not already speaking in that
    window, or the most similar one when all are (its speech is never dropped for want of a
    speaker). This finds a voice heard only under another one (two people talking at once
    throughout a short call). Returns the centroids with any new speakers appended; ``mappings`` is
    updated in place."""
    hard = scores.hard.numpy()
    for k, mapping in enumerate(mappings):
        for s, local in mapping.items():
            if local.speaker >= 0 or hard[k, :, s].sum() * frame_s < config.min_clean:
                continue
            v = embed_local(k, s)
            if v is None:
                continue
            sims = centroids @ v if len(centroids) else np.zeros(0)
            if (len(sims) == 0 or sims.max() < 1.0 - config.threshold) and len(centroids) < high:
                centroids = np.vstack([centroids, v[None]]) if len(centroids) else v[None]
                mapping[s] = LocalSpeaker(len(centroids) - 1)
                continue
            taken = {m.speaker for m in mapping.values()}
            free = [int(c) for c in np.argsort(-sims) if c not in taken]
            # every speaker allowed is already talking in this window (--max-speakers 1, or more
            # voices than speakers): the most similar one takes this speech too, rather than none
            mapping[s] = LocalSpeaker(free[0] if free else int(np.argmax(sims)))
    return centroids


def speaker_activity(
    scores: WindowScores,
    mappings: list[dict[int, LocalSpeaker]],
    frame_labels: np.ndarray,
    num_clusters: int,
    frame_step: int,
) -> np.ndarray:
    """(frames, speakers): per file frame, the mean over the windows covering it of each global
    speaker's activity, given every window's local-to-global mapping."""
    hard = scores.hard.numpy()
    frames = hard.shape[1]
    num_frames = len(frame_labels)
    activity = np.zeros((num_frames, max(num_clusters, 1)), dtype=np.float32)
    covered = np.zeros(num_frames, dtype=np.float32)
    for k, (start, mapping) in enumerate(zip(scores.starts, mappings)):
        offset = round(start / frame_step)
        span = max(0, min(frames, num_frames - offset))
        covered[offset : offset + span] += 1
        for s, local in mapping.items():
            on = hard[k, :span, s] > 0
            if local.speaker < 0:
                continue
            if not local.mixed:
                activity[offset : offset + span, local.speaker] += on
                continue
            lab = frame_labels[offset : offset + span]
            lab = np.where(lab >= 0, lab, local.speaker)
            idx = np.flatnonzero(on)
            np.add.at(activity, (offset + idx, lab[idx]), 1.0)
    activity /= np.maximum(covered, 1)[:, None]
    return activity[:, :num_clusters]


def absorb_brief_speakers(activity: np.ndarray, count: np.ndarray, centroids: np.ndarray, least: int, low: int) -> None:
    """Speakers with fewer than ``least`` frames of speech (overlap included) join, briefest first,
    the speaker whose centroid is most alike, while more than ``low`` speakers have any speech: their
    activity goes to that speaker's column (the larger of the two per frame) and theirs is zeroed,
    in place (no copy of a long recording's activity)."""
    frames = top_speakers(activity, count).sum(0).astype(np.int64) if least > 0 else np.zeros(0)
    speaking = [int(c) for c in np.flatnonzero(frames)]
    for i in sorted(speaking, key=lambda c: frames[c]):
        if frames[i] >= least or len(speaking) <= max(low, 1):
            return
        speaking.remove(i)
        j = speaking[int(np.argmax(centroids[speaking] @ centroids[i]))]
        np.maximum(activity[:, j], activity[:, i], out=activity[:, j])
        activity[:, i] = 0.0
        frames[j] += frames[i]


def top_speakers(activity: np.ndarray, count: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """(frames, clusters) 0/1: at each frame the ``count`` most active speakers with activity > 0
    (ties: the lower cluster first). Ranked a block of frames at a time: the int64 rank arrays of a
    4 h recording with 64 clusters would take 0.4 GB each."""
    out = np.empty(activity.shape, dtype=bool)
    for a in range(0, len(activity), block):
        act = activity[a : a + block]
        ranks = np.argsort(np.argsort(-act, axis=1, kind="stable"), axis=1, kind="stable")
        out[a : a + block] = (ranks < count[a : a + block, None]) & (act > 0)
    return out


def runs_to_turns(
    binary: np.ndarray, frame_step: float, frame_offset: float, min_gap: float, min_duration: float
) -> list[tuple[float, float, int]]:
    """(start, end, cluster) of each run of 1s; frame i spans frame_offset + i * frame_step +- step / 2."""
    turns: list[tuple[float, float, int]] = []
    for c in range(binary.shape[1]):
        edges = np.diff(np.concatenate([[0], binary[:, c].astype(np.int8), [0]]))
        spans: list[list[float]] = []
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            start = frame_offset + (a - 0.5) * frame_step
            end = frame_offset + (b - 0.5) * frame_step
            if spans and start - spans[-1][1] < min_gap:
                spans[-1][1] = end
            else:
                spans.append([max(start, 0.0), end])
        turns += [(a, b, c) for a, b in spans if b - a >= min_duration]
    return sorted(turns)


def label_turns(turns: list[tuple[float, float, int]], names: dict[int, str]) -> list[Turn]:
    return [(round(float(a), 3), round(float(b), 3), names[c]) for a, b, c in turns]


def first_appearance_names(turns: list[tuple[float, float, int]]) -> dict[int, str]:
    """SPEAKER_00, SPEAKER_01, ... in order of each cluster's first turn."""
    names: dict[int, str] = {}
    for _, _, c in sorted(turns):
        names.setdefault(c, f"SPEAKER_{len(names):02d}")
    return names


def reconstruct(
    activity: np.ndarray, count: np.ndarray, model: PyanNet, config: Config
) -> tuple[list[Turn], list[Turn]]:
    """(turns with overlap, exclusive turns) from the speakers' activity (frames, speakers) and the
    number of speakers per frame, labelled in order of first appearance."""
    res = model.resolution
    offset = res.duration_s / 2
    turns = runs_to_turns(top_speakers(activity, count), res.step_s, offset, config.min_gap, config.min_duration)
    # frame-exact (no bridging or dropping per speaker), so two speakers never overlap in it
    exclusive = runs_to_turns(top_speakers(activity, np.minimum(count, 1)), res.step_s, offset, 0.0, 0.0)
    names = first_appearance_names(turns)
    exclusive = [t for t in exclusive if t[2] in names]
    return label_turns(turns, names), label_turns(exclusive, names)


def level_envelope(
    samples: np.ndarray, res: FrameResolution, num_frames: int, rms: np.ndarray | None = None
) -> np.ndarray:
    """(frames,) dB: per segmentation frame, the loudest 10 ms RMS within 0.1 s of its centre
    (``rms``: the samples' 10 ms RMS when the caller has it already)."""
    frame = SAMPLE_RATE // 100
    rms = frame_rms(samples, frame) if rms is None else rms
    if len(rms) == 0:
        return np.full(num_frames, -200.0)
    peaks = moving_max(rms, 21)
    centres = (np.arange(num_frames) * res.step + res.duration / 2) // frame
    return 20 * np.log10(peaks[np.clip(centres.astype(int), 0, len(peaks) - 1)])


def gate_pauses(
    samples: np.ndarray, activity: np.ndarray, count: np.ndarray, res: FrameResolution, db: float, least: float
) -> np.ndarray:
    """``count`` with 0 over the pauses the segmentation hears as speech: runs of at least ``least`` s
    of frames where one speaker talks alone (count 1, that speaker the most active) and the level
    (:func:`level_envelope`) is more than ``db`` under that speaker's median level over such frames.

    In a reverberant room the network keeps a talker's activity across pauses whose level is the
    room's noise floor; measured against each speaker's own level, not the file's floor, the gate
    leaves a quiet talker's speech alone: its pauses lie less than ``db`` under its speech."""
    if db <= 0 or activity.shape[1] == 0 or not np.any(count == 1):
        return count
    level = level_envelope(samples, res, len(count))
    top = np.argmax(activity, axis=1)
    alone = count == 1
    quiet = np.zeros(len(count), dtype=bool)
    for c in range(activity.shape[1]):
        mine = alone & (top == c)
        if mine.any():
            quiet |= mine & (level < np.median(level[mine]) - db)
    shortest = round(least / res.step_s)
    out = count.copy()
    for a, b in runs_of(quiet):
        if b - a >= shortest:
            out[a:b] = 0
    return out


def unexplained_stretches(
    samples: np.ndarray, count: np.ndarray, res: FrameResolution, db: float, least: float, margin: float
) -> list[tuple[int, int]]:
    """Frame ranges [a, b) of at least ``least`` s where ``count`` is 0, every frame at least
    ``margin`` s from a frame with speech, at a level (:func:`level_envelope`) more than ``db`` over
    the recording's noise floor (10th percentile of its 10 ms RMS): sound the network did not call
    speech. In a recording that is nearly all speech the floor is speech, and little qualifies."""
    rms = frame_rms(samples, SAMPLE_RATE // 100)
    if len(rms) == 0 or db <= 0:
        return []
    floor = 20 * np.log10(np.percentile(rms, 10))
    level = level_envelope(samples, res, len(count), rms)
    speech = count > 0
    near = moving_max(speech, 2 * round(margin / res.step_s) + 1).astype(bool)
    quiet_sound = ~near & (level > floor + db)
    shortest = max(1, round(least / res.step_s))
    return [(a, b) for a, b in runs_of(quiet_sound) if b - a >= shortest]


def silero_hears(samples: np.ndarray, first: int, stop: int, res: FrameResolution, margin: float = 0.2) -> np.ndarray:
    """(stop - first,) bool: the segmentation frames [first, stop) where Silero VAD, the
    transcription's detector with its default options, hears speech (P >= 0.5) within ``margin`` s.
    Run on those frames' samples and 1 s around them only."""
    from audiotools.vad.silero import FRAME_SAMPLES, speech_probabilities

    off = (res.duration - res.step) // 2
    s0 = max(0, first * res.step + off - SAMPLE_RATE)
    s1 = min(len(samples), stop * res.step + off + SAMPLE_RATE)
    heard = speech_probabilities(samples[s0:s1]) >= 0.5
    if len(heard) == 0:
        return np.zeros(stop - first, dtype=bool)
    heard = moving_max(heard, 2 * round(margin * SAMPLE_RATE / FRAME_SAMPLES) + 1).astype(bool)
    centres = np.arange(first, stop) * res.step + res.duration // 2
    return heard[np.clip((centres - s0) // FRAME_SAMPLES, 0, len(heard) - 1)]


def second_look(
    samples: np.ndarray,
    seg_model: PyanNet,
    emb_model: CAMPPlus,
    fbank: FileFbank,
    activity: np.ndarray,
    count: np.ndarray,
    centroids: np.ndarray,
    mean: np.ndarray,
    config: Config,
) -> float:
    """Speech the segmentation missed beside louder speech, found and given a speaker in place
    (``activity`` and ``count``); returns the seconds added.

    A quiet talker (far from the microphone, the quiet side of a call) who speaks between louder
    ones can be missed by every window: each window is normalised as a whole, and the network treats
    the quiet voice as background. Each stretch :func:`unexplained_stretches` finds (split into 8 s
    pieces) is segmented once more in a 10 s window centred on it, with every sample the network
    already called speech (±0.1 s) set to zero, so the window's normalisation is the quiet voice's.
    Silero VAD (:func:`silero_hears`), a second and independent detector, listens first: a stretch
    where it hears no speech gets no window, and of the frames a window calls speech only those
    where Silero hears speech too are kept, so that a door or a cough lifted by the silencing is not
    taken for a voice. Those frames, when they amount to ``second_look_min`` s, are embedded with
    CAM++ and go to the speaker whose centroid is most alike, when it is at least as alike as the
    clustering's own cut (1 - ``threshold``); a voice like none of them stays unlabelled rather than
    be given to the wrong speaker. A recording without such stretches costs nothing more."""
    res = seg_model.resolution
    stretches = unexplained_stretches(
        samples, count, res, config.second_look_db, config.second_look_min, config.second_look_margin
    )
    if not stretches or len(centroids) == 0:
        return 0.0
    num_frames, step, window = len(count), res.step, round(10.0 * seg_model.sample_rate)
    silenced = moving_max(count > 0, 2 * round(0.1 / res.step_s) + 1).astype(bool)
    piece = round(8.0 / res.step_s)
    jobs = []  # (first window frame, stretch frames a, b, where Silero hears speech in them)
    for a, b in stretches:
        for a2 in range(a, b, piece):
            b2 = min(b, a2 + piece)
            # Silero first (cheap): a stretch where it hears no speech is not segmented again
            agrees = silero_hears(samples, a2, b2, res)
            if agrees.sum() * res.step_s < config.second_look_min:
                continue
            middle = (a2 + b2) / 2 * step + res.duration / 2
            first = round(max(0.0, min(len(samples) - window, middle - window / 2)) / step)
            jobs.append((first, a2, b2, agrees))
    device = next(seg_model.parameters()).device
    found: list[tuple[int, np.ndarray]] = []  # (first frame, speech of the frames from there)
    for k in range(0, len(jobs), config.batch_size):
        batch = []
        for first, *_ in jobs[k : k + config.batch_size]:
            start = first * step
            x = np.zeros(window, dtype=np.float32)
            chunk = samples[start : start + window]
            x[: len(chunk)] = chunk
            # zero the samples of every frame already called speech (frame f owns the step samples
            # around its centre)
            owner = (np.arange(start, start + window) - (res.duration - step) // 2) // step
            x[silenced[np.clip(owner, 0, num_frames - 1)]] = 0.0
            batch.append(x)
        with torch.inference_mode():
            log_probs = seg_model(torch.from_numpy(np.stack(batch))[:, None].to(device)).float().cpu()
        speech = (log_probs.argmax(-1) != 0).numpy()
        for (first, a2, b2, agrees), heard in zip(jobs[k : k + config.batch_size], speech):
            lo, hi = max(a2, first), min(b2, first + len(heard), num_frames)
            frames = heard[lo - first : hi - first].astype(bool) & agrees[lo - a2 : hi - a2]
            if frames.sum() * res.step_s >= config.second_look_min:
                found.append((lo, frames))
    added = 0
    for lo, frames in found:
        mask = torch.zeros(len(fbank), dtype=torch.bool)
        for a, b in runs_of(frames):
            f0, f1 = fbank_span(lo + a, lo + b, seg_model, len(fbank))
            mask[f0:f1] = True
        voice = centre(embed_batch(emb_model, [fbank[mask]], config.precision).numpy()[0], mean, config.centering)
        sims = centroids @ voice
        best = int(np.argmax(sims))
        if sims[best] < 1.0 - config.threshold:
            continue
        index = lo + np.flatnonzero(frames)
        activity[index] = 0.0
        activity[index, best] = 1.0
        count[index] = 1
        added += len(index)
    return added * res.step_s


def speech_regions(
    samples: np.ndarray, device: str = "cpu", config: Config = Config(), min_gap: float = 0.1
) -> list[tuple[float, float]]:
    """Speech regions (start, end) s as segmentation-3.0 hears them, after the gain control."""
    if len(samples) < FBANK_LENGTH or not np.any(samples):
        return []
    model = segmentation_model(device)
    scores = segment(model, samples, config)
    res = model.resolution
    speech = speaker_count(scores, model, num_output_frames(scores, model, len(samples))) >= 1
    runs = runs_to_turns(speech[:, None], res.step_s, res.duration_s / 2, min_gap, 0.0)
    return [(round(float(a), 3), round(float(b), 3)) for a, b, _ in runs]


# ---------------------------------------------------------------- pipeline


def diarize_samples(
    samples: np.ndarray,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    device: str = "cpu",
    config: Config = Config(),
) -> Diarization:
    """Diarise 16 kHz mono samples; returns both tracks, the speaker count, CPU time per stage and
    the precision CAM++ ran in (``config.precision`` resolved for ``device``)."""
    config = replace(config, precision=network_precision(config.precision, device))
    if len(samples) < FBANK_LENGTH or not np.any(samples):
        return Diarization([], [], 0, {}, config.precision)
    seg_model, emb_model = load_models(device)
    res = seg_model.resolution
    timings: dict[str, float] = {}
    clock = time.process_time()

    def lap(name: str, add: bool = False) -> None:
        nonlocal clock
        release_after_stage(len(samples))  # a stage's freed buffers, before the next stage's peak
        now = time.process_time()
        timings[name] = round(now - clock + (timings.get(name, 0.0) if add else 0.0), 3)
        clock = now

    scores = segment(seg_model, samples, config)
    num_frames = num_output_frames(scores, seg_model, len(samples))
    count = speaker_count(scores, seg_model, num_frames)
    chunks = speech_chunks(count, speaker_changes(scores, res.step, num_frames), res.step_s, config)
    lap("segmentation")
    if not chunks:
        return Diarization([], [], 0, timings, config.precision)
    fbank = FileFbank(samples, device)
    vectors = embed_chunks(emb_model, seg_model, fbank, chunks, config)
    lap("embeddings")
    low, high = target_range(num_speakers, min_speakers, max_speakers)
    labels, centroids = cluster_chunks(emb_model, seg_model, fbank, chunks, vectors, config, low, high)
    frame_labels = chunk_votes(chunks, labels, num_frames)
    mappings = assign_local_speakers(scores, frame_labels, len(centroids), res.step, config)
    mean = vectors.mean(0)

    def embed_local(window: int, speaker: int) -> np.ndarray | None:
        v = orphan_voice(emb_model, seg_model, fbank, scores, window, speaker, num_frames, config.precision)
        return None if v is None else centre(v, mean, config.centering)

    centroids = resolve_orphans(mappings, scores, centroids, embed_local, res.step_s, config, high)
    lap("clustering")
    activity = speaker_activity(scores, mappings, frame_labels, len(centroids), res.step)
    count = gate_pauses(samples, activity, count, res, config.pause_gate_db, config.pause_gate_min)
    lap("reconstruction")
    second_look(samples, seg_model, emb_model, fbank, activity, count, centroids, mean, config)
    lap("second_look")
    least = round(config.min_speaker_speech / res.step_s)
    absorb_brief_speakers(activity, count, centroids, least, low)
    turns, exclusive = reconstruct(activity, count, seg_model, config)
    lap("reconstruction", add=True)
    return Diarization(turns, exclusive, len({t[2] for t in turns}), timings, config.precision)
