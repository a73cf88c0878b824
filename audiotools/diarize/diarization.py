"""Speaker diarisation: who spoke when, as a pipeline step and a Python API.

``diarize(audio, options) -> pyannote.core.Annotation`` with labels ``SPEAKER_00``, ``SPEAKER_01``, ...
in order of first appearance (``CHANNEL_1``, ``CHANNEL_2`` ... with ``channels="split"``).

Backends
  builtin   offline: Silero VAD -> GE2E window embeddings -> clustering -> HMM resegmentation
            (builtin_diarizer.py). Always available.
  pyannote  a pyannote.audio pipeline from a local directory (``pyannote_pipeline``) or, online,
            from the Hugging Face hub with a token (pyannote_backend.py; optional extra).
  auto      pyannote when its pipeline loads offline (local directory given, or found in the
            Hugging Face cache) and pyannote.audio is installed; builtin otherwise. The choice is
            logged and recorded in the JSON (``diarization.backend``, ``diarization.backend_reason``).

Channels
  mix       diarise the mono mix (default).
  split     one speaker track per channel (phone calls record one side per channel): speech
            detection on each channel, turns labelled ``CHANNEL_<n>``; speech that is much louder on
            another channel at the same moment (crosstalk/echo) is not counted twice.

As a step (``run_step``) it labels every word and segment of the transcript, splits segments at
speaker changes and records ``transcript.speakers`` and ``transcript.extra["diarization"]``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.device import resolve_device
from audiotools.errors import UsageError
from audiotools.options import Options, secret

log = logging.getLogger(__name__)
CROSSTALK_DB = 15.0  # in split mode, a channel this much quieter than the loudest one is crosstalk


@dataclass(frozen=True)
class DiarizationOptions(Options):
    """The ``diarize`` step (and ``audiotools diarize``)."""

    STEP: ClassVar[str] = "diarize"

    enabled: bool = True
    backend: Literal["auto", "builtin", "pyannote"] = "auto"
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    channels: Literal["mix", "split"] = "mix"
    device: str = "auto"  # auto | cpu | cuda
    pyannote_pipeline: str | None = None  # local pipeline directory / config.yaml, or a hub id (with a token)
    hf_token: str | None = secret()  # else $HF_TOKEN; never recorded in the transcript

    def check(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a whole number of at least 1, got {v!r}")
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise UsageError(
                f"--min-speakers ({self.min_speakers}) is larger than --max-speakers ({self.max_speakers})"
            )
        if self.num_speakers and (
            (self.min_speakers and self.num_speakers < self.min_speakers)
            or (self.max_speakers and self.num_speakers > self.max_speakers)
        ):
            raise UsageError(f"--num-speakers {self.num_speakers} is outside --min-speakers/--max-speakers")


@dataclass
class DiarizationResult:
    annotation: Any  # pyannote.core.Annotation
    backend: str  # "builtin" | "pyannote"
    channels: str  # "mix" | "split"
    reason: str = ""  # why this backend (auto mode)
    info: dict = field(default_factory=dict)  # timings, pipeline source, channel map ...

    @property
    def labels(self) -> list[str]:
        return ordered_labels(self.annotation)

    @property
    def num_speakers(self) -> int:
        return len(self.annotation.labels())

    def turns(self) -> list[tuple[float, float, str]]:
        from audiotools.export.rttm import annotation_turns

        return annotation_turns(self.annotation)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "backend": self.backend,
            "num_speakers": self.num_speakers,
            "turns": [{"start": round(s, 3), "end": round(e, 3), "speaker": spk} for s, e, spk in self.turns()],
            "channels": self.channels,
        }
        if self.reason:
            d["backend_reason"] = self.reason
        if self.info.get("channel_of"):
            d["channel_of"] = dict(self.info["channel_of"])
        if self.info.get("pipeline"):
            d["pipeline"] = self.info["pipeline"]
        return d


def ordered_labels(annotation) -> list[str]:
    seen: dict[str, None] = {}
    for _, _, label in sorted(annotation.itertracks(yield_label=True), key=lambda t: (t[0].start, t[0].end)):
        seen.setdefault(label, None)
    return list(seen)


def _annotation(turns, uri: str, prefix: str | None = "SPEAKER_"):
    """Annotation from (start, end, key) turns; keys renamed ``prefix00``.. by first appearance."""
    from pyannote.core import Annotation, Segment

    ann = Annotation(uri=uri)
    names: dict[Any, str] = {}
    for i, (s, e, k) in enumerate(sorted(turns, key=lambda t: (t[0], t[1]))):
        if e <= s:
            continue
        if prefix is None:
            name = str(k)
        else:
            name = names.setdefault(k, f"{prefix}{len(names):02d}")
        ann[Segment(float(s), float(e)), i] = name
    return ann


def _split_channels(channels: np.ndarray) -> tuple[list, dict[str, int]]:
    """Turns from each channel's own speech; crosstalk (a channel far quieter than another at the
    same moment) is not speech of that channel."""
    from audiotools.diarize.builtin import BuiltinOptions, bridge, hysteresis_regions
    from audiotools.vad.silero import FRAME_SAMPLES, speech_probabilities

    bopts = BuiltinOptions()
    n_ch, n = channels.shape
    duration = n / SAMPLE_RATE
    frames = (n + FRAME_SAMPLES - 1) // FRAME_SAMPLES
    probs = np.zeros((n_ch, frames), dtype=np.float32)
    energy = np.zeros((n_ch, frames), dtype=np.float64)
    for c in range(n_ch):
        x = channels[c]
        if np.any(x):
            probs[c] = speech_probabilities(x)[:frames]
        block = 1 << 14  # frames per block: no full-length temporaries
        for f0 in range(0, frames, block):
            f1 = min(frames, f0 + block)
            seg = x[f0 * FRAME_SAMPLES : f1 * FRAME_SAMPLES]
            if len(seg) < (f1 - f0) * FRAME_SAMPLES:
                seg = np.pad(seg, (0, (f1 - f0) * FRAME_SAMPLES - len(seg)))
            energy[c, f0:f1] = np.mean(np.square(seg.reshape(f1 - f0, FRAME_SAMPLES), dtype=np.float64), axis=1)
    loudest = energy.max(axis=0)
    turns = []
    channel_of: dict[str, int] = {}
    for c in range(n_ch):
        p = probs[c].copy()
        p[energy[c] * 10 ** (CROSSTALK_DB / 10) < loudest] = 0.0
        regions = hysteresis_regions(
            p, bopts.vad_onset, bopts.vad_offset, bopts.min_silence, bopts.min_speech, bopts.pad, duration
        )
        label = f"CHANNEL_{c + 1}"
        if regions:
            channel_of[label] = c + 1
        turns += [(s, e, label) for s, e, _ in bridge([(s, e, 0) for s, e in regions], bopts.bridge_gap)]
    return turns, channel_of


def _all_finite(x: np.ndarray, block: int = 1 << 22) -> bool:
    return all(np.isfinite(x[i : i + block]).all() for i in range(0, len(x), block))


def _choose_backend(options: DiarizationOptions) -> tuple[str, str]:
    from audiotools.diarize import pyannote_backend as pb

    if options.backend == "builtin":
        return "builtin", "requested"
    if options.backend == "pyannote":
        return "pyannote", "requested"
    if not pb.installed():
        return "builtin", "auto: pyannote.audio is not installed"
    local = pb.offline_pipeline(options.pyannote_pipeline)
    if local is None:
        return "builtin", "auto: no pyannote pipeline available offline"
    return "pyannote", f"auto: pyannote pipeline found at {local}"


def _input(audio) -> tuple[np.ndarray, np.ndarray | None, str]:
    from audiotools.audio.decode import DecodedAudio

    if isinstance(audio, DecodedAudio):
        uri = Path(audio.info.path).stem if audio.info and audio.info.path else "audio"
        return np.asarray(audio.samples, dtype=np.float32), audio.channel_samples, uri
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        return arr, None, "audio"
    if arr.ndim == 2:
        if arr.shape[0] > arr.shape[1]:  # (n, channels) -> (channels, n)
            arr = arr.T
        return arr.mean(axis=0).astype(np.float32), (arr if arr.shape[0] > 1 else None), "audio"
    raise UsageError(f"audio must be 1-D (mono) or 2-D (channels, samples), got shape {arr.shape}")


def run_diarization(
    audio, options: DiarizationOptions | dict | None = None, *, uri: str | None = None, **overrides
) -> DiarizationResult:
    """Diarise ``audio`` (DecodedAudio, or 16 kHz float32 samples: (n,) or (channels, n))."""
    if not isinstance(options, DiarizationOptions):
        options = DiarizationOptions.from_params(options)
    options = options.replace(**overrides)
    samples, channel_samples, default_uri = _input(audio)
    uri = (uri or default_uri).replace(" ", "_") or "audio"
    t0 = time.perf_counter()
    if not _all_finite(samples):
        samples = np.nan_to_num(samples)  # a copy: the caller's array is left alone

    if options.channels == "split":
        if channel_samples is None or channel_samples.shape[0] < 2:
            log.warning("--channels split needs a multi-channel recording; this one is mono: diarising the mix")
        else:
            from audiotools.diarize.builtin import torch_threads

            chans = np.asarray(channel_samples, dtype=np.float32)
            if not all(_all_finite(ch) for ch in chans):
                chans = np.nan_to_num(chans)
            with torch_threads(1):
                turns, channel_of = _split_channels(chans)
            ann = _annotation(turns, uri, prefix=None)
            info = {"channel_of": channel_of, "seconds": round(time.perf_counter() - t0, 3)}
            log.info("diarization: %d channel tracks (--channels split)", len(ann.labels()))
            return DiarizationResult(ann, "builtin", "split", "channels split: one speaker per channel", info)

    backend, reason = _choose_backend(options)
    device = resolve_device(options.device)
    info: dict[str, Any] = {}
    if backend == "pyannote":
        from audiotools.diarize import pyannote_backend as pb

        pipeline = pb.load_pipeline(options.pyannote_pipeline, options.hf_token, device)
        ann = pb.diarize(
            samples,
            pipeline,
            uri=uri,
            num_speakers=options.num_speakers,
            min_speakers=options.min_speakers,
            max_speakers=options.max_speakers,
        )
        turns = [(s.start, s.end, label) for s, _, label in ann.itertracks(yield_label=True)]
        result_ann = _annotation(turns, uri)
        info["pipeline"] = getattr(pipeline, "_audiotools_source", str(options.pyannote_pipeline))
    else:
        # torch threads: all of them when diarising on the main thread (the single-file CLI, on
        # otherwise idle cores); one in a worker thread, where `audiotools batch`
        # finishes files while the engine transcribes the next ones (two threads spin against it)
        import threading

        from audiotools.diarize.builtin import BuiltinOptions, diarize_samples

        in_worker = threading.current_thread() is not threading.main_thread()
        bopts = BuiltinOptions(
            num_speakers=options.num_speakers,
            min_speakers=options.min_speakers,
            max_speakers=options.max_speakers,
            device=device,
            threads=1 if in_worker else None,
        )
        turns = diarize_samples(samples, bopts)
        result_ann = _annotation(turns, uri)
        info["timings"] = bopts.timings
    info["seconds"] = round(time.perf_counter() - t0, 3)
    log.info("diarization: %s backend (%s), %d speakers", backend, reason, len(result_ann.labels()))
    return DiarizationResult(result_ann, backend, "mix", reason, info)


def diarize(audio, options: DiarizationOptions | dict | None = None, **overrides):
    """Who spoke when in ``audio``: a ``pyannote.core.Annotation`` (labels SPEAKER_00 ... in order of
    first appearance, or CHANNEL_1 ... with ``channels="split"``)."""
    return run_diarization(audio, options, **overrides).annotation


# ------------------------------------------------------------------ pipeline step


def run_step(job, options: DiarizationOptions) -> None:
    """Diarise ``job.audio`` and give the words and segments of ``job.transcript`` their speakers."""
    from audiotools.diarize.speaker_turns import apply_turns

    uri = Path(str(job.path)).stem if getattr(job, "path", None) else None
    result = run_diarization(job.audio, options, uri=uri)
    apply_turns(job.transcript, result.turns(), channel_of=result.info.get("channel_of"))
    job.transcript.extra["diarization"] = result.to_dict()
