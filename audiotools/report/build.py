"""Gathering what an evidence report shows, and re-checking integrity while doing it.

Three kinds of input give one report model (a plain dict that :mod:`audiotools.report.html` turns
into the page):

* a transcript JSON (``audiotools report``, ``transcribe --report``, ``batch --reports``):
  :func:`from_transcript`;
* a verification result (``verify --report``): :func:`from_verification`;
* an identification result (``identify --report``): :func:`from_identification`.

Integrity is re-verified here, when the report is made, with the provenance module's own
:func:`audiotools.provenance.document.verify` (transcript hash, segments, parameters, models,
signature, and with the audio the source, PCM and per-segment hashes, plus the exports beside the
JSON); no hash is computed a second way. Verification and identification results carry the
recording's sha256 (and the reference files'), computed by the same run: nothing recorded earlier is
compared with them, so they are shown as information (status ``info``), not as passed checks; a file
re-hashed with :func:`audiotools.fileio.sha256_file` that changed since the run read it fails.

Calibration trials for the Tippett and ECE plots: the shipped calibration's held-out trial log10
LRs are in ``audiotools/data/calibration/trials.json`` (made by ``benchmarks/calibration_trials.py``,
run-length encoded at 0.01). A store's own refit (``_calibration.json``) keeps no trial scores,
so comparisons calibrated by one get no plots, and the report says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from audiotools.errors import InputError, UsageError

TRIALS_FILE = Path(__file__).resolve().parents[1] / "data" / "calibration" / "trials.json"
CALIBRATION_FILE = TRIALS_FILE.with_name("calibration.json")
LOW_CONFIDENCE = 0.5  # words whose probability is below this are marked
WAVEFORM_BINS = 1600  # columns of the waveform overview
EMBED_AUDIO_LIMIT_MB = 20  # --embed-audio inlines files up to this size
MAX_COMPARISON_PLOTS = 12  # comparisons beyond this get their figures in words only
AUDIO_MIME = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
    ".mp4": "video/mp4",
}

GENERAL_LIMITATIONS = [
    "A likelihood ratio is not proof of identity: it says how much more probable the observed similarity is if "
    "the same person spoke than if someone else from the reference population did. The decision also needs the "
    "prior odds and the other evidence, which are for the court or the reader, not for this system.",
    "The reference population is read English speech (LibriSpeech) unless a refit calibration is named. Other "
    "languages, other channels (real telephone networks, VoIP codecs, reverberant rooms), emotion, disguise, "
    "children and synthetic or converted voices are not represented; the likelihood ratio may then be wrong in "
    "either direction.",
    "Channel compensation simulates band limitation, G.711 and one low-rate codec (AMR-NB as a stand-in for "
    "GSM); noise, reverberation and packet loss are not simulated.",
    "The hashes prove that nothing changed since the transcript was made from these bytes; they say nothing about "
    "whether the recording itself is genuine (a spliced or synthesised recording hashes just as well).",
]


# ----------------------------------------------------------------------------------------- helpers
def _utc_now() -> str:
    from audiotools.transcript import utc_now

    return utc_now()


def audio_source(audio_path: str | os.PathLike | None, report_path: Path, embed: bool) -> dict:
    """How the page reaches the audio: a relative URL (default) or a ``data:`` URI (``embed``)."""
    if audio_path is None:
        return {"src": None, "embedded": False, "note": "no audio file was found: the report cannot play it"}
    p = Path(audio_path)
    if embed:
        import base64

        size = p.stat().st_size
        if size > EMBED_AUDIO_LIMIT_MB * 1024 * 1024:
            raise InputError(
                p,
                f"{size / 1e6:.1f} MB is too large to embed in the report (at most {EMBED_AUDIO_LIMIT_MB} MB); "
                "leave out --embed-audio to reference it by a relative path",
            )
        mime = AUDIO_MIME.get(p.suffix.lower(), "application/octet-stream")
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        return {"src": f"data:{mime};base64,{data}", "embedded": True, "note": f"{p.name} is embedded in this page"}
    rel = os.path.relpath(p.resolve(), report_path.resolve().parent)
    return {
        "src": quote(Path(rel).as_posix(), safe="/"),
        "embedded": False,
        "note": f"played from {Path(rel).as_posix()} relative to this page: keep the two together",
    }


def waveform(samples: np.ndarray, bins: int = WAVEFORM_BINS) -> list[list[float]]:
    """Min and max of the samples in ``bins`` equal columns (rounded to 3 decimals)."""
    x = np.asarray(samples, dtype=np.float32)
    if len(x) == 0:
        return []
    bins = min(bins, len(x))
    per = len(x) // bins
    cols = x[: per * bins].reshape(bins, per)
    lo, hi = cols.min(axis=1), cols.max(axis=1)
    return [[round(float(a), 3), round(float(b), 3)] for a, b in zip(lo, hi)]


def union(regions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in regions if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def overlaps(lanes: dict[str, list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """Stretches where two or more lanes are active at once."""
    events = []
    for regions in lanes.values():
        for a, b in union(regions):
            events += [(a, 1), (b, -1)]
    events.sort(key=lambda e: (e[0], e[1]))
    out, active, start = [], 0, 0.0
    for t, d in events:
        before = active
        active += d
        if before < 2 <= active:
            start = t
        elif before >= 2 > active and t > start:
            out.append((round(start, 3), round(t, 3)))
    return out


def _seconds(regions) -> float:
    return float(sum(b - a for a, b in union(regions)))


def fmt_time(t: float) -> str:
    t = max(0.0, float(t))
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h)}:{int(m):02d}:{s:05.2f}" if h else f"{int(m)}:{s:05.2f}"


def display_name(path) -> str | None:
    """What a report shows of a local path: the file name only (folder names stay on this machine;
    the hashes, not the paths, identify the files)."""
    if not path:
        return None
    return Path(str(path)).name or str(path)


def display_calibration(source: str | None) -> str | None:
    """A refit calibration's path as shown: its folder (the voiceprint store) and file name."""
    if source in (None, "shipped"):
        return source
    p = Path(str(source))
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def at_bound(llr: float | None, bounds) -> str | None:
    """The calibration's clip bound that ``llr`` sits at (``"lower"`` / ``"upper"``), else None
    (:func:`audiotools.speakers.verification.bound_side`, which verify and identify flag with)."""
    from audiotools.speakers.verification import bound_side

    return bound_side(llr, bounds)


