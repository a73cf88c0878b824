"""``audiotools eval der|eer``: diarisation and speaker-verification metrics against references."""

from __future__ import annotations

import argparse
import json

from audiotools.cli.common import console, stdout, warn
from audiotools.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate results against references (der ...)", description="Evaluation tools.")
    subparsers = p.add_subparsers(dest="eval_command", metavar="METRIC")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    register_der(subparsers)
    register_eer(subparsers)


def register_der(subparsers) -> None:
    d = subparsers.add_parser(
        "der",
        help="diarisation error rate of an RTTM against a reference RTTM",
        description="Diarisation error rate (pyannote.metrics) with its parts: missed speech, false alarm, "
        "speaker confusion. Files are matched by RTTM file id (uri); a single-file pair is "
        "compared even when the ids differ.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d.add_argument("--reference", "-r", required=True, metavar="R.rttm")
    d.add_argument("--hypothesis", "-H", required=True, metavar="H.rttm")
    d.add_argument(
        "--uem",
        default=None,
        metavar="U.uem",
        help="scored regions; without it each file is scored from 0 s to its last turn",
    )
    d.add_argument(
        "--collar",
        type=float,
        default=0.0,
        help="seconds around reference boundaries not scored (total width, as NIST md-eval)",
    )
    d.add_argument("--skip-overlap", action="store_true", help="do not score overlapped reference speech")
    d.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    d.set_defaults(func=run_der)


def run_der(args) -> int:
    from audiotools.export.rttm import read_rttm, read_uem

    reference = read_rttm(args.reference)
    hypothesis = read_rttm(args.hypothesis)
    if not reference:
        raise UsageError(f"{args.reference}: no SPEAKER lines: nothing to score against")
    uem = read_uem(args.uem) if args.uem else None
    from audiotools.eval.der import der_report

    report = der_report(reference, hypothesis, uem, args.collar, args.skip_overlap)
    for uri in report["missing_hypotheses"]:
        warn(f"{args.hypothesis}: no turns for {uri} (all of it counts as missed)")
    if args.json:
        stdout.print_json(json.dumps(report))
        return 0
    _table(report)
    return 0


def _pct(x: float, total: float) -> str:
    return f"{100 * x / total:.2f} %" if total > 0 else "-"


def _table(report: dict) -> None:
    from rich.table import Table

    t = Table(
        title=f"Diarisation error rate (collar {report['collar']:g} s, "
        f"{'overlap skipped' if report['skip_overlap'] else 'overlap scored'})"
    )
    for col in ("file", "DER", "missed", "false alarm", "confusion", "speech (s)"):
        t.add_column(col, justify="left" if col == "file" else "right")
    rows = list(report["files"].items())
    if len(rows) > 1:
        rows.append(("TOTAL", report["total"]))
    for uri, c in rows:
        t.add_row(
            f"[bold]{uri}[/]" if uri == "TOTAL" else uri,
            f"{100 * c['der']:.2f} %",
            _pct(c["missed"], c["total"]),
            _pct(c["false_alarm"], c["total"]),
            _pct(c["confusion"], c["total"]),
            f"{c['total']:.2f}",
        )
    stdout.print(t)


DESCRIPTION = """\
Verification metrics of scored trials against a key.

  S.tsv  ENROLMENT<TAB>TEST<TAB>score[<TAB>llr ...] (as written by `audiotools verify --trials`;
         a header line naming the columns is allowed)
  K.tsv  ENROLMENT<TAB>TEST<TAB>target|nontarget

Reports EER (ROC convex hull), minDCF and actDCF at P_target (default 0.01, C_miss = C_fa = 1,
normalised), Cllr and min Cllr (bits) when S.tsv has log10 likelihood ratios in an llr column.
"""


def register_eer(eval_sub) -> None:
    p = eval_sub.add_parser(
        "eer",
        help="EER, minDCF and Cllr of verification scores against a key",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scores", required=True, metavar="S.tsv", help="scored trials")
    p.add_argument("--key", required=True, metavar="K.tsv", help="trial labels (target/nontarget)")
    p.add_argument("--p-target", type=float, default=0.01, help="DCF operating point (default 0.01)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_eer)


def cmd_eer(args) -> int:
    from audiotools.eval.eer import evaluate

    d = evaluate(args.scores, args.key, args.p_target)
    if args.json:
        stdout.print_json(json.dumps(d))
        return 0
    stdout.print(
        f"trials: {d['n_target']} target, {d['n_nontarget']} non-target"
        + (f" ([yellow]{d['missing_trials']} key trials without a score[/])" if d["missing_trials"] else "")
    )
    stdout.print(f"EER:     {100 * d['eer']:.2f} %")
    stdout.print(f"minDCF:  {d['min_dcf']:.4f}  (P_target = {d['p_target']:g}, C_miss = C_fa = 1, normalised)")
    if "cllr" in d:
        stdout.print(f"actDCF:  {d['act_dcf']:.4f}  (Bayes decisions from the llr column)")
        stdout.print(f"Cllr:    {d['cllr']:.4f} bits  (min Cllr {d['min_cllr']:.4f}: the rest is calibration loss)")
    else:
        console.print("[dim]no llr column: Cllr and actDCF need log-likelihood ratios[/]")
    return 0
