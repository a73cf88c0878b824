"""Issue 16: no crash on any input, bounded memory, forged headers refused, one-line errors.

Decoding runs in a child process (``reliability_corpus.run_harness``): a segfault or a hang fails
the test, naming the file, instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT
from reliability_corpus import alive, descendants, fuzz_corpus, hostile_inputs, run_harness

from audiotools.audio import decode
from audiotools.audio.decode import check_input_file, declared_seconds, load_audio, probe_audio
from audiotools.errors import InputError


def _one_line_naming(outcome) -> bool:
    text = str(outcome.detail)
    msg = text.split(": ", 1)[1] if ": " in text else text
    name = Path(outcome.path).name.replace("\n", "\\n")
    return "\n" not in msg and name in msg


# ---------------------------------------------------------------- many channels (the segfault)


@pytest.mark.parametrize(
    "channels,rate,fmt", [(8, 44100, "WAV"), (9, 48000, "WAV"), (16, 22050, "WAV"), (8, 48000, "FLAC")]
)
def test_many_channel_files_decode_in_a_subprocess(tmp_path, channels, rate, fmt):
    """8+ channels at a rate other than 16 kHz used to kill the process in PyAV's to_ndarray (exit 139)."""
    rng = np.random.default_rng(channels)
    x = (rng.standard_normal((rate // 2, channels)) * 0.1).astype(np.float32)
    p = tmp_path / f"many.{fmt.lower()}"
    sf.write(p, x, rate, format=fmt, subtype="PCM_16")
    code = (
        "import sys, numpy as np; from audiotools.audio.decode import load_audio;"
        "a = load_audio(sys.argv[1], keep_channels=True);"
        "assert a.channel_samples.shape[0] == a.info.channels;"
        "assert np.allclose(a.channel_samples.mean(axis=0), a.samples, atol=1e-6);"
        "print(a.info.channels, a.duration)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(p)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    ch, dur = r.stdout.split()
    assert int(ch) == channels and abs(float(dur) - 0.5) < 0.01


def test_resampled_pcm_is_unchanged_by_the_packed_resampler(tmp_path):
    """The interleaved resampler output equals the planar one bit for bit (PCM hashes of old
    transcripts still verify): the mono mix equals the mean of the kept channels exactly."""
    x = (np.random.default_rng(3).standard_normal((44100, 3)) * 0.2).astype(np.float32)
    p = tmp_path / "three.wav"
    sf.write(p, x, 44100, subtype="PCM_16")
    a = load_audio(p, keep_channels=True)
    mono = np.clip(a.channel_samples.mean(axis=0, dtype=np.float32), -1, 1)
    assert np.array_equal(mono, a.samples)


# ---------------------------------------------------------------- hostile files and the fuzz corpus


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    items = hostile_inputs(d)
    return items, run_harness([h.path for h in items], timeout=120)


def test_hostile_inputs_never_crash_and_fail_with_one_line(hostile):
    items, result = hostile
    assert len(items) >= 60
    problems = []
    for h, o in zip(items, result.outcomes):
        if o.status in ("crash", "hang", "uncaught"):
            problems.append(f"{h.name}: {o.status} {o.detail}")
        elif h.expect != "any" and o.status != h.expect:
            problems.append(f"{h.name}: expected {h.expect}, got {o.status} {o.detail}")
        elif o.status == "error" and not _one_line_naming(o):
            problems.append(f"{h.name}: error is not one line naming the file: {o.detail!r}")
        elif o.status == "ok" and h.warning and not any(h.warning in w for w in o.warnings):
            problems.append(f"{h.name}: no {h.warning!r} warning ({o.warnings})")
    assert not problems, "\n".join(problems)
    # forged durations (a 300 KB WAV at 1 Hz declaring 20 h, a FLAC declaring 2^36 samples, a WAV
    # declaring 4 GiB) cost memory for the samples present only
    assert result.peak_rss_mb < 1000, result.peak_rss_mb


def test_hostile_reasons_say_what_the_path_is(hostile):
    items, result = hostile
    reason = {h.name: str(o.detail) for h, o in zip(items, result.outcomes)}
    assert "symbolic link loop" in reason["symlink loop"]
    assert "named pipe" in reason["FIFO"]
    assert "is a device" in reason["/dev/zero"]
    assert "is a directory" in reason["directory x.wav"]
    assert "broken symbolic link" in reason["broken symlink"]
    assert "1 Hz" in reason["rate1_300k.wav"]
    assert "300 audio channels" in reason["channels300.wav"]
    assert "codec is unknown" in reason["tag_unknown.wav"]


def test_fuzz_corpus_raises_only_input_errors(tmp_path):
    """A seeded corpus of mutated WAV/FLAC/OGG/MP3/Opus/M4A files: no signal, no hang, no exception
    type outside audiotools.errors, every error one line naming the file."""
    paths = fuzz_corpus(tmp_path, 360, seed=16)
    result = run_harness(paths, timeout=120)
    bad = [f"{Path(o.path).name}: {o.status} {o.detail}" for o in result.outcomes if o.status not in ("ok", "error")]
    assert not bad, "\n".join(bad)
    assert result.count("error") > 50 and result.count("ok") > 50  # the corpus exercises both outcomes
    not_one_line = [o.detail for o in result.outcomes if o.status == "error" and not _one_line_naming(o)]
    assert not not_one_line, not_one_line[:5]
    assert result.restarts == 0 and result.peak_rss_mb < 1000


# ---------------------------------------------------------------- budgets and truncation


def test_decode_budget_refuses_a_decompression_bomb(tmp_path, monkeypatch):
    """Decoding stops with an InputError once the samples exceed the budget for the file's size
    (lowered here, so a real 30 s FLAC stands in for a bomb)."""
    p = tmp_path / "silence.flac"
    sf.write(p, np.zeros(16000 * 30, dtype=np.float32), 16000)
    monkeypatch.setattr(decode, "BUDGET_BASE_SECONDS", 5.0)
    monkeypatch.setattr(decode, "BUDGET_BYTES_PER_SECOND", 1e9)
    with pytest.raises(InputError, match="decompression bomb"):
        load_audio(p)
    p44 = tmp_path / "silence44.flac"
    sf.write(p44, np.zeros(44100 * 30, dtype=np.float32), 44100)  # the FFmpeg path too
    with pytest.raises(InputError, match="decompression bomb"):
        load_audio(p44)
    monkeypatch.undo()
    assert abs(load_audio(p).duration - 30) < 0.01


@pytest.mark.parametrize("rate", [16000, 44100])  # soundfile path, FFmpeg path
def test_truncated_wav_warns_on_every_path(tmp_path, rate):
    p = tmp_path / "cut.wav"
    sf.write(p, np.zeros(rate * 4, dtype=np.float32) + 0.1, rate, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert abs(declared_seconds(p) - 4.0) < 1e-6
    a = load_audio(p)
    assert 1.9 < a.duration < 2.1
    assert any("truncated" in w and "4.00 s" in w for w in a.warnings), a.warnings


def test_input_checks_name_what_the_path_is(tmp_path):
    loop = tmp_path / "loop.wav"
    os.symlink("loop.wav", loop)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path, words in [(loop, "symbolic link loop"), (fifo, "named pipe"), (Path("/dev/zero"), "is a device")]:
        with pytest.raises(InputError, match=words):
            check_input_file(path)
        with pytest.raises(InputError, match=words):
            probe_audio(path)
    bad = tmp_path / "tag.wav"
    sf.write(bad, np.zeros(1600, dtype=np.float32), 16000, subtype="PCM_16")
    b = bytearray(bad.read_bytes())
    b[20:22] = (0x1234).to_bytes(2, "little")
    bad.write_bytes(bytes(b))
    with pytest.raises(InputError, match="codec is unknown"):
        probe_audio(bad)


def test_control_characters_in_a_file_name_stay_on_one_line(tmp_path):
    p = tmp_path / "a\nb.wav"
    p.write_bytes(b"")
    with pytest.raises(InputError) as e:
        load_audio(p)
    assert "\n" not in str(e.value) and "a\\nb.wav" in str(e.value)


# ---------------------------------------------------------------- CLI: inputs before models, names

BAD_MODEL = ["--model", "/nonexistent/model.pt"]  # loading it would fail: an input error proves it never loaded


def test_empty_file_is_rejected_before_any_model_loads(tmp_path):
    from conftest import run_cli

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    r = run_cli("transcribe", str(empty), "-o", str(tmp_path / "out"), *BAD_MODEL)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {empty}: empty file (0 bytes)"]
    assert not (tmp_path / "out").exists()


def test_identify_rejects_a_bad_input_before_the_speaker_models_load(tmp_path):
    """With no speaker weights reachable (empty model home, fetching off), the answer is still the
    input's own one-line error: the inputs are probed before any model is looked for."""
    from conftest import ROOT, run_cli

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    env = {"AUDIOTOOLS_HOME": str(tmp_path / "no-models"), "AUDIOTOOLS_ALLOW_FETCH": "0"}
    r = run_cli("identify", str(empty), "--voiceprints", str(ROOT / "voiceprints"), env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {empty}: empty file (0 bytes)"]


def test_corrupt_voiceprint_store_fails_before_transcription(tmp_path):
    from conftest import JFK, run_cli

    store = tmp_path / "vp"
    store.mkdir()
    (store / "anna.json").write_text('{"schema": "audiotools.voiceprint/1", "name": ')  # cut short
    r = run_cli("transcribe", str(JFK), "-o", str(tmp_path / "out"), "--voiceprints", str(store), *BAD_MODEL)
    assert r.returncode == 1
    assert "anna.json" in r.stderr and "voiceprint" in r.stderr and "model" not in r.stderr.lower()
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_250_byte_file_name_gets_a_shortened_stem_recorded_in_the_json(tmp_path):
    import json
    import shutil

    from conftest import JFK, run_cli

    from audiotools.fileio import STEM_MAX_BYTES

    src = tmp_path / ("ž" * 60 + "n" * 125 + ".flac")  # 250 bytes in UTF-8
    assert len(src.name.encode()) == 250
    shutil.copy(JFK, src)
    out = tmp_path / "out"
    fast = ["--model", "tiny.en", "--language", "en", "--no-diarize", "-f", "json,srt,txt"]
    r = run_cli("transcribe", str(src), "-o", str(out), *fast)
    assert r.returncode == 0, r.stderr
    js = [p for p in out.iterdir() if p.suffix == ".json"]
    assert len(js) == 1 and len(js[0].stem.encode()) <= STEM_MAX_BYTES and "~" in js[0].stem
    doc = json.loads(js[0].read_text())
    assert doc["output"] == {"stem": js[0].stem, "full_stem": src.stem, "reason": "name too long"}
    assert {p.suffix for p in out.iterdir() if not p.name.startswith(".")} == {".json", ".srt", ".txt", ".sha256"}
    v = run_cli("provenance", "verify", str(js[0]), "--audio", str(src), "--exports")
    assert v.returncode == 3, v.stdout  # intact (unsigned): the shortened name is covered by the hashes


# ---------------------------------------------------------------- batch: unreadable paths, output sets, kills


def test_batch_lists_every_unreadable_path_with_its_reason(tmp_path):
    import json

    from conftest import run_cli

    src = tmp_path / "in"
    src.mkdir()
    (src / "folder.wav").mkdir()
    os.symlink("loop.mp3", src / "loop.mp3")
    os.mkfifo(src / "pipe.flac")
    os.symlink("/dev/zero", src / "zero.wav")
    (src / "empty.ogg").write_bytes(b"")
    (src / "text.wav").write_text("not audio\n" * 20)
    out = tmp_path / "out"
    r = run_cli("batch", str(src), "-o", str(out), *BAD_MODEL)
    assert r.returncode == 1, r.stderr
    assert "model" not in r.stderr.lower()  # every file failed its check: no model was loaded
    files = {Path(f["input"]).name: f for f in json.loads((out / "batch-report.json").read_text())["files"]}
    want = {
        "folder.wav": "is a directory",
        "loop.mp3": "symbolic link loop",
        "pipe.flac": "named pipe",
        "zero.wav": "is a device",
        "empty.ogg": "empty file",
        "text.wav": "not an audio file",
    }
    assert set(files) == set(want)
    for name, words in want.items():
        assert files[name]["status"] == "failed" and words in files[name]["error"], files[name]
        assert "\n" not in files[name]["error"] and name in files[name]["error"]


def test_resume_redoes_a_mixed_output_set(tmp_path, tiny_transcriber):
    """A kill between the renames of one file's outputs leaves new and old files side by side; the
    manifest written with the set shows it, and the resume redoes the file."""
    import shutil

    from conftest import JFK
    from test_batch import tiny_recipe

    from audiotools.batch.engine import BatchOptions
    from audiotools.batch.run import run_batch
    from audiotools.provenance.document import sibling_exports, verify

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(JFK, src / "jfk.flac")
    out = tmp_path / "out"
    recipe = tiny_recipe()
    r1 = run_batch([src], recipe, BatchOptions(output_dir=out, workers=0), transcriber=tiny_transcriber)
    assert [r.status for r in r1.records] == ["ok"]
    manifest = out / ".jfk.outputs.sha256"
    assert manifest.is_file() and "jfk.json" in manifest.read_text()
    # a second run's SRT (another generation: a different transcript) over the first run's set
    old_srt = (out / "jfk.srt").read_text()
    (out / "jfk.srt").write_text(old_srt.replace("country", "county", 1))
    r2 = run_batch([src], recipe, BatchOptions(output_dir=out, workers=0), transcriber=tiny_transcriber)
    assert [r.status for r in r2.records] == ["ok"]  # redone, not skipped
    js = out / "jfk.json"
    failed = [c for c in verify(__import__("json").loads(js.read_text()), exports=sibling_exports(js)) if not c.ok]
    assert not failed and (out / "jfk.srt").read_text() == old_srt
    r3 = run_batch([src], recipe, BatchOptions(output_dir=out, workers=0), transcriber=tiny_transcriber)
    assert [r.status for r in r3.records] == ["skipped"]
    manifest.unlink()  # no manifest (an interrupted or older run): redone
    r4 = run_batch([src], recipe, BatchOptions(output_dir=out, workers=0), transcriber=tiny_transcriber)
    assert [r.status for r in r4.records] == ["ok"] and manifest.is_file()


def test_decode_workers_and_resource_tracker_die_with_a_killed_batch(tmp_path):
    """kill -9 of the batch process alone (not its group): its decode workers and multiprocessing's
    resource tracker exit within seconds, and no shared memory of it is left in /dev/shm."""
    import signal
    import time

    from conftest import JFK

    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.flac").write_bytes(JFK.read_bytes())  # copies: links to one file are one input
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "audiotools", "-q", "batch", str(src), "-o", str(out), "--model", "tiny.en"]
    cmd += ["--language", "en", "--workers", "2", "--no-diarize"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        kids: set[int] = set()
        while time.time() < deadline and proc.poll() is None:
            kids = descendants(proc.pid)
            if len(kids) >= 3:  # two workers + the resource tracker
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(kids) >= 3, kids
        time.sleep(0.5)
        kids = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(k) for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if alive(k)], "orphans left running"
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"audiotools_pf_{proc.pid}_")]


# ---------------------------------------------------------------- enrolment: the same voice


def test_enrolling_another_voice_under_an_existing_name_is_refused(tmp_path):
    from conftest import SHARED

    from audiotools.errors import EnrolmentRejected
    from audiotools.speakers.enrol import enroll
    from audiotools.speakers.verification import Scorer
    from audiotools.speakers.voiceprints import VoiceprintStore

    def long_files(speaker: str) -> list[Path]:
        return [f for f in sorted((SHARED / "speakers" / speaker).glob("*.flac")) if sf.info(f).duration > 8][:2]

    a, b = long_files("1998"), long_files("2414")
    store = VoiceprintStore(tmp_path / "vp")
    scorer = Scorer()
    enroll(store, "Anna", [a[0]], scorer)
    with pytest.raises(EnrolmentRejected, match="does not sound like the voice enrolled as 'Anna'"):
        enroll(store, "Anna", [b[0]], scorer)
    assert len(store.get("Anna").samples) == 1  # nothing written
    vp, added, _ = enroll(store, "Anna", [a[1]], scorer)  # the same reader: accepted, score recorded
    assert len(vp.samples) == 2 and added[0].checks["same_voice"]["matches"] is True
    assert added[0].checks["same_voice"]["llr"] > 0
    vp, added, _ = enroll(store, "Anna", [b[1]], scorer, force=True)
    assert len(vp.samples) == 3 and added[0].checks["same_voice"]["forced"] is True
