"""audiotools: transcripts people can trust. Who spoke, when, what they said, and proof it belongs to the audio.

The public API; each name is imported on first use, so ``import audiotools`` stays cheap::

    import audiotools
    t = audiotools.transcribe("call.wav", language="ru")          # -> Transcript
    annotation = audiotools.diarize(audiotools.load_audio("call.wav"))
"""

from __future__ import annotations

import importlib
from typing import Any

from audiotools.errors import AudiotoolsError, InputError, ModelError, UsageError
from audiotools.transcript import Segment, Transcript, Word
from audiotools.version import __version__

# public name -> module that defines it
_LAZY = {
    "transcribe": "audiotools.asr.transcribe:transcribe_file",
    "load_audio": "audiotools.audio.decode:load_audio",
    "diarize": "audiotools.diarize.diarization:diarize",
    "identify": "audiotools.speakers.identification:identify",
    "verify": "audiotools.speakers.verification:verify",
    "Masker": "audiotools.mask.masking:Masker",
    "MaskOptions": "audiotools.mask.masking:MaskOptions",
    "run_batch": "audiotools.batch.run:run_batch",
    "load_recipe": "audiotools.pipeline.recipe:load_recipe",
    "verify_provenance": "audiotools.provenance.document:verify",
}

__all__ = [
    "__version__",
    "Transcript",
    "Segment",
    "Word",
    "AudiotoolsError",
    "InputError",
    "ModelError",
    "UsageError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'audiotools' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
