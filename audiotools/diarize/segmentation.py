"""PyanNet speaker segmentation (pyannote segmentation-3.0 layout) with sliding-window inference.

The network maps a 10 s mono 16 kHz chunk to 589 frames of log-probabilities over 7 powerset classes
({}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}): at most 3 local speakers per chunk, at most 2 at once.

    waveform (B, 1, 160000)
      -> SincNet                      (B, 60, 589)
      -> 4-layer BiLSTM, hidden 128   (B, 589, 256)
      -> 2 x (Linear + leaky ReLU)    (B, 589, 128)
      -> Linear + log-softmax         (B, 589, 7)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from audiotools.errors import ModelError
from audiotools.weights import SEGMENTATION, locate

Geometry = list[tuple[int, int]]  # (kernel, stride) of each layer that changes the time axis


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincFilterbank(nn.Module):
    """Learned band-pass sinc filters, each band given twice: a cosine (even) and a sine (odd) filter.

    A band [f1, f2] has the ideal impulse response (sin(2 pi f2 t) - sin(2 pi f1 t)) / (pi t); its
    quadrature partner is (cos(2 pi f1 t) - cos(2 pi f2 t)) / (pi t). Both are Hamming-windowed and
    scaled by 1 / (2 (f2 - f1)) so that the cosine filter peaks at 1. Only the left half (t < 0) is
    computed; the right half is its mirror image (negated for the sine filter).
    Parameters: low_hz_ and band_hz_ (num_bands, 1), with f1 = min_low_hz + |low_hz_| and
    f2 = f1 + min_band_hz + |band_hz_| clamped to [min_low_hz, Nyquist]. Buffers: window_ (left half of
    a symmetric Hamming window) and n_ (2 pi t in seconds, t = -half .. -1 samples).
    Output: (2 num_bands, 1, kernel_size), cosine filters first.
    """

    def __init__(
        self,
        num_bands: int = 40,
        kernel_size: int = 251,
        sample_rate: int = 16000,
        min_low_hz: float = 50.0,
        min_band_hz: float = 50.0,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        self.sample_rate, self.min_low_hz, self.min_band_hz = sample_rate, min_low_hz, min_band_hz
        half = kernel_size // 2
        top = sample_rate / 2 - (min_low_hz + min_band_hz)
        edges = _mel_to_hz(torch.linspace(_hz_to_mel(30.0), _hz_to_mel(top), num_bands + 1))
        self.low_hz_ = nn.Parameter(edges[:-1].unsqueeze(1))
        self.band_hz_ = nn.Parameter(edges.diff().unsqueeze(1))
        self.register_buffer("window_", torch.hamming_window(kernel_size, periodic=False)[:half])
        self.register_buffer("n_", 2 * math.pi * torch.arange(-half, 0.0).unsqueeze(0) / sample_rate)

    def forward(self) -> torch.Tensor:
        low = self.min_low_hz + self.low_hz_.abs()
        high = (low + self.min_band_hz + self.band_hz_.abs()).clamp(self.min_low_hz, self.sample_rate / 2)
        band = high - low
        phase_low, phase_high = low * self.n_, high * self.n_
        scale = self.window_ / (self.n_ / 2)
        cos_left = (phase_high.sin() - phase_low.sin()) * scale
        sin_left = (phase_low.cos() - phase_high.cos()) * scale
        cos_filters = torch.cat([cos_left, 2 * band, cos_left.flip(1)], dim=1)
        sin_filters = torch.cat([sin_left, torch.zeros_like(band), -sin_left.flip(1)], dim=1)
        filters = torch.cat([cos_filters, sin_filters]) / torch.cat([2 * band, 2 * band])
        return filters.unsqueeze(1)


class SincConv1d(nn.Module):
    """Strided, unpadded 1-D convolution of a mono waveform with the SincFilterbank filters."""

    def __init__(
        self, num_filters: int = 80, kernel_size: int = 251, stride: int = 10, sample_rate: int = 16000
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.filterbank = SincFilterbank(num_filters // 2, kernel_size, sample_rate)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return F.conv1d(waveforms, self.filterbank(), stride=self.stride)


class SincNet(nn.Module):
    """Waveform instance norm, then 3 blocks of conv -> max-pool 3 -> instance norm -> leaky ReLU.

    Block 1 is the SincConv1d (80 filters, 251 taps, stride 10) followed by |.|; blocks 2 and 3 are
    plain 5-tap convolutions to 60 channels. (B, 1, samples) -> (B, 60, frames).
    """

    def __init__(self, sample_rate: int = 16000, stride: int = 10) -> None:
        super().__init__()
        self.wav_norm1d = nn.InstanceNorm1d(1, affine=True)
        self.conv1d = nn.ModuleList(
            [SincConv1d(80, 251, stride, sample_rate), nn.Conv1d(80, 60, 5), nn.Conv1d(60, 60, 5)]
        )
        self.pool1d = nn.ModuleList([nn.MaxPool1d(3) for _ in range(3)])
        self.norm1d = nn.ModuleList([nn.InstanceNorm1d(c, affine=True) for c in (80, 60, 60)])

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = self.conv1d[0](self.wav_norm1d(waveforms)).abs()
        return self._later_blocks(F.leaky_relu(self.norm1d[0](self.pool1d[0](x))))

    def _later_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Blocks 2 and 3 (conv -> max-pool -> instance norm -> leaky ReLU) on block 1's output."""
        for conv, pool, norm in zip(self.conv1d[1:], self.pool1d[1:], self.norm1d[1:]):
            x = F.leaky_relu(norm(pool(conv(x))))
        return x

    def forward_span(self, span: torch.Tensor, offsets: list[int], window: int) -> torch.Tensor:
        """What :meth:`forward` gives for the windows ``span[o : o + window]`` (o in ``offsets``, each a
        multiple of the sinc stride), with the first block's convolution and pooling done once for
        the whole span.

        Overlapping windows share most of their samples. The 251-tap sinc convolution is linear, so
        it commutes with the waveform instance norm: conv(g (x - mu) / sigma + b) = a conv(x) + c
        sum(filter), with a = g / sigma and c = b - a mu of each window. And the first block's
        max-pool of |y| over 3 frames is max(|a max(r) + c S|, |a min(r) + c S|), where max(r) and
        min(r) are the span's raw responses pooled over every 3 consecutive frames. So the span is
        convolved and pooled once; each window takes every third pooled frame from its offset and
        applies its own a and c (the same maths as the per-window path, up to float rounding).
        ``span``: (samples,), every window inside it.
        """
        sinc = self.conv1d[0]
        if any(o % sinc.stride for o in offsets):
            raise ValueError(f"window offsets must be multiples of the sinc stride {sinc.stride}")
        width = self.pool1d[0].kernel_size
        filters = sinc.filterbank()
        raw = F.conv1d(span.view(1, 1, -1), filters, stride=sinc.stride)  # (1, 80, frames of the span)
        high = F.max_pool1d(raw, width, stride=1)[0]  # [:, j] = max of raw frames j .. j + width - 1
        low = -F.max_pool1d(-raw, width, stride=1)[0]
        pooled = ((window - sinc.kernel_size) // sinc.stride + 1) // width  # pooled frames per window
        chunks = torch.stack([span[o : o + window] for o in offsets])  # (B, window): the norm's statistics
        var, mean = torch.var_mean(chunks, dim=1, unbiased=False)
        wav_norm = self.wav_norm1d
        scale = (wav_norm.weight / torch.sqrt(var + wav_norm.eps)).view(-1, 1, 1)  # a, (B, 1, 1)
        shift = (wav_norm.bias - scale.view(-1) * mean).view(-1, 1, 1) * filters.sum(-1).view(1, -1, 1)  # c S
        picks = [slice(o // sinc.stride, o // sinc.stride + width * pooled, width) for o in offsets]
        top = torch.stack([high[:, p] for p in picks]).mul_(scale).add_(shift).abs_()
        bottom = torch.stack([low[:, p] for p in picks]).mul_(scale).add_(shift).abs_()
        return self._later_blocks(F.leaky_relu(self.norm1d[0](torch.maximum(top, bottom, out=top))))

    def geometry(self) -> Geometry:
        """(kernel, stride) of every conv and pool, in order."""
        out: Geometry = []
        for conv, pool in zip(self.conv1d, self.pool1d):
            kernel = conv.kernel_size if isinstance(conv, SincConv1d) else conv.kernel_size[0]
            stride = conv.stride if isinstance(conv, SincConv1d) else conv.stride[0]
            out += [(kernel, stride), (pool.kernel_size, pool.stride)]
        return out


@dataclass(frozen=True)
class FrameResolution:
    """Output frame i covers samples [i * step, i * step + duration) of its input chunk."""

    step: int  # samples
    duration: int  # samples (receptive field)
    sample_rate: int

    @classmethod
    def from_geometry(cls, geometry: Geometry, sample_rate: int) -> FrameResolution:
        field, jump = 1, 1
        for kernel, stride in geometry:
            field += (kernel - 1) * jump
            jump *= stride
        return cls(jump, field, sample_rate)

    @property
    def step_s(self) -> float:
        return self.step / self.sample_rate

    @property
    def duration_s(self) -> float:
        return self.duration / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        """Frames the network outputs for an input of num_samples (no padding anywhere)."""
        return max(0, (num_samples - self.duration) // self.step + 1)

    def centers(self, num_frames: int) -> torch.Tensor:
        """Centre time (s) of frames 0 .. num_frames - 1."""
        return torch.arange(num_frames) * self.step_s + self.duration_s / 2


class PyanNet(nn.Module):
    """SincNet -> BiLSTM -> linear layers -> powerset log-probabilities, (B, 1, samples) -> (B, frames, 7)."""

    def __init__(
        self,
        sample_rate: int = 16000,
        sinc_stride: int = 10,
        lstm_hidden: int = 128,
        lstm_layers: int = 4,
        linear_hidden: int = 128,
        linear_layers: int = 2,
        num_speakers: int = 3,
        max_simultaneous: int = 2,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.num_speakers, self.max_simultaneous = num_speakers, max_simultaneous
        self.sincnet = SincNet(sample_rate, sinc_stride)
        self.lstm = nn.LSTM(60, lstm_hidden, lstm_layers, batch_first=True, bidirectional=True)
        sizes = [2 * lstm_hidden] + [linear_hidden] * linear_layers
        self.linear = nn.ModuleList([nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:])])
        self.classifier = nn.Linear(sizes[-1], len(powerset_classes(num_speakers, max_simultaneous)))
        self.resolution = FrameResolution.from_geometry(self.sincnet.geometry(), sample_rate)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.classify(self.sincnet(waveforms))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """SincNet features (B, 60, frames) -> powerset log-probabilities (B, frames, 7)."""
        x, _ = self.lstm(features.transpose(1, 2))
        for linear in self.linear:
            x = F.leaky_relu(linear(x))
        return F.log_softmax(self.classifier(x), dim=-1)


def powerset_classes(num_speakers: int, max_simultaneous: int) -> list[tuple[int, ...]]:
    """Speaker sets by size then lexicographic order: [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]."""
    return [c for k in range(max_simultaneous + 1) for c in combinations(range(num_speakers), k)]


def powerset_mapping(num_speakers: int, max_simultaneous: int) -> torch.Tensor:
    """(classes, speakers) 0/1 matrix: entry [c, s] is 1 when class c contains speaker s."""
    classes = powerset_classes(num_speakers, max_simultaneous)
    mapping = torch.zeros(len(classes), num_speakers)
    for c, speakers in enumerate(classes):
        mapping[c, list(speakers)] = 1.0
    return mapping


def load_segmentation(path: str | Path, device: str | torch.device = "cpu") -> PyanNet:
    """PyanNet from a {format_version, model, inference, state_dict} checkpoint (weights_only), loaded
    with strict=True, checked against the stored frame resolution, in eval mode on device."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    cfg = checkpoint["model"]
    model = PyanNet(
        sample_rate=cfg["sample_rate"],
        sinc_stride=cfg["sincnet"]["stride"],
        lstm_hidden=cfg["lstm"]["hidden_size"],
        lstm_layers=cfg["lstm"]["num_layers"],
        linear_hidden=cfg["linear"]["hidden_size"],
        linear_layers=cfg["linear"]["num_layers"],
        num_speakers=cfg["num_regular_classes"],
        max_simultaneous=cfg["powerset_max_classes"],
    )
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    res = model.resolution
    stored = (cfg["frame_step"], cfg["frame_duration"])
    if not all(map(math.isclose, (res.step_s, res.duration_s), stored)):
        raise ValueError(f"frame resolution {res} disagrees with the checkpoint's {cfg}")
    return model.eval().to(device)


@dataclass
class WindowScores:
    """Per-window network output; window k covers samples [starts[k], starts[k] + window)."""

    log_probs: torch.Tensor  # (windows, frames, classes)
    starts: list[int]  # samples
    mapping: torch.Tensor  # (classes, speakers)

    @property
    def hard(self) -> torch.Tensor:
        """(windows, frames, speakers) 0/1 activity of the most likely powerset class."""
        return self.mapping[self.log_probs.argmax(-1)]

    @property
    def soft(self) -> torch.Tensor:
        """(windows, frames, speakers) P(speaker active) = sum of probabilities of classes containing it."""
        return self.log_probs.exp() @ self.mapping

    @property
    def speech(self) -> torch.Tensor:
        """(windows, frames) P(anyone speaks) = 1 - P(empty class)."""
        return 1.0 - self.log_probs[..., 0].exp()


def window_starts(num_samples: int, window: int, step: int) -> list[int]:
    """Starts of full windows every step; one more (zero-padded) window if samples remain uncovered."""
    starts = list(range(0, max(num_samples - window, 0) + 1, step))
    if starts[-1] + window < num_samples:
        starts.append(starts[-1] + step)
    return starts


def _chunk(waveform: torch.Tensor, start: int, window: int, transform=None) -> torch.Tensor:
    piece = waveform[start : start + window]
    if transform is not None:
        piece = transform(piece, start)
    return F.pad(piece, (0, window - piece.shape[0]))


@torch.inference_mode()
def sliding_windows(
    model: PyanNet,
    waveform: torch.Tensor,
    window: float = 10.0,
    step: float = 1.0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    transform: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
) -> WindowScores:
    """Run the model on window-s chunks every step s of a mono waveform (samples,), batch_size at a time.

    The waveform must be at model.sample_rate. Scores come back on the CPU; `.hard` / `.soft` give
    (num_windows, frames, speakers) activity. device defaults to the model's. ``transform(chunk,
    start)``, when given, maps each window's samples (from sample ``start`` on) before the model,
    e.g. a gain, without a transformed copy of the whole waveform.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device)
    win, hop = round(window * model.sample_rate), round(step * model.sample_rate)
    starts = window_starts(waveform.shape[0], win, hop)
    shared = hop % model.sincnet.conv1d[0].stride == 0  # windows can share one sinc convolution
    outputs = []
    for b in range(0, len(starts), batch_size):
        part = starts[b : b + batch_size]
        if shared:  # one span covering the batch's windows, convolved once (SincNet.forward_span)
            span = _chunk(waveform, part[0], part[-1] + win - part[0], transform)
            features = model.sincnet.forward_span(span.to(device, torch.float32), [s - part[0] for s in part], win)
            outputs.append(model.classify(features).float().cpu())
            continue
        batch = torch.stack([_chunk(waveform, s, win, transform) for s in part]).unsqueeze(1)
        outputs.append(model(batch.to(device, torch.float32)).float().cpu())
    mapping = powerset_mapping(model.num_speakers, model.max_simultaneous)
    return WindowScores(torch.cat(outputs), starts, mapping)


def aggregate(
    per_window: torch.Tensor, starts: list[int], resolution: FrameResolution, num_frames: int
) -> torch.Tensor:
    """Mean over the windows covering each frame of the file's frame grid, (windows, frames) -> (num_frames,).

    Window k's frame j lands on file frame round(starts[k] / step) + j.
    """
    total = torch.zeros(num_frames)
    covered = torch.zeros(num_frames)
    for scores, start in zip(per_window, starts):
        offset = round(start / resolution.step)
        span = max(0, min(per_window.shape[1], num_frames - offset))
        total[offset : offset + span] += scores[:span]
        covered[offset : offset + span] += 1
    return total / covered.clamp(min=1)


@dataclass
class SpeechActivity:
    """Frame-level output on the file's time axis; frame i is centred at resolution.centers(n)[i]."""

    speech: torch.Tensor  # (frames,) speech probability, averaged over overlapping windows
    count: torch.Tensor  # (frames,) int, number of simultaneous speakers
    resolution: FrameResolution

    @property
    def times(self) -> torch.Tensor:
        return self.resolution.centers(self.speech.shape[0])


def speech_activity(
    model: PyanNet,
    waveform: torch.Tensor,
    window: float = 10.0,
    step: float = 1.0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    soft: bool = True,
) -> SpeechActivity:
    """Speech probability and speaker count per frame of a mono waveform at model.sample_rate.

    speech: per-window 1 - P(empty) (soft) or [argmax class is non-empty] (hard), averaged over windows.
    count: per-window number of active speakers of the argmax class, averaged over windows, rounded.
    Frames whose receptive field would run past the end of the waveform are dropped, except that a
    waveform shorter than one receptive field still gets one frame.
    """
    scores = sliding_windows(model, waveform, window, step, batch_size, device)
    res = model.resolution
    covered = round(scores.starts[-1] / res.step) + scores.log_probs.shape[1]
    num_frames = min(max(res.num_frames(waveform.shape[0]), 1), covered)
    speech = scores.speech if soft else scores.hard.amax(-1)
    count = aggregate(scores.hard.sum(-1), scores.starts, res, num_frames).round().to(torch.int64)
    return SpeechActivity(aggregate(speech, scores.starts, res, num_frames), count, res)


_models: dict[str, PyanNet] = {}
_models_lock = threading.Lock()


def segmentation_model(device: str = "cpu") -> PyanNet:
    """segmentation-3.0 from its registered weights (sha256-checked), loaded once per device."""
    with _models_lock:
        if device not in _models:
            path = locate(SEGMENTATION)
            try:
                _models[device] = load_segmentation(path, device)
            except Exception as e:  # a corrupt or foreign file: one line, never a traceback
                raise ModelError(f"{path}: cannot load segmentation weights: {str(e).splitlines()[0]}") from None
        return _models[device]
