"""``audiotools batch``: many files through one engine; resumable, never stopped by one bad file.

Discovery
    Inputs are files, directories (searched recursively for audio/video extensions,
    ``audio.AUDIO_EXTENSIONS``; hidden files and folders are skipped) and list files (a ``.txt`` or
    ``.lst`` input: one path per line, ``#`` comment lines, relative paths relative to the list file).
    Outputs mirror the input tree under the output directory: ``DIR/a/b.wav`` given as ``DIR`` ->
    ``OUT/a/b.<ext>``; a file given directly -> ``OUT/<stem>.<ext>``; a list entry keeps the relative
    path it is written with (``sub/x.wav`` -> ``OUT/sub/x.<ext>``; absolute entries -> ``OUT/<stem>``).
    Stem collisions (``a.wav`` and ``a.mp3`` in one folder; compared case-insensitively) are resolved
    deterministically: every colliding file keeps its extension in the stem (``a.wav.json``,
    ``a.mp3.json``); files that still collide (the same relative name under two input roots) get
    ``~`` and 8 hex digits of the sha1 of their absolute path appended.

Resume
    A file is done when its JSON and every other requested format (and the ``.sha256`` sidecars
    when provenance is on) exist, the JSON's source sha256 (``audio.sha256``, and
    ``provenance.source.sha256`` when present) equals the input's current sha256, and the JSON's
    recipe fingerprint equals this run's. The fingerprint is the sha256 of the canonical JSON of the
    resolved step parameters (the ``parameters.steps`` block the JSON records) without the
    volatile keys in ``VOLATILE_KEYS`` (device, batch size, threads, workers, fp16, allow_download:
    how the work is scheduled, not what is computed; likewise ``compute_type`` float32/float16/null,
    the device's precision, but not ``int8``, which changes the text) and without the recipe's name (two recipes
    with equal parameters are the same work). Done files are skipped and never rewritten.
    Writers are atomic and write the JSON last, so ``kill -9`` loses at most the files in flight;
    their leftover temp files are removed by the next run.

Report
    ``OUT/batch-report.json`` (atomic; rewritten every few seconds while running and at the end):
    per file ``input``, ``outputs`` (relative to OUT), ``status`` ok|skipped|failed (``pending``
    while running), ``error`` (one line), ``audio_seconds``, ``processing_seconds``; totals.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from .errors import UsageError

log = logging.getLogger(__name__)

REPORT_NAME = "batch-report.json"
REPORT_SCHEMA = "audiotools.batch-report/1"
LOCK_NAME = ".audiotools-batch.lock"
LIST_SUFFIXES = {".txt", ".lst"}
VOLATILE_KEYS = frozenset({"device", "batch_size", "threads", "workers", "fp16", "allow_download"})
REPORT_INTERVAL = 5.0  # seconds between report rewrites while running


# ------------------------------------------------------------------ plan

@dataclass
class PlanItem:
    input: str                 # absolute path of the input file
    rel: str                   # output stem relative to the output directory (posix, no extension)
    error: str | None = None   # set when discovery already knows the file is unusable


@dataclass
class FileRecord:
    input: str
    outputs: list[str] = field(default_factory=list)
    status: str = "pending"          # ok | skipped | failed | pending
    error: str | None = None
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0
    decode_seconds: float | None = None
    language: str | None = None

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
    def from_dict(cls, d: dict) -> "FileRecord":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: Path, skip: set[str]) -> list[Path]:
    """Audio/video files under ``root``, sorted, hidden entries and ``skip`` folders left out."""
    from .audio import AUDIO_EXTENSIONS
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d)
                             and os.path.realpath(os.path.join(dirpath, d)) not in skip)
        for f in sorted(filenames):
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
    entries: list[tuple[Path, PurePosixPath]] = []   # (file, output path with the file name, relative)

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

    def stem(rel: PurePosixPath, level: int, path: Path) -> str:
        if level == 0:
            name = rel.name[: -len(rel.suffix)] if rel.suffix and rel.name != rel.suffix else rel.name
        else:
            name = rel.name
        if level >= 2:
            name += "~" + hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:8]
        return str(rel.parent / name) if str(rel.parent) != "." else name

    levels = [0] * len(unique)
    for _ in range(3):
        stems = [stem(rel, lv, f) for (f, rel), lv in zip(unique, levels)]
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(stems):
            groups.setdefault(s.lower(), []).append(i)
        clash = [i for g in groups.values() if len(g) > 1 for i in g]
        if not clash:
            break
        for i in clash:
            levels[i] = min(2, levels[i] + 1)
    items = []
    for (f, rel), lv in zip(unique, levels):
        items.append(PlanItem(input=str(f), rel=stem(rel, lv, f)))
    return items


# ------------------------------------------------------------------ recipe fingerprint

def prepare_recipe(recipe: dict) -> dict:
    """A copy of ``recipe`` with every installed step that it leaves out filled in with its defaults
    (what ``pipeline.finish`` would add while running), so the fingerprint sees what is run."""
    from .pipeline import STEP_ORDER, _defaults_for, step_module
    r = copy.deepcopy(recipe)
    for step in STEP_ORDER[1:-1]:
        if step not in r["steps"] and step_module(step) is not None:
            r["steps"][step] = _defaults_for(step)
    return r


# compute types that only follow the device (like fp16): float16 on CUDA, float32 on CPU. int8 is not
# among them: a quantised model is a different computation (other text), so it is part of the fingerprint.
VOLATILE_COMPUTE_TYPES = frozenset({None, "auto", "default", "float32", "float16", "fp32", "fp16"})


def _strip_volatile(obj):
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in VOLATILE_KEYS
                and not (k == "compute_type" and v in VOLATILE_COMPUTE_TYPES)}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def fingerprint_parameters(parameters: dict | None) -> str | None:
    """Recipe fingerprint of a JSON ``parameters`` block (see the module docstring)."""
    if not isinstance(parameters, dict) or not isinstance(parameters.get("steps"), dict):
        return None
    text = json.dumps(_strip_volatile(parameters["steps"]), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recipe_fingerprint(recipe: dict) -> str:
    from .pipeline import resolved_parameters
    params = json.loads(json.dumps(resolved_parameters(prepare_recipe(recipe)), ensure_ascii=False))
    return fingerprint_parameters(params)


def with_device(recipe: dict, device: str) -> dict:
    """Pass the engine's device to later steps that take one (diarisation embeddings), unless set."""
    r = copy.deepcopy(recipe)
    dev = "cuda" if str(device).startswith("cuda") else "cpu"
    for step, params in r["steps"].items():
        if step != "transcribe" and isinstance(params, dict) and "device" in params \
                and params["device"] in (None, "auto"):
            params["device"] = dev
    return r


