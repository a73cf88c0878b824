"""``audiotools mask``: mask obscene words in text read from standard input."""

from __future__ import annotations

import sys

from audiotools.errors import InputError

EPILOG = """\
examples:
  audiotools mask < transcript.txt > published.txt
  echo "what the fuck" | audiotools mask --mask-style first      # what the f***
  audiotools mask --language ru --mask-words extra.txt < text.txt

Word files: one word or stem per line, '#' comments, 'stem*' matches every word starting so.
"""


def register(sub) -> None:
    import argparse

    from audiotools.mask.masking import LANGUAGES, MaskOptions
    from audiotools.options import choices

    p = sub.add_parser(
        "mask",
        help="mask obscene words in text (stdin -> stdout)",
        description="Read text on standard input, write it with obscene words masked "
        "(English, Russian, Ukrainian, Belarusian). Spacing and punctuation "
        "are kept exactly.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--language",
        "-l",
        choices=list(LANGUAGES),
        default=None,
        help="apply only this language's rules (default: all four)",
    )
    p.add_argument(
        "--mask-style",
        dest="mask_style",
        choices=choices(MaskOptions, "style"),
        default="stars",
        help="stars: '****' (default), first: 'f***', tag: '[expletive]'",
    )
    p.add_argument(
        "--mask-words",
        dest="mask_words",
        default=None,
        metavar="FILE",
        help="extra words to mask (one word or stem* per line)",
    )
    p.add_argument(
        "--allow-words", dest="allow_words", default=None, metavar="FILE", help="words never to mask (same format)"
    )
    p.set_defaults(func=run)


def _read_stdin() -> str:
    if sys.stdin.isatty():  # nothing piped in: say what it waits for instead of waiting silently
        from audiotools.cli.common import info

        info("audiotools mask: reading text from the terminal; end with Ctrl-D (or: audiotools mask < FILE)")
    buf = getattr(sys.stdin, "buffer", None)
    if buf is None:  # a StringIO in tests, or an already decoded stream
        return sys.stdin.read()
    data = buf.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError("<stdin>", f"input is not UTF-8 text (byte {e.start})") from None


def _write_stdout(text: str) -> None:
    enc = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    buf = getattr(sys.stdout, "buffer", None)
    if buf is not None and enc != "utf8":
        sys.stdout.flush()
        buf.write(text.encode("utf-8"))
        buf.flush()
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run(args) -> int:
    from audiotools.mask.masking import Masker, MaskOptions

    masker = Masker(
        MaskOptions(
            style=args.mask_style, language=args.language, mask_words=args.mask_words, allow_words=args.allow_words
        )
    )
    _write_stdout(masker.mask_text(_read_stdin()))
    return 0
