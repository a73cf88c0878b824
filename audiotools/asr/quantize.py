"""Compute types for the Whisper model: float32, float16, bfloat16 (encoder), int8 (CPU, dynamic
quantisation) and int8_bfloat16 (bfloat16 encoder, int8 decoder).

``bfloat16`` runs the encoder's convolutions and matmuls in bfloat16 (layer norms, softmax
statistics and the decoder stay float32; the encoder output is handed to the decoder as float32). It
pays only on CPUs with native bfloat16 matmuls (AMX); where bfloat16 is emulated it is slower than
float32 (benchmarks/results/batch.json has the figures of the machine that measured them). The
features differ from float32 by ~1.4 % (relative L2), about what float16 changes on a GPU. The
decoder is kept float32 because its many small matmuls gain little and openai-whisper's decoding
checks the feature dtype. ``int8_bfloat16`` combines that encoder with the int8 decoder below
(CTranslate2 has a compute type of the same name).

``int8`` replaces every ``nn.Linear`` of the model (openai-whisper's ``whisper.model.Linear``
subclasses included: attention projections and MLPs of encoder and decoder) and the decoder's output
projection onto the vocabulary (``x @ token_embedding.weight.T``, the largest matmul of a decoding
step) by ``Int8Linear``: weights stored as int8, one symmetric scale per output channel; activations
quantised per call (dynamic quantisation), then one fbgemm int8 GEMM with the dequantisation and
bias fused. The convolutions, layer norms and the token/positional embeddings stay float32.
Cross-attention hooks (word timestamps) and the kv-cache hooks see the same modules
(``MultiHeadAttention``) and tensors as before, only computed from int8 weights.

Which kernel: torch's eager int8 path is ``quantized::linear_dynamic`` (fbgemm on x86), the op
behind ``torch.ao.quantization.quantize_dynamic``. torch 2.13 marks ``torch.ao.quantization`` and
the quantised tensor dtypes as deprecated (a warning on every use) and points to torchao; torchao's
``Int8DynamicActivationInt8WeightConfig`` gains nothing over float32 on a CPU in eager mode (it
needs ``torch.compile`` for speed), while fbgemm's dynamic int8 GEMM does. So audiotools builds the
packed weights itself with the fbgemm ops (no ``torch.ao.quantization`` import), silencing the
deprecation warnings of the one-off weight packing only; if a later torch drops the ops, ``int8``
fails with a one-line ModelError and the float compute types keep working.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

COMPUTE_TYPES = ("float32", "float16", "bfloat16", "int8", "int8_bfloat16")


def resolve_compute_type(compute_type: str | None, device: str, fp16: bool | None = None) -> str:
    """The compute type to run: ``compute_type`` when set; else the legacy ``fp16`` flag (True:
    float16, False: float32); else float16 on CUDA, float32 on CPU."""
    from audiotools.errors import UsageError

    cuda = str(device).startswith("cuda")
    if compute_type in (None, "auto", "default"):
        if fp16 is not None:
            return "float16" if fp16 else "float32"
        return "float16" if cuda else "float32"
    ct = {"fp32": "float32", "fp16": "float16", "half": "float16", "qint8": "int8", "bf16": "bfloat16"}.get(
        compute_type, compute_type
    )
    if ct not in COMPUTE_TYPES:
        raise UsageError(f"unknown compute type {compute_type!r} (choose from {', '.join(COMPUTE_TYPES)})")
    if fp16 is not None and (ct == "float16") != bool(fp16):
        raise UsageError(f"compute_type {ct!r} contradicts fp16={fp16} (fp16 is an alias: leave it unset)")
    if ct.startswith("int8") and cuda:
        raise UsageError(
            "compute type int8 runs on the CPU only (dynamic int8 quantisation via fbgemm); use float16 on CUDA"
        )
    return ct


@contextlib.contextmanager
def _quiet_deprecations():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*deprecated.*")
        yield


def int8_available() -> bool:
    return "fbgemm" in torch.backends.quantized.supported_engines or "x86" in torch.backends.quantized.supported_engines


_FULL_RANGE: bool | None = None


def full_range_safe() -> bool:
    """Whether fbgemm's int8 GEMM on this CPU takes 8-bit activations without saturating.

    Kernels without VNNI add pairs of uint8 x int8 products in int16 (``vpmaddubsw``), which saturates
    at full range; that is why torch quantises activations to 7 bits on x86 by default
    (``reduce_range``), at a cost in accuracy. Probed once: the worst case (every activation 255,
    every weight 127) must come out exact."""
    global _FULL_RANGE
    if _FULL_RANGE is None:
        try:
            w = torch.ones(64, 512)
            x = torch.cat([torch.ones(4, 512), -torch.ones(4, 512)])
            y = Int8Linear(w, None, per_row=False, reduce_range=False)(x)
            _FULL_RANGE = bool(((y - x @ w.T).abs().max() / 512) < 0.02)
        except Exception:
            _FULL_RANGE = False
    return _FULL_RANGE


class Int8Linear(nn.Module):
    """``y = x @ W.T + b`` with ``W`` int8 (symmetric, per output channel) and ``x`` quantised on the
    fly, via fbgemm's ``quantized::linear_dynamic``.

    ``per_row``: every row (token) of ``x`` is scaled to max |x| = 1 before the op and its output
    scaled back, so the op's per-tensor activation range fits every token (what CTranslate2 does
    with per-row scales); without it one loud token coarsens the whole batch (measured on the quick
    benchmark corpus, base: 9.7 % vs 3.9 % word disagreement with float32). ``reduce_range``: 7-bit
    activations; None: only where the CPU needs it (``full_range_safe``)."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        per_row: bool = True,
        reduce_range: bool | None = None,
    ):
        super().__init__()
        self.per_row = per_row
        self.reduce_range = (not full_range_safe()) if reduce_range is None else reduce_range
        from audiotools.errors import ModelError

        w = weight.detach().to("cpu", torch.float32).contiguous()
        self.out_features, self.in_features = w.shape
        scale = (w.abs().amax(dim=1).double() / 127.0).clamp(min=1e-12)
        b = None if bias is None else bias.detach().to("cpu", torch.float32).contiguous()
        self.register_buffer("bias", b if per_row else None, persistent=False)
        try:
            with _quiet_deprecations():
                qw = torch.quantize_per_channel(w, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)
                self._packed = torch.ops.quantized.linear_prepack(qw, None if per_row else b)
        except (AttributeError, RuntimeError) as e:
            raise ModelError(
                f"compute type int8 is not available in this torch build ({type(e).__name__}: {str(e).splitlines()[0]})"
            ) from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if not self.per_row:
            return torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)
        # max |x| per row in one pass (no |x| temporary); the output is rescaled in place
        s = torch.linalg.vector_norm(x, float("inf"), dim=-1, keepdim=True).clamp_(min=1e-6)
        y = torch.ops.quantized.linear_dynamic(x * s.reciprocal(), self._packed, self.reduce_range)
        y.mul_(s)
        return y if self.bias is None else y.add_(self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=int8"


def output_logits(decoder, x: torch.Tensor) -> torch.Tensor:
    """The decoder's vocabulary logits for hidden states ``x`` (after ``decoder.ln``), float32:
    the int8 projection when the model is quantised, else ``x @ token_embedding.weight.T``; on a
    CPU float32 model (``vocab_columns``, weight_layout.py) in the faster of two forms for the
    number of rows: one row against the column-major copy, more as ``(E @ x^T)^T``."""
    proj = getattr(decoder, "int8_logits", None)
    if proj is not None:
        return proj(x)
    columns = getattr(decoder, "vocab_columns", None)
    weight = decoder.token_embedding.weight
    if columns is not None and x.dtype == weight.dtype == torch.float32:
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[0] == 1:
            return x @ columns
        return (weight @ flat.t()).t().contiguous().view(*x.shape[:-1], weight.shape[0])
    return (x @ torch.transpose(weight.to(x.dtype), 0, 1)).float()


def _int8_decoder_class():
    from whisper.model import TextDecoder

    class Int8TextDecoder(TextDecoder):
        """openai-whisper's ``TextDecoder.forward`` with the output projection through ``int8_logits``."""

        def forward(self, x, xa, kv_cache=None):
            offset = next(iter(kv_cache.values())).shape[1] if kv_cache else 0
            x = self.token_embedding(x) + self.positional_embedding[offset : offset + x.shape[-1]]
            x = x.to(xa.dtype)
            for block in self.blocks:
                x = block(x, xa, mask=self.mask, kv_cache=kv_cache)
            x = self.ln(x)
            return output_logits(self, x)

    return Int8TextDecoder


_INT8_DECODER = None


def bf16_fast() -> bool:
    """Whether this CPU has native bfloat16 matmuls (AVX512-BF16 or AMX); without them torch
    emulates bfloat16 and the ``bfloat16`` compute types can be slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def bfloat16_encoder(model):
    """Run ``model``'s encoder in bfloat16 (in place; returns the model): its Conv1d and Linear
    weights become bfloat16 (whisper's own Conv1d/Linear cast weights to the input's dtype, its
    LayerNorm computes in float32 and casts back). ``encoder_input_dtype`` tells the callers
    (``encode_features``) to feed it bfloat16 mels and take float32 features back."""
    for mod in model.encoder.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d)):
            mod.to(torch.bfloat16)
    model.encoder_input_dtype = torch.bfloat16
    return model


def encode_features(model, mel: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The encoder's features for ``mel``, in ``dtype`` (the decoder's), whatever the encoder runs in."""
    enc_dtype = getattr(model, "encoder_input_dtype", None)
    if enc_dtype is None:
        return model.encoder(mel.to(dtype))
    return model.encoder(mel.to(enc_dtype)).to(dtype)


def quantize_int8(model, logits: bool = True, encoder: bool = True, **kw):
    """Quantise ``model`` (a float32 openai-whisper ``Whisper`` on the CPU) in place; returns it.

    Every ``nn.Linear`` (any subclass) becomes an ``Int8Linear``; with ``logits`` the decoder's
    vocabulary projection too (the embedding lookup keeps its float weights); ``encoder=False``
    leaves the encoder's layers alone (int8_bfloat16 runs it in bfloat16 instead)."""
    global _INT8_DECODER
    from audiotools.errors import ModelError

    if next(model.parameters()).device.type != "cpu":
        raise ModelError("int8 quantisation needs the model on the CPU")
    if not int8_available():
        raise ModelError("compute type int8 needs torch's fbgemm/x86 quantised engine, not in this torch build")
    targets = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and (encoder or not name.startswith("encoder."))
    ]
    for name, mod in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, Int8Linear(mod.weight, mod.bias, **kw))
    if logits:
        if _INT8_DECODER is None:
            _INT8_DECODER = _int8_decoder_class()
        dec = model.decoder
        dec.int8_logits = Int8Linear(dec.token_embedding.weight, **kw)
        dec.__class__ = _INT8_DECODER
    model.compute_type = "int8"
    return model
