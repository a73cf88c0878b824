"""Which torch device a step runs on."""

from __future__ import annotations

from audiotools.errors import ModelError


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` (or nothing) -> ``cuda`` when a GPU is available, else ``cpu``; an explicit CUDA device
    without a GPU is an error (one line), not a silent fallback."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"--device {device} asked for, but no CUDA GPU is available (torch.cuda.is_available() is False)"
        )
    return device
