"""``audiotools batch INPUT... --output-dir D``: many files, one engine, resumable, with a report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.markup import escape

from audiotools.cli.common import console, quiet
from audiotools.errors import UsageError

EPILOG = """\
inputs: audio/video files, directories (searched recursively) and list files (.txt/.lst: one
path per line, '#' comments, relative paths relative to the list file).

examples:
  audiotools batch recordings/ --output-dir out/
  audiotools batch calls.txt --output-dir out/ --model tiny.en --language en -f json,srt
  audiotools batch /data/in --output-dir /data/out --pipeline gpu-batch --device cuda --batch-size 32
  audiotools batch /data/in --output-dir /data/out --ray              # shards on a Ray cluster

A re-run skips files whose outputs are complete and whose source hash and recipe are unchanged;
D/batch-report.json lists every file (ok / skipped / failed with its error). Exit code 1 when
any file failed. See docs/batch.md.
"""


def register(sub) -> None:
    from audiotools.cli.options import add_step_options, add_transcribe_options

    p = sub.add_parser(
        "batch",
        help="transcribe many files (directories, lists), resumable, with a report",
        description="Transcribe many files with one engine: windows of many files share "
        "encoder/decoder batches, decoding runs in worker processes ahead of the "
        "model, outputs mirror the input tree, and a re-run resumes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, directories or .txt/.lst list files")
    add_transcribe_options(p)
    g = p.add_argument_group("batch")
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decode worker processes (default: 1 on CPU; with CUDA every core but two, at most 32; 0: decode inline)",
    )
    g.add_argument(
        "--prefetch",
        type=int,
        default=None,
        metavar="N",
        help="files decoded ahead of the engine (default: 2 x workers)",
    )
    g.add_argument(
        "--finish-threads",
        type=int,
        default=None,
        metavar="N",
        help="threads for diarise/mask/provenance/export (default: 1 on CPU, 4 with CUDA)",
    )
    g.add_argument("--force", action="store_true", help="redo every file, even those already done")
    g.add_argument("--report", default=None, metavar="FILE", help="report path (default: OUTPUT_DIR/batch-report.json)")
    g.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run shards on Ray (pip install 'audiotools[ray]'); ADDRESS of a cluster, "
        "or none to start/join a local one (write --ray=ADDRESS, or put --ray after the "
        "inputs, so an input is not taken for the address)",
    )
    g.add_argument(
        "--ray-shards",
        type=int,
        default=None,
        metavar="N",
        help="number of shards (default: 2 per GPU, or per CPU slot)",
    )
    add_step_options(p)
    from audiotools.cli.report_cmd import add_report_case_options

    add_report_case_options(
        p,
        "also write the evidence report X.report.html beside each X.json, and OUTPUT_DIR/index.html "
        "listing every file (status, duration, speakers, failures) with links to the reports",
        flag="--reports",
    )
    p.set_defaults(func=run)


class RichProgress:
    """files done/total, audio hours done, x real time, ETA, failures."""

    def __init__(self):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]batch[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TextColumn("{task.fields[audio]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[failed]}"),
            console=console,
            transient=False,
        )
        self.task = None
        self.audio = 0.0
        self.failed = 0
        self.t0 = time.perf_counter()

    def _fields(self) -> dict:
        wall = time.perf_counter() - self.t0
        speed = f"{self.audio / wall:,.1f}x real time" if wall > 0 and self.audio else ""
        failed = f"[red]{self.failed} failed[/]" if self.failed else ""
        return {"audio": f"{self.audio / 3600:.2f} h audio", "speed": speed, "failed": failed}

    def start(self, total: int, done_already: int, failed_already: int) -> None:
        self.failed = failed_already
        self.t0 = time.perf_counter()
        self.progress.start()
        self.task = self.progress.add_task("batch", total=total, completed=done_already, **self._fields())

    def file_done(self, record) -> None:
        if record.status == "ok":
            self.audio += record.audio_seconds
        elif record.status == "failed":
            self.failed += 1
        self.progress.update(self.task, advance=1, **self._fields())

    def stop(self) -> None:
        self.progress.stop()


def run(args) -> int:
    from audiotools.batch.engine import BatchOptions, BatchProgress
    from audiotools.batch.run import run_batch
    from audiotools.cli.options import recipe_from_args
    from audiotools.cli.transcribe_cmd import check_output_paths
    from audiotools.fileio import check_output_file

    if not args.output_dir:
        raise UsageError("batch needs --output-dir DIR")
    for name in ("workers", "prefetch", "finish_threads", "ray_shards"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "workers" else 1):
            raise UsageError(f"--{name.replace('_', '-')} must be at least {0 if name == 'workers' else 1}")
    recipe = recipe_from_args(args)
    # a one-line error now, not a traceback (or a failure per file) once the models are loaded
    check_output_paths(Path(args.output_dir), recipe, None)
    if args.report:
        check_output_file(args.report)
    options = BatchOptions(
        output_dir=Path(args.output_dir),
        workers=args.workers,
        prefetch=args.prefetch,
        finish_threads=args.finish_threads,
        resume=not args.force,
        report=Path(args.report) if args.report else None,
    )
    show = not quiet() and console.is_terminal
    progress = RichProgress() if show else BatchProgress()
    result = run_batch(
        args.inputs,
        recipe,
        options,
        progress=progress,
        use_ray=args.ray is not None,
        ray_address=args.ray or None,
        ray_shards=args.ray_shards,
    )
    if args.reports:
        from audiotools.cli.report_cmd import case_values
        from audiotools.report.batch import write_batch_reports

        index = write_batch_reports(result.records, options.output_dir, **case_values(args))
        if not quiet():
            console.print(f"evidence reports: {index}", soft_wrap=True)
    if not quiet():
        _summary(result)
        _warnings(result)
    _failures(result)
    return result.exit_code


MOST_LINES = 50  # failed files (and files with warnings) named on stderr; the report lists them all


def _warned(result) -> list:
    """Files done in this run (not skipped) whose transcript has warnings."""
    return [r for r in result.records if r.warnings and r.status in ("ok", "failed")]


def _warnings(result, most: int = MOST_LINES) -> None:
    """One ``warning: FILE: text`` line per warning of the files done in this run (the first ``most``
    files; all are in the report)."""
    from audiotools.cli.common import warn

    warned = _warned(result)
    for r in warned[:most]:
        for w in r.warnings:
            warn(f"{r.input}: {w}")
    if len(warned) > most:
        warn(f"{len(warned) - most} more files have warnings: see {result.report_path}")


def _failures(result, most: int = MOST_LINES) -> None:
    """One ``error: FILE: problem`` line per failed file (the first ``most``; all are in the report)."""
    failed = [r for r in result.records if r.status == "failed"]
    for r in failed[:most]:
        text = r.error or "failed"
        if r.input not in text:
            text = f"{r.input}: {text}"
        console.print(f"[bold red]error:[/] {escape(text)}", highlight=False)
    if len(failed) > most:
        console.print(f"[bold red]error:[/] {len(failed) - most} more files failed: see {result.report_path}")


def _summary(result) -> None:
    from rich.table import Table

    t = Table(title="audiotools batch", show_lines=False)
    t.add_column("status")
    t.add_column("files", justify="right")
    t.add_column("audio (h)", justify="right")
    t.add_column("processing (s)", justify="right")
    for status, style in (("ok", "green"), ("skipped", "cyan"), ("failed", "red"), ("pending", "yellow")):
        recs = [r for r in result.records if r.status == status]
        if not recs and status in ("failed", "pending"):
            continue
        t.add_row(
            f"[{style}]{status}[/]",
            str(len(recs)),
            f"{sum(r.audio_seconds for r in recs) / 3600:.3f}",
            f"{sum(r.processing_seconds for r in recs):.1f}",
        )
    console.print(t)
    audio = result.processed_audio_seconds
    wall = result.wall_seconds
    console.print(
        f"{audio / 3600:.3f} h transcribed in {wall:.1f} s "
        f"({audio / wall if wall else 0:,.1f}x real time); report: {result.report_path}"
    )
    warned = len(_warned(result))
    if warned:
        console.print(
            f"[yellow]{warned} file{'s' if warned != 1 else ''} finished with warnings[/] "
            "(each file's are under 'warnings' in the report)"
        )
    sys.stderr.flush()
