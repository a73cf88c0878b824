"""What files a recipe reads is part of the run: word lists and signing keys by their contents, and
per-file outputs named by each file's stem."""

from __future__ import annotations

import json
import shutil

from conftest import JFK, SAMPLES, run_cli

FAST = ["--model", "tiny.en", "--language", "en", "--no-diarize"]


def test_recipe_records_word_files_and_key_by_content(tmp_path):
    from audiotools.batch.plan import recipe_fingerprint
    from audiotools.fileio import sha256_file
    from audiotools.pipeline.recipe import load_recipe
    from audiotools.provenance.signing import keygen

    words = tmp_path / "words.txt"
    words.write_text("foo\n", encoding="utf-8")
    key, _, kid = keygen(tmp_path / "k")
    base = load_recipe("default")
    assert "content" not in base.parameters()
    recipe = base.replace("mask", mask_words=str(words)).replace("provenance", sign_key=str(key))
    params = recipe.parameters()
    assert params["content"] == {"mask": {"mask_words": [sha256_file(words)]}, "provenance": {"sign_key_id": kid}}
    assert sha256_file(key) not in json.dumps(params)  # nothing of the private key is recorded
    before = recipe_fingerprint(recipe)
    words.write_text("country\n", encoding="utf-8")  # same path, other words: another computation
    assert recipe_fingerprint(recipe) != before
    # a disabled step reads nothing, so its files do not count
    assert "mask" not in recipe.replace("mask", enabled=False).parameters().get("content", {})


def test_batch_redoes_files_when_a_word_file_changes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(JFK, src / "jfk.flac")
    out, words = tmp_path / "out", tmp_path / "words.txt"
    words.write_text("fellow\n", encoding="utf-8")
    cmd = ["batch", str(src), "-o", str(out), *FAST, "--mask-words", str(words)]
    r = run_cli(*cmd)
    assert r.returncode == 0, r.stderr
    assert "fellow" not in (out / "jfk.txt").read_text(encoding="utf-8")
    assert run_cli(*cmd).returncode == 0  # nothing changed: resumed, text as it was
    assert "fellow" not in (out / "jfk.txt").read_text(encoding="utf-8")
    words.write_text("country\n", encoding="utf-8")
    r = run_cli(*cmd, "-v")
    assert r.returncode == 0, r.stderr
    text = (out / "jfk.txt").read_text(encoding="utf-8")
    assert "fellow" in text and "country" not in text, text


def test_unmasked_copies_of_several_files_are_named_by_stem(tmp_path):
    src = tmp_path / "in"
    (src / "a").mkdir(parents=True)
    shutil.copy(JFK, src / "a" / "talk.flac")
    shutil.copy(SAMPLES / "phone_call.wav", src / "talk.wav")
    out = tmp_path / "out"
    # one path for several files: a usage error before any work, for batch and for transcribe
    for cmd in (
        ["batch", str(src), "-o", str(out)],
        ["transcribe", str(src / "a" / "talk.flac"), str(JFK), "-o", str(out)],
    ):
        r = run_cli(*cmd, *FAST, "--unmasked-copy", str(tmp_path / "raw.json"))
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and "{stem}" in r.stderr, r.stderr
    assert not (tmp_path / "raw.json").exists() and not out.exists()
    r = run_cli(
        "batch", str(src), "-o", str(out), *FAST, "--unmasked-copy", str(tmp_path / "private" / "{stem}.raw.json")
    )
    assert r.returncode == 0, r.stderr
    copies = {p.relative_to(tmp_path / "private").as_posix(): p for p in (tmp_path / "private").rglob("*.json")}
    assert set(copies) == {"a/talk.raw.json", "talk.raw.json"}, copies
    for rel, p in copies.items():
        doc = json.loads(p.read_text(encoding="utf-8"))
        assert doc["audio"]["path"].endswith("a/talk.flac" if rel.startswith("a/") else "talk.wav"), doc["audio"]
        assert oct(p.stat().st_mode & 0o777) == "0o600"
    # the masked transcripts, which may be handed on, say a copy was written but not where
    for written in out.rglob("*.json"):  # transcripts and the batch report
        assert "private" not in written.read_text(encoding="utf-8"), written
    masked_files = sorted(out.rglob("talk.json"))
    assert len(masked_files) == 2, masked_files
    for masked in masked_files:
        text = masked.read_text(encoding="utf-8")
        assert "private" not in text and "raw.json" not in text, masked
        doc = json.loads(text)
        assert doc["masking"]["unmasked_copy"] is True and doc["parameters"]["steps"]["mask"]["unmasked_copy"] is True


def test_a_missing_word_file_fails_before_any_model_loads(tmp_path):
    env = {"AUDIOTOOLS_CACHE": str(tmp_path / "cache")}
    r = run_cli(
        "transcribe", str(JFK), "-o", str(tmp_path / "out"), *FAST, "--mask-words", str(tmp_path / "no.txt"), env=env
    )
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"error: {tmp_path / 'no.txt'}: word file not found"]
    assert not (tmp_path / "cache").exists()  # Whisper was never resolved, hashed or converted
