"""Declarative pipelines: a recipe (YAML) names steps and their parameters; ``run`` executes them.

Steps, in order: decode -> transcribe -> diarize -> identify -> mask -> provenance -> export.
Each step declares its parameters (a dataclass or a dict of defaults in ``STEP_DEFAULTS``);
a recipe may set only declared parameters, and command-line flags override the recipe.
Recipes ship inside the package (``audiotools/pipelines``, the repo's ``pipelines/``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiotools.errors import UsageError

log = logging.getLogger(__name__)
# The recipes are the repository's pipelines/ folder; a wheel ships them as audiotools/recipes/.
RECIPE_DIRS = (Path(__file__).resolve().parents[1] / "recipes", Path(__file__).resolve().parents[2] / "pipelines")


def _transcribe_defaults() -> dict:
    from audiotools.asr.transcribe import TranscribeOptions
    d = {f.name: f.default for f in dataclasses.fields(TranscribeOptions)
         if f.default is not dataclasses.MISSING}
    d["temperatures"] = list(d["temperatures"])
    return d


# Steps between transcription and export live in their own modules. Each such module defines
#   STEP_PARAMS: dict            declared parameters with defaults (an "enabled" flag among them)
#   run_step(job, params)        does the work on ``job`` (a Job, below)
# and optionally, for the CLI:
#   add_cli_options(parser)      adds its flags to ``transcribe``/``batch``
#   cli_overrides(args) -> dict  the step parameters those flags set (None = leave the recipe's value)
STEP_MODULES = {
    "diarize": "audiotools.diarize.diarization",
    "identify": "audiotools.speakers.identification",
    "mask": "audiotools.mask.masking",
    "provenance": "audiotools.provenance.document",
}
STEP_ORDER = ["transcribe", "diarize", "identify", "mask", "provenance", "export"]


def step_module(step: str):
    """The module implementing ``step``, or None when it is not installed."""
    import importlib
    import importlib.util
    name = STEP_MODULES.get(step)
    if not name or importlib.util.find_spec(name) is None:
        return None
    mod = importlib.import_module(name)
    return mod if hasattr(mod, "STEP_PARAMS") and hasattr(mod, "run_step") else None


def _defaults_for(step: str) -> dict:
    if step == "transcribe":
        return _transcribe_defaults()
    if step == "export":
        return {"formats": ["json", "srt", "vtt", "txt", "tsv"]}
    mod = step_module(step)
    if mod is None:
        raise UsageError(f"pipeline step {step!r} is not available in this installation")
    return copy.deepcopy(dict(mod.STEP_PARAMS))


STEP_DEFAULTS: dict[str, Any] = {s: (lambda s=s: _defaults_for(s)) for s in STEP_ORDER}


def available_recipes() -> dict[str, Path]:
    folder = next((d for d in RECIPE_DIRS if d.is_dir()), RECIPE_DIRS[-1])
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_recipe(name_or_path: str | os.PathLike | None = None) -> dict:
    """Load a recipe by name (``default``, ``gpu-batch`` ...) or path; fill in declared defaults."""
    name_or_path = str(name_or_path or "default")
    p = Path(name_or_path)
    if not p.is_file():
        recipes = available_recipes()
        if name_or_path not in recipes:
            raise UsageError(f"unknown pipeline {name_or_path!r}: not a file, and not one of "
                             f"{', '.join(recipes) or '(none installed)'}")
        p = recipes[name_or_path]
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{p}: cannot read pipeline recipe: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("steps", {}), dict):
        raise UsageError(f"{p}: a recipe is a mapping with a 'steps' mapping")
    recipe = {"name": raw.get("name", p.stem), "description": raw.get("description", ""), "path": str(p),
              "steps": {}}
    for step, params in (raw.get("steps") or {}).items():
        if step not in STEP_DEFAULTS:
            raise UsageError(f"{p}: unknown step {step!r} (known: {', '.join(STEP_DEFAULTS)})")
        defaults = STEP_DEFAULTS[step]()
        params = params or {}
        if not isinstance(params, dict):
            raise UsageError(f"{p}: step {step!r} needs a mapping of parameters")
        unknown = set(params) - set(defaults)
        if unknown:
            raise UsageError(f"{p}: step {step!r} has no parameter(s) {', '.join(sorted(unknown))} "
                             f"(declared: {', '.join(sorted(defaults))})")
        recipe["steps"][step] = {**defaults, **params}
    return recipe


def override(recipe: dict, step: str, **values) -> dict:
    """Return a copy of ``recipe`` with ``values`` (those not None) set on ``step``."""
    r = copy.deepcopy(recipe)
    if step not in STEP_DEFAULTS:
        raise UsageError(f"unknown step {step!r}")
    params = r["steps"].setdefault(step, STEP_DEFAULTS[step]())
    for k, v in values.items():
        if v is None:
            continue
        if k not in params:
            raise UsageError(f"step {step!r} has no parameter {k!r}")
        params[k] = v
    return r


def enabled(recipe: dict, step: str) -> bool:
    params = recipe["steps"].get(step)
    return params is not None and params.get("enabled", True)


def transcribe_options(recipe: dict):
    from audiotools.asr.transcribe import TranscribeOptions
    from audiotools.vad.silero import VADOptions, as_vad_options
    params = dict(recipe["steps"].get("transcribe") or _transcribe_defaults())
    vad = params.pop("vad_options", None)
    params["temperatures"] = tuple(params.get("temperatures") or (0.0,))
    opts = TranscribeOptions(**params)
    if isinstance(vad, (dict, VADOptions)):
        opts.vad_options = as_vad_options(vad)
    return opts


@dataclass
class Job:
    """One file going through the pipeline."""
    path: Path
    recipe: dict
    audio: Any = None
    transcript: Any = None
    outputs: dict = field(default_factory=dict)


def resolved_parameters(recipe: dict) -> dict:
    """The parameters as run (recorded in provenance)."""
    def clean(v):
        if dataclasses.is_dataclass(v):
            return dataclasses.asdict(v)
        if isinstance(v, tuple):
            return list(v)
        return v
    return {"pipeline": recipe["name"],
            "steps": {s: {k: clean(v) for k, v in p.items()} for s, p in recipe["steps"].items()}}


def needs_channels(recipe: dict) -> bool:
    return bool((recipe["steps"].get("diarize") or {}).get("channels") == "split")


def decode(path: str | os.PathLike, recipe: dict) -> Job:
    """Step 'decode': a Job holding the decoded audio."""
    from audiotools.audio.decode import load_audio
    job = Job(path=Path(path), recipe=recipe)
    job.audio = load_audio(path, keep_channels=needs_channels(recipe))
    return job


def finish(job: Job, output_dir: str | os.PathLike | None = None, stem: str | None = None) -> Job:
    """Every step after transcription (diarize, identify, mask, provenance), then export; the seconds
    each step before provenance took go to ``transcript.extra["stats"]["step_seconds"]``.

    ``job.transcript`` must hold the transcription. Outputs go to ``output_dir`` as ``<stem>.<ext>``.
    """
    recipe = job.recipe
    job.transcript.extra["parameters"] = resolved_parameters(recipe)
    # seconds each step took, beside the engine's stats (not covered by the provenance hashes)
    seconds = job.transcript.extra.setdefault("stats", {}).setdefault("step_seconds", {})
    for step in STEP_ORDER[1:-1]:
        params = recipe["steps"].get(step)
        if params is None:  # not in the recipe: run with its defaults when the step is installed
            if step_module(step) is None:
                continue
            params = recipe["steps"][step] = _defaults_for(step)
        if not params.get("enabled", True):
            continue
        mod = step_module(step)
        if mod is None:
            raise UsageError(f"pipeline step {step!r} is not available in this installation")
        t0 = time.perf_counter()
        mod.run_step(job, params)
        if step != "provenance":        # it seals the document: its own time cannot go inside
            seconds[step] = round(time.perf_counter() - t0, 3)
    if output_dir is not None:
        from audiotools.export.writers import write_outputs
        formats = (recipe["steps"].get("export") or {}).get("formats")
        job.outputs = write_outputs(job.transcript, output_dir, formats, stem=stem)
    return job


def run_file(path: str | os.PathLike, recipe: dict, output_dir: str | os.PathLike | None = None,
             transcriber=None, stem: str | None = None) -> Job:
    """Run every step of ``recipe`` on one file; writes the outputs when ``output_dir`` is given."""
    from audiotools.asr.transcribe import Transcriber
    job = decode(path, recipe)
    transcriber = transcriber or Transcriber(transcribe_options(recipe))
    job.transcript = transcriber.transcribe(job.audio)
    return finish(job, output_dir, stem)
