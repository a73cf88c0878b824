"""Word timestamps: from the decoding's own cross-attention (``word_alignment="decoding"``, the
default) against openai-whisper's separate alignment pass (``"pass"``), on the batch corpus.

    python benchmarks/word_alignment.py            # base, CPU, the 12 files of benchmarks/batch.py

Both runs decode the same windows with the same engine (same text); only the word timings
differ. Prints and writes ``benchmarks/results/word_alignment.json``: engine seconds of each
method (side by side, one process, the same pre-decoded audio and windows), how many windows each
method aligned, and the absolute differences of word starts and ends (mean, median, p90, p99,
share within 0.1 / 0.2 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_result


def run(method: str, items, model: str, batch_size: int) -> tuple[dict, float, dict]:
    from audiotools.asr.transcribe import EngineItem, TranscribeOptions, Transcriber

    tr = Transcriber(
        TranscribeOptions(model=model, device="cpu", language="en", batch_size=batch_size, word_alignment=method)
    )
    list(tr.transcribe_many([EngineItem(0, items[0][1], windows=items[0][2], language="en")]))  # warm-up
    tr.alignment_counts = {"decoding": 0, "pass": 0}
    t0 = time.perf_counter()
    words = {
        k: [w for s in segs for w in s.words]
        for k, segs, _, _ in tr.transcribe_many(EngineItem(k, s, windows=w, language="en") for k, s, w in items)
    }
    return words, time.perf_counter() - t0, dict(tr.alignment_counts)


def stats(d: np.ndarray) -> dict:
    return {
        "mean_s": round(float(d.mean()), 4),
        "median_s": round(float(np.median(d)), 4),
        "p90_s": round(float(np.percentile(d, 90)), 4),
        "p99_s": round(float(np.percentile(d, 99)), 4),
        "max_s": round(float(d.max()), 3),
        "within_0.1s": round(float((d <= 0.1).mean()), 4),
        "within_0.2s": round(float((d <= 0.2).mean()), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="base")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    from batch import build_corpus

    from audiotools.asr.windows import speech_windows
    from audiotools.audio.decode import load_audio

    files = build_corpus()
    items = []
    for k, f in enumerate(files):
        samples = load_audio(f["path"]).samples
        items.append((k, samples, speech_windows(samples)[0]))
    ref, ref_s, ref_counts = run("pass", items, args.model, args.batch_size)
    fast, fast_s, fast_counts = run("decoding", items, args.model, args.batch_size)
    starts, ends, same = [], [], True
    for k in ref:
        if [w.word for w in fast[k]] != [w.word for w in ref[k]]:
            same = False
            continue
        starts += [abs(a.start - b.start) for a, b in zip(fast[k], ref[k])]
        ends += [abs(a.end - b.end) for a, b in zip(fast[k], ref[k])]
    audio = sum(len(s) for _, s, _ in items) / 16000
    result = {
        "model": args.model,
        "device": "cpu",
        "batch_size": args.batch_size,
        "files": len(items),
        "audio_seconds": round(audio, 2),
        "machine": machine(),
        "engine_seconds": {"pass": round(ref_s, 2), "decoding": round(fast_s, 2)},
        "speedup": round(ref_s / fast_s, 2),
        "windows_aligned": {"pass": ref_counts, "decoding": fast_counts},
        "same_words": same,
        "words": len(starts),
        "start_difference": stats(np.array(starts)),
        "end_difference": stats(np.array(ends)),
    }
    path = write_result("word_alignment", result)
    print(
        f"{len(items)} files, {audio / 60:.1f} min, {args.model}: engine {ref_s:.2f} s with the alignment pass, "
        f"{fast_s:.2f} s with word timings from the decoding ({result['speedup']}x)"
    )
    print(f"windows aligned: pass run {ref_counts}, decoding run {fast_counts}; same words: {same}")
    for name in ("start", "end"):
        s = result[f"{name}_difference"]
        print(
            f"{len(starts)} word {name}s differ by: mean {s['mean_s']} s, median {s['median_s']} s, "
            f"p90 {s['p90_s']} s, p99 {s['p99_s']} s, max {s['max_s']} s; within 0.1 s {s['within_0.1s']:.1%}, "
            f"within 0.2 s {s['within_0.2s']:.1%}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
