"""Speaker verification: compare questioned speech with known samples, as calibrated evidence.

For a questioned recording and a known voice (an enrolled voiceprint, or reference files):

1. the recording's condition is detected (:mod:`audiotools.audio.condition`) and the known audio is brought
   to the same condition (channel simulation) before embedding;
2. each questioned unit (a diarised speaker, the whole recording, or a ``--segment``) is embedded
   from its speech (VAD) and scored: raw cosine, AS-norm against the condition's cohort, and a
   calibrated log10 likelihood ratio (:mod:`audiotools.speakers.calibration`);
3. each turn of at least ``MIN_TURN_SPEECH`` seconds of speech is scored on its own too, so the
   report shows which parts of the recording carry the evidence;
4. quality gate (:mod:`audiotools.speakers.quality`): each unit's net speech and estimated SNR are
   reported; below the thresholds of :class:`~audiotools.speakers.quality.QualityOptions` the verdict
   is "insufficient quality" instead of a likelihood ratio (unless ``force``, which flags it).

The likelihood ratio compares two propositions: H1 "the questioned speech and the known samples
come from the same speaker", H2 "they come from different speakers (from a population like the
calibration cohort: read English speech, LibriSpeech)". It is evidence to be weighed with the
prior odds, never proof of identity. Its verbal expression follows the ENFSI guideline for
evaluative reporting (2015), see :func:`verbal`.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotools.audio import condition as channel
from audiotools.errors import InputError, UsageError
from audiotools.speakers.calibration import CalibrationSet, ConditionModel
from audiotools.speakers.calibration import load as load_calibration
from audiotools.speakers.embedding_cache import Audio, Extractor, merge, total
from audiotools.speakers.quality import QualityOptions, assess, estimate_snr
from audiotools.speakers.vectors import l2_normalize

log = logging.getLogger(__name__)

MIN_TURN_SPEECH = 1.0  # seconds of speech for a turn to be scored on its own
MIN_UNIT_SPEECH = 1.0  # below this a questioned unit is not scored at all
MIN_ENROL_SPEECH = 3.0  # enrolment samples need at least this much VAD speech

# ENFSI (2015) verbal scale, by log10 LR; mirrored for support of the different-speaker proposition.
_SCALE = [
    (6.0, "extremely strong support"),
    (4.0, "very strong support"),
    (3.0, "strong support"),
    (2.0, "moderately strong support"),
    (1.0, "moderate support"),
    (math.log10(2.0), "weak support"),
]


BOUND_TOL = 0.0015  # log10 LRs are recorded to 3 decimals; a value this close to a bound is at it


def bound_side(llr10: float | None, bounds, tol: float = BOUND_TOL) -> str | None:
    """The calibration's clip bound (``"lower"`` / ``"upper"``) that ``llr10`` sits at, else None.

    A log10 LR at a bound was clipped there (:meth:`ConditionModel.llr10`): the true value may be
    more extreme, so it is shown as "≥" (upper) or "≤" (lower)."""
    if llr10 is None or bounds is None or len(bounds) != 2:
        return None
    lo, hi = float(bounds[0]), float(bounds[1])
    if float(llr10) <= lo + tol:
        return "lower"
    if float(llr10) >= hi - tol:
        return "upper"
    return None


def lr_text(llr10: float, bound: str | None = None) -> str:
    """The likelihood ratio of a log10 LR as shown everywhere (2 significant digits: "15,000",
    "1/91"), with "≥ " / "≤ " when it sits at the calibration's ``bound`` (:func:`bound_side`)."""
    return {"upper": "≥ ", "lower": "≤ "}.get(bound or "", "") + _lr_text(llr10)


def verbal(llr10: float, bound: str | None = None) -> str:
    """A plain-words statement of a log10 likelihood ratio (ENFSI verbal scale); ``bound``: the
    calibration bound the value was clipped at (:func:`bound_side`), said in the statement."""
    lr = 10**llr10
    mag = abs(llr10)
    strength = next((w for t, w in _SCALE if mag >= t), None)
    lr_txt = f"LR ≈ {_lr_text(llr10)}"
    about = "about"
    if bound in ("upper", "lower"):
        lr_txt = f"LR {lr_text(llr10, bound)}, the calibration's {bound} bound"
        about = "at least about"
    if strength is None:
        return (
            f"The evidence gives no meaningful support to either proposition ({lr_txt}): "
            "the scores are about as probable if the speakers are the same as if they are different."
        )
    if llr10 > 0:
        return (
            f"The evidence gives {strength} to the same-speaker proposition ({lr_txt}): the scores are "
            f"{about} {_times(lr)} times more probable if the questioned speech comes from the known speaker "
            "than from a different speaker. This is a likelihood ratio, not proof of identity."
        )
    return (
        f"The evidence gives {strength} to the different-speaker proposition ({lr_txt}): the scores are "
        f"{about} {_times(1 / lr)} times more probable if the questioned speech comes from a different speaker "
        "than from the known speaker. This is a likelihood ratio, not proof that the speakers differ."
    )


