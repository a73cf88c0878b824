"""Shared CLI helpers: the rich console, verbosity, common option parsing."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler

from audiotools.errors import AudiotoolsError, UsageError

T = TypeVar("T")

console = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)
_state = {"quiet": False, "verbose": False}


def set_verbosity(quiet: bool = False, verbose: bool = False) -> None:
    _state.update(quiet=quiet, verbose=verbose)
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
        force=True,
    )
    logging.getLogger("audiotools").setLevel(logging.DEBUG if verbose else logging.INFO if not quiet else logging.ERROR)


def quiet() -> bool:
    return _state["quiet"]


def verbose() -> bool:
    return _state["verbose"]


def info(msg: str, *, soft_wrap: bool = False) -> None:
    """A message on stderr unless --quiet; ``soft_wrap`` keeps long paths on one line."""
    if not _state["quiet"]:
        console.print(msg, soft_wrap=soft_wrap)


def parse_range(text: str) -> tuple[float, float]:
    """Parse ``START-END`` in seconds (``12.5-30``) or ``MM:SS-MM:SS``."""

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
        raise UsageError(f"bad range {text!r}: expected START-END in seconds, e.g. 12.5-30") from None
    if end <= start:
        raise UsageError(f"bad range {text!r}: end must be after start")
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
            console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
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
