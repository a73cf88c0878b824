"""Enrolment: check each sample (enough speech, one voice), embed it in every recording condition
and add it to a voiceprint record."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from audiotools.audio import condition as channel
from audiotools.audio.decode import load_audio
from audiotools.errors import EnrolmentRejected, UsageError
from audiotools.speakers.embedding_cache import Audio, total
from audiotools.speakers.quality import estimate_snr
from audiotools.speakers.verification import MIN_ENROL_SPEECH, Scorer, two_speaker_test
from audiotools.speakers.voiceprints import Sample, Voiceprint, VoiceprintStore, validate_name

log = logging.getLogger(__name__)


def prepare_sample(
    path: str | os.PathLike,
    scorer,
    segment: tuple[float, float] | None = None,
    min_speech: float | None = None,
    check_voices: bool = True,
) -> tuple[Sample, dict[str, np.ndarray]]:
    """Check one enrolment sample and embed it in every condition; raises :class:`EnrolmentRejected`.

    Checks: at least ``min_speech`` (default 3 s) of VAD speech in the file (or ``segment``), and
    a single voice (:func:`audiotools.speakers.verification.two_speaker_test`).
    """
    min_speech = MIN_ENROL_SPEECH if min_speech is None else min_speech
    decoded = load_audio(path)
    audio = Audio.from_decoded(decoded)
    regions = None
    duration = audio.duration
    if segment is not None:
        s, e = segment
        if s >= audio.duration:
            raise EnrolmentRejected(f"{path}: segment {s:g}-{e:g} s starts after the end ({audio.duration:.1f} s)")
        regions = [(s, min(e, audio.duration))]
        duration = regions[0][1] - s
    ex = scorer.extractor
    speech = total(ex.speech_in(audio, regions))
    if speech < min_speech:
        raise EnrolmentRejected(
            f"{path}: only {speech:.1f} s of speech{' in the segment' if segment else ''} "
            f"(an enrolment sample needs at least {min_speech:g} s)"
        )
    native = audio.channel.condition
    check = two_speaker_test(scorer, audio, regions, native)
    check["enforced"] = check_voices
    if check_voices and not check["single_speaker"]:
        raise EnrolmentRejected(
            f"{path}: more than one voice: the speech splits into two groups "
            f"({100 * check['minor_fraction']:.0f} % / {100 - 100 * check['minor_fraction']:.0f} %) that sound like "
            f"different people (similarity {check['statistic']:.2f} < {check['threshold']:.2f}; fewer than "
            f"1 % of single-speaker recordings score that low); choose one speaker's part with --segment START-END"
        )
    conds = list(channel.CONDITIONS)
    res = ex.embed([(audio, regions, c) for c in conds])
    embs = {c: r.embedding[None, :].astype(np.float32) for c, r in zip(conds, res)}
    sample = Sample(
        file=Path(path).name,
        sha256=decoded.info.sha256,
        pcm_sha256=decoded.info.pcm_sha256,
        duration=round(duration, 3),
        speech_seconds=round(speech, 3),
        segment=[round(regions[0][0], 3), round(regions[0][1], 3)] if regions else None,
        condition=native,
        source_sample_rate=decoded.info.source_sample_rate,
        codec=decoded.info.codec,
        checks={
            "single_speaker": {k: v for k, v in check.items() if k != "test"},
            "channel": audio.channel.to_dict(),
            "quality": estimate_snr(audio.samples, ex.speech(audio), regions),
        },
    )
    return sample, embs


def enroll(
    store: VoiceprintStore,
    name: str,
    files: list[str | os.PathLike],
    scorer=None,
    segment: tuple[float, float] | None = None,
    min_speech: float | None = None,
    check_voices: bool = True,
    force: bool = False,
) -> tuple[Voiceprint, list[Sample], list[Sample]]:
    """Enrol ``files`` for ``name`` (appending to an existing record). All files are checked first;
    if any is rejected nothing is written. Returns (record, added samples, skipped duplicates).

    Adding to an existing record checks that each new sample is the voice already enrolled: the
    calibrated log10 LR of the sample against the record, in the sample's condition, must favour
    "same speaker" (> 0). A sample that does not match is refused (``EnrolmentRejected``) unless
    ``force``; either way the score goes into the sample's ``checks["same_voice"]``.
    """
    validate_name(name)
    if not files:
        raise UsageError("enrolment needs at least one audio file")
    from audiotools.audio.decode import probe_audio

    for f in files:  # a missing, empty or non-audio file: one line in milliseconds, before any embedding
        probe_audio(f)
    scorer = scorer or Scorer(store.dir)
    existing = None
    if store.path_for(name).is_file():  # a record of another model: say so before embedding anything
        existing = store.get(name)
        store.check_model(existing, scorer.extractor.model_id, scorer.extractor.weights_sha256)
    prepared = [prepare_sample(f, scorer, segment, min_speech, check_voices) for f in files]
    if existing is not None:
        for f, (sample, embs) in zip(files, prepared):
            same_voice_check(existing, sample, embs, scorer, f, force)
    samples = [s for s, _ in prepared]
    embs = {c: np.concatenate([e[c] for _, e in prepared]) for c in channel.CONDITIONS}
    vp, skipped = store.add_samples(name, samples, embs, scorer.extractor.model_id, scorer.extractor.weights_sha256)
    added = [s for s in samples if s not in skipped]
    return vp, added, skipped


def same_voice_check(existing: Voiceprint, sample: Sample, embs: dict, scorer, path, force: bool) -> dict:
    """Score a new sample against the voice already enrolled (see :func:`enroll`); raises
    :class:`EnrolmentRejected` when it favours a different speaker, unless ``force``."""
    from audiotools.speakers.verification import verbal_short

    cond = sample.condition if sample.condition in existing.embeddings else channel.WIDEBAND
    scores = scorer.compare(existing.embeddings_for(cond), embs[cond], cond)
    llr = float(scores["llr"][0])
    check = {
        "llr": round(llr, 3),
        "score": round(float(scores["raw"][0]), 4) if "raw" in scores else None,
        "condition": cond,
        "against_samples": len(existing.samples),
        "matches": llr > 0,
        "forced": bool(force and llr <= 0),
    }
    sample.checks["same_voice"] = check
    if llr <= 0:
        msg = (
            f"{path}: does not sound like the voice enrolled as {existing.name!r} ({len(existing.samples)} "
            f"sample(s)): log10 LR {llr:+.2f}, {verbal_short(llr)}"
        )
        if not force:
            raise EnrolmentRejected(msg + "; not added (--force adds it anyway)")
        log.warning("%s; added anyway (--force)", msg)
    return check