def verbal_short(llr10: float) -> str:
    mag = abs(llr10)
    strength = next((w for t, w in _SCALE if mag >= t), None)
    if strength is None:
        return "inconclusive"
    return f"{strength} for {'same' if llr10 > 0 else 'different'} speaker"


def _times(x: float) -> str:
    if x >= 1e6:
        return f"{x:.0e}".replace("e+0", "e").replace("e+", "e")
    if x >= 100:
        return f"{int(round(x, -int(math.floor(math.log10(x))) + 1)):,}"
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


def _lr_text(llr10: float) -> str:
    lr = 10**llr10
    if lr >= 1:
        return _times(lr)
    return f"1/{_times(1 / lr)}"


# ----------------------------------------------------------------------------------------- scorer
def enrol_model(embs: np.ndarray) -> np.ndarray:
    """One vector for a set of enrolment embeddings: the normalised mean of the normalised vectors."""
    return l2_normalize(l2_normalize(np.atleast_2d(embs)).mean(axis=0))


class Scorer:
    """Extractor + calibration for a store (or the shipped calibration only)."""

    def __init__(
        self,
        store_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        extractor: Extractor | None = None,
        calibration: CalibrationSet | None = None,
    ):
        self.extractor = extractor or Extractor(device)
        self.calibration = calibration or load_calibration(
            store_dir, self.extractor.model_id, self.extractor.weights_sha256
        )

    def model(self, condition: str) -> ConditionModel:
        return self.calibration.get(condition)

    def compare(self, enrol: np.ndarray, tests: np.ndarray, condition: str) -> dict[str, np.ndarray]:
        """Scores of one enrolment (k, 192) against tests (n, 192): arrays of length n."""
        m = self.model(condition)
        s = m.score_matrix(enrol_model(enrol)[None, :], np.atleast_2d(tests))
        return {k: v[0] for k, v in s.items()}


# -------------------------------------------------------------------------------- single speaker
# Rejection thresholds of the one-voice test (CAM++ windows): the 1st percentile of the statistic
# over 88 single-speaker LibriSpeech recordings of ../shared/data/speakers (every second one) in
# that condition (false rejection rate about 1 %; benchmarks/verify.py --voice-check-every 2). The
# codec condition was not measured and takes the telephone value. See two_speaker_test.
TWO_VOICE_THRESHOLD = {channel.WIDEBAND: 0.53, channel.TELEPHONE: 0.57, channel.TELEPHONE_CODEC: 0.57}
TWO_VOICE_MIN_FRACTION = 0.15
TWO_VOICE_MIN_SECONDS = 2.0


def _kmeans2(x: np.ndarray, starts: int = 5) -> np.ndarray:
    """Spherical 2-means (deterministic farthest-point starts); labels of the best of ``starts`` runs."""
    best = None
    rng = np.random.default_rng(0)
    for _ in range(starts):
        c0 = x[rng.integers(len(x))]
        cents = np.stack([c0, x[int(np.argmax(1 - x @ c0))]])
        lab = np.zeros(len(x), dtype=int)
        for _ in range(50):
            lab = np.argmax(x @ cents.T, axis=1)
            if lab.min() == lab.max():
                break
            new = l2_normalize(np.stack([x[lab == k].mean(0) for k in range(2)]), dtype=None)
            if np.allclose(new, cents):
                break
            cents = new
        fit = float(np.sum(np.max(x @ cents.T, axis=1)))
        if best is None or fit > best[0]:
            best = (fit, lab.copy())
    return best[1]