def bound_note(which: str | None, bounds) -> str | None:
    """One sentence saying that a likelihood ratio sits at the calibration's bound."""
    from audiotools.speakers.verification import lr_text

    if which is None:
        return None
    lo, hi = float(bounds[0]), float(bounds[1])
    if which == "lower":
        return (
            f"This likelihood ratio is at the calibration's lower bound (log10 LR {lo:+.3f}, LR {lr_text(lo, which)}): "
            "the value is clipped there because the calibration data cannot support a more extreme one. The true "
            "LR may be smaller still (stronger support for a different speaker); the calibration cannot say more."
        )
    return (
        f"This likelihood ratio is at the calibration's upper bound (log10 LR {hi:+.3f}, LR {lr_text(hi, which)}): "
        "the value is clipped there because the calibration data cannot support a more extreme one. The true "
        "LR may be larger still (stronger support for the same speaker); the calibration cannot say more."
    )


def _load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _expand(rle) -> np.ndarray:
    return np.repeat(np.array([v for v, _ in rle], float), [int(n) for _, n in rle])


def calibration_trials(condition: str, source: str | None) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Held-out trial log10 LRs ``(target, nontarget, meta)`` of ``condition`` when the calibration
    that produced the case's LR is the shipped one, else None."""
    if source not in (None, "shipped"):
        return None
    d = _load_json(TRIALS_FILE)
    c = (d or {}).get("conditions", {}).get(condition)
    if not c:
        return None
    meta = {k: d.get(k) for k in ("data", "protocol", "made_by")}
    meta.update(trials=c.get("trials"), n_target=c.get("n_target"), n_nontarget=c.get("n_nontarget"))
    return _expand(c["target"]), _expand(c["nontarget"]), meta


def calibration_description(condition: str, source: str | None) -> dict:
    """Where the calibration of ``condition`` came from: data, trial counts, held-out figures."""
    if source in (None, "shipped"):
        d = (_load_json(CALIBRATION_FILE) or {}).get("conditions", {}).get(condition, {})
        base = _load_json(CALIBRATION_FILE) or {}
        return {
            "source": "the shipped calibration (audiotools/data/calibration/calibration.json)",
            "population": base.get("data", "LibriSpeech test-other"),
            "channel": d.get("fitted_on"),
            "trials": d.get("trials"),
            "figures": d.get("held_out"),
            "figures_kind": "held out (5-fold by speaker)",
            "bounds": d.get("llr_bounds"),
        }
    d = _load_json(Path(source)) or {}
    c = (d.get("conditions") or {}).get(condition, {})
    return {
        "source": f"a refit calibration: {display_calibration(source)}",
        "population": c.get("fitted_on", f"{display_calibration(source)} (could not be read when the report was made)"),
        "channel": None,
        "trials": c.get("trials"),
        "figures": c.get("in_sample"),
        "figures_kind": "in sample (fitted and measured on the same trials: optimistic)",
        "bounds": c.get("llr_bounds"),
    }


