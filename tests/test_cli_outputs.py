"""Output paths on the command line: checked before any work (one line, exit 1), write failures as
one line naming the file, outputs of two inputs with the same stem kept apart, and the report's
exit status when the integrity checks fail."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import soundfile as sf
from conftest import JFK, SAMPLES, run_cli

FAST = ["--no-diarize", "--pipeline", "fast-cpu", "--model", "tiny.en", "--language", "en"]
NO_MODEL = ["--no-diarize", "--pipeline", "fast-cpu", "--model", "/nonexistent/whisper.pt"]


def lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.strip().splitlines() if ln.strip()]


def one_error(r, *parts: str) -> str:
    """``r`` failed with exit 1 and a single ``error:`` line holding every one of ``parts``."""
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    out = lines(r.stderr)
    assert len(out) == 1 and out[0].startswith("error: "), r.stderr
    for p in parts:
        assert p in out[0], (p, out[0])
    return out[0]


@pytest.fixture
def afile(tmp_path):
    """A regular file where the outputs' folder should be (no privileges needed to make it fail)."""
    f = tmp_path / "afile"
    f.write_text("not a folder\n")
    return f


def untouched(tmp_path, afile) -> None:
    assert afile.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["afile"], "nothing written"


# ----------------------------------------------------------------------------------- checked up front


def test_model_error_is_what_a_good_output_dir_gets(tmp_path):
    """The control for the tests below: with this model spec the run fails when the model loads."""
    r = run_cli("transcribe", str(JFK), "-o", str(tmp_path / "out"), *NO_MODEL)
    assert r.returncode != 0 and "unknown model" in r.stderr and "Traceback" not in r.stderr


def test_transcribe_output_dir_is_a_file(tmp_path, afile):
    # the output error comes instead of the model error: the folder is checked before any model loads
    one_error(run_cli("transcribe", str(JFK), "-o", str(afile), *NO_MODEL), f"{afile}: not a directory")
    sub = afile / "sub"
    one_error(
        run_cli("transcribe", str(JFK), "-o", str(sub), *NO_MODEL),
        f"{sub}: cannot create directory: {afile} is not a directory",
    )
    untouched(tmp_path, afile)


def test_transcribe_unmasked_copy_under_a_file(tmp_path, afile):
    out = tmp_path / "out"
    u = afile / "u.json"
    one_error(
        run_cli("transcribe", str(JFK), "-o", str(out), "--unmasked-copy", str(u), *NO_MODEL),
        f"{u}: cannot write: {afile} is not a directory",
    )
    assert not any(out.iterdir()), "no normal outputs either"


def test_batch_output_dir_and_report_under_a_file(tmp_path, afile):
    one_error(run_cli("batch", str(JFK), "-o", str(afile), *NO_MODEL), f"{afile}: not a directory")
    rep = afile / "r.json"
    out = tmp_path / "out"
    one_error(
        run_cli("batch", str(JFK), "-o", str(out), "--report", str(rep), *NO_MODEL),
        f"{rep}: cannot write: {afile} is not a directory",
    )
    assert not any(out.iterdir())


def test_diarize_output_dir_is_a_file(tmp_path, afile):
    # a missing input: had the file been read first, the error would name it instead
    missing = tmp_path / "missing.wav"
    one_error(run_cli("diarize", str(missing), "-o", str(afile)), f"{afile}: not a directory")
    untouched(tmp_path, afile)


def test_report_output_under_a_file(tmp_path, afile, transcript):
    html = afile / "x.html"
    one_error(
        run_cli("report", str(transcript), "--output", str(html)), f"{html}: cannot write: {afile} is not a directory"
    )
    untouched(tmp_path, afile)


# ----------------------------------------------------------------------------------- failing while writing


def test_a_write_that_fails_after_the_transcription_is_one_line(tmp_path):
    """Not catchable up front: the JSON's own name is taken by a folder. One line naming it, exit 1."""
    out = tmp_path / "out"
    (out / "jfk.json").mkdir(parents=True)
    r = run_cli("transcribe", str(JFK), "-o", str(out), "-f", "json,txt", *FAST)
    one_error(r, f"{out / 'jfk.json'}: is a directory")
    assert (out / "jfk.json").is_dir()
    assert not list(out.glob(".*.tmp")), "no temp file left"


# ----------------------------------------------------------------------------------- same stem, two files


