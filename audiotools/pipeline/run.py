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
    # the file's output stem under the output folder ("a/b/talk" in a batch): names its per-file
    # outputs outside the output set, such as the unmasked copy's "{stem}"; set by finish() if None
    name: str | None = None


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
    if job.name is None:
        job.name = stem or Path(job.transcript.audio.path).stem
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
    """What can be checked before any decoding or model load, so that a run fails in seconds, not
    after the transcription: the files the recipe names (word lists, signing key), the voiceprint
    store that the identify step will read (one named explicitly must exist; a corrupt record fails
    now), then the weights of the diariser (segmentation-3.0, CAM++) and of the identify step
    (CAM++), found or fetched now (``weights.require``; with fetching off, one line naming
    ``audiotools models fetch``)."""
    from audiotools import weights

    recipe.parameters()  # reads the files the steps name (word lists, the signing key): a bad one fails now
    needed: list = []
    diarize = recipe.enabled("diarize")
    if diarize:
        from audiotools.diarize.diarization import choose_backend

        options = recipe.options("diarize")
        # channels split: a speech detector per channel (Silero VAD, a dependency), no speaker model;
        # the pyannote backend brings its own models
        if options.channels != "split" and choose_backend(options)[0] == "builtin":
            needed += [weights.SEGMENTATION, weights.CAMPLUS]
    if recipe.enabled("identify"):
        from audiotools.errors import UsageError
        from audiotools.speakers.identification import missing_store
        from audiotools.speakers.voiceprints import VoiceprintStore

        problem = missing_store(recipe.options("identify"))
        if problem:
            raise UsageError(problem)
        store = VoiceprintStore(recipe.options("identify").voiceprints)
        if store.exists() and not store.is_empty():
            store.all()  # reads and validates every record and its embeddings
            if diarize:  # without diarised speakers the step names nobody and loads nothing
                needed.append(weights.CAMPLUS)
    if needed:
        weights.require(needed)


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