def two_speaker_test(scorer: Scorer, audio: Audio, regions, condition: str) -> dict:
    """Does this speech hold two voices? A split-and-compare test with an empirical null.

    1. CAM++ embeddings of 1.5 s windows every 0.75 s over the VAD speech, centred on the
       condition's cohort mean and length-normalised;
    2. the windows are split into two groups by spherical 2-means;
    3. statistic T = cosine between the two groups' mean directions. One voice split in two gives
       two similar halves (T high); two voices give two different ones (T low);
    4. H0 "one voice" is rejected when T < the 1st percentile of T over single-speaker recordings of
       the same condition (``TWO_VOICE_THRESHOLD``: significance level about 1 %) and the smaller
       group holds at least 15 % of the windows and 2 s of speech.

    Measured on LibriSpeech (benchmarks/verify.py --voice-check-every 2): 0/88 single-speaker
    recordings rejected wideband, 0/88 telephone; two-speaker mixtures (alternating turns, the
    second voice 20-50 % of the speech) caught 27/29 wideband, 29/30 in the telephone condition. Voices this embedding
    cannot separate (two similar talkers on one telephone line) pass; the check is a safeguard,
    not a guarantee.
    """
    from audiotools.speakers.campplus import WINDOW_SECONDS, WINDOW_STEP_SECONDS

    emb = scorer.extractor.window_embeddings(audio, regions, condition)
    thr = TWO_VOICE_THRESHOLD.get(condition, TWO_VOICE_THRESHOLD[channel.WIDEBAND])
    result = {
        "test": "2-means split of 1.5 s window embeddings; cosine between the groups' centroids "
        "against the 1 % quantile of single-speaker recordings",
        "windows": int(len(emb)),
        "threshold": thr,
        "statistic": None,
        "minor_fraction": 0.0,
        "single_speaker": True,
    }
    if len(emb) < 4:
        return result
    x = l2_normalize(emb - scorer.model(condition).mean)
    lab = _kmeans2(x)
    counts = np.bincount(lab, minlength=2)
    if counts.min() < 2:
        result["statistic"] = 1.0
        return result
    g = [l2_normalize(x[lab == k].mean(0)) for k in range(2)]
    t = float(g[0] @ g[1])
    minor = counts.min() / len(lab)
    minor_seconds = WINDOW_STEP_SECONDS * (counts.min() - 1) + WINDOW_SECONDS
    multi = t < thr and minor >= TWO_VOICE_MIN_FRACTION and minor_seconds >= TWO_VOICE_MIN_SECONDS
    result.update(
        statistic=round(t, 3),
        minor_fraction=round(float(minor), 3),
        minor_seconds=round(float(minor_seconds), 1),
        single_speaker=not multi,
    )
    return result


# --------------------------------------------------------------------------------------- reference
@dataclass
class Reference:
    """The known voice: embeddings per condition, with a description."""

    label: str
    native_condition: str
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # filled lazily for files
    audios: list[Audio] = field(default_factory=list)
    speech_seconds: float = 0.0
    source: dict = field(default_factory=dict)
    snr_db: float | None = None  # the lowest estimated SNR of the known samples (None: not measured)
    # known samples that fail the one-voice check (two_speaker_test), one line each: no likelihood
    # ratio is given against such a reference unless forced (see verify)
    voice_problems: list[str] = field(default_factory=list)

    def for_condition(self, scorer: Scorer, condition: str) -> np.ndarray:
        if condition not in self.embeddings:
            if not self.audios:
                raise UsageError(f"{self.label}: no embeddings for condition {condition}")
            res = scorer.extractor.embed([(a, None, condition) for a in self.audios])
            self.embeddings[condition] = np.stack([r.embedding for r in res])
        return self.embeddings[condition]


def _voice_problem(name: str, check: dict) -> str | None:
    """One line for a known sample that fails the one-voice check (None when it passes)."""
    if check.get("single_speaker", True):
        return None
    return (
        f"{name} holds more than one voice (the one-voice check splits its speech into two groups "
        f"{100 * (check.get('minor_fraction') or 0):.0f} % / {100 - 100 * (check.get('minor_fraction') or 0):.0f} % "
        f"at similarity {check.get('statistic')} < {check.get('threshold')})"
    )


