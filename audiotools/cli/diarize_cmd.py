"""``audiotools diarize FILE... --output-dir D``: who spoke when, as RTTM."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audiotools.cli.common import console, each_file, info, quiet, warn

EXAMPLES = """\
examples:
  audiotools diarize meeting.wav --output-dir out/            # out/meeting.rttm
  audiotools diarize call.wav -o out/ --channels split         # one speaker per channel
  audiotools diarize panel.mp3 -o out/ --min-speakers 3 --max-speakers 6
  audiotools diarize a.wav --diarizer pyannote --pyannote-pipeline ~/models/pyannote-3.1
"""


def register(sub) -> None:
    from audiotools.cli.options import add_diarizer_options

    p = sub.add_parser(
        "diarize",
        help="who spoke when: write speaker turns as RTTM",
        description="Diarise audio/video files: speaker turns per file as D/<stem>.rttm (two inputs with the "
        "same stem: D/<name>.rttm, e.g. same.wav.rttm and same.ogg.rttm).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio or video files")
    p.add_argument("--output-dir", "-o", default=".", help="where to write <stem>.rttm (default: current directory)")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="device for the speaker embeddings / pyannote pipeline (default: auto)",
    )
    add_diarizer_options(p.add_argument_group("diarisation"))
    p.set_defaults(func=run)


def run(args) -> int:
    from audiotools.audio.decode import load_audio
    from audiotools.batch.plan import file_stems
    from audiotools.cli.options import diarization_options
    from audiotools.diarize.diarization import run_diarization
    from audiotools.export.rttm import write_rttm
    from audiotools.fileio import check_output_dir, fit_stem

    options = diarization_options(args)
    out_dir = check_output_dir(args.output_dir)  # a one-line error now, not after the diarisation
    stems = file_stems(args.files)  # a/same.wav and b/same.ogg: same.wav.rttm and same.ogg.rttm, as batch

    def one(f: str) -> None:
        t0 = time.perf_counter()
        audio = load_audio(f, keep_channels=options.channels == "split", hash_source=False)
        result = run_diarization(audio, options, uri=Path(f).stem)
        path = write_rttm(
            result.annotation,
            out_dir / f"{fit_stem(stems[f])}.rttm",
            uri=Path(f).stem,
            channels=result.info.get("channel_of"),
        )
        if not quiet():
            _summary(f, audio.duration, result, path, time.perf_counter() - t0)

    _, failures = each_file(args.files, one)
    return 1 if failures else 0


def _summary(name: str, duration: float, result, path: Path, took: float) -> None:
    from rich.table import Table

    ann = result.annotation
    speakers = result.labels
    speed = duration / took if took else 0.0
    info(
        f"[bold]{name}[/]: {duration:.1f} s, [cyan]{len(speakers)}[/] speaker{'s' if len(speakers) != 1 else ''} "
        f"({result.backend}{', channels split' if result.channels == 'split' else ''}), "
        f"{took:.1f} s ({speed:.{0 if speed >= 10 else 1}f}x real time) -> {path}"
    )
    if not speakers:
        info("  [yellow]no speech found[/]")
        return
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("speaker")
    table.add_column("speech", justify="right")
    table.add_column("share", justify="right")
    table.add_column("turns", justify="right")
    table.add_column("first", justify="right")
    total = sum(ann.label_duration(s) for s in speakers) or 1.0
    for s in speakers:
        tl = ann.label_timeline(s)
        d = ann.label_duration(s)
        table.add_row(s, f"{d:.1f} s", f"{100 * d / total:.0f} %", str(len(tl)), f"{tl[0].start:.1f} s")
    console.print(table)
    if result.info.get("warning"):
        warn(f"{name}: {result.info['warning']}")
