"""Provenance: hashes of audio, PCM, segments, models, parameters and transcript; signatures; verify.

Most tests build a transcript cheaply (real audio decoded with load_audio, hand-made segments) and run
the provenance step on it; one end-to-end test runs the real pipeline with tiny.en.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from audiotools.audio.decode import load_audio
from audiotools.cli import main
from audiotools.export.writers import write_outputs
from audiotools.pipeline.recipe import load_recipe
from audiotools.pipeline.run import Job
from audiotools.provenance import document as provenance
from audiotools.transcript import Segment, Transcript, Word

ROOT = Path(__file__).resolve().parents[1]
WAV = ROOT / "samples" / "conversation.wav"
JFK = Path(os.environ.get("AUDIOTOOLS_SHARED_DATA", ROOT.parent / "shared" / "data")) / "speech" / "jfk.flac"
FAKE_MODEL = {"name": "tiny.en", "sha256": "ab" * 32, "source": "test", "kind": "ct2"}

# (start, end, text): the first turns of samples/conversation.wav
TURNS = [
    (0.5, 8.75, " Good evening, I'm Anna."),
    (9.45, 11.495, " Thanks for having me, Anna."),
    (12.395, 16.562, " Boris, spending rises four percent next year."),
    (17.162, 24.927, " Mostly roads and the library."),
]


def make_transcript(audio, turns=TURNS) -> Transcript:
    segs = []
    for i, (s, e, text) in enumerate(turns):
        words = text.split()
        step = (e - s) / len(words)
        segs.append(
            Segment(
                id=i,
                start=s,
                end=e,
                text=text,
                words=[Word(" " + w, s + k * step, s + (k + 1) * step, 0.9) for k, w in enumerate(words)],
                speaker=f"SPEAKER_{i % 2:02d}",  # as diarised: the RTTM export has turns to carry
            )
        )
    return Transcript(audio=audio.info, model=dict(FAKE_MODEL), language="en", segments=segs)


def build(out_dir: Path, audio_path: Path = WAV, turns=TURNS, sign_key=None, formats=("all",), prepare=None):
    """Decode, make a transcript, run the provenance step as the pipeline does, write the exports."""
    audio = load_audio(audio_path)
    t = make_transcript(audio, turns)
    recipe = load_recipe("default").replace("provenance", sign_key=sign_key and str(sign_key))
    t.extra["parameters"] = recipe.parameters()
    if prepare:
        prepare(t)
    job = Job(path=Path(audio_path), recipe=recipe, audio=audio, transcript=t)
    provenance.run_step(job, recipe.options("provenance"))
    paths = write_outputs(t, out_dir, list(formats))
    return paths, t


def run_verify(capsys, *args) -> tuple[int, str]:
    rc = main(["provenance", "verify", *map(str, args)])
    return rc, capsys.readouterr().out


def verify_json(capsys, *args) -> tuple[int, dict]:
    rc, out = run_verify(capsys, *args, "--json")
    return rc, json.loads(out)


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def rewrite(path: Path, edit) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return doc


def data_offset(wav: bytes) -> int:
    i = 12
    while i < len(wav):
        cid, size = wav[i : i + 4], struct.unpack("<I", wav[i + 4 : i + 8])[0]
        if cid == b"data":
            return i + 8
        i += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("prov")
    paths, t = build(out)
    return paths, t


@pytest.fixture
def copy_of(built, tmp_path):
    """A private copy of the module's outputs (tests that edit files)."""
    paths, _ = built
    for p in paths["json"].parent.iterdir():
        shutil.copy2(p, tmp_path / p.name)
    return {f: tmp_path / p.name for f, p in paths.items()}


# ---------------------------------------------------------------- the block itself


