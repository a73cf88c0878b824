"""``audiotools transcribe FILE... --output-dir D``"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audiotools.errors import AudiotoolsError, UsageError
from audiotools.cli.common import CommaList, console, info, quiet


def add_transcribe_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``transcribe`` and ``batch``; None means 'as the recipe says'."""
    g = p.add_argument_group("transcription")
    g.add_argument("--pipeline", default=None, metavar="NAME|PATH",
                   help="pipeline recipe (default: 'default'; see pipelines/)")
    g.add_argument("--model", "-m", default=None,
                   help="model name (tiny.en, base, small, large-v3 ...), openai .pt file or CTranslate2 directory")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="default: auto")
    g.add_argument("--language", "-l", default=None, help="language code (en, ru, uk, be ...); default: detect")
    g.add_argument("--task", choices=["transcribe", "translate"], default=None)
    g.add_argument("--beam-size", type=int, default=None, help="beam search width (default: greedy)")
    g.add_argument("--batch-size", type=int, default=None, help="windows per batch (default: recipe, 8)")
    g.add_argument("--initial-prompt", default=None, help="text to prime the decoder (names, spelling)")
    g.add_argument("--no-vad", dest="vad", action="store_false", default=None,
                   help="transcribe everything, including non-speech stretches")
    g.add_argument("--no-word-timestamps", dest="word_timestamps", action="store_false", default=None)
    g.add_argument("--word-alignment", choices=["decoding", "pass"], default=None,
                   help="word timestamps from the decoding's own cross-attention (default) or from "
                        "openai-whisper's separate alignment pass (slower)")
    g.add_argument("--allow-download", action="store_true", default=None,
                   help="allow downloading openai-whisper weights (needs internet)")
    g.add_argument("--threads", type=int, default=None, help="CPU threads")
    g.add_argument("--compute-type", choices=["float32", "float16", "bfloat16", "int8", "int8_bfloat16"], default=None,
                   help="model precision (default: float16 on CUDA, float32 on CPU); bfloat16: encoder in "
                        "bfloat16 (fast on CPUs with AVX512-BF16/AMX); int8: CPU only, dynamic int8 "
                        "quantisation; int8_bfloat16: both. All but the default give slightly different text")
    o = p.add_argument_group("output")
    o.add_argument("--output-dir", "-o", default=None, help="where to write outputs (default: current directory)")
    o.add_argument("--output-format", "-f", action=CommaList, default=None, metavar="FORMATS",
                   help="comma list of json,srt,vtt,txt,tsv,rttm or 'all' (default: recipe)")


def recipe_from_args(args) -> dict:
    from audiotools.pipeline.recipe import load_recipe, override
    from audiotools.export.writers import parse_formats
    recipe = load_recipe(args.pipeline)
    recipe = override(recipe, "transcribe", model=args.model, device=args.device, language=args.language,
                      task=args.task, beam_size=args.beam_size, batch_size=args.batch_size,
                      initial_prompt=args.initial_prompt, vad=args.vad, word_timestamps=args.word_timestamps,
                      word_alignment=getattr(args, "word_alignment", None),
                      allow_download=args.allow_download, threads=args.threads,
                      compute_type=getattr(args, "compute_type", None))
    if args.output_format:
        recipe = override(recipe, "export", formats=parse_formats(args.output_format))
    if args.beam_size is not None and args.beam_size < 1:
        raise UsageError("--beam-size must be at least 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    from audiotools.pipeline.recipe import STEP_ORDER, step_module
    for step in STEP_ORDER[1:-1]:
        mod = step_module(step)
        if mod is not None and hasattr(mod, "cli_overrides"):
            values = {k: v for k, v in (mod.cli_overrides(args) or {}).items() if v is not None}
            if values:
                recipe = override(recipe, step, **values)
    return recipe


def add_step_options(p: argparse.ArgumentParser) -> None:
    """Flags of the installed pipeline steps (diarisation, voiceprints, masking, provenance)."""
    from audiotools.pipeline.recipe import STEP_ORDER, step_module
    for step in STEP_ORDER[1:-1]:
        mod = step_module(step)
        if mod is not None and hasattr(mod, "add_cli_options"):
            mod.add_cli_options(p)


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio/video files (one output set per file)",
                       description="Transcribe files with Whisper: segments, word timestamps, exports.",
                       )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio or video files")
    add_transcribe_options(p)
    add_step_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from audiotools.pipeline.recipe import run_file, transcribe_options
    from audiotools.asr.transcribe import Transcriber

    recipe = recipe_from_args(args)
    out_dir = Path(args.output_dir or ".")
    transcriber = None
    failures = 0
    for f in args.files:
        t0 = time.perf_counter()
        try:
            if transcriber is None:
                transcriber = Transcriber(transcribe_options(recipe))
            job = run_file(f, recipe, out_dir, transcriber=transcriber)
        except AudiotoolsError as e:
            if len(args.files) == 1:
                raise
            console.print(f"[bold red]error:[/] {e}")
            failures += 1
            continue
        t = job.transcript
        took = time.perf_counter() - t0
        if not quiet():
            _print_summary(t, job.outputs, took)
    return 1 if failures else 0


def _print_summary(t, outputs, took: float) -> None:
    from rich.table import Table
    dur = t.audio.duration
    info(f"[bold]{t.audio.path}[/]: {dur:.1f} s audio, language [cyan]{t.language}[/], "
         f"{len(t.segments)} segments, {took:.1f} s ({dur / took if took else 0:.1f}x real time)")
    for w in t.extra.get("warnings", []):
        console.print(f"[yellow]warning:[/] {t.audio.path}: {w}")
    if outputs:
        table = Table(show_header=False, box=None, padding=(0, 1))
        for fmt, path in outputs.items():
            table.add_row(f"[dim]{fmt}[/]", str(path))
        console.print(table)
