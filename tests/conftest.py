"""Shared fixtures. Real data lives in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAMPLES = ROOT / "samples"
JFK = SHARED / "speech" / "jfk.flac"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, input: str | None = None):
    """Run ``python -m audiotools ARGS`` in a subprocess; returns CompletedProcess (text)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "audiotools", *args],
        cwd=cwd or ROOT,
        env=e,
        input=input,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def private_embedding_cache(tmp_path_factory):
    """Embeddings of the module's tests go to a private cache (AUDIOTOOLS_CACHE), so they measure real
    computation, not a cache warmed by other tests."""
    old = os.environ.get("AUDIOTOOLS_CACHE")
    os.environ["AUDIOTOOLS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("AUDIOTOOLS_CACHE", None)
    else:
        os.environ["AUDIOTOOLS_CACHE"] = old


@pytest.fixture(scope="module")
def scorer():
    from audiotools.speakers.verification import Scorer

    return Scorer()


@pytest.fixture(scope="session")
def shared() -> Path:
    assert SHARED.is_dir(), f"real test data missing: {SHARED} (see the README)"
    return SHARED


@pytest.fixture(scope="session")
def base_transcriber():
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    return Transcriber(TranscribeOptions(model="base", device="cpu"))


@pytest.fixture(scope="session")
def tiny_transcriber():
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    return Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en"))


def wer(reference: str, hypothesis: str) -> float:
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    return jiwer.wer(norm(reference), norm(hypothesis))


def tone(seconds: float, freq: float = 440.0, sr: int = 16000, level: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