def same_stem_inputs(tmp_path, flac_span: tuple[float, float] | None = None, wav_end: float = 3.5):
    """``a/same.flac`` (JFK, or the span of it) and ``b/same.wav`` (JFK's first ``wav_end`` seconds)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    flac, wav = tmp_path / "a" / "same.flac", tmp_path / "b" / "same.wav"
    x, sr = sf.read(JFK)
    if flac_span is None:
        shutil.copy(JFK, flac)
    else:
        sf.write(flac, x[int(flac_span[0] * sr) : int(flac_span[1] * sr)], sr)
    sf.write(wav, x[: int(wav_end * sr)], sr)
    return flac, wav


def test_transcribe_same_stem_gives_two_output_sets(tmp_path):
    flac, wav = same_stem_inputs(tmp_path)
    out = tmp_path / "out"
    r = run_cli("transcribe", str(wav), str(flac), "-o", str(out), "-f", "json,txt", *FAST)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["same.flac.json", "same.flac.txt", "same.wav.json", "same.wav.txt"]
    for src in (flac, wav):
        doc = json.loads((out / f"{src.name}.json").read_text())
        assert doc["audio"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    text = {src: (out / f"{src.name}.txt").read_text().lower() for src in (flac, wav)}
    assert "fellow americans" in text[wav] and "country" not in text[wav]
    assert "ask not what your country" in text[flac]


def test_transcribe_one_stem_keeps_its_plain_name(tmp_path):
    """Only colliding stems get the longer names: a single file is still out/jfk.json."""
    out = tmp_path / "out"
    r = run_cli("transcribe", str(JFK), str(JFK), "-o", str(out), "-f", "txt", *FAST)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["jfk.txt"]


def test_diarize_same_stem_gives_two_rttms(tmp_path):
    flac, wav = same_stem_inputs(tmp_path, flac_span=(3.0, 8.0), wav_end=2.5)
    out = tmp_path / "out"
    r = run_cli("diarize", str(wav), str(flac), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["same.flac.rttm", "same.wav.rttm"]
    last_end = {}
    for src in (flac, wav):
        turns = [ln.split() for ln in (out / f"{src.name}.rttm").read_text().splitlines()]
        assert turns and all(t[0] == "SPEAKER" for t in turns)
        last_end[src] = max(float(t[3]) + float(t[4]) for t in turns)
    # each RTTM holds its own file's turns: the 2.5 s clip's end before 2.5 s, the 5 s clip's later
    assert last_end[wav] <= 2.55 < last_end[flac] <= 5.05


# ----------------------------------------------------------------------------------- report integrity


@pytest.fixture(scope="module")
def transcript(tmp_path_factory):
    """``d/jfk.json`` beside ``d/jfk.flac``, which it records by a relative path."""
    d = tmp_path_factory.mktemp("transcript")
    shutil.copy(JFK, d / "jfk.flac")
    r = run_cli("transcribe", "jfk.flac", "-o", ".", "-f", "json", *FAST, cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "jfk.json"


def test_report_with_the_right_audio_is_quiet_exit_0(transcript, tmp_path):
    html = tmp_path / "ok.html"
    r = run_cli("report", str(transcript), "--output", str(html))
    assert r.returncode == 0, r.stderr
    assert not any(ln.startswith(("error:", "warning:")) for ln in lines(r.stderr)), r.stderr
    assert html.is_file()


def test_report_with_the_wrong_audio_exits_1_and_still_writes_it(transcript, tmp_path):
    html = tmp_path / "wrong.html"
    r = run_cli("report", str(transcript), "--audio", str(SAMPLES / "phone_call.wav"), "--output", str(html))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in lines(r.stderr) if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert str(transcript) in errors[0] and "integrity FAILED" in errors[0]
    assert "source_sha256" in errors[0] and "pcm_sha256" in errors[0] and str(html) in errors[0]
    assert html.is_file() and "FAILED" in html.read_text()
    r = run_cli("-q", "report", str(transcript), "--audio", str(SAMPLES / "phone_call.wav"), "--output", str(html))
    assert r.returncode == 1 and len(lines(r.stderr)) == 1, "-q: the error line alone"


def test_report_without_audio_warns_once_and_exits_0(transcript, tmp_path):
    moved = tmp_path / "jfk.json"  # the recorded jfk.flac is not beside this copy
    shutil.copy(transcript, moved)
    r = run_cli("report", str(moved))
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in lines(r.stderr) if ln.startswith("warning:")]
    assert len(warnings) == 1 and str(moved) in warnings[0] and "audio not checked" in warnings[0], r.stderr
    assert not any(ln.startswith("error:") for ln in lines(r.stderr))
    assert (tmp_path / "jfk.report.html").is_file()
