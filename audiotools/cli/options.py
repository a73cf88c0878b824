"""The one place where command-line flags map onto the steps' options.

``transcribe`` and ``batch`` take every flag below; ``diarize`` takes the diariser's. A flag left out
is None and leaves the recipe's value alone; the allowed values of a flag come from its field's
``Literal`` type, so the parser and the recipe accept the same values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audiotools.cli.common import CommaList
from audiotools.errors import KeyFileError, UsageError
from audiotools.options import choices

# step -> {option field: argparse dest}; flags whose value is taken as it is
FLAG_FIELDS: dict[str, dict[str, str]] = {
    "transcribe": {
        name: name
        for name in (
            "model",
            "device",
            "language",
            "languages",
            "language_per_window",
            "task",
            "beam_size",
            "batch_size",
            "initial_prompt",
            "seed",
            "vad",
            "word_timestamps",
            "word_alignment",
            "allow_download",
            "threads",
            "compute_type",
        )
    },
    "diarize": {
        "enabled": "diarize",
        "backend": "diarizer",
        "num_speakers": "num_speakers",
        "min_speakers": "min_speakers",
        "max_speakers": "max_speakers",
        "channels": "channels",
        "pyannote_pipeline": "pyannote_pipeline",
        "hf_token": "hf_token",
    },
    "identify": {"voiceprints": "voiceprints", "enabled": "identify", "prior": "identify_prior"},
    "mask": {
        "style": "mask_style",
        "mask_words": "mask_words",
        "allow_words": "allow_words",
        "unmasked_copy": "unmasked_copy",
    },
}


def add_transcribe_options(p: argparse.ArgumentParser) -> None:
    """Transcription and output flags, shared by ``transcribe`` and ``batch``."""
    from audiotools.asr.options import TranscribeOptions
    from audiotools.pipeline.recipe import available_recipes

    g = p.add_argument_group("transcription")
    g.add_argument(
        "--pipeline",
        default=None,
        metavar="NAME|PATH",
        help=f"pipeline recipe: one of the installed ones ({', '.join(available_recipes()) or 'none'}; "
        "default: default), or a recipe file (.yaml)",
    )
    g.add_argument(
        "--model",
        "-m",
        default=None,
        help="model name (base, tiny.en, large-v3 ...), openai .pt file or CTranslate2 directory",
    )
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="default: auto")
    g.add_argument("--language", "-l", default=None, help="language code (en, ru, uk, be ...); default: detect")
    g.add_argument(
        "--languages",
        action=CommaList,
        default=None,
        metavar="CODES",
        help="detect the language among these only, e.g. ru,uk,be,en (probabilities renormalised over them; "
        "default: recipe, else every language Whisper knows)",
    )
    g.add_argument(
        "--language-per-window",
        action="store_true",
        default=None,
        help="identify the language of each decoding window (up to 30 s; a pause over 4 s starts a new one) and "
        "decode it in that language: for recordings that switch language (default: one language per file)",
    )
    g.add_argument("--task", choices=choices(TranscribeOptions, "task"), default=None)
    g.add_argument("--beam-size", type=int, default=None, help="beam search width (default: greedy)")
    g.add_argument("--batch-size", type=int, default=None, help="windows per batch (default: recipe, 8)")
    g.add_argument("--initial-prompt", default=None, help="text to prime the decoder (names, spelling)")
    g.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the sampling fallback (default: recipe, 0): the same audio and seed give the same text; "
        "another seed draws other samples where a window falls back",
    )
    g.add_argument(
        "--no-vad",
        dest="vad",
        action="store_false",
        default=None,
        help="transcribe everything, including non-speech stretches",
    )
    g.add_argument("--no-word-timestamps", dest="word_timestamps", action="store_false", default=None)
    g.add_argument(
        "--word-alignment",
        choices=choices(TranscribeOptions, "word_alignment"),
        default=None,
        help="word timestamps from the decoding's own cross-attention (default) or from "
        "openai-whisper's separate alignment pass (slower)",
    )
    g.add_argument(
        "--allow-download",
        action="store_true",
        default=None,
        help="allow downloading openai-whisper weights (needs internet)",
    )
    g.add_argument("--threads", type=int, default=None, help="CPU threads")
    g.add_argument(
        "--compute-type",
        choices=choices(TranscribeOptions, "compute_type"),
        default=None,
        help="model precision (default: float16 on CUDA, float32 on CPU); bfloat16: encoder in "
        "bfloat16 (fast on CPUs with AVX512-BF16/AMX); int8: CPU only, dynamic int8 "
        "quantisation; int8_bfloat16: both. All but the default give slightly different text",
    )
    o = p.add_argument_group("output")
    o.add_argument("--output-dir", "-o", default=None, help="where to write outputs (default: current directory)")
    o.add_argument(
        "--output-format",
        "-f",
        action=CommaList,
        default=None,
        metavar="FORMATS",
        help="comma list of json,srt,vtt,txt,tsv,rttm or 'all' (default: recipe)",
    )


def add_diarizer_options(g) -> None:
    """The diariser's flags, shared by ``transcribe``/``batch`` and ``diarize``."""
    from audiotools.diarize.diarization import DiarizationOptions

    g.add_argument(
        "--diarizer",
        choices=choices(DiarizationOptions, "backend"),
        default=None,
        help="auto: pyannote when its pipeline is available offline, else builtin (segmentation-3.0 + "
        "CAM++, offline; overlapped speech gets both speakers) (default: auto)",
    )
    g.add_argument("--num-speakers", type=int, default=None, metavar="N", help="exact number of speakers")
    g.add_argument("--min-speakers", type=int, default=None, metavar="N")
    g.add_argument("--max-speakers", type=int, default=None, metavar="N")
    g.add_argument(
        "--channels",
        choices=choices(DiarizationOptions, "channels"),
        default=None,
        help="mix: diarise the mono mix; split: one speaker per channel (phone calls) (default: mix)",
    )
    g.add_argument(
        "--pyannote-pipeline",
        default=None,
        metavar="DIR_OR_CONFIG",
        help="pyannote.audio pipeline: local directory with config.yaml, or a hub id (needs a token)",
    )
    g.add_argument(
        "--hf-token",
        default=None,
        metavar="TOKEN",
        help="Hugging Face token to download a pyannote pipeline (default: $HF_TOKEN; never written to the outputs)",
    )


