"""The batch engine loop: decode workers feed one transcriber; finishing steps run in threads."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from audiotools.batch.plan import FileRecord, PlanItem, expected_outputs, with_device
from audiotools.pipeline.recipe import Recipe

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ options, progress


@dataclass
class BatchOptions:
    output_dir: Path
    workers: int | None = None  # decode worker processes (None: 1 on CPU, up to 8 on CUDA)
    prefetch: int | None = None  # files decoded ahead (None: 2 x workers)
    max_buffered_bytes: int = 2 << 30  # decoded samples waiting for the engine
    finish_threads: int | None = None  # threads for diarise/mask/provenance/export (None: 1 CPU, 4 CUDA)
    resume: bool = True  # skip files whose outputs are done (False: redo everything)
    report: Path | None = None  # default OUT/batch-report.json

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_dir"] = str(self.output_dir)
        d["report"] = str(self.report) if self.report else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BatchOptions:
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


def process_items(
    items: list[PlanItem],
    recipe: Recipe,
    options: BatchOptions,
    on_record: Callable[[int, FileRecord], None],
    transcriber=None,
) -> dict:
    """Transcribe and finish ``items`` (none of them done yet) with one engine; ``on_record(i, record)``
    is called once per item, from any thread. Never raises for a bad file. Returns run info."""
    from audiotools.asr.transcribe import EngineItem, Transcriber
    from audiotools.batch.prefetch import Prefetcher, PrepareOptions, default_workers, error_line
    from audiotools.device import resolve_device
    from audiotools.pipeline.run import Job, finish

    output_dir = Path(options.output_dir)
    if all(it.error for it in items):  # nothing to transcribe: no model to load
        for i, it in enumerate(items):
            on_record(i, FileRecord(input=it.input, status="failed", error=it.error))
        return {}
    # the decode workers start first, so the first files are decoded while the model loads
    opts = transcriber.options if transcriber is not None else recipe.options("transcribe")
    device = str(transcriber.device) if transcriber is not None else resolve_device(opts.device)
    recipe = with_device(recipe, device)
    workers = options.workers if options.workers is not None else default_workers(device)
    finish_threads = options.finish_threads or (4 if device.startswith("cuda") else 1)
    prep = PrepareOptions(vad=opts.vad, vad_options=opts.vad_options, keep_channels=recipe.needs_channels)
    good = [i for i, it in enumerate(items) if not it.error]  # prefetch index -> item index
    prefetcher = Prefetcher(
        [items[i].input for i in good],
        prep,
        workers=workers,
        depth=options.prefetch,
        max_buffered_bytes=options.max_buffered_bytes,
    ).start()
    if transcriber is None:
        try:
            transcriber = Transcriber(opts)
        except BaseException:
            prefetcher.close()
            raise
    finisher = _Finisher(finish_threads)
    recorded: set[int] = set()
    report_record = on_record

    def on_record(i: int, rec: FileRecord) -> None:
        recorded.add(i)
        report_record(i, rec)

    out_rel = {
        i: sorted(str(p.relative_to(output_dir)) for p in expected_outputs(it, output_dir, recipe).values())
        for i, it in enumerate(items)
    }

    def fail(i: int, error: str, **kw) -> None:
        on_record(i, FileRecord(input=items[i].input, status="failed", error=error, **kw))

    def do_finish(i: int, prepared, segments, language, stats) -> None:
        t0 = time.perf_counter()
        audio = prepared.audio
        warnings = list(audio.warnings)  # decoding's (a truncated file ...); the transcript adds its steps'
        try:
            transcript = transcriber.make_transcript(audio, segments, language, stats)
            rel = PurePosixPath(items[i].rel)
            job = Job(path=Path(prepared.path), recipe=recipe, audio=audio, transcript=transcript, name=items[i].rel)
            finish(job, output_dir / rel.parent, stem=rel.name)
            warnings = [str(w) for w in transcript.extra.get("warnings") or []]
        except Exception as e:
            log.debug("finishing %s failed", prepared.path, exc_info=True)
            fail(
                i,
                error_line(e),
                audio_seconds=audio.duration,
                decode_seconds=prepared.decode_seconds,
                processing_seconds=stats.get("seconds", 0.0) + time.perf_counter() - t0,
                warnings=warnings,
            )
            return
        on_record(
            i,
            FileRecord(
                input=items[i].input,
                outputs=out_rel[i],
                status="ok",
                audio_seconds=audio.duration,
                processing_seconds=stats.get("seconds", 0.0) + time.perf_counter() - t0,
                decode_seconds=prepared.decode_seconds,
                language=language,
                warnings=warnings,
            ),
        )

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
                        fail(
                            key,
                            error_line(e2),
                            audio_seconds=p.audio.duration,
                            decode_seconds=p.decode_seconds,
                            warnings=list(p.audio.warnings),
                        )
                fed.clear()
    finally:
        prefetcher.close()
        finisher.close()
    for i in range(len(items)):  # only if decoding itself broke down: never leave a file unaccounted for
        if i not in recorded:
            fail(i, f"not processed: the engine stopped ({last_error or 'unknown error'})")
    return {
        "device": device,
        "workers": workers,
        "finish_threads": finish_threads,
        "batch_size": opts.batch_size,
        "engine_seconds": round(time.perf_counter() - t_start, 3),
        "model": {"name": transcriber.model_info.name, "sha256": transcriber.model_info.sha256},
    }
