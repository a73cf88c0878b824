"""Diarisation error rate with its parts (pyannote.metrics): missed speech, false alarm, confusion."""

from __future__ import annotations

import warnings

from audiotools.errors import UsageError


def der_report(
    reference: dict, hypothesis: dict, uem: dict | None = None, collar: float = 0.0, skip_overlap: bool = False
) -> dict:
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
        files[uri] = components(detail)
    total = components(
        {
            k: sum(f[k2] for f in files.values())
            for k, k2 in (
                ("missed detection", "missed"),
                ("false alarm", "false_alarm"),
                ("confusion", "confusion"),
                ("correct", "correct"),
                ("total", "total"),
            )
        }
    )
    return {
        "files": files,
        "total": total,
        "collar": collar,
        "skip_overlap": skip_overlap,
        "missing_hypotheses": sorted(set(reference) - set(hypothesis)),
        "extra_hypotheses": sorted(set(hypothesis) - set(reference)),
    }


def components(d: dict) -> dict:
    total = float(d.get("total", 0.0))
    missed, fa, conf = float(d["missed detection"]), float(d["false alarm"]), float(d["confusion"])
    return {
        "der": (missed + fa + conf) / total if total > 0 else (0.0 if missed + fa + conf == 0 else float("inf")),
        "missed": round(missed, 3),
        "false_alarm": round(fa, 3),
        "confusion": round(conf, 3),
        "correct": round(float(d.get("correct", 0.0)), 3),
        "total": round(total, 3),
    }
