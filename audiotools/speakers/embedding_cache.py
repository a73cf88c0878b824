"""Speaker embeddings of speech, with a content-addressed cache.

``Extractor.embed`` turns (audio, time regions, condition) into one CAM++ embedding (192-d,
:mod:`audiotools.speakers.campplus`) of the *speech*
in those regions (Silero VAD inside the regions), passed through the channel simulation of the
requested condition when the audio itself is less degraded (see :mod:`audiotools.audio.condition`).

Cache (``$AUDIOTOOLS_CACHE/embeddings``, default ``~/.cache/audiotools/embeddings``): one ``.npy``
per embedding, named by the sha256 of (PCM sha256 of the decoded audio, regions, condition,
embedding model id, weights sha256, front-end and simulation versions, and a hash of the source of
the CAM++ / fbank / channel / VAD modules, so a code change never serves stale entries); VAD regions
are cached the same way. Files are written atomically (temp file + rename) and read with ``allow_pickle=False``;
an unreadable or malformed entry is recomputed. Set ``AUDIOTOOLS_NO_EMBEDDING_CACHE=1`` to bypass.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.audio import condition as channel
from audiotools.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

FRONTEND_VERSION = 2  # bump when the speech selection / embedding recipe changes
VAD_VERSION = 1
MIN_EMBED_SECONDS = 0.5  # below this there is nothing to embed


def cache_root() -> Path:
    return Path(os.environ.get("AUDIOTOOLS_CACHE", Path.home() / ".cache" / "audiotools"))


def cache_dir() -> Path:
    return cache_root() / "embeddings"


def cache_enabled() -> bool:
    return os.environ.get("AUDIOTOOLS_NO_EMBEDDING_CACHE", "").lower() not in {"1", "true", "yes"}


@functools.cache
def code_version(module: str) -> str:
    """Short hash of a module's source: cache entries die when the code that made them changes."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    try:
        return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:12] if spec and spec.origin else "?"
    except OSError:
        return "?"


def _key(*parts) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def _load_npy(path: Path, shape_check) -> np.ndarray | None:
    try:
        with open(path, "rb") as f:
            arr = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception as e:
        log.debug("embedding cache: %s unreadable (%s); recomputing", path, e)
        return None
    if not isinstance(arr, np.ndarray) or not shape_check(arr) or not np.all(np.isfinite(arr)):
        log.debug("embedding cache: %s malformed; recomputing", path)
        return None
    return arr


