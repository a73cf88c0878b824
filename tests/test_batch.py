"""``audiotools batch``: discovery, resume, kill -9 safety, bad files, batched == sequential, Ray."""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import JFK, JFK_TEXT, ROOT, SHARED, wer

from audiotools.batch.engine import BatchOptions
from audiotools.batch.plan import discover, recipe_fingerprint, remove_stale_temp_files
from audiotools.batch.run import run_batch
from audiotools.pipeline.recipe import load_recipe


def _batch_has_flag(flag: str) -> bool:
    from audiotools.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return any(flag in a.option_strings for a in sub.choices["batch"]._actions)


# diarisation is not the point here: switch it off where this installation has it
FAST = ["--model", "tiny.en", "--language", "en"] + (["--no-diarize"] if _batch_has_flag("--no-diarize") else [])
FORMATS = ["json", "srt", "vtt", "txt", "tsv"]


def utterances(n: int, speaker: str = "1998") -> list[Path]:
    files = sorted((SHARED / "speakers" / speaker).glob("*.flac"))
    assert len(files) >= n
    return files[:n]


def tiny_recipe(**transcribe):
    r = load_recipe("default")
    r = r.replace("transcribe", model="tiny.en", language="en", device="cpu", **transcribe)
    return r.replace("diarize", enabled=False)


def all_outputs(out: Path) -> list[Path]:
    return sorted(
        p
        for p in out.rglob("*")
        if p.is_file() and p.name not in ("batch-report.json",) and not p.name.startswith(".audiotools-batch")
    )


def report(out: Path) -> dict:
    return json.loads((out / "batch-report.json").read_text())


def by_input(rep: dict) -> dict:
    return {Path(f["input"]).name: f for f in rep["files"]}


# ---------------------------------------------------------------- discovery (no model)


def test_directory_mirroring_list_files_and_stem_collisions(tmp_path):
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".hidden").mkdir()
    for p in [
        "top.wav",
        "a/x.flac",
        "a/b/y.mp3",
        "a/b/y.wav",
        "a/b/Z.OGG",
        ".hidden/h.wav",
        "a/.h.wav",
        "a/notes.txt",
        "a/cover.jpg",
    ]:
        q = root / p
        q.parent.mkdir(parents=True, exist_ok=True)
        q.write_bytes(b"x")
    out = root / "out"  # output inside the input tree: never scanned
    (out / "old").mkdir(parents=True)
    (out / "old" / "prev.wav").write_bytes(b"x")
    plan = discover([root], out)
    rels = {Path(it.input).relative_to(root).as_posix(): it.rel for it in plan}
    assert rels == {
        "top.wav": "top",
        "a/x.flac": "a/x",
        "a/b/y.mp3": "a/b/y.mp3",
        "a/b/y.wav": "a/b/y.wav",
        "a/b/Z.OGG": "a/b/Z",
    }
    # deterministic: same plan again, whatever the order of the inputs on disk
    assert [(i.input, i.rel) for i in discover([root], out)] == [(i.input, i.rel) for i in plan]

    # a list file: comments, blank lines, relative entries keep their path, absolute ones their name,
    # a directory entry is expanded, a missing entry is planned (it fails later, alone)
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "far.wav").write_bytes(b"x")
    lst = root / "list.txt"
    lst.write_text(f"# my files\n\na/x.flac\n  {other / 'far.wav'}  \na/b\nmissing.wav\n# end\n")
    plan = discover([lst], tmp_path / "o2")
    got = [(Path(i.input).name, i.rel) for i in plan]
    assert got == [
        ("x.flac", "a/x"),
        ("far.wav", "far"),
        ("Z.OGG", "a/b/Z"),
        ("y.mp3", "a/b/y.mp3"),
        ("y.wav", "a/b/y.wav"),
        ("missing.wav", "missing"),
    ]
    # the same input twice counts once; two roots with the same relative name get a path hash
    d2 = tmp_path / "in2"
    d2.mkdir()
    (d2 / "top.wav").write_bytes(b"x")
    plan = discover([root / "top.wav", root / "top.wav", d2], tmp_path / "o3")
    assert len(plan) == 2 and plan[0].rel != plan[1].rel
    assert all(i.rel.startswith("top.wav~") and len(i.rel) == len("top.wav~") + 8 for i in plan)


