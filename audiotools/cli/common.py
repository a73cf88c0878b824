"""Shared CLI helpers: the rich console, verbosity, common option parsing."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.markup import escape

from audiotools.errors import AudiotoolsError

T = TypeVar("T")

# soft_wrap: a line is never broken at the terminal's (or, in a pipe, 80) columns
console = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)
_state = {"quiet": False, "verbose": False}


_printed: set[str] = set()  # warning lines shown in this run: one warning, one line, once


class OneLineHandler(logging.Handler):
    """Log records on the console as the commands' own lines: ``warning: FILE: problem`` /
    ``error: ...`` for warnings and errors, the bare message otherwise; never wrapped (a line stays
    one line when stderr is a file or a pipe), and a warning already shown is not repeated."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # pragma: no cover - logging's own convention
            self.handleError(record)
            return
        if record.levelno >= logging.ERROR:
            console.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True)
        elif record.levelno >= logging.WARNING:
            warn(text)
        else:
            console.print(escape(text), soft_wrap=True)


def warn(text: str) -> None:
    """``warning: TEXT`` on stderr, one line, unless the same warning was already shown."""
    if text in _printed:
        return
    _printed.add(text)
    console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)


def set_verbosity(quiet: bool = False, verbose: bool = False) -> None:
    """Set up the console for one run of a command (``main`` calls it first)."""
    _state.update(quiet=quiet, verbose=verbose)
    _printed.clear()  # "shown once" is per run
    handler = OneLineHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    # other libraries (matplotlib, numba, urllib3 ...) keep to warnings whatever -v says: -v is
    # audiotools' own detail, not their debug logs
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("audiotools").setLevel(logging.DEBUG if verbose else logging.INFO if not quiet else logging.ERROR)


def quiet() -> bool:
    return _state["quiet"]


def verbose() -> bool:
    return _state["verbose"]


def info(msg: str, *, soft_wrap: bool = True) -> None:
    """A message on stderr unless --quiet, one line however long."""
    if not _state["quiet"]:
        console.print(msg, soft_wrap=soft_wrap)


def parse_range(text: str) -> tuple[float, float]:
    """Parse ``START-END`` in seconds (``12.5-30``) or ``MM:SS-MM:SS`` (an argparse ``type``: a bad
    range is a usage error, exit 2)."""

    def secs(t: str) -> float:
        parts = [float(p) for p in t.split(":")]
        v = 0.0
        for p in parts:
            v = v * 60 + p
        return v

    try:
        a, b = text.split("-", 1)
        start, end = secs(a), secs(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad range {text!r}: expected START-END in seconds, e.g. 12.5-30") from None
    if end <= start:
        raise argparse.ArgumentTypeError(f"bad range {text!r}: end must be after start")
    return start, end


def each_file(files: list[str], work: Callable[[str], T]) -> tuple[list[tuple[str, T]], int]:
    """``work(f)`` for every file: ``([(file, result)], failures)``. A bad file is one line on stderr
    and the others still run; with a single file its error propagates (exit code 1, one line)."""
    done: list[tuple[str, T]] = []
    failures = 0
    for f in files:
        try:
            done.append((f, work(f)))
        except AudiotoolsError as e:
            if len(files) == 1:
                raise
            console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            failures += 1
    return done, failures


class CommaList(argparse.Action):
    """``--output-format json,srt`` -> ["json", "srt"] (repeatable)."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = getattr(namespace, self.dest, None) or []
        items = list(items) + [v.strip() for v in values.split(",") if v.strip()]
        setattr(namespace, self.dest, items)


def probe_inputs(files: list[str]) -> dict:
    """``{file: InputError}`` for the files whose header probe fails, checked before any model loads
    (a bad file fails in milliseconds); with a single file its error is raised at once."""
    from audiotools.audio.decode import probe_audio
    from audiotools.errors import InputError

    bad = {}
    for f in files:
        try:
            probe_audio(f)
        except InputError as e:
            if len(files) == 1:
                raise
            bad[f] = e
    return bad
