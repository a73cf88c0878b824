"""The command line: outputs, recipes, exit codes and one-line errors."""

from __future__ import annotations

import json
import re

import pytest
from conftest import JFK, JFK_TEXT, ROOT, run_cli, wer

from audiotools.cli import main

FAST = ["--model", "tiny.en", "--language", "en"]


def test_transcribe_writes_every_format(tmp_path):
    r = run_cli("transcribe", str(JFK), "-o", str(tmp_path), "-f", "all", *FAST)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".sha256"))
    assert names == [f"jfk.{e}" for e in sorted(["json", "srt", "vtt", "txt", "tsv", "rttm"])]
    doc = json.loads((tmp_path / "jfk.json").read_text())
    assert doc["schema"] == "audiotools.transcript/1"
    for key in ("audio", "model", "language", "segments", "speakers", "created", "tool"):
        assert key in doc
    assert set(doc["audio"]) >= {"path", "sha256", "pcm_sha256", "duration", "sample_rate", "channels"}
    assert doc["model"]["name"] == "tiny.en" and len(doc["model"]["sha256"]) == 64
    assert doc["tool"]["name"] == "audiotools"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", doc["created"])
    seg = doc["segments"][0]
    assert set(seg) >= {"id", "start", "end", "text", "speaker", "words"}
    assert set(seg["words"][0]) >= {"word", "start", "end", "probability"}
    assert wer(JFK_TEXT, " ".join(s["text"] for s in doc["segments"])) <= 0.1
    srt = (tmp_path / "jfk.srt").read_text()
    assert re.search(r"^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n", srt)
    vtt = (tmp_path / "jfk.vtt").read_text()
    assert vtt.startswith("WEBVTT\n") and re.search(r"\d\d:\d\d:\d\d\.\d{3} --> ", vtt)
    tsv = (tmp_path / "jfk.tsv").read_text().splitlines()
    assert "start\tend\tspeaker\ttext" in tsv
    rttm = [ln for ln in (tmp_path / "jfk.rttm").read_text().splitlines() if ln.startswith("SPEAKER")]
    assert rttm and all(len(ln.split()) == 10 for ln in rttm)