def test_block_contents(built):
    paths, t = built
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    prov = doc["provenance"]
    assert list(doc)[-1] == "provenance"
    assert prov["schema"] == "audiotools.provenance/1"
    assert prov["source"]["sha256"] == hashlib.sha256(WAV.read_bytes()).hexdigest()
    assert prov["source"]["size_bytes"] == WAV.stat().st_size
    assert prov["pcm"]["sha256"] == doc["audio"]["pcm_sha256"]
    assert prov["pcm"]["decoder"].startswith("soundfile") and prov["pcm"]["decoder_versions"]["libsndfile"]
    assert prov["models"][0] == {"role": "asr", "name": "tiny.en", "sha256": "ab" * 32, "kind": "ct2", "source": "test"}
    assert prov["parameters"] == doc["parameters"] and prov["parameters"]["steps"]["provenance"]["enabled"]
    assert prov["tool"]["version"] and prov["created"].endswith("Z")
    assert [s["id"] for s in prov["segments"]] == [s["id"] for s in doc["segments"]]
    assert "sha256" not in doc["segments"][0]  # segment hashes live in provenance.segments only


def test_hashes_can_be_checked_by_hand(built):
    """The documented recipes (docs/provenance.md) reproduce the recorded hashes without audiotools."""
    paths, _ = built
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    prov = doc["provenance"]
    # transcript hash: canonical JSON without transcript_sha256 and signature
    d = json.loads(paths["json"].read_text(encoding="utf-8"))
    del d["provenance"]["transcript_sha256"]
    d["provenance"].pop("signature", None)
    canon = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert hashlib.sha256(canon).hexdigest() == prov["transcript_sha256"]
    # PCM and segment slices: 16-bit WAV at 16 kHz mono -> float32 = int16 / 32768
    pcm = sf.read(str(WAV), dtype="float32")[0]
    assert hashlib.sha256(pcm.astype("<f4").tobytes()).hexdigest() == prov["pcm"]["sha256"]
    for s in prov["segments"]:
        a, b = round(s["start"] * 16000), round(s["end"] * 16000)
        assert hashlib.sha256(pcm[a:b].astype("<f4").tobytes()).hexdigest() == s["sha256"]
    # an excerpt cut from the original checks against its segment
    seg = prov["segments"][1]
    excerpt = pcm[round(seg["start"] * 16000) : round(seg["end"] * 16000)].copy()
    assert provenance.segment_sha256(excerpt, 0, len(excerpt) / 16000) == seg["sha256"]


def test_canonical_json():
    doc = {"b": 1.0, "a": ["ü", 0.1, None], "provenance": {"transcript_sha256": "x", "signature": {}, "k": 2}}
    assert (
        provenance.canonical_json(doc)
        == '{"a":["ü",0.1,null],"b":1.0,"provenance":{"k":2,"signature":{},"transcript_sha256":"x"}}'.encode()
    )
    assert (
        provenance.transcript_sha256(doc)
        == hashlib.sha256('{"a":["ü",0.1,null],"b":1.0,"provenance":{"k":2}}'.encode()).hexdigest()
    )


def test_models_found_in_the_steps_output():
    audio = load_audio(WAV)
    t = make_transcript(audio, TURNS[:1])
    t.extra["diarization"] = {"method": "x", "segmentation_model": {"name": "seg-v1", "sha256": "ef" * 32}}
    t.extra["identification"] = {"encoder": {"model_id": "campplus-cn-en-common-192", "weights_sha256": "cd" * 32}}
    t.extra["verification"] = {"embedding": {"model_id": "campplus-cn-en-common-192", "weights_sha256": "cd" * 32}}
    block = provenance.apply_provenance(t, audio)
    got = {(m["role"], m["name"], m["sha256"]) for m in block["models"]}
    assert got == {
        ("asr", "tiny.en", "ab" * 32),
        ("speaker-embedding", "campplus-cn-en-common-192", "cd" * 32),
        ("diarization.segmentation_model", "seg-v1", "ef" * 32),
    }
    assert provenance.verify(t.to_dict(), audio=audio)[-1].ok


