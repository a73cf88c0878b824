"""Profanity masking: accuracy on the labelled list, styles, transcripts, word files, step, CLI."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from audiotools.errors import InputError, UsageError
from audiotools.mask.masking import Masker, MaskOptions, load_word_file, run_step
from audiotools.transcript import AudioInfo, Segment, Transcript, Word

ROOT = Path(__file__).resolve().parent.parent
LABELLED = Path(__file__).resolve().parent / "data" / "profanity_labelled.tsv"
MIN_PER_LABEL = {"ru": 150, "en": 150, "uk": 60, "be": 60}


def labelled_rows():
    with open(LABELLED, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r and not r[0].startswith("#")]
    assert rows[0] == ["language", "token", "label"]
    return [(lang, tok, int(label)) for lang, tok, label in rows[1:]]


ROWS = labelled_rows()


def flagged(masker: Masker, token: str) -> bool:
    return masker.mask_text(token) != token


@pytest.fixture(scope="module")
def maskers():
    return {lang: Masker(MaskOptions(language=lang)) for lang in ("en", "ru", "uk", "be", None)}


# ---------------------------------------------------------------- the labelled list
def test_labelled_list_is_big_enough_and_clean():
    for lang, need in MIN_PER_LABEL.items():
        for label in (0, 1):
            n = sum(1 for lg, _, lab in ROWS if lg == lang and lab == label)
            assert n >= need, f"{lang}: only {n} tokens labelled {label}"
    assert all(lab in (0, 1) for _, _, lab in ROWS)
    keys = [(lang, tok) for lang, tok, _ in ROWS]
    assert len(keys) == len(set(keys)), "duplicate rows"


@pytest.mark.parametrize("lang", ["en", "ru", "uk", "be"])
def test_recall_and_false_positive_rate(maskers, lang):
    m = maskers[lang]
    pos = [tok for lg, tok, lab in ROWS if lg == lang and lab == 1]
    neg = [tok for lg, tok, lab in ROWS if lg == lang and lab == 0]
    missed = [t for t in pos if not flagged(m, t)]
    false = [t for t in neg if flagged(m, t)]
    recall = 1 - len(missed) / len(pos)
    fpr = len(false) / len(neg)
    assert recall >= 0.95, f"{lang} recall {recall:.3f}; missed {missed}"
    assert fpr <= 0.01, f"{lang} false-positive rate {fpr:.3f}; flagged {false}"


def test_all_languages_together_on_the_whole_list(maskers):
    m = maskers[None]
    pos = [tok for _, tok, lab in ROWS if lab == 1]
    neg = [tok for _, tok, lab in ROWS if lab == 0]
    assert sum(flagged(m, t) for t in pos) / len(pos) >= 0.95
    assert sum(flagged(m, t) for t in neg) / len(neg) <= 0.01


def test_language_restricts_the_rules(maskers):
    assert not flagged(maskers["en"], "пиздец")
    assert not flagged(maskers["ru"], "fuck")
    assert flagged(maskers[None], "пиздец") and flagged(maskers[None], "fuck")
    with pytest.raises(UsageError):
        Masker(MaskOptions(language="de"))


# ---------------------------------------------------------------- rules generalise
@pytest.mark.parametrize(
    "word",
    [
        # prefixes x roots x endings that are in no list
        "поразъебали",
        "недоёбанный",
        "перепиздеть",
        "расхуячивший",
        "охуевающий",
        "распиздяйка",
        "выблядки",
        "отмудохали",
        "злоебучий",
        "уёбывай",
        "наебнётся",
        "пиздоболка",
        "хуеплётство",
        "пидорасня",
        "сучары",
        "сукины",
        "ебанашка",
        "заебашить",
        "спиздивший",
        "з'їбалися",
        "підарасня",
        "розпиздяї",
        "даебаліся",
        "праебалі",
        "піздзюк",
        "motherfuckingly",
        "shitstains",
        "cuntfaces",
        "dickweeds",
        "arseholes",
        "bullshitters",
    ],
)
def test_unseen_inflections(maskers, word):
    assert maskers[None].is_profane(word), word


@pytest.mark.parametrize(
    "word",
    [
        "скрипка",
        "оскорблять",
        "assassin",
        "Scunthorpe",
        "potebnya",
        "застрахуй",
        "страхуйся",
        "хулиган",
        "бляха",
        "мудрый",
        "мудрость",
        "сукно",
        "суккулент",
        "употреблять",
        "рубля",
        "корабля",
        "ребята",
        "hello",
        "class",
        "passage",
        "Dickens",
        "cocktail",
        "shiitake",
        "therapist",
        "grape",
        "Essex",
        "Sussex",
        "bass",
        "title",
        "document",
        "analysis",
        "ебонит",
        "Amanda",
        "Аманда",
        "команда",
        "подрозділ",
        "підрозділ",
        "підряд",
        "Фука",
        "Matsushita",
        "Shiite",
        "who're",
    ],
)
def test_innocent_words(maskers, word):
    assert not maskers[None].is_profane(word), word


def test_lookalikes_and_obfuscation(maskers):
    m = maskers[None]
    assert m.mask_text("xуй") == "***"  # Latin x
    assert m.mask_text("пиздeц") == "******"  # Latin e
    assert m.mask_text("fuсk") == "****"  # Cyrillic с
    assert m.mask_text("cyka") == "****"  # every letter a look-alike
    for w in ("f*ck", "sh1t", "$hit", "a$$hole", "@sshole", "fuuuuck", "b1tch", "fvck"):
        assert m.mask_text(w) == "*" * len(w), w


# ---------------------------------------------------------------- styles and layout
def test_styles():
    assert Masker(MaskOptions(style="stars")).mask_word("fucking") == "*******"
    assert Masker(MaskOptions(style="first")).mask_word("fucking") == "f******"
    assert Masker(MaskOptions(style="first")).mask_word("блядь") == "б****"
    assert Masker(MaskOptions(style="tag")).mask_word("fucking") == "[expletive]"
    with pytest.raises(UsageError):
        Masker(MaskOptions(style="bleep"))


def test_whitespace_and_punctuation_are_kept():
    m = Masker()
    assert m.mask_word(" fuck,") == " ****,"
    assert m.mask_word(" «Сука!»") == " «****!»"
    assert m.mask_word(" hello") == " hello"
    text = '  Oh,\tshit!!  Ну пиздец...\n"bullshit" (fuck-up) — ok ?'
    out = m.mask_text(text)
    assert out == '  Oh,\t****!!  Ну ******...\n"********" (****-up) — ok ?'
    assert len(out) == len(text)
    assert Masker(MaskOptions(style="tag")).mask_text("Oh, shit!") == "Oh, [expletive]!"


def test_spelled_out_letters():
    assert Masker().mask_text("a f u c k , really") == "a * * * * , really"
    assert Masker(MaskOptions(style="first")).mask_text("f-u-c-k") == "f-*-*-*"
    assert Masker(MaskOptions(style="tag")).mask_text("say s h i t now") == "say [expletive] now"
    assert Masker().mask_text("a b c d") == "a b c d"


def test_is_profane():
    m = Masker()
    assert m.is_profane(" fuck!") and m.is_profane("f u c k") and not m.is_profane(" class.")


# ---------------------------------------------------------------- transcripts
def make_transcript(language="en"):
    audio = AudioInfo(path="x.wav", sha256="0" * 64, pcm_sha256="1" * 64, duration=9.0, sample_rate=16000, channels=1)
    words = [
        Word(" What", 0.0, 0.4, 0.9),
        Word(" the", 0.4, 0.6, 0.9),
        Word(" fuck,", 0.6, 1.0, 0.8),
        Word(" сука", 1.0, 1.5, 0.7),
        Word(" man.", 1.5, 2.0, 0.9),
    ]
    seg1 = Segment(id=0, start=0.0, end=2.0, text=" What the fuck, сука man.", words=words)
    seg2 = Segment(id=1, start=2.0, end=4.0, text=" No words, just bullshit here.")
    spelled = [
        Word(" f", 4.0, 4.2),
        Word(" u", 4.2, 4.4),
        Word(" c", 4.4, 4.6),
        Word(" k", 4.6, 4.8),
        Word(" it", 4.8, 5.0),
    ]
    seg3 = Segment(id=2, start=4.0, end=5.0, text=" f u c k it", words=spelled)
    return Transcript(audio=audio, model={"name": "tiny"}, language=language, segments=[seg1, seg2, seg3])


def test_mask_transcript_in_place_keeps_timestamps():
    t = make_transcript()
    before = [(s.start, s.end, [(w.start, w.end, w.probability) for w in s.words]) for s in t.segments]
    n = Masker(MaskOptions(style="first")).mask_transcript(t)
    after = [(s.start, s.end, [(w.start, w.end, w.probability) for w in s.words]) for s in t.segments]
    assert after == before
    w = t.segments[0].words
    assert [x.word for x in w] == [" What", " the", " f***,", " с***", " man."]
    assert [x.masked for x in w] == [False, False, True, True, False]
    assert t.segments[0].text == " What the f***, с*** man."
    assert t.segments[1].text == " No words, just b******* here."
    assert [x.word for x in t.segments[2].words] == [" f", " *", " *", " *", " it"]
    assert t.segments[2].text == " f * * * it"
    assert n == 2 + 1 + 3
    d = t.to_dict()
    assert d["segments"][0]["words"][2]["masked"] is True and "masked" not in d["segments"][0]["words"][0]


# ---------------------------------------------------------------- word files
def test_word_files(tmp_path):
    f = tmp_path / "words.txt"
    f.write_text("# my words\nwazzock   # British\nгнид*\n\n  bloody \n", encoding="utf-8")
    assert load_word_file(f) == ["wazzock", "гнид*", "bloody"]
    m = Masker(MaskOptions(mask_words=str(f)))
    assert m.mask_text("You Wazzock, гнидами bloody!") == "You *******, ******* ******!"
    a = tmp_path / "allow.txt"
    a.write_text("сука\nbastard*\n", encoding="utf-8")
    m = Masker(MaskOptions(allow_words=[str(a)]))
    assert m.mask_text("сука bastards пиздец") == "сука bastards ******"


def test_word_file_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_word_file(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        load_word_file(bad)
    with pytest.raises(InputError):
        load_word_file(tmp_path)


# ---------------------------------------------------------------- pipeline step
def test_step_options_and_pipeline_registration(tmp_path):
    from audiotools.pipeline.recipe import load_recipe
    from audiotools.pipeline.steps import registry

    assert MaskOptions().to_params() == {
        "enabled": True,
        "style": "stars",
        "language": None,
        "mask_words": None,
        "allow_words": None,
        "unmasked_copy": None,
    }
    # the unmasked copy's path is used, but recorded only as set: on and off differ, two paths do not
    from audiotools.batch.plan import recipe_fingerprint

    assert MaskOptions(unmasked_copy="/secure/raw.json").to_params()["unmasked_copy"] is True
    base = load_recipe("default")
    prints = [recipe_fingerprint(base.replace("mask", unmasked_copy=u)) for u in (None, "/a/raw.json", "/b/x.json")]
    assert prints[0] != prints[1] == prints[2]
    assert registry()["mask"].options is MaskOptions and registry()["mask"].run is run_step
    assert load_recipe("default").options("mask") == MaskOptions()
    with pytest.raises(UsageError, match="one of 'stars', 'first', 'tag'"):
        MaskOptions(style="bleep")
    with pytest.raises(UsageError, match="does not support language 'de'"):
        MaskOptions(language="de")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  mask:\n    style: first\n    colour: red\n", encoding="utf-8")
    with pytest.raises(UsageError, match="no parameter.*colour"):
        load_recipe(recipe)


def test_run_step_writes_private_unmasked_copy(tmp_path):
    t = make_transcript(language="ru")
    job = SimpleNamespace(transcript=t)
    copy = tmp_path / "private" / "unmasked.json"
    words = tmp_path / "w.txt"
    words.write_text("man\n", encoding="utf-8")
    run_step(job, MaskOptions(style="first", language="en", mask_words=str(words), unmasked_copy=str(copy)))
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    raw = json.loads(copy.read_text(encoding="utf-8"))
    assert raw["segments"][0]["text"] == " What the fuck, сука man."
    assert "masking" not in raw
    # language "en" was asked for: the Russian word stays, the extra word is masked
    assert t.segments[0].text == " What the f***, сука m**."
    assert t.extra["masking"] == {
        "style": "first",
        "masked_words": 6,
        "engine": "audiotools.masking/1",
        "unmasked_copy": True,
    }


def test_run_step_masks_every_language_by_default():
    """A Russian transcript with English swearing: both are masked unless a language is chosen."""
    t = make_transcript(language="ru")
    run_step(SimpleNamespace(transcript=t), MaskOptions())
    assert t.segments[0].text == " What the ****, **** man."
    t = make_transcript(language="ja")
    run_step(SimpleNamespace(transcript=t), MaskOptions())
    assert t.segments[0].text == " What the ****, **** man."
    t = make_transcript(language="en")  # an explicit language restricts the rules
    run_step(SimpleNamespace(transcript=t), MaskOptions(language="ru"))
    assert t.segments[0].text == " What the fuck, **** man."
    t = make_transcript(language="ru")
    run_step(SimpleNamespace(transcript=t), MaskOptions(language="all"))
    assert t.segments[0].text == " What the ****, **** man."


def test_cli_flags_map_onto_the_mask_options():
    from audiotools.cli import build_parser
    from audiotools.cli.options import step_values

    args = build_parser().parse_args(["transcribe", "x.wav"])
    assert step_values(args, "mask") == {"style": None, "mask_words": None, "allow_words": None, "unmasked_copy": None}
    args = build_parser().parse_args(
        [
            "transcribe",
            "x.wav",
            "--mask-style",
            "tag",
            "--mask-words",
            "a.txt",
            "--allow-words",
            "b.txt",
            "--unmasked-copy",
            "raw.json",
        ]
    )
    assert step_values(args, "mask") == {
        "style": "tag",
        "mask_words": "a.txt",
        "allow_words": "b.txt",
        "unmasked_copy": "raw.json",
    }
    assert step_values(build_parser().parse_args(["transcribe", "x.wav", "--no-mask"]), "mask") == {"enabled": False}
    assert step_values(argparse.Namespace(), "mask") == {
        "style": None,
        "mask_words": None,
        "allow_words": None,
        "unmasked_copy": None,
    }


def test_transcribe_command_maps_mask_flags_onto_the_recipe():
    from audiotools.cli import build_parser
    from audiotools.cli.options import recipe_from_args

    args = build_parser().parse_args(["transcribe", "x.wav", "--mask-style", "first", "--unmasked-copy", "raw.json"])
    recipe = recipe_from_args(args)
    assert recipe.options("mask").style == "first"
    assert recipe.options("mask").unmasked_copy == "raw.json"
    args = build_parser().parse_args(["transcribe", "x.wav", "--no-mask"])
    assert recipe_from_args(args).options("mask").enabled is False


# ---------------------------------------------------------------- audiotools mask
def test_cli_mask_in_process(monkeypatch, capsys, tmp_path):
    from audiotools.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("Ну пиздец,  what the fuck?\n"))
    assert main(["mask", "--mask-style", "first"]) == 0
    assert capsys.readouterr().out == "Ну п*****,  what the f***?\n"

    words = tmp_path / "w.txt"
    words.write_text("wazzock\n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("wazzock! пиздец fuck"))
    assert main(["mask", "--language", "en", "--mask-words", str(words)]) == 0
    assert capsys.readouterr().out == "*******! пиздец ****"

    monkeypatch.setattr(sys, "stdin", io.StringIO("fuck"))
    assert main(["mask", "--allow-words", str(tmp_path / "nope.txt")]) == 1
    assert "nope.txt" in capsys.readouterr().err


def test_cli_mask_subprocess():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    text = "Блядь, опять! shit\n  сукно, class.\n"
    r = subprocess.run(
        [sys.executable, "-m", "audiotools", "mask", "--mask-style", "tag"],
        input=text.encode("utf-8"),
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode("utf-8") == "[expletive], опять! [expletive]\n  сукно, class.\n"
    r = subprocess.run(
        [sys.executable, "-m", "audiotools", "mask", "--mask-style", "bleep"],
        input=b"x",
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2