def _comparison(
    *,
    key: str,
    title: str,
    h1: str,
    h2: str,
    llr: float | None,
    condition: str,
    source: str | None,
    quality: dict | None,
    language: str | None,
    plots: bool,
) -> dict:
    from audiotools.audio.condition import DESCRIPTIONS
    from audiotools.speakers.verification import verbal, verbal_short

    cal = calibration_description(condition, source)
    bound = at_bound(llr, cal.get("bounds"))
    comp = {
        "key": key,
        "title": title,
        "H1": h1,
        "H2": h2,
        "llr": llr,
        "lr": None if llr is None else 10**llr,
        "verbal": verbal(llr, bound) if llr is not None else "no likelihood ratio was given (see the quality verdict)",
        "support": verbal_short(llr) if llr is not None else "none",
        "at_bound": bound,
        "bound_note": bound_note(bound, cal.get("bounds")),
        "condition": condition,
        "condition_description": DESCRIPTIONS.get(condition, condition),
        "calibration": cal,
        "quality": quality,
        "tippett": None,
        "ece": None,
        "plot_note": None,
        "limitations": [],
    }
    lim = comp["limitations"]
    if comp["bound_note"]:
        comp["verbal"] += " " + comp["bound_note"]
        lim.append(comp["bound_note"])
    if quality and not quality.get("passed", True):
        lim.append(
            "Quality below the validated range: "
            + "; ".join(quality.get("reasons") or [])
            + (
                ". The likelihood ratio was forced and was not validated for such material."
                if llr is not None
                else ". No likelihood ratio is given."
            )
        )
    elif quality:
        lim.append(
            f"Quality within the validated range: {quality.get('net_speech_seconds', 0):.1f} s of net speech, "
            f"estimated SNR {quality.get('snr_db') if quality.get('snr_db') is not None else '?'} dB "
            f"(gate: {(quality.get('thresholds') or {}).get('min_net_speech', 3):g} s, "
            f"{(quality.get('thresholds') or {}).get('min_snr_db', 10):g} dB; measured with white noise on read "
            "speech only)."
        )
    if language and not str(language).startswith("en") and source in (None, "shipped"):
        lim.append(
            f"Language mismatch: the recording is in '{language}', the reference population speaks English. "
            "The likelihood ratio has not been validated for this language."
        )
    if condition != "wideband":
        lim.append(
            f"Channel: the case was compared in the {condition} condition; the reference population's "
            f"{condition} trials are simulated ({cal.get('channel') or 'channel simulation'}), not real network "
            "recordings."
        )
    if source not in (None, "shipped"):
        lim.append(
            "The calibration is a refit on other data (named above): the likelihood ratio describes that "
            "population, not LibriSpeech. Its trial scores are not stored, so no Tippett or ECE plot is shown."
        )
    if plots and llr is not None:
        trials = calibration_trials(condition, source)
        if trials is not None:
            from audiotools.report.plots import ece_svg, tippett_svg

            tar, non, meta = trials
            comp["tippett"] = tippett_svg(tar, non, llr, key)
            comp["ece"] = ece_svg(tar, non, llr, key)
            comp["plot_note"] = (
                f"{meta['n_target']:,} same-speaker and {meta['n_nontarget']:,} different-speaker trials "
                f"({meta.get('trials')}), each scored {meta.get('protocol', 'held out')}."
            )
        elif source in (None, "shipped"):
            comp["plot_note"] = f"no stored calibration trials for the {condition} condition"
    elif llr is not None:
        comp["plot_note"] = "figures omitted (too many comparisons in one report); the numbers above stand"
    return comp


# ----------------------------------------------------------------------------------------- integrity
def comparison_model(
    kind: str, title: str, case_id, examiner, integrity: dict, part: dict, speakers, comparisons, **extra
) -> dict:
    """The report model of a verify or identify result: no transcript, speakers and comparisons, and
    ``extra`` (reference and notes for verification, the store for identification)."""
    return {
        "kind": kind,
        "title": title,
        "source_json": None,
        "case_id": case_id,
        "examiner": examiner,
        "made": _utc_now(),
        "language": None,
        "integrity": integrity,
        **part,
        "segments": None,
        "masking": None,
        "speakers": speakers,
        "comparisons": comparisons,
        "identification": None,
        **extra,
        "limitations": comparison_limitations(kind, extra.get("identification")),
    }


def comparison_limitations(kind: str, identification: dict | None = None) -> list[str]:
    """The general limitations, worded for a verify or identify report (no transcript was hashed
    earlier: the recording's sha256 is computed for the report)."""
    hashes = (
        "The recording's sha256 above was computed for this report: it identifies the file compared here, so "
        "anyone can check later that they hold the same bytes; nothing recorded earlier was compared with it, so "
        "it does not show that the recording is unchanged since it was made, nor whether it is genuine (a spliced "
        "or synthesised recording hashes just as well)."
    )
    out = [x for x in GENERAL_LIMITATIONS if not x.startswith("The hashes prove")] + [hashes]
    if kind == "identification":
        prior = (identification or {}).get("prior")
        out.append(
            f"The identities named here are a decision, made by the rule stated under Speakers with a prior of "
            f"{prior} that a speaker is one of the enrolled people and the stated costs: they are not a finding of "
            "the evidence. With another prior, other costs or other enrolled people the names and posteriors change; "
            "the likelihood ratios do not."
        )
    return out


