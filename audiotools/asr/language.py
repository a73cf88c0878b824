"""Language identification restricted to candidate languages (``--languages ru,uk,be,en``).

Whisper's language identification is one decoder step after the start-of-transcript token: a
softmax over its ~100 language tokens. When the user knows the recording is in one of a few
languages, every other language is only a way to be wrong (base calls a 1 s Russian clip
Portuguese, espeak-ng's Russian Polish). With candidates, each window's probabilities are kept for
the candidates only and renormalised to sum to 1 over them, P(lang | window, lang in candidates),
then averaged over the windows used (weighted by their duration), as without candidates.

Kept apart from the engine, so that options can be checked without loading torch or the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from audiotools.errors import UsageError


def known_languages() -> dict[str, str]:
    """Whisper's language codes and names (``whisper.tokenizer.LANGUAGES``)."""
    from whisper.tokenizer import LANGUAGES

    return dict(LANGUAGES)


def check_candidates(candidates: Iterable[str], multilingual: bool = True) -> tuple[str, ...]:
    """The candidate codes, lowercased, de-duplicated in order; a UsageError for an unknown code or a
    set an English-only model cannot serve."""
    out = tuple(dict.fromkeys(c.strip().lower() for c in candidates if c.strip()))
    if not out:
        raise UsageError("--languages needs at least one language code (e.g. ru,uk,be,en)")
    known = known_languages()
    unknown = [c for c in out if c not in known]
    if unknown:
        raise UsageError(
            f"--languages: unknown language code(s) {', '.join(unknown)} (Whisper's codes: en, ru, uk, be, pl, de, ...)"
        )
    if not multilingual and "en" not in out:
        raise UsageError("--languages: this model is English-only; the candidates must include 'en'")
    return out


def check_language(language: str) -> str:
    """Whisper's code for ``language`` (a code such as ``ru`` or a name such as ``Russian``, any case);
    a UsageError for one Whisper does not know."""
    from whisper.tokenizer import TO_LANGUAGE_CODE

    code = language.strip().lower()
    code = TO_LANGUAGE_CODE.get(code, code)
    if code not in known_languages():
        raise UsageError(
            f"--language: unknown language {language!r} "
            "(Whisper's codes: en, ru, uk, be, pl, de, ...; or a name such as Russian)"
        )
    return code


def restrict(probs: Mapping[str, float], candidates: Iterable[str] | None) -> dict[str, float]:
    """``probs`` over the ``candidates`` only, renormalised to sum to 1 (all of ``probs`` when None).

    A candidate missing from ``probs`` gets 0; when every candidate has probability 0 (cannot
    happen with a softmax, but guards a degenerate input) they share it equally."""
    if candidates is None:
        return dict(probs)
    cands = list(candidates)
    kept = {c: float(probs.get(c, 0.0)) for c in cands}
    total = sum(kept.values())
    if total <= 0.0:
        return {c: 1.0 / len(cands) for c in cands}
    return {c: v / total for c, v in kept.items()}


def combine(window_probs: list[Mapping[str, float]], weights: list[float], candidates=None) -> dict[str, float]:
    """One distribution for a file from its windows': each restricted to the candidates, then the
    weighted mean (weights: the windows' durations)."""
    total: dict[str, float] = {}
    for p, w in zip(window_probs, weights):
        for k, v in restrict(p, candidates).items():
            total[k] = total.get(k, 0.0) + v * w
    norm = sum(weights[: len(window_probs)]) or 1.0
    return {k: v / norm for k, v in total.items()}


def summary(language: str, probs: Mapping[str, float] | None, candidates, windows: int, forced: bool) -> dict:
    """The transcript's ``language_detection`` block: the language, its probability, the candidate
    set, the probabilities (every candidate; without candidates the five likeliest) and the number
    of windows detection used. A forced language (``--language``) has no probabilities."""
    if forced:
        return {"language": language, "forced": True, "candidates": list(candidates) if candidates else None}
    probs = dict(probs or {})
    top = sorted(probs.items(), key=lambda kv: -kv[1])
    if not candidates:
        top = top[:5]
    return {
        "language": language,
        "probability": round(probs.get(language, 0.0), 4),
        "candidates": list(candidates) if candidates else None,
        "probabilities": {k: round(v, 4) for k, v in top},
        "windows": windows,
    }
