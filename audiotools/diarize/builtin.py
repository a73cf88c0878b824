"""Speaker diarisation: segmentation-3.0 windows + CAM++ embeddings + constrained clustering.

The method of pyannote 3.x, written from its public description:

1. segment: the segmentation-3.0 network (PyanNet) runs on 10 s windows every ``step`` seconds and
   gives, per window, up to 3 *local* speakers' activity on 16.875 ms frames (powerset argmax).
2. embed: one CAM++ embedding per (window, local speaker), from the fbank frames where that speaker
   speaks alone in the window. Pairs with less than ``min_clean`` s of such speech are left out of
   the clustering (they still get an embedding, from their overlapped speech if need be, for step 3).
3. cluster: agglomerative clustering of the clean embeddings (average linkage on cosine distance,
   distance threshold; part of the recording's mean embedding removed first), clusters smaller
   than ``min_cluster_size`` merged into the nearest large one, the count clamped to num_speakers /
   min_speakers / max_speakers, then a few k-means steps on the centroids. Every active (window,
   local speaker) is then assigned to a global speaker by a Hungarian assignment on the cosine
   similarity to the centroids, so that two local speakers of one window never become the same
   global speaker.
4. reconstruct: each global speaker's activity is the mean over the windows covering a frame of its
   assigned local activity; the number of speakers per frame is the rounded mean over windows of
   the local speaker count; at each frame the top-``count`` global speakers are active. Runs become
   turns, with gaps under ``min_gap`` bridged. The exclusive track keeps only the most active one.

Inputs are 16 kHz mono float arrays at any level: a slow gain control lifts quiet stretches (a far
talker) before the segmentation, which also normalises each window; the embeddings see
mean-normalised log fbank.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

from audiotools.audio import SAMPLE_RATE
from audiotools.diarize.segmentation import PyanNet, WindowScores, aggregate, segmentation_model, sliding_windows
from audiotools.speakers.campplus import CAMPPlus, CampplusEncoder, embed_features, padded_batches
from audiotools.speakers.fbank import kaldi_fbank

FBANK_SHIFT = 160  # samples between fbank frames (10 ms)
FBANK_LENGTH = 400  # samples per fbank frame (25 ms)
FBANK_CHUNK = 960_000  # samples of audio per fbank call (a multiple of FBANK_SHIFT), bounds memory

Turn = tuple[float, float, str]


@dataclass(frozen=True)
class Config:
    """Parameters of the pipeline. The defaults were tuned on sample.wav (and quiet and telephone-band
    copies of it), samples/conversation.wav, samples/phone_call.wav and synthetic LibriSpeech
    meetings with overlap (docs/diarization.md), for the settings that hold on all of them."""

    step: float = 2.0  # s between segmentation windows (1.0: a little better on real meetings, twice the cost)
    agc_window: float = 1.5  # s; level envelope of the gain control before the segmentation
    agc_max_gain_db: float = 12.0  # most the gain control lifts a quiet stretch (0: no gain control)
    batch_size: int = 32  # windows per segmentation batch (on 2 CPU cores 32 costs half the CPU time of 8)
    embed_batch_frames: int = 2000  # fbank frames (with padding) per CAM++ batch; larger is slower
    min_embed: float = 0.2  # s of speech below which a local speaker gets no embedding
    min_clean: float = 1.0  # s of clean (single-speaker) speech to enter the clustering
    centering: float = 0.65  # share of the recording's mean embedding removed before clustering
    linkage: str = "average"  # "average" (cosine) or "centroid" (Euclidean between unit vectors)
    threshold: float = 0.8  # cosine distance at which agglomerative clustering stops
    min_cluster_size: int = 6  # clean embeddings a cluster needs to count as a speaker (12 s of windows at step 2)
    max_train: int = 4000  # at most this many embeddings go into the O(n^2) clustering
    kmeans_iterations: int = 3  # centroid refinement steps after the clustering
    min_gap: float = 0.1  # s; shorter pauses inside one speaker's speech are bridged
    min_duration: float = 0.1  # s; shorter turns are dropped


@dataclass
class LocalEmbeddings:
    """Per (window, local speaker): an embedding (NaN when none) and seconds of clean/active speech."""

    vectors: np.ndarray  # (windows, speakers, dim) unit vectors or NaN
    clean: np.ndarray  # (windows, speakers) s of speech with no other local speaker
    active: np.ndarray  # (windows, speakers) s of speech


@dataclass
class Diarization:
    turns: list[Turn]  # overlapped speech carries two labels
    exclusive: list[Turn]  # one speaker at a time (for assigning words)
    num_speakers: int
    timings: dict[str, float] = field(default_factory=dict)  # CPU s per stage


def load_models(device: str = "cpu") -> tuple[PyanNet, CAMPPlus]:
    """The segmentation and embedding networks (registered, sha256-checked weights), once per device."""
    return segmentation_model(device), CampplusEncoder.get(device).model


# ---------------------------------------------------------------- 1. segmentation


def moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    return np.convolve(
        np.pad(x, (width // 2, width - 1 - width // 2), mode="edge"), np.ones(width) / width, mode="valid"
    )


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

    Envelope: 10 ms frame RMS, max then mean over ``window`` s. Gain: the file's loud level (95th
    percentile of frame RMS) over the envelope, within [1, max_gain_db], and never for stretches
    within 6 dB of the noise floor (10th percentile), so pauses are not amplified. A quiet talker
    (far from the microphone) then reaches the level the segmentation saw in training, instead of
    sitting 10-20 dB under the others in the same 10 s window. Samples past the last whole frame
    take the last frame's gain (:func:`apply_gain`).
    """
    frame = SAMPLE_RATE // 100
    n = len(samples) // frame
    if max_gain_db <= 0 or n == 0:
        return None
    rms = frame_rms(samples, frame)
    width = max(1, round(window * 100))
    peaks = np.lib.stride_tricks.sliding_window_view(
        np.pad(rms, (width // 2, width - 1 - width // 2), mode="edge"), width
    ).max(axis=1)
    envelope = np.maximum(moving_mean(peaks, width), 2.0 * np.percentile(rms, 10))
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


def segment(model: PyanNet, samples: np.ndarray, config: Config) -> WindowScores:
    """Powerset segmentation of 10 s windows every config.step s, after the gain control (applied
    window by window, so a long recording is not copied)."""
    samples = np.asarray(samples, dtype=np.float32)
    gain = gain_curve(samples, config.agc_window, config.agc_max_gain_db)
    waveform = torch.from_numpy(np.ascontiguousarray(samples))
    if gain is None:
        return sliding_windows(model, waveform, step=config.step, batch_size=config.batch_size)

    def levelled(chunk: torch.Tensor, start: int) -> torch.Tensor:
        return torch.from_numpy(apply_gain(chunk.numpy(), gain, start))

    return sliding_windows(model, waveform, step=config.step, batch_size=config.batch_size, transform=levelled)


def num_output_frames(scores: WindowScores, model: PyanNet, num_samples: int) -> int:
    """Frames of the file's grid: those whose receptive field fits in the file (at least one)."""
    res = model.resolution
    covered = round(scores.starts[-1] / res.step) + scores.log_probs.shape[1]
    return min(max(res.num_frames(num_samples), 1), covered)


# ---------------------------------------------------------------- 2. embeddings


def file_fbank(samples: np.ndarray, device: str) -> torch.Tensor:
    """Kaldi fbank of the whole file, (frames, 80); frame f covers samples [160 f, 160 f + 400)."""
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(device)
    out = None  # filled chunk by chunk (no list of parts and a concatenated copy)
    pos = 0
    for start in range(0, max(len(x) - FBANK_LENGTH, 0) + 1, FBANK_CHUNK):
        feats, _ = kaldi_fbank(x[start : start + FBANK_CHUNK + FBANK_LENGTH - FBANK_SHIFT])
        if out is None:
            total = max(1 + (len(x) - FBANK_LENGTH) // FBANK_SHIFT, feats.shape[1])
            out = feats.new_empty((total, feats.shape[2]))
        out[pos : pos + feats.shape[1]] = feats[0]
        pos += feats.shape[1]
    return out[:pos]


def fbank_to_segmentation_frames(model: PyanNet, frames_per_window: int, window: int) -> np.ndarray:
    """For each fbank frame of a window, the segmentation frame whose centre is nearest to its centre."""
    res = model.resolution
    centres = np.arange(window) * FBANK_SHIFT + FBANK_LENGTH / 2
    nearest = np.rint((centres - res.duration / 2) / res.step).astype(int)
    return np.clip(nearest, 0, frames_per_window - 1)


def local_speaker_frames(scores: WindowScores) -> tuple[torch.Tensor, torch.Tensor]:
    """(windows, frames, speakers) boolean masks: speaking, and speaking with no other local speaker."""
    hard = scores.hard.bool()
    alone = hard & (hard.sum(-1, keepdim=True) == 1)
    return hard, alone


@torch.inference_mode()
def embed_batch(model: CAMPPlus, pieces: list[torch.Tensor]) -> torch.Tensor:
    """Unit CAM++ embeddings of fbank pieces of different lengths, (n, dim)."""
    lengths = torch.tensor([len(p) for p in pieces])
    feats = torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True)
    return embed_features(model, feats, lengths.to(feats.device)).cpu()


def embed_local_speakers(
    model: CAMPPlus, seg_model: PyanNet, samples: np.ndarray, scores: WindowScores, config: Config, device: str = "cpu"
) -> LocalEmbeddings:
    """One embedding per (window, local speaker) with at least config.min_embed s of speech.

    The fbank frames where the speaker is alone are used when they amount to min_embed; otherwise all
    of its frames (overlap included). Pieces are embedded in length-sorted, padded batches.
    """
    fbank = file_fbank(samples, device)
    active, alone = local_speaker_frames(scores)
    window = round(10.0 * SAMPLE_RATE - FBANK_LENGTH) // FBANK_SHIFT + 1
    to_seg = torch.from_numpy(fbank_to_segmentation_frames(seg_model, active.shape[1], window))
    num_windows, _, num_speakers = active.shape
    clean_s = alone.sum(1).numpy() * seg_model.resolution.step_s
    active_s = active.sum(1).numpy() * seg_model.resolution.step_s
    # (window, speaker, first fbank frame, frame mask, frames): masks only, so memory stays small on
    # long files; the fbank pieces are cut batch by batch
    jobs: list[tuple[int, int, int, torch.Tensor, int]] = []
    for k, start in enumerate(scores.starts):
        first = round(start / FBANK_SHIFT)
        frames = max(0, min(window, len(fbank) - first))
        for s in range(num_speakers):
            for mask in (alone[k, to_seg[:frames], s], active[k, to_seg[:frames], s]):
                count = int(mask.sum())
                if count * FBANK_SHIFT >= config.min_embed * SAMPLE_RATE:
                    jobs.append((k, s, first, mask, count))
                    break
    vectors = np.full((num_windows, num_speakers, model.xvector.dense.linear.out_channels), np.nan, dtype=np.float32)
    jobs.sort(key=lambda job: job[4])
    for part in padded_batches([job[4] for job in jobs], max_frames=config.embed_batch_frames):
        batch = jobs[part]
        pieces = [fbank[first : first + len(mask)][mask.to(fbank.device)] for _, _, first, mask, _ in batch]
        vectors[[j[0] for j in batch], [j[1] for j in batch]] = embed_batch(model, pieces)
    return LocalEmbeddings(vectors, clean_s, active_s)


# ---------------------------------------------------------------- 3. clustering


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
    min_size = min(config.min_cluster_size, max(1, len(x) // 10))
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


def assign(vectors: np.ndarray, active: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(windows, speakers) global speaker of each active local speaker, -1 when none.

    vectors: (windows, speakers, dim) unit embeddings or NaN; active: (windows, speakers) s of speech.
    Per window, a Hungarian assignment maximising the cosine similarity to the centroids, so that
    two local speakers never share a global speaker. Local speakers without an embedding score 0
    everywhere and take whatever global speaker is left.
    """
    num_windows, num_local, _ = vectors.shape
    out = np.full((num_windows, num_local), -1, dtype=int)
    if len(centroids) == 0:
        return out
    sims = np.nan_to_num(vectors @ centroids.T, nan=0.0)
    for k in range(num_windows):
        rows = np.flatnonzero(active[k] > 0)
        if len(rows) == 0:
            continue
        picked, cols = linear_sum_assignment(sims[k, rows], maximize=True)
        out[k, rows[picked]] = cols
    return out


def cluster_and_assign(
    emb: LocalEmbeddings,
    config: Config,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (speakers, dim) from the clean embeddings, and the (windows, speakers) assignment."""
    usable = ~np.isnan(emb.vectors[..., 0])
    train = emb.vectors[usable & (emb.clean >= config.min_clean)]
    if len(train) == 0:
        train = emb.vectors[usable]
    if len(train) == 0:  # no local speaker with enough speech to embed: no speakers
        return np.zeros((0, emb.vectors.shape[-1]), dtype=np.float32), np.full(usable.shape, -1)
    mean = train.mean(0)
    low, high = target_range(num_speakers, min_speakers, max_speakers)
    centroids = cluster(centre(train, mean, config.centering), config, low, high)
    vectors = centre(emb.vectors, mean, config.centering)
    while True:
        assignment = assign(vectors, emb.active, centroids)
        found = orphan(vectors, emb.active, assignment, centroids, config)
        if found is None or len(centroids) >= high:
            return centroids, assignment
        centroids = np.vstack([centroids, found])


def orphan(
    vectors: np.ndarray, active: np.ndarray, assignment: np.ndarray, centroids: np.ndarray, config: Config
) -> np.ndarray | None:
    """A local speaker the clustering cannot account for, as a new centroid; None when there is none.

    Candidates: local speakers with an embedding and at least ``min_clean`` s of speech left without
    a global speaker because their window has more local speakers than there are clusters (a voice
    heard only under another one, or in one short recording). The one least similar to every
    centroid becomes a speaker when that similarity is below the clustering's own cut
    (1 - ``threshold``); a local speaker that resembles a known one is left unassigned as before.
    """
    candidates = ~np.isnan(vectors[..., 0]) & (assignment < 0) & (active >= config.min_clean)
    if not candidates.any():
        return None
    pool = vectors[candidates]
    best = (pool @ centroids.T).max(1) if len(centroids) else np.full(len(pool), -1.0)
    i = int(np.argmin(best))
    return pool[i] if best[i] < 1.0 - config.threshold else None


# ---------------------------------------------------------------- 4. reconstruction


def speaker_count(scores: WindowScores, model: PyanNet, num_frames: int) -> np.ndarray:
    """(frames,) int: per file frame, the rounded mean number of local speakers over the windows
    covering it."""
    hard_count = scores.hard.sum(-1).float()
    return aggregate(hard_count, scores.starts, model.resolution, num_frames).round().numpy().astype(int)


def aggregate_speakers(
    scores: WindowScores, assignment: np.ndarray, num_clusters: int, step: int, num_frames: int
) -> np.ndarray:
    """(frames, clusters): per file frame, the mean activity of each global speaker over the windows
    covering the frame."""
    hard = scores.hard.numpy()
    frames = hard.shape[1]
    activity = np.zeros((num_frames, num_clusters))
    covered = np.zeros(num_frames)
    for k, start in enumerate(scores.starts):
        offset = round(start / step)
        span = max(0, min(frames, num_frames - offset))
        covered[offset : offset + span] += 1
        for s in np.flatnonzero(assignment[k] >= 0):
            activity[offset : offset + span, assignment[k, s]] += hard[k, :span, s]
    activity /= np.maximum(covered, 1)[:, None]
    return activity


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
    scores: WindowScores, assignment: np.ndarray, num_clusters: int, model: PyanNet, num_frames: int, config: Config
) -> tuple[list[Turn], list[Turn]]:
    """(turns with overlap, exclusive turns), labelled in order of first appearance."""
    res = model.resolution
    activity = aggregate_speakers(scores, assignment, num_clusters, res.step, num_frames)
    count = speaker_count(scores, model, num_frames)
    offset = res.duration_s / 2
    turns = runs_to_turns(top_speakers(activity, count), res.step_s, offset, config.min_gap, config.min_duration)
    # frame-exact (no bridging or dropping per speaker), so two speakers never overlap in it
    exclusive = runs_to_turns(top_speakers(activity, np.minimum(count, 1)), res.step_s, offset, 0.0, 0.0)
    names = first_appearance_names(turns)
    exclusive = [t for t in exclusive if t[2] in names]
    return label_turns(turns, names), label_turns(exclusive, names)


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
    """Diarise 16 kHz mono samples; returns both tracks, the speaker count and CPU time per stage."""
    if len(samples) < FBANK_LENGTH or not np.any(samples):
        return Diarization([], [], 0, {})
    seg_model, emb_model = load_models(device)
    timings: dict[str, float] = {}
    clock = time.process_time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.process_time()
        timings[name] = round(now - clock, 3)
        clock = now

    scores = segment(seg_model, samples, config)
    lap("segmentation")
    emb = embed_local_speakers(emb_model, seg_model, samples, scores, config, device)
    lap("embeddings")
    centroids, assignment = cluster_and_assign(emb, config, num_speakers, min_speakers, max_speakers)
    lap("clustering")
    num_frames = num_output_frames(scores, seg_model, len(samples))
    turns, exclusive = reconstruct(scores, assignment, len(centroids), seg_model, num_frames, config)
    lap("reconstruction")
    return Diarization(turns, exclusive, len({t[2] for t in turns}), timings)
