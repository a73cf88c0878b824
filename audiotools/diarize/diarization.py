"""Speaker diarisation: who spoke when, as a pipeline step and a Python API.

``diarize(audio, options) -> pyannote.core.Annotation`` with labels ``SPEAKER_00``, ``SPEAKER_01``, ...
in order of first appearance (``CHANNEL_1``, ``CHANNEL_2`` ... with ``channels="split"``).

Backends
  builtin   offline: pyannote segmentation-3.0 on 10 s windows (up to 3 local speakers, overlap
            included) -> CAM++ embeddings per window and local speaker -> clustering -> overlap-aware
            reconstruction (builtin.py; docs/diarization.md). Always available; the default of ``auto``.
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

As a step (``run_step``) it labels every word and segment of the transcript from the exclusive track
(one speaker at a time: the dominant one), marks words spoken in overlapped speech (``overlap``),
splits segments at speaker changes and records ``transcript.speakers`` and
``transcript.extra["diarization"]`` (whose ``turns`` keep both speakers where they overlap).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from audiotools.device import resolve_device
from audiotools.errors import UsageError
from audiotools.export.writers import rttm_field
from audiotools.options import Options, secret

log = logging.getLogger(__name__)


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
    # the built-in backend's CAM++ arithmetic: float32 (the same speakers on every CPU measured), or
    # bfloat16 / auto (bfloat16 on CPUs with it in hardware: long files faster, counts not the same)
    precision: Literal["auto", "float32", "bfloat16"] = "float32"
    # the built-in backend's hop between 10 s segmentation windows, seconds; None: its default (2 s,
    # docs/diarization.md: 1 s costs twice the segmentation and got fewer counts right)
    segmentation_step: float | None = None
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
        step = self.segmentation_step
        if step is not None and not 0.1 <= step <= 10.0:
            raise UsageError(f"segmentation_step must be between 0.1 and 10 s (the window), got {step!r}")


@dataclass
class DiarizationResult:
    annotation: Any  # pyannote.core.Annotation
    backend: str  # "builtin" | "pyannote"
    channels: str  # "mix" | "split"
    reason: str = ""  # why this backend (auto mode)
    info: dict = field(default_factory=dict)  # timings, pipeline source, channel map ...
    exclusive: list[tuple[float, float, str]] | None = None  # one speaker at a time, when the backend gives it

    @property
    def labels(self) -> list[str]:
        return ordered_labels(self.annotation)

    @property
    def num_speakers(self) -> int:
        return len(self.annotation.labels())

    def turns(self) -> list[tuple[float, float, str]]:
        from audiotools.export.rttm import annotation_turns

        return annotation_turns(self.annotation)

    def exclusive_turns(self) -> list[tuple[float, float, str]]:
        """One speaker at a time (for assigning words): the backend's own track, else every turn."""
        return list(self.exclusive) if self.exclusive is not None else self.turns()

    def to_dict(self) -> dict[str, Any]:
        from audiotools.diarize.speaker_turns import overlap_regions

        d: dict[str, Any] = {
            "backend": self.backend,
            "num_speakers": self.num_speakers,
            "turns": [{"start": round(s, 3), "end": round(e, 3), "speaker": spk} for s, e, spk in self.turns()],
            "channels": self.channels,
            "overlap_seconds": round(sum(e - s for s, e in overlap_regions(self.turns())), 3),
        }
        if self.reason:
            d["backend_reason"] = self.reason
        if self.info.get("channel_of"):
            d["channel_of"] = dict(self.info["channel_of"])
        if self.info.get("pipeline"):
            d["pipeline"] = self.info["pipeline"]
        if self.info.get("models"):
            d["models"] = list(self.info["models"])
        if self.info.get("precision"):  # which arithmetic gave these turns (reproducing them)
            d["precision"] = self.info["precision"]
        if self.info.get("segmentation_step"):  # and which window hop
            d["segmentation_step"] = self.info["segmentation_step"]
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


def _all_finite(x: np.ndarray, block: int = 1 << 22) -> bool:
    return all(np.isfinite(x[i : i + block]).all() for i in range(0, len(x), block))


def choose_backend(options: DiarizationOptions) -> tuple[str, str]:
    """(backend, why): "builtin" or "pyannote" as ``options.backend`` resolves here (auto: pyannote
    only when pyannote.audio is installed and its pipeline is available offline)."""
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


def split_count_conflict(options: DiarizationOptions, speakers: int, channels: int) -> str | None:
    """With ``--channels split`` every channel with speech is one speaker, so the count flags cannot
    apply; a flag the result contradicts gets this warning (None when the flags agree or are unset)."""
    num, low, high = options.num_speakers, options.min_speakers, options.max_speakers
    checks = (
        ("--num-speakers", num, num is not None and num != speakers),
        ("--min-speakers", low, low is not None and low > speakers),
        ("--max-speakers", high, high is not None and high < speakers),
    )
    wanted = [(flag, value) for flag, value, wrong in checks if wrong]
    if not wanted:
        return None
    flags = ", ".join(f"{flag} {value}" for flag, value in wanted)
    return (
        f"{flags} ignored: --channels split gives one speaker per channel with speech "
        f"({speakers} of {channels} channels)"
    )


