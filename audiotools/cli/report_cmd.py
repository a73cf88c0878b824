"""``audiotools report TRANSCRIPT.json``: the evidence report (one self-contained HTML page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from audiotools.cli.common import info, quiet, warn
from audiotools.errors import InputError, one_line_path

DESCRIPTION = """\
Write an evidence report of a transcript: one self-contained HTML page (no network, opens from
file://, prints to PDF) that a verifier can read, listen to and check. It re-verifies the
provenance hashes (with the audio: source, PCM and every segment; the exports beside the JSON)
and shows the recording, a clickable timeline with one lane per speaker, the transcript (click a
word to hear it), the speakers with their likelihood ratios, each identity's comparison (the
propositions, the verbal scale, the reference population, Tippett and ECE plots) and the
limitations. See docs/report.md.

examples:
  audiotools report out/call.json                                # -> out/call.report.html
  audiotools report out/call.json --audio call.wav --case-id 2025-117 --examiner "J. Doe"
  audiotools report out/call.json --embed-audio --output call-for-court.html

exit status: 0 when the integrity checks pass (a warning when the recording was not found, so its
hashes were not checked); 1 when a check FAILED (the report is still written and says which).
"""


def add_report_case_options(p: argparse.ArgumentParser, flag_help: str | None = None, flag: str = "--report") -> None:
    """``--case-id``, ``--examiner``, ``--embed-audio`` (shared by the commands that write reports), and
    with ``flag_help`` the flag that asks for the report (``--report``; ``batch``: ``--reports``)."""
    from audiotools.report.build import EMBED_AUDIO_LIMIT_MB

    g = p.add_argument_group("evidence report")
    if flag_help:
        g.add_argument(flag, action="store_true", help=flag_help)
    g.add_argument("--case-id", default=None, metavar="ID", help="case reference printed on the report")
    g.add_argument("--examiner", default=None, metavar="NAME", help="examiner's name printed on the report")
    g.add_argument(
        "--embed-audio",
        action="store_true",
        help=f"put the audio inside the report (files up to {EMBED_AUDIO_LIMIT_MB} MB) instead of a relative link",
    )


def case_values(args: argparse.Namespace) -> dict:
    from audiotools.report.build import check_case_text

    return {
        "case_id": check_case_text(getattr(args, "case_id", None), "--case-id"),
        "examiner": check_case_text(getattr(args, "examiner", None), "--examiner"),
        "embed_audio": bool(getattr(args, "embed_audio", False)),
    }


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="evidence report of a transcript: one HTML page to read, listen to and check",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("transcript", metavar="TRANSCRIPT.json")
    p.add_argument(
        "--audio", "-a", metavar="FILE", help="the recording (default: the path the transcript records, if it exists)"
    )
    p.add_argument("--output", "-o", metavar="X.report.html", help="where to write (default: beside the JSON)")
    p.add_argument(
        "--public-key",
        "-k",
        metavar="KEY",
        help="require a valid signature by this Ed25519 public key (as provenance verify)",
    )
    add_report_case_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from audiotools.provenance.document import load_document
    from audiotools.report import build, report_and_integrity

    json_path = Path(args.transcript)
    out = Path(args.output) if args.output else build.report_path_for(json_path)
    doc = load_document(json_path)
    path, integrity = report_and_integrity(
        doc, out, json_path=json_path, audio=args.audio, public_key=args.public_key, **case_values(args)
    )
    info(f"report: {escape(str(path))}", soft_wrap=True)
    return integrity_status(json_path, integrity, path)


def integrity_status(json_path: Path, integrity: dict, report: Path) -> int:
    """0 when the integrity checks passed; a warning line when the audio could not be checked; an
    ``InputError`` (one line, exit 1) when a check FAILED: the report, written, documents it."""
    failed = integrity.get("failed") or []
    if failed:
        segments = sum(1 for n in failed if n.startswith("segment "))
        names = [n for n in failed if not n.startswith("segment ")]
        names += [f"{segments} segment sha256{'s' if segments != 1 else ''}"] if segments else []
        audio = segments or any(n in ("source_sha256", "pcm_sha256") for n in failed)
        if audio:
            why = "the audio does not match the transcript"
        elif names == ["signature"]:
            why = "the signature does not verify"
        else:
            why = "the transcript or its files do not match their recorded hashes"
        raise InputError(
            json_path,
            f"integrity FAILED: {', '.join(names)} ({why}; the report says so: {one_line_path(str(report))})",
        )
    skipped = [c for c in integrity.get("checks") or [] if c.get("name") == "audio" and c.get("status") == "skip"]
    if skipped and not quiet():
        warn(
            f"{one_line_path(str(json_path))}: audio not checked: the recording it names was not found "
            "(give it with --audio FILE); source, PCM and segment hashes not verified"
        )
    return 0
