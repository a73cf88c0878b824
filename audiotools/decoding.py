"""Batched Whisper decoding of many windows at once, with Whisper's temperature fallback per window.

Built on openai-whisper's ``DecodingTask`` (KV cache, logit filters, timestamp rules), fed with
encoder features computed once per window: language detection, decoding and every fallback
temperature reuse the same features instead of re-running the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask


@dataclass
class DecodeOptions:
    task: str = "transcribe"
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    beam_size: int | None = None        # None: greedy at temperature 0
    best_of: int = 5                    # samples per window at temperature > 0
    patience: float | None = None
    length_penalty: float | None = None
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    initial_prompt: str | None = None
    suppress_tokens: str = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: float = 1.0
    seed: int = 0                       # for the sampling fallback (reproducible re-runs)


@dataclass
class WindowResult:
    result: DecodingResult
    skipped: bool = False  # judged as no speech
    tokens: list[int] = field(default_factory=list)


def needs_fallback(r: DecodingResult, o: DecodeOptions) -> bool:
    bad = False
    if o.compression_ratio_threshold is not None and r.compression_ratio > o.compression_ratio_threshold:
        bad = True  # too repetitive
    if o.logprob_threshold is not None and r.avg_logprob < o.logprob_threshold:
        bad = True  # too unsure
    if (o.no_speech_threshold is not None and r.no_speech_prob > o.no_speech_threshold
            and o.logprob_threshold is not None and r.avg_logprob < o.logprob_threshold):
        bad = False  # silence: nothing to improve
    return bad


def is_no_speech(r: DecodingResult, o: DecodeOptions) -> bool:
    if o.no_speech_threshold is None or r.no_speech_prob <= o.no_speech_threshold:
        return False
    return not (o.logprob_threshold is not None and r.avg_logprob > o.logprob_threshold)


def _decoding_options(o: DecodeOptions, language: str, temperature: float, fp16: bool) -> DecodingOptions:
    kw = dict(task=o.task, language=language, temperature=temperature, fp16=fp16,
              suppress_tokens=o.suppress_tokens, suppress_blank=o.suppress_blank,
              without_timestamps=o.without_timestamps, max_initial_timestamp=o.max_initial_timestamp,
              prompt=o.initial_prompt, length_penalty=o.length_penalty)
    if temperature > 0:
        kw["best_of"] = o.best_of
    else:
        kw["beam_size"] = o.beam_size
        kw["patience"] = o.patience
    return DecodingOptions(**kw)


@torch.inference_mode()
def decode_windows(model, features: torch.Tensor, languages: list[str], options: DecodeOptions) -> list[WindowResult]:
    """Decode a batch of windows given their encoder features (B, n_audio_ctx, n_state)."""
    fp16 = features.dtype == torch.float16
    out: list[WindowResult | None] = [None] * features.shape[0]
    # windows of one language decode together
    groups: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        groups.setdefault(lang, []).append(i)
    for lang, idx in groups.items():
        pending = list(idx)
        for t_i, temperature in enumerate(options.temperatures):
            if not pending:
                break
            task = DecodingTask(model, _decoding_options(options, lang, temperature, fp16))
            # sampling at temperature > 0 is seeded, so the same audio gives the same transcript on a re-run
            devices = [features.device] if features.is_cuda else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(options.seed + t_i)
                results = task.run(features[pending])
            last = t_i == len(options.temperatures) - 1
            still = []
            for i, r in zip(pending, results):
                prev = out[i]
                # keep the best attempt so far (by avg logprob) in case every temperature fails
                if prev is None or r.avg_logprob > prev.result.avg_logprob or not needs_fallback(r, options):
                    out[i] = WindowResult(result=r)
                if needs_fallback(r, options) and not last:
                    still.append(i)
            pending = still
    for w in out:
        w.skipped = is_no_speech(w.result, options)
        w.tokens = list(w.result.tokens)
    return out  # type: ignore[return-value]


def with_language(options: DecodeOptions, **changes) -> DecodeOptions:
    return replace(options, **changes)
