"""Segment and word timestamps.

Segments come from Whisper's timestamp tokens; words from cross-attention alignment (DTW over
the model's alignment heads) on the encoder features already computed for decoding. The
alignment pass is batched: one decoder forward for many windows (right-padded token rows; the
causal mask keeps every row's real positions exact), then per window the same steps as
openai-whisper's ``find_alignment`` / ``add_word_timestamps`` (softmax over the window's frames,
normalisation, median filter, DTW, punctuation merging, the long-word heuristics).

DTW runs in a sequential numba kernel: openai-whisper's ``dtw_cpu`` is compiled with
``parallel=True``, whose thread pool spins against torch's own threads and slowed every later
torch call in the process several-fold on small CPU machines (measured: decoding 5.7 s -> 65 s on
2 cores). The path is the same (same recurrence, same tie-breaking).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
import torch.nn.functional as F
from whisper.audio import TOKENS_PER_SECOND
from whisper.timing import WordTiming, backtrace, merge_punctuations

from audiotools.asr.quantize import output_logits
from audiotools.audio import SAMPLE_RATE

HOP_LENGTH = 160
TIME_PRECISION = 0.02  # seconds per timestamp token
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
MAX_ALIGN_CELLS = 48 * 448  # windows x padded tokens per alignment forward (bounds the QK memory)


def split_segments(tokens: list[int], tokenizer, offset: float, window_duration: float) -> list[dict]:
    """Cut one window's tokens into segments at consecutive timestamp tokens.

    Returns dicts with absolute ``start``/``end`` (seconds) and the segment's ``tokens``.
    """
    tb = tokenizer.timestamp_begin
    tokens = [t for t in tokens if t != tokenizer.eot]
    if not tokens:
        return []
    is_ts = [t >= tb for t in tokens]
    segments = []

    def add(start_pos: float, end_pos: float, toks: list[int]):
        text_tokens = [t for t in toks if t < tokenizer.eot]
        if not text_tokens:
            return
        start = offset + min(start_pos, window_duration)
        end = offset + min(max(end_pos, start_pos), window_duration)
        segments.append({"start": start, "end": max(end, start), "tokens": text_tokens})

    cuts = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
    single_ending = len(tokens) >= 2 and not is_ts[-2] and is_ts[-1]
    if cuts:
        if single_ending:
            cuts.append(len(tokens))
        last = 0
        for cut in cuts:
            piece = tokens[last:cut]
            s = (piece[0] - tb) * TIME_PRECISION if piece[0] >= tb else 0.0
            e = (piece[-1] - tb) * TIME_PRECISION if piece[-1] >= tb else window_duration
            add(s, e, piece)
            last = cut
        rest = tokens[last:]
        if rest and any(t < tokenizer.eot for t in rest):  # unterminated tail: runs to the window's end
            s = (rest[0] - tb) * TIME_PRECISION if rest[0] >= tb else (segments[-1]["end"] - offset if segments else 0)
            add(s, window_duration, rest)
    else:
        stamps = [t for t in tokens if t >= tb]
        end = window_duration
        if stamps and stamps[-1] != tb:
            end = (stamps[-1] - tb) * TIME_PRECISION
        start = (stamps[0] - tb) * TIME_PRECISION if stamps and tokens[0] >= tb else 0.0
        add(start, end if end > start else window_duration, tokens)
    return segments


def _njit_cached(fn):
    """numba.njit with the on-disk cache when a cache directory is writable (saves ~2 s per process)."""
    try:
        return numba.njit(cache=True)(fn)
    except Exception:  # no writable cache location (read-only install): compile per process
        return numba.njit(fn)


@_njit_cached
def _dtw_sequential(x):
    """openai-whisper's ``dtw_cpu`` without ``parallel=True`` (same recurrence and tie-breaking)."""
    N, M = x.shape
    cost = np.full((N + 1, M + 1), np.inf, dtype=np.float32)
    trace = -np.ones((N + 1, M + 1), dtype=np.float32)
    cost[0, 0] = 0
    for j in range(1, M + 1):
        for i in range(1, N + 1):
            c0 = cost[i - 1, j - 1]
            c1 = cost[i - 1, j]
            c2 = cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    return backtrace(trace)


