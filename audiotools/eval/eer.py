"""Speaker-verification metrics of scored trials against a key: EER, minDCF, actDCF, Cllr."""

from __future__ import annotations

from audiotools.errors import InputError, UsageError


def evaluate(scores_path: str, key_path: str, p_target: float = 0.01) -> dict:
    import numpy as np

    from audiotools.speakers.calibration import summary
    from audiotools.speakers.verification import read_scores, read_trials

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
        raise InputError(
            scores_path,
            f"needs scored target and non-target trials of {key_path} "
            f"(found {len(tar_s)} target, {len(non_s)} non-target; {missing} key trials "
            "have no score)",
        )
    if have_llr:
        d = summary(np.array(tar_s), np.array(non_s), np.array(tar_l), np.array(non_l), p_target)
    else:
        d = summary(np.array(tar_s), np.array(non_s), p_target=p_target)
    d["missing_trials"] = missing
    d["unused_scores"] = len(scores) - (len(tar_s) + len(non_s))
    d["dcf_costs"] = {"c_miss": 1.0, "c_fa": 1.0}
    return d