def speaker_models(model: str | None, model_sha256: str | None, diarization) -> list[dict]:
    """Every model a verify/identify result used: the speaker embedding of the comparison, the VAD
    that picks the speech it embeds, and the diariser's models when the turns came from it.

    ``diarization``: the diarisation record (as in a transcript's ``diarization``: ``backend``,
    ``models``) when the caller has it; ``False`` when the turns did not come from the diariser (an
    RTTM, a segment, the whole recording); ``None`` when not said: then the default diariser (what
    ``speakers.verification.diarized_turns`` runs) is listed, its role saying it applies unless the
    turns were given (``--rttm``)."""
    from audiotools.weights import SILERO_VAD

    models = [{"role": "speaker-embedding", "name": model, "sha256": model_sha256}]
    models.append({"role": "vad", "name": SILERO_VAD.name, "sha256": SILERO_VAD.sha256})
    inferred = diarization is None
    if inferred:
        diarization = default_diarization()
    for m in (diarization or {}).get("models") or []:
        if not isinstance(m, dict):
            continue
        if any(x["name"] == m.get("name") and x["sha256"] == m.get("sha256") for x in models):
            continue  # CAM++: the comparison's and the diariser's embedding are the same weights
        role = str(m.get("role") or "diarization")
        if inferred:
            role += " (the diariser's; unless the turns were given with --rttm)"
        models.append({"role": role, "name": m.get("name"), "sha256": m.get("sha256")})
    if diarization and not diarization.get("models") and diarization.get("pipeline"):
        models.append({"role": "diarization", "name": diarization["pipeline"], "sha256": None})
    return models


def default_diarization() -> dict:
    """The diariser ``diarized_turns`` runs with its default options: the built-in one (its models
    and hashes, as a transcript records them) or a pyannote pipeline found offline."""
    from audiotools.diarize import diarization as dz

    try:
        backend, _ = dz.choose_backend(dz.DiarizationOptions())
    except Exception:  # which backend is only a label here
        backend = "builtin"
    if backend == "builtin":
        return {"backend": "builtin", "models": dz.builtin_models()}
    return {"backend": backend, "pipeline": "pyannote.audio pipeline (found offline; no hash recorded)"}


def speaker_integrity(checks: list[dict], models: list[dict], parameters: dict) -> dict:
    """The integrity block of a verify/identify report: the checks, the models used, this tool, parameters.

    Rows with status ``info`` (a hash computed for this report, with nothing recorded earlier to
    compare it with) are shown but are not checks that passed."""
    from audiotools.version import __version__

    integrity = integrity_from_checks(checks, None)
    integrity["models"] = models
    integrity["tool"] = {"name": "audiotools", "version": __version__}
    integrity["parameters"] = parameters
    return integrity


def integrity_from_checks(checks, prov: dict | None) -> dict:
    """Summary of provenance checks: per-check rows (segment hashes folded into one row unless they fail)."""
    rows, seg_ok, seg_fail = [], 0, []
    for c in checks:
        d = c.to_dict() if hasattr(c, "to_dict") else dict(c)
        if d["name"].startswith("segment ") and d["name"].endswith(" sha256"):
            if d["status"] == "fail":
                seg_fail.append(d)
            elif d["status"] == "ok":
                seg_ok += 1
            continue
        rows.append(d)
    if seg_ok or seg_fail:
        rows.append(
            {
                "name": "segment sha256",
                "status": "fail" if seg_fail else "ok",
                "detail": f"{seg_ok} segment(s) match their audio slice"
                + (f"; {len(seg_fail)} differ" if seg_fail else ""),
            }
        )
        rows += seg_fail
    failed = [r["name"] for r in rows if r["status"] == "fail" and r["name"] != "segment sha256"]
    sig = (prov or {}).get("signature")
    return {
        "checks": rows,
        "ok": not failed,
        "failed": failed,
        "signature": (
            {"algorithm": sig.get("algorithm"), "key_id": sig.get("key_id"), "public_key": sig.get("public_key")}
            if isinstance(sig, dict)
            else None
        ),
    }


def _find_audio(doc: dict, json_path: Path | None, audio_path) -> Path | None:
    if audio_path is not None:
        p = Path(audio_path)
        if not p.is_file():
            raise InputError(p, "no such file (--audio)")
        return p
    rec = (doc.get("audio") or {}).get("path") or ((doc.get("provenance") or {}).get("source") or {}).get("path")
    if not rec:
        return None
    cands = [Path(rec)]
    if json_path is not None and not Path(rec).is_absolute():
        cands += [json_path.parent / rec, json_path.parent / Path(rec).name]
    return next((c for c in cands if c.is_file()), None)


# ----------------------------------------------------------------------------------------- transcript
def _lanes_of(doc: dict) -> dict[str, list[tuple[float, float]]]:
    lanes: dict[str, list[tuple[float, float]]] = {}
    turns = (doc.get("diarization") or {}).get("turns")
    if turns:
        for t in turns:
            lanes.setdefault(str(t.get("speaker")), []).append((float(t["start"]), float(t["end"])))
        return lanes
    for s in doc.get("segments") or []:
        lanes.setdefault(str(s.get("speaker") or "speech"), []).append((float(s["start"]), float(s["end"])))
    return lanes


