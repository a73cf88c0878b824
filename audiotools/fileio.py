"""Small file helpers: atomic writes and content hashes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "w", *, perms: int | None = None, encoding: str | None = "utf-8"
) -> Iterator:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temp file is removed and ``path`` is untouched, so a reader
    never sees a half-written file (also after ``kill -9``: only a ``.tmp`` remains).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if perms is None:  # mkstemp makes 0600 files; give ordinary outputs the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            perms = 0o666 & ~umask
        os.fchmod(fd, perms)
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, perms: int | None = None) -> None:
    with atomic_open(path, "w", perms=perms) as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, perms: int | None = None) -> None:
    with atomic_open(path, "wb", perms=perms) as f:
        f.write(data)


def read_text_input(path: str | os.PathLike, what: str = "file") -> str:
    """Read a UTF-8 input file; a missing or unreadable one raises a one-line ``InputError``."""
    from audiotools.errors import InputError

    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(p, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read {what}: {getattr(e, 'strerror', None) or e}") from None


# a file name is at most 255 bytes on ext4, XFS, Btrfs, tmpfs; the longest name written for a stem is
# ".<stem>.outputs.sha256" (16 bytes more) and its temporary file adds 14 (".<name>.XXXXXXXX.tmp")
NAME_MAX = 255
STEM_MAX_BYTES = NAME_MAX - 16 - 14 - 5  # 220, with some room to spare


def fit_stem(stem: str, max_bytes: int = STEM_MAX_BYTES) -> str:
    """``stem`` itself when every output name built on it fits the file system's name limit; else its
    first bytes (whole UTF-8 characters) + ``~`` + 8 hex digits of its sha1 (deterministic, distinct)."""
    raw = stem.encode("utf-8", "surrogateescape")
    if len(raw) <= max_bytes:
        return stem
    tag = "~" + hashlib.sha1(raw).hexdigest()[:8]
    head = raw[: max_bytes - len(tag)].decode("utf-8", "ignore")  # never half a character
    return head + tag


def stage_text(path: str | os.PathLike, text: str, *, perms: int | None = None) -> Path:
    """Write ``text`` to a fsynced temp file beside ``path`` (named as ``atomic_open`` names them, so a
    stale one is found and removed); returns the temp path. ``os.replace`` it over ``path`` to commit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if perms is None:
            umask = os.umask(0)
            os.umask(umask)
            perms = 0o666 & ~umask
        os.fchmod(fd, perms)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)
