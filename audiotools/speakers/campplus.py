"""CAM++ speaker-embedding network (Wang et al., Interspeech 2023), written from the paper and the
layout of the released 3D-Speaker checkpoint ``campplus_cn_en_common.pt``.

Input: (B, T, 80) mean-normalised Kaldi log-mel fbank; output: (B, 192) speaker embedding.

    FCM head (2-D, on the (80 x T) "image"):
        conv 3x3 1->32, BN, ReLU                                  (B, 32, 80, T)
        layer1: ResBlock(freq stride 2), ResBlock                 (B, 32, 40, T)
        layer2: ResBlock(freq stride 2), ResBlock                 (B, 32, 20, T)
        conv 3x3 freq stride 2, BN, ReLU; flatten channel x freq  (B, 320, T)
    D-TDNN backbone (1-D over time):
        tdnn: conv k=5 stride 2, BN, ReLU                         (B, 128, T/2)
        block1: 12 CAM dense layers, dilation 1 (+32 ch each)     (B, 512, T/2)
        transit1: BN, ReLU, 1x1 conv                              (B, 256, T/2)
        block2: 24 CAM dense layers, dilation 2                   (B, 1024, T/2)
        transit2                                                  (B, 512, T/2)
        block3: 16 CAM dense layers, dilation 2                   (B, 1024, T/2)
        transit3, then out_nonlinear: BN, ReLU                    (B, 512, T/2)
        statistics pooling: mean and unbiased std over time      (B, 1024)
        dense: 1x1 conv 1024->192, BN without affine              (B, 192)

The modules are built in the checkpoint's layout, so the weights load with a strict
``load_state_dict``; :func:`load_campplus` then rewrites the network into its inference form
(:meth:`CAMPPlus.fuse`), which computes the same function faster on a CPU:

* every batch norm that directly follows a convolution is folded into that convolution's weights
  and bias (the FCM head, the TDNN, each dense layer's bottleneck, the embedding layer); the
  pre-activation ones (BN, ReLU, then a convolution) become a per-channel scale and shift;
* the head's 2-D convolutions keep their weights in channels-last order, as their inputs are
  (oneDNN's NHWC kernels ran the 32-channel 3x3 convolutions about twice as fast as NCHW here);
* the backbone runs time-major, (B, T, C): the 1x1 convolutions are matrix products, the
  per-channel scale and shift runs along contiguous channels (about 4x faster than over the
  channel-first layout's short rows of T), each dense block writes its layers' outputs into one
  preallocated tensor instead of concatenating a growing one, a CAM layer's dilated kernel-3
  convolution is one matrix product with its three taps stacked, its outputs shifted and summed,
  and its context gate is computed once per 100-frame segment instead of once per frame.

Batches of different lengths are zero padded and carry a time mask. Every operation that mixes
time steps (convolutions with a time kernel > 1, context and statistics pooling) sees the padding
as zeros or ignores it, exactly as if each utterance were run alone, so a padded batch gives the
same embeddings as one-by-one inference.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import ModelError
from audiotools.speakers.fbank import kaldi_fbank
from audiotools.weights import CAMPLUS, locate

SEGMENT_FRAMES = 100  # CAM segment length for segment-level context pooling


def time_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, 1, max_len) float mask, 1 on valid frames."""
    steps = torch.arange(max_len, device=lengths.device)
    return (steps < lengths.unsqueeze(1)).unsqueeze(1).float()


def masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """x with padded frames zeroed; mask None means the batch has no padding."""
    return x if mask is None else x * mask


