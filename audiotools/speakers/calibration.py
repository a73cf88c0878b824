"""Score normalisation, logistic calibration and the metrics that judge them.

Scoring recipe (per recording condition, see :mod:`audiotools.audio.condition`):

1. ``raw``: cosine of the two L2-normalised CAM++ embeddings (an enrolment of several samples is the
   normalised mean of their embeddings).
2. Centring: both embeddings minus the cohort mean of the condition, renormalised.
3. ``snorm``: adaptive symmetric score normalisation (AS-norm, Matejka et al., Interspeech 2017):
   ``0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)`` where ``mu_e, sd_e`` are the mean and standard
   deviation of the ``top_n`` highest scores of the enrolment against the cohort, and likewise for
   the test side.
4. ``llr``: logistic calibration ``ln LR = a * snorm + b`` (Brümmer's prior-weighted logistic
   regression, as in the BOSARIS toolkit), reported as log10 LR.

Metrics (all on target / non-target score arrays): EER (ROC convex hull), minimum and actual
normalised detection cost (DCF) at an operating point ``P_target`` with ``C_miss = C_fa = 1``,
``Cllr`` (the cost of the log-likelihood ratios, in bits; 0 is perfect, 1 is an uninformative
system) and ``min Cllr`` (after the optimal monotonic recalibration, pool-adjacent-violators).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotools.errors import CalibrationError, ModelError
from audiotools.speakers.vectors import l2_normalize
from audiotools.speakers.voiceprints import EMBEDDING_DIM

log = logging.getLogger(__name__)

LN10 = math.log(10.0)
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "calibration"
SHIPPED = DATA_DIR / "calibration.json"
STORE_FILE = "_calibration.json"  # a user's refit, inside the voiceprint store
SCHEMA = "audiotools.calibration/1"
DEFAULT_P_TARGET = 0.01  # the minDCF operating point we report


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


# ------------------------------------------------------------------------------------------ metrics
def _as_arrays(tar, non) -> tuple[np.ndarray, np.ndarray]:
    tar = np.asarray(tar, dtype=np.float64).ravel()
    non = np.asarray(non, dtype=np.float64).ravel()
    if len(tar) == 0 or len(non) == 0:
        raise ValueError("need at least one target and one non-target score")
    return tar, non


def pav(y: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing least-squares fit to ``y``."""
    vals: list[float] = []
    wts: list[float] = []
    lens: list[int] = []
    for v in np.asarray(y, dtype=np.float64):
        vals.append(float(v))
        wts.append(1.0)
        lens.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            v2 = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            n = lens[-2] + lens[-1]
            vals[-2:] = [v2]
            wts[-2:] = [w]
            lens[-2:] = [n]
    return np.repeat(vals, lens)


def _roc_hull(tar: np.ndarray, non: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P_miss, P_fa) at the vertices of the ROC convex hull (via PAV of the sorted labels)."""
    scores = np.concatenate([tar, non])
    labels = np.concatenate([np.ones(len(tar)), np.zeros(len(non))])
    order = np.lexsort((-labels, scores))  # ties: targets sorted below non-targets (pessimistic)
    p = pav(labels[order])
    # each distinct PAV block is a hull segment; thresholds between blocks are the vertices
    nt, nn = len(tar), len(non)
    change = np.flatnonzero(np.diff(p) != 0) + 1
    idx = np.concatenate([[0], change, [len(p)]])
    lab = labels[order]
    cum_t = np.concatenate([[0], np.cumsum(lab)])
    cum_n = np.concatenate([[0], np.cumsum(1 - lab)])
    pmiss = cum_t[idx] / nt
    pfa = (nn - cum_n[idx]) / nn
    return pmiss, pfa


def eer(tar, non) -> float:
    """Equal error rate (ROCCH-EER, as in BOSARIS), a fraction."""
    tar, non = _as_arrays(tar, non)
    pmiss, pfa = _roc_hull(tar, non)
    best = 0.0
    for i in range(len(pmiss) - 1):
        xx = np.array([pfa[i], pfa[i + 1]])
        yy = np.array([pmiss[i], pmiss[i + 1]])
        # segment from (pfa_i, pmiss_i) to (pfa_i+1, pmiss_i+1); EER where it crosses pfa == pmiss
        dx, dy = xx[1] - xx[0], yy[1] - yy[0]
        if abs(dx - dy) < 1e-15:
            e = min(xx[0], yy[0]) if xx[0] == yy[0] else 0.0
        else:
            t = (yy[0] - xx[0]) / (dx - dy)
            if t < 0 or t > 1:
                continue
            e = xx[0] + t * dx
        best = max(best, e)
    if best == 0.0:  # the segments always cross the diagonal once; fall back to the closest vertex
        k = int(np.argmin(np.abs(pmiss - pfa)))
        best = float((pmiss[k] + pfa[k]) / 2)
    return float(best)


def min_dcf(tar, non, p_target: float = DEFAULT_P_TARGET, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Minimum normalised detection cost over all thresholds."""
    tar, non = _as_arrays(tar, non)
    pmiss, pfa = _roc_hull(tar, non)
    cost = p_target * c_miss * pmiss + (1 - p_target) * c_fa * pfa
    return float(cost.min() / min(p_target * c_miss, (1 - p_target) * c_fa))


