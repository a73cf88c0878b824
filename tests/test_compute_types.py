"""Compute types: int8 (dynamic int8 quantisation on the CPU), bfloat16 (encoder) and int8_bfloat16,
on real weights and real audio."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import JFK, JFK_TEXT, run_cli, wer
from torch import nn

from audiotools.audio.decode import load_audio


@pytest.fixture(scope="module")
def int8_transcriber():
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    return Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en", compute_type="int8"))


def test_int8_model_is_quantised(int8_transcriber):
    from audiotools.asr.quantize import Int8Linear

    model = int8_transcriber.model
    assert int8_transcriber.compute_type == "int8" and model.compute_type == "int8"
    # every Linear (openai-whisper's whisper.model.Linear subclasses included) was replaced
    assert not [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    q = [m for m in model.modules() if isinstance(m, Int8Linear)]
    n_blocks = len(model.encoder.blocks) + len(model.decoder.blocks)
    per_block = 6  # q, k, v, out, fc1, fc2
    assert len(q) == n_blocks * per_block + 4 * len(model.decoder.blocks) + 1  # + cross-attention + logits
    # the vocabulary projection is quantised; the embedding lookup keeps its float weights
    assert isinstance(model.decoder.int8_logits, Int8Linear)
    assert model.decoder.token_embedding.weight.dtype == torch.float32
    # the int8 projection stays close to the float one on decoder-like states (the final layer norm of
    # real token embeddings; Gaussian noise has no such structure and its error is a coin toss near 5 %)
    with torch.no_grad():
        x = model.decoder.ln(model.decoder.token_embedding.weight[:64][None])
        ref = x @ model.decoder.token_embedding.weight.T
        got = model.decoder.int8_logits(x)
    assert got.shape == ref.shape and got.dtype == torch.float32
    assert torch.linalg.norm(got - ref) < 0.02 * torch.linalg.norm(ref)


def test_int8_jfk_wer_and_word_timestamps(int8_transcriber):
    t = int8_transcriber.transcribe(load_audio(JFK))
    assert wer(JFK_TEXT, t.text) <= 0.05, t.text
    assert t.model["compute_type"] == "int8"
    words = [w for s in t.segments for w in s.words]
    assert len(words) >= 20
    prev_end = 0.0
    for s in t.segments:
        for w in s.words:
            assert s.start - 1e-6 <= w.start <= w.end <= s.end + 1e-6, (s, w)
            assert w.start >= prev_end - 1e-6, "word timestamps must be monotonic"
            prev_end = w.end
            assert 0.0 <= w.probability <= 1.0
    assert words[-1].word.strip().startswith("country") and 9.5 < words[-1].end < 11.0


def test_compute_type_resolution_and_cache_key():
    from audiotools.asr.quantize import resolve_compute_type
    from audiotools.errors import UsageError

    assert resolve_compute_type(None, "cpu") == "float32"
    assert resolve_compute_type(None, "cuda") == "float16"
    assert resolve_compute_type(None, "cpu", fp16=True) == "float16"  # the legacy alias
    assert resolve_compute_type(None, "cuda", fp16=False) == "float32"
    assert resolve_compute_type("int8", "cpu") == "int8"
    with pytest.raises(UsageError):
        resolve_compute_type("int8", "cuda")
    with pytest.raises(UsageError):
        resolve_compute_type("float32", "cpu", fp16=True)
    with pytest.raises(UsageError):
        resolve_compute_type("int4", "cpu")
    assert resolve_compute_type("bf16", "cpu") == "bfloat16"
    assert resolve_compute_type("int8_bfloat16", "cpu") == "int8_bfloat16"
    with pytest.raises(UsageError):
        resolve_compute_type("int8_bfloat16", "cuda")
    from audiotools.asr.transcribe import get_model

    m8, _ = get_model("tiny.en", "cpu", compute_type="int8")
    m32, _ = get_model("tiny.en", "cpu")
    assert m8 is not m32 and m32.compute_type == "float32" and m8.compute_type == "int8"
    assert get_model("tiny.en", "cpu", compute_type="int8")[0] is m8


def test_resume_fingerprint_int8_is_not_volatile():
    from audiotools.batch.plan import recipe_fingerprint
    from audiotools.pipeline.recipe import load_recipe

    plain = load_recipe("default")
    assert plain.options("transcribe").compute_type is None
    assert recipe_fingerprint(plain.replace("transcribe", compute_type="float32")) == recipe_fingerprint(plain)
    # float32/float16/null follow the device (like fp16): the same work
    assert recipe_fingerprint(plain.replace("transcribe", compute_type="float16")) == recipe_fingerprint(plain)
    # int8 gives other text: a different fingerprint, so resume redoes the files
    assert recipe_fingerprint(plain.replace("transcribe", compute_type="int8")) != recipe_fingerprint(plain)
    for ct in ("bfloat16", "int8_bfloat16"):
        assert recipe_fingerprint(plain.replace("transcribe", compute_type=ct)) != recipe_fingerprint(plain)


def test_cli_int8_records_compute_type_in_provenance(tmp_path):
    r = run_cli(
        "transcribe",
        str(JFK),
        "-o",
        str(tmp_path),
        "-f",
        "json",
        "--model",
        "tiny.en",
        "-l",
        "en",
        "--compute-type",
        "int8",
        "--no-diarize",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "jfk.json").read_text())
    assert doc["model"]["compute_type"] == "int8"
    assert doc["parameters"]["steps"]["transcribe"]["compute_type"] == "int8"
    asr = [m for m in doc["provenance"]["models"] if m["role"] == "asr"]
    assert asr and asr[0]["compute_type"] == "int8"
    assert wer(JFK_TEXT, " ".join(s["text"] for s in doc["segments"])) <= 0.05
    v = run_cli("provenance", "verify", str(tmp_path / "jfk.json"), "--audio", str(JFK))
    assert v.returncode == 3, v.stdout + v.stderr  # every check passed; unsigned, so not authenticated
    bad = run_cli("transcribe", str(JFK), "--compute-type", "int4")
    assert bad.returncode == 2


# ------------------------------------------------------------------ bfloat16 encoder


@pytest.fixture(scope="module")
def bf16_transcribers():
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber

    return {
        ct: Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en", compute_type=ct))
        for ct in ("float32", "bfloat16", "int8_bfloat16")
    }


def test_bfloat16_runs_the_encoder_in_bfloat16_and_the_decoder_in_float32(bf16_transcribers):
    from audiotools.asr.quantize import Int8Linear
    from audiotools.asr.windows import fixed_windows

    t32, tbf, tmix = (bf16_transcribers[k] for k in ("float32", "bfloat16", "int8_bfloat16"))
    for t in (tbf, tmix):
        enc = t.model.encoder
        assert enc.conv1.weight.dtype == torch.bfloat16
        assert enc.blocks[0].mlp[0].weight.dtype == torch.bfloat16
        assert enc.blocks[0].attn_ln.weight.dtype == torch.float32  # layer norms stay float32
        assert t.dtype == torch.float32  # what the decoder is fed
    assert not [m for m in tbf.model.modules() if isinstance(m, Int8Linear)]
    assert tbf.model.decoder.blocks[0].mlp[0].weight.dtype == torch.float32
    # int8_bfloat16: int8 decoder, bfloat16 (not int8) encoder
    assert not [m for m in tmix.model.encoder.modules() if isinstance(m, Int8Linear)]
    assert isinstance(tmix.model.decoder.blocks[0].mlp[0], Int8Linear)
    # the float32 model of the same name is untouched (separate cache entries)
    assert t32.model.encoder.conv1.weight.dtype == torch.float32
    samples = load_audio(JFK).samples
    windows = fixed_windows(len(samples) / 16000)
    f32 = t32.encode(samples, windows)
    fbf = tbf.encode(samples, windows)
    assert fbf.dtype == torch.float32 and fbf.shape == f32.shape
    assert torch.linalg.norm(fbf - f32) < 0.05 * torch.linalg.norm(f32)
    assert torch.linalg.norm(fbf - f32) > 0  # it really ran in another precision


@pytest.mark.parametrize("ct", ["bfloat16", "int8_bfloat16"])
def test_bfloat16_jfk_wer_and_word_timestamps(bf16_transcribers, ct):
    t = bf16_transcribers[ct].transcribe(load_audio(JFK))
    assert wer(JFK_TEXT, t.text) <= 0.05, t.text
    assert t.model["compute_type"] == ct
    words = [w for s in t.segments for w in s.words]
    assert len(words) >= 20
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
    assert words[-1].word.strip().startswith("country") and 9.5 < words[-1].end < 11.0


def test_float16_engine_runs_end_to_end_on_cpu():
    """The float16 path (the default on CUDA) through the whole engine: float16 weights, features and
    decoder, layer norms in float32 as openai-whisper computes them, batched decoding of two files
    and word alignment. It runs here on the CPU, so the GPU's dtype plumbing is tested without a GPU."""
    from audiotools.asr.transcribe import EngineItem, TranscribeOptions, Transcriber

    t = Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en", compute_type="float16"))
    m = t.model
    assert t.dtype == torch.float16 and t.compute_type == "float16"
    assert m.encoder.blocks[0].mlp[0].weight.dtype == torch.float16
    assert m.decoder.token_embedding.weight.dtype == torch.float16
    assert all(
        p.dtype == torch.float32 for mod in m.modules() if isinstance(mod, nn.LayerNorm) for p in mod.parameters()
    )
    samples = load_audio(JFK).samples
    out = list(t.transcribe_many([EngineItem(k, samples) for k in range(2)]))
    assert [k for k, *_ in out] == [0, 1]
    for _, segments, _language, _stats in out:
        text = " ".join(s.text for s in segments)
        assert wer(JFK_TEXT, text) <= 0.05, text
        words = [w for s in segments for w in s.words]
        assert len(words) >= 20 and all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))
        assert words[-1].word.strip().startswith("country") and 9.5 < words[-1].end < 11.0
