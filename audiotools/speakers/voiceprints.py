"""The voiceprint store: one record per enrolled person.

Layout of a store directory (default ``./voiceprints``; ``--voiceprints DIR`` or
``$AUDIOTOOLS_VOICEPRINTS``)::

    <id>.json                   the record: display name, dates, embedding model, samples
    <id>.<hash8>.safetensors    the embeddings, one (n_samples, 192) float32 CAM++ tensor per condition
    _calibration.json           optional: a refit of the calibration (``voiceprint calibrate``)
    .lock                       fcntl lock file

No pickle anywhere: JSON and safetensors. The record names its embeddings file and that file's
sha256; an update writes a new embeddings file, then atomically replaces the JSON, then deletes the
old embeddings file, all under an exclusive ``fcntl`` lock on ``.lock`` (readers take a shared
lock), so concurrent enrolments (threads or processes) never lose a sample and a reader never
sees a JSON naming a missing file.

A record made with another embedding model (e.g. the former GE2E ``ge2e-resemblyzer-256``) is read
(``voiceprint list`` shows it) but never compared: :meth:`VoiceprintStore.check_model` raises a
one-line :class:`VoiceprintError` naming the record and the commands that re-enrol the person.

Names: Unicode letters, digits, spaces and ``- ' . _`` (starting with a letter or digit, at most
64 characters); no path separators, control characters, or leading dots. The file id is the
NFC-normalised, case-folded name with spaces as ``_``; when that mapping loses information
(punctuation), a short hash of the name is appended so different names never share a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotools.audio import condition as channel
from audiotools.errors import UsageError, VoiceprintError
from audiotools.fileio import atomic_write_bytes, atomic_write_text, sha256_bytes
from audiotools.transcript import utc_now
from audiotools.weights import CAMPLUS

log = logging.getLogger(__name__)

SCHEMA = "audiotools.voiceprint/1"
DEFAULT_DIR = "voiceprints"
ENV = "AUDIOTOOLS_VOICEPRINTS"
LOCK_FILE = ".lock"
MODEL_ID = CAMPLUS.name  # the current embedding model (audiotools.speakers.campplus)
EMBEDDING_DIM = 192
MAX_NAME = 64
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


# ------------------------------------------------------------------------------------------- names
def validate_name(name: str) -> str:
    """The NFC-normalised display name, or :class:`UsageError` with the reason it is refused."""
    if not isinstance(name, str):
        raise UsageError("a voiceprint name must be text")
    n = unicodedata.normalize("NFC", name).strip()
    if not n:
        raise UsageError("a voiceprint name cannot be empty")
    if len(n) > MAX_NAME:
        raise UsageError(f"voiceprint name {name!r} is too long ({len(n)} characters, at most {MAX_NAME})")
    for ch in n:
        cat = unicodedata.category(ch)
        if ch in "/\\" or ch == os.sep or (os.altsep and ch == os.altsep):
            raise UsageError(f"voiceprint name {name!r} contains a path separator {ch!r}")
        if cat.startswith("C"):
            raise UsageError(f"voiceprint name {name!r} contains a control or invisible character (U+{ord(ch):04X})")
        if not (cat[0] in "LMN" or ch in " -'._"):
            raise UsageError(f"voiceprint name {name!r} contains {ch!r}: use letters, digits, spaces and - ' . _ only")
    if n[0] in ".":
        raise UsageError(f"voiceprint name {name!r} starts with a dot (hidden files are not allowed)")
    if unicodedata.category(n[0])[0] not in "LN":
        raise UsageError(f"voiceprint name {name!r} must start with a letter or digit")
    if ".." in n:
        raise UsageError(f"voiceprint name {name!r} contains '..'")
    return re.sub(r"\s+", " ", n)


def name_key(name: str) -> str:
    """The identity of a name: NFC, case-folded, single spaces ("Анна" and "АННА" are one person)."""
    return unicodedata.normalize("NFC", validate_name(name).casefold())


def file_id(name: str) -> str:
    """The file stem for ``name``'s record; safe on every common filesystem.

    Case-folded letters, marks, digits and ``-``, with ``_`` for spaces. A name holding anything
    else (``_ ' .``) would map ambiguously, so a short hash of the name is appended.
    """
    key = name_key(name)
    lossless = all(unicodedata.category(ch)[0] in "LMN" or ch in " -" for ch in key)
    slug = "".join(ch if unicodedata.category(ch)[0] in "LMN" or ch == "-" else "_" for ch in key)
    slug = re.sub(r"_+", "_", slug).strip("_-")[:48]
    if not lossless or len(key) > 48 or not slug or slug in _WINDOWS_RESERVED:
        h = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
        slug = f"{slug}-{h}" if slug else h
    return slug


# ------------------------------------------------------------------------------------------ record
@dataclass
class Sample:
    file: str  # file name as given at enrolment (basename)
    sha256: str  # of the file's bytes
    pcm_sha256: str  # of the decoded 16 kHz PCM
    duration: float  # seconds of audio used (the whole file or the segment)
    speech_seconds: float  # VAD speech in it
    segment: list[float] | None = None
    condition: str = channel.WIDEBAND
    source_sample_rate: int | None = None
    codec: str | None = None
    enrolled: str = field(default_factory=utc_now)
    checks: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__.items())

    @classmethod
    def from_dict(cls, d: dict) -> Sample:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Voiceprint:
    name: str
    id: str
    created: str
    updated: str
    model_id: str
    weights_sha256: str
    samples: list[Sample]
    embeddings: dict[str, np.ndarray]  # condition -> (n_samples, 192) float32
    path: Path | None = None

    @property
    def speech_seconds(self) -> float:
        return round(sum(s.speech_seconds for s in self.samples), 2)

    @property
    def conditions(self) -> list[str]:
        return [c for c in channel.CONDITIONS if c in self.embeddings]

    @property
    def native_condition(self) -> str:
        """The most degraded condition among the enrolment samples."""
        return channel.worst(*(s.condition for s in self.samples))

    def embeddings_for(self, condition: str) -> np.ndarray:
        if condition not in self.embeddings:
            raise VoiceprintError(
                f"{self.path}: no embeddings for condition {condition!r} "
                f"(has {', '.join(self.embeddings)}); re-enrol {self.name!r}"
            )
        return self.embeddings[condition]

    def summary(self) -> dict:
        return {
            "name": self.name,
            "id": self.id,
            "created": self.created,
            "updated": self.updated,
            "samples": len(self.samples),
            "speech_seconds": self.speech_seconds,
            "model": {"id": self.model_id, "weights_sha256": self.weights_sha256},
            "conditions": self.conditions,
        }


# ------------------------------------------------------------------------------------------- store
def default_store_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV)
    return Path(env) if env else Path(DEFAULT_DIR)


class VoiceprintStore:
    def __init__(self, directory: str | os.PathLike | None = None):
        self.dir = default_store_dir(directory)

    def __repr__(self) -> str:
        return f"VoiceprintStore({str(self.dir)!r})"

    # ----------------------------------------------------------------------- locking
    @contextlib.contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        if exclusive:
            self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / LOCK_FILE
        if not exclusive and not lock_path.exists():
            if not self.dir.is_dir():
                yield
                return
            try:  # a reader creates the lock file when it can; a read-only store is read unlocked
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                yield
                return
        else:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ----------------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.dir.is_dir()

    def record_paths(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.glob("*.json") if not p.name.startswith((".", "_")))

    def is_empty(self) -> bool:
        return not self.record_paths()

    def path_for(self, name: str) -> Path:
        return self.dir / f"{file_id(name)}.json"

    def get(self, name: str) -> Voiceprint:
        p = self.path_for(name)
        with self.lock(False):
            if not p.is_file():
                known = ", ".join(self._names_unlocked()) or "none"
                raise VoiceprintError(f"{self.dir}: no voiceprint for {validate_name(name)!r} (enrolled: {known})")
            return self._read(p)

    def all(self) -> list[Voiceprint]:
        with self.lock(False):
            return [self._read(p) for p in self.record_paths()]

    def comparable(self, model_id: str, weights_sha256: str) -> list[Voiceprint]:
        """Every record, each checked to be made with this embedding model (:meth:`check_model`): a
        corrupt record or one of another model is a one-line error naming it."""
        people = self.all()
        for vp in people:
            self.check_model(vp, model_id, weights_sha256)
        return people

    def names(self) -> list[str]:
        with self.lock(False):
            return self._names_unlocked()

    def _names_unlocked(self) -> list[str]:
        out = []
        for p in self.record_paths():
            try:
                out.append(json.loads(p.read_text(encoding="utf-8"))["name"])
            except Exception:
                out.append(p.stem + " (corrupt)")
        return out

    def _read(self, path: Path) -> Voiceprint:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VoiceprintError(f"{path}: voiceprint record missing") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise VoiceprintError(
                f"{path}: corrupt voiceprint record (invalid JSON: {str(e).splitlines()[0]})"
            ) from None
        except OSError as e:
            raise VoiceprintError(f"{path}: cannot read voiceprint record ({e.strerror or e})") from None
        try:
            if d.get("schema") != SCHEMA:
                raise ValueError(f"schema is {d.get('schema')!r}, expected {SCHEMA!r}")
            emb_info = d["embeddings"]
            emb_path = path.parent / emb_info["file"]
            if Path(emb_info["file"]).name != emb_info["file"] or emb_info["file"].startswith("."):
                raise ValueError(f"embeddings file name {emb_info['file']!r} is not a plain file name")
            samples = [Sample.from_dict(s) for s in d["samples"]]
            vp = Voiceprint(
                name=d["name"],
                id=d["id"],
                created=d["created"],
                updated=d["updated"],
                model_id=d["model"]["id"],
                weights_sha256=d["model"]["weights_sha256"],
                samples=samples,
                embeddings={},
                path=path,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
            raise VoiceprintError(f"{path}: corrupt voiceprint record ({what})") from None
        try:
            data = emb_path.read_bytes()
        except FileNotFoundError:
            raise VoiceprintError(
                f"{emb_path}: embeddings file of voiceprint {vp.name!r} is missing "
                f"(record {path.name}); re-enrol or remove it"
            ) from None
        if emb_info.get("sha256") and sha256_bytes(data) != emb_info["sha256"]:
            raise VoiceprintError(
                f"{emb_path}: embeddings file of voiceprint {vp.name!r} is corrupt or truncated "
                "(sha256 does not match the record)"
            )
        try:
            from safetensors.numpy import load as st_load

            tensors = st_load(data)
        except Exception as e:
            raise VoiceprintError(
                f"{emb_path}: embeddings file of voiceprint {vp.name!r} is corrupt or truncated "
                f"({str(e).splitlines()[0] if str(e) else type(e).__name__})"
            ) from None
        n = len(samples)
        # a record of another model keeps its own width: it is listed, and refused by check_model
        dim = EMBEDDING_DIM if vp.model_id == MODEL_ID else int(emb_info.get("shape", [0, 0])[-1] or 0)
        for cond, arr in tensors.items():
            if arr.ndim != 2 or arr.shape != (n, dim or arr.shape[-1]):
                raise VoiceprintError(
                    f"{emb_path}: embeddings {cond!r} have shape {tuple(arr.shape)}, expected "
                    f"({n}, {dim}) for {n} sample(s) in {path.name}"
                )
            if not np.all(np.isfinite(arr)):
                raise VoiceprintError(f"{emb_path}: embeddings {cond!r} contain NaN/Inf")
            vp.embeddings[cond] = arr.astype(np.float32)
        if channel.WIDEBAND not in vp.embeddings:
            raise VoiceprintError(f"{emb_path}: no {channel.WIDEBAND!r} embeddings in the file")
        return vp

    def reenrol_command(self, vp: Voiceprint) -> str:
        """The shell commands that replace ``vp`` by a record of the current model."""
        store = shlex.quote(str(self.dir))
        name = shlex.quote(vp.name)
        files = " ".join(shlex.quote(s.file) for s in vp.samples) or "FILE..."
        segs = {tuple(s.segment) if s.segment else None for s in vp.samples}
        seg = ""
        if len(segs) == 1 and (only := next(iter(segs))) is not None:
            seg = f" --segment {only[0]:g}-{only[1]:g}"
        return (
            f"audiotools voiceprint remove {name} --voiceprints {store} && "
            f"audiotools voiceprint enroll {name} {files}{seg} --voiceprints {store}"
        )

    def check_model(self, vp: Voiceprint, model_id: str, weights_sha256: str) -> None:
        """Refuse to compare with a record made by another embedding model (or other weights)."""
        if vp.model_id != model_id or (vp.weights_sha256 and weights_sha256 and vp.weights_sha256 != weights_sha256):
            raise VoiceprintError(
                f"{vp.path}: voiceprint {vp.name!r} was made with embedding model {vp.model_id} "
                f"(weights {vp.weights_sha256[:12]}…), not the current {model_id} (weights {weights_sha256[:12]}…); "
                f"scores from different models are not comparable: re-enrol with `{self.reenrol_command(vp)}`"
            )

    # ----------------------------------------------------------------------- writing
    def add_samples(
        self, name: str, samples: list[Sample], embeddings: dict[str, np.ndarray], model_id: str, weights_sha256: str
    ) -> tuple[Voiceprint, list[Sample]]:
        """Append samples (and their embeddings, condition -> (k, 192)) to ``name``'s record.

        Creates the record if needed. Samples already in the record (same PCM hash and segment)
        are skipped. Returns the new record and the skipped samples.
        """
        display = validate_name(name)
        fid = file_id(display)
        path = self.dir / f"{fid}.json"
        for cond, arr in embeddings.items():
            if arr.shape != (len(samples), EMBEDDING_DIM):
                raise ValueError(f"embeddings {cond}: shape {arr.shape} for {len(samples)} samples")
        with self.lock(True):
            old = self._read(path) if path.exists() else None
            now = utc_now()
            if old is not None:
                self.check_model(old, model_id, weights_sha256)
                if set(old.embeddings) != set(embeddings):
                    raise VoiceprintError(
                        f"{path}: record has conditions {sorted(old.embeddings)}, new samples "
                        f"{sorted(embeddings)}; re-enrol {old.name!r}"
                    )
                seen = {(s.pcm_sha256, tuple(s.segment) if s.segment else None) for s in old.samples}
                keep = [
                    i
                    for i, s in enumerate(samples)
                    if (s.pcm_sha256, tuple(s.segment) if s.segment else None) not in seen
                ]
                skipped = [s for i, s in enumerate(samples) if i not in keep]
                new_samples = old.samples + [samples[i] for i in keep]
                new_emb = {c: np.concatenate([old.embeddings[c], embeddings[c][keep]]) for c in old.embeddings}
                vp = Voiceprint(
                    name=old.name,
                    id=fid,
                    created=old.created,
                    updated=now if keep else old.updated,
                    model_id=model_id,
                    weights_sha256=weights_sha256,
                    samples=new_samples,
                    embeddings=new_emb,
                    path=path,
                )
                old_emb_file = json.loads(path.read_text(encoding="utf-8"))["embeddings"]["file"]
            else:
                skipped = []
                vp = Voiceprint(
                    name=display,
                    id=fid,
                    created=now,
                    updated=now,
                    model_id=model_id,
                    weights_sha256=weights_sha256,
                    samples=list(samples),
                    embeddings={c: np.asarray(a, dtype=np.float32) for c, a in embeddings.items()},
                    path=path,
                )
                old_emb_file = None
            if old is None or len(vp.samples) != len(old.samples):
                self._write(vp, old_emb_file)
            self._check_consistent(path)
            return vp, skipped

    def _write(self, vp: Voiceprint, old_emb_file: str | None) -> None:
        from safetensors.numpy import save as st_save

        tensors = {c: np.ascontiguousarray(vp.embeddings[c], dtype=np.float32) for c in vp.conditions}
        data = st_save(tensors, metadata={"format": "audiotools.voiceprint", "model_id": vp.model_id})
        digest = sha256_bytes(data)
        emb_name = f"{vp.id}.{digest[:8]}.safetensors"
        atomic_write_bytes(self.dir / emb_name, data)
        record = {
            "schema": SCHEMA,
            "name": vp.name,
            "id": vp.id,
            "created": vp.created,
            "updated": vp.updated,
            "model": {"id": vp.model_id, "weights_sha256": vp.weights_sha256},
            "embeddings": {
                "file": emb_name,
                "sha256": digest,
                "format": "safetensors",
                "conditions": vp.conditions,
                "shape": [len(vp.samples), EMBEDDING_DIM],
                "dtype": "float32",
            },
            "speech_seconds": vp.speech_seconds,
            "samples": [s.to_dict() for s in vp.samples],
        }
        atomic_write_text(self.dir / f"{vp.id}.json", json.dumps(record, ensure_ascii=False, indent=2) + "\n")
        if old_emb_file and old_emb_file != emb_name:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / old_emb_file).unlink()

    def _check_consistent(self, path: Path) -> None:
        self._read(path)  # raises if what we just wrote does not read back

    def remove(self, name: str) -> Voiceprint:
        path = self.path_for(name)
        with self.lock(True):
            if not path.is_file():
                raise VoiceprintError(f"{self.dir}: no voiceprint for {validate_name(name)!r}")
            emb_file = None
            try:
                d = json.loads(path.read_text(encoding="utf-8"))
                emb_file = d["embeddings"]["file"]
                name_shown = d.get("name", name)
            except Exception:
                name_shown = name
            path.unlink()
            if emb_file and Path(emb_file).name == emb_file:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / emb_file).unlink()
            # stray embeddings of this id (from an interrupted write)
            for p in self.dir.glob(f"{path.stem}.*.safetensors"):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        return Voiceprint(
            name=name_shown,
            id=path.stem,
            created="",
            updated="",
            model_id="",
            weights_sha256="",
            samples=[],
            embeddings={},
            path=path,
        )