def act_dcf(tar_llr10, non_llr10, p_target: float = DEFAULT_P_TARGET, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Normalised detection cost of Bayes decisions made with the given log10 LRs."""
    tar, non = _as_arrays(tar_llr10, non_llr10)
    thr = (math.log(c_fa / c_miss) - logit(p_target)) / LN10
    pmiss = float(np.mean(tar < thr))
    pfa = float(np.mean(non >= thr))
    cost = p_target * c_miss * pmiss + (1 - p_target) * c_fa * pfa
    return cost / min(p_target * c_miss, (1 - p_target) * c_fa)


def cllr(tar_llr10, non_llr10) -> float:
    """Log-likelihood-ratio cost in bits (LRs given as log10)."""
    tar, non = _as_arrays(tar_llr10, non_llr10)
    c_t = np.mean(_softplus(-tar * LN10)) / math.log(2)
    c_n = np.mean(_softplus(non * LN10)) / math.log(2)
    return float(0.5 * (c_t + c_n))


def min_cllr(tar, non) -> float:
    """Cllr after the optimal monotonic (PAV) calibration of the scores."""
    tar, non = _as_arrays(tar, non)
    scores = np.concatenate([tar, non])
    labels = np.concatenate([np.ones(len(tar)), np.zeros(len(non))])
    order = np.lexsort((-labels, scores))
    post = np.clip(pav(labels[order]), 1e-12, 1 - 1e-12)
    prior_logodds = math.log(len(tar) / len(non))
    llr = (np.log(post) - np.log1p(-post) - prior_logodds) / LN10
    lab = labels[order]
    return cllr(llr[lab == 1], llr[lab == 0])


def summary(tar_scores, non_scores, tar_llr10=None, non_llr10=None, p_target: float = DEFAULT_P_TARGET) -> dict:
    """EER, minDCF (and actDCF, Cllr, min Cllr when LRs are given) as one dict."""
    d = {
        "n_target": int(len(tar_scores)),
        "n_nontarget": int(len(non_scores)),
        "eer": eer(tar_scores, non_scores),
        "p_target": p_target,
        "min_dcf": min_dcf(tar_scores, non_scores, p_target),
    }
    if tar_llr10 is not None and non_llr10 is not None:
        d["act_dcf"] = act_dcf(tar_llr10, non_llr10, p_target)
        d["cllr"] = cllr(tar_llr10, non_llr10)
        d["min_cllr"] = min_cllr(tar_llr10, non_llr10)
    return d


# ------------------------------------------------------------------------------------- calibration
def fit_logistic(
    tar: Sequence[float] | np.ndarray, non: Sequence[float] | np.ndarray, prior: float = 0.5, l2: float = 1e-3
) -> tuple[np.ndarray, float]:
    """Prior-weighted logistic regression: weights ``w`` and offset ``b`` with ln LR = x.w + b.

    ``tar``/``non`` are (n,) scores or (n, d) feature matrices. Each class carries total weight
    ``prior`` / ``1 - prior`` whatever its count (BOSARIS ``train_llr_fusion``), so the fit does not
    depend on the proportion of target trials. ``l2`` is a small ridge on the weights.
    """
    from scipy.optimize import minimize

    xt = np.asarray(tar, dtype=np.float64)
    xn = np.asarray(non, dtype=np.float64)
    if xt.ndim == 1:
        xt, xn = xt[:, None], xn[:, None]
    if len(xt) < 2 or len(xn) < 2:
        raise ValueError("calibration needs at least 2 target and 2 non-target trials")
    d = xt.shape[1]
    off = logit(prior)
    wt, wn = prior / len(xt), (1 - prior) / len(xn)

    def obj(theta):
        w, b = theta[:d], theta[d]
        zt = xt @ w + b + off
        zn = xn @ w + b + off
        f = wt * _softplus(-zt).sum() + wn * _softplus(zn).sum() + l2 * float(w @ w)
        gt = -wt / (1 + np.exp(zt))  # d/dz softplus(-z) = -sigmoid(-z)
        gn = wn / (1 + np.exp(-zn))  # d/dz softplus(z) = sigmoid(z)
        gw = xt.T @ gt + xn.T @ gn + 2 * l2 * w
        gb = gt.sum() + gn.sum()
        return f, np.concatenate([gw, [gb]])

    res = minimize(obj, np.zeros(d + 1), jac=True, method="L-BFGS-B")
    return res.x[:d], float(res.x[d])


def bounds_for(n_target: int, n_nontarget: int) -> tuple[float, float]:
    """Limits on the log10 LR a calibration fitted on these trial counts can support.

    A likelihood ratio of 10^k for the same-speaker proposition claims that such a score is 10^k
    times rarer for different speakers; with N non-target trials no rate below about 1/N was ever
    observed, so we cap log10 LR at log10(N_nontarget), and symmetrically at -log10(N_target)
    (a conservative simplification of the ELUB method of Vergeer et al., 2016).
    """
    return (-math.log10(max(n_target, 10)), math.log10(max(n_nontarget, 10)))


# ---------------------------------------------------------------------------------- condition model
@dataclass
class ConditionModel:
    """Cohort and calibration for one recording condition."""

    condition: str
    cohort: np.ndarray  # (n, 192) raw embeddings of the cohort in this condition
    top_n: int
    weights: np.ndarray  # logistic weights on the features
    bias: float
    features: tuple[str, ...] = ("snorm",)
    source: str = "shipped"  # "shipped" or the store calibration file
    info: dict = field(default_factory=dict)
    bounds: tuple[float, float] = (-6.0, 6.0)  # log10 LR limits (see bounds_for)

    def __post_init__(self):
        self.mean = self.cohort.mean(axis=0)
        self.cohort_c = l2_normalize(self.cohort - self.mean)

    def center(self, x: np.ndarray) -> np.ndarray:
        return l2_normalize(np.asarray(x, dtype=np.float64) - self.mean)

    def cohort_stats(self, xc: np.ndarray, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of the ``top_n`` cohort scores of centred embeddings ``xc`` (n, d)."""
        s = np.atleast_2d(xc) @ self.cohort_c.T
        if exclude is not None:
            s = np.where(exclude, -np.inf, s)
        n = min(self.top_n, s.shape[1])
        top = -np.sort(-s, axis=1)[:, :n]
        top = np.where(np.isfinite(top), top, np.nan)
        mu = np.nanmean(top, axis=1)
        sd = np.maximum(np.nanstd(top, axis=1), 1e-4)
        return mu, sd

    def score_matrix(
        self, enrol: np.ndarray, test: np.ndarray, enrol_exclude=None, test_exclude=None
    ) -> dict[str, np.ndarray]:
        """All scores of enrolments (m, d) against tests (n, d): raw, centred, snorm, llr (log10)."""
        enrol = l2_normalize(np.atleast_2d(enrol))
        test = l2_normalize(np.atleast_2d(test))
        raw = enrol @ test.T
        ec, tc = self.center(enrol), self.center(test)
        cen = ec @ tc.T
        me, se = self.cohort_stats(ec, enrol_exclude)
        mt, st = self.cohort_stats(tc, test_exclude)
        sn = 0.5 * ((cen - me[:, None]) / se[:, None] + (cen - mt[None, :]) / st[None, :])
        feats = {"raw": raw, "centered": cen, "snorm": sn, "crowd": 0.5 * (me[:, None] + mt[None, :])}
        return {**feats, "llr": self.llr10(feats)}

    def score_pairs(self, enrol: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
        """Row-wise scores of enrolment i against test i (both (n, d))."""
        enrol = l2_normalize(np.atleast_2d(enrol))
        test = l2_normalize(np.atleast_2d(test))
        raw = np.sum(enrol * test, axis=1)
        ec, tc = self.center(enrol), self.center(test)
        cen = np.sum(ec * tc, axis=1)
        me, se = self.cohort_stats(ec)
        mt, st = self.cohort_stats(tc)
        sn = 0.5 * ((cen - me) / se + (cen - mt) / st)
        feats = {"raw": raw, "centered": cen, "snorm": sn, "crowd": 0.5 * (me + mt)}
        return {**feats, "llr": self.llr10(feats)}

    def llr10(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        """Calibrated log10 likelihood ratio of the scores, clipped to the empirical bounds."""
        ln_lr = sum(w * feats[f] for w, f in zip(self.weights, self.features)) + self.bias
        lo, hi = self.bounds
        return np.clip(ln_lr / LN10, lo, hi)

    def features_of(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        return np.stack([np.ravel(scores[f]) for f in self.features], axis=1)

    def index_pairs(
        self,
        enrol: np.ndarray,
        test: np.ndarray,
        pairs: np.ndarray,
        enrol_exclude: np.ndarray | None = None,
        test_exclude: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Scores of ``pairs`` (k, 2) of row indices into ``enrol`` (m, d) and ``test`` (n, d).

        Cohort statistics are computed once per row; ``*_exclude`` (rows, cohort) masks cohort
        members that must not normalise that row (the same recording or speaker).
        """
        ec, tc = self.center(l2_normalize(enrol)), self.center(l2_normalize(test))
        me, se = self.cohort_stats(ec, enrol_exclude)
        mt, st = self.cohort_stats(tc, test_exclude)
        i, j = pairs[:, 0], pairs[:, 1]
        raw = np.sum(l2_normalize(enrol)[i] * l2_normalize(test)[j], axis=1)
        cen = np.sum(ec[i] * tc[j], axis=1)
        sn = 0.5 * ((cen - me[i]) / se[i] + (cen - mt[j]) / st[j])
        feats = {"raw": raw, "centered": cen, "snorm": sn, "crowd": 0.5 * (me[i] + mt[j])}
        return {**feats, "llr": self.llr10(feats)}

    def fit(
        self, tar_feats: dict[str, np.ndarray], non_feats: dict[str, np.ndarray], prior: float = 0.5, l2: float = 1e-3
    ) -> ConditionModel:
        """Fit the logistic calibration on target / non-target scores (as from ``index_pairs``)."""
        xt = self.features_of(tar_feats)
        xn = self.features_of(non_feats)
        w, b = fit_logistic(xt, xn, prior=prior, l2=l2)
        self.weights, self.bias = np.asarray(w, dtype=np.float64), float(b)
        self.bounds = bounds_for(len(xt), len(xn))
        self.info["trials"] = {"target": int(len(xt)), "nontarget": int(len(xn))}
        return self

    def to_dict(self, cohort_file: str) -> dict:
        return {
            "cohort": cohort_file,
            "cohort_size": int(len(self.cohort)),
            "top_n": int(self.top_n),
            "features": list(self.features),
            "weights": [float(w) for w in self.weights],
            "bias": float(self.bias),
            **self.info,
        }


@dataclass
class CalibrationSet:
    """The models for every condition, plus where they came from."""

    model_id: str
    weights_sha256: str
    conditions: dict[str, ConditionModel]
    meta: dict = field(default_factory=dict)

    def get(self, condition: str) -> ConditionModel:
        if condition not in self.conditions:
            raise CalibrationError(
                f"no calibration for recording condition {condition!r} (have: {', '.join(self.conditions)})"
            )
        return self.conditions[condition]


def _load_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"{path}: calibration file missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationError(f"{path}: corrupt calibration file ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict) or d.get("schema") != SCHEMA or not isinstance(d.get("conditions"), dict):
        raise CalibrationError(f"{path}: not an {SCHEMA} calibration file")
    return d


def _load_cohort(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CalibrationError(f"{path}: cohort embeddings missing") from None
    except Exception as e:
        raise CalibrationError(f"{path}: corrupt cohort embeddings ({str(e).splitlines()[0]})") from None
    if arr.ndim != 2 or arr.shape[1] != EMBEDDING_DIM or len(arr) < 2 or not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{path}: cohort embeddings have shape {arr.shape}, expected (n, {EMBEDDING_DIM})")
    return arr.astype(np.float64)


def _check_model(path: Path, d: dict, model_id: str | None, weights_sha256: str | None) -> None:
    m = d.get("model") or {}
    if path.name == STORE_FILE:
        fix = (
            f"refit it with `audiotools voiceprint calibrate --trials K.tsv --voiceprints {path.parent}` "
            f"or drop it with `audiotools voiceprint calibrate --reset --voiceprints {path.parent}`"
        )
    else:
        fix = "refit it with `python benchmarks/verify.py --write-calibration`"
    if model_id and m.get("id") != model_id:
        raise CalibrationError(f"{path}: fitted for embedding model {m.get('id')!r}, not {model_id!r}; {fix}")
    if weights_sha256 and m.get("weights_sha256") and m["weights_sha256"] != weights_sha256:
        raise CalibrationError(
            f"{path}: fitted for other weights of {model_id} "
            f"(sha256 {m['weights_sha256'][:12]}…, current {weights_sha256[:12]}…); {fix}"
        )


def _model_from(
    path: Path, c: str, p: dict, cohort: np.ndarray, source: str, base: ConditionModel | None = None
) -> ConditionModel:
    try:
        m = ConditionModel(
            condition=c,
            cohort=cohort,
            top_n=int(p.get("top_n", base.top_n if base else 0) or p["top_n"]),
            weights=np.asarray(p["weights"], dtype=np.float64),
            bias=float(p["bias"]),
            features=tuple(p.get("features") or (base.features if base else ("snorm",))),
            source=source,
            info={k: p[k] for k in ("fitted_on", "trials", "held_out") if k in p},
        )
        lo, hi = p.get("llr_bounds", base.bounds if base else (-6.0, 6.0))
        m.bounds = (float(lo), float(hi))
    except (KeyError, TypeError, ValueError) as e:
        raise CalibrationError(f"{path}: malformed entry for condition {c!r} ({e})") from None
    if len(m.weights) != len(m.features) or any(f not in ("raw", "centered", "snorm", "crowd") for f in m.features):
        raise CalibrationError(f"{path}: malformed entry for condition {c!r} (features/weights)")
    return m


def load(
    store_dir: str | Path | None = None, model_id: str | None = None, weights_sha256: str | None = None
) -> CalibrationSet:
    """The shipped calibration, with a store's refit (``<store>/_calibration.json``) laid over it."""
    if not SHIPPED.is_file():
        raise ModelError(f"{SHIPPED}: shipped calibration missing from the installation")
    base = _load_json(SHIPPED)
    _check_model(SHIPPED, base, model_id, weights_sha256)
    conds: dict[str, ConditionModel] = {}
    for c, p in base["conditions"].items():
        if not isinstance(p, dict) or "cohort" not in p:
            raise CalibrationError(f"{SHIPPED}: malformed entry for condition {c!r}")
        conds[c] = _model_from(SHIPPED, c, p, _load_cohort(DATA_DIR / Path(p["cohort"]).name), "shipped")
    meta = {"shipped": str(SHIPPED), "store": None}
    if store_dir is not None:
        sp = Path(store_dir) / STORE_FILE
        if sp.is_file():
            d = _load_json(sp)
            _check_model(sp, d, model_id, weights_sha256)
            for c, p in d["conditions"].items():
                if c in conds and isinstance(p, dict):
                    conds[c] = _model_from(sp, c, p, conds[c].cohort, str(sp), base=conds[c])
            meta["store"] = str(sp)
    return CalibrationSet(
        model_id=base["model"]["id"],
        weights_sha256=base["model"].get("weights_sha256", ""),
        conditions=conds,
        meta=meta,
    )
