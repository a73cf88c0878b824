"""Normalisation before matching: scripts, look-alike letters, leetspeak, stretched letters.

Everything here returns *candidate forms* of one token; the grammars decide whether any of
them is obscene. Nothing here changes the text that is eventually written out.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

# Latin letters that look like Cyrillic ones (inside a mostly Cyrillic word -> Cyrillic).
LAT_TO_CYR = str.maketrans(
    {
        "a": "а",
        "b": "в",
        "c": "с",
        "e": "е",
        "h": "н",
        "k": "к",
        "m": "м",
        "o": "о",
        "p": "р",
        "t": "т",
        "x": "х",
        "y": "у",
        "i": "і",
        "u": "и",
    }
)
# ``u`` is not a look-alike of ``и`` in print, but it is how people type ``и`` on a Latin
# keyboard; it is only used when the rest of the word is Cyrillic.

# Cyrillic letters that look like Latin ones (inside a mostly Latin word -> Latin).
CYR_TO_LAT = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ӏ": "l",
        "ѵ": "v",
    }
)

_LATIN = re.compile(r"[a-z]")
_CYR = re.compile(r"[а-яёіїєўґ]")

APOSTROPHES = "'’ʼ`´‘"

# Leetspeak and obfuscation symbols -> the letters they may stand for (Latin words).
LEET_LAT = {
    "0": "ou",
    "1": "il",
    "!": "il",
    "|": "l",
    "3": "e",
    "4": "a",
    "@": "a",
    "5": "s",
    "$": "s",
    "7": "t",
    "8": "b",
    "9": "g",
    "6": "g",
}
# ... and inside Cyrillic words (6 for б, 3 for з, @ for а, 0 for о).
LEET_CYR = {"0": "о", "@": "а", "6": "б", "3": "з", "4": "ч", "1": "и", "!": "и", "$": "с"}

WILDCARD = "*"
ALPHA_LAT = "abcdefghijklmnopqrstuvwxyz"
ALPHA_CYR = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєў"
# With three or more wildcards only the letters that actually get starred out are tried.
LIKELY_LAT = "aeiouyckstlh"
LIKELY_CYR = "аеиоуяюйбдхзклнпст"

MAX_VARIANTS = 1500


def fold(text: str) -> str:
    """Lower-case and strip combining accents (stress marks ``а́``), keep й/ё/ї/ў as letters."""
    text = unicodedata.normalize("NFC", text).lower()
    if any(unicodedata.combining(ch) for ch in unicodedata.normalize("NFD", text)):
        out = []
        for ch in text:
            if ch in "йёїўЙЁЇЎ":
                out.append(ch)
                continue
            dec = unicodedata.normalize("NFD", ch)
            out.append("".join(c for c in dec if not unicodedata.combining(c)))
        text = unicodedata.normalize("NFC", "".join(out))
    return text


def script_of(word: str) -> str:
    """``"cyr"``, ``"lat"``, ``"both"`` (only look-alike letters, could be either) or ``""``."""
    w = fold(word)
    cyr = len(_CYR.findall(w))
    lat = len(_LATIN.findall(w))
    if not cyr and not lat:
        return ""
    if cyr > lat:
        return "cyr"
    if lat > cyr:
        return "lat"
    return "both"


def only_lookalikes(word: str) -> bool:
    """True when every letter of ``word`` has a twin in the other script (``cyka``, ``сос``)."""
    w = fold(word)
    letters = [c for c in w if c.isalpha()]
    if not letters:
        return False
    lat_ok = all(c in "abcehkmoptxyiu" for c in letters)
    cyr_ok = all(c in "авеикмнорстухі" for c in letters)
    return lat_ok or cyr_ok


def to_cyrillic(word: str) -> str:
    return fold(word).translate(LAT_TO_CYR)


def to_latin(word: str) -> str:
    return fold(word).translate(CYR_TO_LAT)


def slavic_canonical(word: str) -> str:
    """One spelling for Russian, Ukrainian and Belarusian forms of the same root.

    ё/є -> е, і -> и, ў -> в, apostrophes -> ъ (uk/be write ``з'їбатися`` / ``раз'ебаць``),
    Belarusian дз -> д (``піздзец``), шч -> щ (``уебішча``), final ць -> ть (``бляць``, ``ебаць``). ї is kept: it is a
    root vowel of its own in Ukrainian (``їбати``).
    """
    w = word.replace("ё", "е").replace("є", "е").replace("і", "и").replace("ў", "в")
    for a in APOSTROPHES:
        w = w.replace(a, "ъ")
    w = w.replace("дз", "д").replace("шч", "щ")
    if w.endswith("ць"):
        w = w[:-2] + "ть"
    w = w.replace("цца", "тса").replace("цці", "тси")
    return w


def expand_symbols(word: str, leet: dict[str, str], alphabet: str, likely: str) -> list[str]:
    """Every reading of the leetspeak symbols and ``*`` wildcards in ``word`` (bounded)."""
    if not any(ch in leet or ch == WILDCARD for ch in word):
        return [word]
    letters = sum(1 for ch in word if ch.isalpha())
    stars = word.count(WILDCARD)
    # "a**" is a starred word; "е6", "b4" are codes, not leetspeak
    if letters < 1 or (letters < 2 and len(word) - stars - letters > 0) or len(word) < 3:
        return []
    # likely letters first, so the bound on variants cuts off the unlikely readings
    star_choices = likely + "".join(c for c in alphabet if c not in likely) if stars <= 2 else likely
    options = []
    for ch in word:
        if ch == WILDCARD:
            options.append(star_choices)
        elif ch in leet:
            options.append(leet[ch])
        else:
            options.append(ch)
    out = []
    for combo in itertools.product(*options):
        out.append("".join(combo))
        if len(out) >= MAX_VARIANTS:
            break
    return out


_RUN3 = re.compile(r"(.)\1{2,}")


def stretch_variants(word: str, collapse_doubles: bool = False) -> list[str]:
    """``fuuuck`` -> ``fuck``; ``asssss`` -> ``ass``; optionally ``ссука`` -> ``сука``."""
    out = [word]
    if _RUN3.search(word):
        out.append(_RUN3.sub(r"\1", word))
        out.append(_RUN3.sub(r"\1\1", word))
    if collapse_doubles and len(word) > 2 and word[0] == word[1]:  # ссука
        out.append(word[1:])
    return list(dict.fromkeys(out))
