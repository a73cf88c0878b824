"""``audiotools batch --reports``: an evidence report per file and ``index.html`` listing them all.

The index lists every file of the run with its status (ok / skipped / failed), duration, language,
speakers, integrity verdict and error, linking each report. It is one self-contained page like the
reports (inline CSS, no script needed), written atomically into the output directory.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

INDEX_NAME = "index.html"


def write_batch_reports(records, output_dir: str | os.PathLike, **case) -> Path:
    """A report beside each finished file's JSON, then ``OUTPUT_DIR/index.html``; returns the index path."""
    from audiotools.errors import AudiotoolsError
    from audiotools.provenance.document import load_document
    from audiotools.report import build, html

    out = Path(output_dir)
    rows = []
    for r in records:
        jp = next((o for o in r.outputs or [] if o.endswith(".json")), None)
        # shown: the file's name, in the sub-folder its outputs mirror (no local folder names)
        shown = (Path(jp).parent / Path(r.input).name).as_posix() if jp else Path(r.input).name
        error = r.error.replace(r.input, shown) if r.error else r.error
        row = {"input": shown, "status": r.status, "error": error, "duration": r.audio_seconds}
        if r.status in ("ok", "skipped") and jp:
            json_path = out / jp
            report = build.report_path_for(json_path)
            try:
                doc = load_document(json_path)
                audio = r.input if Path(r.input).is_file() else None
                model = build.from_transcript(doc, json_path=json_path, report_path=report, audio_path=audio, **case)
                html.write(model, report)
                row.update(
                    report=report.relative_to(out).as_posix(),
                    integrity="OK"
                    if model["integrity"]["ok"]
                    else "FAILED: " + ", ".join(model["integrity"]["failed"]),
                    speakers=[f"{s['label']} ({s['identity']})" for s in model["speakers"]],
                    duration=model["duration"],
                    language=doc.get("language"),
                )
            except AudiotoolsError as e:
                row["error"] = f"report not written: {str(e).replace(str(json_path), jp).replace(r.input, shown)}"
        rows.append(row)
    from audiotools.fileio import atomic_write_text

    index = out / INDEX_NAME
    atomic_write_text(index, render_index(rows, out, case.get("case_id"), case.get("examiner")))
    return index


def _e(x) -> str:
    return escape("" if x is None else str(x), quote=True)


def render_index(rows: list[dict], output_dir: Path, case_id: str | None, examiner: str | None) -> str:
    from audiotools.report.build import fmt_time
    from audiotools.transcript import utc_now
    from audiotools.version import __version__

    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "skipped", "failed", "pending")}
    body = []
    for r in rows:
        link = f"<a href='{_e(r['report'])}'>{_e(r['input'])}</a>" if r.get("report") else _e(r["input"])
        integ = r.get("integrity") or "-"
        cls = "bad" if r["status"] == "failed" or integ.startswith("FAILED") or r.get("error") else ""
        body.append(
            f"<tr class='file {cls}' data-status='{_e(r['status'])}'><td>{link}</td><td>{_e(r['status'])}</td>"
            f"<td class='num'>{fmt_time(r.get('duration') or 0)}</td><td>{_e(r.get('language') or '-')}</td>"
            f"<td>{_e(', '.join(r.get('speakers') or []) or '-')}</td><td>{_e(integ)}</td>"
            f"<td>{_e(r.get('error') or '')}</td></tr>"
        )
    meta = " · ".join(
        f"{k}: <b>{_e(v)}</b>"
        for k, v in (
            ("output", Path(output_dir).name),
            ("case", case_id),
            ("examiner", examiner),
            ("made", f"{utc_now()} by audiotools {__version__}"),
        )
        if v
    )
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Evidence reports: batch index</title>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<style>body{font:14px/1.45 system-ui,Arial,sans-serif;margin:0 auto;max-width:1180px;padding:18px}"
        "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 7px;text-align:left;"
        "vertical-align:top}th{background:#f5f6f8}td.num{text-align:right}tr.bad td{color:#b3261e}"
        ".meta{color:#555;font-size:13px}@media print{a{color:inherit;text-decoration:none}tr{break-inside:avoid}}"
        "</style></head><body><h1>Evidence reports</h1>"
        f"<div class='meta'>{meta}</div><p>{len(rows)} file(s): {_e(summary)}.</p>"
        "<table><tr><th>file (report)</th><th>status</th><th>duration</th><th>language</th><th>speakers</th>"
        "<th>integrity</th><th>failure</th></tr>" + "".join(body) + "</table></body></html>\n"
    )
