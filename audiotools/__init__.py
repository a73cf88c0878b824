"""audiotools: transcripts people can trust. Who spoke, when, what they said, and proof it belongs to the audio.

The public API; each name is imported on first use, so ``import audiotools`` stays cheap::

    import audiotools
    t = audiotools.transcribe("call.wav", language="ru")          # -> Transcript
    annotation = audiotools.diarize(audiotools.load_audio("call.wav"))
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# oneDNN (torch's CPU convolutions) keeps a compiled primitive with its scratch memory for every
# convolution shape it meets, up to 1,024. CAM++ and the segmentation network see a new length with
# almost every batch, so that cache grew by about 0.7 GB on a half-hour recording and was never
# given back. One CAM++ forward alone uses about a hundred distinct convolution shapes (each dense
# layer's input width differs), so a cap below that recompiles most of them on every forward, even
# for a shape just seen (a 2 x 150-frame batch: about 88 ms, against 50-65 ms with 128); 128 keeps
# one forward's primitives. Set before torch first runs a convolution; a value the user set is kept
# (benchmarks/diarize.py: speed, and long_files' peak RSS).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "128")

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