def vad_speech(decoded) -> list[tuple[float, float]]:
    """The recording's VAD speech as the quality gate finds it (``Extractor.speech``): the
    transcription's VAD when it ran, else Silero with ``PLAIN_VAD``."""
    if getattr(decoded, "speech", None) is not None:
        return list(decoded.speech)
    from audiotools.vad.silero import PLAIN_VAD, speech_regions

    return speech_regions(decoded.samples, PLAIN_VAD)


def _recording_rows(audio: dict, decoded, speech: list[tuple[float, float]], how: str, channel_info) -> list:
    from audiotools.speakers.quality import estimate_snr

    rows = [
        ("file", display_name(audio.get("path"))),
        ("duration", f"{fmt_time(audio.get('duration') or 0)} ({float(audio.get('duration') or 0):.1f} s)"),
        (
            "sample rate",
            f"{audio.get('source_sample_rate') or audio.get('sample_rate')} Hz"
            + (
                f" (decoded to {audio.get('sample_rate')} Hz)"
                if audio.get("source_sample_rate") and audio.get("source_sample_rate") != audio.get("sample_rate")
                else ""
            ),
        ),
        ("codec", " / ".join(str(x) for x in (audio.get("codec"), audio.get("container")) if x) or "unknown"),
        ("channels", str(audio.get("channels", "?"))),
    ]
    if channel_info:
        rows.append(
            (
                "detected condition",
                f"{channel_info.get('condition')}: {channel_info.get('description', '')} "
                f"({'; '.join(channel_info.get('reasons') or [])})",
            )
        )
    else:
        rows.append(("detected condition", "not measured (no audio)"))
    dur = float(audio.get("duration") or 0)
    net = _seconds(speech)
    rows.append(("net speech", f"{net:.1f} s ({100 * net / dur if dur else 0:.0f} % of the recording; {how})"))
    if decoded is not None and speech:
        # as the quality gate measures: the VAD speech (PLAIN_VAD) inside these regions against the
        # recording's non-speech frames (speakers/quality.py); the turns themselves are not speech
        snr = estimate_snr(decoded.samples, vad_speech(decoded), speech)
        rows.append(
            (
                "SNR estimate",
                "-"
                if snr["snr_db"] is None
                else f"{snr['snr_db']:.1f} dB over the voice-activity speech in the {how} ({snr['method']}; the "
                "quality gate's estimator, docs/voiceprints.md; the gate judges each speaker on their own figure, "
                "under Speakers)",
            )
        )
    else:
        rows.append(("SNR estimate", "not measured (no audio)"))
    return rows


