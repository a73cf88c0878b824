"""Russian WER and CER: audiotools (default recipe, candidate languages, the ru-phone recipe; greedy and
beam search) against openai-whisper and faster-whisper on the same Whisper base weights.

Data: the 13 real Russian clips of ../shared/data/russian (manifest.tsv: 101 s, 10 VoxForge read
sentences by one speaker and 3 single clips), as recorded ("clean") and through a telephone channel
("telephone": 8 kHz, 300-3400 Hz, G.711 µ-law, audiotools.audio.condition.simulate); and jfk.flac
for English. Scoring: audiotools.eval.text (lowercase, ё -> е, numerals spelled out with num2words,
no punctuation) for Russian, openai-whisper's EnglishTextNormalizer for English; corpus WER/CER.
Every system runs in this one process, one after another, with its model loaded and warmed up
before the clock; the seconds are the transcription of the clip set (VAD and windows included for
audiotools; pre-decoded 16 kHz arrays for all three). Usage:

    python benchmarks/ru_wer.py [--threads 2] [--quick] [--seeds N]

``--seeds N``: every system that samples (audiotools' seeded fallback, openai-whisper's, seeded
through torch's global generator before each clip) runs with N seeds; each seed's WER is recorded.

``--quick``: the clean Russian set only, audiotools and openai-whisper with the ru-phone settings.
Writes benchmarks/results/ru_wer.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import JFK_TEXT, RESULTS, SHARED, machine, wer, write_result

CANDIDATES = ("ru", "uk", "be", "en")


def load_set():
    from audiotools.audio.condition import simulate
    from audiotools.audio.decode import load_audio

    d = SHARED / "russian"
    with open(d / "manifest.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clean = {r["file"]: load_audio(d / r["file"]).samples for r in rows}
    refs = {r["file"]: r["reference"] for r in rows}
    sets = {"clean": clean, "telephone": {k: simulate(v, "telephone") for k, v in clean.items()}}
    jfk = load_audio(SHARED / "speech" / "jfk.flac").samples
    return refs, sets, jfk


def audiotools_system(recipe: str, threads: int, seed: int = 0, **changes):
    from audiotools.asr.transcribe import Transcriber
    from audiotools.pipeline.recipe import load_recipe

    opts = load_recipe(recipe).options("transcribe").replace(device="cpu", threads=threads, seed=seed)
    opts = opts.replace(**{k: v for k, v in changes.items() if v is not None})
    if "beam_size" in changes and changes["beam_size"] is None:  # replace() keeps a field given None
        import dataclasses

        opts = dataclasses.replace(opts, beam_size=None)
    tr = Transcriber(opts)

    def run(samples):
        segments, language, _ = tr.transcribe_samples(samples)
        return "".join(s.text for s in segments).strip(), language

    settings = {
        "recipe": recipe,
        "languages": list(opts.languages) if opts.languages else None,
        "language": opts.language,
        "beam_size": opts.beam_size,
        "mel_padding": opts.mel_padding,
        "loop_guard": opts.loop_guard,
        "seed": seed,
    }
    return run, settings


def openai_system(model, language: str | None, beam_size: int | None, seed: int = 0):
    import torch
    import whisper

    def run(samples):
        torch.manual_seed(seed)  # its sampling fallback draws from torch's global generator
        r = whisper.transcribe(
            model, samples, language=language, beam_size=beam_size, best_of=5, fp16=False, verbose=None
        )
        return r["text"].strip(), r["language"]

    return run, {"language": language, "beam_size": beam_size, "seed": seed}


def faster_whisper_system(fw, language: str | None, beam_size: int):
    def run(samples):
        segs, info = fw.transcribe(samples, language=language, beam_size=beam_size)
        return " ".join(s.text.strip() for s in segs).strip(), info.language

    return run, {"language": language, "beam_size": beam_size, "compute_type": "float32"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", help="run only the systems whose name contains one of these, in that order")
    ap.add_argument("--conditions", nargs="*", help="run only these of each system's conditions (clean, telephone)")
    ap.add_argument("--merge", action="store_true", help="keep the other systems of the existing ru_wer.json")
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="run each system with this many seeds of its sampling fallback (0, 1000, 2000, ...): the WER of "
        "every seed and their mean are recorded; the main figures stay those of seed 0",
    )
    args = ap.parse_args()

    import torch

    from audiotools.asr.models import load_model
    from audiotools.eval.text import char_error_rate, word_error_rate

    torch.set_num_threads(args.threads)
    refs, sets, jfk = load_set()
    seconds_of = {k: sum(len(s) for s in v.values()) / 16000 for k, v in sets.items()}

    plain, _ = load_model("base", "cpu", dtype=torch.float32)  # openai-whisper's module as it loads it
    # name -> (factory, conditions it runs on, also jfk), most telling first (results are written after each)
    at = lambda recipe, **kw: lambda seed=0: audiotools_system(recipe, args.threads, seed, **kw)
    both = ["clean", "telephone"]
    plan = [
        ("audiotools ru-phone (beam 5)", at("ru-phone"), both, False),
        ("openai-whisper -l ru, beam 5", lambda seed=0: openai_system(plain, "ru", 5, seed), both, False),
        ("audiotools ru-phone, greedy", at("ru-phone", beam_size=None), both, False),
        ("openai-whisper -l ru (greedy)", lambda seed=0: openai_system(plain, "ru", None, seed), both, False),
        # the floor padding (audiotools' default; ru-phone sets "zero", openai-whisper's, with the loop guard)
        ("audiotools ru-phone, mel_padding floor (beam 5)", at("ru-phone", mel_padding="floor"), both, False),
        (
            "audiotools ru-phone, mel_padding floor, greedy",
            at("ru-phone", mel_padding="floor", beam_size=None),
            both,
            False,
        ),
        # without the speech detector: each clip is one window, as openai-whisper decodes it
        ("audiotools ru-phone, VAD off (beam 5)", at("ru-phone", vad=False), both, False),
        ("audiotools default (greedy, all languages)", at("default"), ["clean"], True),
        ("audiotools --languages ru,uk,be,en (greedy)", at("default", languages=CANDIDATES), ["clean"], True),
        ("audiotools default, beam 5", at("default", beam_size=5), ["clean"], True),
        ("openai-whisper (greedy, detect)", lambda seed=0: openai_system(plain, None, None, seed), ["clean"], True),
    ]
    if not args.quick:
        from faster_whisper import WhisperModel
        from transcribe_cpu import joined_ct2_dir

        fw = WhisperModel(str(joined_ct2_dir("base")), device="cpu", compute_type="float32", cpu_threads=args.threads)
        fwr = lambda language, beam: lambda seed=0: faster_whisper_system(fw, language, beam)  # seed: not used
        plan += [
            ("faster-whisper fp32 -l ru (greedy)", fwr("ru", 1), ["clean"], False),
            ("faster-whisper fp32 -l ru, beam 5", fwr("ru", 5), ["clean"], False),
            ("faster-whisper fp32 (greedy, detect)", fwr(None, 1), ["clean"], False),
        ]
    else:
        plan = [(n, f, ["clean"], False) for n, f, _, _ in plan[:2]]
    if args.conditions:
        plan = [(n, f, [c for c in conds if c in args.conditions], e) for n, f, conds, e in plan]
    if args.only:  # in the order of the patterns
        plan = [p for o in args.only for p in plan if o in p[0]]
        plan = list({p[0]: p for p in plan}.values())

    results: dict[str, dict] = {}
    previous = RESULTS / "ru_wer.json"
    names = list(refs)
    results_before = json.loads(previous.read_text(encoding="utf-8"))["systems"] if previous.exists() else {}
    run_started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def save():
        systems = dict(results)
        if args.merge and previous.exists():  # systems of other runs (--only) are kept; each has its "run"
            systems = {**json.loads(previous.read_text(encoding="utf-8"))["systems"], **results}
        out = write_result(
            "ru_wer",
            {
                "model": "base",
                "data": {
                    "russian": f"{len(names)} clips of ../shared/data/russian ({seconds_of['clean']:.1f} s)",
                    "telephone": "the same clips through audiotools.audio.condition.simulate('telephone')",
                    "english": "jfk.flac",
                },
                "scoring": "audiotools.eval.text.normalize_text (ru); openai-whisper EnglishTextNormalizer (jfk); "
                "corpus WER/CER",
                "quick": args.quick,
                "machine": machine(),
                "systems": systems,
                "notes": "One process per run ('run' of each system), systems one after another, each warmed up; "
                "seconds = transcription of the clip set from 16 kHz arrays (audiotools: VAD and windows included). "
                "openai-whisper and faster-whisper run the same base weights (the converted torch module as "
                "openai-whisper loads it; the CTranslate2 file in float32).",
            },
        )
        return out

    seeds = [1000 * k for k in range(max(1, args.seeds))]
    for name, factory, conditions, english in plan:
        entry: dict = {}
        if args.merge and name in results_before:  # conditions measured before and not now are kept
            entry.update({k: v for k, v in results_before[name].items() if k not in conditions})
        for seed in seeds if not name.startswith("faster-whisper") else [0]:  # faster-whisper: no seed to set
            run, settings = factory(seed)
            run(sets["clean"][names[0]])  # warm-up
            if seed == 0:
                entry["settings"] = settings
            for cond in conditions:
                texts, languages = {}, {}
                t0 = time.perf_counter()
                for n in names:
                    texts[n], languages[n] = run(sets[cond][n])
                elapsed = time.perf_counter() - t0
                r, h = [refs[n] for n in names], [texts[n] for n in names]
                e = {
                    "wer": round(word_error_rate(r, h), 4),
                    "cer": round(char_error_rate(r, h), 4),
                    "seconds": round(elapsed, 2),
                    "x_real_time": round(seconds_of[cond] / elapsed, 2),
                    "identified_russian": sum(1 for n in names if languages[n] == "ru"),
                    "languages": {n: languages[n] for n in names if languages[n] != "ru"},  # misidentified clips
                    "texts": texts,
                    "run": run_started,  # which run measured it (--merge keeps conditions of earlier runs)
                }
                if seed == 0:
                    before = results_before.get(name, {}).get(cond, {}) if args.merge else {}
                    if len(seeds) == 1 and "seeds" in before:  # a --seeds run's figures stay, marked with its run
                        e.update({k: before[k] for k in ("seeds", "mean_wer", "mean_cer")})
                        e["seeds_run"] = before.get("seeds_run", before.get("run"))
                    entry[cond] = e
                if len(seeds) > 1:  # every seed's WER / CER, and their mean
                    by_seed = entry[cond].setdefault("seeds", {})
                    by_seed[str(seed)] = {"wer": e["wer"], "cer": e["cer"]}
                    entry[cond]["mean_wer"] = round(sum(v["wer"] for v in by_seed.values()) / len(by_seed), 4)
                    entry[cond]["mean_cer"] = round(sum(v["cer"] for v in by_seed.values()) / len(by_seed), 4)
                print(
                    f"{name:46s} {cond:9s} seed {seed:<5d} WER {e['wer']:.3f} CER {e['cer']:.3f} {elapsed:7.1f} s "
                    f"({e['x_real_time']:.2f}x rt) ru {e['identified_russian']}/{len(names)} {e['languages'] or ''}",
                    flush=True,
                )
            if english and seed == 0:
                text, lang = run(jfk)
                entry["jfk"] = {"wer": round(wer(JFK_TEXT, text), 4), "language": lang, "text": text}
                print(f"{name:46s} jfk       WER {entry['jfk']['wer']:.3f} language {lang}", flush=True)
            del run
        entry["run"] = run_started
        results[name] = entry
        print(f"wrote {save()}", flush=True)


if __name__ == "__main__":
    main()
