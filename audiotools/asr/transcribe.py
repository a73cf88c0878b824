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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from audiotools.asr.audio import N_SAMPLES, log_mel_batch
from audiotools.asr.decoding import (
    DecodeOptions,
    WindowResult,
    decode_windows,
    is_repetitive,
    loop_limit,
    needs_fallback,
    text_tokens,
)
from audiotools.asr.language import check_candidates, combine, restrict, summary
from audiotools.asr.models import load_model
from audiotools.asr.options import TranscribeOptions
from audiotools.asr.quantize import encode_features
from audiotools.asr.timing import (
    AlignJob,
    apply_alignment,
    find_alignments,
    num_frames_for,
    split_segments,
    text_tokens_of,
    word_timings_from_decoding,
)
from audiotools.asr.weight_layout import column_major_linears
from audiotools.asr.windows import Window, speech_windows
from audiotools.audio import SAMPLE_RATE
from audiotools.audio.decode import DecodedAudio, load_audio
from audiotools.device import resolve_device
from audiotools.errors import UsageError
from audiotools.transcript import Segment, Transcript, Word
from audiotools.vad.silero import reusable_speech

log = logging.getLogger(__name__)
# Windows per encoder call on a CPU. The encoder's GEMMs run near the cores' peak at any batch, but
# one window's activations (3 MB per layer, 12 MB MLP) stay in cache, so one window per call is the
# fastest (docs/batch.md). The decoder keeps the whole batch (each step's weight reads are shared by
# its rows). CUDA: the whole batch.
CPU_ENCODER_BATCH = 1


def is_loop(r: WindowResult, seconds: float, o: DecodeOptions, eot: int) -> bool:
    """A repetition loop: Whisper's compression-ratio test, or implausibly many text tokens for the
    audio (``eot``: the tokenizer's <|endoftext|>; every text token precedes it, timestamps follow)."""
    if is_repetitive(r.result, o) or r.stopped:
        return True
    return text_tokens(r.tokens, eot) > loop_limit(seconds)


def degenerate(r: WindowResult, seconds: float, o: DecodeOptions, eot: int) -> bool:
    """What the loop guard re-runs: a loop, or a window (not judged silence) whose every attempt
    failed Whisper's fallback test (compression ratio or avg logprob)."""
    return not r.skipped and (is_loop(r, seconds, o, eot) or needs_fallback(r.result, o))


def guard_rank(r: WindowResult, seconds: float, o: DecodeOptions, eot: int) -> tuple:
    """Which of two decodings of one window the guard keeps: not a loop, then passing the fallback
    test, then the higher avg logprob."""
    return (not is_loop(r, seconds, o, eot), not needs_fallback(r.result, o), r.result.avg_logprob)


def window_samples(samples: np.ndarray, w: Window) -> np.ndarray:
    """The samples of one decoding window (a view)."""
    return samples[int(w.start * SAMPLE_RATE) : int(w.end * SAMPLE_RATE)]


def decode_options(o: TranscribeOptions) -> DecodeOptions:
    """The decoding settings of a transcription."""
    return DecodeOptions(
        task=o.task,
        temperatures=tuple(o.temperatures),
        beam_size=o.beam_size,
        best_of=o.best_of,
        compression_ratio_threshold=o.compression_ratio_threshold,
        logprob_threshold=o.logprob_threshold,
        no_speech_threshold=o.no_speech_threshold,
        initial_prompt=o.initial_prompt,
        seed=o.seed,
    )


@dataclass
class EngineItem:
    """One file for the engine: its samples and, when already computed (e.g. by a prefetch worker), its windows."""

    key: Any
    samples: np.ndarray
    windows: list[Window] | None = None
    language: str | None = None


