"""The decoder forward of the batched greedy loop: one new token per window per step.

openai-whisper's ``PyTorchInference`` grows each layer's self-attention cache with ``torch.cat``
(the whole cache copied at every step) and keeps every layer's cross-attention keys and values:
for base, 6 layers x 2 x 1500 frames x 512 floats = 37 MB per window, all of it read at every
step. On a CPU that read is the decoding loop's bottleneck: it runs at the memory bandwidth and
was about half of the loop's time for a 16-window batch on 2 cores.

``StepDecoder`` is the same network, computed two ways:

* the self-attention keys/values go into per-layer buffers that grow by doubling; a step reads
  a view of their first positions;
* ``cross="features"`` (CPU, float weights): the cross-attention is computed from the encoder
  output ``X`` itself, kept once per window (3 MB for base, shared by every layer) instead of the
  per-layer keys ``K = X Wk^T`` and values ``V = X Wv^T + bv``. For a head ``h`` with query
  ``q_h``::

      scores_h = q_h K_h^T       = (q_h Wk_h) X^T
      out_h    = softmax(s_h) V_h = (softmax(s_h) X) Wv_h^T + bv_h     (the weights sum to 1)

  Two small batched matmuls per layer against ``X^T`` (stored contiguous, read twice in a row so
  the second read comes from cache) replace reading ``K`` and ``V``, and the first step no longer
  projects the keys and values of every layer (two 1500 x 512 x 512 matmuls per layer per window).
  The results differ from the projected form by float rounding only (~1e-6 relative).
  Measured on 2 cores, 16 windows x 6 layers: 26.7 -> 20.4 ms per step for the cross-attention.
* ``cross="kv"``: openai-whisper's keys/values, projected at the first step (CUDA, where
  memory is fast and float16/bfloat16 weights are used; int8 models, whose projections are
  quantised). The loop reads its own copy laid out head by head, (B, heads, frames, d), which
  single-query SDPA reads ~20 % faster on a CPU than the projection's rows; with
  ``keep_projections`` the projections themselves are kept in ``projected`` for word alignment.

With ``align_pairs`` (the model's alignment heads, as ``(layer, head)``), each step also keeps
those heads' cross-attention logits ``q k^T / sqrt(d)`` in ``last_qk``, (B, T, heads, frames): word
timestamps can then come from the decoding itself (timing.word_timings_from_decoding) instead of a
second decoder pass.

Greedy passes drop ended windows with ``keep_rows``. Beam search and best-of-n sampling decode
``group`` rows per window (openai-whisper repeats each window's prompt ``n_group`` times, rows of
one window next to each other): the cross-attention state is then kept once per window and the
group's queries are computed against it together, ``(windows, group x tokens)``, instead of every
row holding its own copy. openai-whisper's ``PyTorchInference`` projects and keeps the keys and
values of each of the ``group`` identical copies: for beam 5 on a 1 s window that made the first
step take 3.2 s and every later step read 185 MB (0.18 s a step on 2 cores).
``rearrange_kv_cache`` reorders the self-attention rows as beam search picks its survivors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiotools.asr.quantize import output_logits


def cross_from_features(model) -> bool:
    """Whether ``model``'s cross-attention can be computed from the encoder output: a CPU model whose
    cross-attention key and value projections are float32 ``nn.Linear`` layers."""
    if model.device.type != "cpu":
        return False
    for block in model.decoder.blocks:
        for lin in (block.cross_attn.key, block.cross_attn.value):
            if not isinstance(lin, nn.Linear) or lin.weight.dtype != torch.float32:
                return False
    return True


def _heads(t: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, n_state) -> (B, heads, T, d) view."""
    b, n, d = t.shape
    return t.view(b, n, n_head, d // n_head).transpose(1, 2)


class StepDecoder:
    """Inference for a greedy ``DecodingTask``: ``logits(tokens, audio_features)`` as in
    openai-whisper (the whole initial prompt at the first call, the last token after that)."""

    def __init__(
        self,
        model,
        cross: str | None = None,
        keep_projections: bool = False,
        align_pairs: list[tuple[int, int]] | None = None,
        group: int = 1,
    ):
        self.model = model
        self.group = group  # consecutive rows per window that share its audio (beam size, best-of-n)
        self.keep_projections = keep_projections
        self.align_heads: dict[int, list[int]] = {}  # layer -> alignment heads, in pair order
        for layer, head in align_pairs or []:
            self.align_heads.setdefault(layer, []).append(head)
        order = [(layer, h) for layer in sorted(self.align_heads) for h in self.align_heads[layer]]
        # position of each pair in the layer-by-layer concatenation
        self.align_order = [order.index(tuple(p)) for p in align_pairs or []]
        self.last_qk: torch.Tensor | None = None
        self.cross = cross or ("features" if cross_from_features(model) else "kv")
        self.n_head = model.dims.n_text_head
        self.length = 0  # positions in the self-attention cache
        self.self_kv: list[list[torch.Tensor]] = []  # per layer [keys, values]: (B, capacity, n_state)
        self.cross_kv: dict = {}  # "kv": {projection module: (B, heads, frames, d)}
        self.projected: dict = {}  # "kv" with keep_projections: {module: (B, frames, n_state)}
        self.xt: torch.Tensor | None = None  # "features": (B, n_state, frames), contiguous

    # ---------------------------------------------------------------- per step
    @torch.inference_mode()
    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        dec = self.model.decoder
        first = self.length == 0
        if not first:
            tokens = tokens[:, -1:]
        if first:
            self._start(audio_features)
        n_new = tokens.shape[1]
        start, end = self.length, self.length + n_new
        x = dec.token_embedding(tokens) + dec.positional_embedding[start:end]
        x = x.to(audio_features.dtype)
        qks: list[torch.Tensor] = []
        for li, block in enumerate(dec.blocks):
            x = x + self._self_attention(li, block, block.attn_ln(x), start, end)
            x = x + self._cross_attention(block.cross_attn, block.cross_attn_ln(x), self.align_heads.get(li), qks)
            x = x + block.mlp(block.mlp_ln(x))
        self.length = end
        if qks:
            qk = torch.cat(qks, dim=2)
            self.last_qk = qk if self.align_order == sorted(self.align_order) else qk[:, :, self.align_order]
        return output_logits(dec, dec.ln(x))

    def _start(self, audio_features: torch.Tensor) -> None:
        if self.group > 1:  # the rows of a window share its features: one copy per window
            audio_features = audio_features[:: self.group]
        if self.cross == "features":
            self.xt = audio_features.transpose(1, 2).contiguous()
        else:
            for block in self.model.decoder.blocks:
                for proj in (block.cross_attn.key, block.cross_attn.value):
                    t = proj(audio_features)
                    if self.keep_projections:
                        self.projected[proj] = t
                    self.cross_kv[proj] = _heads(t, self.n_head).contiguous()

    def _self_attention(self, li: int, block, h: torch.Tensor, start: int, end: int) -> torch.Tensor:
        attn = block.attn
        q, k, v = attn.query(h), attn.key(h), attn.value(h)
        if li == len(self.self_kv):
            self.self_kv.append([None, None])
        bufs = self.self_kv[li]
        for j, new in enumerate((k, v)):
            buf = bufs[j]
            if buf is None or end > buf.shape[1]:
                grown = new.new_empty((new.shape[0], max(2 * end, 32), new.shape[2]))
                if start:
                    grown[:, :start] = buf[:, :start]
                bufs[j] = buf = grown
            buf[:, start:end] = new
        keys, values = bufs[0][:, :end], bufs[1][:, :end]
        o = F.scaled_dot_product_attention(
            _heads(q, self.n_head), _heads(keys, self.n_head), _heads(values, self.n_head), is_causal=end - start > 1
        )
        return attn.out(o.transpose(1, 2).flatten(start_dim=2))

    def _cross_attention(
        self, ca, h: torch.Tensor, heads: list[int] | None = None, qks: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The cross-attention output; with ``heads``, those heads' logits (B, T, len(heads), frames)
        are appended to ``qks`` (``group`` 1 only)."""
        q = ca.query(h)  # (B, T, n_state)
        if self.group > 1:  # (windows, group x T, n_state): each query attends independently
            if heads:
                raise ValueError("alignment heads are kept for one row per window only")
            rows, t0, n_state = q.shape
            o = self._cross(ca, q.reshape(rows // self.group, self.group * t0, n_state))
            return o.reshape(rows, t0, n_state)
        return self._cross(ca, q, heads, qks)

    def _cross(
        self, ca, q: torch.Tensor, heads: list[int] | None = None, qks: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        b, t, n_state = q.shape
        hd = n_state // self.n_head
        if self.cross == "kv":
            qh = _heads(q, self.n_head)
            keys = self.cross_kv[ca.key]
            o = F.scaled_dot_product_attention(qh, keys, self.cross_kv[ca.value])
            if heads:  # head by head: keys[:, h] is a view, keys[:, heads] would copy them
                qks.append(torch.stack([qh[:, h] @ keys[:, h].transpose(-1, -2) for h in heads], dim=2).mul_(hd**-0.5))
            return ca.out(o.transpose(1, 2).flatten(start_dim=2))
        wk = ca.key.weight.view(self.n_head, hd, n_state)  # (heads, d, n_state)
        wv = ca.value.weight.view(self.n_head, hd, n_state)
        # q_h Wk_h for every (token, head): (B, T * heads, n_state)
        qk = torch.einsum("bthd,hde->bthe", q.view(b, t, self.n_head, hd), wk).reshape(b, t * self.n_head, n_state)
        scores = torch.bmm(qk, self.xt).mul_(hd**-0.5)  # (B, T * heads, frames)
        if heads:
            qks.append(scores.view(b, t, self.n_head, -1)[:, :, heads])
        weights = scores.softmax(dim=-1)
        ctx = torch.bmm(self.xt, weights.transpose(1, 2))  # (B, n_state, T * heads): softmax(s) X
        o = torch.einsum("beth,hde->bthd", ctx.view(b, n_state, t, self.n_head), wv)
        o = o + ca.value.bias.view(self.n_head, hd)
        return ca.out(o.reshape(b, t, n_state))

    # ---------------------------------------------------------------- rows
    def keep_rows(self, holes: torch.Tensor, fillers: torch.Tensor, n_keep: int) -> None:
        """Drop rows from every cache: row ``fillers[i]`` moves to ``holes[i]``, then the first
        ``n_keep`` rows are kept (each moved row is one contiguous copy per tensor)."""
        pairs = list(zip(holes.tolist(), fillers.tolist()))

        def cut(t: torch.Tensor) -> torch.Tensor:
            for h, f in pairs:
                t[h].copy_(t[f])
            return t[:n_keep]

        self.self_kv = [[cut(k), cut(v)] for k, v in self.self_kv]
        if self.xt is not None:
            self.xt = cut(self.xt)
        for m in list(self.cross_kv):
            self.cross_kv[m] = cut(self.cross_kv[m])

    def rearrange_kv_cache(self, source_indices: list[int]) -> None:
        """Beam search's survivors: row ``i`` continues from row ``source_indices[i]`` (a row of the
        same window). Only the self-attention cache depends on the row's tokens."""
        if source_indices == list(range(len(source_indices))):
            return
        idx = torch.tensor(source_indices, device=self.self_kv[0][0].device)
        for bufs in self.self_kv:
            for j, buf in enumerate(bufs):
                moved = buf.new_empty((len(source_indices), *buf.shape[1:]))
                moved[:, : self.length] = buf[idx, : self.length]
                bufs[j] = moved

    def cleanup_caching(self) -> None:
        self.self_kv, self.cross_kv, self.xt, self.length, self.last_qk = [], {}, None, 0, None
        # ``projected`` stays: the caller hands it to word alignment
