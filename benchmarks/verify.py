"""Speaker-verification benchmark on ../shared/data/speakers, with held-out calibration.

    python benchmarks/verify.py                       # figures -> benchmarks/results/verify.json
    python benchmarks/verify.py --write-calibration   # also refit the shipped calibration

Data: 5 LibriSpeech test-other speakers x 10 utterances (speakers/<id>/) and 126 single utterances
of other speakers (speakers/cohort/): 131 speakers, 176 recordings.

Conditions (the questioned/test side; enrolment is always the clean file):
  wideband          clean vs clean, unordered pairs of different recordings
  telephone         test converted with ``sox in.flac -r 8000 -e u-law out.wav sinc 300-3400``,
                    all ordered pairs (clean enrolment i, telephone test j), i != j
  telephone-codec   test converted with ``sox in.flac -r 8000 -c 1 out.gsm sinc 300-3400`` (GSM 06.10),
                    ordered pairs as above
Conversions are made at run time into a temporary directory (``-R``: sox's repeatable mode, so
the dither noise, and hence the embedding cache keys, are the same on every run).

Held-out protocol (what the figures report): the 131 speakers are split into 5 folds, each holding
one of the 5 multi-utterance speakers and a fifth of the cohort speakers. Every trial is scored by
a system (score-normalisation cohort + logistic calibration) fitted *only* on the folds that contain
neither of its two speakers: trials inside fold k use a system fitted on the other 4 folds, trials
between folds k and l one fitted on the remaining 3. So no trial is scored with a cohort or a
calibration that saw either of its speakers. The shipped calibration (fitted on all 131 speakers)
is then also applied to all trials, for reference only (that figure is optimistic, not held out).

Quality gate (``--quality``): the wideband held-out systems applied to clean full-file enrolments
against tests cut to 1, 2, 3 and 5 s of net speech (the first seconds of the VAD speech; only tests
that have that much speech), and against whole test files (every second recording) with white
Gaussian noise added at 20, 10 and 5 dB SNR (relative to the power of their VAD speech), where the
SNR estimator of ``audiotools.speakers.quality`` is also checked against the true SNR.

Timing: enrolment + scoring of 1,000 trials through ``verification.score_trials`` (the code behind
``audiotools verify --trials``) with an empty embedding cache, then again with the cache warm.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audiotools.audio import condition as channel  # noqa: E402
from audiotools.speakers.calibration import ConditionModel, summary  # noqa: E402

DATA = Path(os.environ.get("AUDIOTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data")) / "speakers"
MAIN = ["1688", "1998", "2033", "2414", "2609"]
N_FOLDS = 5
TOP_N = 50
FEATURES = ("snorm",)
P_TARGET = 0.01
SOX = {
    channel.TELEPHONE: lambda src, dst: [
        "sox",
        "-R",
        str(src),
        "-r",
        "8000",
        "-e",
        "u-law",
        str(dst) + ".wav",
        "sinc",
        "300-3400",
    ],
    channel.TELEPHONE_CODEC: lambda src, dst: [
        "sox",
        "-R",
        str(src),
        "-r",
        "8000",
        "-c",
        "1",
        str(dst) + ".gsm",
        "sinc",
        "300-3400",
    ],
}
EXT = {channel.TELEPHONE: ".wav", channel.TELEPHONE_CODEC: ".gsm"}


# Synthetic voices (espeak-ng), an out-of-domain check: 91 accent+variant configurations, each
# reading two different sets of three Harvard sentences (IEEE 1969 lists, public domain). The 5
# configurations of the voices in samples/ (anna, boris, clara and the two phone-call voices) are
# excluded. They are never part of the shipped cohort or calibration; voiceprints/make_demo.sh uses
# the same recipe to fit the demo store's own calibration.
HARVARD = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
]
SYN_ACCENTS = [
    "en-gb",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
]
SYN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]
SYN_EXCLUDED = {("en-gb", "f4"), ("en-us", "m3"), ("en-gb-x-rp", "f2"), ("en-gb-scotland", "m2"), ("en-us", "f5")}
SYN_PITCH = [35, 45, 50, 60, 70, 40, 55, 65]
SYN_SPEED = [140, 150, 160, 170, 180, 155, 165]


def synthesize(tmp: Path) -> list[tuple[Path, str]]:
    """(wav path, speaker) for the synthetic voices; two recordings (text sets A and B) per voice."""
    out_dir = tmp / "synthetic"
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    configs = [(a, v) for a in SYN_ACCENTS for v in SYN_VARIANTS]
    for n, (acc, var) in enumerate(configs):
        if (acc, var) in SYN_EXCLUDED:
            continue
        p, sp = SYN_PITCH[n % len(SYN_PITCH)], SYN_SPEED[n % len(SYN_SPEED)]
        for tag, off in (("A", 0), ("B", 10)):
            text = " ".join(HARVARD[(3 * n + k + off) % len(HARVARD)] for k in range(3))
            jobs.append((acc, var, p, sp, tag, text, out_dir / f"syn_{acc}+{var}_{tag}"))

    def one(job):
        acc, var, p, sp, tag, text, stem = job
        raw, wav = Path(str(stem) + ".raw.wav"), Path(str(stem) + ".wav")
        subprocess.run(
            ["espeak-ng", "-v", f"{acc}+{var}", "-p", str(p), "-s", str(sp), "-w", str(raw), "--", text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "sox",
                "-R",
                str(raw),
                "-r",
                "16000",
                "-b",
                "16",
                str(wav),
                "vol",
                "0.5",
                "silence",
                "1",
                "0.02",
                "0.1%",
                "reverse",
                "silence",
                "1",
                "0.02",
                "0.1%",
                "reverse",
            ],
            check=True,
            capture_output=True,
        )
        raw.unlink()
        return wav, f"syn:{acc}+{var}"

    with ThreadPoolExecutor(2) as ex:
        return list(ex.map(one, jobs))


def speaker_of(path: Path) -> str:
    return path.name.split("-")[0]


def list_files() -> list[Path]:
    files = sorted(DATA.glob("*/*.flac"))
    if not files:
        sys.exit(f"no data in {DATA}")
    return files


def convert(files: list[Path], tmp: Path, condition: str) -> list[Path]:
    out = []

    def one(f):
        dst = tmp / condition / f.stem
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(SOX[condition](f, dst), check=True, capture_output=True)
        return Path(str(dst) + EXT[condition])

    with ThreadPoolExecutor(2) as ex:
        out = list(ex.map(one, files))
    return out


def embed_all(extractor, paths: list[Path], condition: str, native_condition: str | None = None) -> np.ndarray:
    from audiotools.speakers.embedding_cache import Audio

    res = []
    block = 48
    for k in range(0, len(paths), block):
        audios = [Audio.load(p) for p in paths[k : k + block]]
        for a in audios:
            if native_condition and a.channel.condition != native_condition:
                raise SystemExit(f"{a.path}: detected {a.channel.condition}, expected {native_condition}")
        res += [r.embedding for r in extractor.embed([(a, None, condition) for a in audios])]
    return np.stack(res).astype(np.float64)


def trial_pairs(n: int, ordered: bool) -> np.ndarray:
    it = itertools.permutations(range(n), 2) if ordered else itertools.combinations(range(n), 2)
    return np.array(list(it), dtype=np.int64)


def folds_of(spk: list[str]) -> np.ndarray:
    """Fold index per file: multi-utterance speaker k -> fold k; other speakers round-robin."""
    cohort_spk = sorted({s for s in spk if s not in MAIN})
    fold_of_spk = {s: i for i, s in enumerate(MAIN)}
    fold_of_spk.update({s: i % N_FOLDS for i, s in enumerate(cohort_spk)})
    return np.array([fold_of_spk[s] for s in spk])


def fit_system(condition, enrol, test, spk, is_cohort, train_mask, ordered, top_n=TOP_N, features=FEATURES):
    """Cohort = cohort recordings in ``train_mask``; calibration on trials among ``train_mask``."""
    idx = np.flatnonzero(train_mask)
    cidx = np.flatnonzero(train_mask & is_cohort)
    m = ConditionModel(
        condition=condition,
        cohort=enrol[cidx],
        top_n=top_n,
        weights=np.ones(len(features)),
        bias=0.0,
        features=tuple(features),
    )
    pairs = idx[trial_pairs(len(idx), ordered)]
    excl = cidx[None, :] == np.arange(len(enrol))[:, None]  # a recording never normalises itself
    s = m.index_pairs(enrol, test, pairs, excl, excl)
    tgt = spk[pairs[:, 0]] == spk[pairs[:, 1]]
    m.fit({k: v[tgt] for k, v in s.items()}, {k: v[~tgt] for k, v in s.items()})
    return m


def fold_models(condition, enrol, test, spk, is_cohort, folds, ordered, **kw) -> dict:
    """(fold a, fold b) -> system fitted on the other folds (a == b: the other 4)."""
    return {
        (a, b): fit_system(condition, enrol, test, spk, is_cohort, (folds != a) & (folds != b), ordered, **kw)
        for a in range(N_FOLDS)
        for b in range(a, N_FOLDS)
    }


def held_out_scores(models, enrol, test, spk, folds, ordered):
    pairs = trial_pairs(len(spk), ordered)
    fa, fb = folds[pairs[:, 0]], folds[pairs[:, 1]]
    out = {k: np.zeros(len(pairs)) for k in ("raw", "centered", "snorm", "llr")}
    for (a, b), m in models.items():
        sel = ((fa == a) & (fb == b)) | ((fa == b) & (fb == a))
        if not sel.any():
            continue
        s = m.index_pairs(enrol, test, pairs[sel])
        for k in out:
            out[k][sel] = s[k]
    tgt = spk[pairs[:, 0]] == spk[pairs[:, 1]]
    return pairs, tgt, out


def multi_enrolment_scores(models, enrol, test, spk, folds):
    """Enrolment = 3 utterances of a multi-utterance speaker (3 disjoint sets per speaker), tested
    against every other recording; held out as above."""
    from audiotools.speakers.verification import enrol_model

    sets = []
    for s in MAIN:
        idx = np.flatnonzero(spk == s)
        sets += [idx[k : k + 3] for k in (0, 3, 6)]
    E = np.stack([enrol_model(enrol[ix]) for ix in sets])
    pairs = np.array([(i, j) for i, ix in enumerate(sets) for j in range(len(spk)) if j not in ix])
    sf = np.array([folds[ix[0]] for ix in sets])
    out = {k: np.zeros(len(pairs)) for k in ("raw", "centered", "snorm", "llr")}
    fa, fb = sf[pairs[:, 0]], folds[pairs[:, 1]]
    for (a, b), m in models.items():
        sel = ((fa == a) & (fb == b)) | ((fa == b) & (fb == a))
        if sel.any():
            s = m.index_pairs(E, test, pairs[sel])
            for k in out:
                out[k][sel] = s[k]
    tgt = np.array([spk[sets[i][0]] == spk[j] for i, j in pairs])
    return tgt, out


def report(tgt, s, sel=None) -> dict:
    if sel is not None:
        tgt = tgt[sel]
        s = {k: v[sel] for k, v in s.items()}
    d = summary(s["snorm"][tgt], s["snorm"][~tgt], s["llr"][tgt], s["llr"][~tgt], P_TARGET)
    d["eer_raw_cosine"] = summary(s["raw"][tgt], s["raw"][~tgt], p_target=P_TARGET)["eer"]
    d["min_dcf_raw_cosine"] = summary(s["raw"][tgt], s["raw"][~tgt], p_target=P_TARGET)["min_dcf"]
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in d.items()}


def timing(files: list[Path], tel_files: list[Path], n_trials: int = 1000) -> dict:
    """1,000 trials (a mix of clean and telephone tests) through score_trials, cold and warm cache."""
    from audiotools.speakers.embedding_cache import Extractor
    from audiotools.speakers.verification import Scorer, score_trials

    rng = np.random.default_rng(0)
    spk = np.array([speaker_of(f) for f in files])
    main_idx = np.flatnonzero(np.isin(spk, MAIN))
    rows = []
    while len(rows) < n_trials:
        i = int(rng.choice(main_idx))
        target = rng.random() < 0.3
        cands = np.flatnonzero((spk == spk[i]) if target else (spk != spk[i]))
        j = int(rng.choice(cands[cands != i]))
        test = tel_files[j] if rng.random() < 0.5 else files[j]
        rows.append((str(files[i]), str(test), [str(files[i])]))
    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("AUDIOTOOLS_CACHE")
        os.environ["AUDIOTOOLS_CACHE"] = cache
        try:
            scorer = Scorer(extractor=Extractor())
            t0 = time.perf_counter()
            score_trials(rows, scorer)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            score_trials(rows, scorer)
            warm = time.perf_counter() - t0
        finally:
            if old is None:
                os.environ.pop("AUDIOTOOLS_CACHE", None)
            else:
                os.environ["AUDIOTOOLS_CACHE"] = old
    n_files = len({r[1] for r in rows} | {r[0] for r in rows})
    return {
        "trials": len(rows),
        "distinct_files": n_files,
        "cold_cache_s": round(cold, 1),
        "warm_cache_s": round(warm, 1),
        "threads": int(__import__("torch").get_num_threads()),
    }


def timing_only(out: Path) -> int:
    """The 1,000-trial timing alone, merged into the results file the full run wrote."""
    lib_files = list_files()
    with tempfile.TemporaryDirectory() as tmpd:
        t = timing(lib_files, convert(lib_files, Path(tmpd), channel.TELEPHONE))
    results = json.loads(out.read_text()) if out.exists() else {}
    results["timing_1000_trials"] = t
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"1,000 trials: {t['cold_cache_s']} s with an empty cache, {t['warm_cache_s']} s warm")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "verify.json"))
    ap.add_argument(
        "--write-calibration",
        action="store_true",
        help="refit the shipped calibration on all LibriSpeech data (audiotools/data/calibration)",
    )
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument(
        "--timing-only",
        action="store_true",
        help="only time 1,000 trials and store the figure in the existing results file",
    )
    ap.add_argument("--conditions", default=",".join(channel.CONDITIONS))
    ap.add_argument("--top-n", type=int, default=TOP_N)
    ap.add_argument("--features", default=",".join(FEATURES))
    ap.add_argument("--no-synthetic", action="store_true", help="skip the espeak-ng (out-of-domain) evaluation")
    ap.add_argument("--no-voice-check", action="store_true", help="skip the enrolment one-voice check evaluation")
    ap.add_argument(
        "--voice-check-every",
        type=int,
        default=1,
        metavar="K",
        help="one-voice check on every K-th recording only, and 60/K mixtures (CPU time)",
    )
    ap.add_argument(
        "--quality",
        action="store_true",
        help="also measure EER/Cllr against net speech (1/2/3/5 s) and SNR (20/10/5 dB): the quality gate",
    )
    ap.add_argument(
        "--demo-trials",
        metavar="DIR",
        help="only write the synthetic voices and a labelled K.tsv into DIR (for voiceprints/make_demo.sh)",
    )
    args = ap.parse_args()
    if args.demo_trials:
        return demo_trials(Path(args.demo_trials))
    if not shutil.which("sox"):
        sys.exit("sox is needed for the telephone conversions")
    if args.timing_only:
        return timing_only(Path(args.out))
    from audiotools.speakers.embedding_cache import Extractor

    extractor = Extractor()
    t_start = time.perf_counter()
    lib_files = list_files()
    files = list(lib_files)
    spk_list = [speaker_of(f) for f in files]
    tmp_root = tempfile.TemporaryDirectory()
    use_syn = not args.no_synthetic and shutil.which("espeak-ng")
    if use_syn:
        for wav, sp in synthesize(Path(tmp_root.name)):
            files.append(wav)
            spk_list.append(sp)
    spk = np.array(spk_list)
    n_lib = len(lib_files)
    lib = np.arange(len(files)) < n_lib
    is_cohort = lib & ~np.isin(spk, MAIN)
    folds = folds_of(spk_list[:n_lib])
    features = tuple(args.features.split(","))
    conditions = args.conditions.split(",")
    results: dict = {
        "data": {
            "dir": str(DATA),
            "recordings": n_lib,
            "speakers": int(len(set(spk[lib]))),
            "multi_utterance_speakers": MAIN,
            "cohort_recordings": int(is_cohort.sum()),
            "synthetic_voices_out_of_domain": int(len(set(spk[~lib]))),
        },
        "protocol": {
            "folds": N_FOLDS,
            "held_out": "every LibriSpeech trial is scored by a cohort + calibration fitted on "
            "the folds that contain neither of its two speakers",
            "top_n": args.top_n,
            "features": list(features),
            "p_target": P_TARGET,
            "dcf": "normalised, C_miss = C_fa = 1",
            "cllr": "bits; log10 LRs clipped to the calibration's empirical bounds",
            "synthetic": "espeak-ng voices (out of domain): scored with the system fitted on "
            "all LibriSpeech data, then with the calibration refit on the other "
            "half of the voices (2-fold by voice), as `voiceprint calibrate` does",
        },
        "conditions": {},
    }
    shipped = {}
    with tmp_root as tmpd:
        tmp = Path(tmpd)
        tel_files_for_timing = None
        clean = None
        for cond in conditions:
            t0 = time.perf_counter()
            enrol = embed_all(extractor, files, cond)  # clean audio brought to `cond` (simulated)
            if cond == channel.WIDEBAND:
                test = clean = enrol
                ordered = False
                conv = "none (clean vs clean)"
            else:
                tfiles = convert(files, tmp, cond)
                if cond == channel.TELEPHONE:
                    tel_files_for_timing = tfiles[:n_lib]
                test = embed_all(extractor, tfiles, cond, native_condition=cond)
                ordered = True
                conv = " ".join(SOX[cond]("in.flac", "out"))
            if clean is None:
                clean = embed_all(extractor, files, channel.WIDEBAND)
            L = np.flatnonzero(lib)
            models = fold_models(
                cond, enrol[L], test[L], spk[L], is_cohort[L], folds, ordered, top_n=args.top_n, features=features
            )
            pairs, tgt, s = held_out_scores(models, enrol[L], test[L], spk[L], folds, ordered)
            raw_nc = np.sum(clean[L][pairs[:, 0]] * test[L][pairs[:, 1]], axis=1) / (
                np.linalg.norm(clean[L][pairs[:, 0]], axis=1) * np.linalg.norm(test[L][pairs[:, 1]], axis=1)
            )
            no_comp = summary(raw_nc[tgt], raw_nc[~tgt], p_target=P_TARGET)
            r = {
                "test_side": conv,
                "enrolment_side": "clean file"
                + ("" if cond == channel.WIDEBAND else f" passed through the {cond} simulation (channel.simulate)"),
                "baseline_raw_cosine_clean_enrolment_no_compensation": {
                    "eer": round(no_comp["eer"], 5),
                    "min_dcf": round(no_comp["min_dcf"], 5),
                },
                "held_out": report(tgt, s),
            }
            mt, ms = multi_enrolment_scores(models, enrol[L], test[L], spk[L], folds)
            r["held_out_3_utterance_enrolment"] = report(mt, ms)
            # the shipped system: cohort = all LibriSpeech cohort recordings, calibration on all trials
            m = fit_system(
                cond,
                enrol[L],
                test[L],
                spk[L],
                is_cohort[L],
                np.ones(n_lib, bool),
                ordered,
                top_n=args.top_n,
                features=features,
            )
            excl = np.flatnonzero(is_cohort[L])[None, :] == np.arange(n_lib)[:, None]
            r["all_data_fit_not_held_out"] = report(tgt, m.index_pairs(enrol[L], test[L], pairs, excl, excl))
            shipped[cond] = (m, enrol[is_cohort])
            h = r["held_out"]
            print(
                f"{cond:16s} held-out: EER {100 * h['eer']:.2f} % (raw cosine {100 * h['eer_raw_cosine']:.2f} %), "
                f"Cllr {h['cllr']:.3f} (min {h['min_cllr']:.3f}), minDCF(P={P_TARGET}) {h['min_dcf']:.3f}, "
                f"actDCF {h['act_dcf']:.3f}  [{h['n_target']} target / {h['n_nontarget']} non-target trials]; "
                f"uncompensated raw cosine EER {100 * no_comp['eer']:.2f} %",
                flush=True,
            )
            h3 = r["held_out_3_utterance_enrolment"]
            print(
                f"{'':16s} 3-utterance enrolment: EER {100 * h3['eer']:.2f} %, Cllr {h3['cllr']:.3f} "
                f"(min {h3['min_cllr']:.3f})  [{h3['n_target']} / {h3['n_nontarget']}]",
                flush=True,
            )
            if use_syn:
                r["synthetic_voices"] = synthetic_eval(m, enrol, test, spk, ~lib, ordered)
                a, b = r["synthetic_voices"]["shipped_calibration"], r["synthetic_voices"]["refit_held_out"]
                print(
                    f"{'':16s} synthetic voices (out of domain): EER {100 * a['eer']:.2f} %, Cllr {a['cllr']:.3f} "
                    f"with the shipped calibration, {b['cllr']:.3f} refit on other synthetic voices "
                    f"(min {b['min_cllr']:.3f})",
                    flush=True,
                )
            if args.quality and cond == channel.WIDEBAND:
                results["quality_gate"] = quality_eval(extractor, lib_files, models, enrol[L], spk[L], folds)
            r["seconds"] = round(time.perf_counter() - t0, 1)
            results["conditions"][cond] = r
        if args.write_calibration:
            write_shipped(shipped, extractor, results, args.top_n)
        if not args.no_voice_check and tel_files_for_timing is not None:
            k = max(1, args.voice_check_every)
            from audiotools.speakers.calibration import CalibrationSet
            from audiotools.speakers.verification import Scorer

            # the cohorts of this run's all-data systems (what --write-calibration ships)
            cal = CalibrationSet(extractor.model_id, extractor.weights_sha256, {c: m for c, (m, _) in shipped.items()})
            v = results["enrolment_voice_check"] = voice_check_eval(
                lib_files[::k],
                tel_files_for_timing[::k],
                n_mix=max(6, 60 // k),
                scorer=Scorer(extractor=extractor, calibration=cal),
            )
            for cond, r in v.items():
                print(
                    f"one-voice check, {cond}: {r['false_rejections']}/{r['single_speaker_recordings']} single-speaker "
                    f"recordings rejected (statistic 1st percentile {r['statistic_p1']}); mixtures detected: "
                    + ", ".join(f"{k}: {n}" for k, n in r["mixtures_detected"].items()),
                    flush=True,
                )
        if not args.no_timing and tel_files_for_timing is not None:
            results["timing_1000_trials"] = timing(lib_files, tel_files_for_timing)
            t = results["timing_1000_trials"]
            print(
                f"1,000 trials: {t['cold_cache_s']} s with an empty cache, {t['warm_cache_s']} s warm "
                f"({t['distinct_files']} files)"
            )
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    results["machine"] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


QUALITY_CUTS = (1.0, 2.0, 3.0, 5.0)
QUALITY_SNRS = (20.0, 10.0, 5.0)


def quality_eval(extractor, files, models, enrol, spk, folds) -> dict:
    """Held-out EER / Cllr of clean enrolment against short or noisy tests (see the module docstring)."""
    from audiotools.audio import SAMPLE_RATE
    from audiotools.audio.decode import pcm_sha256
    from audiotools.speakers.embedding_cache import Audio, cut, total
    from audiotools.speakers.quality import QualityOptions, assess, estimate_snr

    def as_audio(x):
        x = np.asarray(x, dtype=np.float32)
        return Audio(samples=x, pcm_sha256=pcm_sha256(x), channel=channel.ChannelInfo(condition=channel.WIDEBAND))

    def embed(audios):
        out = []
        for k in range(0, len(audios), 48):
            out += [r.embedding for r in extractor.embed([(a, None, channel.WIDEBAND) for a in audios[k : k + 48]])]
        return np.stack(out).astype(np.float64)

    audios = [Audio.load(f) for f in files]
    speech = [cut(a.samples, extractor.speech_in(a, None)) for a in audios]
    n_speech = np.array([len(x) / SAMPLE_RATE for x in speech])
    gate = QualityOptions()
    res: dict = {
        "protocol": "wideband held-out systems (5 folds, as above); enrolment: the clean full file; test: the "
        "first N s of the test file's VAD speech (tests with less speech left out), or the whole test file with "
        "white Gaussian noise at the given SNR relative to its VAD-speech power (numpy, seeded)",
        "net_speech": {},
        "snr": {},
    }
    for sec in QUALITY_CUTS:
        cut_audios = [as_audio(x[: int(sec * SAMPLE_RATE)]) for x in speech]
        test = embed(cut_audios)
        pairs, tgt, s = held_out_scores(models, enrol, test, spk, folds, ordered=True)
        sel = n_speech[pairs[:, 1]] >= sec
        r = report(tgt, s, sel)
        r["test_files"] = int((n_speech >= sec).sum())
        net = [total(extractor.speech_in(a, None)) for a, ok in zip(cut_audios, n_speech >= sec) if ok]
        r["mean_net_speech_s"] = round(float(np.mean(net)), 2)
        res["net_speech"][f"{sec:g} s"] = r
        print(
            f"quality: tests of {sec:g} s of speech: EER {100 * r['eer']:.2f} %, Cllr {r['cllr']:.3f} "
            f"(min {r['min_cllr']:.3f})  [{r['n_target']} / {r['n_nontarget']}]",
            flush=True,
        )
    rng = np.random.default_rng(12)
    sub = np.arange(0, len(audios), 2)  # noisy tests: every second recording (CPU time)
    res["snr_test_files"] = int(len(sub))
    clean_test = embed([as_audio(a.samples) for a in audios])
    for db in QUALITY_SNRS:
        noisy = []
        for i in sub:
            a, x = audios[i], speech[i]
            p = float(np.mean(np.square(x, dtype=np.float64)))
            noise = rng.standard_normal(len(a.samples)) * np.sqrt(p / 10 ** (db / 10))
            noisy.append(as_audio(a.samples + noise))
        est = []
        for a in noisy:
            e = estimate_snr(a.samples, extractor.speech(a))
            est.append(e["snr_db"])
        test = clean_test.copy()
        test[sub] = embed(noisy)
        pairs, tgt, s = held_out_scores(models, enrol, test, spk, folds, ordered=True)
        r = report(tgt, s, np.isin(pairs[:, 1], sub))
        est = np.array(est, dtype=np.float64)
        r["estimated_snr_db"] = {
            "median": round(float(np.median(est)), 1),
            "p10": round(float(np.percentile(est, 10)), 1),
            "p90": round(float(np.percentile(est, 90)), 1),
            "below_gate": int(sum(not assess(10.0, {"snr_db": v}, gate)["passed"] for v in est)),
            "files": len(est),
        }
        res["snr"][f"{db:g} dB"] = r
        print(
            f"quality: white noise at {db:g} dB: EER {100 * r['eer']:.2f} %, Cllr {r['cllr']:.3f} "
            f"(min {r['min_cllr']:.3f}); estimated SNR median {r['estimated_snr_db']['median']} dB "
            f"(p10 {r['estimated_snr_db']['p10']}, p90 {r['estimated_snr_db']['p90']}); "
            f"{r['estimated_snr_db']['below_gate']}/{len(est)} below the {gate.min_snr_db:g} dB gate",
            flush=True,
        )
    clean_est = [estimate_snr(a.samples, extractor.speech(a))["snr_db"] for a in audios]
    res["clean_estimated_snr_db"] = {
        "median": round(float(np.median(clean_est)), 1),
        "p5": round(float(np.percentile(clean_est, 5)), 1),
        "min": round(float(np.min(clean_est)), 1),
    }
    return res


def voice_check_eval(files: list[Path], tel_files: list[Path], n_mix: int = 60, scorer=None) -> dict:
    """The enrolment one-voice check (verification.two_speaker_test): false rejections on the
    single-speaker recordings, detections on two-speaker mixtures made from them."""
    from audiotools.audio.decode import pcm_sha256
    from audiotools.speakers.embedding_cache import Audio, cut
    from audiotools.speakers.verification import Scorer, two_speaker_test

    scorer = scorer or Scorer()
    out = {}
    for cond, paths in ((channel.WIDEBAND, files), (channel.TELEPHONE, tel_files)):
        print(f"one-voice check: {len(paths)} {cond} recordings, {n_mix} mixtures", flush=True)
        stats, rejected = [], 0
        for p in paths:
            r = two_speaker_test(scorer, Audio.load(p), None, cond)
            rejected += not r["single_speaker"]
            if r["statistic"] is not None:
                stats.append(r["statistic"])
        out[cond] = {
            "single_speaker_recordings": len(paths),
            "false_rejections": rejected,
            "statistic_p1": round(float(np.percentile(stats, 1)), 3),
            "statistic_p5": round(float(np.percentile(stats, 5)), 3),
        }
    rng = np.random.default_rng(7)
    spk = np.array([speaker_of(f) for f in files])
    audios = [Audio.load(f) for f in files]
    speech = [cut(a.samples, scorer.extractor.speech_in(a, None)) for a in audios]
    for cond in (channel.WIDEBAND, channel.TELEPHONE):
        hits = {0.5: [0, 0], 0.3: [0, 0], 0.2: [0, 0]}
        for k in range(n_mix):
            i, j = rng.choice(len(files), 2, replace=False)
            if spk[i] == spk[j]:
                continue
            frac = (0.5, 0.3, 0.2)[k % 3]
            parts, pa, pb, total = [], 0, 0, 0
            while total < 14 * 16000:  # alternating turns of 2-5 s, the second voice `frac` of the speech
                la = int(rng.uniform(2, 5) * 16000 * (1 - frac) / 0.5)
                lb = int(rng.uniform(2, 5) * 16000 * frac / 0.5)
                parts += [np.resize(np.roll(speech[i], -pa), la), np.resize(np.roll(speech[j], -pb), lb)]
                pa, pb, total = pa + la, pb + lb, total + la + lb
            x = np.concatenate(parts).astype(np.float32)
            if cond != channel.WIDEBAND:
                x = channel.simulate(x, cond)
            a = Audio(samples=x, pcm_sha256=pcm_sha256(x), channel=channel.ChannelInfo(condition=cond))
            r = two_speaker_test(scorer, a, None, cond)
            hits[frac][0] += not r["single_speaker"]
            hits[frac][1] += 1
        out[cond]["mixtures_detected"] = {f"second voice {int(100 * f)} %": f"{h}/{n}" for f, (h, n) in hits.items()}
    return out


def demo_trials(out: Path) -> int:
    """Synthetic voices + K.tsv (every A recording against every B recording, clean, telephone and
    GSM test sides) for fitting the demo store's calibration with ``audiotools voiceprint calibrate``."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        sys.exit("espeak-ng and sox are needed")
    out.mkdir(parents=True, exist_ok=True)
    voices = synthesize(out)
    a = [(w, sp) for w, sp in voices if w.stem.endswith("_A")]
    b = [(w, sp) for w, sp in voices if w.stem.endswith("_B")]
    bw = [w for w, _ in b]
    tests = {channel.WIDEBAND: bw}
    for cond in (channel.TELEPHONE, channel.TELEPHONE_CODEC):
        tests[cond] = convert(bw, out, cond)
    lines = []
    for tfiles in tests.values():
        for wa, sa in a:
            for (_, sb), tf in zip(b, tfiles):
                lines.append(f"{wa}\t{tf}\t{'target' if sa == sb else 'nontarget'}")
    (out / "K.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(voices)} recordings of {len(a)} synthetic voices and {len(lines)} trials to {out / 'K.tsv'}")
    return 0


