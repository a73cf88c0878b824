"""``audiotools transcribe FILE... --output-dir D``"""

from __future__ import annotations

import time
from pathlib import Path

from audiotools.cli.common import console, each_file, info, probe_inputs, quiet, warn
from audiotools.cli.options import add_step_options, add_transcribe_options, recipe_from_args
from audiotools.cli.report_cmd import add_report_case_options, case_values


def register(sub) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe audio/video files (one output set per file)",
        description="Transcribe files with Whisper: segments, word timestamps, exports.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio or video files")
    add_transcribe_options(p)
    add_step_options(p)
    add_report_case_options(p, "also write the evidence report X.report.html beside X.json (docs/report.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from audiotools.batch.plan import file_stems
    from audiotools.pipeline.run import preflight, run_file

    recipe = recipe_from_args(args)
    out_dir = Path(args.output_dir or ".")
    engine: list = []  # loaded with the first file
    # inputs, output paths and the voiceprint store are checked before any model loads: a bad file
    # fails in milliseconds, and when every file is bad no model is loaded at all
    bad = probe_inputs(args.files)
    stems = file_stems(args.files)  # a/same.wav and b/same.ogg: same.wav.json and same.ogg.json, as batch
    check_output_paths(out_dir, recipe, list(stems.values()))
    preflight(recipe)

    def one(f: str) -> None:
        t0 = time.perf_counter()
        if f in bad:
            raise bad[f]
        if not engine:
            from audiotools.asr.transcribe import Transcriber  # torch: imported only for a good file

            engine.append(Transcriber(recipe.options("transcribe")))
        job = run_file(f, recipe, out_dir, transcriber=engine[0], stem=stems[f])
        if args.report:
            _write_report(args, job, out_dir)
        if not quiet():
            _print_summary(job.transcript, job.outputs, time.perf_counter() - t0)

    _, failures = each_file(args.files, one)
    return 1 if failures else 0


def check_output_paths(out_dir: Path, recipe, stems: list[str] | None) -> None:
    """The output folder, and the folder of ``--unmasked-copy``, can be written (created when missing);
    else a one-line ``OutputError`` before any model loads (shared by ``transcribe`` and ``batch``).
    ``stems``: the files' output stems (None: a batch); several files need ``{stem}`` in the
    unmasked copy's path (a ``UsageError`` otherwise)."""
    from audiotools.fileio import check_output_dir, check_output_file
    from audiotools.mask.masking import check_unmasked_copy

    unmasked = recipe.options("mask").unmasked_copy if recipe.enabled("mask") else None
    first_copy = check_unmasked_copy(unmasked, stems) if unmasked else None  # a usage error creates nothing
    check_output_dir(out_dir)
    if first_copy:
        check_output_file(first_copy)


def _write_report(args, job, out_dir: Path) -> None:
    from audiotools.report import report_for_document

    json_path = job.outputs.get("json")
    stem = Path(json_path).stem if json_path else job.path.stem
    report = report_for_document(
        job.transcript.to_dict(),
        out_dir / f"{stem}.report.html",
        json_path=json_path,
        decoded=job.audio,
        **case_values(args),
    )
    job.outputs["report"] = report


def _print_summary(t, outputs, took: float) -> None:
    from rich.table import Table

    dur = t.audio.duration
    info(
        f"[bold]{t.audio.path}[/]: {dur:.1f} s audio, language [cyan]{t.language}[/], "
        f"{len(t.segments)} segments, {took:.1f} s ({dur / took if took else 0:.1f}x real time)"
    )
    for w in t.extra.get("warnings", []):
        warn(f"{t.audio.path}: {w}")
    if outputs:
        table = Table(show_header=False, box=None, padding=(0, 1))
        for fmt, path in outputs.items():
            table.add_row(f"[dim]{fmt}[/]", str(path))
        console.print(table)