def segment_means(x: Tensor, mask: Tensor | None, seg_len: int = SEGMENT_FRAMES) -> Tensor:
    """Time-major (B, T, C), zero on padding -> (B, ceil(T / seg_len), C): the mean of each
    consecutive ``seg_len``-frame segment over its valid frames (a final partial segment over its
    own frames, like ``avg_pool1d`` with ``ceil_mode=True`` on an unpadded utterance). mask
    (B, T, 1), None when every frame is valid."""
    batch, steps, channels = x.shape
    pad = -steps % seg_len
    sums = F.pad(x, (0, 0, 0, pad)).view(batch, -1, seg_len, channels).sum(2)
    if mask is None:
        counts = torch.full((steps // seg_len + (pad > 0), 1), float(seg_len), device=x.device)
        if pad:
            counts[-1] = seg_len - pad
    else:
        counts = F.pad(mask, (0, 0, 0, pad)).view(batch, -1, seg_len, 1).sum(2).clamp_min(1.0)
    return sums / counts


def masked_stats(x: Tensor, mask: Tensor | None) -> Tensor:
    """Statistics pooling of time-major (B, T, C): [mean, unbiased std] over valid frames -> (B, 2C).
    One frame gives std 0."""
    if mask is None:
        mean = x.mean(1)
        var = (x - mean.unsqueeze(1)).square().sum(1) / max(x.shape[1] - 1, 1)
        return torch.cat([mean, var.sqrt()], dim=-1)
    count = mask.sum(1)
    mean = (x * mask).sum(1) / count.clamp_min(1.0)
    var = ((x - mean.unsqueeze(1)) * mask).square().sum(1) / (count - 1).clamp_min(1.0)
    return torch.cat([mean, var.sqrt()], dim=-1)


def fold_batchnorm(conv: nn.Conv1d | nn.Conv2d, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """Fold an eval-mode batch norm that directly follows ``conv`` into the convolution's weight
    and bias: ``bn(conv(x)) == conv'(x)``."""
    scale, shift = batchnorm_affine(bn)
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.dim() - 1))))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)


