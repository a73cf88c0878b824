"""Profanity masking benchmark: precision / recall / false-positive rate per language.

    python benchmarks/masking.py

Reads tests/data/profanity_labelled.tsv (language, token, label 1=obscene 0=innocent), runs
audiotools.mask.masking on it -- each language with its own rules and once with all rules
(language=None) -- and, when installed, the PyPI libraries better-profanity and
alt-profanity-check on the English part. Prints a table and writes
benchmarks/results/masking.json.
"""

from __future__ import annotations

import csv
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from audiotools.mask.masking import Masker, MaskOptions  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "profanity_labelled.tsv"
OUT = ROOT / "benchmarks" / "results" / "masking.json"


def load_rows():
    with open(LABELLED, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r and not r[0].startswith("#")]
    return [(lang, tok, int(lab)) for lang, tok, lab in rows[1:]]


def score(rows, predict) -> dict:
    tp = fp = fn = tn = 0
    missed, false = [], []
    t0 = time.perf_counter()
    for _, tok, lab in rows:
        hit = bool(predict(tok))
        if hit and lab:
            tp += 1
        elif hit:
            fp += 1
            false.append(tok)
        elif lab:
            fn += 1
            missed.append(tok)
        else:
            tn += 1
    dt = time.perf_counter() - t0
    return {
        "n": len(rows),
        "obscene": tp + fn,
        "innocent": fp + tn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "false_positive_rate": round(fp / (fp + tn), 4) if fp + tn else None,
        "us_per_token": round(dt / max(1, len(rows)) * 1e6, 1),
        "missed": missed,
        "false_positives": false,
    }


def library_predictors() -> dict:
    preds = {}
    try:
        from better_profanity import profanity

        profanity.load_censor_words()
        preds["better-profanity"] = profanity.contains_profanity
    except ImportError:
        pass
    try:
        from profanity_check import predict

        preds["alt-profanity-check"] = lambda tok: int(predict([tok])[0])
    except ImportError:
        pass
    return preds


def main() -> int:
    rows = load_rows()
    langs = ["en", "ru", "uk", "be"]
    results = {
        "dataset": str(LABELLED.relative_to(ROOT)),
        "python": platform.python_version(),
        "audiotools": {},
        "audiotools_all_languages": {},
        "libraries_en": {},
    }
    t0 = time.perf_counter()
    maskers = {lang: Masker(MaskOptions(language=lang)) for lang in langs}
    all_masker = Masker(MaskOptions(language=None))
    results["build_seconds"] = round(time.perf_counter() - t0, 3)

    def masked(m):
        return lambda tok: m.mask_text(tok) != tok

    for lang in langs:
        part = [r for r in rows if r[0] == lang]
        results["audiotools"][lang] = score(part, masked(maskers[lang]))
        results["audiotools_all_languages"][lang] = score(part, masked(all_masker))
    en = [r for r in rows if r[0] == "en"]
    for name, pred in library_predictors().items():
        results["libraries_en"][name] = score(en, pred)

    def line(label, s):
        return (
            f"{label:<34} {s['obscene']:>5} {s['innocent']:>5} {s['precision']:>9.3f} {s['recall']:>7.3f} "
            f"{s['false_positive_rate']:>6.3f} {s['us_per_token']:>9.1f}"
        )

    print(
        f"{'engine / language':<34} {'obsc':>5} {'innoc':>5} {'precision':>9} {'recall':>7} {'FPR':>6} {'µs/token':>9}"
    )
    for lang in langs:
        print(line(f"audiotools.masking  {lang}", results["audiotools"][lang]))
    for lang in langs:
        print(line(f"audiotools (language=None)  {lang}", results["audiotools_all_languages"][lang]))
    for name, s in results["libraries_en"].items():
        print(line(f"{name}  en", s))
    if not results["libraries_en"]:
        print("(better-profanity / alt-profanity-check not installed: no library figures)")
    for lang in langs:
        s = results["audiotools"][lang]
        if s["missed"] or s["false_positives"]:
            print(f"{lang}: missed {s['missed']}  false positives {s['false_positives']}")
    for name, s in results["libraries_en"].items():
        print(
            f"{name}: missed {len(s['missed'])}, e.g. {s['missed'][:12]}; false positives {s['false_positives'][:12]}"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
