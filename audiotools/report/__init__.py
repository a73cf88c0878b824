"""Evidence reports: one self-contained HTML page per recording that a verifier can read, listen to
and check (integrity re-verified, recording, timeline, transcript, speakers, comparison with Tippett
and ECE plots, limitations). ``build`` gathers and re-checks, ``plots`` draws the calibration
figures, ``html`` renders the page. See docs/report.md."""

from __future__ import annotations

import os
from pathlib import Path


def report_for_transcript(
    json_path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    audio: str | os.PathLike | None = None,
    decoded=None,
    case_id: str | None = None,
    examiner: str | None = None,
    embed_audio: bool = False,
    public_key=None,
) -> Path:
    """Write the report of a transcript JSON (default ``X.report.html`` beside ``X.json``); returns its path."""
    from audiotools.provenance.document import load_document
    from audiotools.report import build

    json_path = Path(json_path)
    out = Path(output) if output else build.report_path_for(json_path)
    return report_for_document(
        load_document(json_path),
        out,
        json_path=json_path,
        audio=audio,
        decoded=decoded,
        case_id=case_id,
        examiner=examiner,
        embed_audio=embed_audio,
        public_key=public_key,
    )


def report_for_document(doc: dict, output: str | os.PathLike, **options) -> Path:
    """Write the report of a transcript dict; returns its path. ``options``: those of
    :func:`report_and_integrity` (``json_path``: where its JSON lies, for the exports beside it)."""
    return report_and_integrity(doc, output, **options)[0]


def report_and_integrity(
    doc: dict,
    output: str | os.PathLike,
    *,
    json_path: str | os.PathLike | None = None,
    audio: str | os.PathLike | None = None,
    decoded=None,
    case_id: str | None = None,
    examiner: str | None = None,
    embed_audio: bool = False,
    public_key=None,
) -> tuple[Path, dict]:
    """Write the report of a transcript dict (``json_path``: where its JSON lies, for the exports beside
    it); returns its path and what the integrity checks found (the report's ``integrity`` block:
    ``failed`` names the checks that failed, ``checks`` each check's status)."""
    from audiotools.fileio import check_output_file
    from audiotools.report import build, html

    out = check_output_file(output)  # a one-line error before the audio is decoded and hashed
    model = build.from_transcript(
        doc,
        json_path=json_path,
        report_path=out,
        audio_path=audio,
        decoded=decoded,
        public_key=public_key,
        case_id=case_id,
        examiner=examiner,
        embed_audio=embed_audio,
    )
    return html.write(model, out), model["integrity"]