def test_missing_file_is_one_line_exit_1_and_no_output(tmp_path):
    r = run_cli("transcribe", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "out"), *FAST)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "missing.wav" in lines[0] and "no such file" in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("transcribe", str(JFK), "--no-such-flag").returncode == 2
    r = run_cli("transcribe", str(JFK), "--pipeline", "no-such-recipe", "-o", str(tmp_path))
    assert r.returncode == 2 and "unknown pipeline" in r.stderr
    r = run_cli("transcribe", str(JFK), "-f", "docx", "-o", str(tmp_path))
    assert r.returncode == 2 and "unknown output format" in r.stderr
    r = run_cli("transcribe", str(JFK), "--model", "tiny.en", "--language", "ru", "-o", str(tmp_path))
    assert r.returncode == 2 and "English-only" in r.stderr
    r = run_cli("transcribe", str(JFK), "-l", "xx", "-o", str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: --language: unknown language 'xx' (Whisper's codes: en, ru, uk, be, pl, de, ...; "
        "or a name such as Russian)"
    )
    # language flags that contradict each other (a forced language over a recipe's candidates is fine)
    r = run_cli("transcribe", str(JFK), "-l", "Russian", "--languages", "uk,be", "-o", str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip() == "error: --language Russian is not among --languages uk,be"
    r = run_cli("batch", str(JFK), "-l", "ru", "--language-per-window", "-o", str(tmp_path))
    assert r.returncode == 2 and "--language-per-window" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("verify", str(JFK), "--speaker", "Anna", "--segment", "50-10")
    assert r.returncode == 2
    assert r.stderr.strip().endswith("argument --segment: bad range '50-10': end must be after start")
    assert not any(tmp_path.iterdir())


def test_bad_recipe_parameter(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nsteps:\n  transcribe:\n    modle: base\n")
    r = run_cli("transcribe", str(JFK), "--pipeline", str(recipe), "-o", str(tmp_path))
    assert r.returncode == 2 and "modle" in r.stderr


def test_one_bad_file_among_many(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage that is not a wave file" * 20)
    out = tmp_path / "out"
    r = run_cli("transcribe", str(bad), str(JFK), "-o", str(out), "-f", "json,txt", *FAST)
    assert r.returncode == 1
    assert "bad.wav" in r.stderr
    assert (out / "jfk.json").is_file() and (out / "jfk.txt").is_file()
    assert not list(out.glob("bad.*"))


def test_recipe_sets_defaults_and_flags_override(tmp_path):
    r = run_cli("transcribe", str(JFK), "--pipeline", "fast-cpu", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert sorted(p.suffix for p in tmp_path.iterdir() if p.suffix != ".sha256") == [".json", ".srt", ".txt"]
    doc = json.loads((tmp_path / "jfk.json").read_text())
    assert doc["model"]["name"] == "tiny.en"
    assert all(not s["words"] for s in doc["segments"])  # fast-cpu: no word timestamps
    out2 = tmp_path / "b"
    r = run_cli("transcribe", str(JFK), "--pipeline", "fast-cpu", "-f", "vtt", "-o", str(out2))
    assert r.returncode == 0 and [p.name for p in out2.iterdir() if p.suffix == ".vtt"] == ["jfk.vtt"]


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """A crash while writing leaves neither a half-written file nor a temp file behind."""
    from audiotools.export import writers

    def boom(t):
        raise RuntimeError("disk full")

    monkeypatch.setitem(writers.WRITERS, "json", boom)
    with pytest.raises(RuntimeError):
        main(["-q", "transcribe", str(JFK), "-o", str(tmp_path), "-f", "txt,json", *FAST])
    assert not (tmp_path / "jfk.json").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_help_reads_well():
    r = run_cli("--help")
    assert r.returncode == 0 and "transcribe" in r.stdout and "models" in r.stdout
    r = run_cli("transcribe", "--help")
    assert "--output-format" in r.stdout and "(default: None)" not in r.stdout


def test_quiet_and_verbose_work_before_and_after_the_command(capsys):
    from audiotools.cli import build_parser

    parser = build_parser()
    for argv, quiet, verbose in [
        (["-q", "batch", "in/"], True, False),
        (["batch", "in/", "-q"], True, False),
        (["batch", "in/"], False, False),
        (["voiceprint", "list", "--verbose"], False, True),
        (["-v", "eval", "der", "--reference", "r.rttm", "--hypothesis", "h.rttm"], False, True),
    ]:
        args = parser.parse_args(argv)
        assert (args.quiet, args.verbose) == (quiet, verbose), argv
    with pytest.raises(SystemExit) as stop:
        main(["-q", "mask", "-v"])
    assert stop.value.code == 2 and "-v/--verbose together" in capsys.readouterr().err


def test_python_api():
    import audiotools
    from audiotools.export import to_srt, to_vtt

    t = audiotools.transcribe(str(JFK), model="tiny.en", language="en")
    assert wer(JFK_TEXT, t.text) <= 0.1
    assert to_srt(t).startswith("1\n") and to_vtt(t).startswith("WEBVTT")
    assert json.loads(t.to_json())["segments"]


def test_word_alignment_choice_is_recorded_and_checked(tmp_path):
    """--word-alignment pass gives openai-whisper's second-pass word timings; the choice is in the
    provenance parameters; a recipe with an unknown method is a usage error (exit 2)."""
    docs = {}
    for method in ("pass", "decoding"):
        r = run_cli(
            "transcribe",
            str(JFK),
            "-o",
            str(tmp_path / method),
            "-f",
            "json",
            "--no-diarize",
            "--word-alignment",
            method,
            *FAST,
        )
        assert r.returncode == 0, r.stderr
        docs[method] = json.loads((tmp_path / method / "jfk.json").read_text())
    for method, doc in docs.items():
        assert doc["provenance"]["parameters"]["steps"]["transcribe"]["word_alignment"] == method
    words = {m: [w for s in d["segments"] for w in s["words"]] for m, d in docs.items()}
    assert [w["word"] for w in words["pass"]] == [w["word"] for w in words["decoding"]]
    assert sum(abs(a["start"] - b["start"]) <= 0.1 for a, b in zip(words["pass"], words["decoding"])) >= 0.9 * len(
        words["pass"]
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nsteps:\n  transcribe:\n    word_alignment: guess\n")
    r = run_cli("transcribe", str(JFK), "--pipeline", str(recipe), "-o", str(tmp_path / "bad"), *FAST)
    assert r.returncode == 2 and "word_alignment" in r.stderr


def test_seed_flag_chooses_the_sampling_fallbacks_draws_and_is_recorded(tmp_path):
    """--seed reaches the decoding: with a recipe that always samples (temperature 1, one sample),
    the same seed writes the same text twice, another seed other text, and the seed is in the
    transcript's recorded parameters."""
    recipe = tmp_path / "sample.yaml"
    recipe.write_text("name: sample\nsteps:\n  transcribe:\n    temperatures: [1.0]\n    best_of: 1\n")
    texts = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1000")):
        out = tmp_path / name
        r = run_cli(
            "transcribe", str(JFK), "-o", str(out), "-f", "json", "--no-diarize", "--pipeline", str(recipe),
            "--seed", seed, *FAST,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        doc = json.loads((out / "jfk.json").read_text())
        assert doc["parameters"]["steps"]["transcribe"]["seed"] == int(seed)
        texts[name] = " ".join(s["text"].strip() for s in doc["segments"])
    assert texts["a"] == texts["b"] and len(texts["a"].split()) >= 10
    assert texts["c"] != texts["a"]


def test_a_warning_is_one_unwrapped_line_shown_once_per_run(capsys):
    import logging

    from audiotools.cli.common import set_verbosity

    long_path = "/data/" + "x" * 150 + ".wav"
    log = logging.getLogger("audiotools.audio.decode")
    set_verbosity()
    log.warning("%s: decoded 0.62 s of a stream that declares 11.00 s (truncated file?)", long_path)
    log.warning("%s: decoded 0.62 s of a stream that declares 11.00 s (truncated file?)", long_path)
    err = capsys.readouterr().err
    assert err == f"warning: {long_path}: decoded 0.62 s of a stream that declares 11.00 s (truncated file?)\n"
    set_verbosity()  # the next run of a command shows it again
    log.warning("%s: [bold]odd[/] name", long_path)
    log.warning("%s: decoded 0.62 s of a stream that declares 11.00 s (truncated file?)", long_path)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"warning: {long_path}: [bold]odd[/] name" and len(lines) == 2


def test_verbose_shows_audiotools_detail_not_other_libraries_debug(capsys):
    """-v is audiotools' own detail: other libraries (matplotlib's font manager ...) stay at warnings."""
    import logging

    from audiotools.cli.common import set_verbosity

    set_verbosity(verbose=True)
    try:
        logging.getLogger("matplotlib.font_manager").debug("findfont: scoring every font")
        logging.getLogger("matplotlib.font_manager").warning("font cache rebuilt")
        logging.getLogger("audiotools.diarize.builtin").debug("clustering 12 embeddings")
        err = capsys.readouterr().err.splitlines()
        assert err == ["warning: font cache rebuilt", "clustering 12 embeddings"]
    finally:
        set_verbosity()
    logging.getLogger("audiotools.diarize.builtin").debug("clustering 12 embeddings")
    assert capsys.readouterr().err == ""  # without -v: no debug lines


def test_a_named_voiceprint_store_that_does_not_exist_is_a_usage_error(tmp_path):
    """--voiceprints DIR or $AUDIOTOOLS_VOICEPRINTS naming nothing fails at once (a typo must not skip
    identification silently); only the implicit ./voiceprints may be absent."""
    missing = tmp_path / "no-such-store"
    runs = {
        "--voiceprints": run_cli("transcribe", str(JFK), "-o", str(tmp_path / "a"), "--voiceprints", str(missing)),
        "$AUDIOTOOLS_VOICEPRINTS": run_cli(
            "transcribe", str(JFK), "-o", str(tmp_path / "b"), env={"AUDIOTOOLS_VOICEPRINTS": str(missing)}
        ),
    }
    for how, r in runs.items():
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines() == [
            f"error: {missing}: voiceprint store (named by {how}) does not exist (check the path; create it with "
            "'audiotools voiceprint enroll NAME FILE --voiceprints DIR'; or pass --no-identify)"
        ]
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    a_file = tmp_path / "store.txt"
    a_file.write_text("not a folder")
    r = run_cli("transcribe", str(JFK), "-o", str(tmp_path / "c"), "--voiceprints", str(a_file))
    assert r.returncode == 2 and "is not a directory" in r.stderr
    # the implicit ./voiceprints (none in this folder): identification is skipped without a word
    r = run_cli("transcribe", str(JFK), "-o", str(tmp_path / "d"), "-f", "json", "--no-diarize", *FAST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not any(w in r.stderr for w in ("voiceprint store", "identif", "warning:", "error:")), r.stderr


def test_missing_speaker_weights_fail_before_any_model_loads(tmp_path, monkeypatch):
    """An empty model home with fetching off: the diariser's weights (segmentation-3.0, CAM++) are
    looked for before decoding, so the run stops in one line without loading Whisper (nothing is
    hashed or converted into the private cache) instead of after the transcription."""
    env = {
        "AUDIOTOOLS_HOME": str(tmp_path / "home"),
        "AUDIOTOOLS_ALLOW_FETCH": "0",
        "AUDIOTOOLS_CACHE": str(tmp_path / "cache"),
    }
    r = run_cli("transcribe", str(JFK), "-o", str(tmp_path / "out"), env=env)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"error: pyannote-segmentation-3.0, campplus-cn-en-common-192 weights not found (model home "
        f"{tmp_path / 'home'}; fetching is off): run: audiotools models fetch pyannote-segmentation-3.0 "
        "campplus-cn-en-common-192"
    ]
    assert not (tmp_path / "cache").exists()  # Whisper was never resolved, hashed or converted
    assert not list((tmp_path / "out").glob("*"))
    # the weights asked for are those of the steps enabled: none without diarisation; with the
    # pyannote backend (its own models) only the identify step's CAM++, when there are voiceprints
    from audiotools.errors import ModelError
    from audiotools.pipeline.recipe import load_recipe
    from audiotools.pipeline.run import preflight

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)  # no ./voiceprints here
    recipe = load_recipe("default")
    preflight(recipe.replace("diarize", enabled=False))
    preflight(recipe.replace("diarize", backend="pyannote"))
    with pytest.raises(ModelError, match=r"^campplus-cn-en-common-192 weights not found .*models fetch campplus"):
        preflight(
            recipe.replace("diarize", backend="pyannote").replace("identify", voiceprints=str(ROOT / "voiceprints"))
        )
    with pytest.raises(ModelError, match="models fetch pyannote-segmentation-3.0 campplus-cn-en-common-192$"):
        preflight(recipe)


def test_pipeline_help_lists_the_installed_recipes():
    from audiotools.pipeline.recipe import available_recipes

    r = run_cli("transcribe", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert f"({', '.join(available_recipes())}; default: default)" in text and "pipelines/" not in text


def test_mask_from_a_terminal_says_what_it_waits_for(tmp_path):
    """stdin a terminal: one hint line on stderr (not on stdout), then the text is masked as usual;
    piped text gets no hint."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "audiotools", "mask"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    os.close(slave)
    os.write(master, b"what the fuck\n\x04")  # a line, then Ctrl-D at the start of the next
    out, err = p.communicate(timeout=60)
    os.close(master)
    assert p.returncode == 0, err
    assert err.splitlines() == [
        "audiotools mask: reading text from the terminal; end with Ctrl-D (or: audiotools mask < FILE)"
    ]
    assert out == "what the ****\n"
    r = run_cli("mask", input="what the fuck\n")
    assert r.returncode == 0 and r.stdout == "what the ****\n" and r.stderr == ""