def synthetic_eval(m, enrol, test, spk, syn_mask, ordered) -> dict:
    """The espeak-ng voices: shipped-style system as is, then with (a, b) refit 2-fold by voice."""
    S = np.flatnonzero(syn_mask)
    pairs = trial_pairs(len(S), ordered)
    sp = spk[S]
    tgt = sp[pairs[:, 0]] == sp[pairs[:, 1]]
    s = m.index_pairs(enrol[S], test[S], pairs)
    out = {"shipped_calibration": report(tgt, s)}
    voices = sorted(set(sp))
    vfold = {v: i % 2 for i, v in enumerate(voices)}
    f = np.array([vfold[v] for v in sp])
    pf = np.where(f[pairs[:, 0]] == f[pairs[:, 1]], f[pairs[:, 0]], -1)
    llr = np.full(len(pairs), np.nan)
    for k in (0, 1):
        mk = ConditionModel(
            condition=m.condition,
            cohort=m.cohort,
            top_n=m.top_n,
            weights=m.weights.copy(),
            bias=m.bias,
            features=m.features,
        )
        tr = pf == 1 - k
        mk.fit({q: v[tr & tgt] for q, v in s.items()}, {q: v[tr & ~tgt] for q, v in s.items()})
        ev = pf == k
        llr[ev] = mk.index_pairs(enrol[S], test[S], pairs[ev])["llr"]
    ev = pf >= 0
    s2 = {q: v[ev] for q, v in s.items()}
    s2["llr"] = llr[ev]
    out["refit_held_out"] = report(tgt[ev], s2)
    return out


