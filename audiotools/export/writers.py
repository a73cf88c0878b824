"""Exports: JSON, SRT, VTT, TXT, TSV, RTTM. Every file is written atomically (temp file + rename).

When the transcript carries a provenance block, each text export names its ``transcript_sha256``:
VTT in a NOTE block, TXT in a leading ``#`` comment line. SRT, TSV and RTTM have no comment syntax
their readers skip (a ``#`` line breaks pandas/dscore/pyannote parsers), so they get a
``<file>.sha256`` sidecar: ``<sha256 of the file>  <name>`` (``sha256sum -c`` format) followed by
``# transcript_sha256 <hash>``. ``audiotools provenance verify T.json --exports`` checks them all.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from audiotools.errors import UsageError
from audiotools.fileio import output_error, stage_text
from audiotools.options import Options
from audiotools.transcript import Transcript

FORMATS = ("json", "srt", "vtt", "txt", "tsv", "rttm")
SIDECAR_FORMATS = ("srt", "tsv", "rttm")  # carry the transcript hash in a .sha256 sidecar
DEFAULT_FORMATS = ("json", "srt", "vtt", "txt", "tsv")


def parse_formats(items: list[str] | tuple[str, ...] | str | None) -> list[str]:
    if items is None:
        return list(DEFAULT_FORMATS)
    if isinstance(items, str):
        items = [items]
    out: list[str] = []
    for item in items:
        for f in str(item).split(","):
            f = f.strip().lower()
            if not f:
                continue
            if f == "all":
                out.extend(x for x in FORMATS if x not in out)
                continue
            if f not in FORMATS:
                raise UsageError(f"unknown output format {f!r} (choose from {', '.join(FORMATS)} or all)")
            if f not in out:
                out.append(f)
    return out


@dataclass(frozen=True)
class ExportOptions(Options):
    """The ``export`` step: which formats to write (``all``, or a comma list, is expanded)."""

    STEP: ClassVar[str] = "export"

    formats: str | tuple[str, ...] = DEFAULT_FORMATS  # a tuple after construction

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "formats", tuple(parse_formats(self.formats)))


def transcript_hash(t: Transcript) -> str | None:
    return (t.extra.get("provenance") or {}).get("transcript_sha256")


def sidecar_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def sidecar_text(path: Path, text: str, h: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{digest}  {Path(path).name}\n# transcript_sha256 {h}\n"


def _ts(seconds: float, sep: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _speaker_label(t: Transcript, speaker: str | None) -> str | None:
    """The display name for a speaker label (the identified person's name when known)."""
    if speaker is None:
        return None
    return speaker


def _cue_text(text: str) -> str:
    """A segment's text as one subtitle cue line: whitespace runs (a line break would end the cue)
    as one space, and no "-->" (the arrow of a cue's timing line)."""
    return " ".join(text.replace("-->", "->").split())


def _vtt_escape(text: str) -> str:
    """WebVTT cue text: ``&``, ``<``, ``>`` as character references (a bare "<" starts a tag and
    hides the rest of the cue)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_srt(t: Transcript) -> str:
    """SubRip: one cue per segment with text, numbered from 1, ``[speaker]`` before the text."""
    lines, n = [], 0
    for s in t.segments:
        text = _cue_text(s.text)
        if not text:
            continue
        spk = _speaker_label(t, s.speaker)
        if spk:
            text = f"[{_cue_text(spk)}] {text}"
        n += 1
        lines += [str(n), f"{_ts(s.start, ',')} --> {_ts(s.end, ',')}", text, ""]
    return "\n".join(lines)


def to_vtt(t: Transcript) -> str:
    """WebVTT: the transcript hash in a NOTE, one cue per segment with text, the speaker as a voice
    span (``<v Name>``), text escaped."""
    out = ["WEBVTT", ""]
    h = transcript_hash(t)
    if h:
        out += [f"NOTE transcript_sha256 {h}", ""]
    for s in t.segments:
        text = _vtt_escape(_cue_text(s.text))
        if not text:
            continue
        spk = _speaker_label(t, s.speaker)
        if spk:
            text = f"<v {_vtt_escape(_cue_text(spk))}>{text}"
        out += [f"{_ts(s.start, '.')} --> {_ts(s.end, '.')}", text, ""]
    return "\n".join(out)


def to_txt(t: Transcript) -> str:
    out = []
    h = transcript_hash(t)
    if h:
        out.append(f"# transcript_sha256 {h}")
    for s in t.segments:
        spk = _speaker_label(t, s.speaker)
        out.append(f"{spk}: {s.text.strip()}" if spk else s.text.strip())
    return "\n".join(out) + "\n"


def to_tsv(t: Transcript) -> str:
    out = ["start\tend\tspeaker\ttext"]  # the transcript hash goes in the .sha256 sidecar
    for s in t.segments:
        text = s.text.strip().replace("\t", " ").replace("\n", " ")
        out.append(f"{int(round(s.start * 1000))}\t{int(round(s.end * 1000))}\t{s.speaker or ''}\t{text}")
    return "\n".join(out) + "\n"


def rttm_field(text: str) -> str:
    """One RTTM field: fields are separated by whitespace, so each run of it (a space in "Anna
    Petrova", a tab, a no-break space) becomes ``_``."""
    return "_".join(text.split())


def rttm_lines(file_id: str, turns: list[tuple[float, float, str]]) -> list[str]:
    file_id = rttm_field(file_id) or "audio"
    return [
        f"SPEAKER {file_id} 1 {start:.3f} {end - start:.3f} <NA> <NA> {rttm_field(spk)} <NA> <NA>"
        for start, end, spk in turns
        if end > start
    ]


def to_rttm(t: Transcript) -> str:
    """Speaker turns from the diarisation (when present), else from the segments' speakers; without
    either (diarisation off) no line: an RTTM claims who spoke, and nothing said so."""
    turns = [(d["start"], d["end"], d["speaker"]) for d in (t.extra.get("diarization") or {}).get("turns", [])]
    if not turns:
        turns = [(s.start, s.end, s.speaker) for s in t.segments if s.speaker]
    # the transcript hash goes in the .sha256 sidecar: RTTM readers reject comment lines
    return "\n".join(rttm_lines(Path(t.audio.path).stem, turns)) + "\n"


WRITERS = {"json": lambda t: t.to_json(), "srt": to_srt, "vtt": to_vtt, "txt": to_txt, "tsv": to_tsv, "rttm": to_rttm}


def output_paths(stem_path: Path, formats: list[str]) -> dict[str, Path]:
    return {f: stem_path.with_name(stem_path.name + "." + f) for f in formats}


MANIFEST_SUFFIX = ".outputs.sha256"
MANIFEST_HEADER = "# audiotools output set"


def manifest_path(stem_path: Path) -> Path:
    """The output set's manifest: ``.<stem>.outputs.sha256`` beside the outputs (hidden)."""
    stem_path = Path(stem_path)
    return stem_path.with_name("." + stem_path.name + MANIFEST_SUFFIX)


def read_manifest(path: Path) -> tuple[str | None, dict[str, str]]:
    """``(generation, {file name: sha256})`` of a manifest (``sha256sum -c`` format plus a header line)."""
    generation, files = None, {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(MANIFEST_HEADER):
            generation = line[len(MANIFEST_HEADER) :].strip() or None
        elif line and not line.startswith("#"):
            digest, _, name = line.partition("  ")
            files[name] = digest.lower()
    return generation, files


def write_outputs(
    t: Transcript, output_dir: str | Path, formats: list[str] | None = None, stem: str | None = None
) -> dict[str, Path]:
    """Write every format for ``t`` into ``output_dir`` as ``<stem>.<ext>``; returns the paths.

    The files are committed as one set: every file (and the manifest naming each one's sha256 under a
    new generation id) is first written to a fsynced temporary; then the manifest is renamed into
    place, then the exports, the JSON last. A kill between two renames leaves files that disagree
    with the manifest, which batch resume detects (and redoes the file); a kill before the first
    rename leaves the previous set untouched. A file that cannot be written raises a one-line
    ``errors.OutputError`` naming it.
    """
    formats = parse_formats(formats)
    output_dir = Path(output_dir)
    stem = stem or Path(t.audio.path).stem
    paths = output_paths(output_dir / stem, formats)
    order = [f for f in formats if f != "json"] + (["json"] if "json" in formats else [])
    h = transcript_hash(t)
    files: list[tuple[Path, str]] = []
    stale: list[Path] = []
    for f in order:
        text = WRITERS[f](t)
        if f in SIDECAR_FORMATS:
            side = sidecar_path(paths[f])
            if h:
                files.append((side, sidecar_text(paths[f], text, h)))
            else:  # a sidecar left by an earlier run would name the wrong transcript
                stale.append(side)
        files.append((paths[f], text))
    if "json" in formats:  # the JSON last
        files.sort(key=lambda x: x[0] == paths["json"])
    generation = uuid.uuid4().hex
    manifest = f"{MANIFEST_HEADER} {generation}\n" + "".join(
        f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}  {p.name}\n" for p, text in files
    )
    staged: list[tuple[Path, Path]] = []
    try:
        staged.append((stage_text(manifest_path(output_dir / stem), manifest), manifest_path(output_dir / stem)))
        for p, text in files:
            staged.append((stage_text(p, text), p))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for p in stale:
        try:
            p.unlink(missing_ok=True)
        except OSError as e:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise output_error(p, e) from None
    for i, (tmp, p) in enumerate(staged):
        try:
            os.replace(tmp, p)
        except BaseException as e:
            for rest, _ in staged[i:]:
                rest.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise output_error(p, e) from None
            raise
    return paths
