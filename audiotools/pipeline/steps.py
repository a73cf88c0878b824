"""The step registry: each pipeline step's options class and the function that runs it.

Steps run in ``STEP_ORDER``: transcribe -> diarize -> identify -> mask -> provenance -> export.
A step's runner is ``run(job, options)``; transcription and export are run by the pipeline itself
(the engine batches transcription across files; export writes the files)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from audiotools.options import Options

STEP_ORDER = ("transcribe", "diarize", "identify", "mask", "provenance", "export")
FINISHING_STEPS = STEP_ORDER[1:-1]  # between transcription and export


@dataclass(frozen=True)
class Step:
    name: str
    options: type[Options]
    run: Callable | None = None  # run(job, options); None for transcribe and export


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, Step]:
    from audiotools.asr.options import TranscribeOptions
    from audiotools.diarize import diarization
    from audiotools.export.writers import ExportOptions
    from audiotools.mask import masking
    from audiotools.provenance import document
    from audiotools.speakers import identification

    steps = [
        Step("transcribe", TranscribeOptions),
        Step("diarize", diarization.DiarizationOptions, diarization.run_step),
        Step("identify", identification.IdentifyOptions, identification.run_step),
        Step("mask", masking.MaskOptions, masking.run_step),
        Step("provenance", document.ProvenanceOptions, document.run_step),
        Step("export", ExportOptions),
    ]
    return {s.name: s for s in steps}