# ------------------------------------------------------------------ outputs and resume

def formats_of(recipe: dict) -> list[str]:
    from .writers import parse_formats
    return parse_formats((recipe["steps"].get("export") or {}).get("formats"))


def expected_outputs(item: PlanItem, output_dir: Path, recipe: dict) -> dict[str, Path]:
    """Every file a finished item has: ``{format: path}`` plus ``{"<fmt>.sha256": sidecar}``."""
    from .pipeline import enabled
    from .writers import SIDECAR_FORMATS, output_paths, sidecar_path
    paths = dict(output_paths(output_dir / item.rel, formats_of(recipe)))
    if enabled(recipe, "provenance") and "json" in paths:
        for f in list(paths):
            if f in SIDECAR_FORMATS:
                paths[f + ".sha256"] = sidecar_path(paths[f])
    return paths


def check_done(item: PlanItem, outputs: dict[str, Path], fingerprint: str) -> tuple[bool, str, dict | None]:
    """(done, reason, JSON document) for one planned file."""
    from .fileio import sha256_file
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
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(output_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{output_dir}: another 'audiotools batch' is writing here") from None
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------ options, progress

@dataclass
class BatchOptions:
    output_dir: Path
    workers: int | None = None            # decode worker processes (None: 1 on CPU, up to 8 on CUDA)
    prefetch: int | None = None           # files decoded ahead (None: 2 x workers)
    max_buffered_bytes: int = 2 << 30     # decoded samples waiting for the engine
    finish_threads: int | None = None     # threads for diarise/mask/provenance/export (None: 1 CPU, 4 CUDA)
    resume: bool = True                   # skip files whose outputs are done (False: redo everything)
    report: Path | None = None            # default OUT/batch-report.json

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_dir"] = str(self.output_dir)
        d["report"] = str(self.report) if self.report else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BatchOptions":
        d = dict(d)
        d["output_dir"] = Path(d["output_dir"])
        d["report"] = Path(d["report"]) if d.get("report") else None
        return cls(**d)


class BatchProgress:
    """Progress hooks (the CLI shows them with rich); every method may be called from any thread."""

    def start(self, total: int, done_already: int, failed_already: int) -> None: ...

    def file_done(self, record: FileRecord) -> None: ...

    def stop(self) -> None: ...


# ------------------------------------------------------------------ processing

class _Finisher:
    """Runs the post-transcription steps and export in background threads (bounded queue)."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="finish")
        self.slots = threading.BoundedSemaphore(2 * max(1, threads))

    def submit(self, fn, *args) -> None:
        self.slots.acquire()  # at most 2 x threads files wait here (memory bound)
        fut = self.pool.submit(fn, *args)
        fut.add_done_callback(lambda _: self.slots.release())

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def process_items(items: list[PlanItem], recipe: dict, options: BatchOptions,
                  on_record: Callable[[int, FileRecord], None], transcriber=None) -> dict:
    """Transcribe and finish ``items`` (none of them done yet) with one engine; ``on_record(i, record)``
    is called once per item, from any thread. Never raises for a bad file. Returns run info."""
    from .pipeline import Job, finish, needs_channels, transcribe_options
    from .prefetch import Prefetcher, PrepareOptions, default_workers, error_line
    from .models import resolve_device
    from .transcriber import EngineItem, Transcriber

    output_dir = Path(options.output_dir)
    recipe = prepare_recipe(recipe)
    if all(it.error for it in items):  # nothing to transcribe: no model to load
        for i, it in enumerate(items):
            on_record(i, FileRecord(input=it.input, status="failed", error=it.error))
        return {}
    # the decode workers start first, so the first files are decoded while the model loads
    opts = transcriber.options if transcriber is not None else transcribe_options(recipe)
    device = str(transcriber.device) if transcriber is not None else resolve_device(opts.device)
    recipe = with_device(recipe, device)
    workers = options.workers if options.workers is not None else default_workers(device)
    finish_threads = options.finish_threads or (4 if device.startswith("cuda") else 1)
    prep = PrepareOptions(vad=opts.vad, vad_options=asdict(opts.vad_options), keep_channels=needs_channels(recipe))
    good = [i for i, it in enumerate(items) if not it.error]   # prefetch index -> item index
    prefetcher = Prefetcher([items[i].input for i in good], prep, workers=workers, depth=options.prefetch,
                            max_buffered_bytes=options.max_buffered_bytes).start()
    if transcriber is None:
        try:
            transcriber = Transcriber(opts)
        except BaseException:
            prefetcher.close()
            raise
    finisher = _Finisher(finish_threads)
    recorded: set[int] = set()
    report_record = on_record

    def on_record(i: int, rec: FileRecord) -> None:  # noqa: F811  (remember who got a record)
        recorded.add(i)
        report_record(i, rec)

    out_rel = {i: sorted(str(p.relative_to(output_dir)) for p in expected_outputs(it, output_dir, recipe).values())
               for i, it in enumerate(items)}

    def fail(i: int, error: str, **kw) -> None:
        on_record(i, FileRecord(input=items[i].input, status="failed", error=error, **kw))

    def do_finish(i: int, prepared, segments, language, stats) -> None:
        t0 = time.perf_counter()
        audio = prepared.audio
        try:
            transcript = transcriber.make_transcript(audio, segments, language, stats)
            rel = PurePosixPath(items[i].rel)
            job = Job(path=Path(prepared.path), recipe=recipe, audio=audio, transcript=transcript)
            finish(job, output_dir / rel.parent, stem=rel.name)
        except Exception as e:
            log.debug("finishing %s failed", prepared.path, exc_info=True)
            fail(i, error_line(e), audio_seconds=audio.duration, decode_seconds=prepared.decode_seconds,
                 processing_seconds=stats.get("seconds", 0.0) + time.perf_counter() - t0)
            return
        on_record(i, FileRecord(input=items[i].input, outputs=out_rel[i], status="ok", audio_seconds=audio.duration,
                                processing_seconds=stats.get("seconds", 0.0) + time.perf_counter() - t0,
                                decode_seconds=prepared.decode_seconds, language=language))

    for i, it in enumerate(items):
        if it.error:
            fail(i, it.error)

    def renumbered():
        for p in prefetcher:
            p.index = good[p.index]
            yield p

    source = renumbered()
    fed: dict[int, object] = {}

    def engine_items():
        for p in source:
            if p.error is not None:
                fail(p.index, p.error, decode_seconds=p.decode_seconds)
                continue
            fed[p.index] = p
            yield EngineItem(key=p.index, samples=p.audio.samples, windows=p.windows, language=opts.language)

    def handle(key, segments, language, stats) -> None:
        p = fed.pop(key)
        finisher.submit(do_finish, key, p, segments, language, stats)

    t_start = time.perf_counter()
    last_error = None
    try:
        while True:
            try:
                for key, segments, language, stats in transcriber.transcribe_many(engine_items()):
                    handle(key, segments, language, stats)
                break
            except Exception as e:  # the engine failed on a batch: find the culprit file by file
                last_error = error_line(e)
                log.warning("engine error on a batch (%s); retrying its files one by one", last_error)
                for key in sorted(fed):
                    p = fed[key]
                    try:
                        one = EngineItem(key=key, samples=p.audio.samples, windows=p.windows, language=opts.language)
                        for k, segments, language, stats in transcriber.transcribe_many([one]):
                            handle(k, segments, language, stats)
                    except Exception as e2:
                        fed.pop(key, None)
                        fail(key, error_line(e2), audio_seconds=p.audio.duration, decode_seconds=p.decode_seconds)
                fed.clear()
    finally:
        prefetcher.close()
        finisher.close()
    for i in range(len(items)):  # only if decoding itself broke down: never leave a file unaccounted for
        if i not in recorded:
            fail(i, f"not processed: the engine stopped ({last_error or 'unknown error'})")
    return {"device": device, "workers": workers, "finish_threads": finish_threads,
            "batch_size": opts.batch_size, "engine_seconds": round(time.perf_counter() - t_start, 3),
            "model": {"name": transcriber.model_info.name, "sha256": transcriber.model_info.sha256}}


# ------------------------------------------------------------------ the batch

@dataclass
class BatchResult:
    records: list[FileRecord]
    report_path: Path
    wall_seconds: float
    info: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def processed_audio_seconds(self) -> float:
        return sum(r.audio_seconds for r in self.records if r.status == "ok")

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


class _Report:
    def __init__(self, path: Path, output_dir: Path, recipe: dict, fingerprint: str, records: list[FileRecord],
                 options: BatchOptions):
        self.path, self.output_dir, self.records = path, output_dir, records
        self.recipe, self.fingerprint, self.options = recipe, fingerprint, options
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.info: dict = {}
        self.lock = threading.Lock()
        self.last_write = 0.0

    def data(self, complete: bool) -> dict:
        from . import __version__
        recs = [r.to_dict() for r in self.records]
        counts = {s: sum(1 for r in self.records if r.status == s) for s in ("ok", "skipped", "failed", "pending")}
        audio = sum(r.audio_seconds for r in self.records if r.status == "ok")
        wall = time.perf_counter() - self.t0
        return {
            "schema": REPORT_SCHEMA, "tool": {"name": "audiotools", "version": __version__},
            "complete": complete,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "output_dir": str(self.output_dir),
            "recipe": {"name": self.recipe.get("name"), "fingerprint": self.fingerprint,
                       "formats": formats_of(self.recipe)},
            "run": {**self.info, "workers": self.info.get("workers", self.options.workers)},
            "totals": {"files": len(self.records), **counts,
                       "audio_seconds": round(audio, 3),
                       "audio_seconds_skipped": round(sum(r.audio_seconds for r in self.records
                                                          if r.status == "skipped"), 3),
                       "wall_seconds": round(wall, 3),
                       "x_real_time": round(audio / wall, 2) if wall > 0 else None},
            "files": recs,
        }

    def write(self, complete: bool = False, force: bool = True) -> None:
        from .fileio import atomic_write_text
        with self.lock:
            now = time.perf_counter()
            if not force and now - self.last_write < REPORT_INTERVAL:
                return
            self.last_write = now
            atomic_write_text(self.path, json.dumps(self.data(complete), ensure_ascii=False, indent=2) + "\n")


def run_batch(inputs: Iterable[str | os.PathLike], recipe: dict | None = None, options: BatchOptions | None = None,
              *, output_dir: str | os.PathLike | None = None, progress: BatchProgress | None = None,
              ray_address: str | None = None, use_ray: bool = False, ray_shards: int | None = None,
              transcriber=None) -> BatchResult:
    """Plan, resume-check, process and report a batch. ``recipe`` defaults to the 'default' recipe."""
    from .pipeline import load_recipe
    if options is None:
        if output_dir is None:
            raise UsageError("batch needs an output directory")
        options = BatchOptions(output_dir=Path(output_dir))
    options.output_dir = Path(os.path.abspath(options.output_dir))
    out = options.output_dir
    recipe = prepare_recipe(recipe or load_recipe("default"))
    formats = formats_of(recipe)
    if "json" not in formats:
        raise UsageError("batch needs the json output format (it marks a file as done and carries provenance); "
                         "add json to --output-format")
    progress = progress or BatchProgress()
    t0 = time.perf_counter()
    with output_lock(out):
        fingerprint = recipe_fingerprint(recipe)
        plan = discover(inputs, out)
        if not plan:
            raise UsageError("no audio or video files found in the inputs")
        records = [FileRecord(input=it.input) for it in plan]
        outputs = [expected_outputs(it, out, recipe) for it in plan]
        report_path = Path(options.report or out / REPORT_NAME)
        remove_stale_temp_files([p for o in outputs for p in o.values()] + [report_path])
        # resume: which files are done already (hashing runs in threads: I/O bound)
        todo: list[int] = []

        def check(i: int):
            it = plan[i]
            if not os.path.isfile(it.input):
                return i, False, "no such file" if not os.path.exists(it.input) else "not a regular file", None
            if not options.resume:
                return i, False, "resume off", None
            return (i, *check_done(it, outputs[i], fingerprint))

        with ThreadPoolExecutor(max_workers=4) as pool:
            checks = list(pool.map(check, range(len(plan))))
        for i, done, reason, doc in checks:
            if done:
                rec = records[i]
                rec.status = "skipped"
                rec.outputs = sorted(str(p.relative_to(out)) for p in outputs[i].values())
                rec.audio_seconds = float((doc.get("audio") or {}).get("duration") or 0.0)
                rec.language = doc.get("language")
            else:
                if reason in ("no such file", "not a regular file"):
                    plan[i].error = f"{plan[i].input}: {reason}"
                log.debug("%s: %s", plan[i].input, reason)
                todo.append(i)
        report = _Report(report_path, out, recipe, fingerprint, records, options)
        report.write()
        progress.start(len(plan), sum(1 for r in records if r.status == "skipped"), 0)
        lock = threading.Lock()

        def on_record(j: int, rec: FileRecord) -> None:
            i = todo[j]
            with lock:
                records[i] = rec
            progress.file_done(rec)
            report.write(force=False)

        info: dict = {}
        try:
            if todo:
                sub = [plan[i] for i in todo]
                if use_ray:
                    from .distributed import run_ray
                    info = run_ray(sub, recipe, options, on_record, address=ray_address, shards=ray_shards)
                else:
                    info = process_items(sub, recipe, options, on_record, transcriber=transcriber)
            report.info = info
        finally:
            progress.stop()
            report.write(complete=all(r.status != "pending" for r in records))
    return BatchResult(records=records, report_path=report.path, wall_seconds=time.perf_counter() - t0, info=info)
