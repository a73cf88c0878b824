"""Shared helpers for the benchmarks: data locations, references, WER, result files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data"))
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def sample_reference(name: str) -> str:
    """Ground-truth text of a bundled sample (samples/<name>.txt: 'start end speaker<TAB>text')."""
    lines = (ROOT / "samples" / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return " ".join(line.split("\t", 1)[1] for line in lines if "\t" in line)


def wer(ref: str, hyp: str) -> float:
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    n = EnglishTextNormalizer()
    return float(jiwer.wer(n(ref), n(hyp)))


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    n = EnglishTextNormalizer()
    return float(jiwer.wer([n(r) for r, _ in pairs], [n(h) for _, h in pairs]))


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, p)
    return p


def concat(files: list[Path], gap: float = 1.0) -> np.ndarray:
    from audiotools.audio.decode import load_audio

    parts = []
    for f in files:
        parts.append(load_audio(f).samples)
        parts.append(np.zeros(int(gap * 16000), dtype=np.float32))
    return np.concatenate(parts)
