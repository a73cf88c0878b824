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
    ``a.mp3.json``); files that still collide (the same relative name under two input roots, a whole
    name meeting another file's stem) get ``~`` and 8 hex digits of the sha1 of their absolute path
    appended; the stems are compared again after each step until none collide.

Resume
    A file is done when its JSON and every other requested format (and the ``.sha256`` sidecars
    when provenance is on) exist, the JSON's source sha256 (``audio.sha256``, and
    ``provenance.source.sha256`` when present) equals the input's current sha256, and the JSON's
    recipe fingerprint equals this run's. The fingerprint is the sha256 of the canonical JSON of the
    resolved step parameters (the ``parameters.steps`` block the JSON records) without the
    volatile keys in ``VOLATILE_KEYS`` (device, batch size, threads, workers, fp16, allow_download:
    how the work is scheduled, not what is computed; likewise ``compute_type`` float32/float16/null,
    the device's precision, but not ``int8``, which changes the text) and without the recipe's name (two recipes
    with equal parameters are the same work). Done files are skipped and never rewritten. A file's
    outputs are committed as a set (all temp files first, then the manifest ``.STEM.outputs.sha256``,
    the exports, the JSON last: see ``export.writers.write_outputs``); a set whose files disagree with
    its manifest (a kill between two renames) is redone. ``kill -9`` loses at most the files in
    flight; their leftover temp files are removed by the next run.

Bad inputs
    Every input is checked before any model loads (``audio.decode.check_input_file`` and
    ``probe_audio``): folders, link loops, FIFOs, devices and bad headers are reported as failed,
    each with its own reason.

Report
    ``OUT/batch-report.json`` (atomic; rewritten every few seconds while running and at the end):
    per file ``input``, ``outputs`` (relative to OUT), ``status`` ok|skipped|failed (``pending``
    while running), ``error`` (one line), ``warnings`` (the transcript's: a truncated input decoded
    as far as it goes ...), ``audio_seconds``, ``processing_seconds``; totals (``with_warnings``:
    the files that have warnings).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from audiotools.audio.decode import check_input_file, probe_audio
from audiotools.batch.engine import BatchOptions, BatchProgress, process_items
from audiotools.batch.plan import (
    FileRecord,
    check_done,
    discover,
    expected_outputs,
    formats_of,
    output_lock,
    recipe_fingerprint,
    remove_stale_temp_files,
)
from audiotools.errors import InputError, UsageError
from audiotools.export.writers import manifest_path
from audiotools.pipeline.recipe import Recipe
from audiotools.pipeline.run import preflight

log = logging.getLogger(__name__)

REPORT_NAME = "batch-report.json"
REPORT_SCHEMA = "audiotools.batch-report/1"
REPORT_INTERVAL = 5.0  # seconds between report rewrites while running


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
    def __init__(
        self,
        path: Path,
        output_dir: Path,
        recipe: Recipe,
        fingerprint: str,
        records: list[FileRecord],
        options: BatchOptions,
    ):
        self.path, self.output_dir, self.records = path, output_dir, records
        self.recipe, self.fingerprint, self.options = recipe, fingerprint, options
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.info: dict = {}
        self.lock = threading.Lock()
        self.last_write = 0.0

    def data(self, complete: bool) -> dict:
        from audiotools.version import __version__

        recs = [r.to_dict() for r in self.records]
        counts = {s: sum(1 for r in self.records if r.status == s) for s in ("ok", "skipped", "failed", "pending")}
        audio = sum(r.audio_seconds for r in self.records if r.status == "ok")
        warned = sum(1 for r in self.records if r.warnings)
        wall = time.perf_counter() - self.t0
        return {
            "schema": REPORT_SCHEMA,
            "tool": {"name": "audiotools", "version": __version__},
            "complete": complete,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "output_dir": str(self.output_dir),
            "recipe": {"name": self.recipe.name, "fingerprint": self.fingerprint, "formats": formats_of(self.recipe)},
            "run": {**self.info, "workers": self.info.get("workers", self.options.workers)},
            "totals": {
                "files": len(self.records),
                **counts,
                "with_warnings": warned,
                "audio_seconds": round(audio, 3),
                "audio_seconds_skipped": round(sum(r.audio_seconds for r in self.records if r.status == "skipped"), 3),
                "wall_seconds": round(wall, 3),
                "x_real_time": round(audio / wall, 2) if wall > 0 else None,
            },
            "files": recs,
        }

    def write(self, complete: bool = False, force: bool = True) -> None:
        from audiotools.fileio import atomic_write_text

        with self.lock:
            now = time.perf_counter()
            if not force and now - self.last_write < REPORT_INTERVAL:
                return
            self.last_write = now
            atomic_write_text(self.path, json.dumps(self.data(complete), ensure_ascii=False, indent=2) + "\n")


def run_batch(
    inputs: Iterable[str | os.PathLike],
    recipe: Recipe | None = None,
    options: BatchOptions | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    progress: BatchProgress | None = None,
    ray_address: str | None = None,
    use_ray: bool = False,
    ray_shards: int | None = None,
    transcriber=None,
) -> BatchResult:
    """Plan, resume-check, process and report a batch. ``recipe`` defaults to the 'default' recipe."""
    from audiotools.pipeline.recipe import load_recipe

    if options is None:
        if output_dir is None:
            raise UsageError("batch needs an output directory")
        options = BatchOptions(output_dir=Path(output_dir))
    options.output_dir = Path(os.path.abspath(options.output_dir))
    out = options.output_dir
    recipe = recipe or load_recipe("default")
    formats = formats_of(recipe)
    if "json" not in formats:
        raise UsageError(
            "batch needs the json output format (it marks a file as done and carries provenance); "
            "add json to --output-format"
        )
    progress = progress or BatchProgress()
    t0 = time.perf_counter()
    with output_lock(out):
        preflight(recipe)  # a corrupt voiceprint store fails now, not after the transcription
        fingerprint = recipe_fingerprint(recipe)
        plan = discover(inputs, out)
        if not plan:
            raise UsageError("no audio or video files found in the inputs")
        records = [FileRecord(input=it.input) for it in plan]
        outputs = [expected_outputs(it, out, recipe) for it in plan]
        report_path = Path(options.report or out / REPORT_NAME)
        manifests = [manifest_path(o["json"].with_name(o["json"].name[: -len(".json")])) for o in outputs]
        remove_stale_temp_files([p for o in outputs for p in o.values()] + manifests + [report_path])
        # resume: which files are done already (hashing runs in threads: I/O bound)
        todo: list[int] = []

        def check(i: int):
            it = plan[i]
            try:
                check_input_file(it.input)  # folders, loops, FIFOs, devices: each with its own reason
            except InputError as e:
                return i, False, e, None
            why = "--force"
            if options.resume:
                done, why, doc = check_done(it, outputs[i], fingerprint)
                if done:
                    return i, True, why, doc
            try:
                probe_audio(it.input)  # the header, before any model loads
            except InputError as e:
                return i, False, e, None
            return i, False, f"to do ({why})", None

        with ThreadPoolExecutor(max_workers=4) as pool:
            checks = list(pool.map(check, range(len(plan))))
        for i, done, reason, doc in checks:
            if done:
                rec = records[i]
                rec.status = "skipped"
                rec.outputs = sorted(str(p.relative_to(out)) for p in outputs[i].values())
                rec.audio_seconds = float((doc.get("audio") or {}).get("duration") or 0.0)
                rec.language = doc.get("language")
                ws = doc.get("warnings")
                rec.warnings = [str(w) for w in ws] if isinstance(ws, list) else []
            else:
                if isinstance(reason, InputError):
                    plan[i].error = str(reason)
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
                    from audiotools.batch.distributed import run_ray

                    info = run_ray(sub, recipe, options, on_record, address=ray_address, shards=ray_shards)
                else:
                    info = process_items(sub, recipe, options, on_record, transcriber=transcriber)
            report.info = info
        finally:
            progress.stop()
            report.write(complete=all(r.status != "pending" for r in records))
    return BatchResult(records=records, report_path=report.path, wall_seconds=time.perf_counter() - t0, info=info)