def add_step_options(p: argparse.ArgumentParser) -> None:
    """Flags of the finishing steps: diarisation, voiceprints, masking, provenance."""
    from audiotools.mask.masking import MaskOptions

    g = p.add_argument_group("diarisation (who spoke when)")
    g.add_argument("--no-diarize", dest="diarize", action="store_false", default=None, help="skip speaker diarisation")
    add_diarizer_options(g)

    g = p.add_argument_group("voiceprints (speaker identification)")
    g.add_argument(
        "--voiceprints",
        default=None,
        metavar="DIR",
        help="voiceprint store to name speakers from (default: $AUDIOTOOLS_VOICEPRINTS or ./voiceprints; "
        "nothing happens when it does not exist or is empty)",
    )
    g.add_argument(
        "--no-identify",
        dest="identify",
        action="store_false",
        default=None,
        help="do not name speakers from voiceprints",
    )
    g.add_argument(
        "--identify-prior",
        type=float,
        default=None,
        metavar="P",
        help="prior probability that a speaker is one of the enrolled people (default 0.5)",
    )

    g = p.add_argument_group("profanity masking")
    g.add_argument("--no-mask", dest="no_mask", action="store_true", default=None, help="do not mask obscene words")
    g.add_argument(
        "--mask-style",
        dest="mask_style",
        choices=choices(MaskOptions, "style"),
        default=None,
        help="stars: '****' (default), first: 'f***', tag: '[expletive]'",
    )
    g.add_argument(
        "--mask-words",
        dest="mask_words",
        default=None,
        metavar="FILE",
        help="extra words to mask: one word or stem* per line, # comments",
    )
    g.add_argument(
        "--allow-words", dest="allow_words", default=None, metavar="FILE", help="words never to mask (same format)"
    )
    g.add_argument(
        "--unmasked-copy",
        dest="unmasked_copy",
        default=None,
        metavar="PATH",
        help="also write the unmasked transcript JSON here (mode 0600); with several inputs put {stem} "
        "in PATH for each file's output stem, e.g. private/{stem}.raw.json",
    )

    g = p.add_argument_group("provenance")
    g.add_argument(
        "--sign-key",
        default=None,
        metavar="KEY",
        help="sign the transcript hash with this Ed25519 private key (PEM; see 'audiotools provenance keygen')",
    )
    g.add_argument(
        "--no-provenance",
        action="store_true",
        default=None,
        help="do not add the provenance block (hashes of audio, segments, models, transcript)",
    )