def write_shipped(shipped: dict, extractor, results: dict, top_n: int) -> None:
    from audiotools.speakers.calibration import DATA_DIR, SCHEMA

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    conds = {}
    for cond, (m, cohort) in shipped.items():
        name = f"cohort-{cond}.npy"
        np.save(DATA_DIR / name, cohort.astype(np.float32), allow_pickle=False)
        conds[cond] = {
            "cohort": name,
            "cohort_size": int(len(cohort)),
            "top_n": int(m.top_n),
            "features": list(m.features),
            "weights": [round(float(w), 6) for w in m.weights],
            "bias": round(float(m.bias), 6),
            "llr_bounds": [round(b, 3) for b in m.bounds],
            "trials": m.info.get("trials"),
            "fitted_on": results["conditions"][cond]["test_side"],
            "held_out": {
                k: results["conditions"][cond]["held_out"][k] for k in ("eer", "cllr", "min_cllr", "min_dcf", "act_dcf")
            },
        }
    doc = {
        "schema": SCHEMA,
        "model": {"id": extractor.model_id, "weights_sha256": extractor.weights_sha256},
        "data": "LibriSpeech test-other: 5 speakers x 10 utterances + 126 single utterances of other speakers "
        "(../shared/data/speakers); cohort = the 126; calibration = all trials (benchmarks/verify.py)",
        "recipe": "embedding of VAD speech; centring on the cohort mean; AS-norm (top_n); "
        "ln LR = weights . features + bias; log10 LR clipped to llr_bounds",
        "conditions": conds,
    }
    (DATA_DIR / "calibration.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {DATA_DIR / 'calibration.json'}")


if __name__ == "__main__":
    sys.exit(main())
