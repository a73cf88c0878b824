"""The batch plan: which files, where their outputs go, and which are already done (resume)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from audiotools.errors import UsageError
from audiotools.pipeline.recipe import Recipe

log = logging.getLogger(__name__)

LOCK_NAME = ".audiotools-batch.lock"
LIST_SUFFIXES = {".txt", ".lst"}
VOLATILE_KEYS = frozenset({"device", "batch_size", "threads", "workers", "fp16", "allow_download"})


# ------------------------------------------------------------------ plan


@dataclass
class PlanItem:
    input: str  # absolute path of the input file
    rel: str  # output stem relative to the output directory (posix, no extension)
    error: str | None = None  # set when discovery already knows the file is unusable


@dataclass
class FileRecord:
    input: str
    outputs: list[str] = field(default_factory=list)
    status: str = "pending"  # ok | skipped | failed | pending
    error: str | None = None
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0
    decode_seconds: float | None = None
    language: str | None = None
    warnings: list[str] = field(default_factory=list)  # the transcript's warnings (a truncated input ...)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["audio_seconds"] = round(float(self.audio_seconds or 0.0), 3)
        d["processing_seconds"] = round(float(self.processing_seconds or 0.0), 3)
        if self.decode_seconds is None:
            d.pop("decode_seconds")
        else:
            d["decode_seconds"] = round(float(self.decode_seconds), 3)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FileRecord:
        rec = cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})
        rec.warnings = list(rec.warnings or [])
        return rec


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: Path, skip: set[str]) -> list[Path]:
    """Audio/video files under ``root``, sorted, hidden entries and ``skip`` folders left out."""
    from audiotools.audio.decode import AUDIO_EXTENSIONS

    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(
            d for d in dirnames if not _hidden(d) and os.path.realpath(os.path.join(dirpath, d)) not in skip
        )
        # a folder (or a link to one) named like audio is listed too: it fails with its own reason
        # instead of vanishing from the report; FIFOs, devices and link loops are among the file names
        names = filenames + [d for d in dirnames if os.path.splitext(d)[1].lower() in AUDIO_EXTENSIONS]
        for f in sorted(names):
            if not _hidden(f) and os.path.splitext(f)[1].lower() in AUDIO_EXTENSIONS:
                out.append(Path(dirpath) / f)
    return out


def read_list_file(path: Path) -> list[str]:
    """Entries of a list file: one path per line, blank lines and ``#`` comment lines ignored."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text list of paths (is it audio with a .txt name?)") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read list file: {e.strerror or e}") from None
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line)
    return entries