def reference_from_store(store, name: str, scorer: Scorer) -> Reference:
    """The known voice of an enrolled voiceprint. ``source`` ties a likelihood ratio to what produced
    it: the record's sha256, its embeddings file and sha256, and every sample's file name, sha256
    (file and decoded PCM), segment, condition and enrolment time, as the record stores them."""
    import json

    from audiotools.fileio import sha256_bytes

    with store.lock(False):  # the record and the bytes hashed are the same version
        vp = store.get(name)
        raw = vp.path.read_bytes()
    store.check_model(vp, scorer.extractor.model_id, scorer.extractor.weights_sha256)
    emb = json.loads(raw.decode("utf-8")).get("embeddings") or {}
    snrs = [s.checks.get("quality", {}).get("snr_db") for s in vp.samples]
    keys = ("file", "sha256", "pcm_sha256", "segment", "duration", "speech_seconds", "condition", "enrolled")
    samples = []
    problems = []
    for s in vp.samples:
        check = s.checks.get("single_speaker") or {}
        samples.append({**{k: getattr(s, k) for k in keys}, "single_speaker": check.get("single_speaker")})
        p = _voice_problem(f"voiceprint sample {s.file}", check)  # enrolled with --no-voice-check
        if p:
            problems.append(p)
    return Reference(
        snr_db=min(snrs) if snrs and None not in snrs else None,
        label=vp.name,
        native_condition=vp.native_condition,
        embeddings=dict(vp.embeddings),
        speech_seconds=vp.speech_seconds,
        source={
            "voiceprint": vp.name,
            "record": str(vp.path),
            "record_sha256": sha256_bytes(raw),
            "embeddings": {"file": emb.get("file"), "sha256": emb.get("sha256")},
            "samples": samples,
        },
        voice_problems=problems,
    )


def reference_from_files(files: Sequence[str], scorer: Scorer) -> Reference:
    """The known voice of reference files. Each file is checked as an enrolment sample is: at least
    ``MIN_UNIT_SPEECH`` of speech (else an error), and one voice (:func:`two_speaker_test`, in the
    file's own condition; a file that fails goes into ``voice_problems``)."""
    audios = [Audio.load(f) for f in files]
    speech = 0.0
    snrs = []
    checks = []
    problems = []
    for a in audios:
        sp = total(scorer.extractor.speech_in(a, None))
        if sp < MIN_UNIT_SPEECH:
            raise InputError(a.path, f"only {sp:.1f} s of speech: too little for a reference sample")
        speech += sp
        snrs.append(estimate_snr(a.samples, scorer.extractor.speech(a))["snr_db"])
        check = {k: v for k, v in two_speaker_test(scorer, a, None, a.channel.condition).items() if k != "test"}
        checks.append(check)
        p = _voice_problem(Path(a.path).name, check)
        if p:
            problems.append(p)
    label = "the speaker of " + ", ".join(Path(f).name for f in files)
    return Reference(
        label=label,
        native_condition=channel.worst(*(a.channel.condition for a in audios)),
        audios=audios,
        speech_seconds=round(speech, 2),
        source={
            "files": [
                {
                    "file": a.path,
                    "sha256": a.sha256,
                    "condition": a.channel.condition,
                    "snr_db": q,
                    "single_speaker": c,
                }
                for a, q, c in zip(audios, snrs, checks)
            ]
        },
        snr_db=min((q for q in snrs if q is not None), default=None),
        voice_problems=problems,
    )


# -------------------------------------------------------------------------------------- questioned
def diarized_turns(decoded, options=None) -> list[dict]:
    """Speaker turns of ``decoded`` from the diariser: ``[{"start", "end", "speaker"}]``."""
    from audiotools.diarize import diarization

    ann = diarization.diarize(decoded, options)
    return [
        {"start": float(seg.start), "end": float(seg.end), "speaker": str(label)}
        for seg, _, label in ann.itertracks(yield_label=True)
    ]


