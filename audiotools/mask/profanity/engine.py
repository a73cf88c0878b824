"""Tokenisation and detection: which character spans of a text are obscene words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from audiotools.mask.profanity import english
from audiotools.mask.profanity.normalize import (
    ALPHA_CYR,
    ALPHA_LAT,
    APOSTROPHES,
    LEET_CYR,
    LEET_LAT,
    LIKELY_CYR,
    LIKELY_LAT,
    expand_symbols,
    fold,
    only_lookalikes,
    script_of,
    slavic_canonical,
    stretch_variants,
    to_cyrillic,
    to_latin,
)
from audiotools.mask.profanity.slavic import SlavicGrammar
from audiotools.mask.profanity.wordlists import WordSet, builtin

LANGUAGES = ("en", "ru", "uk", "be")
SLAVIC = ("ru", "uk", "be")

# A word: letters/digits plus the symbols people obfuscate with ($hit, a$$, f*ck, @ss), with
# apostrophes or "!" inside (з'їбатися, fucker's, sh!t). Hyphens split words (mother-fucker).
_CH = r"(?:[^\W_]|[@$*])"
_APOS = re.escape(APOSTROPHES)
TOKEN = re.compile(rf"{_CH}+(?:[{_APOS}!]+{_CH}+)*")
# Spelled-out words: single characters separated by one space, dot, hyphen or underscore
# ("f u c k", "f.u.c.k", "х-у-й").
_SINGLE = rf"{_CH}(?![^\W_@$*])"
SPACED = re.compile(rf"(?<![^\W_@$*]){_SINGLE}(?:[ .\-_]{_SINGLE}){{2,}}")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    letters: tuple[int, ...] = ()  # for spelled-out words: positions of the letters only


class Detector:
    """Decides, word by word, what is obscene for a set of languages."""

    def __init__(self, languages=None, extra=(), allow=()):
        langs = tuple(LANGUAGES if not languages else ([languages] if isinstance(languages, str) else languages))
        unknown = [lang for lang in langs if lang not in LANGUAGES]
        if unknown:
            raise ValueError(f"unsupported language(s) {', '.join(unknown)}; supported: {', '.join(LANGUAGES)}")
        self.languages = langs
        self.english = "en" in langs
        slavic = tuple(lang for lang in langs if lang in SLAVIC)
        # The three Slavic languages share one grammar (mixed speech is the rule, not the
        # exception); the language choice decides only whether it runs at all.
        self.slavic = SlavicGrammar(SLAVIC) if slavic else None
        self.extra_user = WordSet(extra)
        self.allow_user = WordSet(allow)
        self.extra_builtin = builtin("extra", langs if not slavic else tuple(set(langs) | set(SLAVIC)))
        self.allow_builtin = builtin("allow", langs if not slavic else tuple(set(langs) | set(SLAVIC)))
        self._cache: dict[str, bool] = {}

    # ------------------------------------------------------------------ single words
    def word_is_obscene(self, token: str) -> bool:
        hit = self._cache.get(token)
        if hit is None:
            hit = self._cache[token] = self._decide(token)
        return hit

    def _forms(self, token: str):
        """(basic forms for the allow lists, cyrillic candidates, latin candidates)."""
        f = fold(token)
        script = script_of(f)
        both = only_lookalikes(f) or script in ("both", "")
        basic, cyr, lat = [f], [], []
        if self.slavic is not None and (script == "cyr" or both):
            c = slavic_canonical(to_cyrillic(f))
            basic.append(c)
            for v in expand_symbols(c, LEET_CYR, ALPHA_CYR, LIKELY_CYR):
                cyr.extend(stretch_variants(slavic_canonical(v), collapse_doubles=True))
        if self.english and (script == "lat" or both):
            l0 = to_latin(f)
            basic.append(l0)
            # English words with apostrophes are judged by their parts (see _token_spans):
            # dropping the apostrophe would turn "who're" into a different word.
            bases = [] if any(a in l0 for a in APOSTROPHES) else [l0]
            for b in bases:
                for v in expand_symbols(b, LEET_LAT, ALPHA_LAT, LIKELY_LAT):
                    v = v.replace("!", "i")
                    for w in {v, v.replace("ph", "f"), v.replace("v", "u")}:
                        lat.extend(stretch_variants(w))
        return basic, list(dict.fromkeys(cyr)), list(dict.fromkeys(lat))

    def _decide(self, token: str) -> bool:
        if not any(ch.isalpha() for ch in token):
            return False
        basic, cyr, lat = self._forms(token)
        if self.allow_user.matches_any(basic):
            return False
        if self.extra_user.matches_any(basic + cyr + lat):
            return True
        if self.allow_builtin.matches_any(basic):
            return False
        if self.extra_builtin.matches_any(basic + cyr + lat):
            return True
        if cyr and any(self.slavic.match(v) for v in cyr):
            return True
        if lat:
            if any(english.match(v) for v in lat):
                return True
            if english.is_bare_dick(token, lat[0]):
                return True
        return False

    # ------------------------------------------------------------------ text
    def spans(self, text: str) -> list[Span]:
        """Obscene stretches of ``text``, in order, not overlapping."""
        spans: list[Span] = []
        for m in SPACED.finditer(text):
            spans.extend(self._spelled_out(m))
        taken = [(s.start, s.end) for s in spans]
        for m in TOKEN.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            spans.extend(self._token_spans(m.group(), m.start()))
        spans.sort(key=lambda s: s.start)
        return spans

    def _token_spans(self, tok: str, offset: int) -> list[Span]:
        if self.word_is_obscene(tok):
            return [Span(offset, offset + len(tok))]
        # a word with apostrophes whose parts are obscene: fuck'n'roll, сука'с
        parts = list(re.finditer(rf"[^{re.escape(APOSTROPHES)}]+", tok))
        if len(parts) > 1:
            return [Span(offset + p.start(), offset + p.end()) for p in parts if self.word_is_obscene(p.group())]
        return []

    def _spelled_out(self, m: re.Match) -> list[Span]:
        chars = [(offset + m.start(), ch) for offset, ch in enumerate(m.group()) if not re.fullmatch(r"[ .\-_]", ch)]
        n = len(chars)
        out = []
        i = 0
        while i <= n - 3:
            for j in range(n, i + 2, -1):
                word = "".join(ch for _, ch in chars[i:j])
                if self.word_is_obscene(word):
                    # drop stray letters in front: "a f u c k" masks "fuck", not "afuck"
                    while j - i > 3 and self.word_is_obscene("".join(ch for _, ch in chars[i + 1 : j])):
                        i += 1
                    pos = tuple(p for p, _ in chars[i:j])
                    out.append(Span(pos[0], pos[-1] + 1, pos))
                    i = j
                    break
            else:
                i += 1
        return out
