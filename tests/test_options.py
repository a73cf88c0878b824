"""The one options mechanism: a step's options are a frozen dataclass whose fields are its recipe
parameters; types validate, defaults fill once, secrets are never recorded, recipes never mutate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from audiotools.asr.options import TranscribeOptions
from audiotools.diarize.diarization import DiarizationOptions
from audiotools.errors import UsageError
from audiotools.export.writers import ExportOptions
from audiotools.options import choices
from audiotools.pipeline.recipe import load_recipe
from audiotools.pipeline.steps import STEP_ORDER, registry
from audiotools.vad.silero import VADOptions


def test_fields_are_validated_from_their_types():
    t = TranscribeOptions.from_params({"temperatures": [0, 0.4], "vad_options": {"threshold": 0.6}, "beam_size": 5})
    assert t.temperatures == (0.0, 0.4) and t.vad_options == VADOptions(threshold=0.6) and t.beam_size == 5
    assert DiarizationOptions(num_speakers=np.int64(3)).num_speakers == 3
    with pytest.raises(UsageError, match="'task' must be one of 'transcribe', 'translate'"):
        TranscribeOptions(task="sing")
    with pytest.raises(UsageError, match="'num_speakers' must be a whole number or null, got True"):
        DiarizationOptions(num_speakers=True)
    with pytest.raises(UsageError, match="'vad' must be true or false"):
        TranscribeOptions.from_params({"vad": "yes"})
    with pytest.raises(UsageError, match=r"no parameter\(s\) colour \(declared: "):
        TranscribeOptions.from_params({"colour": "red"})
    with pytest.raises(UsageError, match="--beam-size must be at least 1"):
        TranscribeOptions(beam_size=0)
    assert choices(DiarizationOptions, "channels") == ("mix", "split")
    assert ExportOptions(formats="json,srt").formats == ("json", "srt")


def test_options_are_frozen_and_replace_keeps_what_is_none():
    d = DiarizationOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.num_speakers = 2
    e = d.replace(num_speakers=2, channels=None)
    assert (d.num_speakers, e.num_speakers, e.channels) == (None, 2, "mix")
    with pytest.raises(UsageError, match="no parameter"):
        d.replace(speakers=2)


def test_secrets_are_used_but_never_recorded():
    d = DiarizationOptions(hf_token="hf_secret")
    assert d.hf_token == "hf_secret" and "hf_secret" not in repr(d)
    assert d.to_params()["hf_token"] is None


def test_a_recipe_fills_every_step_once_and_never_changes(tmp_path):
    recipe = load_recipe("default")
    assert list(recipe.steps) == list(STEP_ORDER)
    assert all(isinstance(recipe.options(s), registry()[s].options) for s in STEP_ORDER)
    before = recipe.parameters()
    other = recipe.replace("mask", style="first")
    assert recipe.parameters() == before and other.options("mask").style == "first"
    assert other.parameters()["steps"]["mask"]["style"] == "first"
    path = tmp_path / "r.yaml"
    path.write_text("steps:\n  transcribe:\n    beam_size: 5\n    vad_options: {threshold: 0.3}\n")
    custom = load_recipe(path)
    assert custom.options("transcribe").beam_size == 5 and custom.options("transcribe").vad_options.threshold == 0.3
    assert custom.options("diarize") == DiarizationOptions()
    path.write_text("steps:\n  transcribe:\n    beam_size: five\n")
    with pytest.raises(UsageError, match="'beam_size' must be a whole number or null"):
        load_recipe(path)
