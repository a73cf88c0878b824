"""Transcription: audio -> speech windows -> batched Whisper decoding -> segments with word timestamps.

One engine serves a single file on a laptop CPU and thousands of files on a GPU: speech
regions (Silero VAD) are cut into windows of at most 30 s, windows are batched through the
log-mel front end and the encoder once, language detection and every fallback temperature
reuse those encoder features, and word timestamps come from one decoder pass per window.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from .audio import DecodedAudio, load_audio
from .decoding import DecodeOptions, decode_windows
from .features import log_mel_batch
from .models import DEFAULT_MODEL, ModelInfo, load_model, resolve_device
from .timing import add_words, split_segments
from .transcript import Segment, Transcript, Word
from .vad import VADOptions, speech_regions
from .windows import Window, fixed_windows, make_windows

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000


@dataclass
class TranscribeOptions:
    model: str = DEFAULT_MODEL
    device: str = "auto"
    language: str | None = None          # None: detect
    task: str = "transcribe"             # or "translate"
    vad: bool = True                     # skip non-speech (no hallucinated text in silence)
    word_timestamps: bool = True
    batch_size: int = 8                  # windows per encoder/decoder batch
    beam_size: int | None = None
    best_of: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    fp16: bool | None = None             # None: fp16 on CUDA, fp32 on CPU
    threads: int | None = None           # CPU threads for torch (None: torch's default)
    allow_download: bool | None = None
    vad_options: VADOptions = field(default_factory=VADOptions)

    def decode_options(self) -> DecodeOptions:
        return DecodeOptions(task=self.task, temperatures=tuple(self.temperatures), beam_size=self.beam_size,
                             best_of=self.best_of, compression_ratio_threshold=self.compression_ratio_threshold,
                             logprob_threshold=self.logprob_threshold, no_speech_threshold=self.no_speech_threshold,
                             initial_prompt=self.initial_prompt)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["temperatures"] = list(self.temperatures)
        return d


_model_cache: dict[tuple, tuple] = {}
_model_lock = threading.Lock()


def get_model(spec: str, device: str, fp16: bool | None = None, allow_download: bool | None = None):
    """Load (once per process) and return ``(model, info)``."""
    device = resolve_device(device)
    half = device.startswith("cuda") if fp16 is None else fp16
    key = (spec, device, half)
    with _model_lock:
        if key not in _model_cache:
            model, info = load_model(spec, device, dtype=torch.float16 if half else torch.float32,
                                     allow_download=allow_download)
            _model_cache[key] = (model, info)
        return _model_cache[key]


class Transcriber:
    """Holds a loaded model; ``transcribe(audio)`` runs the whole engine on one decoded file."""

    def __init__(self, options: TranscribeOptions | None = None):
        self.options = options or TranscribeOptions()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        self.model, self.model_info = get_model(self.options.model, self.options.device, self.options.fp16,
                                                self.options.allow_download)
        self.device = self.model.device
        self.dtype = next(self.model.parameters()).dtype
        if self.options.language and not self.model_info.multilingual and self.options.language != "en":
            from .errors import UsageError
            raise UsageError(f"model {self.model_info.name} is English-only; cannot transcribe language "
                             f"{self.options.language!r} (use a multilingual model such as 'base')")

    # ------------------------------------------------------------------ helpers
    def tokenizer(self, language: str | None):
        from whisper.tokenizer import get_tokenizer
        return get_tokenizer(self.model.is_multilingual, num_languages=self.model.num_languages,
                             language=language, task=self.options.task)

    def windows_for(self, samples: np.ndarray) -> list[Window]:
        duration = len(samples) / SAMPLE_RATE
        if not self.options.vad:
            return fixed_windows(duration)
        regions = speech_regions(samples, self.options.vad_options)
        return make_windows(regions, samples)

    @torch.inference_mode()
    def encode(self, samples: np.ndarray, windows: list[Window]) -> torch.Tensor:
        chunks = [samples[int(w.start * SAMPLE_RATE): int(w.end * SAMPLE_RATE)] for w in windows]
        mel = log_mel_batch(chunks, self.model.dims.n_mels, self.device).to(self.dtype)
        return self.model.encoder(mel)

    @torch.inference_mode()
    def detect_language(self, features: torch.Tensor, weights: list[float]) -> tuple[str, dict[str, float]]:
        if not self.model.is_multilingual:
            return "en", {"en": 1.0}
        _, probs = self.model.detect_language(features, self.tokenizer(None))
        if isinstance(probs, dict):
            probs = [probs]
        total: dict[str, float] = {}
        for p, w in zip(probs, weights):
            for k, v in p.items():
                total[k] = total.get(k, 0.0) + v * w
        norm = sum(weights) or 1.0
        total = {k: v / norm for k, v in total.items()}
        return max(total, key=total.get), total

    # ------------------------------------------------------------------ the engine
    def transcribe_samples(self, samples: np.ndarray, windows: list[Window] | None = None,
                           progress: Callable[[float], None] | None = None) -> tuple[list[Segment], str | None, dict]:
        """Transcribe mono 16 kHz samples; returns (segments, language, stats)."""
        t0 = time.perf_counter()
        windows = self.windows_for(samples) if windows is None else windows
        stats = {"windows": len(windows), "speech_seconds": round(sum(w.duration for w in windows), 3)}
        language = self.options.language
        lang_probs = None
        segments: list[dict] = []
        last_speech = 0.0
        decode_opts = self.options.decode_options()
        bs = max(1, self.options.batch_size)
        for b in range(0, len(windows), bs):
            batch = windows[b:b + bs]
            features = self.encode(samples, batch)
            if language is None:
                k = min(3, len(batch))
                language, lang_probs = self.detect_language(features[:k], [w.duration for w in batch[:k]])
                log.info("detected language: %s (p=%.2f)", language, lang_probs.get(language, 0))
            results = decode_windows(self.model, features, [language] * len(batch), decode_opts)
            tok = self.tokenizer(language)
            for i, (w, r) in enumerate(zip(batch, results)):
                if r.skipped:
                    continue
                segs = split_segments(r.tokens, tok, w.start, w.duration)
                for s in segs:
                    s.update(avg_logprob=r.result.avg_logprob, no_speech_prob=r.result.no_speech_prob,
                             compression_ratio=r.result.compression_ratio, temperature=r.result.temperature)
                if self.options.word_timestamps and segs:
                    last_speech = add_words(self.model, tok, segs, features[i], w.start, w.duration, last_speech)
                for s in segs:
                    s["text"] = tok.decode(s["tokens"])
                segments.extend(segs)
            if progress:
                progress(batch[-1].end)
        out = []
        for s in segments:
            text = s["text"]
            if not text.strip():
                continue
            words = [Word(word=w["word"], start=float(w["start"]), end=float(w["end"]),
                          probability=float(w["probability"])) for w in s.get("words", [])]
            out.append(Segment(id=len(out), start=float(s["start"]), end=float(s["end"]), text=text, words=words,
                               avg_logprob=s["avg_logprob"], no_speech_prob=s["no_speech_prob"],
                               compression_ratio=s["compression_ratio"], temperature=s["temperature"]))
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        if lang_probs:
            stats["language_probability"] = round(lang_probs.get(language, 0.0), 4)
        return out, language, stats

    def transcribe(self, audio: DecodedAudio, progress=None) -> Transcript:
        segments, language, stats = self.transcribe_samples(audio.samples, progress=progress)
        model = {"name": self.model_info.name, "sha256": self.model_info.sha256, "source": self.model_info.source,
                 "kind": self.model_info.kind}
        extra = {"stats": stats}
        if audio.warnings:
            extra["warnings"] = list(audio.warnings)
        return Transcript(audio=audio.info, model=model, language=language, segments=segments, extra=extra)


def transcribe_file(path, **options) -> Transcript:
    """Python API: ``audiotools.transcribe("call.wav", language="ru")``."""
    vad_opts = options.pop("vad_options", None)
    opts = TranscribeOptions(**options)
    if vad_opts is not None:
        opts.vad_options = vad_opts if isinstance(vad_opts, VADOptions) else VADOptions(**vad_opts)
    audio = load_audio(path)
    return Transcriber(opts).transcribe(audio)