def median_filter(x: torch.Tensor, width: int) -> torch.Tensor:
    """openai-whisper's ``median_filter`` (reflect padding, a median over ``width`` frames along the
    last axis), exactly, without its sort: on CPU it sorts a (heads, tokens, frames, width) copy, a
    large part of the alignment pass. Here the median comes from an odd-even transposition network
    of element-wise min/max over ``width`` shifted views (the values are the same, since min and
    max only select). On CUDA openai-whisper's own filter runs
    (one Triton kernel instead of ~40 element-wise launches)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    if x.is_cuda:
        from whisper.timing import median_filter as whisper_median_filter

        return whisper_median_filter(x, width)
    padded = F.pad(x.reshape(-1, 1, x.shape[-1]), (pad, pad), mode="reflect").reshape(*x.shape[:-1], -1)
    n = x.shape[-1]
    v = [padded[..., i : i + n] for i in range(width)]
    for r in range(width):
        for i in range(r % 2, width - 1, 2):
            v[i], v[i + 1] = torch.minimum(v[i], v[i + 1]), torch.maximum(v[i], v[i + 1])
    return v[pad]


def dtw(x: torch.Tensor) -> np.ndarray:
    return _dtw_sequential(x.double().cpu().numpy())


@dataclass
class AlignJob:
    """One window to align: its text tokens, encoder features (n_audio_ctx, n_state) and frame count."""

    tokenizer: object
    text_tokens: list
    features: torch.Tensor
    num_frames: int
    row: int | None = None  # the window's row in ``cross_kv`` (see find_alignments)


def _alignment_pairs(model) -> list[tuple[int, int]]:
    return [tuple(p) for p in model.alignment_heads.indices().T.tolist()]


def _decoder_forward(
    model, tokens: torch.Tensor, features: torch.Tensor, kv: dict | None, heads_by_layer: dict[int, list[int]]
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """``TextDecoder.forward`` without a self-attention cache, up to the final layer norm, and the
    cross-attention logits ``q k^T / sqrt(d)`` of the alignment heads only: ``{layer: (B, heads, T, frames)}``.

    Every attention runs through SDPA; only the alignment heads' (B, T, frames) logits are
    materialised (openai-whisper's ``disable_sdpa`` computes them for every head of every layer).
    ``kv`` holds precomputed cross-attention keys/values (the ones decoding computed), so the
    audio features are not projected again."""
    dec = model.decoder
    x = dec.token_embedding(tokens) + dec.positional_embedding[: tokens.shape[-1]]
    x = x.to(features.dtype)
    qks: dict[int, torch.Tensor] = {}
    for li, block in enumerate(dec.blocks):
        x = x + block.attn(block.attn_ln(x), mask=dec.mask)[0]
        ca = block.cross_attn
        q = ca.query(block.cross_attn_ln(x))
        k = kv[ca.key] if kv is not None else ca.key(features)
        v = kv[ca.value] if kv is not None else ca.value(features)
        n_batch, n_ctx, n_state = q.shape
        q = q.view(n_batch, n_ctx, ca.n_head, -1).transpose(1, 2)
        k = k.view(*k.shape[:2], ca.n_head, -1).transpose(1, 2)
        v = v.view(*v.shape[:2], ca.n_head, -1).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, k, v)
        x = x + ca.out(o.transpose(1, 2).flatten(start_dim=2))
        heads = heads_by_layer.get(li)
        if heads:
            scale = (n_state // ca.n_head) ** -0.25
            qks[li] = ((q[:, heads] * scale) @ (k[:, heads] * scale).transpose(-1, -2)).float()
        x = x + block.mlp(block.mlp_ln(x))
    return dec.ln(x), qks


@torch.no_grad()
def find_alignments(
    model, jobs: list[AlignJob], medfilt_width: int = 7, qk_scale: float = 1.0, cross_kv: dict | None = None
) -> list[list[WordTiming]]:
    """openai-whisper's ``find_alignment`` for many windows, with one decoder forward per chunk of windows.

    ``cross_kv`` (from ``decoding.decode_windows``): the cross-attention keys/values of the batch,
    indexed by each job's ``row``; without it the features are projected here."""
    out: list[list[WordTiming]] = [[] for _ in jobs]
    todo = [i for i, j in enumerate(jobs) if j.text_tokens]
    if not todo:
        return out
    pairs = _alignment_pairs(model)
    heads_by_layer: dict[int, list[int]] = {}
    for layer, head in pairs:
        heads_by_layer.setdefault(layer, []).append(head)
    # chunks bounded by windows x tokens, so the kept attention weights stay small on any model
    chunks, cur, cur_len = [], [], 0
    for i in sorted(todo, key=lambda i: len(jobs[i].text_tokens)):
        n = len(jobs[i].text_tokens) + 8
        if cur and (len(cur) + 1) * max(cur_len, n) > MAX_ALIGN_CELLS:
            chunks.append(cur)
            cur, cur_len = [], 0
        cur.append(i)
        cur_len = max(cur_len, n)
    if cur:
        chunks.append(cur)
    for chunk in chunks:
        chunk.sort()  # batch order: the rows of ``cross_kv`` are then often one slice, not a copy
        rows = []
        for i in chunk:
            tok = jobs[i].tokenizer
            rows.append([*tok.sot_sequence, tok.no_timestamps, *jobs[i].text_tokens, tok.eot])
        width = max(len(r) for r in rows)
        tokens = torch.tensor(
            [r + [jobs[chunk[0]].tokenizer.eot] * (width - len(r)) for r in rows], device=model.device
        )
        features = torch.stack([jobs[i].features for i in chunk])
        kv = None
        if cross_kv and all(jobs[i].row is not None for i in chunk):
            sel = [jobs[i].row for i in chunk]
            if sel == list(range(sel[0], sel[0] + len(sel))):
                kv = {m: t[sel[0] : sel[0] + len(sel)] for m, t in cross_kv.items()}
            else:
                idx = torch.tensor(sel, device=features.device)
                kv = {m: t.index_select(0, idx) for m, t in cross_kv.items()}
        hidden, qks = _decoder_forward(model, tokens, features, kv, heads_by_layer)
        # vocabulary logits only where a text token is predicted (not the prompt, EOT or padding)
        n_sots = [len(jobs[i].tokenizer.sot_sequence) for i in chunk]
        n_texts = [len(jobs[i].text_tokens) for i in chunk]
        picked = torch.cat([hidden[b, n_sots[b] : n_sots[b] + n_texts[b]] for b in range(len(chunk))])
        text_logits = output_logits(model.decoder, picked).split(n_texts)
        # (windows, alignment heads, tokens, frames), heads in openai-whisper's order
        pos = {layer: {h: k for k, h in enumerate(hs)} for layer, hs in heads_by_layer.items()}
        stacked = torch.stack([qks[layer][:, pos[layer][head]] for layer, head in pairs], dim=1)
        for b, i in enumerate(chunk):
            job = jobs[i]
            tok = job.tokenizer
            token_probs = text_logits[b][:, : tok.eot].softmax(dim=-1)
            text_token_probs = token_probs[np.arange(len(job.text_tokens)), job.text_tokens].tolist()
            # rows: the prompt, no_timestamps (predicts the first text token), the text, EOT
            out[i] = word_timings(
                tok,
                job.text_tokens,
                stacked[b, :, : len(rows[b])],
                n_sots[b],
                text_token_probs,
                job.num_frames,
                medfilt_width,
                qk_scale,
            )
    return out


def word_timings(
    tok,
    text_tokens: list[int],
    qk: torch.Tensor,
    first: int,
    text_token_probs: list[float],
    num_frames: int,
    medfilt_width: int = 7,
    qk_scale: float = 1.0,
) -> list[WordTiming]:
    """openai-whisper's ``find_alignment`` after the forward pass, for one window.

    ``qk``: the alignment heads' cross-attention logits (heads, rows, frames), one row per query
    position; rows ``first .. first + len(text_tokens)`` are the queries that predict each text token
    and then EOT (the DTW matrix); every row enters the per-frame normalisation."""
    weights = qk[:, :, : num_frames // 2]
    weights = (weights * qk_scale).softmax(dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = (weights - mean) / std
    # the filter runs along frames, so only the matrix rows need it
    matrix = median_filter(weights[:, first : first + len(text_tokens) + 1], medfilt_width).mean(axis=0)
    text_indices, time_indices = dtw(-matrix)
    words, word_tokens = tok.split_to_word_tokens(text_tokens + [tok.eot])
    if len(word_tokens) <= 1:
        return []
    word_boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    start_times = jump_times[word_boundaries[:-1]]
    end_times = jump_times[word_boundaries[1:]]
    word_probabilities = [np.mean(text_token_probs[a:z]) for a, z in zip(word_boundaries[:-1], word_boundaries[1:])]
    return [
        WordTiming(w, t, s, e, p)
        for w, t, s, e, p in zip(words, word_tokens, start_times, end_times, word_probabilities)
    ]


def word_timings_from_decoding(
    tok,
    sampled: list[int],
    text_tokens: list[int],
    attention: torch.Tensor | None,
    step_logprobs: list[float] | None,
    prompt_length: int,
    num_frames: int,
    medfilt_width: int = 7,
    qk_scale: float = 1.0,
) -> list[WordTiming] | None:
    """Word timings from the cross-attention the greedy decoding computed anyway (no second pass).

    ``attention``: the alignment heads' logits of every query position of the decoding,
    (positions, heads, frames): the ``prompt_length`` prompt positions, then one per step; the query
    at position ``prompt_length - 1 + j`` predicted ``sampled[j]`` (and, at ``j = len(sampled)``,
    EOT). The DTW matrix is the rows that predicted the text tokens and EOT (timestamp rows are
    left out); the SOT sequence's rows join the normalisation, as in openai-whisper's pass, whose
    prompt is ``sot_sequence + no_timestamps`` where the decoding's is ``sot_sequence`` (after any
    initial prompt, whose rows are left out). Word probabilities are the decoding's own token
    probabilities. None when the decoding did not end with EOT (cut at the length limit) or its
    text is not ``text_tokens``: the caller aligns in a separate pass."""
    n = len(sampled)
    if attention is None or step_logprobs is None or attention.shape[0] < prompt_length + n or len(step_logprobs) <= n:
        return None
    steps = [j for j, t in enumerate(sampled) if t < tok.eot]
    if not steps or [sampled[j] for j in steps] != list(text_tokens):
        return None
    last = prompt_length - 1  # the query that predicted the first sampled token
    # the normalisation's leading rows: the SOT sequence's (an initial prompt before it is left out,
    # as openai-whisper's pass has none)
    lead = list(range(max(0, prompt_length - len(tok.sot_sequence)), last))
    rows = lead + [last + j for j in steps] + [last + n]
    qk = attention[rows].transpose(0, 1).float()
    probs = [float(np.exp(step_logprobs[j])) for j in steps]
    return word_timings(tok, list(text_tokens), qk, len(lead), probs, num_frames, medfilt_width, qk_scale)


def text_tokens_of(segments: list[dict], tokenizer) -> list[int]:
    return [t for s in segments for t in s["tokens"] if t < tokenizer.eot]


def apply_alignment(
    segments: list[dict],
    alignment: list[WordTiming],
    tokenizer,
    offset: float,
    window_duration: float,
    last_speech: float,
) -> float:
    """openai-whisper's ``add_word_timestamps`` after the alignment (its heuristics, unchanged), then
    words clamped to the window. Fills ``segment["words"]``; returns the new last-speech time."""
    if not segments:
        return last_speech
    text_tokens_per_segment = [[t for t in s["tokens"] if t < tokenizer.eot] for s in segments]
    word_durations = np.array([t.end - t.start for t in alignment])
    word_durations = word_durations[word_durations.nonzero()]
    median_duration = np.median(word_durations) if len(word_durations) > 0 else 0.0
    median_duration = min(0.7, float(median_duration))
    max_duration = median_duration * 2
    if len(word_durations) > 0:
        sentence_end_marks = ".。!！?？"
        for i in range(1, len(alignment)):
            if alignment[i].end - alignment[i].start > max_duration:
                if alignment[i].word in sentence_end_marks:
                    alignment[i].end = alignment[i].start + max_duration
                elif alignment[i - 1].word in sentence_end_marks:
                    alignment[i].start = alignment[i].end - max_duration
    merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    seek = offset * SAMPLE_RATE / HOP_LENGTH
    time_offset = seek * HOP_LENGTH / SAMPLE_RATE
    word_index = 0
    for segment, text_tokens in zip(segments, text_tokens_per_segment):
        segment["seek"] = seek
        saved_tokens = 0
        words = []
        while word_index < len(alignment) and saved_tokens < len(text_tokens):
            timing = alignment[word_index]
            if timing.word:
                words.append(
                    {
                        "word": timing.word,
                        "start": round(time_offset + timing.start, 2),
                        "end": round(time_offset + timing.end, 2),
                        "probability": timing.probability,
                    }
                )
            saved_tokens += len(timing.tokens)
            word_index += 1
        if len(words) > 0:
            if words[0]["end"] - last_speech > median_duration * 4 and (
                words[0]["end"] - words[0]["start"] > max_duration
                or (len(words) > 1 and words[1]["end"] - words[0]["start"] > max_duration * 2)
            ):
                if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
                    boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
                    words[0]["end"] = words[1]["start"] = boundary
                words[0]["start"] = max(0, words[0]["end"] - max_duration)
            if segment["start"] < words[0]["end"] and segment["start"] - 0.5 > words[0]["start"]:
                words[0]["start"] = max(0, min(words[0]["end"] - median_duration, segment["start"]))
            else:
                segment["start"] = words[0]["start"]
            if segment["end"] > words[-1]["start"] and segment["end"] + 0.5 < words[-1]["end"]:
                words[-1]["end"] = max(words[-1]["start"] + median_duration, segment["end"])
            else:
                segment["end"] = words[-1]["end"]
            last_speech = segment["end"]
        segment["words"] = words
    # our addition: words stay inside their window
    end = offset + window_duration
    for s in segments:
        for w in s.get("words", []):
            w["start"] = min(max(w["start"], offset), end)
            w["end"] = min(max(w["end"], w["start"]), end)
        if s.get("words"):
            s["start"] = min(s["start"], s["words"][0]["start"])
            s["end"] = max(s["end"], s["words"][-1]["end"])
            last_speech = s["end"]
    return last_speech


def num_frames_for(window_duration: float) -> int:
    return max(1, min(3000, int(round(window_duration * SAMPLE_RATE / HOP_LENGTH))))