# ---------------------------------------------------------------- verify: untouched


def test_untouched_verifies(built, capsys):
    paths, _ = built
    rc, out = run_verify(capsys, paths["json"], "--audio", WAV, "--exports")
    assert rc == 3, out  # intact, but unsigned: nothing authenticates it (exit 0 needs a trusted signature)
    assert out.strip().splitlines()[-1].startswith("NOT AUTHENTICATED: intact, but not signed")
    assert "integrity passed, audio passed, exports passed, signature unsigned" in out
    assert "transcript_sha256" in out and "pcm_sha256" in out and "4 of 4 segments match" in out
    rc, report = verify_json(capsys, paths["json"], "--audio", WAV, "--exports")
    assert rc == 3 and report["ok"] and report["failed"] == [] and not report["authenticated"]
    assert report["summary"]["signature"] == "unsigned" and report["exit_code"] == 3
    names = statuses(report)
    assert all(names[f"segment {i} sha256"] == "ok" for i in range(4))
    for f in ("srt", "vtt", "txt", "tsv", "rttm"):
        assert names[f"export conversation.{f}: transcript_sha256"] == "ok"
        assert names[f"export conversation.{f}: content"] == "ok"


def test_verify_subprocess(built):
    paths, _ = built
    cmd = [sys.executable, "-m", "audiotools", "provenance", "verify", str(paths["json"]), "--audio", str(WAV)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("NOT AUTHENTICATED")


# ---------------------------------------------------------------- tampering with the audio


@pytest.mark.parametrize("where", ["header", "inside segment 1", "between segments"])
def test_flipped_audio_byte(built, tmp_path, capsys, where):
    paths, _ = built
    data = bytearray(WAV.read_bytes())
    off = data_offset(bytes(data))
    if where == "header":
        pos = 24  # sample rate field of the fmt chunk
    elif where == "inside segment 1":
        pos = off + 2 * round(10.0 * 16000) + 1  # high byte of the sample at 10.0 s
    else:
        pos = off + 2 * round(9.0 * 16000) + 1  # 9.0 s lies between segment 0 and 1
    data[pos] ^= 0xFF
    bad = tmp_path / "conversation.wav"
    bad.write_bytes(bytes(data))
    rc, report = verify_json(capsys, paths["json"], "--audio", bad)
    st = statuses(report)
    assert rc == 1 and not report["ok"]
    assert st["source_sha256"] == "fail"
    assert st["transcript_sha256"] == "ok"
    if where != "header":
        assert st["pcm_sha256"] == "fail"
        expect_bad = {"segment 1 sha256"} if where == "inside segment 1" else set()
        assert {n for n, s in st.items() if n.startswith("segment ") and s == "fail"} == expect_bad
        assert set(report["failed"]) == {"source_sha256", "pcm_sha256"} | expect_bad
    else:
        assert st["pcm_sha256"] == "fail"  # wrong sample rate: different PCM (or not decodable)
    rc, out = run_verify(capsys, paths["json"], "--audio", bad)
    assert rc == 1 and out.strip().splitlines()[-1].startswith("FAILED") and "source_sha256" in out


def test_flipped_flac_byte(tmp_path, capsys):
    """A compressed source: one flipped byte in the middle of the stream."""
    if not JFK.is_file():
        pytest.skip(f"{JFK} not available")
    paths, _ = build(
        tmp_path / "out",
        JFK,
        turns=[(0.3, 4.0, " And so my fellow Americans,"), (4.0, 10.5, " ask not what your country can do for you")],
        formats=["json"],
    )
    data = bytearray(JFK.read_bytes())
    data[len(data) // 2] ^= 0x10
    bad = tmp_path / "jfk.flac"
    bad.write_bytes(bytes(data))
    rc, report = verify_json(capsys, paths["json"], "--audio", bad)
    st = statuses(report)
    assert rc == 1 and st["source_sha256"] == "fail"
    assert st["pcm_sha256"] == "fail"
    rc, report = verify_json(capsys, paths["json"], "--audio", JFK)
    assert rc == 3 and report["failed"] == [], report


def test_decoder_version_mismatch_is_named(copy_of, capsys):
    """Same file, PCM hash mismatch, different decoder recorded -> the message says so."""

    def edit(doc):
        doc["provenance"]["pcm"]["decoder"] = "soundfile 0.1.0 (libsndfile 1.0.0)"
        doc["provenance"]["pcm"]["sha256"] = "0" * 64
        doc["provenance"]["transcript_sha256"] = provenance.transcript_sha256(doc)

    rewrite(copy_of["json"], edit)
    rc, report = verify_json(capsys, copy_of["json"], "--audio", WAV)
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "pcm_sha256")
    assert rc == 1 and report["failed"] == ["pcm_sha256"]
    assert "DECODER DIFFERS" in detail and "soundfile 0.1.0" in detail and "unchanged" in detail


# ---------------------------------------------------------------- tampering with the transcript


def test_edited_word_detected(copy_of, capsys):
    rewrite(copy_of["json"], lambda d: d["segments"][1].update(text=d["segments"][1]["text"].replace("Anna", "Anne")))
    rc, report = verify_json(capsys, copy_of["json"])
    assert rc == 1 and report["failed"] == ["transcript_sha256"]
    rc, out = run_verify(capsys, copy_of["json"])
    assert rc == 1 and "document was changed" in out and "FAILED: 1 check(s): transcript_sha256" in out


def test_edited_word_entry_detected(copy_of, capsys):
    rewrite(copy_of["json"], lambda d: d["segments"][0]["words"][0].update(word=" Bad"))
    rc, report = verify_json(capsys, copy_of["json"])
    assert rc == 1 and "transcript_sha256" in report["failed"]


def test_shifted_timestamp_detected(copy_of, capsys):
    rewrite(copy_of["json"], lambda d: d["segments"][2].update(start=round(d["segments"][2]["start"] + 0.01, 3)))
    rc, report = verify_json(capsys, copy_of["json"], "--audio", WAV)
    assert rc == 1
    assert set(report["failed"]) == {"transcript_sha256", "segments", "segment 2 sha256"}


def test_shifted_timestamp_with_forged_hashes_detected(copy_of, capsys):
    """Even if the editor also fixes provenance.segments and recomputes transcript_sha256, the audio
    slice hash gives it away (without a signature that is all that can be checked)."""

    def edit(doc):
        doc["segments"][2]["end"] = round(doc["segments"][2]["end"] - 0.5, 3)
        doc["provenance"]["segments"][2]["end"] = doc["segments"][2]["end"]
        doc["provenance"]["transcript_sha256"] = provenance.transcript_sha256(doc)

    rewrite(copy_of["json"], edit)
    rc, report = verify_json(capsys, copy_of["json"])
    assert rc == 3 and report["failed"] == []  # the document alone is self-consistent ...
    rc, report = verify_json(capsys, copy_of["json"], "--audio", WAV)
    assert rc == 1 and report["failed"] == ["segment 2 sha256"]  # ... the audio is not


def test_missing_provenance_fails(copy_of, capsys):
    rewrite(copy_of["json"], lambda d: d.pop("provenance"))
    rc, report = verify_json(capsys, copy_of["json"])
    assert rc == 1 and report["failed"] == ["provenance"]


def test_not_json_is_an_error(tmp_path, capsys):
    p = tmp_path / "x.json"
    p.write_text("{nope", encoding="utf-8")
    assert main(["provenance", "verify", str(p)]) == 1
    assert "not valid JSON" in capsys.readouterr().err


# ---------------------------------------------------------------- exports


def test_exports_carry_hash(built):
    paths, t = built
    h = t.extra["provenance"]["transcript_sha256"]
    assert f"NOTE transcript_sha256 {h}" in paths["vtt"].read_text(encoding="utf-8")
    assert paths["txt"].read_text(encoding="utf-8").splitlines()[0] == f"# transcript_sha256 {h}"
    for f in ("srt", "tsv", "rttm"):  # no comment syntax: sidecar in sha256sum format
        side = paths[f].with_name(paths[f].name + ".sha256").read_text(encoding="utf-8").splitlines()
        assert side[0] == f"{hashlib.sha256(paths[f].read_bytes()).hexdigest()}  {paths[f].name}"
        assert side[1] == f"# transcript_sha256 {h}"
    assert paths["tsv"].read_text(encoding="utf-8").startswith("start\tend\tspeaker\ttext\n")
    assert paths["rttm"].read_text(encoding="utf-8").startswith("SPEAKER ")
    if shutil.which("sha256sum"):
        r = subprocess.run(
            ["sha256sum", "-c", paths["srt"].name + ".sha256"], cwd=paths["srt"].parent, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stdout + r.stderr


def test_edited_exports_detected(copy_of, capsys):
    srt, vtt, txt = copy_of["srt"], copy_of["vtt"], copy_of["txt"]
    srt.write_text(srt.read_text(encoding="utf-8").replace("Anna", "Anne"), encoding="utf-8")
    vtt.write_text(vtt.read_text(encoding="utf-8").replace("Boris", "Doris"), encoding="utf-8")
    txt.write_text(
        txt.read_text(encoding="utf-8").replace("# transcript_sha256 ", "# transcript_sha256 0")[:-1], encoding="utf-8"
    )
    rc, report = verify_json(
        capsys, copy_of["json"], "--export", srt, "--export", vtt, "--export", txt, "--export", copy_of["tsv"]
    )
    assert rc == 1
    assert set(report["failed"]) == {
        "export conversation.srt: file sha256",
        "export conversation.srt: content",
        "export conversation.vtt: content",
        "export conversation.txt: transcript_sha256",
        "export conversation.txt: content",
    }


def test_export_of_another_transcript(copy_of, tmp_path, capsys):
    other, _ = build(tmp_path / "other", turns=TURNS[:2], formats=["json", "vtt"])
    rc, report = verify_json(capsys, copy_of["json"], "--export", other["vtt"])
    assert rc == 1 and "export conversation.vtt: transcript_sha256" in report["failed"]


def test_deleted_exports_detected_by_the_manifest(copy_of, capsys):
    """--exports checks the exports that are there, and that every file the output set's manifest
    lists is still there: a deleted SRT (and its sidecar) or VTT fails the run."""
    for f in ("srt", "vtt"):
        copy_of[f].unlink()
    copy_of["srt"].with_name("conversation.srt.sha256").unlink()
    rc, report = verify_json(capsys, copy_of["json"], "--exports")
    assert rc == 1
    assert set(report["failed"]) == {
        "export conversation.srt",
        "export conversation.srt.sha256",
        "export conversation.vtt",
    }, report["failed"]
    assert report["summary"]["exports"] == "failed"
    assert statuses(report)["export conversation.txt: content"] == "ok"


def test_no_provenance_leaves_no_stale_sidecar(copy_of):
    doc = json.loads(copy_of["json"].read_text(encoding="utf-8"))
    t = Transcript.from_dict(doc)
    t.extra.pop("provenance")
    write_outputs(t, copy_of["json"].parent, ["srt", "txt"])
    assert not copy_of["srt"].with_name("conversation.srt.sha256").exists()
    assert "transcript_sha256" not in copy_of["txt"].read_text(encoding="utf-8")


# ---------------------------------------------------------------- signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    assert main(["provenance", "keygen", "--output", str(d / "court")]) == 0
    assert main(["provenance", "keygen", "--output", str(d / "other")]) == 0
    return d / "court.key", d / "court.pub", d / "other.key", d / "other.pub"


def test_keygen_files(keys, capsys):
    priv, pub, _, _ = keys
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert not stat.S_IMODE(pub.stat().st_mode) & 0o022  # public, but writable by the owner only
    assert priv.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = priv.read_bytes(), pub.read_bytes()
    capsys.readouterr()
    assert main(["provenance", "keygen", "--output", str(priv.with_suffix(""))]) != 0
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (priv.read_bytes(), pub.read_bytes()) == before
    assert not [p for p in priv.parent.iterdir() if p.name.endswith(".tmp")]


def test_keygen_refuses_when_only_public_exists(tmp_path, capsys):
    (tmp_path / "k.pub").write_text("keep me")
    assert main(["provenance", "keygen", "--output", str(tmp_path / "k")]) != 0
    assert not (tmp_path / "k.key").exists() and (tmp_path / "k.pub").read_text() == "keep me"


def test_encrypted_key(tmp_path, built, monkeypatch, capsys):
    monkeypatch.setenv("KG_PASS", "correct horse")
    assert main(["provenance", "keygen", "-o", str(tmp_path / "enc"), "--passphrase-env", "KG_PASS"]) == 0
    assert "ENCRYPTED PRIVATE KEY" in (tmp_path / "enc.key").read_text()
    p = tmp_path / "t.json"
    shutil.copy(built[0]["json"], p)
    monkeypatch.delenv("AUDIOTOOLS_KEY_PASSPHRASE", raising=False)
    capsys.readouterr()
    assert main(["provenance", "sign", str(p), "--key", str(tmp_path / "enc.key")]) == 1
    assert "AUDIOTOOLS_KEY_PASSPHRASE" in capsys.readouterr().err
    monkeypatch.setenv("AUDIOTOOLS_KEY_PASSPHRASE", "correct horse")
    assert main(["provenance", "sign", str(p), "--key", str(tmp_path / "enc.key")]) == 0
    assert run_verify(capsys, p, "--public-key", tmp_path / "enc.pub")[0] == 0


def test_sign_key_in_recipe_parameters_and_speaker_models(keys, tmp_path):
    """A speaker step that only names its encoder (CAM++ for identification) still gets the weights'
    sha256 in the provenance block."""

    def prepare(t):
        t.extra["identification"] = {"embedding": {"model_id": "campplus-cn-en-common-192"}}

    from audiotools.weights import CAMPLUS, locate

    _, t = build(tmp_path, turns=TURNS[:1], sign_key=keys[0], formats=["json"], prepare=prepare)
    models = t.extra["provenance"]["models"]
    assert {
        "role": "speaker-embedding",
        "name": CAMPLUS.name,
        "sha256": hashlib.sha256(locate(CAMPLUS).read_bytes()).hexdigest(),
    } in models
    assert t.extra["parameters"]["steps"]["provenance"]["sign_key"] == str(keys[0])


@pytest.fixture(scope="module")
def signed(keys, tmp_path_factory):
    out = tmp_path_factory.mktemp("signed")
    paths, t = build(out, sign_key=keys[0], formats=["json", "vtt"])
    return paths, t


def test_signature_block(signed, keys):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    paths, _ = signed
    sig = json.loads(paths["json"].read_text(encoding="utf-8"))["provenance"]["signature"]
    pub = load_pem_public_key(keys[1].read_bytes())
    raw = base64.b64decode(sig["public_key"])
    assert sig["algorithm"] == "ed25519" and sig["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    doc = json.loads(paths["json"].read_text(encoding="utf-8"))
    pub.verify(base64.b64decode(sig["value"]), doc["provenance"]["transcript_sha256"].encode("ascii"))


def test_signed_verifies_with_key(signed, keys, capsys):
    paths, _ = signed
    rc, out = run_verify(capsys, paths["json"], "--public-key", keys[1], "--audio", WAV, "--exports")
    assert rc == 0, out
    assert "valid, made by the trusted key" in out
    assert out.strip().splitlines()[-1] == "OK"


def test_signature_from_other_key_fails(signed, keys, capsys):
    paths, _ = signed
    rc, report = verify_json(capsys, paths["json"], "--public-key", keys[3])
    assert rc == 1 and report["failed"] == ["signature"]
    assert "another key" in next(c["detail"] for c in report["checks"] if c["name"] == "signature")


def test_missing_signature_with_public_key_fails(built, keys, capsys):
    paths, _ = built
    rc, report = verify_json(capsys, paths["json"], "--public-key", keys[1])
    assert rc == 1 and report["failed"] == ["signature"]


def test_tampered_signed_transcript(signed, keys, tmp_path, capsys):
    """Edit + recompute the hash: the signature no longer matches, with or without --public-key."""
    p = tmp_path / "t.json"
    shutil.copy(signed[0]["json"], p)

    def edit(doc):
        doc["segments"][0]["text"] = " Good morning."
        doc["provenance"]["transcript_sha256"] = provenance.transcript_sha256(doc)

    rewrite(p, edit)
    rc, report = verify_json(capsys, p)
    assert rc == 1 and report["failed"] == ["signature"]
    # re-signed by someone else with their key embedded: without a trusted key it is exit 3, never the
    # 0 of a transcript signed by a trusted key; the untouched original is 3 as well without one
    assert main(["provenance", "sign", str(p), "--key", str(keys[2])]) == 0
    capsys.readouterr()
    rc, report = verify_json(capsys, p)
    assert rc == 3 and not report["authenticated"] and report["summary"]["signature"] == "untrusted"
    assert "UNTRUSTED" in next(c["detail"] for c in report["checks"] if c["name"] == "signature")
    assert verify_json(capsys, signed[0]["json"])[0] == 3
    assert verify_json(capsys, signed[0]["json"], "--public-key", keys[1])[0] == 0
    rc, report = verify_json(capsys, p, "--public-key", keys[1])
    assert rc == 1 and report["failed"] == ["signature"]
    # a trusted-keys directory works like --public-key (and so does $AUDIOTOOLS_TRUSTED_KEYS)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(keys[1], trusted / "court.pub")
    assert verify_json(capsys, p, "--trusted-keys", trusted)[0] == 1
    assert verify_json(capsys, signed[0]["json"], "--trusted-keys", trusted)[0] == 0
    shutil.copy(keys[3], trusted / "other.pub")
    assert verify_json(capsys, signed[0]["json"], "--trusted-keys", trusted)[0] == 0  # any trusted key
    # stripping the signature from an edited copy gains nothing: 3 without a key, 1 with one
    rewrite(p, lambda d: d["provenance"].pop("signature"))
    assert verify_json(capsys, p)[0] == 3
    assert verify_json(capsys, p, "--public-key", keys[1])[0] == 1
    # edited without recomputing the hash: the trusted signature is valid over the recorded hash,
    # which no longer describes the document, so the signature check fails too (never a green OK)
    shutil.copy(signed[0]["json"], p)
    rewrite(p, lambda d: d["segments"][0].update(text=" Good morning."))
    rc, report = verify_json(capsys, p, "--public-key", keys[1])
    assert rc == 1 and report["failed"] == ["transcript_sha256", "signature"]
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "signature")
    assert detail.startswith("valid, made by the trusted key") and "no longer matches" in detail


def test_sign_command_and_raw_public_key(built, keys, tmp_path, capsys):
    p = tmp_path / "t.json"
    shutil.copy(built[0]["json"], p)
    h = json.loads(p.read_text(encoding="utf-8"))["provenance"]["transcript_sha256"]
    assert main(["provenance", "sign", str(p), "--key", str(keys[0])]) == 0
    doc = json.loads(p.read_text(encoding="utf-8"))
    assert doc["provenance"]["transcript_sha256"] == h  # signing does not change the hash (exports stay valid)
    rc, _ = run_verify(capsys, p, "--public-key", doc["provenance"]["signature"]["public_key"])
    assert rc == 0
    rewrite(p, lambda d: d["segments"][0].update(text=" changed"))
    assert main(["provenance", "sign", str(p), "--key", str(keys[0])]) == 2  # refuses a broken hash


def test_bad_sign_key_fails_early(tmp_path):
    from audiotools.cli import build_parser
    from audiotools.cli.options import recipe_from_args
    from audiotools.errors import UsageError

    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    args = build_parser().parse_args(["transcribe", str(WAV), "--sign-key", str(bad)])
    with pytest.raises(UsageError, match="sign-key"):
        recipe_from_args(args)
    args = build_parser().parse_args(["transcribe", str(WAV), "--no-provenance"])
    assert recipe_from_args(args).options("provenance").enabled is False


# ---------------------------------------------------------------- end to end


def test_end_to_end_tiny(tmp_path, keys, capsys):
    if not JFK.is_file():
        pytest.skip(f"{JFK} not available")
    out = tmp_path / "out"
    rc = main(
        ["transcribe", str(JFK), "-o", str(out), "--model", "tiny.en", "--language", "en", "--sign-key", str(keys[0])]
    )
    assert rc == 0
    doc = json.loads((out / "jfk.json").read_text(encoding="utf-8"))
    prov = doc["provenance"]
    assert prov["models"][0]["role"] == "asr" and prov["models"][0]["sha256"] == doc["model"]["sha256"]
    assert len(prov["segments"]) == len(doc["segments"]) > 0
    assert "ask not" in " ".join(s["text"] for s in doc["segments"]).lower()
    # each step's seconds are recorded, inside what the hash and signature cover (checked below);
    # the provenance step's own time cannot be
    steps = doc["stats"]["step_seconds"]
    assert {"diarize", "mask"} <= set(steps) and "provenance" not in steps
    assert all(isinstance(v, float) and v >= 0 for v in steps.values())
    capsys.readouterr()
    rc, text = run_verify(capsys, out / "jfk.json", "--audio", JFK, "--public-key", keys[1], "--exports")
    assert rc == 0, text
    assert text.strip().splitlines()[-1] == "OK"


# ---------------------------------------------------------------- malformed documents


def _json_paths(obj, prefix=(), depth=0):
    yield prefix
    if depth >= 5:
        return
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in list(items)[:12]:
        yield from _json_paths(v, prefix + (k,), depth + 1)


def test_malformed_documents_give_one_line_errors(built, tmp_path, capsys):
    """A transcript whose fields have the wrong JSON types (``segments`` a string, ...): exit 1 with
    one line, or failed checks; never a traceback. Seeded: 200 documents with one value replaced."""
    import copy
    import random

    doc = json.loads(built[0]["json"].read_text(encoding="utf-8"))
    p = tmp_path / "m.json"
    p.write_text(json.dumps({**doc, "segments": "a string"}), encoding="utf-8")
    assert main(["provenance", "verify", str(p)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: {p}: malformed transcript: segments is str, expected list"
    paths = [q for q in _json_paths(doc) if q]
    rng = random.Random(16)
    values = ["x", 7, -1.5, True, None, [], {}, [1, "a"], {"a": 1}, 1e308, "0" * 64]
    codes = set()
    for _ in range(200):
        d = copy.deepcopy(doc)
        path = rng.choice(paths)
        target = d
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = rng.choice(values)
        p.write_text(json.dumps(d), encoding="utf-8")
        rc = main(
            ["provenance", "verify", str(p), "--audio", str(WAV)]
            if rng.random() < 0.1
            else ["provenance", "verify", str(p)]
        )
        out = capsys.readouterr()
        assert rc in (1, 3), (path, out)
        if rc == 1 and out.err:
            assert len(out.err.strip().splitlines()) == 1, out.err
        codes.add(rc)
    assert codes == {1, 3}
