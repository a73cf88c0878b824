"""Mask obscene words in transcripts, as newspapers print them ("f***", "б***").

English, Russian, Ukrainian and Belarusian. The detection rules live in
:mod:`audiotools.mask.profanity` (roots + prefixes + endings, not a flat word list); this module is
the public face and the ``mask`` pipeline step::

    from audiotools.mask.masking import Masker, MaskOptions
    m = Masker(MaskOptions(style="first", language="ru"))
    m.mask_text("Ну пиздец, приехали.")      # 'Ну п*****, приехали.'
    n = m.mask_transcript(transcript)          # in place; returns the number of masked words

Masking changes word text only, never timestamps. See docs/masking.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from audiotools.errors import UsageError
from audiotools.mask.profanity.engine import LANGUAGES, Detector, Span
from audiotools.mask.profanity.wordlists import load_word_file, parse_words

__all__ = ["MaskOptions", "Masker", "load_word_file", "parse_words", "STYLES", "LANGUAGES",
           "STEP_PARAMS", "run_step", "add_cli_options", "cli_overrides"]

STYLES = ("stars", "first", "tag")
TAG = "[expletive]"
ENGINE = "audiotools.mask.masking/1"


@dataclass
class MaskOptions:
    style: str = "stars"              # "stars" | "first" | "tag"
    language: str | None = None       # "en" | "ru" | "uk" | "be" | None (all)
    extra_words: tuple[str, ...] = ()
    allow_words: tuple[str, ...] = ()


class Masker:
    """Finds and masks obscene words. Thread-safe for reading; cheap to reuse, costly to build."""

    def __init__(self, options: MaskOptions | None = None):
        self.options = options = options or MaskOptions()
        if options.style not in STYLES:
            raise UsageError(f"unknown mask style {options.style!r} (choose from {', '.join(STYLES)})")
        if options.language is not None and options.language not in LANGUAGES:
            raise UsageError(f"masking does not support language {options.language!r} "
                             f"(supported: {', '.join(LANGUAGES)}, or none for all)")
        self.detector = Detector(options.language, extra=tuple(options.extra_words),
                                 allow=tuple(options.allow_words))

    # ------------------------------------------------------------------ words and text
    def is_profane(self, word: str) -> bool:
        """True when ``word`` (punctuation and spaces around it allowed) contains an obscene word."""
        return bool(self.detector.spans(word))

    def mask_word(self, word: str) -> str:
        """``word`` with its obscene part masked; whitespace and punctuation around it kept."""
        return self.mask_text(word)

    def mask_text(self, text: str) -> str:
        """Every obscene word in ``text`` masked, including spelled-out ones ("f u c k")."""
        return self._apply(text, self.detector.spans(text))

    def _apply(self, text: str, spans: list[Span]) -> str:
        if not spans:
            return text
        out = []
        pos = 0
        for s in spans:
            out.append(text[pos:s.start])
            out.append(self._mask_span(text[s.start:s.end], s))
            pos = s.end
        out.append(text[pos:])
        return "".join(out)

    def _mask_span(self, piece: str, span: Span) -> str:
        style = self.options.style
        if style == "tag":
            return TAG
        if span.letters:      # spelled out: mask the letters, keep the separators
            rel = [p - span.start for p in span.letters]
            chars = list(piece)
            for k, r in enumerate(rel):
                if k == 0 and style == "first":
                    continue
                chars[r] = "*"
            return "".join(chars)
        if style == "first":
            return piece[0] + "*" * (len(piece) - 1)
        return "*" * len(piece)

    # ------------------------------------------------------------------ transcripts
    def mask_transcript(self, transcript) -> int:
        """Mask ``transcript`` in place; returns how many words were masked.

        Segments with words: each ``Word.word`` is masked (``Word.masked`` set) and the segment
        text rebuilt from the words. Segments without words: the text is masked. Timestamps are
        never touched.
        """
        count = 0
        for seg in transcript.segments:
            if seg.words:
                count += self._mask_words(seg.words)
                seg.text = "".join(w.word for w in seg.words)
            else:
                spans = self.detector.spans(seg.text)
                count += len(spans)
                seg.text = self._apply(seg.text, spans)
        return count

    def _mask_words(self, words) -> int:
        count = 0
        for w in words:
            new = self.mask_word(w.word)
            if new != w.word:
                w.word = new
                w.masked = True
                count += 1
        # Letters spoken one by one come out as one Word each (" f", " u", " c", " k").
        texts = [w.word for w in words]
        joined = "".join(texts)
        for s in self.detector.spans(joined):
            if not s.letters:
                continue
            starts, acc = [], 0
            for t in texts:
                starts.append(acc)
                acc += len(t)
            hit = [i for i, st in enumerate(starts) if any(st <= p < st + len(texts[i]) for p in s.letters)]
            if len(hit) < 2 or any(words[i].masked for i in hit):
                continue
            for k, i in enumerate(hit):
                w = words[i]
                if self.options.style == "tag":   # one tag for the whole spelled-out word
                    new = w.word.replace(w.word.strip(), TAG, 1) if k == 0 else ""
                elif self.options.style == "first" and k == 0:
                    continue
                else:
                    core = w.word.strip()
                    new = w.word.replace(core, "*" * len(core), 1)
                if new != w.word:
                    w.word = new
                    w.masked = True
                    count += 1
        return count


# ---------------------------------------------------------------------- pipeline step
STEP_PARAMS = {"enabled": True, "style": "stars", "language": None, "mask_words": None,
               "allow_words": None, "unmasked_copy": None}


def _word_files(value) -> tuple[str, ...]:
    if not value:
        return ()
    paths = [value] if isinstance(value, (str, os.PathLike)) else list(value)
    words: list[str] = []
    for p in paths:
        words.extend(load_word_file(p))
    return tuple(words)


def options_from_params(params: dict, detected_language: str | None = None) -> MaskOptions:
    """Step parameters -> options. By default every language's rules apply, whatever was detected:
    Russian speech often carries English swearing and the reverse. ``language: xx`` restricts them."""
    language = params.get("language")
    if language == "all":
        language = None
    return MaskOptions(style=params.get("style") or "stars", language=language,
                       extra_words=_word_files(params.get("mask_words")),
                       allow_words=_word_files(params.get("allow_words")))


def run_step(job, params: dict) -> None:
    """The ``mask`` pipeline step: optional unmasked copy, then mask ``job.transcript`` in place."""
    params = {**STEP_PARAMS, **(params or {})}
    transcript = job.transcript
    opts = options_from_params(params, getattr(transcript, "language", None))
    masker = Masker(opts)            # fail on bad options/word files before writing anything
    if params.get("unmasked_copy"):
        from audiotools.fileio import atomic_write_text
        atomic_write_text(params["unmasked_copy"], transcript.to_json(), perms=0o600)
    n = masker.mask_transcript(transcript)
    transcript.extra["masking"] = {"style": opts.style, "masked_words": n, "engine": ENGINE}


def add_cli_options(parser) -> None:
    g = parser.add_argument_group("profanity masking")
    g.add_argument("--no-mask", dest="no_mask", action="store_true", default=None,
                   help="do not mask obscene words")
    g.add_argument("--mask-style", dest="mask_style", choices=list(STYLES), default=None,
                   help="stars: '****' (default), first: 'f***', tag: '[expletive]'")
    g.add_argument("--mask-words", dest="mask_words", default=None, metavar="FILE",
                   help="extra words to mask: one word or stem* per line, # comments")
    g.add_argument("--allow-words", dest="allow_words", default=None, metavar="FILE",
                   help="words never to mask (same format)")
    g.add_argument("--unmasked-copy", dest="unmasked_copy", default=None, metavar="PATH",
                   help="also write the unmasked transcript JSON here (mode 0600)")


def cli_overrides(args) -> dict:
    if getattr(args, "no_mask", None):
        return {"enabled": False}
    return {"style": getattr(args, "mask_style", None),
            "mask_words": getattr(args, "mask_words", None),
            "allow_words": getattr(args, "allow_words", None),
            "unmasked_copy": getattr(args, "unmasked_copy", None)}
