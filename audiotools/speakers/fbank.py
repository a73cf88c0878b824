"""Batched Kaldi-compatible log-mel filterbank features in pure PyTorch.

Matches Kaldi's ``compute-fbank`` (and kaldi-native-fbank / torchaudio.compliance.kaldi.fbank) with:

* 25 ms frames every 10 ms, ``snip_edges=true`` (frames never cross the signal end),
* per-frame DC removal, pre-emphasis 0.97 (first sample: ``x[0] -= 0.97 * x[0]``), Povey window,
* zero padding of each 400-sample frame to a 512-point real FFT, power spectrum,
* triangular mel filters on Kaldi's mel scale ``1127 * ln(1 + f / 700)``, 20 Hz .. Nyquist,
* natural log with a floor of float32 epsilon (``1.1920929e-07``),
* no dither, no energy coefficient (``use_energy=false``, so ``energy_floor`` plays no role).

The samples are used at the scale given: Kaldi's tools read int16-scale values, 3D-Speaker feeds
floats in [-1, 1]. The two differ by a constant 20*ln(2) in every log value, except where the
epsilon floor is reached, so pass whatever scale the downstream model was trained with.

Works on any device; a batch is a zero-padded (B, N) tensor plus per-item lengths in samples.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

FLOAT_EPS = float(torch.finfo(torch.float32).eps)


def kaldi_mel_scale(freq: Tensor) -> Tensor:
    """Kaldi's mel scale: ``1127 * ln(1 + f / 700)``."""
    return 1127.0 * torch.log1p(freq / 700.0)


@functools.lru_cache(maxsize=4)
def povey_window(length: int) -> Tensor:
    """Kaldi's Povey window: a Hann window raised to the power 0.85 (float64)."""
    n = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))).pow(0.85)


@functools.lru_cache(maxsize=16)
def mel_filterbank(num_bins: int, fft_size: int, sample_rate: float, low_freq: float, high_freq: float) -> Tensor:
    """Triangular mel filters as Kaldi builds them, shape (fft_size // 2 + 1, num_bins), float64.

    A filter's weight at FFT bin i (frequency ``i * sample_rate / fft_size``) rises linearly in the
    mel domain from the left edge to the centre and falls to the right edge; the edges of the
    ``num_bins`` filters are equally spaced in mel between ``low_freq`` and ``high_freq``. The
    Nyquist bin always has weight 0 (Kaldi only uses bins 0 .. fft_size/2 - 1).
    ``high_freq <= 0`` means an offset from Nyquist, as in Kaldi.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(f"bad mel range: low_freq={low_freq}, high_freq={high_freq}")
    mel_low, mel_high = (kaldi_mel_scale(torch.tensor(f, dtype=torch.float64)) for f in (low_freq, high_freq))
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * torch.arange(num_bins, dtype=torch.float64)
    centre, right = left + delta, left + 2 * delta
    bin_freqs = torch.arange(fft_size // 2, dtype=torch.float64) * (sample_rate / fft_size)
    mel = kaldi_mel_scale(bin_freqs).unsqueeze(1)
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    weights = torch.where(mel <= centre, rising, falling)
    weights = torch.where((mel > left) & (mel < right), weights, torch.zeros_like(weights))
    return torch.cat([weights, torch.zeros(1, num_bins, dtype=torch.float64)])


def num_frames(lengths: Tensor, frame_length: int, frame_shift: int) -> Tensor:
    """Frames per item with ``snip_edges=true``: ``1 + (n - frame_length) // frame_shift`` or 0."""
    full = 1 + torch.div(lengths - frame_length, frame_shift, rounding_mode="floor")
    return torch.where(lengths >= frame_length, full, torch.zeros_like(full))


def frame_signal(waveforms: Tensor, frame_length: int, frame_shift: int) -> Tensor:
    """Cut (B, N) into overlapping frames (B, T, frame_length); short inputs are zero padded."""
    if waveforms.shape[-1] < frame_length:
        waveforms = torch.nn.functional.pad(waveforms, (0, frame_length - waveforms.shape[-1]))
    return waveforms.unfold(-1, frame_length, frame_shift)


def preemphasize(frames: Tensor, coeff: float) -> Tensor:
    """Kaldi pre-emphasis within each frame: ``y[i] = x[i] - c x[i-1]``, ``y[0] = x[0] - c x[0]``."""
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    return frames - coeff * previous


def kaldi_fbank(
    waveforms: Tensor,
    lengths: Tensor | None = None,
    num_mel_bins: int = 80,
    sample_rate: float = 16000.0,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemph_coeff: float = 0.97,
    remove_dc_offset: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Kaldi log-mel filterbank features for a batch of waveforms.

    Args:
        waveforms: (B, N) zero-padded batch or a single (N,) waveform, any float dtype/device.
            Computation is in float64 for float64 input, float32 otherwise.
        lengths: (B,) valid samples per item; ``None`` means every item is N samples long.
        num_mel_bins .. high_freq: the Kaldi options of the same name (``high_freq <= 0`` is an
            offset from Nyquist). Dither is always 0.

    Returns:
        feats: (B, T, num_mel_bins) log-mel energies, T = frames of the longest item; frames past
            an item's own frame count are set to 0. A (N,) input gives (1, T, num_mel_bins).
        frames: (B,) int64 number of valid frames per item.
    """
    x = waveforms.unsqueeze(0) if waveforms.dim() == 1 else waveforms
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x = x.to(dtype)
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[-1], dtype=torch.long)
    lengths = lengths.to(device=x.device, dtype=torch.long)

    frame_length = int(sample_rate * frame_length_ms / 1000)
    frame_shift = int(sample_rate * frame_shift_ms / 1000)
    fft_size = 1 << (frame_length - 1).bit_length()
    counts = num_frames(lengths, frame_length, frame_shift)

    frames = frame_signal(x, frame_length, frame_shift)
    if remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    frames = preemphasize(frames, preemph_coeff) * povey_window(frame_length).to(x.device, dtype)
    power = torch.view_as_real(torch.fft.rfft(frames, n=fft_size)).square().sum(dim=-1)
    banks = mel_filterbank(num_mel_bins, fft_size, float(sample_rate), float(low_freq), float(high_freq))
    feats = (power @ banks.to(x.device, dtype)).clamp_min(FLOAT_EPS).log()

    feats = feats[:, : int(counts.max())]
    valid = torch.arange(feats.shape[1], device=x.device) < counts.unsqueeze(1)
    return feats * valid.unsqueeze(-1), counts
