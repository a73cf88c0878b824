"""Adapter for pyannote.audio pipelines (optional extra: ``pip install audiotools[pyannote]``).

A pipeline comes from a local directory holding ``config.yaml`` (or the path of that file), or -
when online - from a Hugging Face model id with a token (``--hf-token`` / ``HF_TOKEN``). We call the
real API: ``Pipeline.from_pretrained(local_dir_or_id, token=...)`` and ``pipeline({"waveform",
"sample_rate", "uri"}, num_speakers=..., min_speakers=..., max_speakers=...)``, and take the
``pyannote.core.Annotation`` it returns (pyannote.audio 3.x returns it directly; 4.x returns a
``DiarizeOutput`` whose ``speaker_diarization`` is the annotation; a custom pipeline may return
either). Audio is passed in memory (16 kHz float32), so the pipeline never decodes files itself.

``offline_pipeline(spec)`` says whether a pipeline can be loaded without the network (a local
path, or the model already in the Hugging Face cache): ``--diarizer auto`` uses pyannote only then.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import ModelError, UsageError

log = logging.getLogger(__name__)
DEFAULT_PIPELINE = "pyannote/speaker-diarization-3.1"
_cache: dict[tuple, Any] = {}


def installed() -> bool:
    try:
        return importlib.util.find_spec("pyannote.audio") is not None
    except (ImportError, ValueError):
        return False


def _hf_cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("HF_HUB_CACHE"):
        dirs.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        dirs.append(Path(os.environ["HF_HOME"]) / "hub")
    dirs.append(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface" / "hub")
    return dirs


def cached_snapshot(model_id: str) -> Path | None:
    """The newest cached snapshot directory of ``model_id`` that holds a config.yaml, if any."""
    if "/" not in model_id:
        return None
    name = "models--" + model_id.replace("/", "--")
    for root in _hf_cache_dirs():
        snaps = root / name / "snapshots"
        if snaps.is_dir():
            found = sorted(
                (p for p in snaps.iterdir() if (p / "config.yaml").is_file()),
                key=lambda p: p.stat().st_mtime,
                reverse=True,
            )
            if found:
                return found[0]
    return None


def offline_pipeline(spec: str | os.PathLike | None) -> Path | None:
    """A pipeline that loads without the network: ``spec`` as a local directory/config file, or
    ``spec`` (default: pyannote/speaker-diarization-3.1) found in the Hugging Face cache."""
    if spec:
        p = Path(spec).expanduser()
        if p.is_dir() and (p / "config.yaml").is_file():
            return p
        if p.is_file() and p.suffix in (".yaml", ".yml"):
            return p
        if p.exists():
            return None
    return cached_snapshot(str(spec or DEFAULT_PIPELINE))


class _HubOffline:
    """Hugging Face hub offline mode while a *local* pipeline loads: a config that still names a hub
    model then fails at once instead of retrying the network for half a minute."""

    def __enter__(self):
        self.env = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            import huggingface_hub.constants as c

            self.const = (c, c.HF_HUB_OFFLINE)
            c.HF_HUB_OFFLINE = True
        except Exception:  # pragma: no cover - hub not installed
            self.const = None
        return self

    def __exit__(self, *exc):
        if self.env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = self.env
        if self.const:
            self.const[0].HF_HUB_OFFLINE = self.const[1]
        return False


def _from_pretrained(source: str, token: str | None, local: bool):
    from pyannote.audio import Pipeline

    params = inspect.signature(Pipeline.from_pretrained).parameters
    kwargs = {}
    if token:
        kwargs["token" if "token" in params else "use_auth_token"] = token
    if local:
        with _HubOffline():
            return Pipeline.from_pretrained(source, **kwargs)
    return Pipeline.from_pretrained(source, **kwargs)


def load_pipeline(spec: str | os.PathLike | None = None, hf_token: str | None = None, device: str = "cpu"):
    """Load (once per process) the pyannote pipeline named by ``spec``."""
    if not installed():
        raise ModelError(
            "pyannote.audio is not installed: pip install 'audiotools[pyannote]' (or use --diarizer builtin)"
        )
    token = hf_token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    local = offline_pipeline(spec)
    if spec and local is None and Path(str(spec)).expanduser().exists():
        raise UsageError(f"{spec}: not a pyannote pipeline (expected a directory with config.yaml or a .yaml file)")
    source = str(local) if local is not None else str(spec or DEFAULT_PIPELINE)
    key = (source, token, device)
    if key in _cache:
        return _cache[key]
    if local is None and not token:
        raise ModelError(
            f"pyannote pipeline {source!r} is not available offline: pass --pyannote-pipeline DIR "
            "(a local pipeline directory) or --hf-token/HF_TOKEN to download it"
        )
    try:
        pipeline = _from_pretrained(source, token, local is not None)
    except Exception as e:  # pyannote/hf raise many types; report one line
        raise ModelError(
            f"cannot load pyannote pipeline {source}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    if pipeline is None:
        raise ModelError(
            f"cannot load pyannote pipeline {source} (gated model? accept its conditions on "
            "huggingface.co and pass a token)"
        )
    if device and device != "cpu":
        try:
            import torch

            pipeline.to(torch.device(device))
        except Exception as e:  # a custom pipeline may not support .to()
            log.warning("pyannote pipeline stays on its device (%s)", e)
    pipeline._audiotools_source = source
    _cache[key] = pipeline
    return pipeline


def to_annotation(output: Any):
    """The ``pyannote.core.Annotation`` inside whatever a pipeline returned."""
    from pyannote.core import Annotation

    if isinstance(output, Annotation):
        return output
    for attr in ("speaker_diarization", "diarization", "annotation"):
        value = getattr(output, attr, None)
        if isinstance(value, Annotation):
            return value
    if isinstance(output, dict):
        for value in output.values():
            if isinstance(value, Annotation):
                return value
    raise ModelError(f"the pyannote pipeline returned {type(output).__name__}, not a pyannote.core.Annotation")


def diarize(
    samples: np.ndarray,
    pipeline,
    *,
    uri: str = "audio",
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
):
    """Run ``pipeline`` on mono 16 kHz float32 ``samples``; returns its Annotation."""
    import torch

    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)
    file = {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": uri}
    kwargs = {
        k: v
        for k, v in (("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers))
        if v is not None
    }
    try:
        apply = getattr(pipeline, "apply", None)
        accepts = set(inspect.signature(apply).parameters) if apply else set()
        if kwargs and apply and not ({"kwargs"} & accepts or set(kwargs) <= accepts):
            log.warning("this pyannote pipeline takes no speaker-count options; ignoring %s", ", ".join(kwargs))
            kwargs = {k: v for k, v in kwargs.items() if k in accepts}
    except (TypeError, ValueError):
        pass
    output = pipeline(file, **kwargs)
    return to_annotation(output)