def units_from_turns(turns: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """Speaker -> their turns, with stretches where another speaker overlaps removed."""
    by: dict[str, list[tuple[float, float]]] = {}
    for t in turns:
        by.setdefault(t["speaker"], []).append((float(t["start"]), float(t["end"])))
    out = {}
    for spk, regs in by.items():
        others = merge([r for s, rr in by.items() if s != spk for r in rr])
        own = merge(regs)
        clean: list[tuple[float, float]] = []
        for a, b in own:
            pieces = [(a, b)]
            for oa, ob in others:
                nxt = []
                for pa, pb in pieces:
                    if ob <= pa or oa >= pb:
                        nxt.append((pa, pb))
                        continue
                    if oa > pa:
                        nxt.append((pa, oa))
                    if ob < pb:
                        nxt.append((ob, pb))
                pieces = nxt
            clean += pieces
        out[spk] = [r for r in clean if r[1] - r[0] > 0.05] or own
    return out


def verify(
    recording: str | os.PathLike,
    reference: Reference,
    scorer: Scorer,
    *,
    segment: tuple[float, float] | None = None,
    turns: list[dict] | None = None,
    diarize: bool = True,
    condition: str | None = None,
    quality: QualityOptions | None = None,
) -> dict:
    """Compare ``recording`` (per diarised speaker, or ``segment``) with ``reference``.

    Each unit carries ``quality`` (net speech, estimated SNR, the gate's verdict). A unit that fails
    the gate gets ``verdict: "insufficient quality"`` and no likelihood ratio, unless
    ``quality.force``: then the likelihood ratio is given with ``quality_warning: true``.
    """
    from audiotools.audio.decode import load_audio

    quality = quality or QualityOptions()

    decoded = load_audio(recording)
    test = Audio.from_decoded(decoded, condition)
    notes: list[str] = []
    if segment is not None:
        s, e = segment
        if s >= test.duration:
            raise UsageError(f"segment {s:g}-{e:g} starts after the end of {recording} ({test.duration:.1f} s)")
        units = {f"segment {s:g}-{min(e, test.duration):g} s": [(s, min(e, test.duration))]}
        unit_turns = units
        mode = "segment"
    else:
        if turns is None and diarize:
            turns = diarized_turns(decoded)
        if turns:
            units = units_from_turns(turns)
            unit_turns = {spk: merge(r) for spk, r in units.items()}
            mode = "diarisation"
        else:
            units = {"whole recording": [(0.0, test.duration)]}
            unit_turns = units
            mode = "whole recording"
    cond = channel.worst(test.channel.condition, reference.native_condition)
    if cond != test.channel.condition:
        notes.append(
            f"the known samples are {channel.DESCRIPTIONS[reference.native_condition]}; "
            f"the questioned audio was brought to that condition too"
        )
    enrol = reference.for_condition(scorer, cond)
    model = scorer.model(cond)
    results = []
    requests, owners = [], []
    for spk, regs in units.items():
        requests.append((test, regs, cond))
        owners.append((spk, None))
        for r in unit_turns[spk]:
            requests.append((test, [r], cond))
            owners.append((spk, r))
    embs = scorer.extractor.embed(requests)
    per: dict[str, dict] = {}
    for (spk, r), em in zip(owners, embs):
        if r is None:
            per[spk] = {"speaker": spk, "emb": em, "turns": []}
        elif em.speech_seconds >= MIN_TURN_SPEECH:
            per[spk]["turns"].append((r, em))
    em_model = enrol_model(enrol)[None, :]
    vad = scorer.extractor.speech(test)
    ref_q = assess(reference.speech_seconds, {"snr_db": reference.snr_db}, quality)
    if reference.voice_problems:  # a known sample with two voices fails the comparison like poor quality
        ref_q["passed"] = False
        ref_q["reasons"] += reference.voice_problems
    for spk, d in per.items():
        em = d["emb"]
        q = assess(em.speech_seconds, estimate_snr(test.ensure_samples(), vad, units[spk]), quality)
        if not ref_q["passed"]:  # the known side is part of every comparison
            q["passed"] = False
            q["reasons"] += [f"known samples: {r}" for r in ref_q["reasons"]]
        unit = {
            "speaker": spk,
            "speech_seconds": em.speech_seconds,
            "regions": [[round(a, 3), round(b, 3)] for a, b in units[spk]],
            "quality": q,
        }
        if em.speech_seconds < MIN_UNIT_SPEECH:
            unit.update(
                scored=False,
                verdict="insufficient quality",
                reason=f"only {em.speech_seconds:.1f} s of speech (nothing below {MIN_UNIT_SPEECH:g} s is compared)",
            )
            results.append(unit)
            continue
        if not q["passed"] and not quality.force:
            verdict = "known samples hold more than one voice" if reference.voice_problems else "insufficient quality"
            unit.update(
                scored=False,
                verdict=verdict,
                reason=f"{verdict}: " + "; ".join(q["reasons"]) + " (--force gives the likelihood ratio)",
            )
            results.append(unit)
            continue
        s = model.score_matrix(em_model, em.embedding[None, :])
        bound = bound_side(float(s["llr"][0, 0]), model.bounds)
        llr = round(float(s["llr"][0, 0]), 3)  # the value recorded; every text of it is made from this
        seg_rows = []
        if d["turns"]:
            te = np.stack([e.embedding for _, e in d["turns"]])
            ss = model.score_matrix(em_model, te)
            for k, (r, e) in enumerate(d["turns"]):
                seg_rows.append(
                    {
                        "start": round(r[0], 3),
                        "end": round(r[1], 3),
                        "speech_seconds": e.speech_seconds,
                        "score": round(float(ss["raw"][0, k]), 4),
                        "snorm": round(float(ss["snorm"][0, k]), 3),
                        "llr": round(float(ss["llr"][0, k]), 3),
                        "llr_clipped": bound_side(float(ss["llr"][0, k]), model.bounds) is not None,
                    }
                )
        unit.update(
            scored=True,
            verdict="likelihood ratio"
            if q["passed"]
            else "likelihood ratio despite "
            + ("known samples with more than one voice" if reference.voice_problems else "insufficient quality")
            + " (forced)",
            quality_warning=not q["passed"],
            score=round(float(s["raw"][0, 0]), 4),
            snorm=round(float(s["snorm"][0, 0]), 3),
            llr=llr,
            lr=float(f"{10**llr:.3g}"),
            llr_clipped=bound is not None,  # at the calibration's bound: the true LR may be more extreme
            llr_bound=bound,
            lr_text=lr_text(llr, bound),
            verbal=verbal(llr, bound),
            support=verbal_short(llr),
            segments=seg_rows,
        )
        results.append(unit)
    scored = [u for u in results if u.get("scored")]
    best = max(scored, key=lambda u: u["llr"]) if scored else None
    return {
        "recording": {
            "path": str(recording),
            "sha256": decoded.info.sha256,
            "duration": round(test.duration, 3),
            "channel": test.channel.to_dict(),
        },
        "reference": {
            "label": reference.label,
            "condition": reference.native_condition,
            "speech_seconds": reference.speech_seconds,
            "quality": ref_q,
            "single_speaker": not reference.voice_problems,
            **reference.source,
        },
        "condition": cond,
        "condition_description": channel.DESCRIPTIONS[cond],
        "mode": mode,
        "propositions": {
            "H1": f"the questioned speech was spoken by {reference.label}",  # label: a name
            "H2": "the questioned speech was spoken by someone else (a speaker from the calibration population)",
        },
        "method": {
            "embedding": scorer.extractor.model_id,
            "embedding_weights_sha256": scorer.extractor.weights_sha256,
            "quality_gate": {
                "min_net_speech": quality.min_net_speech,
                "min_snr_db": quality.min_snr_db,
                "forced": quality.force,
            },
            "normalisation": f"AS-norm, top {model.top_n} of a {len(model.cohort)}-speaker cohort",
            "calibration": model.source,
            "llr_bounds": list(model.bounds),
        },
        "units": results,
        "best": best["speaker"] if best else None,
        "notes": notes,
        "disclaimer": "Likelihood ratios are evidence for one proposition over the other, to be combined with "
        "the other evidence and the prior odds; they are not proof of identity.",
    }


# ------------------------------------------------------------------------------------------ trials
def read_trials(path: str | os.PathLike, with_key: bool = False) -> list[tuple]:
    """Rows of a trials (``ENROL_FILES<TAB>TEST``) or key (``...<TAB>target|nontarget``) file.

    Relative file paths are taken relative to the trials file's directory when they exist there,
    else to the current directory. Blank lines and lines starting with ``#`` are skipped.
    """
    from audiotools.fileio import read_text_input

    p = Path(path)
    text = read_text_input(p, "trials")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.rstrip("\r\n").split("\t")
        need = 3 if with_key else 2
        if len(cols) < need:
            raise InputError(p, f"line {n}: expected {need} tab-separated columns, got {len(cols)}")
        if n == 1 and cols[0].lower() in ("enrol", "enrolment", "enrollment", "model"):
            continue  # header
        enrol = [e.strip() for e in cols[0].split(",") if e.strip()]
        if not enrol or not cols[1].strip():
            raise InputError(p, f"line {n}: empty enrolment or test column")
        row = [cols[0], cols[1].strip(), enrol]
        if with_key:
            lab = cols[2].strip().lower()
            if lab not in ("target", "nontarget", "non-target"):
                raise InputError(p, f"line {n}: label {cols[2]!r} is not target/nontarget")
            row.append(lab == "target")
        rows.append(tuple(row))
    return rows


def _resolve(f: str, base: Path) -> str:
    if os.path.isabs(f):
        return f
    cand = base / f
    return str(cand) if cand.exists() else f


KEEP_DECODED_BYTES = 512 << 20  # decoded samples score_trials keeps between its passes (about 2.3 h)


def score_trials(rows: Sequence[tuple], scorer: Scorer, base_dir: str | os.PathLike = ".", progress=None) -> list[dict]:
    """Score (enrol column, test file, [enrol files]) trials. One dict per trial, in order."""
    base = Path(base_dir)
    files = sorted({_resolve(f, base) for r in rows for f in (r[2] + [r[1]])})
    # pass 1: decode each file once to learn its condition and PCM hash. The samples are kept for
    # pass 2 while they fit in KEEP_DECODED_BYTES; beyond that a file is decoded again on a cache miss
    info: dict[str, Audio] = {}
    kept = 0
    for f in files:
        a = Audio.load(f)
        if kept + a.samples.nbytes <= KEEP_DECODED_BYTES:
            kept += a.samples.nbytes
            info[f] = a
        else:
            info[f] = a.light()
        if progress:
            progress("decode", len(info), len(files))
    trial_cond = []
    needed: dict[str, set[str]] = {}
    for r in rows:
        enrol = [_resolve(f, base) for f in r[2]]
        test = _resolve(r[1], base)
        c = channel.worst(info[test].channel.condition, *(info[e].channel.condition for e in enrol))
        trial_cond.append((enrol, test, c))
        for f in enrol + [test]:
            needed.setdefault(f, set()).add(c)
    # pass 2: embeddings, a block of files at a time; a file is decoded again only on a cache miss
    emb: dict[tuple[str, str], np.ndarray] = {}
    block = 48
    flist = list(needed)
    for k in range(0, len(flist), block):
        reqs, keys = [], []
        for f in flist[k : k + block]:
            a = info[f]
            info[f] = a.light()  # the samples are not needed after this block
            for c in sorted(needed[f]):
                reqs.append((a, None, c))
                keys.append((f, c))
        for key, res in zip(keys, scorer.extractor.embed(reqs)):
            emb[key] = res.embedding
        if progress:
            progress("embed", min(k + block, len(flist)), len(flist))
    # scoring, grouped by condition
    out: list[dict | None] = [None] * len(rows)
    by_cond: dict[str, list[int]] = {}
    for i, (_, _, c) in enumerate(trial_cond):
        by_cond.setdefault(c, []).append(i)
    for c, idx in by_cond.items():
        m = scorer.model(c)
        E = np.stack([enrol_model(np.stack([emb[(f, c)] for f in trial_cond[i][0]])) for i in idx])
        T = np.stack([emb[(trial_cond[i][1], c)] for i in idx])
        s = m.score_pairs(E, T)
        for j, i in enumerate(idx):
            out[i] = {
                "score": float(s["raw"][j]),
                "snorm": float(s["snorm"][j]),
                "llr": float(s["llr"][j]),
                "condition": c,
            }
    return out  # type: ignore[return-value]


def write_scores(path: str | os.PathLike, rows: Sequence[tuple], scores: Sequence[dict], details: bool = False) -> None:
    """``ENROLMENT<TAB>TEST<TAB>score<TAB>llr`` per trial (no header; the first two columns exactly as
    in the trials file). ``details`` appends the AS-norm score and the condition compared in."""
    from audiotools.fileio import atomic_open

    with atomic_open(path, "w") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, escapechar="\\")
        for r, s in zip(rows, scores):
            row = [r[0], r[1], f"{s['score']:.6f}", f"{s['llr']:.4f}"]
            if details:
                row += [f"{s['snorm']:.4f}", s["condition"]]
            w.writerow(row)


