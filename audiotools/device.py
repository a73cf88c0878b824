"""Which torch device a step runs on, and with how many CPU threads."""

from __future__ import annotations

import contextlib

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


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch CPU threads, then restore. The diariser's work is small batches and a
    sequential LSTM: one thread already runs it fast, while two threads on a busy machine spin
    against the other process and run several times slower."""
    import torch

    old = torch.get_num_threads()
    if not n or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def native_bfloat16() -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (AVX512-BF16 or AMX), where oneDNN runs
    bfloat16 convolutions and LSTMs about twice as fast as float32; elsewhere bfloat16 is emulated
    and slower."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    except Exception:  # a build without the probes
        return False


def network_precision(precision: str, device: str) -> str:
    """``float32`` or ``bfloat16``: ``auto`` is bfloat16 on a CPU with :func:`native_bfloat16`, float32
    elsewhere (CUDA included: bfloat16 there is not measured yet)."""
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if str(device).startswith("cpu") and native_bfloat16() else "float32"


def autocast(precision: str, device: str):
    """A context in which a network's convolutions, LSTMs and matrix products run in ``precision``
    (``torch.autocast``; a no-op for float32). Only the networks' forward passes go inside it:
    features (fbank) and everything computed on the networks' outputs stay float32."""
    import torch

    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=getattr(torch, precision))


def release_freed_memory() -> bool:
    """Give the C heap's freed pages back to the operating system (glibc ``malloc_trim``), where
    there is such a heap. A long recording's stage leaves hundreds of MB of freed but fragmented
    buffers that the process keeps (the segmentation of a 4 h file: about 1 GB), so the next stage's
    peak lands on top of them. Returns whether anything was called; a no-op off glibc."""
    import ctypes
    import ctypes.util

    global _malloc_trim
    if _malloc_trim is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _malloc_trim = libc.malloc_trim
            _malloc_trim.argtypes, _malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim is False:
        return False
    _malloc_trim(0)
    return True


_malloc_trim = None  # the libc function once looked up; False where there is none
