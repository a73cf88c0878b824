"""Batched log-mel spectrograms on the model's device (Whisper's front end, per-window normalisation)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from audiotools.audio import SAMPLE_RATE

N_FFT = 400
HOP_LENGTH = 160
N_SAMPLES = 30 * SAMPLE_RATE


@functools.lru_cache(maxsize=8)
def _filters(n_mels: int, device: str) -> torch.Tensor:
    from whisper.audio import mel_filters

    return mel_filters(torch.device(device), n_mels)


@functools.lru_cache(maxsize=8)
def _window(device: str) -> torch.Tensor:
    return torch.hann_window(N_FFT, device=device)


def log_mel_batch(
    chunks: list[np.ndarray], n_mels: int, device: str | torch.device = "cpu", padding: str = "floor"
) -> torch.Tensor:
    """(B, n_mels, 3000) float32 log-mel for up to 30 s chunks.

    Same maths as ``whisper.audio.log_mel_spectrogram``, but the dynamic-range clamp
    (max - 8) is taken per chunk, so batching does not change any chunk's features.

    ``padding``, for a chunk shorter than 30 s: "floor" computes the log-mel of the chunk
    zero-padded to 30 s of audio, so the frames after it sit at the spectrogram's floor
    (max - 8); "zero" then sets those frames (from ``len(chunk) // HOP_LENGTH`` on) to 0, as
    openai-whisper's ``transcribe()`` pads a short segment's log-mel (``pad_or_trim``).
    """
    dev = str(torch.device(device))
    audio = torch.zeros(len(chunks), N_SAMPLES, dtype=torch.float32)
    for i, c in enumerate(chunks):
        c = c[:N_SAMPLES]
        audio[i, : len(c)] = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
    audio = audio.to(dev, non_blocking=True)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=_window(dev), return_complex=True)
    mags = stft[..., :-1].abs() ** 2
    mel = _filters(n_mels, dev) @ mags
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(1, 2), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    mel = (log_spec + 4.0) / 4.0
    if padding == "zero":
        for i, c in enumerate(chunks):
            mel[i, :, min(len(c), N_SAMPLES) // HOP_LENGTH :] = 0.0
    elif padding != "floor":
        raise ValueError(f"padding must be 'floor' or 'zero', not {padding!r}")
    return mel
