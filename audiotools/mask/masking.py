"""Mask obscene words in transcripts, as newspapers print them ("f***", "б***").

English, Russian, Ukrainian and Belarusian. The detection rules live in
:mod:`audiotools.mask.profanity` (roots + prefixes + endings, not a flat word list); this module is
the public face and the ``mask`` pipeline step::

    from audiotools.mask import Masker, MaskOptions
    m = Masker(MaskOptions(style="first", language="ru"))
    m.mask_text("Ну пиздец, приехали.")      # 'Ну п*****, приехали.'
    n = m.mask_transcript(transcript)          # in place; returns the number of masked words

Masking changes word text only, never timestamps. See docs/masking.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from audiotools.errors import UsageError
from audiotools.mask.profanity.engine import LANGUAGES, Detector, Span
from audiotools.mask.profanity.wordlists import load_word_file, parse_words
from audiotools.options import Options, private

__all__ = ["MaskOptions", "Masker", "load_word_file", "parse_words", "LANGUAGES", "run_step"]

TAG = "[expletive]"
ENGINE = "audiotools.masking/1"


WordFiles = str | tuple[str, ...] | None


@dataclass(frozen=True)
class MaskOptions(Options):
    """The ``mask`` step (and ``audiotools mask``). By default every language's rules apply, whatever
    was detected: Russian speech often carries English swearing and the reverse; ``language``
    restricts them."""

    STEP: ClassVar[str] = "mask"

    enabled: bool = True
    style: Literal["stars", "first", "tag"] = "stars"  # '****', 'f***', '[expletive]'
    language: str | None = None  # "en" | "ru" | "uk" | "be"; None or "all": every language
    mask_words: WordFiles = None  # word file(s): extra words to mask (one word or stem* per line)
    allow_words: WordFiles = None  # word file(s): words never to mask
    # also write the unmasked transcript JSON here (mode 0600); "{stem}" in the path is each file's
    # output stem, which a run of several files needs (unmasked_copy_path). The masked transcript's
    # parameters record only that it is set (true): a masked export that is handed on would otherwise
    # say where the unmasked text lies
    unmasked_copy: str | None = private()

    def content_ids(self) -> dict:
        """The sha256 of each word file (``mask_words``, ``allow_words``), checked as word files."""
        from audiotools.fileio import sha256_file

        out = {}
        for name in ("mask_words", "allow_words"):
            files = getattr(self, name)
            paths = [files] if isinstance(files, str) else list(files or ())
            for p in paths:
                load_word_file(p)  # a missing or malformed file: its one-line error, now
            if paths:
                out[name] = [sha256_file(p) for p in paths]
        return out

    def check(self) -> None:
        if self.language not in (None, "all", *LANGUAGES):
            raise UsageError(
                f"masking does not support language {self.language!r} "
                f"(supported: {', '.join(LANGUAGES)}, or none for all)"
            )


class Masker:
    """Finds and masks obscene words. Thread-safe for reading; cheap to reuse, costly to build."""

    def __init__(self, options: MaskOptions | None = None):
        self.options = options = options or MaskOptions()
        language = None if options.language == "all" else options.language
        self.detector = Detector(language, extra=_words_of(options.mask_words), allow=_words_of(options.allow_words))

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
            out.append(text[pos : s.start])
            out.append(self._mask_span(text[s.start : s.end], s))
            pos = s.end
        out.append(text[pos:])
        return "".join(out)

    def _mask_span(self, piece: str, span: Span) -> str:
        style = self.options.style
        if style == "tag":
            return TAG
        if span.letters:  # spelled out: mask the letters, keep the separators
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
                if self.options.style == "tag":  # one tag for the whole spelled-out word
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
STEM_FIELD = "{stem}"


def unmasked_copy_path(template: str, stem: str) -> Path:
    """Where a file's unmasked copy goes: ``template`` with ``{stem}`` replaced by the file's output
    stem (``private/{stem}.raw.json`` -> ``private/a/talk.raw.json``)."""
    return Path(template.replace(STEM_FIELD, stem))


def check_unmasked_copy(template: str, stems: list[str] | None) -> Path:
    """The path of the first file's unmasked copy; a ``UsageError`` when several files (``stems``;
    None: a batch, any number) would all be written to one path without ``{stem}``."""
    if STEM_FIELD not in template and (stems is None or len(set(stems)) > 1):
        raise UsageError(
            f"--unmasked-copy {template}: every input's unmasked transcript would go to that one file; "
            f"put {STEM_FIELD} in the path, e.g. private/{STEM_FIELD}.raw.json"
        )
    return unmasked_copy_path(template, stems[0] if stems else "x")


def run_step(job, options: MaskOptions) -> None:
    """The ``mask`` pipeline step: optional unmasked copy, then mask ``job.transcript`` in place."""
    transcript = job.transcript
    masker = Masker(options)  # fail on bad word files before writing anything
    if options.unmasked_copy:
        from audiotools.fileio import atomic_write_text

        stem = getattr(job, "name", None) or Path(transcript.audio.path).stem
        atomic_write_text(unmasked_copy_path(options.unmasked_copy, stem), transcript.to_json(), perms=0o600)
    n = masker.mask_transcript(transcript)
    transcript.extra["masking"] = {
        "style": options.style,
        "masked_words": n,
        "engine": ENGINE,
        "unmasked_copy": bool(options.unmasked_copy),
    }


def _words_of(files: WordFiles) -> tuple[str, ...]:
    paths = [files] if isinstance(files, str) else list(files or ())
    return tuple(w for p in paths for w in load_word_file(p))