def read_scores(path: str | os.PathLike) -> dict[tuple[str, str], dict]:
    from audiotools.fileio import read_text_input

    p = Path(path)
    text = read_text_input(p, "scores")
    # (line number in the file, line), blank and comment lines left out
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputError(p, "no scores")
    header = lines[0][1].split("\t")
    if "score" in [h.strip().lower() for h in header]:
        header = [h.strip().lower() for h in header]
        cols = {h: i for i, h in enumerate(header)}
        lines = lines[1:]
    else:
        cols = {"enrolment": 0, "test": 1, "score": 2}
        if len(header) > 3:
            cols["llr"] = 3
    out = {}
    for n, ln in lines:
        c = ln.split("\t")
        try:
            key = (c[0].strip(), c[1].strip())
            d = {"score": float(c[cols["score"]])}
            if "llr" in cols and len(c) > cols["llr"] and c[cols["llr"]].strip():
                d["llr"] = float(c[cols["llr"]])
        except (IndexError, ValueError):
            raise InputError(p, f"line {n}: expected ENROLMENT<TAB>TEST<TAB>score[<TAB>llr]") from None
        out[key] = d
    return out


# ------------------------------------------------------------------------------------- recalibration
MIN_CAL_TARGETS = 5
MIN_CAL_NONTARGETS = 20


