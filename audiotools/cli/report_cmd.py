"""``audiotools report TRANSCRIPT.json``: the evidence report (one self-contained HTML page)."""

from __future__ import annotations

import argparse

from audiotools.cli.common import info

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
    from audiotools.report import report_for_transcript

    path = report_for_transcript(
        args.transcript, args.output, audio=args.audio, public_key=args.public_key, **case_values(args)
    )
    info(f"report: {path}", soft_wrap=True)
    return 0