def from_transcript(
    doc: dict,
    *,
    json_path: str | os.PathLike | None,
    report_path: str | os.PathLike,
    audio_path=None,
    decoded=None,
    public_key=None,
    case_id: str | None = None,
    examiner: str | None = None,
    embed_audio: bool = False,
    check_exports: bool = True,
) -> dict:
    """The report model of a transcript dict (as read from its JSON)."""
    from audiotools.audio.condition import detect_audio
    from audiotools.audio.decode import load_audio
    from audiotools.errors import AudiotoolsError
    from audiotools.provenance.document import Check, missing_exports, sibling_exports, verify

    if not isinstance(doc, dict) or not isinstance(doc.get("segments"), list) or "audio" not in doc:
        raise InputError(json_path, "not an audiotools transcript (no audio/segments)")
    json_path = Path(json_path) if json_path is not None else None
    report_path = Path(report_path)
    audio_file = None
    if decoded is None:
        audio_file = _find_audio(doc, json_path, audio_path)
        if audio_file is not None:
            try:
                decoded = load_audio(audio_file)
            except AudiotoolsError:
                decoded = None  # the integrity check below reports why
    else:
        audio_file = Path(audio_path or decoded.info.path)
    exports = sibling_exports(json_path) if (check_exports and json_path is not None) else []
    checks = verify(doc, audio_path=audio_file, public_key=public_key, exports=exports, audio=decoded)
    if check_exports and json_path is not None:
        checks += missing_exports(json_path)
    if audio_file is None:
        checks.append(Check("audio", "skip", "the recording was not found: source, PCM and segment hashes not checked"))
    prov = doc.get("provenance") if isinstance(doc.get("provenance"), dict) else None
    integrity = integrity_from_checks(checks, prov)
    integrity["models"] = (prov or {}).get("models") or ([doc["model"]] if doc.get("model") else [])
    integrity["tool"] = (prov or {}).get("tool") or doc.get("tool")
    integrity["parameters"] = doc.get("parameters")
    integrity["transcript_sha256"] = (prov or {}).get("transcript_sha256")
    integrity["source_sha256"] = ((prov or {}).get("source") or {}).get("sha256") or doc["audio"].get("sha256")
    integrity["pcm_sha256"] = ((prov or {}).get("pcm") or {}).get("sha256") or doc["audio"].get("pcm_sha256")

    lanes = _lanes_of(doc)
    speech = union([r for v in lanes.values() for r in v])
    how = "speaker turns of the diarisation" if (doc.get("diarization") or {}).get("turns") else "transcript segments"
    channel_info = detect_audio(decoded).to_dict() if decoded is not None else None
    if channel_info is None:
        channel_info = (doc.get("identification") or {}).get("condition")
    duration = float(doc["audio"].get("duration") or (decoded.duration if decoded is not None else 0.0))

    # speakers and their comparisons
    ident = doc.get("identification") or {}
    speakers, comparisons = [], []
    for label, info in (doc.get("speakers") or {}).items():
        info = info if isinstance(info, dict) else {}
        idt = info.get("identity") or None
        match = info.get("voiceprint_match") or idt or {}
        llr = match.get("llr")
        q = match.get("quality")
        mcond = match.get("condition") or (ident.get("condition") or {}).get("condition") or "wideband"
        bounds = _bounds_of(mcond, (ident.get("calibration") or {}).get(mcond)) if llr is not None else None
        speakers.append(
            {
                "label": label,
                "lane": (idt or {}).get("name") or label,
                "identity": (idt or {}).get("name") or "unknown",
                "candidate": match.get("name"),
                "score": match.get("score"),
                "llr": llr,
                "at_bound": at_bound(llr, bounds),
                "bounds": bounds,
                "support": None if llr is None else comparison_support(llr),
                "posterior": match.get("posterior"),
                "decision": match.get("decision") or ("no voiceprints compared" if not match else ""),
                "net_speech": match.get("speech_seconds", info.get("duration")),
                "quality": q,
            }
        )
        if idt and idt.get("llr") is not None:
            cond = idt.get("condition") or (ident.get("condition") or {}).get("condition") or "wideband"
            source = (ident.get("calibration") or {}).get(cond)
            comparisons.append(
                _comparison(
                    key=f"c{len(comparisons)}",
                    title=f"{label} compared with the voiceprint of {idt['name']}",
                    h1=f"the speech of {label} in this recording was spoken by {idt['name']} (the enrolled voiceprint)",
                    h2=f"the speech of {label} was spoken by someone else from the reference population",
                    llr=float(idt["llr"]),
                    condition=cond,
                    source=source,
                    quality=q,
                    language=doc.get("language"),
                    plots=len(comparisons) < MAX_COMPARISON_PLOTS,
                )
            )
    masking = doc.get("masking") if isinstance(doc.get("masking"), dict) else None
    return {
        "kind": "transcript",
        "title": Path(doc["audio"].get("path") or (json_path or report_path)).name,
        "source_json": display_name(json_path),
        "case_id": case_id,
        "examiner": examiner,
        "made": _utc_now(),
        "language": doc.get("language"),
        "integrity": integrity,
        "recording": _recording_rows(doc["audio"], decoded, speech, how, channel_info),
        "audio": audio_source(audio_file, report_path, embed_audio),
        "duration": duration,
        "waveform": waveform(decoded.samples) if decoded is not None else None,
        "lanes": [(name, regions) for name, regions in lanes.items()],
        "overlaps": overlaps(lanes),
        "segments": doc.get("segments") or [],
        "masking": masking,
        "speakers": speakers,
        "comparisons": comparisons,
        "identification": {
            **{k: ident.get(k) for k in ("people", "prior", "decision_rule")},
            "store": display_name(ident.get("store")),
        }
        if ident
        else None,
        "limitations": GENERAL_LIMITATIONS
        + [
            "Whisper transcripts contain errors: words below probability "
            f"{LOW_CONFIDENCE:g} are marked; check every quoted passage against the audio.",
            "Speaker turns come from automatic diarisation: short turns and overlapped speech can be assigned to "
            "the wrong speaker.",
        ]
        + [f"Recorded when the transcript was made: {w}" for w in doc.get("warnings") or []],
    }


def _bounds_of(condition: str, source: str | None):
    """The log10 LR bounds of the calibration that produced a comparison's LR (None when unknown)."""
    return calibration_description(condition, source).get("bounds")


def comparison_support(llr: float) -> str:
    from audiotools.speakers.verification import verbal_short

    return verbal_short(float(llr))


# ----------------------------------------------------------------------------------------- verification
def _rehash(path: str | None, recorded: str | None, name: str) -> dict:
    """The sha256 a verify run computed of a file it read, re-read for the report.

    Nothing recorded before the run is compared here (the hash was made by the same run), so a match
    is information (``info``: the hash, to check the file with later), not a check that passed; a file
    that changed between the comparison and the report fails."""
    from audiotools.fileio import sha256_file

    shown = display_name(path)
    if not path or not recorded:
        return {"name": name, "status": "skip", "detail": "no hash computed"}
    try:
        now = sha256_file(path)
    except OSError as e:
        return {"name": name, "status": "fail", "detail": f"{shown}: cannot read: {e.strerror or e}"}
    if now == recorded:
        return {
            "name": name,
            "status": "info",
            "detail": f"{shown}: sha256 {now}, computed when this comparison read the file (re-read for this "
            "report: the same bytes); no hash was recorded before this run to compare it with. Keep it to check "
            "the file later.",
        }
    return {
        "name": name,
        "status": "fail",
        "detail": f"{shown}: the file changed during this run: the comparison read sha256 {recorded}, the file "
        f"now has {now}",
    }


