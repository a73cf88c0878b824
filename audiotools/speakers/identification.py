"""Pipeline step ``identify``: name diarised speakers from enrolled voiceprints (open set).

For each diarised speaker (``SPEAKER_xx``) the speech of their turns (overlaps with other speakers
removed, VAD inside) is embedded in the recording's condition and compared with every enrolled
person (:mod:`audiotools.speakers.verification`), giving a calibrated log10 likelihood ratio ``llr[i, k]``
for "speaker i is person k" against "speaker i is someone else".

Decision (Bayes, open set). ``prior`` is the prior probability that a diarised speaker is one of
the N enrolled people, spread evenly over them (each person gets prior/N); "someone else" keeps
1 - prior. The posterior log-odds that speaker i is person k are::

    ln( (prior/N) LR_ik ) - ln( (1 - prior) + (prior/N) * sum_{j != k} LR_ij )

(with one enrolled person this is ``ln LR + logit(prior)``). Person k is named when these log-odds
exceed ``ln(false_name_cost / missed_name_cost)``: with the default equal costs, when naming is
more probably right than wrong. Two diarised speakers can never be the same person: the pairing is
the assignment (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``) that maximises the
summed log-odds margins, each speaker being free to stay unnamed; a person assigned to one speaker
then stops competing for the others, whose posteriors are recomputed, until the pairing is stable
(:func:`decide`). A speaker who is not named keeps
``SPEAKER_xx``; the best candidate and its evidence are still reported.

Quality gate (:mod:`audiotools.speakers.quality`): every compared speaker's net speech and estimated
SNR are reported; a speaker below ``options.quality``'s thresholds is not named ("insufficient
quality") and takes no part in the assignment, unless ``quality.force`` (then the evidence is used
and flagged with ``quality_warning``).

Output: ``speakers[label]["identity"] = {"name", "score", "llr", "decision", ...}`` or None;
segment and word ``speaker`` fields and ``extra["diarization"]["turns"]`` show the name;
``extra["identification"]`` records the store, prior, costs, condition and all scores.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from audiotools.audio import condition as channel
from audiotools.errors import UsageError
from audiotools.options import Options
from audiotools.speakers.calibration import LN10
from audiotools.speakers.quality import QualityOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentifyOptions(Options):
    """The ``identify`` step (and ``audiotools identify``)."""

    STEP: ClassVar[str] = "identify"

    enabled: bool = True
    voiceprints: str | None = None  # store directory; None: $AUDIOTOOLS_VOICEPRINTS or ./voiceprints
    prior: float = 0.5  # P(a diarised speaker is one of the enrolled people)
    false_name_cost: float = 1.0  # cost of naming the wrong person, relative to ...
    missed_name_cost: float = 1.0  # ... the cost of leaving an enrolled person unnamed
    min_speech: float = 1.5  # seconds of speech a diarised speaker needs to be compared at all
    quality: QualityOptions = QualityOptions()  # the quality gate: net speech and SNR thresholds, force
    condition: str | None = None  # force a recording condition (wideband/telephone/telephone-codec)
    device: str = "auto"  # speaker embeddings on: auto | cpu | cuda (batch: the engine's device)

    def check(self) -> None:
        if not 0.0 < self.prior < 1.0:
            raise UsageError(f"prior must be strictly between 0 and 1, got {self.prior:g}")
        if self.false_name_cost <= 0 or self.missed_name_cost <= 0:
            raise UsageError("decision costs must be positive")


# ------------------------------------------------------------------------------------------- decide
def posterior_log_odds(llr10: np.ndarray, prior: float, unavailable: np.ndarray | None = None) -> np.ndarray:
    """(speakers, people) matrix of natural-log posterior odds that speaker i is person k.

    ``unavailable[i, k]``: person k is known not to be speaker i (assigned to another speaker), so
    drops out of speaker i's competing hypotheses.
    """
    L = np.atleast_2d(np.asarray(llr10, dtype=np.float64)) * LN10
    n = L.shape[1]
    if n == 0:
        return L
    lp = math.log(prior / n)
    l0 = math.log(1.0 - prior)
    comp = L + lp
    if unavailable is not None:
        comp = np.where(unavailable, -np.inf, comp)
    out = np.empty_like(L)
    for k in range(n):
        others = np.delete(comp, k, axis=1)
        denom = np.logaddexp.reduce(np.concatenate([np.full((L.shape[0], 1), l0), others], axis=1), axis=1)
        out[:, k] = L[:, k] + lp - denom
    return out


def decide(
    llr10: np.ndarray, prior: float, threshold: float = 0.0, rounds: int = 5
) -> tuple[dict[int, int], np.ndarray]:
    """Joint naming: (speaker -> person, final posterior log-odds).

    Alternates the assignment with conditioning: a person assigned to one speaker is no longer a
    competing explanation for the others, so their posteriors are recomputed without that person,
    until the assignment is stable (a coordinate-wise approximation of the joint posterior under
    "one person per speaker").
    """
    llr10 = np.atleast_2d(llr10)
    lo = posterior_log_odds(llr10, prior)
    pairs = assign(lo, threshold)
    for _ in range(rounds):
        unavailable = np.zeros(llr10.shape, dtype=bool)
        for i, k in pairs.items():
            unavailable[np.arange(llr10.shape[0]) != i, k] = True
        lo = posterior_log_odds(llr10, prior, unavailable)
        new = assign(np.where(unavailable, -np.inf, lo), threshold)
        if new == pairs:
            break
        pairs = new
    return pairs, lo


def assign(log_odds: np.ndarray, threshold: float = 0.0) -> dict[int, int]:
    """Speaker index -> person index, one person per speaker at most, maximising summed margins."""
    from scipy.optimize import linear_sum_assignment

    m, n = log_odds.shape
    if m == 0 or n == 0:
        return {}
    gain = log_odds - threshold
    big = np.zeros((m, n + m))
    big[:, :n] = np.where(gain > 0, gain, -1e9)  # a non-positive margin is never worth naming
    big = np.nan_to_num(big, neginf=-1e9)
    rows, cols = linear_sum_assignment(big, maximize=True)
    return {int(r): int(c) for r, c in zip(rows, cols) if c < n and gain[r, c] > 0}


# ----------------------------------------------------------------------------------------- identify
def identify(audio, turns: list[dict], store=None, options: IdentifyOptions | None = None, *, scorer=None) -> dict:
    """Match diarised speakers against a voiceprint store.

    ``audio``: a DecodedAudio (or :class:`audiotools.speakers.embedding_cache.Audio`); ``turns``:
    ``[{"start", "end", "speaker"}]``. Returns ``{"identities": {label: identity or None},
    "candidates": {label: best match details}, "info": {...}}``; empty when the store is missing or
    has no records.
    """
    from audiotools.speakers.embedding_cache import Audio
    from audiotools.speakers.quality import assess, estimate_snr
    from audiotools.speakers.verification import Scorer, bound_side, units_from_turns
    from audiotools.speakers.voiceprints import VoiceprintStore

    options = options or IdentifyOptions()
    prior, min_speech, condition = options.prior, options.min_speech, options.condition
    store = store if isinstance(store, VoiceprintStore) else VoiceprintStore(store)
    if not store.exists() or store.is_empty():
        return {
            "identities": {},
            "candidates": {},
            "info": {"store": str(store.dir), "people": 0, "skipped": "no voiceprints"},
        }
    scorer = scorer or Scorer(store.dir)
    people = store.comparable(scorer.extractor.model_id, scorer.extractor.weights_sha256)
    a = audio if isinstance(audio, Audio) else Audio.from_decoded(audio, condition)
    units = units_from_turns(turns) if turns else {}
    labels = sorted(units)
    embedded = scorer.extractor.embed([(a, units[lab], a.channel.condition) for lab in labels]) if labels else []
    # a person enrolled only from telephone audio forces the telephone condition for them
    llr = np.full((len(labels), len(people)), np.nan)
    raw = np.full_like(llr, np.nan)
    conds = {}
    vad = scorer.extractor.speech(a) if labels else []
    quality = {
        lab: assess(e.speech_seconds, estimate_snr(a.ensure_samples(), vad, units[lab]), options.quality)
        for lab, e in zip(labels, embedded)
    }
    long_enough = [i for i, e in enumerate(embedded) if e.speech_seconds >= min_speech]
    usable = [i for i in long_enough if quality[labels[i]]["passed"] or options.quality.force]
    for k, vp in enumerate(people):
        cond = channel.worst(a.channel.condition, vp.native_condition)
        conds[vp.name] = cond
        if not usable:
            continue
        if cond == a.channel.condition:
            tests = np.stack([embedded[i].embedding for i in usable])
        else:
            res = scorer.extractor.embed([(a, units[labels[i]], cond) for i in usable])
            tests = np.stack([r.embedding for r in res])
        s = scorer.compare(vp.embeddings_for(cond), tests, cond)
        llr[usable, k] = s["llr"]
        raw[usable, k] = s["raw"]
    threshold = math.log(options.false_name_cost / options.missed_name_cost)
    if usable:
        pairs, lo = decide(np.nan_to_num(llr[usable], nan=-10.0), prior, threshold)
    else:
        pairs, lo = {}, np.zeros((0, len(people)))
    identities: dict[str, dict | None] = {}
    candidates: dict[str, dict] = {}
    for row, i in enumerate(usable):
        lab = labels[i]
        best = int(np.argmax(lo[row]))
        named = pairs.get(row)
        k = named if named is not None else best
        post = 1.0 / (1.0 + math.exp(-lo[row, k]))
        det = {
            "name": people[k].name,
            "score": round(float(raw[i, k]), 4),
            "llr": round(float(llr[i, k]), 3),
            "posterior": round(post, 4),
            "posterior_log_odds": round(float(lo[row, k]), 3),
            "condition": conds[people[k].name],
            "speech_seconds": embedded[i].speech_seconds,
            "quality": quality[lab],
            "quality_warning": not quality[lab]["passed"],
        }
        # at the calibration's bound the LR was clipped there: the true one may be more extreme
        det["llr_bound"] = bound_side(det["llr"], scorer.model(det["condition"]).bounds)
        det["llr_clipped"] = det["llr_bound"] is not None
        if named is not None:
            det["decision"] = "identified"
            identities[lab] = det
        else:
            if lo[row, best] > threshold:
                why = f"{people[best].name} was assigned to another speaker with stronger evidence"
            else:
                why = f"posterior log-odds {lo[row, best]:.2f} below the decision threshold {threshold:.2f}"
            det["decision"] = f"not identified: {why}"
            identities[lab] = None
        candidates[lab] = det
    for i, lab in enumerate(labels):
        if i not in usable:
            identities[lab] = None
            if i in long_enough:
                why = "insufficient quality: " + "; ".join(quality[lab]["reasons"])
            else:
                why = f"not compared: {embedded[i].speech_seconds:.1f} s of speech (needs {min_speech:g} s)"
            candidates[lab] = {
                "name": None,
                "decision": why,
                "verdict": "insufficient quality",
                "speech_seconds": embedded[i].speech_seconds,
                "quality": quality[lab],
            }
    info = {
        "store": str(store.dir),
        "people": [vp.name for vp in people],
        "condition": a.channel.to_dict(),
        "embedding": {"model_id": scorer.extractor.model_id, "weights_sha256": scorer.extractor.weights_sha256},
        "quality_gate": options.quality.to_params(),
        "prior": prior,
        "false_name_cost": options.false_name_cost,
        "missed_name_cost": options.missed_name_cost,
        "decision_rule": "name person k for speaker i when ln((prior/N) LR_ik) - ln((1-prior) + "
        "(prior/N) sum_{j!=k} LR_ij) > ln(false_name_cost/missed_name_cost); one person per "
        "speaker (Hungarian assignment)",
        "calibration": {c: scorer.model(c).source for c in sorted(set(conds.values()))},
        "llr_bounds": {c: [float(x) for x in scorer.model(c).bounds] for c in sorted(set(conds.values()))},
        "llr": {
            labels[i]: {
                vp.name: (None if np.isnan(llr[i, k]) else round(float(llr[i, k]), 3)) for k, vp in enumerate(people)
            }
            for i in range(len(labels))
        },
        "note": "log10 likelihood ratios; evidence, not proof of identity",
    }
    return {"identities": identities, "candidates": candidates, "info": info}


# ---------------------------------------------------------------------------------------- the step
def _turns_of(t) -> list[dict]:
    d = t.extra.get("diarization") or {}
    turns = d.get("turns") or []
    if turns:
        return [dict(x) for x in turns]
    # no turn list: derive turns from the segments' speakers
    return [{"start": s.start, "end": s.end, "speaker": s.speaker} for s in t.segments if s.speaker]


def apply_names(t, identities: dict[str, dict | None]) -> dict[str, str]:
    """Rename identified speakers in segments, words and diarisation turns; returns label -> name."""
    names = {lab: idt["name"] for lab, idt in identities.items() if idt}
    if not names:
        return {}
    for s in t.segments:
        if s.speaker in names:
            s.speaker = names[s.speaker]
        for w in s.words:
            if w.speaker in names:
                w.speaker = names[w.speaker]
    d = t.extra.get("diarization")
    if isinstance(d, dict):
        for turn in d.get("turns") or []:
            if turn.get("speaker") in names:
                turn["speaker"] = names[turn["speaker"]]
    return names


def missing_store(options: IdentifyOptions) -> str | None:
    """What is wrong with a voiceprint store named explicitly (``voiceprints``, from ``--voiceprints``
    or a recipe, or ``$AUDIOTOOLS_VOICEPRINTS``) that is not a directory; None when it is one, or
    when the store is the implicit ``./voiceprints``, which may well be absent."""
    import os

    from audiotools.errors import one_line_path
    from audiotools.speakers.voiceprints import ENV, VoiceprintStore

    how = "--voiceprints" if options.voiceprints else f"${ENV}" if os.environ.get(ENV) else None
    store = VoiceprintStore(options.voiceprints)
    if how is None or store.exists():
        return None
    what = "is not a directory" if store.dir.exists() else "does not exist"
    return (
        f"{one_line_path(str(store.dir))}: voiceprint store (named by {how}) {what} (check the path; create it "
        "with 'audiotools voiceprint enroll NAME FILE --voiceprints DIR'; or pass --no-identify)"
    )


def run_step(job, options: IdentifyOptions) -> None:
    from audiotools.speakers.voiceprints import VoiceprintStore

    problem = missing_store(options)
    if problem:  # the CLI refuses it before any model loads (pipeline.run.preflight); the API says so here
        log.warning("identify skipped: %s", problem)
        return
    store = VoiceprintStore(options.voiceprints)
    if not store.exists() or store.is_empty():
        log.debug("identify: no voiceprints in %s; skipped", store.dir)
        return
    t = job.transcript
    turns = _turns_of(t)
    if not turns:
        # diarisation off (--no-diarize, a recipe without it): nothing to name, as asked; diarised
        # without speakers (silence): worth a line
        diarised = "diarization" in t.extra
        (log.info if diarised else log.debug)(
            "identify: no diarised speakers in %s%s",
            job.path,
            "" if diarised else " (diarisation off); run the diarize step to name speakers",
        )
        t.extra["identification"] = {"store": str(store.dir), "skipped": "no diarised speakers"}
        return
    from audiotools.device import resolve_device
    from audiotools.speakers.verification import Scorer

    scorer = Scorer(store.dir, device=resolve_device(options.device))
    res = identify(job.audio, turns, store, options, scorer=scorer)
    speakers = t.speakers if isinstance(t.speakers, dict) else {}
    for lab in res["identities"]:
        entry = speakers.setdefault(lab, {})
        if not isinstance(entry, dict):
            entry = speakers[lab] = {}
        entry["identity"] = res["identities"][lab]
        entry["voiceprint_match"] = res["candidates"].get(lab)
    t.speakers = speakers
    names = apply_names(t, res["identities"])
    res["info"]["names"] = names
    t.extra["identification"] = res["info"]
    for lab, name in names.items():
        idt = res["identities"][lab]
        log.info("identify: %s is %s (log10 LR %.1f, posterior %.3f)", lab, name, idt["llr"], idt["posterior"])
