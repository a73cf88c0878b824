"""Batched Whisper decoding of many windows at once, with Whisper's temperature fallback per window.

Built on openai-whisper's ``DecodingTask`` (KV cache, logit filters, timestamp rules), fed with
encoder features computed once per window: language detection, decoding and every fallback
temperature reuse the same features instead of re-running the encoder.

Three changes to the task, same tokens out:
  * greedy passes drop finished windows from the batch (their rows of the self- and
    cross-attention caches are sliced away), so a batch no longer decodes every window until the
    longest one ends: on CPU the step cost is dominated by reading each row's cross-attention
    keys/values, and 25-45 % of row-steps were spent on windows that had already ended.
    Sampling passes (temperature > 0) keep every row, so their random draws are unchanged.
  * openai-whisper's ``ApplyTimestampRules`` loops over the batch in Python with a host sync per
    row per step (``tolist``, ``numel``, a comparison); ``_BatchedTimestampRules`` applies the same
    masks as tensor operations over the whole batch.
  * beam search and best-of-n sampling run openai-whisper's loop on the step decoder
    (``decoder_step.StepDecoder`` with ``group`` rows per window), which keeps each window's
    cross-attention state once instead of once per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from whisper.decoding import ApplyTimestampRules, DecodingOptions, DecodingResult, DecodingTask

from audiotools.asr.decoder_step import StepDecoder


@dataclass
class DecodeOptions:
    task: str = "transcribe"
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    beam_size: int | None = None  # None: greedy at temperature 0
    best_of: int = 5  # samples per window at temperature > 0
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
    seed: int = 0  # for the sampling fallback (reproducible re-runs)


@dataclass
class WindowResult:
    result: DecodingResult
    skipped: bool = False  # judged as no speech
    stopped: bool = False  # cut short at its text-token cap (a loop: decode_windows(seconds=...))
    tokens: list[int] = field(default_factory=list)
    # from the greedy pass, when it was asked to keep them (``decode_windows(..., attention=True)``)
    # and its tokens are the result: the alignment heads' cross-attention logits of every query
    # position, (positions, heads, frames), and the log-probability of each chosen token
    attention: torch.Tensor | None = None
    step_logprobs: list[float] | None = None
    prompt_length: int = 0


# The loop bound: a window's decoding is a loop when it has more text tokens than LOOP_TOKENS +
# LOOP_TOKENS_PER_SECOND x its seconds of audio. Real speech on the Russian benchmark and jfk.flac
# runs at 2.8-4.7 text tokens per second on windows of 2 s or more and 8-10 on a 1 s window; a loop
# on that 1 s window made 54. On short windows the compression ratio cannot see a loop (three
# repeats of a word compress by 1.4), so the rate is the signal there.
LOOP_TOKENS = 10
LOOP_TOKENS_PER_SECOND = 10.0
# Decoding stops (EOT is forced) once a window has this many times the loop bound in text tokens: it
# is a loop whatever follows, and on a short window the sampling fallback otherwise ran every row to
# the 224-token limit (5 samples x 5 temperatures on a 1 s clip).
STOP_FACTOR = 2.0


def loop_limit(seconds: float) -> float:
    """Most text tokens a decoding of ``seconds`` of audio can have without being a loop."""
    return LOOP_TOKENS + LOOP_TOKENS_PER_SECOND * seconds


def text_tokens(tokens, eot: int) -> int:
    """Text tokens in a decoding (``eot``: the tokenizer's <|endoftext|>; timestamps come after it)."""
    return sum(1 for t in tokens if t < eot)


class _TextTokenCap:
    """Logit filter, applied last: a row with more than its cap of text tokens can only end (EOT).
    ``caps``: one cap per current batch row (the task keeps it in step with its row order)."""

    def __init__(self, sample_begin: int, eot: int, caps: torch.Tensor):
        self.sample_begin, self.eot, self.caps = sample_begin, eot, caps

    def apply(self, logits: torch.Tensor, tokens: torch.Tensor) -> None:
        over = (tokens[:, self.sample_begin :] < self.eot).sum(1) > self.caps  # (B,), no host sync
        eot_logit = torch.where(over, torch.zeros_like(logits[:, self.eot]), logits[:, self.eot])
        logits.masked_fill_(over[:, None], -np.inf)
        logits[:, self.eot] = eot_logit


def needs_fallback(r: DecodingResult, o: DecodeOptions) -> bool:
    bad = False
    if o.compression_ratio_threshold is not None and r.compression_ratio > o.compression_ratio_threshold:
        bad = True  # too repetitive
    if o.logprob_threshold is not None and r.avg_logprob < o.logprob_threshold:
        bad = True  # too unsure
    if (
        o.no_speech_threshold is not None
        and r.no_speech_prob > o.no_speech_threshold
        and o.logprob_threshold is not None
        and r.avg_logprob < o.logprob_threshold
    ):
        bad = False  # silence: nothing to improve
    return bad


def is_repetitive(r: DecodingResult, o: DecodeOptions) -> bool:
    """Whisper's repetition signal: the text compresses more than ``compression_ratio_threshold``."""
    return o.compression_ratio_threshold is not None and r.compression_ratio > o.compression_ratio_threshold


def is_no_speech(r: DecodingResult, o: DecodeOptions) -> bool:
    if o.no_speech_threshold is None or r.no_speech_prob <= o.no_speech_threshold:
        return False
    return not (o.logprob_threshold is not None and r.avg_logprob > o.logprob_threshold)


def _decoding_options(o: DecodeOptions, language: str, temperature: float, fp16: bool) -> DecodingOptions:
    kw = {
        "task": o.task,
        "language": language,
        "temperature": temperature,
        "fp16": fp16,
        "suppress_tokens": o.suppress_tokens,
        "suppress_blank": o.suppress_blank,
        "without_timestamps": o.without_timestamps,
        "max_initial_timestamp": o.max_initial_timestamp,
        "prompt": o.initial_prompt,
        "length_penalty": o.length_penalty,
    }
    if temperature > 0:
        kw["best_of"] = o.best_of
    else:
        kw["beam_size"] = o.beam_size
        kw["patience"] = o.patience
    return DecodingOptions(**kw)


class _BatchedTimestampRules(ApplyTimestampRules):
    """``ApplyTimestampRules`` as whole-batch tensor operations (no per-row Python loop or host sync)."""

    def apply(self, logits: torch.Tensor, tokens: torch.Tensor):
        # every rule masks a column range of the rows it applies to: masked_fill_ on that slice with a
        # (B, 1) row mask, so no (B, vocabulary) boolean mask is built per step
        tok = self.tokenizer
        tb = tok.timestamp_begin
        if tok.no_timestamps is not None:
            logits[:, tok.no_timestamps] = -np.inf
        sampled = tokens[:, self.sample_begin :]
        n = sampled.shape[1]
        if n >= 1:
            is_ts = sampled >= tb
            last = is_ts[:, -1]
            penultimate = is_ts[:, -2] if n >= 2 else torch.ones_like(last)
            # timestamps come in pairs, except directly before EOT
            logits[:, tb:].masked_fill_((last & penultimate)[:, None], -np.inf)
            logits[:, : tok.eot].masked_fill_((last & ~penultimate)[:, None], -np.inf)
            # timestamps never decrease, and each segment has a nonzero length
            pos = torch.arange(n, device=tokens.device)
            last_pos = torch.where(is_ts, pos, torch.full_like(pos, -1)).amax(dim=1)
            has_ts = last_pos >= 0
            last_value = sampled.gather(1, last_pos.clamp(min=0)[:, None])[:, 0]
            limit = torch.where(last & ~penultimate, last_value, last_value + 1) - tb
            ts_index = torch.arange(logits.shape[-1] - tb, device=logits.device)
            logits[:, tb:].masked_fill_(has_ts[:, None] & (ts_index[None] < limit[:, None]), -np.inf)
        if tokens.shape[1] == self.sample_begin:
            logits[:, :tb] = -np.inf
            if self.max_initial_timestamp_index is not None:
                logits[:, tb + self.max_initial_timestamp_index + 1 :] = -np.inf
        # if the timestamps together are likelier than any text token, sample a timestamp; the
        # log-softmax normaliser is common to both sides of openai-whisper's comparison, so the
        # logits are compared directly
        x = logits.float()
        timestamp_logit = x[:, tb:].logsumexp(dim=-1)
        max_text_token_logit = x[:, :tb].amax(dim=-1)
        logits[:, :tb].masked_fill_((timestamp_logit > max_text_token_logit)[:, None], -np.inf)


class _Task(DecodingTask):
    """openai-whisper's DecodingTask with batched timestamp rules and, for greedy passes, finished rows
    dropped from the batch as they end."""

    def __init__(self, model, options: DecodingOptions):
        super().__init__(model, options)
        self.logit_filters = [
            _BatchedTimestampRules(f.tokenizer, f.sample_begin, f.max_initial_timestamp_index)
            if type(f) is ApplyTimestampRules
            else f
            for f in self.logit_filters
        ]
        self.compact = options.beam_size is None and options.temperature == 0
        self.keep_projections = False  # set before run(): hand the cross-attention projections on
        self.cross_kv: dict | None = None  # cross-attention keys/values of the first step, one per window
        self.capture = False  # set before run(): keep the alignment heads' logits per step
        self.records: list[tuple[torch.Tensor, torch.Tensor, list[float]]] = []  # (rows, qk, logprobs)
        self.cap: _TextTokenCap | None = None
        self.window_caps: torch.Tensor | None = None  # per window (row before the n_group repeat)

    def limit_text_tokens(self, caps: list[float]) -> None:
        """Force EOT on a window's rows once they hold more than ``caps[window]`` text tokens."""
        self.window_caps = torch.tensor(caps, dtype=torch.float32)
        self.cap = _TextTokenCap(self.sample_begin, self.tokenizer.eot, self.window_caps)
        self.logit_filters.append(self.cap)  # last: nothing after it can mask EOT again

    def run(self, mel: torch.Tensor):
        if self.cap is not None:  # one cap per decoder row: each window's rows follow each other
            self.cap.caps = self.window_caps.to(mel.device).repeat_interleave(self.n_group)
        return super().run(mel)

    # openai-whisper's ``run`` repeats the prompt tokens ``n_group`` times per window (beam search,
    # best-of-n sampling) but not the audio features, so its decoder saw (windows x n_group) queries
    # against (windows) keys: it only worked for one window at a time. The features are repeated
    # here; the language list keeps one entry per window (the engine always sets the language).
    def _get_audio_features(self, mel: torch.Tensor) -> torch.Tensor:
        features = super()._get_audio_features(mel)
        return features.repeat_interleave(self.n_group, dim=0) if self.n_group > 1 else features

    def _detect_language(self, audio_features: torch.Tensor, tokens: torch.Tensor):
        if self.n_group > 1 and self.options.language is not None:
            return [self.options.language] * (audio_features.shape[0] // self.n_group), None
        return super()._detect_language(audio_features, tokens)

    def _main_loop(self, audio_features: torch.Tensor, tokens: torch.Tensor):
        if not self.compact:
            # openai-whisper's loop (beam search or best-of-n sampling) on the step decoder, which
            # keeps each window's cross-attention state once for its n_group rows (decoder_step.py)
            self.inference = StepDecoder(self.model, keep_projections=self.keep_projections, group=self.n_group)
            if hasattr(self.decoder, "inference"):  # beam search reorders the rows' caches through it
                self.decoder.inference = self.inference
            try:
                return super()._main_loop(audio_features, tokens)
            finally:
                self.cross_kv = self.inference.projected
        eot = self.tokenizer.eot
        n_batch = tokens.shape[0]
        device = audio_features.device
        sum_logprobs = torch.zeros(n_batch, device=device)
        no_speech_probs = [np.nan] * n_batch
        rows = torch.arange(n_batch, device=device)  # original row of each active row
        finished: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (rows, tokens, sum_logprobs)
        cur_sum = sum_logprobs.clone()
        # the loop's decoder forward (decoder_step.py); the cross-attention projections it makes at
        # the first step, when it makes them, are handed on to word alignment
        pairs = [tuple(p) for p in self.model.alignment_heads.indices().T.tolist()] if self.capture else None
        self.inference = StepDecoder(self.model, keep_projections=self.keep_projections, align_pairs=pairs)
        self.records = []
        try:
            all_caps = self.cap.caps if self.cap is not None else None
            for i in range(self.sample_len):
                if all_caps is not None:
                    self.cap.caps = all_caps[rows]
                logits = self.inference.logits(tokens, audio_features)
                if i == 0 and self.tokenizer.no_speech is not None:
                    probs_at_sot = logits[:, self.sot_index].float().softmax(dim=-1)
                    no_speech_probs = probs_at_sot[:, self.tokenizer.no_speech].tolist()
                logits = logits[:, -1]
                for logit_filter in self.logit_filters:
                    logit_filter.apply(logits, tokens)
                # GreedyDecoder.update at temperature 0, keeping each row's log-probability
                next_tokens = logits.argmax(dim=-1)
                logprobs = F.log_softmax(logits.float(), dim=-1)
                current = logprobs[torch.arange(logprobs.shape[0], device=device), next_tokens]
                cur_sum += current * (tokens[:, -1] != eot)
                next_tokens[tokens[:, -1] == eot] = eot
                tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
                completed = bool((tokens[:, -1] == eot).all())
                if self.capture:
                    self.records.append((rows, self.inference.last_qk, current.tolist()))
                if completed or tokens.shape[-1] > self.n_ctx:
                    break
                done = tokens[:, -1] == eot
                n_done = int(done.sum())
                # drop ended rows once they are a quarter of the batch
                if n_done and n_done * 4 >= tokens.shape[0]:
                    gone = done.nonzero()[:, 0]
                    finished.append((rows[gone], tokens[gone], cur_sum[gone]))
                    n_keep = tokens.shape[0] - n_done
                    # swap-remove: the ended rows among the first n_keep take the places of the live
                    # rows beyond n_keep, then every tensor is cut to n_keep rows; only the moved rows
                    # are copied, not every live row (a row's cross-attention cache is 3-37 MB for base)
                    holes = done[:n_keep].nonzero()[:, 0]
                    fillers = (~done[n_keep:]).nonzero()[:, 0] + n_keep
                    order = torch.arange(n_keep, device=device)
                    order[holes] = fillers
                    rows, tokens, cur_sum = rows[order], tokens[order], cur_sum[order]
                    # the features are not read again after the first step
                    audio_features = audio_features[:n_keep]
                    self.inference.keep_rows(holes, fillers, n_keep)
        finally:
            self.cross_kv = self.inference.projected
            self.inference.cleanup_caching()
        # reassemble in the original row order; rows that ended early are padded with EOT, which is
        # what the full-batch loop appends to them
        width = max([tokens.shape[1]] + [t.shape[1] for _, t, _ in finished])
        full = torch.full((n_batch, width), eot, dtype=tokens.dtype, device=tokens.device)
        for r, t, lp in finished + [(rows, tokens, cur_sum)]:
            full[r, : t.shape[1]] = t
            sum_logprobs[r] = lp
        return full, sum_logprobs, no_speech_probs

    def captured(self) -> dict[int, tuple[torch.Tensor, list[float]]]:
        """Per batch row, from a greedy pass with ``capture``: the alignment heads' cross-attention
        logits of every query position (positions, heads, frames): the prompt's, then one per
        step; and the log-probability of the token chosen at each step. Rows that ended keep
        decoding EOT until they are dropped: those extra steps are included (callers cut them)."""
        qks: dict[int, list[torch.Tensor]] = {}
        lps: dict[int, list[float]] = {}
        for rows, qk, lp in self.records:
            for k, r in enumerate(rows.tolist()):
                qks.setdefault(r, []).append(qk[k])
                lps.setdefault(r, []).append(lp[k])
        self.records = []
        return {r: (torch.cat(qks[r]), lps[r]) for r in qks}


@torch.inference_mode()
def decode_windows(
    model,
    features: torch.Tensor,
    languages: list[str],
    options: DecodeOptions,
    cross_kv: dict | None = None,
    attention: bool = False,
    seconds: list[float] | None = None,
) -> list[WindowResult]:
    """Decode a batch of windows given their encoder features (B, n_audio_ctx, n_state).

    ``seconds``: each window's audio length. When given, a window's decoding stops once it holds
    ``STOP_FACTOR`` times its loop bound (:func:`loop_limit`) in text tokens, and such a decoding
    counts as failed, so the next temperature is tried (it is a loop; cut short, its compression
    ratio may no longer show it).

    When ``cross_kv`` is a dict, it is filled with the decoder's cross-attention keys/values for every
    window (``{module: (B, n_audio_ctx, n_state)}``, from the first pass) so the word-alignment pass
    need not project the features again; it is left empty when a pass did not make them (a CPU
    float32 model computes its cross-attention from the features themselves: decoder_step.py)."""
    fp16 = features.dtype == torch.float16
    out: list[WindowResult | None] = [None] * features.shape[0]
    captured: list[tuple[list[int], dict | None]] = []
    # windows of one language decode together
    groups: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        groups.setdefault(lang, []).append(i)
    for lang, idx in groups.items():
        pending = list(idx)
        for t_i, temperature in enumerate(options.temperatures):
            if not pending:
                break
            task = _Task(model, _decoding_options(options, lang, temperature, fp16))
            task.keep_projections = cross_kv is not None and t_i == 0
            task.capture = attention and t_i == 0 and task.compact
            caps = None if seconds is None else [STOP_FACTOR * loop_limit(seconds[i]) for i in pending]
            if caps is not None:
                task.limit_text_tokens(caps)
            # sampling at temperature > 0 is seeded, so the same audio gives the same transcript on a re-run
            devices = [features.device] if features.is_cuda else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(options.seed + t_i)
                results = task.run(features[pending])
            if t_i == 0:
                captured.append((list(pending), task.cross_kv))
                kept = task.captured() if task.capture else {}
            last = t_i == len(options.temperatures) - 1
            still = []
            eot = task.tokenizer.eot
            for k, (i, r) in enumerate(zip(pending, results)):
                prev = out[i]
                stopped = caps is not None and text_tokens(r.tokens, eot) > caps[k]
                # keep the best attempt so far in case every temperature fails: a repetitive one
                # (compression ratio above the threshold) never replaces one that is not, however
                # likely the loop is (a sampled loop can have a better avg logprob than the unsure
                # text it would replace); otherwise the higher avg logprob
                if (
                    prev is None
                    or not (stopped or needs_fallback(r, options))
                    or (not (stopped or is_repetitive(r, options)), r.avg_logprob)
                    > (not (prev.stopped or is_repetitive(prev.result, options)), prev.result.avg_logprob)
                ):
                    out[i] = WindowResult(result=r, stopped=stopped)
                    if t_i == 0 and k in kept:
                        out[i].attention, out[i].step_logprobs = kept[k]
                        out[i].prompt_length = task.sample_begin
                if (stopped or needs_fallback(r, options)) and not last:
                    still.append(i)
            pending = still
    for w in out:
        w.skipped = is_no_speech(w.result, options)
        w.tokens = list(w.result.tokens)
    if cross_kv is not None and captured and all(kv for _, kv in captured):
        if len(captured) == 1 and captured[0][0] == list(range(features.shape[0])):
            cross_kv.update(captured[0][1])
        else:  # several language groups: put each group's rows back in batch order
            for m in captured[0][1]:
                first = captured[0][1][m]
                full = first.new_empty((features.shape[0], *first.shape[1:]))
                for idx, kv in captured:
                    full[idx] = kv[m]
                cross_kv[m] = full
    return out  # type: ignore[return-value]