def batchnorm_affine(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(scale, shift) with ``bn(x) == x * scale + shift`` per channel in eval mode."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale.detach().clone(), shift.detach().clone()


def linear_from_conv(conv: nn.Conv1d) -> nn.Linear:
    """The 1x1 ``conv`` as an equal ``nn.Linear`` acting on time-major (..., C) inputs."""
    out_channels, in_channels, kernel = conv.weight.shape
    assert kernel == 1, "only 1x1 convolutions are matrix products"
    linear = nn.Linear(in_channels, out_channels, bias=conv.bias is not None)
    with torch.no_grad():
        linear.weight.copy_(conv.weight[:, :, 0])
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    return linear.to(conv.weight.device).requires_grad_(False)


class BasicResBlock(nn.Module):
    """2-D residual block: two 3x3 convs with BN; the first may halve frequency (stride (2, 1)).

    A 1x1 conv + BN shortcut matches the shape when the frequency axis is downsampled.
    """

    def __init__(self, channels: int, freq_stride: int) -> None:
        super().__init__()
        stride = (freq_stride, 1)
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if freq_stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def fuse(self) -> None:
        fold_batchnorm(self.conv1, self.bn1)
        fold_batchnorm(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()
        if len(self.shortcut):
            fold_batchnorm(self.shortcut[0], self.shortcut[1])
            self.shortcut = nn.Sequential(self.shortcut[0])

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """x: (B, C, F, T) with zeros on padded frames; mask: (B, 1, 1, T), None without padding."""
        out = masked(F.relu(self.bn1(self.conv1(x)), inplace=True), mask)
        out = self.bn2(self.conv2(out)).add_(self.shortcut(x))
        return masked(F.relu(out, inplace=True), mask)


class FCM(nn.Module):
    """Front-end convolution module: a small 2-D ResNet that sees local time-frequency patterns.

    Downsamples frequency 80 -> 10 (three stride-2 steps) and keeps the time resolution; the
    32 channels x 10 bands are flattened channel-major into 320 features per frame.
    """

    def __init__(self, channels: int = 32, blocks_per_layer: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = self._layer(channels, blocks_per_layer)
        self.layer2 = self._layer(channels, blocks_per_layer)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    @staticmethod
    def _layer(channels: int, blocks: int) -> nn.ModuleList:
        return nn.ModuleList(BasicResBlock(channels, 2 if i == 0 else 1) for i in range(blocks))

    def fuse(self) -> None:
        fold_batchnorm(self.conv1, self.bn1)
        fold_batchnorm(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()
        for block in [*self.layer1, *self.layer2]:
            block.fuse()
        # the activations are NHWC (below); weights in the same order spare oneDNN a reorder per
        # call and select its faster kernels
        self.to(memory_format=torch.channels_last)

    def forward(self, feats: Tensor, mask: Tensor | None) -> Tensor:
        """feats: (B, F, T); mask: (B, 1, T), None without padding -> (B, 32 * F / 8, T)."""
        mask2d = None if mask is None else mask.unsqueeze(1)
        # NHWC is about twice as fast for these 32-channel convs on CPU (oneDNN).
        x = masked(feats.unsqueeze(1), mask2d).contiguous(memory_format=torch.channels_last)
        x = masked(F.relu(self.bn1(self.conv1(x)), inplace=True), mask2d)
        for block in [*self.layer1, *self.layer2]:
            x = block(x, mask2d)
        x = F.relu(self.bn2(self.conv2(x)), inplace=True)
        return masked(x.flatten(1, 2), mask)


class BatchNormReLU(nn.Module):
    """Per-channel BatchNorm, optionally followed by ReLU (the checkpoint's ``nonlinear``).

    Loaded in the checkpoint's layout; :meth:`fuse` turns it into a scale and shift over the last
    (channel) axis of time-major inputs, or, with ``into`` the convolution it follows, folds it
    there and keeps only the ReLU."""

    def __init__(self, channels: int, relu: bool = True, affine: bool = True) -> None:
        super().__init__()
        self.batchnorm = nn.BatchNorm1d(channels, affine=affine)
        self.relu = relu
        # set by fuse(); None when folded into the convolution before it (only the ReLU is left)
        self.register_buffer("scale", None, persistent=False)
        self.register_buffer("shift", None, persistent=False)

    def fuse(self, into: nn.Conv1d | None = None) -> None:
        if into is not None:
            fold_batchnorm(into, self.batchnorm)
        else:
            self.scale, self.shift = batchnorm_affine(self.batchnorm)
        del self.batchnorm

    def forward(self, x: Tensor) -> Tensor:
        """Time-major x (..., C); runs after :meth:`fuse` (CAMPPlus.forward checks)."""
        if self.scale is not None:
            x = torch.addcmul(self.shift, x, self.scale)
        return F.relu(x, inplace=True) if self.relu else x


class TDNNLayer(nn.Module):
    """Input TDNN: conv k=5, stride 2 (halves the frame rate), then BN + ReLU. Channel-first."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.stride = stride
        self.linear = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.nonlinear = BatchNormReLU(out_channels)

    def fuse(self) -> None:
        self.nonlinear.fuse(into=self.linear)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid output frames for ``lengths`` valid input frames: ceil(L / stride)."""
        return torch.div(lengths + self.stride - 1, self.stride, rounding_mode="floor")

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.nonlinear(self.linear(masked(x, mask)))


class CAMLayer(nn.Module):
    """Context-aware masking: a local dilated conv whose output is gated by a sigmoid mask.

    The mask comes from a two-layer 1x1 bottleneck over the sum of the utterance-level mean and
    the mean of the 100-frame segment containing the frame, so each frame is reweighted by its
    long- and mid-range context.
    """

    def __init__(self, channels: int, out_channels: int, kernel: int, dilation: int, reduction: int = 2) -> None:
        super().__init__()
        self.linear_local = nn.Conv1d(
            channels, out_channels, kernel, dilation=dilation, padding=(kernel - 1) // 2 * dilation, bias=False
        )
        self.linear1 = nn.Conv1d(channels, channels // reduction, 1)
        self.linear2 = nn.Conv1d(channels // reduction, out_channels, 1)

    def fuse(self) -> None:
        conv = self.linear_local
        out_channels, channels, kernel = conv.weight.shape
        assert kernel == 3 and conv.padding[0] == conv.dilation[0], "a centred kernel-3 convolution"
        self.dilation, self.out_channels = conv.dilation[0], out_channels
        # the taps stacked: one (C -> 3 * out) product gives each frame's contribution to t+d, t, t-d
        taps = nn.Linear(channels, kernel * out_channels, bias=False)
        with torch.no_grad():
            taps.weight.copy_(conv.weight.permute(2, 0, 1).reshape(kernel * out_channels, channels))
        self.linear_local = taps.to(conv.weight.device).requires_grad_(False)
        self.linear1, self.linear2 = linear_from_conv(self.linear1), linear_from_conv(self.linear2)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Time-major x (B, T, C); mask (B, T, 1), None when the batch has no padding."""
        x = masked(x, mask)
        steps = x.shape[1]
        if mask is None:
            context = x.mean(1, keepdim=True)
        else:
            context = x.sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp_min(1.0)
        context = context + segment_means(x, mask)  # (B, segments, C): one gate per segment
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(context), inplace=True)))
        gate = gate.repeat_interleave(SEGMENT_FRAMES, dim=1)[:, :steps]
        # out[t] = W0 x[t - d] + W1 x[t] + W2 x[t + d], zero outside the utterance (x is 0 on padding)
        taps = self.linear_local(x)
        g, d = self.out_channels, self.dilation
        out = taps[..., g : 2 * g].clone()
        if steps > d:
            out[:, d:] += taps[:, :-d, :g]
            out[:, :-d] += taps[:, d:, 2 * g :]
        return out.mul_(gate)


class CAMDenseLayer(nn.Module):
    """One densely connected layer: BN-ReLU, 1x1 bottleneck to 128, BN-ReLU, CAM layer -> 32 ch."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = BatchNormReLU(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bottleneck, 1, bias=False)
        self.nonlinear2 = BatchNormReLU(bottleneck)
        self.cam_layer = CAMLayer(bottleneck, growth, kernel, dilation)

    def fuse(self) -> None:
        self.nonlinear1.fuse()
        self.nonlinear2.fuse(into=self.linear1)
        self.linear1 = linear_from_conv(self.linear1)
        self.cam_layer.fuse()

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))), mask)


class CAMDenseBlock(nn.Module):
    """Dense block: each layer's 32 new channels are appended to all previous features (written
    into one tensor of the block's final width, which each layer reads a prefix of)."""

    def __init__(
        self, num_layers: int, in_channels: int, growth: int, bottleneck: int, kernel: int, dilation: int
    ) -> None:
        super().__init__()
        self.in_channels, self.growth = in_channels, growth
        for i in range(num_layers):
            layer = CAMDenseLayer(in_channels + i * growth, growth, bottleneck, kernel, dilation)
            self.add_module(f"tdnnd{i + 1}", layer)

    def fuse(self) -> None:
        for layer in self.children():
            layer.fuse()

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Time-major (B, T, C_in) -> (B, T, C_in + layers * growth)."""
        layers = list(self.children())
        out = x.new_empty(*x.shape[:2], self.in_channels + len(layers) * self.growth)
        out[..., : self.in_channels] = x
        width = self.in_channels
        for layer in layers:
            out[..., width : width + self.growth] = layer(out[..., :width], mask)
            width += self.growth
        return out


class TransitLayer(nn.Module):
    """Between dense blocks: BN + ReLU, then a 1x1 conv halving the channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.nonlinear = BatchNormReLU(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def fuse(self) -> None:
        self.nonlinear.fuse()
        self.linear = linear_from_conv(self.linear)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.nonlinear(x))


class DenseLayer(nn.Module):
    """Embedding layer: 1x1 conv on the pooled statistics, then BN without affine parameters."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = BatchNormReLU(out_channels, relu=False, affine=False)

    def fuse(self) -> None:
        self.nonlinear.fuse(into=self.linear)
        self.linear = linear_from_conv(self.linear)

    def forward(self, stats: Tensor) -> Tensor:
        return self.nonlinear(self.linear(stats))


class DTDNN(nn.Module):
    """The CAM-augmented densely connected TDNN backbone, pooling and embedding layer."""

    def __init__(
        self,
        in_channels: int = 320,
        init_channels: int = 128,
        growth: int = 32,
        bottleneck: int = 128,
        embedding_size: int = 192,
        layers: tuple[int, ...] = (12, 24, 16),
        dilations: tuple[int, ...] = (1, 2, 2),
        kernel: int = 3,
    ) -> None:
        super().__init__()
        self.tdnn = TDNNLayer(in_channels, init_channels)
        channels = init_channels
        self.num_blocks = len(layers)
        for i, (num_layers, dilation) in enumerate(zip(layers, dilations, strict=True), start=1):
            self.add_module(f"block{i}", CAMDenseBlock(num_layers, channels, growth, bottleneck, kernel, dilation))
            channels += num_layers * growth
            self.add_module(f"transit{i}", TransitLayer(channels, channels // 2))
            channels //= 2
        self.out_nonlinear = BatchNormReLU(channels)
        self.dense = DenseLayer(2 * channels, embedding_size)

    @property
    def embedding_size(self) -> int:
        linear = self.dense.linear  # a Conv1d in the checkpoint's layout, a Linear once fused
        return linear.out_features if isinstance(linear, nn.Linear) else linear.out_channels

    def fuse(self) -> None:
        self.tdnn.fuse()
        for i in range(1, self.num_blocks + 1):
            getattr(self, f"block{i}").fuse()
            getattr(self, f"transit{i}").fuse()
        self.out_nonlinear.fuse()
        self.dense.fuse()

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, 320, T) with zeros on padded frames; lengths: (B,) valid frames -> (B, 192).

        A batch without padding (every length T) skips all masking: the same result, less work."""
        full = bool((lengths == x.shape[-1]).all())
        x = self.tdnn(x, None if full else time_mask(lengths, x.shape[-1])).transpose(1, 2)  # time-major
        mask = None if full else time_mask(self.tdnn.output_lengths(lengths), x.shape[1]).transpose(1, 2)
        for i in range(1, self.num_blocks + 1):
            x = getattr(self, f"block{i}")(x, mask)
            x = getattr(self, f"transit{i}")(x)
        return self.dense(masked_stats(self.out_nonlinear(x), mask))


class CAMPPlus(nn.Module):
    """CAM++: FCM head + D-TDNN backbone. (B, T, 80) fbank + (B,) frame counts -> (B, 192).

    Built in the checkpoint's layout (for a strict ``load_state_dict``); it runs after
    :meth:`fuse`, which :func:`load_campplus` calls."""

    def __init__(self, feat_dim: int = 80, embedding_size: int = 192) -> None:
        super().__init__()
        self.head = FCM()
        self.xvector = DTDNN(in_channels=32 * feat_dim // 8, embedding_size=embedding_size)
        self.fused = False

    @torch.no_grad()
    def fuse(self) -> CAMPPlus:
        """Rewrite the loaded network into its inference form (module docstring); eval mode only."""
        if not self.fused:
            self.eval()
            self.head.fuse()
            self.xvector.fuse()
            self.fused = True
        return self

    def forward(self, feats: Tensor, lengths: Tensor | None = None) -> Tensor:
        if not self.fused:
            raise RuntimeError("CAM++ runs in its inference form: call fuse() after loading the weights")
        if lengths is None:
            lengths = torch.full((feats.shape[0],), feats.shape[1], device=feats.device)
        lengths = lengths.to(feats.device)
        full = bool((lengths == feats.shape[1]).all())
        x = self.head(feats.transpose(1, 2), None if full else time_mask(lengths, feats.shape[1]))
        return self.xvector(x, lengths)


def load_campplus(path: str | Path, device: str | torch.device = "cpu") -> CAMPPlus:
    """Build CAM++, load a plain state dict with ``strict=True`` and return it in eval mode."""
    state = torch.load(path, weights_only=True, map_location="cpu")
    model = CAMPPlus()
    model.load_state_dict(state, strict=True)
    return model.fuse().to(device)


def mean_normalise(feats: Tensor, frames: Tensor) -> Tensor:
    """Subtract each utterance's per-bin mean over its valid frames; padding stays 0."""
    mask = time_mask(frames, feats.shape[1]).transpose(1, 2)
    mean = (feats * mask).sum(1, keepdim=True) / frames.view(-1, 1, 1).clamp_min(1)
    return (feats - mean) * mask


@torch.inference_mode()
def embed(model: CAMPPlus, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Waveforms (B, N) or (N,), float in [-1, 1] at 16 kHz -> (B, 192) L2-normalised embeddings.

    fbank -> per-utterance mean normalisation -> CAM++. Padding past ``lengths`` is ignored.
    """
    device = next(model.parameters()).device
    feats, frames = kaldi_fbank(waveforms.to(device), lengths)
    if int(frames.min()) < 1:
        raise ValueError("every utterance needs at least 400 samples (one 25 ms frame)")
    return embed_features(model, feats, frames)


@torch.inference_mode()
def embed_features(model: CAMPPlus, feats: Tensor, frames: Tensor) -> Tensor:
    """Padded fbank (B, T, 80) with ``frames`` valid frames each -> (B, 192) unit embeddings."""
    return F.normalize(model(mean_normalise(feats, frames), frames), dim=-1)


# Padded fbank frames per CAM++ batch on CPU. Its 2-D front end works on (B, 32, 80, T) maps: past
# a few thousand frames a batch runs out of cache, and 16 LibriSpeech utterances at once took twice
# the time of batches of 3-4 (budgets of 3,000-6,000 frames were best). CUDA batches by count only.
CPU_BATCH_FRAMES = 4000


def padded_batches(sizes: list[int], max_items: int | None = None, max_frames: int | None = None) -> list[slice]:
    """Consecutive batches over ascending ``sizes`` (frames per item): each holds at most
    ``max_items`` items and, padded to its last (longest) item, at most ``max_frames`` frames; a
    batch always takes at least one item."""
    out, start = [], 0
    while start < len(sizes):
        stop = start + 1
        while (
            stop < len(sizes)
            and (max_items is None or stop - start < max_items)
            and (max_frames is None or sizes[stop] * (stop + 1 - start) <= max_frames)
        ):
            stop += 1
        out.append(slice(start, stop))
        start = stop
    return out


def embed_many(model: CAMPPlus, waveforms: list[Tensor], batch_size: int = 16, max_frames: int | None = -1) -> Tensor:
    """Embed a list of 1-D waveforms in length-sorted padded batches; returns (len, 192).

    A batch holds at most ``batch_size`` waveforms and, when ``max_frames`` is set, at most that
    many padded fbank frames (always at least one waveform). -1: ``CPU_BATCH_FRAMES`` on CPU, no
    frame limit on other devices."""
    if max_frames == -1:
        max_frames = CPU_BATCH_FRAMES if next(model.parameters()).device.type == "cpu" else None
    order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
    out = torch.empty(len(waveforms), model.xvector.embedding_size)
    frames = [len(waveforms[i]) // 160 + 1 for i in order]
    for part in padded_batches(frames, batch_size, max_frames):
        idx = order[part]
        lengths = torch.tensor([len(waveforms[i]) for i in idx])
        batch = torch.nn.utils.rnn.pad_sequence([waveforms[i] for i in idx], batch_first=True)
        out[idx] = embed(model, batch, lengths).cpu()
    return out


MODEL_ID = CAMPLUS.name  # "campplus-cn-en-common-192"
EMBEDDING_DIM = 192
MAX_PIECE_SECONDS = 60.0  # longer speech is embedded in pieces whose embeddings are averaged
WINDOW_SECONDS = 1.5  # window embeddings (one-voice check, per-window scoring)
WINDOW_STEP_SECONDS = 0.75


class CampplusEncoder:
    """The CAM++ model loaded from its registered weights (sha256-checked); one per device, cached,
    thread-safe for inference. Embeddings are 192-d and L2-normalised."""

    _instances: dict[str, CampplusEncoder] = {}
    _lock = threading.Lock()

    def __init__(self, device: str = "cpu"):
        path = locate(CAMPLUS)
        try:
            self.model = load_campplus(path, device)
        except Exception as e:  # a corrupt or foreign file: one line, never a traceback
            raise ModelError(f"{path}: cannot load CAM++ weights: {str(e).splitlines()[0]}") from None
        self.device = device
        self.model_id = MODEL_ID
        self.weights_sha256 = CAMPLUS.sha256
        self.dim = self.model.xvector.embedding_size

    @classmethod
    def get(cls, device: str = "cpu") -> CampplusEncoder:
        with cls._lock:
            if device not in cls._instances:
                cls._instances[device] = cls(device)
            return cls._instances[device]

    def embed_utterances(self, signals: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """One embedding per signal (16 kHz float32); signals longer than ``MAX_PIECE_SECONDS`` are
        embedded in equal pieces and their embeddings averaged (memory stays bounded)."""
        pieces, owners = [], []
        for i, s in enumerate(signals):
            n = max(1, int(np.ceil(len(s) / (MAX_PIECE_SECONDS * SAMPLE_RATE))))
            for part in np.array_split(np.asarray(s, dtype=np.float32), n):
                pieces.append(torch.from_numpy(_at_least_one_frame(part)))
                owners.append(i)
        if not pieces:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = embed_many(self.model, pieces, batch_size).numpy()
        out = np.zeros((len(signals), self.dim), dtype=np.float64)
        np.add.at(out, np.asarray(owners), emb)
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def embed_windows(
        self,
        signal: np.ndarray,
        window_s: float = WINDOW_SECONDS,
        step_s: float = WINDOW_STEP_SECONDS,
        batch_size: int = 32,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(start times in seconds, (n, 192) embeddings) of ``window_s`` windows every ``step_s``
        over ``signal`` (16 kHz float32), each embedded as an utterance of its own, in batches of
        equal-length windows. A signal shorter than one window gives one embedding of all of it."""
        x = np.asarray(signal, dtype=np.float32)
        win, step = int(round(window_s * SAMPLE_RATE)), max(1, int(round(step_s * SAMPLE_RATE)))
        starts = window_starts(len(x), win, step)
        pieces = [torch.from_numpy(_at_least_one_frame(x[s : s + win])) for s in starts]
        emb = embed_many(self.model, pieces, batch_size).numpy().astype(np.float32)
        return np.asarray(starts, dtype=np.float64) / SAMPLE_RATE, emb


def _at_least_one_frame(x: np.ndarray) -> np.ndarray:
    return x if len(x) >= 400 else np.pad(x, (0, 400 - len(x)))


def window_starts(n_samples: int, window: int, step: int) -> list[int]:
    """Start samples of ``window``-sample windows every ``step`` samples covering ``n_samples``; the
    last window is aligned to the end so no tail is lost. One window when the signal is shorter."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, step))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts
