"""Provenance: hashes that tie a transcript to its audio, its models and its parameters.

Pipeline step ``provenance`` (the last one before export, after masking). It adds to the transcript
a ``provenance`` block (see docs/provenance.md for the full description)::

    "provenance": {
      "schema": "audiotools.provenance/1",
      "created": UTC time, "tool": {"name", "version", "python"},
      "source": {"path", "sha256" (of the file bytes), "size_bytes"},
      "pcm": {"sha256", "format": "f32le", "sample_rate": 16000, "channels": 1, "samples",
              "decoder", "decoder_versions"},
      "segment_hashing": <the slice rule, as text>,
      "segments": [{"id", "start", "end", "sha256"}, ...],
      "models": [{"role", "name", "sha256"}, ...],
      "parameters": the resolved pipeline recipe (same as the top-level "parameters"),
      "canonicalization": <the canonical form, as text>,
      "transcript_sha256": sha256 of the canonical document,
      "signature": {"algorithm": "ed25519", "public_key", "key_id", "value"}   (with --sign-key)
    }

Segment hashes live only in ``provenance.segments`` (never on the segments themselves). A segment's
hash is sha256 over the mono float32 little-endian PCM samples ``[round(start*16000),
round(end*16000))`` (clamped to the audio), where start/end are the seconds written in the JSON
(3 decimals). Editing a segment's start/end is caught three ways: the transcript hash, the
provenance.segments entry no longer matching, and (with the audio) the slice hash.

``transcript_sha256`` is sha256 over the canonical JSON of the whole transcript document with
``provenance.transcript_sha256`` and ``provenance.signature`` removed: ``json.dumps(doc,
sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8 (floats as
Python's ``repr``, as json writes them).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import InputError, UsageError
from audiotools.options import Options

log = logging.getLogger(__name__)

SCHEMA = "audiotools.provenance/1"
SEGMENT_HASHING = (
    "sha256 of the mono float32 little-endian PCM (16 kHz, as decoded by audiotools) samples "
    "[round(start*16000), round(end*16000)), clamped to [0, samples]; start/end are the "
    "segment's seconds as written in this JSON"
)
CANONICALIZATION = (
    "sha256 of json.dumps(document, sort_keys=True, separators=(',', ':'), ensure_ascii=False)"
    " encoded as UTF-8, where document is this whole JSON object without "
    "provenance.transcript_sha256 and provenance.signature"
)


# Pipeline step parameters (see pipeline.py).
@dataclass(frozen=True)
class ProvenanceOptions(Options):
    """The ``provenance`` step: hashes of the audio, segments, models and transcript, and a signature."""

    STEP: ClassVar[str] = "provenance"

    enabled: bool = True
    sign_key: str | None = None  # Ed25519 private key (PEM) to sign the transcript hash with

    def content_ids(self) -> dict:
        """The signing key's public key id (never anything of the private key)."""
        if not self.sign_key:
            return {}
        from audiotools.provenance.signing import key_id, load_private_key

        return {"sign_key_id": key_id(load_private_key(self.sign_key).public_key())}


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------- canonical form


def canonical_json(doc: Any) -> bytes:
    """The canonical serialisation: sorted keys, no whitespace, UTF-8, floats as Python's repr."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _as_document(doc) -> dict:
    """A plain JSON dict: a Transcript is serialised and parsed back (exactly what to_json writes)."""
    from audiotools.transcript import Transcript

    if isinstance(doc, Transcript):
        return json.loads(doc.to_json(indent=None))
    return doc


def hashed_document(doc) -> dict:
    """The document that ``transcript_sha256`` covers: ``doc`` without the hash and the signature."""
    d = copy.deepcopy(_as_document(doc))
    prov = d.get("provenance")
    if isinstance(prov, dict):
        prov.pop("transcript_sha256", None)
        prov.pop("signature", None)
    return d


def transcript_sha256(doc) -> str:
    """sha256 (hex) of the canonical JSON of ``doc`` (a dict or a Transcript) minus hash and signature."""
    return hashlib.sha256(canonical_json(hashed_document(doc))).hexdigest()


# ---------------------------------------------------------------- segment slices


def segment_bounds(start: float, end: float, n_samples: int) -> tuple[int, int]:
    """Sample indices ``[a, b)`` of a segment: round(start*16000), round(end*16000), clamped."""
    a = min(max(int(round(float(start) * SAMPLE_RATE)), 0), n_samples)
    b = min(max(int(round(float(end) * SAMPLE_RATE)), a), n_samples)
    return a, b


def segment_sha256(samples: np.ndarray, start: float, end: float) -> str:
    from audiotools.audio.decode import pcm_sha256

    a, b = segment_bounds(start, end, len(samples))
    return pcm_sha256(samples[a:b])


# ---------------------------------------------------------------- models

_SKIP_EXTRA = {"provenance", "parameters", "stats", "warnings"}


def _scan_models(obj, path: tuple, out: list[dict], depth: int = 0) -> None:
    """Find model hashes recorded by other steps: dicts with ``weights_sha256``/``model_sha256``,
    or with ``sha256`` under a key that names a model/encoder/embedding."""
    if depth > 6:
        return
    if isinstance(obj, dict):
        sha = obj.get("weights_sha256") or obj.get("model_sha256")
        where = ".".join(str(p) for p in path)
        if (
            not sha
            and isinstance(obj.get("sha256"), str)
            and path
            and any(w in str(path[-1]).lower() for w in ("model", "encoder", "embedding"))
        ):
            sha = obj["sha256"]
        if isinstance(sha, str) and _HEX64.match(sha.lower()):
            name = next(
                (obj[k] for k in ("model_id", "name", "model", "id") if isinstance(obj.get(k), str)), where or "model"
            )
            role = obj.get("role") if isinstance(obj.get("role"), str) else None
            if role is None:
                text = f"{where} {name}".lower()
                role = (
                    "speaker-embedding"
                    if ("embedding" in text or "encoder" in text or "campplus" in text)
                    else (where or "model")
                )
            out.append({"role": role, "name": name, "sha256": sha.lower()})
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                _scan_models(v, path + (k,), out, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:10000]:
            if isinstance(v, (dict, list)):
                _scan_models(v, path, out, depth + 1)


def collect_models(transcript) -> list[dict]:
    """Every model whose hash is known for ``transcript``: Whisper first, then those of an earlier
    provenance block, those found in the other steps' output, and the speaker encoder (CAM++) when it
    is mentioned."""
    models: list[dict] = []

    def add(entry: dict) -> None:
        if not entry.get("sha256"):
            return
        if not any(m["role"] == entry["role"] and m["sha256"] == entry["sha256"] for m in models):
            models.append(entry)

    m = transcript.model or {}
    if m.get("sha256"):
        entry = {"role": "asr", "name": m.get("name") or "whisper", "sha256": m["sha256"]}
        for k in ("kind", "source", "compute_type"):
            if m.get(k):
                entry[k] = m[k]
        add(entry)
    for e in (transcript.extra.get("provenance") or {}).get("models") or []:
        if isinstance(e, dict) and e.get("role") and e.get("sha256"):
            add(dict(e))
    found: list[dict] = []
    for k, v in transcript.extra.items():
        if k not in _SKIP_EXTRA:
            _scan_models(v, (k,), found)
    _scan_models(transcript.speakers, ("speakers",), found)
    for e in found:
        add(e)
    if not any(e["role"] == "speaker-embedding" for e in models):
        for enc in _speaker_encoders_if_used(transcript):
            add(enc)
    return models


def _speaker_encoders_if_used(transcript) -> list[dict]:
    """The speaker encoder (CAM++: the diariser, voiceprints, identification and verification) when
    the transcript's speaker data names it without giving its hash."""
    parts = {k: v for k, v in transcript.extra.items() if k not in _SKIP_EXTRA}
    try:
        blob = json.dumps([parts, transcript.speakers], default=str)
    except (TypeError, ValueError):
        return []
    out = []
    from audiotools.weights import CAMPLUS

    if CAMPLUS.name in blob:  # the file is used only after its sha256 matched this one (weights.locate)
        out.append({"role": "speaker-embedding", "name": CAMPLUS.name, "sha256": CAMPLUS.sha256})
    return out


def _normalise_times(transcript) -> None:
    """Round start/end to the 3 decimals the JSON holds, so exports and hashes use the same values."""
    for s in transcript.segments:
        s.start, s.end = round(float(s.start), 3), round(float(s.end), 3)
        for w in s.words:
            w.start, w.end = round(float(w.start), 3), round(float(w.end), 3)


def _audio_for(transcript, audio):
    """The decoded audio to hash: ``audio`` unless a step changed its samples, else a fresh decode."""
    from audiotools.audio.decode import load_audio, pcm_sha256

    if audio is not None:
        if not audio.info.pcm_sha256 or pcm_sha256(audio.samples) == audio.info.pcm_sha256:
            return audio
        log.warning(
            "%s: decoded samples were modified after loading; decoding the source again for provenance", audio.info.path
        )
        path = audio.info.path
    else:
        path = transcript.audio.path
    fresh = load_audio(path)
    if transcript.audio.sha256 and fresh.info.sha256 != transcript.audio.sha256:
        raise InputError(
            path, "source file changed since it was transcribed (sha256 differs); cannot record provenance"
        )
    return fresh


def build_provenance(transcript, audio=None, parameters: dict | None = None) -> dict:
    """The provenance block for ``transcript`` (without transcript_sha256 / signature).

    ``audio`` is the DecodedAudio the transcript was made from (decoded again from
    ``transcript.audio.path`` when None). ``parameters`` defaults to ``transcript.extra["parameters"]``.
    """
    from audiotools.audio.decode import decoder_versions, pcm_sha256
    from audiotools.fileio import sha256_file
    from audiotools.transcript import utc_now
    from audiotools.version import __version__

    audio = _audio_for(transcript, audio)
    samples = audio.samples
    info = audio.info
    src_sha = info.sha256 or transcript.audio.sha256 or sha256_file(info.path)
    try:
        size = os.stat(info.path).st_size
    except OSError:
        size = None
    pcm_hash = info.pcm_sha256 or pcm_sha256(samples)
    try:
        versions = decoder_versions()
    except Exception:  # pragma: no cover - decoders are dependencies
        versions = {}
    source = {"path": str(info.path), "sha256": src_sha}
    if size is not None:
        source["size_bytes"] = size
    segments = []
    for s in transcript.segments:
        start, end = round(float(s.start), 3), round(float(s.end), 3)
        segments.append({"id": s.id, "start": start, "end": end, "sha256": segment_sha256(samples, start, end)})
    if parameters is None:
        parameters = transcript.extra.get("parameters")
    block = {
        "schema": SCHEMA,
        "created": utc_now(),
        "tool": {"name": "audiotools", "version": __version__, "python": platform.python_version()},
        "source": source,
        "pcm": {
            "sha256": pcm_hash,
            "format": "f32le",
            "sample_rate": SAMPLE_RATE,
            "channels": 1,
            "samples": int(len(samples)),
            "decoder": info.decoder,
            "decoder_versions": versions,
        },
        "segment_hashing": SEGMENT_HASHING,
        "segments": segments,
        "models": collect_models(transcript),
        "parameters": copy.deepcopy(parameters) if parameters is not None else {},
        "canonicalization": CANONICALIZATION,
    }
    return block


def apply_provenance(transcript, audio=None, sign_key=None, parameters: dict | None = None) -> dict:
    """Build the provenance block, put it (last) into ``transcript.extra`` and seal it with
    ``transcript_sha256`` (and an Ed25519 signature when ``sign_key`` is given: a private key
    object or a key file path). Returns the block."""
    from audiotools.provenance.signing import load_private_key, sign_digest

    if sign_key is not None and not hasattr(sign_key, "sign"):
        sign_key = load_private_key(sign_key)
    _normalise_times(transcript)
    block = build_provenance(transcript, audio, parameters)
    transcript.extra.pop("provenance", None)
    transcript.extra["provenance"] = block
    digest = transcript_sha256(transcript)
    block["transcript_sha256"] = digest
    if sign_key is not None:
        block["signature"] = sign_digest(sign_key, digest)
    return block


def sign(doc: dict, private_key) -> dict:
    """Add (or replace) the signature of a transcript dict whose transcript_sha256 is correct."""
    from audiotools.provenance.signing import load_private_key, sign_digest

    if not hasattr(private_key, "sign"):
        private_key = load_private_key(private_key)
    prov = doc.get("provenance")
    if not isinstance(prov, dict) or not prov.get("transcript_sha256"):
        raise UsageError("the transcript has no provenance block with a transcript_sha256 to sign")
    if transcript_sha256(doc) != prov["transcript_sha256"]:
        raise UsageError("transcript_sha256 does not match the document (edited after it was made?); refusing to sign")
    prov["signature"] = sign_digest(private_key, prov["transcript_sha256"])
    return prov["signature"]


# ---------------------------------------------------------------- pipeline step


def run_step(job, options: ProvenanceOptions) -> None:
    # the parameters finish() recorded (computing them again re-reads the word files and the key)
    parameters = job.transcript.extra.get("parameters")
    if parameters is None and getattr(job, "recipe", None):
        parameters = job.recipe.parameters()
    apply_provenance(job.transcript, job.audio, sign_key=options.sign_key, parameters=parameters)


# ---------------------------------------------------------------- verification


@dataclass
class Check:
    name: str
    status: str  # "ok" | "fail" | "skip"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict:
        return asdict(self)


def _short(h: Any) -> str:
    return f"{h[:16]}…" if isinstance(h, str) and len(h) > 16 else str(h)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def document_problem(doc) -> str | None:
    """Why ``doc`` is not shaped like a transcript (one line), or None. ``verify`` needs the types
    it reads to be right; values are its business (a wrong value is a failed check)."""
    if not isinstance(doc, dict):
        return f"a JSON object expected, found {type(doc).__name__}"
    for key, kind in (("segments", list), ("audio", dict), ("model", dict), ("provenance", dict)):
        if key in doc and doc[key] is not None and not isinstance(doc[key], kind):
            return f"{key} is {type(doc[key]).__name__}, expected {kind.__name__}"
    for i, s in enumerate(doc.get("segments") or []):
        if not isinstance(s, dict):
            return f"segments[{i}] is {type(s).__name__}, expected an object"
        for k in ("start", "end"):
            if k in s and not _number(s[k]):
                return f"segments[{i}].{k} is {type(s[k]).__name__}, expected a number"
        if "text" in s and not isinstance(s["text"], str):
            return f"segments[{i}].text is {type(s['text']).__name__}, expected a string"
        words = s.get("words")
        if words is not None and not isinstance(words, list):
            return f"segments[{i}].words is {type(words).__name__}, expected a list"
        for j, w in enumerate(words or []):
            if not isinstance(w, dict):
                return f"segments[{i}].words[{j}] is {type(w).__name__}, expected an object"
    prov = doc.get("provenance")
    if isinstance(prov, dict):
        for key in ("segments", "models"):
            v = prov.get(key)
            if v is not None and not isinstance(v, list):
                return f"provenance.{key} is {type(v).__name__}, expected a list"
            for i, e in enumerate(v or []):
                if not isinstance(e, dict):
                    return f"provenance.{key}[{i}] is {type(e).__name__}, expected an object"
        for key in ("source", "pcm", "tool"):
            if prov.get(key) is not None and not isinstance(prov[key], dict):
                return f"provenance.{key} is {type(prov[key]).__name__}, expected an object"
        if prov.get("transcript_sha256") is not None and not isinstance(prov["transcript_sha256"], str):
            return "provenance.transcript_sha256 is not a string"
    return None


def verify(doc: dict, audio_path=None, public_key=None, exports=None, audio=None, trusted_keys=None) -> list[Check]:
    """Re-check a transcript dict. Returns one :class:`Check` per check (status ok/fail/skip).

    Without ``audio_path`` only the document itself is checked (transcript hash, provenance
    consistency, signature). ``public_key`` (file, raw bytes or key) and ``trusted_keys`` (a list
    of them) are the trusted keys: given any, the signature must be by one of them; given none, a
    valid signature is reported as ``skip`` (valid by its embedded key, which proves nothing about
    who made it). ``exports`` is a list of exported files (srt/vtt/txt/tsv/rttm) checked against the
    JSON. A malformed document gives one failed ``document`` check (see ``document_problem``).
    """
    checks: list[Check] = []
    keys = ([public_key] if public_key is not None else []) + list(trusted_keys or [])
    problem = document_problem(doc)
    if problem:
        return [Check("document", "fail", f"malformed transcript: {problem}")]
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    if not isinstance(prov, dict):
        checks.append(Check("provenance", "fail", "the transcript has no provenance block"))
        if keys:
            checks.append(Check("signature", "fail", "no signature in the transcript"))
        return checks
    schema = prov.get("schema")
    checks.append(
        Check(
            "provenance",
            "ok" if schema == SCHEMA else "fail",
            f"{schema}, made {prov.get('created')} by audiotools {(prov.get('tool') or {}).get('version')}"
            if schema == SCHEMA
            else f"unknown provenance schema {schema!r}",
        )
    )

    recorded = prov.get("transcript_sha256")
    actual = transcript_sha256(doc)
    if not recorded:
        checks.append(Check("transcript_sha256", "fail", "no transcript_sha256 recorded"))
    elif recorded == actual:
        checks.append(Check("transcript_sha256", "ok", f"{recorded} matches"))
    else:
        checks.append(
            Check("transcript_sha256", "fail", f"document was changed: recorded {recorded}, computed {actual}")
        )

    checks.append(_check_segment_list(doc, prov))
    top = doc.get("parameters")
    if top is not None:
        same = canonical_json(top) == canonical_json(prov.get("parameters"))
        checks.append(
            Check(
                "parameters",
                "ok" if same else "fail",
                "provenance.parameters equal the transcript's parameters"
                if same
                else "provenance.parameters differ from the transcript's top-level parameters",
            )
        )
    checks.append(_check_models(doc, prov))
    checks.append(_check_signature(prov, keys, document_matches=bool(recorded) and recorded == actual))
    if audio_path is not None or audio is not None:
        checks += _check_audio(doc, prov, audio_path, audio)
    for e in exports or []:
        checks += verify_export(doc, e)
    return checks


def _check_segment_list(doc, prov) -> Check:
    segs = doc.get("segments") or []
    psegs = prov.get("segments")
    if not isinstance(psegs, list):
        return Check("segments", "fail", "provenance.segments missing")
    problems = []
    if len(psegs) != len(segs):
        problems.append(f"{len(segs)} segments in the transcript, {len(psegs)} in provenance")
    for i, (s, p) in enumerate(zip(segs, psegs)):
        for k in ("id", "start", "end"):
            if s.get(k) != (p or {}).get(k):
                problems.append(
                    f"segment {s.get('id', i)}: {k} {s.get(k)!r} in the transcript, {(p or {}).get(k)!r} in provenance"
                )
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        return Check("segments", "fail", "; ".join(problems[:5]) + more)
    return Check("segments", "ok", f"{len(segs)} segments match provenance.segments (id, start, end)")


def _check_models(doc, prov) -> Check:
    models = prov.get("models")
    if not isinstance(models, list):
        return Check("models", "fail", "provenance.models missing")
    m = doc.get("model") or {}
    if m.get("sha256") and not any(isinstance(e, dict) and e.get("sha256") == m["sha256"] for e in models):
        return Check(
            "models",
            "fail",
            f"the transcript's model {m.get('name')} ({_short(m['sha256'])}) is not listed in provenance.models",
        )
    names = ", ".join(f"{e.get('role')}={e.get('name')}" for e in models if isinstance(e, dict))
    return Check("models", "ok", f"{len(models)} model hash(es): {names or '-'}")


def _check_signature(prov, keys: list, document_matches: bool = True) -> Check:
    """``ok`` only for a valid signature by a trusted key over a document that still matches the hash
    it signs; ``skip`` for an unsigned document or a valid signature that no trusted key was given to
    check (anyone can re-sign with their own key). A signature signs ``transcript_sha256``: when the
    document no longer matches that hash, a valid signature vouches for the original, not for this
    document, so the check fails (``document_matches`` False)."""
    from audiotools.provenance.signing import key_id, load_public_key, raw_public_bytes, verify_digest

    sig = prov.get("signature")
    keys = [load_public_key(k) for k in keys]
    if not sig:
        if keys:
            return Check("signature", "fail", "no signature in the transcript, but a trusted key was given")
        return Check("signature", "skip", "not signed: nothing shows who made this transcript")
    if not keys:
        ok, detail = verify_digest(sig, prov.get("transcript_sha256") or "", None)
        if not ok:
            return Check("signature", "fail", detail)
        return Check(
            "signature",
            "skip",
            f"UNTRUSTED: {detail.split(' (')[0]}; no trusted key given (--public-key, --trusted-keys), so "
            "it does not show who made the transcript: anyone can re-sign an edited copy",
        )
    embedded = sig.get("public_key") if isinstance(sig, dict) else None
    match = next((k for k in keys if base64.b64encode(raw_public_bytes(k)).decode("ascii") == embedded), keys[0])
    ok, detail = verify_digest(sig, prov.get("transcript_sha256") or "", match)
    if not ok and len(keys) > 1 and "another key" in detail:
        detail = f"signed by a key that is not among the {len(keys)} trusted keys ({detail})"
    elif ok:
        detail = f"valid, made by the trusted key {key_id(raw_public_bytes(match))}"
        if not document_matches:
            return Check(
                "signature",
                "fail",
                f"{detail}, over the recorded transcript_sha256, which this document no longer matches: "
                "it vouches for the original, not for what you are reading",
            )
    return Check("signature", "ok" if ok else "fail", detail)


AUDIO_CHECKS = ("source_sha256", "pcm_sha256")


def summarize(doc, checks: list[Check]) -> dict:
    """Which groups of checks passed, whether a trusted key authenticated the transcript, and the
    exit code ``provenance verify`` gives: 0 intact and signed by a trusted key, 1 a check failed,
    3 every check passed but nothing authenticates it (not signed, or no trusted key given)."""

    def group(name: str) -> str:
        if name == "signature":
            return "signature"
        if name in AUDIO_CHECKS or (name.startswith("segment ") and name.endswith(" sha256")):
            return "audio"
        if name.startswith("export "):
            return "exports"
        return "integrity"

    out: dict = {}
    for g in ("integrity", "audio", "exports"):
        cs = [c for c in checks if group(c.name) == g]
        out[g] = "not checked" if not cs else "failed" if any(c.status == "fail" for c in cs) else "passed"
    sig = next((c for c in checks if c.name == "signature"), None)
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    signed = isinstance(prov, dict) and bool(prov.get("signature"))
    if sig is None:
        out["signature"] = "not checked"
    elif sig.status == "ok":
        out["signature"] = "trusted"
    elif sig.status == "fail":
        out["signature"] = "failed"
    else:
        out["signature"] = "untrusted" if signed else "unsigned"
    out["authenticated"] = out["signature"] == "trusted"
    failed = any(c.status == "fail" for c in checks)
    out["exit_code"] = 1 if failed else 0 if out["authenticated"] else 3
    return out


def _check_audio(doc, prov, audio_path, audio) -> list[Check]:
    from audiotools.audio.decode import load_audio
    from audiotools.errors import AudiotoolsError

    checks: list[Check] = []
    src = prov.get("source") or {}
    pcm = prov.get("pcm") or {}
    if audio is None:
        try:
            audio = load_audio(audio_path)
            decode_error = None
        except AudiotoolsError as e:
            decode_error = str(e)
            audio = None
    else:
        decode_error = None
    if audio is None:
        from audiotools.fileio import sha256_file

        try:
            src_now = sha256_file(audio_path)
        except OSError as e:
            return [Check("source_sha256", "fail", f"{audio_path}: cannot read: {e.strerror or e}")]
    else:
        src_now = audio.info.sha256
    src_ok = src_now == src.get("sha256")
    checks.append(
        Check(
            "source_sha256",
            "ok" if src_ok else "fail",
            f"{src_now} matches" if src_ok else f"audio file differs: recorded {src.get('sha256')}, file has {src_now}",
        )
    )
    if audio is None:
        checks.append(Check("pcm_sha256", "fail", f"cannot decode the audio: {decode_error}"))
        checks.append(Check("segment sha256", "skip", "audio not decodable"))
        return checks
    dec_now, dec_then = audio.info.decoder, pcm.get("decoder")
    pcm_ok = audio.info.pcm_sha256 == pcm.get("sha256")
    if pcm_ok:
        detail = f"{audio.info.pcm_sha256} matches ({dec_now})"
    else:
        detail = f"decoded PCM differs: recorded {pcm.get('sha256')}, decoded now {audio.info.pcm_sha256}"
        if pcm.get("samples") is not None and pcm.get("samples") != len(audio.samples):
            detail += f"; {len(audio.samples)} samples now, {pcm.get('samples')} recorded"
        if dec_now != dec_then:
            cause = (
                "the source file is unchanged, so the decoder is the likely cause"
                if src_ok
                else "the source file differs too"
            )
            detail += (
                f"; DECODER DIFFERS (name or version): recorded {dec_then!r}, now {dec_now!r} ({cause}; "
                f"verify with the recorded decoder version)"
            )
    checks.append(Check("pcm_sha256", "ok" if pcm_ok else "fail", detail))
    psegs = prov.get("segments") or []
    for i, s in enumerate(doc.get("segments") or []):
        p = psegs[i] if i < len(psegs) and isinstance(psegs[i], dict) else {}
        name = f"segment {s.get('id', i)} sha256"
        if not p.get("sha256"):
            checks.append(Check(name, "fail", "no hash recorded in provenance.segments"))
            continue
        try:
            start, end = float(s["start"]), float(s["end"])
        except (KeyError, TypeError, ValueError):
            checks.append(Check(name, "fail", "segment has no valid start/end"))
            continue
        a, b = segment_bounds(start, end, len(audio.samples))
        h = segment_sha256(audio.samples, start, end)
        if h == p["sha256"]:
            checks.append(Check(name, "ok", f"samples [{a}, {b}) match"))
        else:
            checks.append(
                Check(name, "fail", f"samples [{a}, {b}) ({start:.3f}-{end:.3f} s) hash {h}, recorded {p['sha256']}")
            )
    return checks


# ---------------------------------------------------------------- exports

_EXPORT_FORMATS = ("srt", "vtt", "txt", "tsv", "rttm")
_HASH_LINE = re.compile(r"transcript_sha256\s+([0-9a-fA-F]{64})")


def embedded_hash(path: Path, fmt: str) -> tuple[str | None, str | None, str | None]:
    """``(transcript_sha256, file_sha256_from_sidecar, where)`` that an export carries."""
    from audiotools.export.writers import SIDECAR_FORMATS, sidecar_path

    if fmt in SIDECAR_FORMATS:
        side = sidecar_path(path)
        if not side.is_file():
            return None, None, f"{side.name} (missing)"
        text = side.read_text(encoding="utf-8", errors="replace")
        m = _HASH_LINE.search(text)
        fm = re.search(r"^([0-9a-fA-F]{64})\s+\*?(.+)$", text, re.M)
        return (m.group(1).lower() if m else None), (fm.group(1).lower() if fm else None), side.name
    with open(path, encoding="utf-8", errors="replace") as f:
        head = [f.readline() for _ in range(4)]
    for line in head:
        m = _HASH_LINE.search(line)
        if m and (line.startswith(("#", "NOTE"))):
            return m.group(1).lower(), None, path.name
    return None, None, path.name


def verify_export(doc: dict, path) -> list[Check]:
    """Check an exported file against its JSON: the hash it carries, its sidecar (SRT/TSV/RTTM),
    and that its content is what this JSON exports to."""
    from audiotools.export.writers import WRITERS
    from audiotools.fileio import sha256_file
    from audiotools.transcript import Transcript

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    name = f"export {path.name}"
    if fmt not in _EXPORT_FORMATS:
        return [Check(name, "fail", f"unknown export format {fmt!r} (expected {', '.join(_EXPORT_FORMATS)})")]
    if not path.is_file():
        return [Check(name, "fail", "no such file")]
    recorded = (doc.get("provenance") or {}).get("transcript_sha256")
    carried, file_sha, where = embedded_hash(path, fmt)
    checks = []
    if carried is None:
        checks.append(Check(f"{name}: transcript_sha256", "fail", f"no transcript_sha256 found in {where}"))
    elif carried != recorded:
        checks.append(
            Check(
                f"{name}: transcript_sha256",
                "fail",
                f"carries {carried}, the JSON records {recorded} (export of another transcript)",
            )
        )
    else:
        checks.append(Check(f"{name}: transcript_sha256", "ok", f"{where} names the JSON's hash"))
    if file_sha is not None:
        now = sha256_file(path)
        checks.append(
            Check(
                f"{name}: file sha256",
                "ok" if now == file_sha else "fail",
                f"matches {where}"
                if now == file_sha
                else f"file was changed: {where} records {file_sha}, file has {now}",
            )
        )
    try:
        expected = WRITERS[fmt](Transcript.from_dict(copy.deepcopy(doc)))
        actual = path.read_text(encoding="utf-8")
    except Exception as e:  # malformed JSON content / undecodable file
        checks.append(Check(f"{name}: content", "fail", f"cannot regenerate or read: {e}"))
        return checks
    if expected == actual:
        checks.append(Check(f"{name}: content", "ok", "identical to what the JSON exports to"))
    else:
        exp_lines, act_lines = expected.splitlines(), actual.splitlines()
        n = next(
            (i for i, (x, y) in enumerate(zip(exp_lines, act_lines)) if x != y), min(len(exp_lines), len(act_lines))
        )
        got = act_lines[n] if n < len(act_lines) else "(end of file)"
        want = exp_lines[n] if n < len(exp_lines) else "(end of file)"
        from audiotools.version import __version__

        made_by = ((doc.get("provenance") or {}).get("tool") or {}).get("version")
        note = (
            ""
            if made_by in (None, __version__)
            else f" (written by audiotools {made_by}, checked with {__version__}: the format may have changed)"
        )
        checks.append(
            Check(
                f"{name}: content",
                "fail",
                f"line {n + 1} differs from the JSON: file has {got!r}, JSON gives {want!r}{note}",
            )
        )
    return checks


def sibling_exports(json_path) -> list[Path]:
    """The exports written beside ``json_path`` (same stem)."""
    p = Path(json_path)
    return [q for f in _EXPORT_FORMATS if (q := p.with_suffix("." + f)).is_file()]


def missing_exports(json_path) -> list[Check]:
    """A failed check for each file that the output set's manifest beside ``json_path`` lists and
    that is gone (an export or sidecar deleted after the run); none when there is no manifest (a
    JSON copied on its own)."""
    from audiotools.export.writers import manifest_path, read_manifest

    p = Path(json_path)
    manifest = manifest_path(p.with_suffix(""))
    if not manifest.is_file():
        return []
    try:
        _, files = read_manifest(manifest)
    except (OSError, UnicodeDecodeError) as e:
        return [Check(f"export {manifest.name}", "fail", f"output set manifest unreadable: {e}")]
    return [
        Check(f"export {name}", "fail", f"missing: the output set's manifest {manifest.name} lists it")
        for name in sorted(files)
        if not (p.parent / name).is_file()
    ]


def load_document(path) -> dict:
    from audiotools.fileio import read_text_input

    p = Path(path)
    text = read_text_input(p, "transcript")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InputError(p, f"not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InputError(p, "not a transcript (JSON object expected)")
    return doc