def _save_npy(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:  # a read-only or full cache never breaks scoring
        log.debug("embedding cache: cannot write %s (%s)", path, e)


def canonical_regions(regions: Sequence[tuple[float, float]] | None) -> str:
    if regions is None:
        return "all"
    return ";".join(f"{a:.3f}-{b:.3f}" for a, b in regions)


def intersect(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Intersection of two sorted lists of (start, end) intervals."""
    out, i, j = [], 0, 0
    a, b = sorted(a), sorted(b)
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def merge(regions: Sequence[tuple[float, float]], gap: float = 0.0) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(regions):
        if e <= s:
            continue
        if out and s <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(a, b) for a, b in out]


def total(regions: Sequence[tuple[float, float]]) -> float:
    return float(sum(e - s for s, e in regions))


def cut(samples: np.ndarray, regions: Sequence[tuple[float, float]]) -> np.ndarray:
    parts = [samples[int(round(s * SAMPLE_RATE)) : int(round(e * SAMPLE_RATE))] for s, e in regions]
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@dataclass
class Audio:
    """Decoded audio with what scoring needs: samples, PCM hash and native condition."""

    samples: np.ndarray
    pcm_sha256: str
    channel: channel.ChannelInfo
    path: str | None = None
    sha256: str | None = None

    duration_s: float | None = None  # known duration when the samples are not loaded
    speech: list[tuple[float, float]] | None = None  # VAD regions already computed (DecodedAudio.speech)

    @property
    def duration(self) -> float:
        if len(self.samples) == 0 and self.duration_s is not None:
            return self.duration_s
        return len(self.samples) / SAMPLE_RATE

    def ensure_samples(self) -> np.ndarray:
        """The samples, decoding ``path`` again if they were dropped (see :meth:`light`)."""
        if len(self.samples) == 0 and self.path:
            from audiotools.audio.decode import load_audio

            d = load_audio(self.path, hash_source=False)
            if d.info.pcm_sha256 != self.pcm_sha256:
                from audiotools.errors import InputError

                raise InputError(self.path, "changed while it was being scored (PCM hash differs)")
            self.samples = d.samples
        return self.samples

    def light(self) -> Audio:
        """A copy without the samples (they are decoded again only when an embedding is not cached)."""
        return Audio(
            samples=np.zeros(0, np.float32),
            pcm_sha256=self.pcm_sha256,
            channel=self.channel,
            path=self.path,
            sha256=self.sha256,
            duration_s=self.duration,
            speech=self.speech,
        )

    @classmethod
    def from_decoded(cls, decoded, condition: str | None = None) -> Audio:
        info = channel.detect_audio(decoded)
        if condition:
            info.condition = channel.check_condition(condition)
            info.reasons = [f"set by the user ({condition})"] + info.reasons
        return cls(
            samples=decoded.samples,
            pcm_sha256=decoded.info.pcm_sha256,
            channel=info,
            path=decoded.info.path,
            sha256=decoded.info.sha256 or None,
            speech=getattr(decoded, "speech", None),
        )

    @classmethod
    def load(cls, path, condition: str | None = None) -> Audio:
        from audiotools.audio.decode import load_audio

        return cls.from_decoded(load_audio(path), condition)


@dataclass
class Embedded:
    embedding: np.ndarray  # (192,) L2-normalised CAM++ embedding
    speech_seconds: float  # VAD speech inside the requested regions
    regions: list[tuple[float, float]]  # the speech that was embedded
    condition: str  # the condition the audio was brought to
    simulated: bool  # True when the channel simulation was applied


class Extractor:
    """Embeds speech of :class:`Audio` objects under a condition, caching results on disk."""

    _lock = threading.Lock()

    def __init__(self, device: str = "cpu", use_cache: bool | None = None):
        from audiotools.speakers.campplus import CampplusEncoder

        self.encoder = CampplusEncoder.get(device)
        self.model_id = self.encoder.model_id
        self.weights_sha256 = self.encoder.weights_sha256
        self.dim = self.encoder.dim
        self.use_cache = cache_enabled() if use_cache is None else use_cache
        self.dir = cache_dir()
        self._vad: dict[str, list[tuple[float, float]]] = {}

    # ------------------------------------------------------------------ VAD
    def speech(self, audio: Audio) -> list[tuple[float, float]]:
        """VAD speech regions of the whole recording (cached by PCM hash, in memory and on disk)."""
        if audio.pcm_sha256 in self._vad:
            return self._vad[audio.pcm_sha256]
        # the transcription's VAD when it ran (the same function and options), else the cache or Silero
        regions = list(audio.speech) if audio.speech is not None else None
        path = (
            self.dir / f"vad-{_key(audio.pcm_sha256, 'silero', VAD_VERSION, code_version('audiotools.vad.silero'))}.npy"
        )
        if regions is None and self.use_cache:
            arr = _load_npy(path, lambda a: a.ndim == 2 and a.shape[1] == 2)
            if arr is not None:
                regions = [(float(a), float(b)) for a, b in arr]
        if regions is None:
            from audiotools.vad.silero import PLAIN_VAD, speech_regions

            regions = speech_regions(audio.ensure_samples(), PLAIN_VAD)
            if self.use_cache:
                _save_npy(path, np.asarray(regions, dtype=np.float64).reshape(-1, 2))
        if len(self._vad) > 4096:
            self._vad.clear()
        self._vad[audio.pcm_sha256] = regions
        return regions

    def speech_in(self, audio: Audio, regions: Sequence[tuple[float, float]] | None) -> list[tuple[float, float]]:
        vad = self.speech(audio)
        if regions is None:
            return merge(vad)
        return intersect(merge(vad), merge(regions))

    # ------------------------------------------------------------ embedding
    def _cache_path(self, audio: Audio, regions, condition: str, simulated: bool) -> Path:
        cond = (
            f"sim:{condition}:{channel.SIMULATION_VERSION}:{code_version('audiotools.audio.condition')}"
            if simulated
            else "native"
        )
        return self.dir / (
            _key(
                audio.pcm_sha256,
                canonical_regions(regions),
                cond,
                self.model_id,
                self.weights_sha256,
                FRONTEND_VERSION,
                code_version("audiotools.speakers.campplus"),
                code_version("audiotools.speakers.fbank"),
            )
            + ".npy"
        )

    def embed(self, requests: Sequence[tuple[Audio, Sequence[tuple[float, float]] | None, str]]) -> list[Embedded]:
        """Embed many (audio, regions or None for the whole file, condition) requests, batched.

        The speech embedded is the VAD speech inside ``regions``; when VAD finds less than
        ``MIN_EMBED_SECONDS`` there, the regions themselves are used.
        """
        out: list[Embedded | None] = [None] * len(requests)
        todo: list[tuple[int, np.ndarray, Path]] = []
        for i, (audio, regions, condition) in enumerate(requests):
            sp = self.speech_in(audio, regions)
            used = sp if total(sp) >= MIN_EMBED_SECONDS else merge(regions or [(0.0, audio.duration)])
            simulated = channel.CONDITIONS.index(condition) > channel.CONDITIONS.index(audio.channel.condition)
            path = self._cache_path(audio, used, condition, simulated)
            emb = None
            if self.use_cache:
                emb = _load_npy(path, lambda a: a.shape == (self.dim,))
            out[i] = Embedded(
                embedding=emb,
                speech_seconds=round(total(sp), 3),
                regions=used,  # type: ignore[arg-type]
                condition=condition,
                simulated=simulated,
            )
            if emb is None:
                x = cut(audio.ensure_samples(), used)
                if len(x) < 1024:  # nothing usable there (regions outside the audio): a zero-padded stub
                    x = np.pad(x, (0, 1024 - len(x)))
                if simulated:
                    x = channel.simulate(x, condition)
                todo.append((i, x, path))
        batch = 64
        for k in range(0, len(todo), batch):
            chunk = todo[k : k + batch]
            embs = self.encoder.embed_utterances([x for _, x, _ in chunk])
            for (i, _, path), e in zip(chunk, embs):
                out[i].embedding = e.astype(np.float32)
                if self.use_cache:
                    _save_npy(path, e.astype(np.float32))
        return out  # type: ignore[return-value]

    def window_embeddings(self, audio: Audio, regions, condition: str) -> np.ndarray:
        """(n, 192) CAM++ embeddings of ``WINDOW_SECONDS`` windows every ``WINDOW_STEP_SECONDS`` over
        the speech in ``regions`` (cached like the embeddings); none when there is less than one
        window of speech."""
        from audiotools.speakers.campplus import WINDOW_SECONDS, WINDOW_STEP_SECONDS

        sp = self.speech_in(audio, regions)
        simulated = channel.CONDITIONS.index(condition) > channel.CONDITIONS.index(audio.channel.condition)
        path = self._cache_path(audio, sp, condition, simulated)
        path = path.with_name(f"win-{WINDOW_SECONDS:g}-{WINDOW_STEP_SECONDS:g}-{path.name}")
        if self.use_cache:
            emb = _load_npy(path, lambda a: a.ndim == 2 and a.shape[1] == self.dim)
            if emb is not None:
                return emb
        x = cut(audio.ensure_samples(), sp)
        if len(x) < int(WINDOW_SECONDS * SAMPLE_RATE):
            return np.zeros((0, self.dim), dtype=np.float32)
        if simulated:
            x = channel.simulate(x, condition)
        _, emb = self.encoder.embed_windows(x)
        if self.use_cache:
            _save_npy(path, emb)
        return emb
