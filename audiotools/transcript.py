"""The transcript data model: words, segments, speakers and the JSON contract.

JSON schema ``audiotools.transcript/1``. Later stages add fields; existing names never change.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "audiotools.transcript/1"


@dataclass
class Word:
    word: str  # as Whisper emits it, usually with a leading space
    start: float
    end: float
    probability: float = 0.0
    speaker: str | None = None
    masked: bool = False
    overlap: bool = False  # spoken while another speaker talks (the speaker is the dominant one)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "probability": round(float(self.probability), 4),
        }
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if self.masked:
            d["masked"] = True
        if self.overlap:
            d["overlap"] = True
        return d


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    speaker: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    temperature: float | None = None
    channel: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "speaker": self.speaker,
            "words": [w.to_dict() for w in self.words],
        }
        for k in ("avg_logprob", "no_speech_prob", "compression_ratio", "temperature"):
            v = getattr(self, k)
            if v is not None:
                d[k] = round(float(v), 4)
        if self.channel is not None:
            d["channel"] = self.channel
        return d


@dataclass
class AudioInfo:
    path: str
    sha256: str
    pcm_sha256: str
    duration: float
    sample_rate: int
    channels: int
    source_sample_rate: int | None = None
    codec: str | None = None
    container: str | None = None
    decoder: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Transcript:
    audio: AudioInfo
    model: dict[str, Any]
    language: str | None
    segments: list[Segment]
    speakers: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=utc_now)
    tool: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # later stages: "provenance", "diarization", ...

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()

    def to_dict(self) -> dict[str, Any]:
        if not self.tool:
            from audiotools.version import __version__

            self.tool = {"name": "audiotools", "version": __version__}
        d = {
            "schema": SCHEMA,
            "audio": self.audio.to_dict(),
            "model": dict(self.model),
            "language": self.language,
            "segments": [s.to_dict() for s in self.segments],
            "speakers": self.speakers,
            "created": self.created,
            "tool": self.tool,
        }
        d.update(self.extra)
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        known = {"schema", "audio", "model", "language", "segments", "speakers", "created", "tool"}
        segs = []
        for s in d.get("segments", []):
            words = [
                Word(
                    word=w["word"],
                    start=w["start"],
                    end=w["end"],
                    probability=w.get("probability", 0.0),
                    speaker=w.get("speaker"),
                    masked=w.get("masked", False),
                    overlap=w.get("overlap", False),
                )
                for w in s.get("words", [])
            ]
            segs.append(
                Segment(
                    id=s["id"],
                    start=s["start"],
                    end=s["end"],
                    text=s["text"],
                    words=words,
                    speaker=s.get("speaker"),
                    avg_logprob=s.get("avg_logprob"),
                    no_speech_prob=s.get("no_speech_prob"),
                    compression_ratio=s.get("compression_ratio"),
                    temperature=s.get("temperature"),
                    channel=s.get("channel"),
                )
            )
        a = d["audio"]
        audio = AudioInfo(**{k: a.get(k) for k in AudioInfo.__dataclass_fields__ if k in a})
        return cls(
            audio=audio,
            model=d.get("model", {}),
            language=d.get("language"),
            segments=segs,
            speakers=d.get("speakers", {}),
            created=d.get("created", utc_now()),
            tool=d.get("tool", {}),
            extra={k: v for k, v in d.items() if k not in known},
        )
