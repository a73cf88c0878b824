"""The held-out calibration trials behind the report's Tippett and ECE plots.

    python benchmarks/calibration_trials.py      # -> audiotools/data/calibration/trials.json

Runs the held-out protocol of ``benchmarks/verify.py`` (same data, folds, conversions, cohort and
calibration fitting: its functions are imported, nothing is re-implemented) for every condition,
and stores each trial's held-out log10 likelihood ratio, target or non-target. The values are
rounded to 0.01 and stored run-length encoded (``[[log10 LR, count], ...]``, sorted), so the file
stays a few kB while the plots are exact to 0.01 in log10 LR. ``audiotools report`` draws its
Tippett and ECE plots from this file, with the case's likelihood ratio marked.

These are the trials of the "held_out" figures of ``benchmarks/results/verify.json`` (EER, Cllr);
the script prints the Cllr recomputed from the rounded values so the two can be compared.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import verify as vb  # noqa: E402

from audiotools.audio import condition as channel  # noqa: E402
from audiotools.fileio import atomic_write_text  # noqa: E402
from audiotools.speakers.calibration import cllr  # noqa: E402

OUT = ROOT / "audiotools" / "data" / "calibration" / "trials.json"


def rle(values: np.ndarray) -> list[list]:
    counts = Counter(np.round(values, 2).tolist())
    return [[round(v, 2), n] for v, n in sorted(counts.items())]


def main() -> int:
    from audiotools.speakers.embedding_cache import Extractor

    t0 = time.perf_counter()
    extractor = Extractor()
    files = vb.list_files()
    spk = np.array([vb.speaker_of(f) for f in files])
    is_cohort = ~np.isin(spk, vb.MAIN)
    folds = vb.folds_of(list(spk))
    out = {
        "schema": "audiotools.calibration-trials/1",
        "model": {"id": extractor.model_id, "weights_sha256": extractor.weights_sha256},
        "data": f"LibriSpeech test-other: {len(files)} recordings of {len(set(spk))} speakers "
        "(5 x 10 utterances + 126 single utterances), ../shared/data/speakers",
        "protocol": "held out, as benchmarks/verify.py: 5 folds by speaker; every trial scored by a cohort and "
        "calibration fitted only on the folds holding neither of its speakers; enrolment = one clean file",
        "encoding": "log10 LR rounded to 0.01, run-length encoded: [[value, count], ...], sorted by value",
        "made_by": "benchmarks/calibration_trials.py",
        "conditions": {},
    }
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for cond in channel.CONDITIONS:
            enrol = vb.embed_all(extractor, files, cond)
            if cond == channel.WIDEBAND:
                test, ordered, test_side = enrol, False, "clean vs clean, unordered pairs of different recordings"
            else:
                test = vb.embed_all(extractor, vb.convert(files, tmp, cond), cond, native_condition=cond)
                ordered = True
                test_side = "clean enrolment vs test converted with " + " ".join(vb.SOX[cond]("in.flac", "out"))
            models = vb.fold_models(cond, enrol, test, spk, is_cohort, folds, ordered)
            _, tgt, s = vb.held_out_scores(models, enrol, test, spk, folds, ordered)
            llr = s["llr"]
            tar, non = rle(llr[tgt]), rle(llr[~tgt])
            rt = np.repeat([v for v, _ in tar], [n for _, n in tar])
            rn = np.repeat([v for v, _ in non], [n for _, n in non])
            out["conditions"][cond] = {
                "trials": test_side,
                "n_target": int(tgt.sum()),
                "n_nontarget": int((~tgt).sum()),
                "cllr_rounded": round(float(cllr(rt, rn)), 5),
                "target": tar,
                "nontarget": non,
            }
            print(
                f"{cond:16s} {int(tgt.sum())} target / {int((~tgt).sum())} non-target trials; Cllr "
                f"{cllr(llr[tgt], llr[~tgt]):.4f} (from the rounded values {cllr(rt, rn):.4f})",
                flush=True,
            )
    atomic_write_text(OUT, json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