def step_values(args: argparse.Namespace, step: str) -> dict:
    """The options of ``step`` that the flags in ``args`` set (absent flags: None)."""
    values = {f: getattr(args, dest, None) for f, dest in FLAG_FIELDS.get(step, {}).items()}
    if step == "mask" and getattr(args, "no_mask", None):
        values = {"enabled": False}
    if step == "provenance":
        values = _provenance_values(args)
    if step == "export" and getattr(args, "output_format", None):
        values = {"formats": tuple(args.output_format)}
    return values


def _provenance_values(args: argparse.Namespace) -> dict:
    sign_key = getattr(args, "sign_key", None)
    off = bool(getattr(args, "no_provenance", None))
    if sign_key and off:
        raise UsageError("--sign-key needs provenance; drop --no-provenance")
    if sign_key:
        from audiotools.provenance.signing import load_private_key

        try:
            load_private_key(sign_key)  # fail now, not after transcribing
        except KeyFileError as e:
            raise UsageError(f"--sign-key: {e}") from None
        sign_key = str(Path(sign_key).resolve())
    return {"enabled": False if off else None, "sign_key": sign_key}


def recipe_from_args(args: argparse.Namespace):
    """The recipe named by ``--pipeline`` with every flag given applied on top."""
    from audiotools.pipeline.recipe import load_recipe
    from audiotools.pipeline.steps import STEP_ORDER

    check_language_flags(args)
    recipe = load_recipe(getattr(args, "pipeline", None))
    for step in STEP_ORDER:
        recipe = recipe.replace(step, **step_values(args, step))
    return recipe


def check_language_flags(args: argparse.Namespace) -> None:
    """Language flags given together that cannot all hold: a usage error. (A ``--language`` over a
    recipe's candidate languages is fine: the flag decides.)"""
    from audiotools.errors import UsageError

    forced = getattr(args, "language", None)
    if not forced:
        return
    if getattr(args, "language_per_window", None):
        raise UsageError(
            f"--language {forced} and --language-per-window: a forced language is not identified per window"
        )
    candidates = getattr(args, "languages", None)
    if candidates:
        from audiotools.asr.language import check_language

        codes = [check_language(str(c)) for c in candidates if str(c).strip()]  # CommaList: a list
        if check_language(forced) not in codes:
            raise UsageError(f"--language {forced} is not among --languages {','.join(codes)}")


def diarization_options(args: argparse.Namespace):
    """``audiotools diarize``'s options: its flags over the defaults."""
    from audiotools.diarize.diarization import DiarizationOptions

    return DiarizationOptions().replace(device=getattr(args, "device", None), **step_values(args, "diarize"))


# the quality gate of `verify` and `identify`: option field -> argparse dest
QUALITY_FLAGS = {"min_net_speech": "min_net_speech", "min_snr_db": "min_snr", "force": "force"}


def add_quality_options(p: argparse.ArgumentParser) -> None:
    """``--min-net-speech``, ``--min-snr``, ``--force`` (QualityOptions) for ``verify`` and ``identify``."""
    from audiotools.speakers.quality import QualityOptions

    d = QualityOptions()
    g = p.add_argument_group("quality gate")
    g.add_argument(
        "--min-net-speech",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds of net speech a compared speaker needs for a likelihood ratio (default {d.min_net_speech:g})",
    )
    g.add_argument(
        "--min-snr",
        type=float,
        default=None,
        metavar="DB",
        help=f"estimated SNR a compared speaker needs for a likelihood ratio (default {d.min_snr_db:g} dB)",
    )
    g.add_argument(
        "--force",
        action="store_true",
        default=None,
        help="give the likelihood ratio below the quality thresholds too (flagged as a quality warning)",
    )


def quality_options(args: argparse.Namespace):
    """The QualityOptions of the quality-gate flags (a flag left out keeps the default)."""
    from audiotools.speakers.quality import QualityOptions

    return QualityOptions().replace(**{f: getattr(args, d, None) for f, d in QUALITY_FLAGS.items()})
