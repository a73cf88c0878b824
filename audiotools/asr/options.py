"""The ``transcribe`` step's options (kept apart from the engine, so reading them needs no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from audiotools.asr.models import DEFAULT_MODEL
from audiotools.errors import UsageError
from audiotools.options import Options
from audiotools.vad.silero import VADOptions


@dataclass(frozen=True)
class TranscribeOptions(Options):
    """The ``transcribe`` step: the model, where it runs, and how it decodes."""

    STEP: ClassVar[str] = "transcribe"

    model: str = DEFAULT_MODEL
    device: str = "auto"
    language: str | None = None  # None: detect
    # detect among these only (probabilities renormalised over them: asr/language.py); None: all of Whisper's.
    # A forced ``language`` skips detection, so the candidates then play no part
    languages: tuple[str, ...] | None = None
    # detect each decoding window's language and decode it in that language (recordings that switch
    # language between pauses); the file's language is then the one of most speech. Off: one language
    # per file, from its first windows
    language_per_window: bool = False
    task: Literal["transcribe", "translate"] = "transcribe"
    vad: bool = True  # skip non-speech (no hallucinated text in silence)
    word_timestamps: bool = True
    # "decoding": from the cross-attention the greedy decoding computes anyway (no second decoder
    # pass; windows that fell back to sampling still get the pass); "pass": openai-whisper's own
    # method, a separate decoder pass over the text without timestamp tokens
    word_alignment: Literal["decoding", "pass"] = "decoding"
    batch_size: int = 8  # windows per encoder/decoder batch
    beam_size: int | None = None
    best_of: int = 5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None
    # seed of the sampling fallback (temperature > 0): the same audio, options and seed give the same
    # transcript; another seed draws other samples where a window falls back
    seed: int = 0
    # how a window shorter than 30 s is padded to Whisper's 30 s input (asr/audio.py log_mel_batch):
    # "zero" sets the log-mel frames after the window to 0, as openai-whisper's transcribe() does;
    # "floor" keeps the log-mel of the audio zero-padded to 30 s (frames at the spectrogram's floor)
    mel_padding: Literal["zero", "floor"] = "floor"
    # with "zero": a window whose decoding is a repetition loop (compression ratio, or more text
    # tokens than 10 + 10 per second of its audio) is encoded again with "floor" padding and decoded
    # again; the better of the two is kept (transcribe.py _loop_guard)
    loop_guard: bool = True
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    # None: float16 on CUDA, float32 on CPU (quantize.resolve_compute_type)
    compute_type: Literal["float32", "float16", "bfloat16", "int8", "int8_bfloat16"] | None = None
    fp16: bool | None = None  # legacy alias (True: float16, False: float32), used when compute_type is None
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    allow_download: bool | None = None
    vad_options: VADOptions = VADOptions()

    def check(self) -> None:
        for name in ("batch_size", "beam_size", "best_of"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if not self.temperatures:
            raise UsageError("transcribe: temperatures needs at least one value")
        if self.languages is not None and not self.languages:
            raise UsageError("--languages needs at least one language code (e.g. ru,uk,be,en)")
        if self.language is not None:
            from audiotools.asr.language import check_language

            object.__setattr__(self, "language", check_language(self.language))
