"""Small file helpers: atomic writes, content hashes, and output paths checked before the work starts."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from audiotools.errors import OutputError, one_line_path

_CHUNK = 1 << 20


def _strerror(e: OSError) -> str:
    """``Permission denied`` -> ``permission denied`` (the message goes after ``<path>: ``)."""
    text = e.strerror or str(e) or type(e).__name__
    return text[0].lower() + text[1:] if text[1:2].islower() else text


def _non_directory(path: Path) -> Path | None:
    """The first of ``path`` and its parents that exists but is not a directory (None: there is none)."""
    for p in (path, *path.parents):
        if p.is_symlink() or p.exists():
            return None if p.is_dir() else p
    return None


def output_error(path: str | os.PathLike, e: OSError, *, directory: bool = False) -> OutputError:
    """The one-line :class:`OutputError` for an ``OSError`` raised writing ``path`` (an output file, or
    with ``directory`` an output directory): names ``path`` (never a temp file) and what is wrong."""
    if isinstance(e, OutputError):
        return e
    path = Path(path)
    if e.errno in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT):
        bad = _non_directory(path if directory else path.parent)
        if bad is not None:
            if directory and bad == path:
                return OutputError(path, "not a directory", errno.ENOTDIR)
            what = "cannot create directory" if directory else "cannot write"
            return OutputError(path, f"{what}: {one_line_path(str(bad))} is not a directory", errno.ENOTDIR)
    if e.errno == errno.EISDIR and not directory:
        return OutputError(path, "is a directory", e.errno)
    return OutputError(path, _strerror(e) if directory else f"cannot write: {_strerror(e)}", e.errno)


def _probe_dir(d: Path) -> None:
    """Create ``d`` (and its parents) when missing, then create and remove a temp file in it."""
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".audiotools-write-check.", suffix=".tmp", dir=d)
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def check_output_dir(directory: str | os.PathLike) -> Path:
    """Make sure outputs can be written into ``directory`` before any work starts: create it (and its
    parents) when missing, then create and remove a temp file in it. Raises a one-line
    :class:`OutputError` (``out: not a directory``, ``out: permission denied``, ...)."""
    d = Path(directory)
    try:
        _probe_dir(d)
    except OSError as e:
        raise output_error(d, e, directory=True) from None
    return d


def check_output_file(path: str | os.PathLike) -> Path:
    """:func:`check_output_dir` for the folder of the output file ``path``, with the error naming
    ``path`` (``x/u.json: cannot write: x is not a directory``); also fails when ``path`` is a
    directory (the atomic rename could not replace it)."""
    p = Path(path)
    try:
        _probe_dir(p.parent)
    except OSError as e:
        raise output_error(p, e) from None
    if p.is_dir():
        raise OutputError(p, "is a directory", errno.EISDIR)
    return p


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
    An ``OSError`` of the write itself (the folder, the temp file, flushing, the rename) is raised as a
    one-line :class:`OutputError` naming ``path``; exceptions of the caller's block pass unchanged.
    """
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else "") as f:
            _fchmod(fd, path, perms)
            yield f
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise output_error(path, e) from None
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise output_error(path, e) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _temp_beside(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temp file beside ``path`` (its folder created when missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise output_error(path, e) from None


def _fchmod(fd: int, path: Path, perms: int | None) -> None:
    if perms is None:  # mkstemp makes 0600 files; give ordinary outputs the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        perms = 0o666 & ~umask
    try:
        os.fchmod(fd, perms)
    except OSError as e:
        raise output_error(path, e) from None


def atomic_write_text(path: str | os.PathLike, text: str, *, perms: int | None = None) -> None:
    with atomic_open(path, "w", perms=perms) as f:
        try:
            f.write(text)
        except OSError as e:
            raise output_error(path, e) from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, perms: int | None = None) -> None:
    with atomic_open(path, "wb", perms=perms) as f:
        try:
            f.write(data)
        except OSError as e:
            raise output_error(path, e) from None


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
    stale one is found and removed); returns the temp path. ``os.replace`` it over ``path`` to commit.
    An ``OSError`` is raised as a one-line :class:`OutputError` naming ``path``."""
    path = Path(path)
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            _fchmod(fd, path, perms)
            try:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            except OSError as e:
                raise output_error(path, e) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)
