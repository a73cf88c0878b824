"""The voiceprint store: names, enrolment checks, corrupt records, concurrent writers.

Real audio throughout (samples/voices, samples/conversation.wav); the CAM++ model is never mocked.
The concurrency test drives the store's writer directly from several processes (fast), and also
runs two real ``audiotools voiceprint enroll`` processes at once.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
VOICES = SAMPLES / "voices"


@pytest.fixture(scope="module", autouse=True)
def _private_cache(private_embedding_cache):
    """Every test of this module embeds into a private cache (conftest.private_embedding_cache)."""


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, scorer):
    """A store with Anna and Boris enrolled from the sample voices."""
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.voiceprints import VoiceprintStore

    store = VoiceprintStore(tmp_path_factory.mktemp("store"))
    enroll(store, "Anna", [VOICES / "anna.wav"], scorer)
    enroll(store, "Борис", [VOICES / "boris.wav"], scorer)
    return store


# ------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["Anna", "Анна Петрова", "Jean-Luc O'Brien", "J. Smith", "李小龙", "Zoë", "x1"])
def test_valid_names(name):
    from audiotools.speakers.voiceprints import file_id, validate_name

    assert validate_name(name)
    fid = file_id(name)
    assert "/" not in fid and "\\" not in fid and not fid.startswith(".") and fid


@pytest.mark.parametrize(
    "name,reason",
    [
        ("../etc/passwd", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        (".hidden", "dot"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 65, "too long"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("..", "dot"),
        ("-x", "letter or digit"),
        ("a..b", "'..'"),
        ("a*b", "letters, digits"),
        ("a\u202eb", "control"),
    ],
)
def test_bad_names_are_refused(name, reason):
    from audiotools.errors import UsageError
    from audiotools.speakers.voiceprints import validate_name

    with pytest.raises(UsageError, match=reason):
        validate_name(name)


def test_file_ids_casefold_and_never_collide():
    from audiotools.speakers.voiceprints import file_id

    assert file_id("Анна") == file_id("АННА") == file_id("анна") == "анна"
    assert file_id("Anna") == "anna"
    # NFC: a precomposed and a decomposed "é" are one person
    assert file_id("Ren\u00e9") == file_id("Rene\u0301")
    # information lost in the slug: a hash keeps the names apart
    assert file_id("J. Smith") != file_id("J Smith") != file_id("J_Smith")
    assert file_id("con") != "con"  # Windows device name


# --------------------------------------------------------------------------------------- enrolment
def test_enrol_record_layout(enrolled):
    from audiotools.speakers.voiceprints import SCHEMA

    rec = json.loads((enrolled.dir / "anna.json").read_text(encoding="utf-8"))
    assert rec["schema"] == SCHEMA and rec["name"] == "Anna" and rec["created"]
    from audiotools.weights import CAMPLUS

    assert rec["model"] == {"id": "campplus-cn-en-common-192", "weights_sha256": CAMPLUS.sha256}
    assert rec["embeddings"]["shape"] == [1, 192]
    s = rec["samples"][0]
    assert s["file"] == "anna.wav" and len(s["sha256"]) == 64 and len(s["pcm_sha256"]) == 64
    assert 10 < s["duration"] < 12 and 8 < s["speech_seconds"] <= s["duration"]
    assert s["condition"] == "wideband" and s["checks"]["single_speaker"]["single_speaker"]
    emb = enrolled.dir / rec["embeddings"]["file"]
    assert emb.suffix == ".safetensors" and emb.is_file()
    from safetensors.numpy import load_file

    t = load_file(str(emb))
    assert set(t) == {"wideband", "telephone", "telephone-codec"}
    assert all(v.shape == (1, 192) and v.dtype == np.float32 for v in t.values())
    assert np.allclose(np.linalg.norm(t["wideband"], axis=1), 1, atol=1e-4)
    # Cyrillic display name kept, file id case-folded
    rec_b = json.loads((enrolled.dir / "борис.json").read_text(encoding="utf-8"))
    assert rec_b["name"] == "Борис"
    assert not list(enrolled.dir.glob("*.pkl")) and not list(enrolled.dir.glob("*.pt"))


def test_enrol_appends_and_skips_duplicates(tmp_path, scorer):
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.voiceprints import VoiceprintStore

    store = VoiceprintStore(tmp_path / "vp")
    enroll(store, "Clara", [VOICES / "clara.wav"], scorer, segment=(0.0, 5.5))
    vp, added, skipped = enroll(store, "clara", [VOICES / "clara.wav"], scorer, segment=(4.5, 10.3))
    assert len(vp.samples) == 2 and vp.name == "Clara" and len(added) == 1 and not skipped
    assert vp.embeddings["wideband"].shape == (2, 192)
    vp, added, skipped = enroll(store, "CLARA", [VOICES / "clara.wav"], scorer, segment=(0.0, 5.5))
    assert len(vp.samples) == 2 and len(skipped) == 1
    assert len(list(store.dir.glob("clara.*.safetensors"))) == 1  # the old embeddings file was removed


def test_enrol_rejects_too_little_speech(tmp_path, scorer):
    from audiotools.errors import EnrolmentRejected
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.voiceprints import VoiceprintStore

    store = VoiceprintStore(tmp_path / "vp")
    with pytest.raises(EnrolmentRejected, match=r"only \d\.\d s of speech .*at least 3 s"):
        enroll(store, "Anna", [VOICES / "anna.wav"], scorer, segment=(0.0, 2.0))
    assert not store.record_paths()


def test_enrol_rejects_two_voices(tmp_path, scorer):
    import soundfile as sf
    from conftest import SHARED

    from audiotools.errors import EnrolmentRejected
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.voiceprints import VoiceprintStore

    store = VoiceprintStore(tmp_path / "vp")
    # two real LibriSpeech readers, one after the other (about 60 % / 40 % of the speech)
    parts = []
    for speaker, n in (("1688", 2), ("2414", 2)):
        for f in sorted((SHARED / "speakers" / speaker).glob("*.flac"))[:n]:
            parts.append(sf.read(str(f), dtype="float32")[0])
    mix = tmp_path / "two readers.wav"
    sf.write(str(mix), np.concatenate(parts), 16000)
    with pytest.raises(EnrolmentRejected, match="more than one voice"):
        enroll(store, "Mix", [mix], scorer)
    # one speaker's part of the same file is fine: Anna's first turn (0.5-8.75 s in the ground truth)
    vp, added, _ = enroll(store, "Anna", [SAMPLES / "conversation.wav"], scorer, segment=(0.5, 8.7))
    assert added[0].segment == [0.5, 8.7]


# ---------------------------------------------------------------------------------- corrupt stores
def _copy_store(src, dst):
    import shutil

    shutil.copytree(src, dst)
    from audiotools.speakers.voiceprints import VoiceprintStore

    return VoiceprintStore(dst)


def test_corrupt_json_names_the_file(enrolled, tmp_path):
    from audiotools.errors import VoiceprintError

    store = _copy_store(enrolled.dir, tmp_path / "s")
    (store.dir / "anna.json").write_text('{"schema": "audiotools.voiceprint/1", "name": ', encoding="utf-8")
    with pytest.raises(VoiceprintError) as e:
        store.get("Anna")
    msg = str(e.value)
    assert "anna.json" in msg and "invalid JSON" in msg and "\n" not in msg


def test_bad_store_and_bad_enrolment_file_stop_before_any_audio_work(enrolled, tmp_path, capsys, monkeypatch):
    """identify checks every record before it diarises; enroll probes every file before it embeds."""
    import audiotools.speakers.enrol as enrol_module
    import audiotools.speakers.verification as verification
    from audiotools.cli import main

    def no_audio_work(*args, **kwargs):
        raise AssertionError("audio work before the inputs were checked")

    monkeypatch.setattr(verification, "diarized_turns", no_audio_work)
    monkeypatch.setattr(enrol_module, "prepare_sample", no_audio_work)
    store = _copy_store(enrolled.dir, tmp_path / "s")
    (store.dir / "anna.json").write_text("{broken", encoding="utf-8")
    capsys.readouterr()
    assert main(["identify", str(SAMPLES / "conversation.wav"), "--voiceprints", str(store.dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "anna.json: corrupt voiceprint record" in err and "\n" not in err
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    argv = [
        "voiceprint",
        "enroll",
        "Dora",
        str(VOICES / "anna.wav"),
        str(empty),
        "--voiceprints",
        str(tmp_path / "new"),
    ]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == f"error: {empty}: empty file (0 bytes)"
    assert not (tmp_path / "new").exists()


def test_missing_and_truncated_embeddings(enrolled, tmp_path):
    from audiotools.errors import VoiceprintError

    store = _copy_store(enrolled.dir, tmp_path / "s")
    rec = json.loads((store.dir / "anna.json").read_text(encoding="utf-8"))
    emb = store.dir / rec["embeddings"]["file"]
    data = emb.read_bytes()
    emb.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        VoiceprintError, match=r"\.safetensors: embeddings file of voiceprint 'Anna' is corrupt or truncated"
    ):
        store.get("Anna")
    emb.unlink()
    with pytest.raises(VoiceprintError, match="is missing"):
        store.all()


def test_shape_mismatch_and_missing_field(enrolled, tmp_path):
    from safetensors.numpy import save

    from audiotools.errors import VoiceprintError
    from audiotools.fileio import sha256_bytes

    store = _copy_store(enrolled.dir, tmp_path / "s")
    p = store.dir / "anna.json"
    rec = json.loads(p.read_text(encoding="utf-8"))
    bad = save({c: np.zeros((3, 192), np.float32) for c in ("wideband", "telephone", "telephone-codec")})
    (store.dir / rec["embeddings"]["file"]).write_bytes(bad)
    rec["embeddings"]["sha256"] = sha256_bytes(bad)
    p.write_text(json.dumps(rec), encoding="utf-8")
    with pytest.raises(VoiceprintError, match=r"shape \(3, 192\), expected \(1, 192\)"):
        store.get("Anna")
    del rec["model"]
    p.write_text(json.dumps(rec), encoding="utf-8")
    with pytest.raises(VoiceprintError, match="anna.json: corrupt voiceprint record \\(missing field 'model'\\)"):
        store.get("anna")


def test_other_embedding_model_is_never_compared(enrolled, tmp_path, scorer):
    from audiotools.audio.decode import load_audio
    from audiotools.errors import VoiceprintError
    from audiotools.speakers.identification import identify

    store = _copy_store(enrolled.dir, tmp_path / "s")
    p = store.dir / "anna.json"
    rec = json.loads(p.read_text(encoding="utf-8"))
    rec["model"]["id"] = "ecapa-tdnn-192"
    p.write_text(json.dumps(rec), encoding="utf-8")
    turns = [{"start": 0.5, "end": 8.75, "speaker": "SPEAKER_00"}]
    with pytest.raises(VoiceprintError, match="made with embedding model ecapa-tdnn-192.*re-enrol"):
        identify(load_audio(SAMPLES / "conversation.wav"), turns, store, scorer=scorer)


def _ge2e_record(store_dir: Path) -> Path:
    """A record as the former GE2E system wrote it: model ge2e-resemblyzer-256, (1, 256) embeddings."""
    from safetensors.numpy import save

    from audiotools.fileio import sha256_bytes

    rng = np.random.default_rng(1)
    e = rng.standard_normal((1, 256)).astype(np.float32)
    data = save({c: e / np.linalg.norm(e) for c in ("wideband", "telephone", "telephone-codec")})
    (store_dir / "old.0123abcd.safetensors").write_bytes(data)
    rec = {
        "schema": "audiotools.voiceprint/1",
        "name": "Old Anna",
        "id": "old_anna",
        "created": "2026-11-01T00:00:00Z",
        "updated": "2026-11-01T00:00:00Z",
        "model": {
            "id": "ge2e-resemblyzer-256",
            "weights_sha256": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
        },
        "embeddings": {
            "file": "old.0123abcd.safetensors",
            "sha256": sha256_bytes(data),
            "format": "safetensors",
            "conditions": ["wideband", "telephone", "telephone-codec"],
            "shape": [1, 256],
            "dtype": "float32",
        },
        "speech_seconds": 9.9,
        "samples": [
            {
                "file": "anna interview.wav",
                "sha256": "0" * 64,
                "pcm_sha256": "1" * 64,
                "duration": 11.0,
                "speech_seconds": 9.9,
            }
        ],
    }
    p = store_dir / "old_anna.json"
    p.write_text(json.dumps(rec), encoding="utf-8")
    return p


def test_ge2e_record_is_refused_with_the_reenrol_command(tmp_path, capsys):
    """A GE2E-era record is listed but never compared: verify, identify and enroll (append) all stop
    with one line naming the record and the exact commands that re-enrol the person."""
    from audiotools.cli import main
    from audiotools.errors import VoiceprintError
    from audiotools.speakers.voiceprints import VoiceprintStore

    store_dir = tmp_path / "old store"
    store_dir.mkdir()
    rec = _ge2e_record(store_dir)
    store = VoiceprintStore(store_dir)
    vp = store.get("Old Anna")  # readable: `voiceprint list` still shows it
    assert vp.model_id == "ge2e-resemblyzer-256" and vp.embeddings["wideband"].shape == (1, 256)
    expected = (
        f"audiotools voiceprint remove 'Old Anna' --voiceprints '{store_dir}' && "
        f"audiotools voiceprint enroll 'Old Anna' 'anna interview.wav' --voiceprints '{store_dir}'"
    )
    assert store.reenrol_command(vp) == expected
    capsys.readouterr()
    wav = str(SAMPLES / "conversation.wav")
    for argv in (
        ["verify", wav, "--speaker", "Old Anna", "--segment", "0.5-8.75", "--voiceprints", str(store_dir)],
        ["identify", wav, "--voiceprints", str(store_dir), "--rttm", str(SAMPLES / "conversation.rttm")],
        ["voiceprint", "enroll", "Old Anna", str(VOICES / "anna.wav"), "--voiceprints", str(store_dir)],
    ):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith(
            f"error: {rec}: voiceprint 'Old Anna' was made with embedding model ge2e-resemblyzer-256"
        ), err
        assert "not the current campplus-cn-en-common-192" in err and expected in err
    with pytest.raises(VoiceprintError, match="re-enrol with `audiotools voiceprint remove"):
        store.check_model(vp, "campplus-cn-en-common-192", "")


def test_ge2e_store_calibration_is_refused(enrolled, tmp_path, capsys):
    """A store calibration fitted for GE2E is never applied to CAM++ scores."""
    from audiotools.cli import main

    store = _copy_store(enrolled.dir, tmp_path / "s")
    (store.dir / "_calibration.json").write_text(
        json.dumps(
            {
                "schema": "audiotools.calibration/1",
                "model": {"id": "ge2e-resemblyzer-256", "weights_sha256": "39" * 32},
                "conditions": {"wideband": {"top_n": 50, "features": ["snorm"], "weights": [1.0], "bias": 0.0}},
            }
        ),
        encoding="utf-8",
    )
    capsys.readouterr()
    wav = str(VOICES / "anna.wav")
    assert main(["verify", wav, "--speaker", "Anna", "--no-diarize", "--voiceprints", str(store.dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "_calibration.json: fitted for embedding model 'ge2e-resemblyzer-256'" in err
    assert f"audiotools voiceprint calibrate --reset --voiceprints {store.dir}" in err


def test_cli_list_show_remove(enrolled, tmp_path, capsys):
    from audiotools.cli import main

    store = _copy_store(enrolled.dir, tmp_path / "s")
    assert main(["voiceprint", "list", "--voiceprints", str(store.dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(v["name"] for v in out["voiceprints"]) == ["Anna", "Борис"]
    assert main(["voiceprint", "show", "борис", "--voiceprints", str(store.dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"][0]["file"] == "boris.wav"
    assert main(["voiceprint", "remove", "Борис", "--voiceprints", str(store.dir)]) == 0
    assert not list(store.dir.glob("борис*"))
    assert main(["voiceprint", "show", "Борис", "--voiceprints", str(store.dir)]) == 1
    assert "no voiceprint for 'Борис'" in capsys.readouterr().err.replace("\n", "")
    assert main(["voiceprint", "enroll", "../evil", str(VOICES / "anna.wav"), "--voiceprints", str(store.dir)]) == 2


# ------------------------------------------------------------------------------------- concurrency
def _writer(store_dir: str, name: str, seed: int, n: int) -> None:
    from audiotools.speakers.voiceprints import Sample, VoiceprintStore

    store = VoiceprintStore(store_dir)
    rng = np.random.default_rng(seed)
    for i in range(n):
        e = rng.standard_normal((1, 192)).astype(np.float32)
        e /= np.linalg.norm(e)
        s = Sample(
            file=f"w{seed}-{i}.wav",
            sha256=f"{seed:032x}{i:032x}",
            pcm_sha256=f"{seed:032x}{i:032x}",
            duration=5.0,
            speech_seconds=4.0,
        )
        store.add_samples(
            name,
            [s],
            dict.fromkeys(("wideband", "telephone", "telephone-codec"), e),
            "campplus-cn-en-common-192",
            "0" * 64,
        )


def test_concurrent_writers_keep_the_store_consistent(tmp_path):
    """4 processes append 6 samples each, two to the same person and two to others, all at once."""
    from audiotools.speakers.voiceprints import VoiceprintStore

    ctx = mp.get_context("spawn")
    jobs = [("Same Person", 1), ("Same Person", 2), ("Other", 3), ("Третий", 4)]
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), name, seed, 6)) for name, seed in jobs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = VoiceprintStore(tmp_path)
    people = {vp.name: vp for vp in store.all()}
    assert set(people) == {"Same Person", "Other", "Третий"}
    assert len(people["Same Person"].samples) == 12 and people["Same Person"].embeddings["wideband"].shape == (12, 192)
    assert len(people["Other"].samples) == 6 and len(people["Третий"].samples) == 6
    assert len({s.file for s in people["Same Person"].samples}) == 12
    # exactly one embeddings file per record, no temp files left behind
    assert len(list(tmp_path.glob("*.safetensors"))) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_two_enrol_processes_at_once(tmp_path):
    """Two real `audiotools voiceprint enroll` processes into one store at the same time."""
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "audiotools", "voiceprint", "enroll"]
    a = subprocess.Popen(
        cmd + ["Anna", str(VOICES / "anna.wav"), "--voiceprints", str(tmp_path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    b = subprocess.Popen(
        cmd + ["Anna", str(VOICES / "anna.wav"), "--segment", "0-6", "--voiceprints", str(tmp_path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for p in (a, b):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    from audiotools.speakers.voiceprints import VoiceprintStore

    vp = VoiceprintStore(tmp_path).get("anna")
    assert len(vp.samples) == 2 and vp.embeddings["telephone"].shape == (2, 192)
    assert sorted(str(s.segment) for s in vp.samples) == ["None", "[0.0, 6.0]"]


def test_window_embeddings_are_campplus(scorer):
    """The one-voice check's windows: CAM++ (192-d, unit length) on 1.5 s windows every 0.75 s of the
    speech; their mean points the way of the whole sample's embedding."""
    from audiotools.speakers.campplus import EMBEDDING_DIM, WINDOW_SECONDS, WINDOW_STEP_SECONDS, window_starts
    from audiotools.speakers.embedding_cache import Audio, cut
    from audiotools.speakers.voiceprints import EMBEDDING_DIM as STORE_DIM

    ex = scorer.extractor
    assert ex.dim == EMBEDDING_DIM == STORE_DIM == 192 and ex.model_id == "campplus-cn-en-common-192"
    a = Audio.load(VOICES / "anna.wav")
    w = ex.window_embeddings(a, None, "wideband")
    n = len(cut(a.samples, ex.speech_in(a, None)))
    assert w.shape == (len(window_starts(n, int(WINDOW_SECONDS * 16000), int(WINDOW_STEP_SECONDS * 16000))), 192)
    assert np.allclose(np.linalg.norm(w, axis=1), 1, atol=1e-4)
    whole = ex.embed([(a, None, "wideband")])[0].embedding
    m = w.mean(0)
    assert float(m @ whole / np.linalg.norm(m)) > 0.7


