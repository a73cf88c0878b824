"""The report's calibration plots, drawn with matplotlib and inlined as SVG.

* **Tippett plot**: for each threshold on the x axis (log10 LR), the proportion of same-speaker
  (target) and of different-speaker (non-target) calibration trials whose log10 LR is at least
  that large; the case's log10 LR is a vertical line.
* **ECE plot** (empirical cross-entropy, Ramos et al.): the information loss, in bits, of the
  trials' likelihood ratios against the prior log10 odds, beside two references: LR = 1 always
  (neutral) and the trials after the best monotonic recalibration (PAV: what the scores could give
  if perfectly calibrated). The case is marked at the prior log10 odds where its LR would make the
  posterior odds even (``-log10 LR``).

Trials come in as ``(target, nontarget)`` arrays of log10 LRs (see :mod:`audiotools.report.build`).
The figures use matplotlib's object API (no pyplot state, safe in threads), text stays text in the
SVG (``svg.fonttype = none``: no embedded glyphs, the page's font) and ids are salted per figure so
several plots can share one page.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np

LN10 = math.log(10.0)
PRIOR_LOG10_ODDS = np.linspace(-3.0, 3.0, 121)
TARGET_COLOUR = "#1f5fbf"
NONTARGET_COLOUR = "#c0392b"
CASE_COLOUR = "#222222"


def _figure(width: float = 5.2, height: float = 3.3):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _svg(fig, salt: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no fixed pixel size)."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9}):
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # scale with the page: drop the fixed width/height, keep the viewBox
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', text, count=1)
    return text


def tippett_svg(target: np.ndarray, nontarget: np.ndarray, case_llr: float | None, salt: str) -> str:
    target, nontarget = np.sort(np.asarray(target, float)), np.sort(np.asarray(nontarget, float))
    lo = min(target.min(), nontarget.min(), case_llr if case_llr is not None else 0.0) - 0.3
    hi = max(target.max(), nontarget.max(), case_llr if case_llr is not None else 0.0) + 0.3
    x = np.linspace(lo, hi, 400)
    fig, ax = _figure()
    for vals, colour, label in (
        (target, TARGET_COLOUR, f"same speaker (H1 true), {len(target):,} trials"),
        (nontarget, NONTARGET_COLOUR, f"different speakers (H2 true), {len(nontarget):,} trials"),
    ):
        share = 1.0 - np.searchsorted(vals, x, side="left") / len(vals)
        ax.plot(x, share, color=colour, linewidth=1.6, label=label)
    if case_llr is not None:
        ax.axvline(case_llr, color=CASE_COLOUR, linewidth=1.2, linestyle="--", label=f"this case: {case_llr:+.2f}")
    ax.axvline(0.0, color="#888888", linewidth=0.6)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("log10 likelihood ratio (x)")
    ax.set_ylabel("proportion of trials with log10 LR ≥ x")
    ax.legend(loc="center left", fontsize=7.5, frameon=True)
    return _svg(fig, salt + "-tippett")


def _ece(tar: np.ndarray, non: np.ndarray, prior_log10_odds: np.ndarray) -> np.ndarray:
    """Empirical cross-entropy (bits) of log10 LRs for each prior log10 odds."""
    o = prior_log10_odds[:, None] * LN10
    p1 = 1.0 / (1.0 + 10.0 ** (-prior_log10_odds))
    # log2(1 + 1/(LR*O)) for targets, log2(1 + LR*O) for non-targets, in a stable form
    t = np.logaddexp(0.0, -(tar[None, :] * LN10 + o)).mean(axis=1) / math.log(2)
    n = np.logaddexp(0.0, non[None, :] * LN10 + o).mean(axis=1) / math.log(2)
    return p1 * t + (1.0 - p1) * n


def _pav_llr(tar: np.ndarray, non: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trials' log10 LRs after the optimal monotonic recalibration (pool-adjacent-violators)."""
    from audiotools.speakers.calibration import pav

    scores = np.concatenate([tar, non])
    labels = np.concatenate([np.ones(len(tar)), np.zeros(len(non))])
    order = np.lexsort((-labels, scores))
    post = np.clip(pav(labels[order]), 1e-9, 1 - 1e-9)
    llr = (np.log(post) - np.log1p(-post) - math.log(len(tar) / len(non))) / LN10
    lab = labels[order]
    return llr[lab == 1], llr[lab == 0]


def ece_svg(target: np.ndarray, nontarget: np.ndarray, case_llr: float | None, salt: str) -> str:
    tar, non = np.asarray(target, float), np.asarray(nontarget, float)
    x = PRIOR_LOG10_ODDS
    if case_llr is not None and not x[0] + 0.5 <= -case_llr <= x[-1] - 0.5:  # keep the case's mark inside
        x = np.linspace(min(x[0], -case_llr - 0.5), max(x[-1], -case_llr + 0.5), 161)
    fig, ax = _figure()
    ax.plot(x, _ece(tar, non, x), color=TARGET_COLOUR, linewidth=1.6, label="these likelihood ratios")
    ax.plot(x, _ece(*_pav_llr(tar, non), x), color="#2e8b57", linewidth=1.2, linestyle="-.", label="after PAV (best)")
    ax.plot(
        x, _ece(np.zeros(1), np.zeros(1), x), color="#888888", linewidth=1.2, linestyle=":", label="LR = 1 (neutral)"
    )
    if case_llr is not None and x[0] <= -case_llr <= x[-1]:
        ax.axvline(
            -case_llr,
            color=CASE_COLOUR,
            linewidth=1.2,
            linestyle="--",
            label=f"this case: -log10 LR = {-case_llr:+.2f}",
        )
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("prior log10 odds")
    ax.set_ylabel("empirical cross-entropy (bits)")
    ax.legend(loc="upper right", fontsize=7.5, frameon=True)
    return _svg(fig, salt + "-ece")
