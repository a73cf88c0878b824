"""Running a recipe on one file: decode -> transcribe -> the finishing steps -> export."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotools.pipeline.recipe import Recipe
from audiotools.pipeline.steps import FINISHING_STEPS, registry


@dataclass
class Job:
    """One file going through the pipeline."""

    path: Path
    recipe: Recipe
    audio: Any = None
    transcript: Any = None
    outputs: dict = field(default_factory=dict)


def decode(path: str | os.PathLike, recipe: Recipe) -> Job:
    """A Job holding the decoded audio (every channel kept when the diariser splits them)."""
    from audiotools.audio.decode import load_audio

    job = Job(path=Path(path), recipe=recipe)
    job.audio = load_audio(path, keep_channels=recipe.needs_channels)
    return job


def finish(job: Job, output_dir: str | os.PathLike | None = None, stem: str | None = None) -> Job:
    """Every step after transcription (diarize, identify, mask, provenance), then export; the seconds
    each step before provenance took go to ``transcript.extra["stats"]["step_seconds"]``.

    ``job.transcript`` must hold the transcription. Outputs go to ``output_dir`` as ``<stem>.<ext>``.
    """
    recipe = job.recipe
    job.transcript.extra["parameters"] = recipe.parameters()
    if output_dir is not None:  # a stem too long for the file system is shortened, and the JSON says so
        from audiotools.fileio import fit_stem

        full = stem or Path(job.transcript.audio.path).stem
        stem = fit_stem(full)
        if stem != full:  # recorded before provenance, so the hashes cover it
            job.transcript.extra["output"] = {"stem": stem, "full_stem": full, "reason": "name too long"}
    # seconds each step took, beside the engine's stats (not covered by the provenance hashes)
    seconds = job.transcript.extra.setdefault("stats", {}).setdefault("step_seconds", {})
    steps = registry()
    for step in FINISHING_STEPS:
        if not recipe.enabled(step):
            continue
        t0 = time.perf_counter()
        steps[step].run(job, recipe.options(step))
        if step != "provenance":  # it seals the document: its own time cannot go inside
            seconds[step] = round(time.perf_counter() - t0, 3)
    if output_dir is not None:
        from audiotools.export.writers import write_outputs

        job.outputs = write_outputs(job.transcript, output_dir, recipe.options("export").formats, stem=stem)
    return job


def preflight(recipe: Recipe) -> None:
    """What can be checked without a model, before any loads: the voiceprint store that the
    identify step will read (a corrupt record fails now, not after the transcription)."""
    if recipe.enabled("identify"):
        from audiotools.speakers.voiceprints import VoiceprintStore

        store = VoiceprintStore(recipe.options("identify").voiceprints)
        if store.exists() and not store.is_empty():
            store.all()  # reads and validates every record and its embeddings


def run_file(
    path: str | os.PathLike,
    recipe: Recipe,
    output_dir: str | os.PathLike | None = None,
    transcriber=None,
    stem: str | None = None,
) -> Job:
    """Run every step of ``recipe`` on one file; writes the outputs when ``output_dir`` is given."""
    from audiotools.asr.transcribe import Transcriber

    job = decode(path, recipe)
    transcriber = transcriber or Transcriber(recipe.options("transcribe"))
    job.transcript = transcriber.transcribe(job.audio)
    return finish(job, output_dir, stem)
