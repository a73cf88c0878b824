"""The ``audiotools`` command line. Each sub-command lives in its own module here and
exposes ``register(subparsers)``; the parser stores the handler as ``args.func``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import signal
import sys
import threading

from rich.markup import escape

from audiotools.cli.common import console, set_verbosity
from audiotools.errors import AudiotoolsError
from audiotools.version import __version__

# Order here is the order in --help.
COMMANDS = [
    "transcribe",
    "diarize",
    "identify",
    "verify",
    "voiceprint",
    "mask",
    "provenance",
    "report",
    "batch",
    "models",
    "eval",
]

DESCRIPTION = """\
audiotools turns recordings into evidence: who spoke, when, what they said,
and hashes that tie the transcript to the audio. Runs fully offline.

examples:
  audiotools transcribe interview.mp3 --output-dir out/
  audiotools transcribe call.wav --language ru --output-format json,srt
  audiotools models list
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiotools", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"audiotools {__version__}")
    add_verbosity(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modname = f"{__name__}.{name}_cmd"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(sub)
    for command in sub.choices.values():
        add_verbosity_everywhere(command)
    return parser


def add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", default=default, help="print errors only")
    verbosity.add_argument("-v", "--verbose", action="store_true", default=default, help="print progress details")


def add_verbosity_everywhere(parser: argparse.ArgumentParser) -> None:
    """-q/-v after a sub-command too (``audiotools batch in/ -q``); SUPPRESS keeps what was given
    before the sub-command when they are not repeated after it."""
    add_verbosity(parser, default=argparse.SUPPRESS)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_verbosity_everywhere(child)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.quiet and args.verbose:
        parser.error("-q/--quiet and -v/--verbose together")
    set_verbosity(quiet=args.quiet, verbose=args.verbose)
    # SIGTERM (kill, a scheduler's stop) ends a run as Ctrl-C does: the same clean-up (no partial
    # outputs, decode workers shut down), then exit 143
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except AudiotoolsError as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
        return e.exit_code
    except Terminated:
        console.print("[red]terminated[/]")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C's KeyboardInterrupt would be."""


def _terminated(signum, frame) -> None:
    raise Terminated()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