def _safe_relative(entry: str) -> PurePosixPath | None:
    p = PurePosixPath(entry.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        return None
    return PurePosixPath(*[x for x in p.parts if x != "."]) if any(x != "." for x in p.parts) else None


def discover(inputs: Iterable[str | os.PathLike], output_dir: str | os.PathLike | None = None) -> list[PlanItem]:
    """Expand inputs into a deterministic plan: one :class:`PlanItem` per distinct input file."""
    skip = {os.path.realpath(output_dir)} if output_dir is not None else set()
    entries: list[tuple[Path, PurePosixPath]] = []  # (file, output path with the file name, relative)

    def add_dir(root: Path, prefix: PurePosixPath) -> None:
        for f in _walk(root, skip):
            entries.append((f, prefix / PurePosixPath(f.relative_to(root).as_posix())))

    for inp in inputs:
        p = Path(os.path.abspath(os.fspath(inp)))
        if p.is_dir():
            add_dir(p, PurePosixPath())
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            for entry in read_list_file(p):
                q = Path(entry).expanduser()
                q = Path(os.path.abspath(q if q.is_absolute() else p.parent / q))
                rel = _safe_relative(entry)
                if q.is_dir():
                    add_dir(q, rel or PurePosixPath())
                else:
                    entries.append((q, rel or PurePosixPath(q.name)))
        else:  # a file (or a missing path: it fails later, with the others still processed)
            entries.append((p, PurePosixPath(p.name)))

    seen: set[str] = set()
    unique: list[tuple[Path, PurePosixPath]] = []
    for f, rel in entries:
        key = os.path.realpath(f)
        if key in seen:
            continue
        seen.add(key)
        unique.append((f, rel))

    return [PlanItem(input=str(f), rel=rel) for (f, _), rel in zip(unique, distinct_stems(unique))]


def _stem(rel: PurePosixPath, level: int, path: Path) -> str:
    if level == 0:
        name = rel.name[: -len(rel.suffix)] if rel.suffix and rel.name != rel.suffix else rel.name
    else:
        name = rel.name
    if level >= 2:
        digest = hashlib.sha1(str(path).encode("utf-8")).hexdigest()
        name += "~" + (digest[:8] if level == 2 else digest)
    return str(rel.parent / name) if str(rel.parent) != "." else name


# stem levels: 0 the name without its extension, 1 the whole name, 2 + 8 hex digits of the sha1 of the
# input's path, 3 + all 40 (only if two paths shared the 8 digits)
MAX_STEM_LEVEL = 3


def distinct_stems(entries: list[tuple[Path, PurePosixPath]]) -> list[str]:
    """The output stem of each ``(input file, output path with its file name)``: the name without its
    extension (``a/x.wav`` -> ``a/x``); where two stems would be the same (ignoring case, for
    case-insensitive file systems), the whole name (``x.wav``, ``x.ogg``); where those are the same
    too, the name + ``~`` + 8 hex digits of the sha1 of the input's path. Every file of a clash moves
    on a level and the stems are compared again until none clash (a whole name can meet another
    file's stem: ``a.wav`` next to ``a.mp3`` and ``a.wav.flac``), so the stems are distinct for
    distinct input paths. ``batch``, ``transcribe`` and ``diarize`` name their outputs by this rule."""
    levels = [0] * len(entries)
    while True:
        stems = [_stem(rel, lv, f) for (f, rel), lv in zip(entries, levels)]
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(stems):
            groups.setdefault(s.lower(), []).append(i)
        moved = False
        for g in groups.values():
            if len(g) > 1:
                for i in g:
                    if levels[i] < MAX_STEM_LEVEL:
                        levels[i] += 1
                        moved = True
        if not moved:  # no clash left, or only entries of one and the same path (one file)
            return stems


def file_stems(files: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{file: output stem}`` for files whose outputs all go into one folder (``transcribe``,
    ``diarize``): :func:`distinct_stems` of their names, so ``a/same.wav`` and ``b/same.ogg`` get
    ``same.wav`` and ``same.ogg`` instead of one overwriting the other. A file given twice (by the
    same path) gets one stem."""
    files = list(dict.fromkeys(os.fspath(f) for f in files))
    entries = [(Path(os.path.abspath(f)), PurePosixPath(Path(f).name)) for f in files]
    by_path: dict[Path, int] = {}
    unique: list[tuple[Path, PurePosixPath]] = []
    for f, rel in entries:
        if f not in by_path:
            by_path[f] = len(unique)
            unique.append((f, rel))
    stems = distinct_stems(unique)
    return {f: stems[by_path[path]] for f, (path, _) in zip(files, entries)}


# ------------------------------------------------------------------ recipe fingerprint

# compute types that only follow the device (like fp16): float16 on CUDA, float32 on CPU. int8 is not
# among them: a quantised model is a different computation (other text), so it is part of the fingerprint.
VOLATILE_COMPUTE_TYPES = frozenset({None, "auto", "default", "float32", "float16", "fp32", "fp16"})


def _strip_volatile(obj):
    if isinstance(obj, dict):
        return {
            k: _strip_volatile(v)
            for k, v in obj.items()
            if k not in VOLATILE_KEYS and not (k == "compute_type" and v in VOLATILE_COMPUTE_TYPES)
        }
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def fingerprint_parameters(parameters: dict | None) -> str | None:
    """Recipe fingerprint of a JSON ``parameters`` block (see the module docstring)."""
    if not isinstance(parameters, dict) or not isinstance(parameters.get("steps"), dict):
        return None
    body = _strip_volatile(parameters["steps"])
    if parameters.get("content"):  # the contents of the files the steps read (Recipe.parameters)
        body = {"steps": body, "content": parameters["content"]}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recipe_fingerprint(recipe: Recipe) -> str:
    params = json.loads(json.dumps(recipe.parameters(), ensure_ascii=False))
    return fingerprint_parameters(params)


def with_device(recipe: Recipe, device: str) -> Recipe:
    """Pass the engine's device to later steps that take one (diarisation embeddings), unless set."""
    dev = "cuda" if str(device).startswith("cuda") else "cpu"
    for step, options in recipe.steps.items():
        if step != "transcribe" and hasattr(options, "device") and options.device in (None, "auto"):
            recipe = recipe.replace(step, device=dev)
    return recipe


# ------------------------------------------------------------------ outputs and resume


def formats_of(recipe: Recipe) -> list[str]:
    return list(recipe.options("export").formats)


def expected_outputs(item: PlanItem, output_dir: Path, recipe: Recipe) -> dict[str, Path]:
    """Every file a finished item has: ``{format: path}`` plus ``{"<fmt>.sha256": sidecar}``."""
    from audiotools.export.writers import SIDECAR_FORMATS, output_paths, sidecar_path
    from audiotools.fileio import fit_stem

    rel = PurePosixPath(item.rel)
    paths = dict(output_paths(output_dir / rel.parent / fit_stem(rel.name), formats_of(recipe)))
    if recipe.enabled("provenance") and "json" in paths:
        for f in list(paths):
            if f in SIDECAR_FORMATS:
                paths[f + ".sha256"] = sidecar_path(paths[f])
    return paths


def check_done(item: PlanItem, outputs: dict[str, Path], fingerprint: str) -> tuple[bool, str, dict | None]:
    """(done, reason, JSON document) for one planned file."""
    from audiotools.fileio import sha256_file

    js = outputs.get("json")
    if js is None:
        return False, "no JSON output requested: cannot tell what is done", None
    if not js.is_file():
        return False, "no JSON yet", None
    try:
        doc = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return False, f"JSON unreadable ({type(e).__name__})", None
    if fingerprint_parameters(doc.get("parameters")) != fingerprint:
        return False, "recipe changed", doc
    missing = [p.name for p in outputs.values() if not p.is_file()]
    if missing:
        return False, f"missing {', '.join(missing)}", doc
    mixed = check_output_set(js, outputs)
    if mixed:
        return False, mixed, doc
    recorded = {(doc.get("audio") or {}).get("sha256")}
    prov = doc.get("provenance")
    if isinstance(prov, dict):
        recorded.add((prov.get("source") or {}).get("sha256"))
    recorded.discard(None)
    if len(recorded) != 1:
        return False, "no single source sha256 recorded", doc
    try:
        current = sha256_file(item.input)
    except OSError as e:
        return False, f"cannot hash input ({e.strerror or e})", doc
    if current not in recorded:
        return False, "input changed", doc
    return True, "done", doc


def check_output_set(json_path: Path, outputs: dict[str, Path]) -> str | None:
    """None when the files are one committed set: the manifest written with them lists each one
    with its sha256 (see ``export.writers.write_outputs``); else why not (a set mixed by a kill
    between two renames, an edited file, or no manifest: an interrupted or pre-manifest run)."""
    from audiotools.export.writers import manifest_path, read_manifest
    from audiotools.fileio import sha256_file

    stem_path = json_path.with_name(json_path.name[: -len(".json")])
    mp = manifest_path(stem_path)
    try:
        _, listed = read_manifest(mp)
    except FileNotFoundError:
        return "no output manifest"
    except (OSError, UnicodeDecodeError) as e:
        return f"output manifest unreadable ({type(e).__name__})"
    for p in outputs.values():
        want = listed.get(p.name)
        if want is None:
            return f"{p.name} is not in the output manifest"
        try:
            if sha256_file(p) != want:
                return f"mixed output set: {p.name} is not the file its manifest lists"
        except OSError as e:
            return f"cannot hash {p.name} ({e.strerror or e})"
    return None


def remove_stale_temp_files(paths: Iterable[Path]) -> int:
    """Delete temp files that an interrupted atomic write left beside ``paths`` (``.NAME.xxxx.tmp``)."""
    by_dir: dict[Path, set[str]] = {}
    for p in paths:
        by_dir.setdefault(p.parent, set()).add(p.name)
    removed = 0
    for d, names in by_dir.items():
        try:
            it = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in it:
            n = e.name
            if n.startswith(".") and n.endswith(".tmp") and e.is_file(follow_symlinks=False):
                base = n[1:-4].rsplit(".", 1)[0]
                if base in names:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(e.path)
                        removed += 1
    return removed


@contextlib.contextmanager
def output_lock(output_dir: Path):
    """One batch at a time per output directory (released by the OS even after ``kill -9``)."""
    from audiotools.fileio import check_output_dir, output_error

    check_output_dir(output_dir)  # a one-line error when it is a file, or cannot be written
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    try:
        fd = os.open(output_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise output_error(output_dir / LOCK_NAME, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{output_dir}: another 'audiotools batch' is writing here") from None
        yield
    finally:
        os.close(fd)
