"""Error types. Every user-facing failure is one line: ``<file>: <problem>``."""

from __future__ import annotations

import os


class AudiotoolsError(Exception):
    """Base class for errors that the CLI reports as a single line."""

    exit_code = 1


def one_line_path(path: str) -> str:
    """``path`` for a one-line message: control characters (a newline in a file name) escaped."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


class InputError(AudiotoolsError):
    """A bad input file: missing, unreadable, not audio, empty, corrupt."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else os.fsdecode(path)
        self.reason = reason
        super().__init__(f"{one_line_path(self.path)}: {reason}" if self.path else reason)


class OutputError(AudiotoolsError, OSError):
    """An output that cannot be written: one line, ``<path>: <problem>`` (exit code 1, like a bad input).

    Also an ``OSError`` (with the original ``errno``), so callers that tolerate a failed write (a cache,
    a best-effort index) still catch it as they did before."""

    def __init__(self, path: str | os.PathLike, reason: str, err: int | None = None):
        self.path = os.fsdecode(path)
        self.reason = reason
        OSError.__init__(self, err, reason, self.path)

    def __str__(self) -> str:
        return f"{one_line_path(self.path)}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.errno)


class UsageError(AudiotoolsError):
    """Bad options or arguments (exit code 2, like argparse)."""

    exit_code = 2


class ModelError(AudiotoolsError):
    """A model could not be found, converted or loaded."""


class CalibrationError(AudiotoolsError):
    """A calibration file is missing, corrupt or made for another embedding model."""


class EnrolmentRejected(AudiotoolsError):
    """An enrolment sample is unusable (too little speech, more than one voice)."""


class VoiceprintError(AudiotoolsError):
    """A voiceprint record or store problem (corrupt file, wrong model, unknown person)."""


class KeyFileError(AudiotoolsError):
    """A key file is missing, unreadable or not an Ed25519 key."""
