"""RTTM and UEM files <-> pyannote.core objects, without pyannote.database.

RTTM (NIST): ``SPEAKER <uri> <channel> <start> <duration> <NA> <NA> <speaker> <NA> <NA>``, one turn a
line; blank lines and ``#`` comments are skipped. UEM: ``<uri> <channel> <start> <end>``. A malformed
line is reported as ``<file>: line N: <problem>`` (InputError).
"""

from __future__ import annotations

import os
from pathlib import Path

from pyannote.core import Annotation, Segment, Timeline

from audiotools.errors import InputError
from audiotools.fileio import atomic_write_text


def _lines(path: str | os.PathLike):
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such file" if not p.exists() else "not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(p, "not a text file (RTTM/UEM are UTF-8 text)") from None
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield n, line.split()


def _float(p, n, field, value) -> float:
    try:
        v = float(value)
    except ValueError:
        raise InputError(p, f"line {n}: {field} {value!r} is not a number") from None
    if v != v or v < 0:
        raise InputError(p, f"line {n}: {field} must be a non-negative number, got {value}")
    return v


def read_rttm(path: str | os.PathLike) -> dict[str, Annotation]:
    """{uri: Annotation} from an RTTM file (SPEAKER lines; other record types are ignored)."""
    out: dict[str, Annotation] = {}
    for n, f in _lines(path):
        if f[0] != "SPEAKER":
            if f[0].isupper():
                continue  # other RTTM record types (SPKR-INFO, LEXEME ...)
            raise InputError(path, f"line {n}: not an RTTM line (expected 'SPEAKER uri channel start duration ...')")
        if len(f) < 8:
            raise InputError(path, f"line {n}: an RTTM SPEAKER line has 10 fields, found {len(f)}")
        uri = f[1]
        start = _float(path, n, "start", f[3])
        dur = _float(path, n, "duration", f[4])
        ann = out.setdefault(uri, Annotation(uri=uri))
        if dur > 0:
            ann[Segment(start, start + dur), len(ann)] = f[7]
    return out


def recording_turns(path: str | os.PathLike, recording: str | os.PathLike, single: bool = True) -> list[dict]:
    """Turns (``{"start", "end", "speaker"}``) for ``recording`` from an RTTM file: those whose file id
    is the recording's stem, or all of them when the RTTM describes one file only and ``single`` (one
    recording was given)."""
    annotations = read_rttm(path)
    uri = Path(recording).stem
    if uri not in annotations and single and len(annotations) == 1:
        uri = next(iter(annotations))
    ann = annotations.get(uri)
    turns = (
        []
        if ann is None
        else [
            {"start": seg.start, "end": seg.end, "speaker": label} for seg, _, label in ann.itertracks(yield_label=True)
        ]
    )
    if not turns:
        raise InputError(
            path, f"no SPEAKER turns for {Path(recording).stem} (file ids: {', '.join(sorted(annotations)) or 'none'})"
        )
    return turns


def read_uem(path: str | os.PathLike) -> dict[str, Timeline]:
    """{uri: Timeline} of the scored regions in a UEM file."""
    out: dict[str, Timeline] = {}
    for n, f in _lines(path):
        if len(f) < 4:
            raise InputError(path, f"line {n}: a UEM line is 'uri channel start end', found {len(f)} fields")
        start, end = _float(path, n, "start", f[2]), _float(path, n, "end", f[3])
        if end <= start:
            raise InputError(path, f"line {n}: end {end} is not after start {start}")
        out.setdefault(f[0], Timeline(uri=f[0])).add(Segment(start, end))
    return out


def annotation_turns(annotation: Annotation) -> list[tuple[float, float, str]]:
    """(start, end, label) tracks of ``annotation``, sorted by start."""
    return sorted(
        ((float(s.start), float(s.end), str(label)) for s, _, label in annotation.itertracks(yield_label=True)),
        key=lambda t: (t[0], t[1], t[2]),
    )


def rttm_text(annotation: Annotation, uri: str | None = None, channels: dict[str, int] | None = None) -> str:
    """RTTM for ``annotation``; ``channels`` maps a label to its RTTM channel number (default 1)."""
    from audiotools.export.writers import rttm_lines

    uri = uri or annotation.uri or "audio"  # rttm_lines makes it one field
    lines = []
    for s, e, spk in annotation_turns(annotation):
        line = rttm_lines(uri, [(s, e, spk)])
        if line and channels and spk in channels:
            parts = line[0].split(" ")
            parts[2] = str(channels[spk])
            line = [" ".join(parts)]
        lines += line
    return "\n".join(lines) + ("\n" if lines else "")


def write_rttm(
    annotation: Annotation, path: str | os.PathLike, uri: str | None = None, channels: dict[str, int] | None = None
) -> Path:
    """Write ``annotation`` as RTTM, atomically."""
    p = Path(path)
    atomic_write_text(p, rttm_text(annotation, uri, channels))
    return p
