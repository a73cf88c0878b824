"""``audiotools eval ...``: evaluation sub-commands (``der``; ``eer`` when installed)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import warnings

from ..errors import UsageError
from .common import console, stdout


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate results against references (der ...)",
                       description="Evaluation tools.")
    subparsers = p.add_subparsers(dest="eval_command", metavar="METRIC")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    register_der(subparsers)
    if importlib.util.find_spec("audiotools.cli.eval_eer"):
        from .eval_eer import register_eer
        register_eer(subparsers)


def register_der(subparsers) -> None:
    d = subparsers.add_parser(
        "der", help="diarisation error rate of an RTTM against a reference RTTM",
        description="Diarisation error rate (pyannote.metrics) with its parts: missed speech, false alarm, "
                    "speaker confusion. Files are matched by RTTM file id (uri); a single-file pair is "
                    "compared even when the ids differ.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--reference", "-r", required=True, metavar="R.rttm")
    d.add_argument("--hypothesis", "-H", required=True, metavar="H.rttm")
    d.add_argument("--uem", default=None, metavar="U.uem",
                   help="scored regions; without it each file is scored from 0 s to its last turn")
    d.add_argument("--collar", type=float, default=0.0,
                   help="seconds around reference boundaries not scored (total width, as NIST md-eval)")
    d.add_argument("--skip-overlap", action="store_true", help="do not score overlapped reference speech")
    d.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    d.set_defaults(func=run_der)


def der_report(reference: dict, hypothesis: dict, uem: dict | None = None, collar: float = 0.0,
               skip_overlap: bool = False) -> dict:
    """{"files": {uri: components}, "total": components}; components: der (fraction), missed, false_alarm,
    confusion, correct, total (seconds of reference speech)."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    if collar < 0:
        raise UsageError("--collar must be >= 0")
    if len(reference) == 1 and len(hypothesis) == 1 and set(reference) != set(hypothesis):
        (ref_uri,), (hyp_uri,) = reference.keys(), hypothesis.keys()
        hypothesis = {ref_uri: hypothesis[hyp_uri]}
    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    files: dict[str, dict] = {}
    for uri, ref in reference.items():
        hyp = hypothesis.get(uri) or Annotation(uri=uri)
        if uem and uri in uem:
            scored = uem[uri]
        else:
            ends = [s.end for s in ref.get_timeline()] + [s.end for s in hyp.get_timeline()]
            scored = Timeline([Segment(0.0, max(ends))]) if ends else Timeline([Segment(0.0, 1e-3)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            detail = metric(ref, hyp, uem=scored, detailed=True)
        files[uri] = _components(detail)
    total = _components({k: sum(f[k2] for f in files.values()) for k, k2 in
                         (("missed detection", "missed"), ("false alarm", "false_alarm"), ("confusion", "confusion"),
                          ("correct", "correct"), ("total", "total"))})
    return {"files": files, "total": total, "collar": collar, "skip_overlap": skip_overlap,
            "missing_hypotheses": sorted(set(reference) - set(hypothesis)),
            "extra_hypotheses": sorted(set(hypothesis) - set(reference))}


def _components(d: dict) -> dict:
    total = float(d.get("total", 0.0))
    missed, fa, conf = float(d["missed detection"]), float(d["false alarm"]), float(d["confusion"])
    return {"der": (missed + fa + conf) / total if total > 0 else (0.0 if missed + fa + conf == 0 else float("inf")),
            "missed": round(missed, 3), "false_alarm": round(fa, 3), "confusion": round(conf, 3),
            "correct": round(float(d.get("correct", 0.0)), 3), "total": round(total, 3)}


def run_der(args) -> int:
    from ..rttm import read_rttm, read_uem
    reference = read_rttm(args.reference)
    hypothesis = read_rttm(args.hypothesis)
    if not reference:
        raise UsageError(f"{args.reference}: no SPEAKER lines: nothing to score against")
    uem = read_uem(args.uem) if args.uem else None
    report = der_report(reference, hypothesis, uem, args.collar, args.skip_overlap)
    for uri in report["missing_hypotheses"]:
        console.print(f"[yellow]warning:[/] {args.hypothesis}: no turns for {uri} (all of it counts as missed)")
    if args.json:
        stdout.print_json(json.dumps(report))
        return 0
    _table(report)
    return 0


def _pct(x: float, total: float) -> str:
    return f"{100 * x / total:.2f} %" if total > 0 else "-"


def _table(report: dict) -> None:
    from rich.table import Table
    t = Table(title=f"Diarisation error rate (collar {report['collar']:g} s, "
                    f"{'overlap skipped' if report['skip_overlap'] else 'overlap scored'})")
    for col in ("file", "DER", "missed", "false alarm", "confusion", "speech (s)"):
        t.add_column(col, justify="left" if col == "file" else "right")
    rows = list(report["files"].items())
    if len(rows) > 1:
        rows.append(("TOTAL", report["total"]))
    for uri, c in rows:
        t.add_row(f"[bold]{uri}[/]" if uri == "TOTAL" else uri, f"{100 * c['der']:.2f} %",
                  _pct(c["missed"], c["total"]), _pct(c["false_alarm"], c["total"]),
                  _pct(c["confusion"], c["total"]), f"{c['total']:.2f}")
    stdout.print(t)