def test_verify_with_a_voiceprint_records_its_samples_and_hashes(enrolled, capsys):
    """`verify --speaker --json` ties the LR to what produced it: the record's sha256, its embeddings
    file and sha256, and every enrolled sample's name and hashes, as the record stores them."""
    from audiotools.cli import main
    from audiotools.fileio import sha256_file

    capsys.readouterr()
    rc = main(
        ["verify", str(VOICES / "boris.wav"), "--speaker", "Борис", "--voiceprints", str(enrolled.dir)]
        + ["--no-diarize", "--json"]
    )
    assert rc == 0
    ref = json.loads(capsys.readouterr().out)["reference"]
    rec = json.loads(Path(ref["record"]).read_text(encoding="utf-8"))
    assert ref["record_sha256"] == sha256_file(ref["record"])
    assert ref["embeddings"] == {"file": rec["embeddings"]["file"], "sha256": rec["embeddings"]["sha256"]}
    assert ref["embeddings"]["sha256"] == sha256_file(enrolled.dir / ref["embeddings"]["file"])
    keys = ("file", "sha256", "pcm_sha256", "segment", "condition", "enrolled")
    assert [{k: s[k] for k in keys} for s in ref["samples"]] == [{k: s[k] for k in keys} for s in rec["samples"]]
    assert ref["samples"][0]["file"] == "boris.wav" and ref["samples"][0]["sha256"] == sha256_file(VOICES / "boris.wav")
    assert ref["single_speaker"] is True and ref["samples"][0]["single_speaker"] is True


def test_enrol_message_shows_the_same_voice_likelihood_ratio(tmp_path, scorer):
    """Adding a sample to an existing name prints the same-voice check's log10 LR, so a modest match
    is visible to the examiner (--json has it in each added sample's checks.same_voice)."""
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.voiceprints import VoiceprintStore
    from tests.conftest import run_cli

    store = VoiceprintStore(tmp_path / "vp")
    enroll(store, "Clara", [VOICES / "clara.wav"], scorer, segment=(0.0, 5.5))
    r = run_cli(
        "voiceprint", "enroll", "Clara", str(VOICES / "clara.wav"), "--segment", "4.5-10.3", "--voiceprints",
        str(store.dir),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    check = store.get("Clara").samples[1].checks["same_voice"]
    assert check["matches"] and f"same voice as the record: log10 LR {check['llr']:+.2f} (" in r.stderr
    assert "enrolled clara.wav for Clara" in r.stderr
