"""Word files: one word or stem per line, ``#`` starts a comment, a trailing ``*`` makes a stem.

    # extra words to mask
    гандон*        # a stem: гандон, гандоны, гандонами ...
    wazzock        # one word (any case)

Entries are compared with the normalised token (lower case, ё -> е, Cyrillic/Latin look-alike
letters resolved, and for Cyrillic entries the shared Slavic spelling: і -> и, є -> е,
ў -> в, apostrophe -> ъ), so ``їбати``, ``ЇБАТИ`` and ``ïбати`` are one entry.
"""

from __future__ import annotations

import os
from pathlib import Path

from audiotools.errors import InputError
from audiotools.mask.profanity.normalize import fold, script_of, slavic_canonical, to_cyrillic, to_latin

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "profanity"


def load_word_file(path: str | os.PathLike) -> list[str]:
    """The entries of a word file (comments and blank lines dropped, order kept)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(p, "word file not found") from None
    except IsADirectoryError:
        raise InputError(p, "is a directory, expected a word file") from None
    except OSError as e:
        raise InputError(p, f"cannot read word file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(p, f"word file is not UTF-8 text (byte {e.start})") from None
    if "\x00" in text:
        raise InputError(p, "word file is not text (contains NUL bytes)")
    return parse_words(text)


def parse_words(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def normalise_entry(entry: str) -> str:
    e = fold(entry.strip())
    if script_of(e) == "cyr":
        return slavic_canonical(to_cyrillic(e))
    if script_of(e) == "lat":
        return to_latin(e)
    return e


class WordSet:
    """Exact words and ``stem*`` prefixes, normalised."""

    def __init__(self, entries=()):
        self.exact: set[str] = set()
        self.stems: list[str] = []
        for entry in entries:
            self.add(entry)

    def add(self, entry: str) -> None:
        entry = entry.strip()
        if not entry:
            return
        if entry.endswith("*"):
            stem = normalise_entry(entry.rstrip("*"))
            if stem:
                self.stems.append(stem)
        else:
            self.exact.add(normalise_entry(entry))

    def __bool__(self) -> bool:
        return bool(self.exact or self.stems)

    def matches(self, form: str) -> bool:
        return form in self.exact or any(form.startswith(s) for s in self.stems)

    def matches_any(self, forms) -> bool:
        return any(self.matches(f) for f in forms)


def builtin(kind: str, languages) -> WordSet:
    """The shipped ``<lang>_<kind>.txt`` lists (kind: ``allow`` or ``extra``) for ``languages``."""
    ws = WordSet()
    for lang in languages:
        p = DATA_DIR / f"{lang}_{kind}.txt"
        if p.is_file():
            for e in load_word_file(p):
                ws.add(e)
    return ws