def recalibrate(
    store_dir: str | os.PathLike,
    rows: Sequence[tuple],
    scorer: Scorer,
    base_dir: str | os.PathLike = ".",
    source: str | None = None,
    description: str | None = None,
    progress=None,
) -> dict:
    """Refit the logistic calibration on labelled trials and save it in the store.

    ``rows`` come from :func:`read_trials` with ``with_key=True``. Trials are grouped by the
    condition they are scored in; each condition with at least ``MIN_CAL_TARGETS`` target and
    ``MIN_CAL_NONTARGETS`` non-target trials gets new weights (the cohort stays the shipped one).
    Writes ``<store>/_calibration.json`` atomically under the store lock, keeping conditions it
    does not refit. Returns a report per condition (Cllr before/after, min Cllr, EER).
    """
    import json

    from audiotools.fileio import atomic_write_text, sha256_file
    from audiotools.speakers.calibration import SCHEMA, STORE_FILE, ConditionModel, cllr, eer, min_cllr
    from audiotools.speakers.voiceprints import VoiceprintStore
    from audiotools.transcript import utc_now

    scores = score_trials(rows, scorer, base_dir, progress=progress)
    by: dict[str, list[int]] = {}
    for i, s in enumerate(scores):
        by.setdefault(s["condition"], []).append(i)
    report: dict[str, dict] = {}
    fitted: dict[str, dict] = {}
    for cond, idx in sorted(by.items()):
        lab = np.array([rows[i][3] for i in idx])
        sn = np.array([scores[i]["snorm"] for i in idx])
        old = np.array([scores[i]["llr"] for i in idx])
        nt, nn = int(lab.sum()), int((~lab).sum())
        rep = {"target": nt, "nontarget": nn}
        if nt < MIN_CAL_TARGETS or nn < MIN_CAL_NONTARGETS:
            rep["skipped"] = (
                f"needs at least {MIN_CAL_TARGETS} target and {MIN_CAL_NONTARGETS} non-target trials in this condition"
            )
            report[cond] = rep
            continue
        base = scorer.model(cond)
        m = ConditionModel(
            condition=cond, cohort=base.cohort, top_n=base.top_n, weights=np.ones(1), bias=0.0, features=("snorm",)
        )
        m.fit({"snorm": sn[lab]}, {"snorm": sn[~lab]})
        new = m.llr10({"snorm": sn})
        rep.update(
            eer=round(eer(sn[lab], sn[~lab]), 5),
            cllr_before=round(cllr(old[lab], old[~lab]), 4),
            cllr_after=round(cllr(new[lab], new[~lab]), 4),
            min_cllr=round(min_cllr(sn[lab], sn[~lab]), 4),
            weights=[round(float(w), 6) for w in m.weights],
            bias=round(m.bias, 6),
            llr_bounds=[round(b, 3) for b in m.bounds],
        )
        report[cond] = rep
        fitted[cond] = {
            "top_n": base.top_n,
            "features": ["snorm"],
            "weights": rep["weights"],
            "bias": rep["bias"],
            "llr_bounds": rep["llr_bounds"],
            "trials": {"target": nt, "nontarget": nn},
            "fitted_on": description or (f"labelled trials {Path(source).name}" if source else "labelled trials"),
            "fitted": utc_now(),
            "in_sample": {"eer": rep["eer"], "cllr": rep["cllr_after"], "min_cllr": rep["min_cllr"]},
        }
    if not fitted:
        raise UsageError(
            "no condition has enough labelled trials to refit the calibration "
            f"(at least {MIN_CAL_TARGETS} target and {MIN_CAL_NONTARGETS} non-target trials): "
            + "; ".join(f"{c}: {r['target']} target / {r['nontarget']} non-target" for c, r in report.items())
        )
    store = VoiceprintStore(store_dir)
    path = store.dir / STORE_FILE
    with store.lock(True):
        doc = {
            "schema": SCHEMA,
            "model": {"id": scorer.extractor.model_id, "weights_sha256": scorer.extractor.weights_sha256},
            "conditions": {},
        }
        if path.is_file():
            try:
                old_doc = json.loads(path.read_text(encoding="utf-8"))
                if (old_doc.get("model") or {}).get("id") == scorer.extractor.model_id:
                    doc["conditions"].update(old_doc.get("conditions") or {})
            except (OSError, ValueError):
                pass  # a corrupt file is replaced
        doc["conditions"].update(fitted)
        doc["updated"] = utc_now()
        if source and Path(source).is_file():
            for c in fitted:
                doc["conditions"][c]["trials_sha256"] = sha256_file(source)
        atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return {"file": str(path), "conditions": report}