def test_stems_stay_distinct_when_a_whole_name_meets_another_files_stem(tmp_path):
    from audiotools.batch.plan import file_stems

    folder = tmp_path / "in"
    folder.mkdir()
    names = ["a.mp3", "a.wav", "a.wav.flac", "a.wav.flac.ogg", "a.wav.flac.ogg.mp3"]
    for n in names:
        (folder / n).write_bytes(b"x")
    stems = {Path(i.input).name: i.rel for i in discover([folder], tmp_path / "out")}
    assert len(set(stems.values())) == len(names), stems
    # a clash moves every file of it on a level, until none is left: `a.wav` keeps its extension and
    # meets `a.wav.flac`'s stem, so both move on; the hash goes to the files that still clash
    assert stems["a.mp3"] == "a.mp3" and stems["a.wav.flac.ogg.mp3"] == "a.wav.flac.ogg.mp3"
    for n in ("a.wav", "a.wav.flac", "a.wav.flac.ogg"):
        assert stems[n].startswith(n + "~") and len(stems[n]) == len(n) + 9, stems
    assert stems == {
        Path(i.input).name: i.rel for i in discover(sorted(folder.iterdir(), reverse=True), tmp_path / "o")
    }
    assert len(set(file_stems(folder / n for n in names).values())) == len(names)
    # the examples of docs/batch.md
    assert {Path(i.input).name: i.rel for i in discover([folder / "a.wav", folder / "a.wav.flac"])} == {
        "a.wav": "a",
        "a.wav.flac": "a.wav",
    }
    three = {Path(i.input).name: i.rel for i in discover([folder / "a.wav", folder / "a.mp3", folder / "a.wav.flac"])}
    assert three["a.mp3"] == "a.mp3" and three["a.wav.flac"] == "a.wav.flac" and three["a.wav"].startswith("a.wav~")


def test_recipe_fingerprint_ignores_scheduling_but_not_results():
    base = tiny_recipe()
    fp = recipe_fingerprint(base)
    assert recipe_fingerprint(base.replace("transcribe", device="cuda", batch_size=32, threads=4)) == fp
    assert recipe_fingerprint(base.replace("transcribe", beam_size=5)) != fp
    assert recipe_fingerprint(base.replace("export", formats=["json", "srt"])) != fp
    assert recipe_fingerprint(base.replace("mask", style="first")) != fp


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    stale = [tmp_path / ".a.json.k3j4h5g6.tmp", tmp_path / ".a.srt.sha256.abc_1234.tmp"]
    for s in stale:
        s.write_text("partial")
    keep = tmp_path / ".other.json.zz.tmp"
    keep.write_text("not ours")
    assert remove_stale_temp_files([tmp_path / "a.json", tmp_path / "a.srt", tmp_path / "a.srt.sha256"]) == 2
    assert not any(s.exists() for s in stale) and keep.exists()


# ---------------------------------------------------------------- the engine


