"""CPU weight layout: Linear weights stored transposed (column-major), same values, same results.

``nn.Linear`` keeps its weight as (out, in), row-major, and computes ``x @ W.T``. For the few rows
of a decoding step (one token per window), oneDNN/MKL runs faster when ``W.T`` is the contiguous
operand (docs/batch.md); for the encoder's 1500 rows both layouts run at the same speed. The GEMM
only reads its operand in another order (tests hold the outputs equal to 1e-5).
So on a CPU every float32 Linear weight is copied once into a contiguous (in, out) buffer and the
parameter becomes its transposed view: the model's memory does not grow, and ``weight`` still
reads as (out, in) for every caller.

The vocabulary projection (the token embedding's transpose, 51865 x 512: 106 MB for base) is the
exception: measured on 2 cores, ``x @ E^T`` with ``E^T`` contiguous takes 7 ms for one row but 34 ms
for 5 (a beam) and 31 ms for 16, while ``(E @ x^T)^T`` with ``E`` row-major takes 14, 11 and 24 ms.
So the embedding keeps its rows and the decoder gets a column-major copy, ``vocab_columns``, for
single-row steps (:func:`audiotools.asr.quantize.output_logits` picks the form by row count).
"""

from __future__ import annotations

import torch
from torch import nn


def _transposed_storage(p: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(p.detach().t().contiguous().t(), requires_grad=p.requires_grad)


def column_major_linears(model: nn.Module, embedding: bool = True) -> nn.Module:
    """Re-lay every float32 ``nn.Linear`` weight of ``model`` (in place) and, with ``embedding``,
    give the decoder a column-major copy of its token embedding (``vocab_columns``); returns the model."""
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.weight.dtype == torch.float32 and module.weight.is_contiguous():
            module.weight = _transposed_storage(module.weight)
    decoder = getattr(model, "decoder", None)
    emb = getattr(decoder, "token_embedding", None)
    if embedding and isinstance(emb, nn.Embedding) and emb.weight.dtype == torch.float32 and emb.weight.is_contiguous():
        decoder.vocab_columns = emb.weight.detach().t().contiguous()  # (n_state, n_vocab), for one-row steps
    return model