@dataclass
class _FileState:
    item: EngineItem
    windows: list[Window]
    language: str | None
    t0: float
    done: int = 0
    last_speech: float = 0.0
    language_probability: float | None = None
    language_probabilities: dict | None = None  # over the candidates (or every language)
    language_windows: int = 0  # windows the detection used
    forced: bool = False  # the language was given, not detected
    # language_per_window: window index -> (its language, its probabilities over the candidates)
    window_languages: dict = field(default_factory=dict)
    segments: dict = field(default_factory=dict)

    def finish(self) -> list[Segment]:
        out: list[Segment] = []
        for wi in sorted(self.segments):
            for s in self.segments[wi]:
                if not s["text"].strip():
                    continue
                words = [
                    Word(
                        word=w["word"],
                        start=float(w["start"]),
                        end=float(w["end"]),
                        probability=float(w["probability"]),
                    )
                    for w in s.get("words", [])
                ]
                out.append(
                    Segment(
                        id=len(out),
                        start=float(s["start"]),
                        end=float(s["end"]),
                        text=s["text"],
                        words=words,
                        avg_logprob=s["avg_logprob"],
                        no_speech_prob=s["no_speech_prob"],
                        compression_ratio=s["compression_ratio"],
                        temperature=s["temperature"],
                    )
                )
        return out

    def stats(self) -> dict:
        d = {
            "windows": len(self.windows),
            "speech_seconds": round(sum(w.duration for w in self.windows), 3),
            "seconds": round(time.perf_counter() - self.t0, 3),
        }
        if self.language_probability is not None:
            d["language_probability"] = round(self.language_probability, 4)
        return d

    def window_language(self, wi: int) -> str | None:
        """The language window ``wi`` is decoded in: its own with ``language_per_window``, else the file's."""
        return self.window_languages[wi][0] if wi in self.window_languages else self.language

    def settle_language(self, candidates) -> None:
        """With per-window languages: the file's language and probabilities from every window (each
        restricted to the candidates; the mean weighted by duration), as the detection over the first
        windows gives them without."""
        if not self.window_languages:
            return
        idx = sorted(self.window_languages)
        probs = combine([self.window_languages[i][1] for i in idx], [self.windows[i].duration for i in idx], candidates)
        self.language = max(probs, key=probs.get)
        self.language_probability = probs[self.language]
        self.language_probabilities, self.language_windows = probs, len(idx)

    def detection(self, candidates) -> dict | None:
        """The transcript's ``language_detection`` block (None when no window had speech)."""
        if self.language is None:
            return None
        d = summary(self.language, self.language_probabilities, candidates, self.language_windows, self.forced)
        if self.window_languages:
            d["per_window"] = [
                {
                    "start": round(self.windows[i].start, 3),
                    "end": round(self.windows[i].end, 3),
                    "language": lang,
                    "probability": round(probs[lang], 4),
                }
                for i, (lang, probs) in sorted(self.window_languages.items())
            ]
        return d


_model_cache: dict[tuple, tuple] = {}
_model_lock = threading.Lock()


def get_model(
    spec: str,
    device: str,
    fp16: bool | None = None,
    allow_download: bool | None = None,
    compute_type: str | None = None,
):
    """Load (once per process) and return ``(model, info)``.

    ``compute_type``: float32, float16, bfloat16 (encoder), int8 or int8_bfloat16 (CPU; see quantize.py);
    None: ``fp16`` decides (True: float16, False: float32), and when that is None too, float16 on
    CUDA and float32 on CPU. Each (model, device, compute type) is loaded once."""
    from audiotools.asr.quantize import bf16_fast, bfloat16_encoder, quantize_int8, resolve_compute_type

    device = resolve_device(device)
    ct = resolve_compute_type(compute_type, device, fp16)
    key = (spec, device, ct)
    with _model_lock:
        if key not in _model_cache:
            model, info = load_model(
                spec, device, dtype=torch.float16 if ct == "float16" else torch.float32, allow_download=allow_download
            )
            if ct in ("int8", "int8_bfloat16"):
                model = quantize_int8(model, encoder=ct == "int8")
            if ct in ("bfloat16", "int8_bfloat16"):
                model = bfloat16_encoder(model)
                if device == "cpu" and not bf16_fast():
                    log.warning(
                        "compute type %s: this CPU has no AVX512-BF16/AMX, bfloat16 is emulated and "
                        "may be slower than float32",
                        ct,
                    )
            if device == "cpu":
                # the int8 decoder projects logits with its own int8 copy: its embedding keeps rows
                column_major_linears(model, embedding=getattr(model.decoder, "int8_logits", None) is None)
            model.compute_type = ct
            _model_cache[key] = (model, info)
        return _model_cache[key]