def test_batched_text_equals_sequential(tiny_transcriber):
    """Windows of many files sharing batches give exactly the per-file transcripts."""
    from audiotools.asr.transcribe import EngineItem
    from audiotools.audio.decode import load_audio

    files = [JFK, SHARED / "diarization" / "sample.wav", *utterances(2), *utterances(1, "cohort")]
    audios = [load_audio(f) for f in files]
    sequential = [tiny_transcriber.transcribe(a) for a in audios]
    batched = list(
        tiny_transcriber.transcribe_many(
            EngineItem(key=i, samples=a.samples, language="en") for i, a in enumerate(audios)
        )
    )
    assert [b[0] for b in batched] == list(range(len(files)))  # input order
    for f, s, (_, segments, language, _) in zip(files, sequential, batched):
        assert [x.text for x in segments] == [x.text for x in s.segments], f
        # timestamps exactly; word probabilities (4 decimals) up to one rounding step: rows batched
        # with other files go through other matmul shapes, which moves the float32 sums by ~1e-6
        got, want = [x.to_dict() for x in segments], [x.to_dict() for x in s.segments]
        probs = lambda d: [w.pop("probability") for seg in d for w in seg["words"]]
        assert np.allclose(probs(got), probs(want), rtol=0, atol=1.5e-4), f
        assert got == want, f
        assert language == s.language
    assert wer(JFK_TEXT, sequential[0].text) <= 0.1


