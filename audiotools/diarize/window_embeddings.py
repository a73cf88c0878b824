"""Sliding-window speaker embeddings over speech regions (input to clustering and resegmentation).

Each speech region gets 1.6 s GE2E windows every ``step`` seconds, kept inside the region so a window
never spans a silence into the next region; a region shorter than 1.6 s gets one window of its own
length (the LSTM takes any length; run as a packed sequence so padding does not leak into it).
Every window is volume-normalised on its own (-30 dBFS, as GE2E was trained), so a quiet talker in
a loud room gets embeddings at the same working level as everyone else. Work is streamed region by
region in fixed-size batches: memory is bounded by the batch, not the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audiotools.speakers.ge2e import HOP, PARTIAL_FRAMES, SAMPLE_RATE, SpeakerEncoder

FRAME_S = HOP / SAMPLE_RATE  # 10 ms mel frames
TARGET_DBFS = -30.0
MIN_RMS = 1e-4  # windows quieter than this are not amplified further


@dataclass
class WindowEmbeddings:
    start: np.ndarray  # (n,) window start, seconds
    end: np.ndarray  # (n,) window end, seconds
    region: np.ndarray  # (n,) index of the speech region the window belongs to
    vectors: np.ndarray  # (n, 256) float32, L2-normalised

    @property
    def centre(self) -> np.ndarray:
        return (self.start + self.end) / 2

    @property
    def duration(self) -> np.ndarray:
        return self.end - self.start

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls, dim: int = 256) -> WindowEmbeddings:
        z = np.zeros(0)
        return cls(z, z.copy(), np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))


def window_starts(n_frames: int, step: int, length: int = PARTIAL_FRAMES) -> list[int]:
    """Start frames of full windows covering ``n_frames``, the last one flush with the end."""
    if n_frames <= length:
        return [0]
    starts = list(range(0, n_frames - length + 1, step))
    if starts[-1] != n_frames - length:
        starts.append(n_frames - length)
    return starts


class _Batcher:
    """Collects (mel window, gain) items of one length and embeds them batch by batch."""

    def __init__(self, encoder: SpeakerEncoder, batch_size: int):
        self.encoder = encoder
        self.batch_size = batch_size
        self.full: list[torch.Tensor] = []  # (160, 40) windows
        self.full_idx: list[int] = []
        self.short: list[torch.Tensor] = []  # shorter windows, variable length
        self.short_idx: list[int] = []
        self.out: dict[int, np.ndarray] = {}

    full_length = PARTIAL_FRAMES

    def add(self, idx: int, mel: torch.Tensor) -> None:
        if mel.shape[0] == self.full_length:
            self.full.append(mel)
            self.full_idx.append(idx)
            if len(self.full) >= self.batch_size:
                self.flush_full()
        else:
            self.short.append(mel)
            self.short_idx.append(idx)
            if len(self.short) >= self.batch_size:
                self.flush_short()

    @torch.inference_mode()
    def flush_full(self) -> None:
        if not self.full:
            return
        emb = self.encoder.model(torch.stack(self.full)).float().cpu().numpy()
        for i, e in zip(self.full_idx, emb):
            self.out[i] = e
        self.full, self.full_idx = [], []

    @torch.inference_mode()
    def flush_short(self) -> None:
        if not self.short:
            return
        model = self.encoder.model
        lengths = torch.tensor([m.shape[0] for m in self.short])
        padded = torch.nn.utils.rnn.pad_sequence(self.short, batch_first=True)
        packed = torch.nn.utils.rnn.pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
        _, (hidden, _) = model.lstm(packed)
        raw = torch.relu(model.linear(hidden[-1]))
        emb = raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-5)
        for i, e in zip(self.short_idx, emb.float().cpu().numpy()):
            self.out[i] = e
        self.short, self.short_idx = [], []


def embed_regions(
    samples: np.ndarray,
    regions: list[tuple[float, float]],
    encoder: SpeakerEncoder,
    step: float = 0.2,
    window: float = 1.6,
    edge_window: float = 0.0,
    min_window: float = 0.5,
    batch_size: int = 256,
) -> WindowEmbeddings:
    """Embeddings of ``window``-second windows every ``step`` s inside each region, in time order.

    ``edge_window`` > 0 adds a window of that length flush with each edge of a region longer than
    ``window + edge_window`` (a short turn at a region's start or end then has a window of its own).
    A region shorter than ``min_window`` is widened symmetrically to ``min_window`` (into its
    context) so its single window has enough frames to say anything about the voice.
    """
    step_frames = max(1, int(round(step / FRAME_S)))
    win_frames = int(round(window / FRAME_S))
    edge = int(round(edge_window / FRAME_S))
    starts_s: list[float] = []
    ends_s: list[float] = []
    region_of: list[int] = []
    batcher = _Batcher(encoder, batch_size)
    batcher.full_length = win_frames
    total = len(samples) / SAMPLE_RATE
    target = 10 ** (TARGET_DBFS / 20)
    for ri, (a, b) in enumerate(regions):
        if b - a < min_window:
            c = (a + b) / 2
            a, b = max(0.0, c - min_window / 2), min(total, c + min_window / 2)
        s0, s1 = int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE))
        x = np.ascontiguousarray(samples[s0:s1], dtype=np.float32)
        n_frames = len(x) // HOP
        if n_frames < 2:
            continue
        x = x[: n_frames * HOP]
        mel = encoder.mel(x)[:n_frames]  # (n_frames, 40) power mel
        energy = np.square(x, dtype=np.float64).reshape(n_frames, HOP).mean(axis=1)  # on the CPU: no
        csum = np.concatenate([[0.0], np.cumsum(energy)])  # device sync per window
        length = min(win_frames, n_frames)
        spans = [(st, length) for st in window_starts(n_frames, step_frames, length)]
        if edge and n_frames > length + edge:
            spans = [(0, edge)] + spans + [(n_frames - edge, edge)]
        for st, ln in spans:
            rms = float(np.sqrt(max(csum[st + ln] - csum[st], 0.0) / ln))
            gain = target / max(rms, MIN_RMS)  # each window at -30 dBFS
            idx = len(starts_s)
            batcher.add(idx, mel[st : st + ln] * (gain * gain))  # power scales with gain squared
            starts_s.append(s0 / SAMPLE_RATE + st * FRAME_S)
            ends_s.append(s0 / SAMPLE_RATE + (st + ln) * FRAME_S)
            region_of.append(ri)
    batcher.flush_full()
    batcher.flush_short()
    if not starts_s:
        return WindowEmbeddings.empty()
    vectors = np.empty((len(starts_s), 256), dtype=np.float32)
    for i in range(len(starts_s)):
        vectors[i] = batcher.out.pop(i)
    return WindowEmbeddings(np.asarray(starts_s), np.asarray(ends_s), np.asarray(region_of, dtype=np.int64), vectors)
