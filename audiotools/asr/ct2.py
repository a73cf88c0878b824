"""CTranslate2 (faster-whisper) Whisper models -> openai-whisper ``Whisper`` state dicts.

A CTranslate2 ``model.bin`` is a flat binary: a uint32 format version, the spec name and
revision, then named tensors (rank, dims, dtype id, byte count, raw little-endian data), then
aliases. CTranslate2 fuses the attention projections (self-attention q|k|v, cross-attention
k|v); openai-whisper keeps them separate, and its key projections have no bias.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from audiotools.errors import ModelError

# CTranslate2 DataType ids (include/ctranslate2/types.h)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BF16 = 5


def _read(f: BinaryIO, fmt: str):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ModelError(f"{getattr(f, 'name', 'model.bin')}: truncated CTranslate2 model file")
    return struct.unpack(fmt, data)


def _read_str(f: BinaryIO) -> str:
    (n,) = _read(f, "<H")
    raw = f.read(n)
    return raw.rstrip(b"\0").decode("utf-8")


class _Concat:
    """Read several files (model.bin.part1, part2, ...) as one stream, without joining them on disk."""

    def __init__(self, paths: list[Path]):
        # a reader that keeps its current part open across read() calls; close() closes it
        self.paths, self.i, self.f = paths, 0, open(paths[0], "rb")  # noqa: SIM115
        self.name = str(paths[0])

    def read(self, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            chunk = self.f.read(n)
            if not chunk:
                if self.i + 1 >= len(self.paths):
                    break
                self.f.close()
                self.i += 1
                self.f = open(self.paths[self.i], "rb")  # noqa: SIM115
                continue
            out += chunk
            n -= len(chunk)
        return bytes(out)

    def close(self):
        self.f.close()


def model_bin_parts(model_dir: str | os.PathLike, extra_dirs: list[Path] | None = None) -> list[Path]:
    """model.bin, or model.bin.part1, part2, ... (possibly spread over several directories)."""
    model_dir = Path(model_dir)
    if (model_dir / "model.bin").is_file():
        return [model_dir / "model.bin"]
    dirs = [model_dir] + list(extra_dirs or [])
    parts = {}
    for d in dirs:
        for p in d.glob("model.bin.part*"):
            suffix = p.name[len("model.bin.part") :]
            if suffix.isdigit():
                parts[int(suffix)] = p
    if not parts or sorted(parts) != list(range(1, max(parts) + 1)):
        raise ModelError(f"{model_dir}: no CTranslate2 model.bin (or a complete set of model.bin.partN files)")
    return [parts[k] for k in sorted(parts)]


def iter_variables(paths: list[Path]) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, array) for every variable in a CTranslate2 model.bin (split files allowed)."""
    f = _Concat(paths)
    try:
        (version,) = _read(f, "<I")
        if version < 4 or version > 6:
            raise ModelError(f"{paths[0]}: unsupported CTranslate2 model version {version}")
        spec = _read_str(f)
        _read(f, "<I")  # spec revision
        if "Whisper" not in spec:
            raise ModelError(f"{paths[0]}: not a Whisper model (spec {spec!r})")
        (count,) = _read(f, "<I")
        for _ in range(count):
            name = _read_str(f)
            (rank,) = _read(f, "<B")
            dims = _read(f, f"<{rank}I") if rank else ()
            type_id, nbytes = _read(f, "<BI")
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ModelError(f"{paths[0]}: truncated CTranslate2 model file (variable {name})")
            if type_id == _BF16:
                arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif type_id in _DTYPES:
                arr = np.frombuffer(raw, dtype=np.dtype(_DTYPES[type_id]).newbyteorder("<"))
            else:
                raise ModelError(f"{paths[0]}: unsupported tensor type id {type_id} for {name}")
            yield name, arr.reshape(dims)
        if version >= 3:
            (n_alias,) = _read(f, "<I")
            for _ in range(n_alias):
                alias, target = _read_str(f), _read_str(f)
                yield "@alias:" + alias, np.array([target])
    finally:
        f.close()


def read_config(model_dir: str | os.PathLike) -> dict:
    p = Path(model_dir) / "config.json"
    if not p.is_file():
        return {}
    cfg = json.loads(p.read_text())
    for k in ("lang_ids", "suppress_ids"):
        if isinstance(cfg.get(k), str):
            cfg[k] = json.loads(cfg[k])
    return cfg


def convert_to_whisper_state(paths: list[Path], config: dict) -> tuple[dict, dict[str, np.ndarray], list]:
    """Return (dims, state_dict, alignment_heads) for openai-whisper's ``Whisper`` module."""
    v = {n: a for n, a in iter_variables(paths) if not n.startswith("@alias:")}
    sd: dict[str, np.ndarray] = {}

    def lin(dst: str, src: str, bias: bool = True):
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def ln(dst: str, src: str):
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def split(arr: np.ndarray, n: int) -> list[np.ndarray]:
        return np.split(arr, n, axis=0)

    def count_layers(prefix: str) -> int:
        return len({m.group(1) for k in v if (m := re.match(rf"{prefix}/layer_(\d+)/", k))})

    n_audio_layer, n_text_layer = count_layers("encoder"), count_layers("decoder")
    for name in ("conv1", "conv2"):
        lin(f"encoder.{name}", f"encoder/{name}")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]

    def block(s: str, d: str) -> None:
        """Self-attention (fused q|k|v split; key without bias) and MLP of one residual block."""
        q, k, vv = split(v[f"{s}/self_attention/linear_0/weight"], 3)
        qb, _kb, vb = split(v[f"{s}/self_attention/linear_0/bias"], 3)
        sd.update(
            {
                f"{d}.attn.query.weight": q,
                f"{d}.attn.query.bias": qb,
                f"{d}.attn.key.weight": k,
                f"{d}.attn.value.weight": vv,
                f"{d}.attn.value.bias": vb,
            }
        )
        lin(f"{d}.attn.out", f"{s}/self_attention/linear_1")
        ln(f"{d}.attn_ln", f"{s}/self_attention/layer_norm")
        lin(f"{d}.mlp.0", f"{s}/ffn/linear_0")
        lin(f"{d}.mlp.2", f"{s}/ffn/linear_1")
        ln(f"{d}.mlp_ln", f"{s}/ffn/layer_norm")

    for i in range(n_audio_layer):
        block(f"encoder/layer_{i}", f"encoder.blocks.{i}")
    ln("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_text_layer):
        s, d = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        block(s, d)
        lin(f"{d}.cross_attn.query", f"{s}/attention/linear_0")
        k, vv = split(v[f"{s}/attention/linear_1/weight"], 2)
        _kb, vb = split(v[f"{s}/attention/linear_1/bias"], 2)
        sd.update(
            {f"{d}.cross_attn.key.weight": k, f"{d}.cross_attn.value.weight": vv, f"{d}.cross_attn.value.bias": vb}
        )
        lin(f"{d}.cross_attn.out", f"{s}/attention/linear_2")
        ln(f"{d}.cross_attn_ln", f"{s}/attention/layer_norm")
    ln("decoder.ln", "decoder/layer_norm")

    conv1 = v["encoder/conv1/weight"]
    tok = v["decoder/embeddings/weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(tok.shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(tok.shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    heads = config.get("alignment_heads") or []
    sd = {k: np.ascontiguousarray(a) for k, a in sd.items()}
    return dims, sd, [list(map(int, h)) for h in heads]