def test_resume_skips_unchanged_and_redoes_changed_input_or_recipe(tmp_path, tiny_transcriber, caplog):
    caplog.set_level(logging.DEBUG, logger="audiotools.batch.run")  # -v: why each file is to do
    src = tmp_path / "in"
    src.mkdir()
    a, b = src / "a.flac", src / "b.flac"
    shutil.copy(utterances(1)[0], a)
    shutil.copy(utterances(2, "2033")[1], b)
    out = tmp_path / "out"
    recipe = tiny_recipe()
    opts = lambda: BatchOptions(output_dir=out, workers=0)

    r1 = run_batch([src], recipe, opts(), transcriber=tiny_transcriber)
    assert [r.status for r in r1.records] == ["ok", "ok"] and r1.exit_code == 0
    names = sorted(p.name for p in out.iterdir())
    assert {f"a.{f}" for f in FORMATS} <= set(names) and {f"b.{f}" for f in FORMATS} <= set(names)
    mtimes = {p: p.stat().st_mtime_ns for p in all_outputs(out)}

    # unchanged: everything skipped, nothing rewritten; a stale temp file is cleaned up
    (out / ".a.json.zzzz1234.tmp").write_text("{partial")
    r2 = run_batch([src], recipe, opts(), transcriber=tiny_transcriber)
    assert [r.status for r in r2.records] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in all_outputs(out)} == mtimes
    assert not list(out.glob(".*.tmp"))
    rep = report(out)
    assert rep["complete"] and rep["totals"]["skipped"] == 2
    assert by_input(rep)["a.flac"]["audio_seconds"] > 1 and by_input(rep)["a.flac"]["outputs"]

    # the input changed: only that file is redone
    data, sr = sf.read(b)
    sf.write(b, data[: len(data) // 2], sr, format="FLAC")
    caplog.clear()
    r3 = run_batch([src], recipe, opts(), transcriber=tiny_transcriber)
    assert f"{b}: to do (input changed)" in caplog.messages, caplog.messages
    assert {Path(r.input).name: r.status for r in r3.records} == {"a.flac": "skipped", "b.flac": "ok"}
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in mtimes if p.name.startswith("a."))
    doc = json.loads((out / "b.json").read_text())
    from audiotools.fileio import sha256_file

    assert doc["audio"]["sha256"] == sha256_file(b)

    # the recipe changed (masking style): both redone; a scheduling change (batch size) is not a change
    r4 = run_batch([src], recipe.replace("transcribe", batch_size=3), opts(), transcriber=tiny_transcriber)
    assert [r.status for r in r4.records] == ["skipped", "skipped"]
    caplog.clear()
    r5 = run_batch([src], recipe.replace("mask", style="first"), opts(), transcriber=tiny_transcriber)
    assert f"{a}: to do (recipe changed)" in caplog.messages, caplog.messages
    assert [r.status for r in r5.records] == ["ok", "ok"]
    r6 = run_batch([src], recipe.replace("mask", style="first"), opts(), transcriber=tiny_transcriber)
    assert [r.status for r in r6.records] == ["skipped", "skipped"]


# ---------------------------------------------------------------- the command


def test_corrupt_file_does_not_stop_the_batch(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(JFK, src / "jfk.flac")
    shutil.copy(utterances(1, "2414")[0], src / "sub" / "talk.flac")
    (src / "sub" / "broken.mp3").write_bytes(os.urandom(4000))  # not audio at all
    good = sf.read(JFK)[0]
    sf.write(src / "truncated.wav", good[: 44100 * 3], 44100)
    with open(src / "truncated.wav", "r+b") as f:  # header says more than is there
        f.truncate(20000)
    (src / "empty.wav").write_bytes(b"")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "audiotools", "batch", str(src), "-o", str(out), *FAST, "--workers", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 1, r.stderr
    rep = report(out)
    files = by_input(rep)
    assert files["jfk.flac"]["status"] == "ok" and files["talk.flac"]["status"] == "ok"
    assert files["broken.mp3"]["status"] == "failed" and "broken.mp3" in files["broken.mp3"]["error"]
    assert files["empty.wav"]["status"] == "failed" and "empty" in files["empty.wav"]["error"]
    assert "\n" not in files["broken.mp3"]["error"]
    assert rep["complete"] and rep["totals"]["failed"] >= 2
    for f in FORMATS:
        assert (out / f"jfk.{f}").is_file() and (out / "sub" / f"talk.{f}").is_file()
    assert not (out / "sub" / "broken.json").exists()
    doc = json.loads((out / "jfk.json").read_text())
    assert wer(JFK_TEXT, " ".join(s["text"] for s in doc["segments"])) <= 0.1
    for f in rep["files"]:
        assert set(f) >= {"input", "outputs", "status", "error", "audio_seconds", "processing_seconds"}
    # the summary counts the failures, then one line per failed file names it and its problem
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 2, r.stderr
    assert any("broken.mp3" in ln and "invalid data" in ln for ln in errors), errors
    assert any("empty.wav" in ln and "empty" in ln for ln in errors), errors
    # the truncated file is transcribed as far as it goes, and its warning is kept: in the report, in
    # the summary, and as one `warning: FILE: text` line from the batch (none bare from the worker)
    trunc = files["truncated.wav"]
    assert trunc["status"] == "ok" and len(trunc["warnings"]) == 1 and "truncated" in trunc["warnings"][0], trunc
    assert files["jfk.flac"]["warnings"] == [] and rep["totals"]["with_warnings"] == 1
    assert "1 file finished with warnings" in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if trunc["warnings"][0] in ln]
    assert lines == [f"warning: {src / 'truncated.wav'}: {trunc['warnings'][0]}"], r.stderr


def test_kill_9_then_rerun_completes_without_partial_or_duplicate_outputs(tmp_path):
    from audiotools.provenance.document import sibling_exports, verify

    src = tmp_path / "in"
    src.mkdir()
    inputs = utterances(4, "1688") + utterances(3, "2609")
    lst = tmp_path / "files.lst"
    names = []
    for i, f in enumerate(inputs):
        name = f"f{i}.flac"
        shutil.copy(f, src / name)
        names.append(f"in/{name}")
    lst.write_text("# the batch\n" + "\n".join(names) + "\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "audiotools", "-q", "batch", str(lst), "-o", str(out), *FAST, "--batch-size", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if list((out / "in").glob("*.json")) if (out / "in").is_dir() else []:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the batch ended before it could be killed: " + proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its decode workers, mid-run
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    done_before = {
        p: p.stat().st_mtime_ns for p in all_outputs(out) if (out / "in" / (p.name.split(".")[0] + ".json")).exists()
    }
    assert done_before, "no file had finished at the kill"

    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = report(out)
    statuses = {Path(f["input"]).name: f["status"] for f in rep["files"]}
    assert set(statuses) == {f"f{i}.flac" for i in range(len(inputs))}
    assert set(statuses.values()) == {"ok", "skipped"}  # some were done before the kill, some redone
    # skipped files were not rewritten
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before
    # every output whole: JSON parses, provenance verifies against the audio and the exports
    for i in range(len(inputs)):
        js = out / "in" / f"f{i}.json"
        for f in FORMATS:
            assert (out / "in" / f"f{i}.{f}").is_file()
        doc = json.loads(js.read_text())
        checks = verify(doc, audio_path=src / f"f{i}.flac", exports=sibling_exports(js))
        failed = [(c.name, c.detail) for c in checks if not c.ok]
        assert not failed, (js, failed)
    # nothing duplicated or left over: exactly one output set per input, no temp files
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    expected = {f"f{i}.{f}" for i in range(len(inputs)) for f in FORMATS + ["srt.sha256", "tsv.sha256"]}
    expected |= {f".f{i}.outputs.sha256" for i in range(len(inputs))}  # each set's manifest
    assert {p.name for p in (out / "in").iterdir()} == expected


def test_ray_local_mode(tmp_path, tiny_transcriber):
    import ray  # a dev dependency: the scale-out path is tested with real Ray, never skipped

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(JFK, src / "jfk.flac")
    shutil.copy(utterances(1, "2033")[0], src / "u0.flac")
    (src / "bad.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # 3 shards asked for 3 files: the one discovery knows is bad fails in the driver, never shipped
        res = run_batch([src], tiny_recipe(), BatchOptions(output_dir=out), use_ray=True, ray_shards=3)
    finally:
        ray.shutdown()
    statuses = {Path(r.input).name: r.status for r in res.records}
    assert statuses == {"jfk.flac": "ok", "u0.flac": "ok", "bad.wav": "failed"}
    assert res.exit_code == 1
    rep = report(out)
    assert rep["run"]["ray"]["shards"] == 2 and rep["complete"]
    assert "invalid data" in by_input(rep)["bad.wav"]["error"]
    assert rep["run"]["workers"] == 0  # two shards share the machine: each decodes inline
    # the shards' transcripts are the local engine's
    from audiotools.audio.decode import load_audio

    doc = json.loads((out / "jfk.json").read_text())
    local = tiny_transcriber.transcribe(load_audio(src / "jfk.flac"))
    assert [s["text"] for s in doc["segments"]] == [s.text for s in local.segments]
    # a local re-run resumes what the Ray run did
    again = run_batch([src], tiny_recipe(), BatchOptions(output_dir=out, workers=0), transcriber=tiny_transcriber)
    assert {Path(r.input).name: r.status for r in again.records} == {
        "jfk.flac": "skipped",
        "u0.flac": "skipped",
        "bad.wav": "failed",
    }


def test_identification_reuses_the_transcription_vad(monkeypatch):
    """Identification embeds the speech of plain Silero (no gain control: its calibration was
    fitted on that). When the transcription's windows were cut from the same speech, the regions go
    with the audio (single file and decode workers) and identification does not run Silero again;
    with the default options (gain control on) or any others they do not, and it runs its own."""
    import audiotools.vad.silero as vad
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber
    from audiotools.audio.decode import load_audio
    from audiotools.batch.prefetch import PrepareOptions, prepare
    from audiotools.speakers.embedding_cache import Audio, Extractor

    path = ROOT / "samples" / "conversation.wav"
    plain = vad.PLAIN_VAD.to_params()
    audio = load_audio(path)
    Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en", vad_options=plain)).transcribe(audio)
    expected = vad.speech_regions(audio.samples, vad.PLAIN_VAD)
    assert audio.speech == expected and expected
    prepared = prepare(0, str(path), PrepareOptions(vad_options=vad.PLAIN_VAD))
    assert prepared.audio.speech == expected

    def no_second_vad(*a, **k):
        raise AssertionError("VAD ran again")

    monkeypatch.setattr(vad, "speech_regions", no_second_vad)
    assert Extractor(use_cache=False).speech(Audio.from_decoded(audio)) == expected
    assert Extractor(use_cache=False).speech(Audio.from_decoded(prepared.audio).light()) == expected
    monkeypatch.undo()

    other = load_audio(path)
    opts = TranscribeOptions(model="tiny.en", device="cpu", language="en", vad_options={"threshold": 0.6})
    assert opts.vad_options == vad.VADOptions(threshold=0.6)
    Transcriber(opts).transcribe(other)
    assert other.speech is None
    default = load_audio(path)
    Transcriber(TranscribeOptions(model="tiny.en", device="cpu", language="en")).transcribe(default)
    assert default.speech is None and prepare(0, str(path), PrepareOptions()).audio.speech is None
    assert Extractor(use_cache=False).speech(Audio.from_decoded(default)) == expected


def _worker_niceness(_):
    return os.nice(0)


def test_prefetcher_start_and_warm_up(tmp_path):
    """``start`` submits the first files before iteration (decoding overlaps model loading) with the
    same results; ``warm_up`` spawns the workers, at a lower priority than the engine, and decodes
    nothing; a bad file is reported in its place either way."""
    from audiotools.batch.prefetch import Prefetcher, PrepareOptions, prepare

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEnot audio")
    paths = [JFK, bad, ROOT / "samples" / "conversation.wav"]
    pf = Prefetcher(paths, PrepareOptions(), workers=1)
    assert pf.warm_up() > 0 and pf._queue == collections.deque() and pf._next == 0
    assert pf._pool.submit(_worker_niceness, 0).result() >= os.nice(0) + PrepareOptions().nice
    pf.close()
    started = Prefetcher(paths, PrepareOptions(), workers=1, depth=3).start()
    assert started._next == 3  # every file submitted before the first next()
    got = list(started)
    assert [p.index for p in got] == [0, 1, 2]
    assert got[0].error is None and got[2].error is None
    assert got[1].error.startswith(f"{bad}: ") and got[1].audio is None
    for p in (got[0], got[2]):
        ref = prepare(p.index, str(paths[p.index]), PrepareOptions())
        assert np.array_equal(p.audio.samples, ref.audio.samples) and p.windows == ref.windows


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _as_from_a_terminal() -> None:
    """Ctrl-C's default action, as a command typed at a terminal has it: a test run started in the
    background (``cmd &``, CI) passes SIGINT on ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_and_sigterm_stop_a_batch_in_one_line_and_a_rerun_finishes(tmp_path):
    """Ctrl-C reaches the whole process group (decode workers included) and a scheduler's stop sends
    SIGTERM: either way the batch says so in one line (no worker traceback), exits 130 / 143 and
    leaves no partial file; a re-run finishes every file."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        shutil.copy(JFK, src / f"jfk{i}.flac")
    shutil.copy(ROOT / "samples" / "conversation.wav", src / "conversation.wav")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "audiotools", "batch", str(src), "-o", str(out), *FAST]
    for sig, code, word in [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]:
        p = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_as_from_a_terminal,
        )
        deadline = time.time() + 120
        while time.time() < deadline and not _children(p.pid) and p.poll() is None:
            time.sleep(0.2)
        assert p.poll() is None, "the batch ended before it could be stopped"
        time.sleep(2.0)  # the decode workers are up and waiting on their queue
        os.killpg(p.pid, sig)
        _, err = p.communicate(timeout=120)
        assert p.returncode == code, err
        assert err.strip() == word, err
        assert not [f for f in out.rglob("*") if "tmp" in f.name], list(out.rglob("*"))
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert sorted(f.name for f in out.glob("*.json") if f.name != "batch-report.json") == sorted(
        f"{f.stem}.json" for f in src.iterdir()
    )
