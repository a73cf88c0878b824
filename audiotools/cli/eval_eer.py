"""``audiotools eval eer --scores S.tsv --key K.tsv``: speaker-verification metrics.

``register_eer(eval_subparsers)`` is called by ``cli/eval_cmd.py`` (which owns the ``eval`` command).
"""

from __future__ import annotations

import argparse
import json

from ..errors import InputError, UsageError
from .common import console, stdout

DESCRIPTION = """\
Verification metrics of scored trials against a key.

  S.tsv  ENROLMENT<TAB>TEST<TAB>score[<TAB>llr ...] (as written by `audiotools verify --trials`;
         a header line naming the columns is allowed)
  K.tsv  ENROLMENT<TAB>TEST<TAB>target|nontarget

Reports EER (ROC convex hull), minDCF and actDCF at P_target (default 0.01, C_miss = C_fa = 1,
normalised), Cllr and min Cllr (bits) when S.tsv has log10 likelihood ratios in an llr column.
"""


def register_eer(eval_sub) -> None:
    p = eval_sub.add_parser("eer", help="EER, minDCF and Cllr of verification scores against a key",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scores", required=True, metavar="S.tsv", help="scored trials")
    p.add_argument("--key", required=True, metavar="K.tsv", help="trial labels (target/nontarget)")
    p.add_argument("--p-target", type=float, default=0.01, help="DCF operating point (default 0.01)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_eer)


def evaluate(scores_path: str, key_path: str, p_target: float = 0.01) -> dict:
    import numpy as np

    from ..calibration import summary
    from ..verification import read_scores, read_trials
    if not 0.0 < p_target < 1.0:
        raise UsageError("--p-target must be between 0 and 1")
    scores = read_scores(scores_path)
    key = read_trials(key_path, with_key=True)
    tar_s, non_s, tar_l, non_l = [], [], [], []
    missing = 0
    have_llr = True
    for row in key:
        k = (row[0].strip(), row[1].strip())
        s = scores.get(k)
        if s is None:
            missing += 1
            continue
        (tar_s if row[3] else non_s).append(s["score"])
        if "llr" in s:
            (tar_l if row[3] else non_l).append(s["llr"])
        else:
            have_llr = False
    if not tar_s or not non_s:
        raise InputError(scores_path, f"needs scored target and non-target trials of {key_path} "
                                      f"(found {len(tar_s)} target, {len(non_s)} non-target; {missing} key trials "
                                      "have no score)")
    if have_llr:
        d = summary(np.array(tar_s), np.array(non_s), np.array(tar_l), np.array(non_l), p_target)
    else:
        d = summary(np.array(tar_s), np.array(non_s), p_target=p_target)
    d["missing_trials"] = missing
    d["unused_scores"] = len(scores) - (len(tar_s) + len(non_s))
    d["dcf_costs"] = {"c_miss": 1.0, "c_fa": 1.0}
    return d


def cmd_eer(args) -> int:
    d = evaluate(args.scores, args.key, args.p_target)
    if args.json:
        stdout.print_json(json.dumps(d))
        return 0
    stdout.print(f"trials: {d['n_target']} target, {d['n_nontarget']} non-target"
                 + (f" ([yellow]{d['missing_trials']} key trials without a score[/])" if d["missing_trials"] else ""))
    stdout.print(f"EER:     {100 * d['eer']:.2f} %")
    stdout.print(f"minDCF:  {d['min_dcf']:.4f}  (P_target = {d['p_target']:g}, C_miss = C_fa = 1, normalised)")
    if "cllr" in d:
        stdout.print(f"actDCF:  {d['act_dcf']:.4f}  (Bayes decisions from the llr column)")
        stdout.print(f"Cllr:    {d['cllr']:.4f} bits  (min Cllr {d['min_cllr']:.4f}: the rest is calibration loss)")
    else:
        console.print("[dim]no llr column: Cllr and actDCF need log-likelihood ratios[/]")
    return 0