def run_diarization(
    audio, options: DiarizationOptions | dict | None = None, *, uri: str | None = None, **overrides
) -> DiarizationResult:
    """Diarise ``audio`` (DecodedAudio, or 16 kHz float32 samples: (n,) or (channels, n))."""
    if not isinstance(options, DiarizationOptions):
        options = DiarizationOptions.from_params(options)
    options = options.replace(**overrides)
    samples, channel_samples, default_uri = _input(audio)
    uri = rttm_field(uri or default_uri) or "audio"
    t0 = time.perf_counter()
    if not _all_finite(samples):
        samples = np.nan_to_num(samples)  # a copy: the caller's array is left alone

    if options.channels == "split":
        if channel_samples is None or channel_samples.shape[0] < 2:
            where = getattr(getattr(audio, "info", None), "path", None) or uri  # the file, in a run of many
            log.warning(
                "%s: --channels split needs a multi-channel recording; this one is mono: diarising the mix", where
            )
        else:
            from audiotools.device import torch_threads
            from audiotools.diarize.channels import split_channels

            chans = np.asarray(channel_samples, dtype=np.float32)
            if not all(_all_finite(ch) for ch in chans):
                chans = np.nan_to_num(chans)
            with torch_threads(1):
                turns, channel_of = split_channels(chans)
            ann = _annotation(turns, uri, prefix=None)
            info = {"channel_of": channel_of, "seconds": round(time.perf_counter() - t0, 3)}
            log.info("diarization: %d channel tracks (--channels split)", len(ann.labels()))
            ignored = split_count_conflict(options, len(ann.labels()), chans.shape[0])
            if ignored:  # shown by the commands, recorded in the transcript's warnings
                info["warning"] = ignored
            return DiarizationResult(ann, "builtin", "split", "channels split: one speaker per channel", info)

    backend, reason = choose_backend(options)
    device = resolve_device(options.device)
    info: dict[str, Any] = {}
    exclusive = None
    # torch threads: all of them when diarising on the main thread (the single-file CLI, on
    # otherwise idle cores); one in a worker thread, where `audiotools batch` finishes files while
    # the engine transcribes the next ones (two threads spin against it)
    threads = 1 if threading.current_thread() is not threading.main_thread() else None
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
        from audiotools.device import torch_threads
        from audiotools.diarize.builtin import Config, diarize_samples

        config = Config(precision=options.precision)
        if options.segmentation_step is not None:  # else the built-in default hop stands
            config = replace(config, step=float(options.segmentation_step))
        with torch_threads(threads if device == "cpu" else None):
            found = diarize_samples(
                samples,
                options.num_speakers,
                options.min_speakers,
                options.max_speakers,
                device=device,
                config=config,
            )
        result_ann = _annotation(found.turns, uri, prefix=None)
        exclusive = found.exclusive
        info["timings"] = found.timings
        info["precision"] = found.precision
        info["segmentation_step"] = config.step
        info["models"] = builtin_models()
    info["seconds"] = round(time.perf_counter() - t0, 3)
    n = len(result_ann.labels())
    log.info("diarization: %s backend (%s), %d speaker%s", backend, reason, n, "" if n == 1 else "s")
    result = DiarizationResult(result_ann, backend, "mix", reason, info, exclusive)
    if options.num_speakers is None:  # a count the user fixed is theirs
        warning = little_speech_warning(result)
        if warning:  # shown by the commands, recorded in the transcript's warnings
            info["warning"] = warning
    return result


# Diarised speakers with less speech than this are flagged. Measured (docs/diarization.md, far-field
# copies): the extra speakers a reverberant room splits off a two-person recording get 1.5-5.1 s,
# while the two largest keep 6.0-12.6 s each (a 30 s recording); real speakers who say
# little (2.4-5.2 s in the synthetic meetings) fall here too, so it is a warning, not a merge.
LITTLE_SPEECH_SECONDS = 5.0


def little_speech_warning(result: DiarizationResult, seconds: float = LITTLE_SPEECH_SECONDS) -> str | None:
    """One line naming the speakers with less than ``seconds`` of speech, when there are others."""
    if result.num_speakers < 2:
        return None
    talk = {label: result.annotation.label_duration(label) for label in result.labels}
    few = [f"{label} {talk[label]:.1f} s" for label in result.labels if talk[label] < seconds]
    if not few or len(few) == len(talk):
        return None
    return (
        f"{', '.join(few)} of speech: a speaker with under {seconds:g} s may be a real speaker who said "
        "little or part of another speaker's voice split off by a reverberant room or a channel change; "
        "give --num-speakers or --max-speakers when the count is known"
    )


def builtin_models() -> list[dict]:
    """The built-in diariser's models, with the hashes provenance records."""
    from audiotools.weights import CAMPLUS, SEGMENTATION

    return [
        {"role": "diarization.segmentation", "name": SEGMENTATION.name, "sha256": SEGMENTATION.sha256},
        {"role": "speaker-embedding", "name": CAMPLUS.name, "sha256": CAMPLUS.sha256},
    ]


def diarize(audio, options: DiarizationOptions | dict | None = None, **overrides):
    """Who spoke when in ``audio``: a ``pyannote.core.Annotation`` (labels SPEAKER_00 ... in order of
    first appearance, or CHANNEL_1 ... with ``channels="split"``)."""
    return run_diarization(audio, options, **overrides).annotation


# ------------------------------------------------------------------ pipeline step


def run_step(job, options: DiarizationOptions) -> None:
    """Diarise ``job.audio`` and give the words and segments of ``job.transcript`` their speakers."""
    from audiotools.diarize.speaker_turns import apply_turns, overlap_regions

    uri = Path(str(job.path)).stem if getattr(job, "path", None) else None
    result = run_diarization(job.audio, options, uri=uri)
    apply_turns(
        job.transcript,
        result.exclusive_turns(),
        channel_of=result.info.get("channel_of"),
        overlap=overlap_regions(result.turns()),
    )
    job.transcript.extra["diarization"] = result.to_dict()
    if result.info.get("warning"):
        job.transcript.extra.setdefault("warnings", []).append(f"diarisation: {result.info['warning']}")