class Transcriber:
    """Holds a loaded model; ``transcribe(audio)`` runs the whole engine on one decoded file."""

    def __init__(self, options: TranscribeOptions | None = None):
        self.options = options or TranscribeOptions()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        self.model, self.model_info = get_model(
            self.options.model,
            self.options.device,
            self.options.fp16,
            self.options.allow_download,
            self.options.compute_type,
        )
        self.device = self.model.device
        self.alignment_counts = {"decoding": 0, "pass": 0}  # windows given word timings by each method
        # loop guard (mel_padding "zero"): windows re-run with floor padding, and those whose floor
        # decoding was kept
        self.guard_counts = {"rerun": 0, "floor_kept": 0}
        self.dtype = next(self.model.decoder.parameters()).dtype  # the decoder's: float32 for int8 and bfloat16
        self.compute_type = getattr(self.model, "compute_type", None) or (
            "float16" if self.dtype == torch.float16 else "float32"
        )
        # candidate languages for detection, checked against Whisper's codes and the model
        self.candidates = (
            check_candidates(self.options.languages, self.model_info.multilingual) if self.options.languages else None
        )
        if self.options.language and not self.model_info.multilingual and self.options.language != "en":
            raise UsageError(
                f"model {self.model_info.name} is English-only; cannot transcribe language "
                f"{self.options.language!r} (use a multilingual model such as 'base')"
            )

    # ------------------------------------------------------------------ helpers
    def tokenizer(self, language: str | None):
        from whisper.tokenizer import get_tokenizer

        return get_tokenizer(
            self.model.is_multilingual,
            num_languages=self.model.num_languages,
            language=language,
            task=self.options.task,
        )

    def windows_for(self, samples: np.ndarray) -> list[Window]:
        return speech_windows(samples, self.options.vad_options, self.options.vad)[0]

    @torch.inference_mode()
    def encode(self, samples: np.ndarray, windows: list[Window]) -> torch.Tensor:
        return self._encode([window_samples(samples, w) for w in windows])

    def _encode(self, chunks: list[np.ndarray], padding: str | None = None) -> torch.Tensor:
        """Encoder features (B, n_audio_ctx, n_state) for audio chunks of at most 30 s."""
        mel = log_mel_batch(chunks, self.model.dims.n_mels, self.device, padding or self.options.mel_padding)
        step = len(chunks) if self.device.type == "cuda" else CPU_ENCODER_BATCH
        parts = [encode_features(self.model, mel[i : i + step], self.dtype) for i in range(0, len(chunks), step)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @torch.inference_mode()
    def detect_language(self, features: torch.Tensor, weights: list[float]) -> tuple[str, dict[str, float]]:
        """The likeliest language of windows ``features`` (B, n_audio_ctx, n_state) and the probabilities:
        each window's, restricted to the candidate languages (when set) and renormalised, averaged
        with ``weights`` (the windows' durations)."""
        if not self.model.is_multilingual:
            return "en", {"en": 1.0}
        total = combine(self.window_language_probabilities(features), weights, self.candidates)
        return max(total, key=total.get), total

    @torch.inference_mode()
    def window_language_probabilities(self, features: torch.Tensor) -> list[dict[str, float]]:
        """Each window's language probabilities over the candidates (every language without), renormalised."""
        if not self.model.is_multilingual:
            return [{"en": 1.0} for _ in range(features.shape[0])]
        _, probs = self.model.detect_language(features, self.tokenizer(None))
        if isinstance(probs, dict):
            probs = [probs]
        return [restrict(p, self.candidates) for p in probs]

    # ------------------------------------------------------------------ the engine
    def transcribe_samples(
        self, samples: np.ndarray, windows: list[Window] | None = None, progress: Callable[[float], None] | None = None
    ) -> tuple[list[Segment], str | None, dict]:
        """Transcribe mono 16 kHz samples; returns (segments, language, stats)."""
        item = EngineItem(key=0, samples=samples, windows=windows, language=self.options.language)
        cb = (lambda key, t: progress(t)) if progress else None
        for _, segments, language, stats in self.transcribe_many([item], progress=cb):
            return segments, language, stats
        raise AssertionError("unreachable")

    def transcribe_many(
        self, items: Iterable[EngineItem], progress: Callable[[object, float], None] | None = None
    ) -> Iterator[tuple[object, list[Segment], str | None, dict]]:
        """The batch engine: windows of many files share encoder/decoder batches.

        ``items`` is consumed lazily (only as many files are held as fill the next batch), and each
        file's result is yielded as soon as its last window is decoded, in input order.
        Yields ``(key, segments, language, stats)``.
        """
        bs = max(1, self.options.batch_size)
        source = iter(items)
        files: dict[int, _FileState] = {}
        order: list[int] = []  # file ids in input order (for in-order yielding)
        queue: list[tuple[int, int]] = []  # (file id, window index) not yet decoded
        next_id = 0
        exhausted = False
        decode_opts = decode_options(self.options)
        while True:
            while not exhausted and len(queue) < bs:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                t0 = time.perf_counter()
                windows = self.windows_for(item.samples) if item.windows is None else item.windows
                language = item.language or self.options.language
                st = _FileState(item=item, windows=windows, language=language, t0=t0, forced=bool(language))
                files[next_id] = st
                order.append(next_id)
                queue.extend((next_id, i) for i in range(len(windows)))
                next_id += 1
            if queue:
                batch, queue = queue[:bs], queue[bs:]
                self._run_batch(files, batch, decode_opts)
                if progress:
                    for fid, wi in batch:
                        progress(files[fid].item.key, files[fid].windows[wi].end)
            # yield every leading file that is complete
            while (
                order
                and files[order[0]].done == len(files[order[0]].windows)
                and not any(fid == order[0] for fid, _ in queue)
            ):
                fid = order.pop(0)
                st = files.pop(fid)
                st.settle_language(self.candidates)
                stats = st.stats()
                detection = st.detection(self.candidates)
                if detection is not None:
                    stats["language_detection"] = detection  # make_transcript moves it out of the stats
                yield st.item.key, st.finish(), st.language, stats
            if exhausted and not queue and not order:
                return

    @torch.inference_mode()
    def _run_batch(self, files: dict, batch: list[tuple[int, int]], decode_opts: DecodeOptions) -> None:
        chunks = [window_samples(files[fid].item.samples, files[fid].windows[wi]) for fid, wi in batch]
        features = self._encode(chunks)
        # language: per file, from its first (up to 3) windows in this batch; or, with
        # language_per_window, each window's own (a recording that switches language)
        per_window = self.options.language_per_window and self.model.is_multilingual
        for fid in dict.fromkeys(fid for fid, _ in batch):
            st = files[fid]
            if per_window and not st.forced:
                rows = [k for k, (f, _) in enumerate(batch) if f == fid]
                for k, probs in zip(rows, self.window_language_probabilities(features[rows])):
                    st.window_languages[batch[k][1]] = (max(probs, key=probs.get), probs)
            elif st.language is None:
                rows = [k for k, (f, _) in enumerate(batch) if f == fid][:3]
                st.language, probs = self.detect_language(
                    features[rows], [files[fid].windows[batch[k][1]].duration for k in rows]
                )
                st.language_probability = probs.get(st.language, 0.0)
                st.language_probabilities, st.language_windows = probs, len(rows)
                log.info("detected language: %s (p=%.2f)", st.language, st.language_probability)
        from_decoding = self.options.word_timestamps and self.options.word_alignment == "decoding"
        # the alignment pass reuses the decoding's cross-attention projections (when it makes them)
        cross_kv: dict | None = {} if self.options.word_timestamps and not from_decoding else None
        languages = [files[fid].window_language(wi) for fid, wi in batch]
        seconds = [len(c) / SAMPLE_RATE for c in chunks]
        results = decode_windows(
            self.model, features, languages, decode_opts, cross_kv=cross_kv, attention=from_decoding, seconds=seconds
        )
        if self.options.loop_guard and self.options.mel_padding == "zero":
            self._loop_guard(chunks, languages, features, results, decode_opts, cross_kv, from_decoding)
        per_window = []  # (file state, window index, window, tokenizer, segments)
        for k, ((fid, wi), r) in enumerate(zip(batch, results)):
            st = files[fid]
            st.done += 1
            if r.skipped:
                continue
            w = st.windows[wi]
            tok = self.tokenizer(st.window_language(wi))
            segs = split_segments(r.tokens, tok, w.start, w.duration)
            for s in segs:
                s.update(
                    avg_logprob=r.result.avg_logprob,
                    no_speech_prob=r.result.no_speech_prob,
                    compression_ratio=r.result.compression_ratio,
                    temperature=r.result.temperature,
                )
            per_window.append((k, st, wi, w, tok, segs))
        if self.options.word_timestamps:
            # word timings from the decoding's own cross-attention where it has them, one batched
            # alignment pass for the other windows with text, then each file's windows in order
            texts = [text_tokens_of(segs, tok) for k, st, wi, w, tok, segs in per_window]
            alignments: list = []
            for (k, _st, _wi, w, tok, segs), text in zip(per_window, texts):
                r = results[k]
                alignments.append(
                    word_timings_from_decoding(
                        tok, r.tokens, text, r.attention, r.step_logprobs, r.prompt_length, num_frames_for(w.duration)
                    )
                    if from_decoding and segs
                    else None
                )
                r.attention = None  # (positions, heads, frames) per window: not kept past here
            todo = [n for n, a in enumerate(alignments) if a is None]
            jobs = []
            for n in todo:
                k, st, wi, w, tok, segs = per_window[n]
                jobs.append(AlignJob(tok, texts[n], features[k], num_frames_for(w.duration), row=k))
            for n, alignment in zip(todo, find_alignments(self.model, jobs, cross_kv=cross_kv or None)):
                alignments[n] = alignment
            self.alignment_counts["decoding"] += len(per_window) - len(todo)
            self.alignment_counts["pass"] += sum(1 for j in jobs if j.text_tokens)
            for (_k, st, _wi, w, tok, segs), alignment in zip(per_window, alignments):
                if segs:
                    st.last_speech = apply_alignment(segs, alignment, tok, w.start, w.duration, st.last_speech)
        for _k, st, wi, _w, tok, segs in per_window:
            for s in segs:
                s["text"] = tok.decode(s["tokens"])
            st.segments[wi] = segs

    def _loop_guard(
        self,
        chunks: list[np.ndarray],
        languages: list[str],
        features: torch.Tensor,
        results: list[WindowResult],
        decode_opts: DecodeOptions,
        cross_kv: dict | None,
        attention: bool,
    ) -> None:
        """Zero-padded log-mel (openai-whisper's padding) can make Whisper loop on a short window.
        Every padded window whose decoding is degenerate (``degenerate``) is encoded again with
        floor padding and decoded again, those windows in one batch; the floor decoding replaces
        the first (in ``results``, ``features`` and ``cross_kv``, in place) when it ranks higher
        (``guard_rank``)."""
        seconds = [len(c) / SAMPLE_RATE for c in chunks]
        eot = self.tokenizer(None).eot
        flagged = [
            k
            for k, r in enumerate(results)
            if len(chunks[k]) < N_SAMPLES and degenerate(r, seconds[k], decode_opts, eot)
        ]
        if not flagged:
            return
        floor = self._encode([chunks[k] for k in flagged], padding="floor")
        kv: dict | None = {} if cross_kv is not None else None
        again = decode_windows(
            self.model,
            floor,
            [languages[k] for k in flagged],
            decode_opts,
            cross_kv=kv,
            attention=attention,
            seconds=[seconds[k] for k in flagged],
        )
        self.guard_counts["rerun"] += len(flagged)
        kept = []
        for j, k in enumerate(flagged):
            if guard_rank(again[j], seconds[k], decode_opts, eot) > guard_rank(
                results[k], seconds[k], decode_opts, eot
            ):
                results[k] = again[j]
                features[k] = floor[j]
                kept.append((j, k))
        self.guard_counts["floor_kept"] += len(kept)
        if kept and cross_kv:
            if kv and set(kv) == set(cross_kv):
                for m in cross_kv:
                    for j, k in kept:
                        cross_kv[m][k] = kv[m][j]
            else:  # the re-run made no projections: the alignment pass projects the features itself
                cross_kv.clear()

    def transcribe(self, audio: DecodedAudio, progress=None) -> Transcript:
        windows, regions = speech_windows(audio.samples, self.options.vad_options, self.options.vad)
        audio.speech = reusable_speech(regions, self.options.vad_options)  # identification reuses them
        segments, language, stats = self.transcribe_samples(audio.samples, windows, progress=progress)
        return self.make_transcript(audio, segments, language, stats)

    def make_transcript(
        self, audio: DecodedAudio, segments: list[Segment], language: str | None, stats: dict
    ) -> Transcript:
        """The Transcript for one engine result (``transcribe`` and the batch command share it)."""
        model = {
            "name": self.model_info.name,
            "sha256": self.model_info.sha256,
            "source": self.model_info.source,
            "kind": self.model_info.kind,
            "compute_type": self.compute_type,
        }
        stats = dict(stats)
        extra = {}
        if "language_detection" in stats:
            extra["language_detection"] = stats.pop("language_detection")
        extra["stats"] = stats
        if audio.warnings:
            extra["warnings"] = list(audio.warnings)
        return Transcript(audio=audio.info, model=model, language=language, segments=segments, extra=extra)


def transcribe_file(path, **options) -> Transcript:
    """Python API: ``audiotools.transcribe("call.wav", language="ru")``."""
    opts = TranscribeOptions.from_params(options)
    audio = load_audio(path)
    return Transcriber(opts).transcribe(audio)