def _questioned_part(res_recording: dict, decoded, report_path: Path, embed_audio: bool, lanes, how: str) -> dict:
    audio = {
        "path": res_recording.get("path"),
        "duration": res_recording.get("duration"),
        "sample_rate": decoded.info.sample_rate if decoded is not None else None,
        "source_sample_rate": decoded.info.source_sample_rate if decoded is not None else None,
        "codec": decoded.info.codec if decoded is not None else None,
        "container": decoded.info.container if decoded is not None else None,
        "channels": decoded.info.channels if decoded is not None else "?",
    }
    speech = union([r for v in lanes.values() for r in v])
    return {
        "recording": _recording_rows(audio, decoded, speech, how, res_recording.get("channel")),
        "audio": audio_source(res_recording.get("path") if decoded is not None else None, report_path, embed_audio),
        "duration": float(res_recording.get("duration") or 0.0),
        "waveform": waveform(decoded.samples) if decoded is not None else None,
        "lanes": list(lanes.items()),
        "overlaps": overlaps(lanes),
    }


def from_verification(
    res: dict,
    *,
    report_path: str | os.PathLike,
    decoded=None,
    case_id: str | None = None,
    examiner: str | None = None,
    embed_audio: bool = False,
    diarization: dict | bool | None = None,
) -> dict:
    """The report model of ``audiotools verify``'s result (``speakers.verification.verify``).

    ``verify`` gives likelihood ratios and decides nothing: the speakers carry no identity and no
    decision, only which one has the highest likelihood ratio (``best``). ``diarization``: see
    :func:`speaker_models` (without diarisation, ``mode`` other than ``diarisation``, none is listed)."""
    report_path = Path(report_path)
    rec = res["recording"]
    checks = [_rehash(rec.get("path"), rec.get("sha256"), "questioned recording sha256")]
    for f in (res.get("reference") or {}).get("files") or []:
        checks.append(_rehash(f.get("file"), f.get("sha256"), f"reference {Path(f.get('file', '?')).name} sha256"))
    if (res.get("reference") or {}).get("record"):
        checks.append(
            {
                "name": "voiceprint record",
                "status": "ok",
                "detail": f"{display_name(res['reference']['record'])}: loaded and checked against its "
                "embeddings' sha256 by the voiceprint store"
                + (
                    f"; record sha256 {res['reference']['record_sha256']}, embeddings "
                    f"{(res['reference'].get('embeddings') or {}).get('file')} sha256 "
                    f"{(res['reference'].get('embeddings') or {}).get('sha256')}"
                    if res["reference"].get("record_sha256")
                    else ""
                ),
            }
        )
    method = res.get("method") or {}
    parameters = {k: method.get(k) for k in ("quality_gate", "normalisation", "calibration", "llr_bounds")}
    parameters.update(condition=res.get("condition"), mode=res.get("mode"))
    parameters["calibration"] = display_calibration(parameters.get("calibration"))
    if res.get("mode") != "diarisation":
        diarization = False
    models = speaker_models(method.get("embedding"), method.get("embedding_weights_sha256"), diarization)
    integrity = speaker_integrity(checks, models, parameters)
    lanes = {u["speaker"]: [tuple(r) for r in u.get("regions") or []] for u in res.get("units") or []}
    part = _questioned_part(rec, decoded, report_path, embed_audio, lanes, "compared speakers' regions")
    speakers, comparisons = [], []
    ref = res.get("reference") or {}
    bounds = method.get("llr_bounds")
    for u in res.get("units") or []:
        llr = u.get("llr") if u.get("scored") else None
        speakers.append(
            {
                "label": u["speaker"],
                "lane": u["speaker"],
                "identity": None,  # verify decides no identity
                "candidate": ref.get("label"),
                "score": u.get("score"),
                "llr": llr,
                "at_bound": at_bound(llr, bounds),
                "bounds": bounds,
                "support": u.get("support") or u.get("verdict"),
                "posterior": None,
                "decision": None,
                "best": u["speaker"] == res.get("best"),
                "net_speech": u.get("speech_seconds"),
                "quality": u.get("quality"),
            }
        )
        comparisons.append(
            _comparison(
                key=f"c{len(comparisons)}",
                title=f"{u['speaker']} compared with {ref.get('label')}",
                h1=f"the speech of {u['speaker']} was spoken by {ref.get('label')}",
                h2=res["propositions"]["H2"].replace("the questioned speech", f"the speech of {u['speaker']}"),
                llr=llr,
                condition=res.get("condition") or "wideband",
                source=method.get("calibration"),
                quality=u.get("quality"),
                language=None,
                plots=len(comparisons) < MAX_COMPARISON_PLOTS,
            )
        )
        comparisons[-1]["turns"] = [
            {**t, "at_bound": at_bound(t.get("llr"), comparisons[-1]["calibration"].get("bounds") or bounds)}
            for t in u.get("segments") or []
        ]
    keys = ("label", "condition", "speech_seconds", "quality", "single_speaker", "files", "voiceprint")
    keys += ("record_sha256", "embeddings", "samples")
    return comparison_model(
        "verification",
        Path(rec.get("path") or "recording").name,
        case_id,
        examiner,
        integrity,
        part,
        speakers,
        comparisons,
        reference={k: ref.get(k) for k in keys},
        notes=res.get("notes") or [],
        best=res.get("best"),
    )


def from_identification(
    res: dict,
    *,
    report_path: str | os.PathLike,
    decoded=None,
    turns: list[dict] | None = None,
    case_id: str | None = None,
    examiner: str | None = None,
    embed_audio: bool = False,
    diarization: dict | bool | None = None,
) -> dict:
    """The report model of ``audiotools identify``'s result for one file (``res["file"]``).

    ``diarization``: where the ``turns`` came from, see :func:`speaker_models`."""
    report_path = Path(report_path)
    info = res.get("info") or {}
    path = res.get("file") or (decoded.info.path if decoded is not None else None)
    sha = decoded.info.sha256 if decoded is not None else None
    checks = [
        {
            "name": "recording sha256",
            "status": "info" if sha else "skip",
            "detail": (
                f"{display_name(path)}: sha256 {sha}, computed while decoding it for this identification; no hash "
                "was recorded before to compare it with. Keep it to check the file later."
            )
            if sha
            else "audio not decoded",
        },
        {
            "name": "voiceprints",
            "status": "ok",
            "detail": f"{len(info.get('people') or [])} record(s) in {display_name(info.get('store'))}, each checked "
            "against its embeddings' sha256 by the store",
        },
    ]
    emb = info.get("embedding") or {}
    parameters = {k: info.get(k) for k in ("prior", "false_name_cost", "missed_name_cost", "quality_gate")}
    if not turns:
        diarization = False
    models = speaker_models(emb.get("model_id"), emb.get("weights_sha256"), diarization)
    integrity = speaker_integrity(checks, models, parameters)
    names = {lab: (idt or {}).get("name") for lab, idt in (res.get("identities") or {}).items()}
    lanes: dict[str, list[tuple[float, float]]] = {}
    for t in turns or []:
        lab = str(t.get("speaker"))
        lanes.setdefault(names.get(lab) or lab, []).append((float(t["start"]), float(t["end"])))
    rec = {
        "path": path,
        "duration": decoded.duration if decoded is not None else 0.0,
        "channel": info.get("condition"),
    }
    part = _questioned_part(rec, decoded, report_path, embed_audio, lanes, "speaker turns")
    speakers, comparisons = [], []
    cond = (info.get("condition") or {}).get("condition") or "wideband"
    for lab in sorted(res.get("candidates") or {}):
        c = res["candidates"][lab]
        idt = (res.get("identities") or {}).get(lab)
        llr = c.get("llr")
        ccond = c.get("condition") or cond
        bounds = _bounds_of(ccond, (info.get("calibration") or {}).get(ccond)) if llr is not None else None
        speakers.append(
            {
                "label": lab,
                "lane": names.get(lab) or lab,
                "identity": (idt or {}).get("name") or "unknown",
                "candidate": c.get("name"),
                "score": c.get("score"),
                "llr": llr,
                "at_bound": at_bound(llr, bounds),
                "bounds": bounds,
                "support": None if llr is None else comparison_support(llr),
                "posterior": c.get("posterior"),
                "decision": c.get("decision"),
                "net_speech": c.get("speech_seconds"),
                "quality": c.get("quality"),
            }
        )
        if idt and idt.get("llr") is not None:
            ccond = idt.get("condition") or cond
            comparisons.append(
                _comparison(
                    key=f"c{len(comparisons)}",
                    title=f"{lab} compared with the voiceprint of {idt['name']}",
                    h1=f"the speech of {lab} was spoken by {idt['name']} (the enrolled voiceprint)",
                    h2=f"the speech of {lab} was spoken by someone else from the reference population",
                    llr=float(idt["llr"]),
                    condition=ccond,
                    source=(info.get("calibration") or {}).get(ccond),
                    quality=c.get("quality"),
                    language=None,
                    plots=len(comparisons) < MAX_COMPARISON_PLOTS,
                )
            )
    return comparison_model(
        "identification",
        Path(path or "recording").name,
        case_id,
        examiner,
        integrity,
        part,
        speakers,
        comparisons,
        identification={
            **{k: info.get(k) for k in ("people", "prior", "decision_rule")},
            "store": display_name(info.get("store")),
        },
    )


def report_path_for(output: str | os.PathLike) -> Path:
    """``X.json`` (or any ``X.ext``) -> ``X.report.html`` beside it."""
    p = Path(output)
    return p.with_name(p.stem + ".report.html")


def check_case_text(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    if len(value) > 200 or any(ord(ch) < 32 for ch in value):
        raise UsageError(f"{flag}: at most 200 printable characters")
    return value
