"""Batch transcription throughput and accuracy: the audiotools batch engine vs openai-whisper's
sequential ``transcribe``, faster-whisper's ``BatchedInferencePipeline`` and (``--hf-baseline``) the
Hugging Face transformers ASR pipeline with batching, all on the same Whisper weights and files.

    python benchmarks/batch.py                                   # CPU, ~14 min of audio, base
    python benchmarks/batch.py --device cuda --hf-baseline       # GPU: the corpus repeated to >= 2 h
    python benchmarks/batch.py --quick --systems audiotools,openai-whisper     # a smoke run

Every system runs in its own fresh process (``--worker``), loads its model and warms up on a
short file before the clock starts; timed work is everything from the files to the text:
  audiotools           the batch engine as ``audiotools batch`` runs it (decode workers + VAD +
                       cross-file batches + word timestamps), without the finishing steps; its
                       decode workers are started before the clock as the model is loaded
                       (spawned, FFmpeg and the VAD model loaded; no file decoded)
  audiotools-int8      the same engine with ``compute_type="int8"`` (CPU: dynamic int8 quantisation
                       of every Linear layer and the vocabulary projection, audiotools/quantize.py);
                       likewise audiotools-bfloat16 (bfloat16 encoder) and audiotools-int8_bfloat16
  audiotools-pipeline  ``audiotools batch`` end to end (``run_batch``: engine + the recipe's
                       identify/mask/provenance (+ diarize when installed) + every export, atomic),
                       decode workers' start-up included
  openai-whisper       ``whisper.transcribe`` file by file on the same weights, as openai-whisper
                       holds them (``audiotools.asr.models.load_model``: no engine re-layout), given
                       pre-decoded arrays (no ffmpeg binary here; decoding is not timed for it)
  faster-whisper       ``BatchedInferencePipeline`` on the same CTranslate2 weights (int8 and float32
                       on CPU, float16 on CUDA), decoding the files itself
  hf                   transformers ``pipeline("automatic-speech-recognition")`` with
                       ``batch_size`` and 30 s chunking, built from the same weights (mapped here)
WER: openai-whisper's English normaliser, corpus level, over the files with references
(jfk, samples/conversation, samples/phone_call); LibriSpeech files have no transcripts here, so
systems are compared by agreement (WER of one system's text against another's).
Results: benchmarks/results/batch.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import JFK_TEXT, ROOT, SHARED, WORK, concat, corpus_wer, machine, sample_reference, write_result

CORPUS = WORK / "batch"
AUDIOTOOLS_COMPUTE = ("int8", "bfloat16", "int8_bfloat16")  # audiotools-<compute type> systems
SYSTEMS = [
    "audiotools",
    "audiotools-int8",
    "audiotools-bfloat16",
    "audiotools-int8_bfloat16",
    "audiotools-pipeline",
    "openai-whisper",
    "faster-whisper-int8",
    "faster-whisper-fp32",
    "faster-whisper-fp16",
    "hf",
]


# ---------------------------------------------------------------- corpus


def build_corpus(quick: bool = False) -> list[dict]:
    """~14.5 min of English: LibriSpeech speakers and cohort utterances concatenated into 1-2.5 min
    files, plus jfk and the bundled samples (with references)."""
    import soundfile as sf

    CORPUS.mkdir(parents=True, exist_ok=True)
    files: list[dict] = [
        {"path": SHARED / "speech" / "jfk.flac", "ref": JFK_TEXT},
        {"path": ROOT / "samples" / "conversation.wav", "ref": sample_reference("conversation")},
        {"path": ROOT / "samples" / "phone_call.wav", "ref": sample_reference("phone_call")},
    ]
    if quick:
        cohort = sorted((SHARED / "speakers" / "cohort").glob("*.flac"))[:6]
        p = CORPUS / "quick_cohort.wav"
        if not p.exists():
            sf.write(p, concat(cohort, gap=1.0), 16000)
        return files + [{"path": p, "ref": None}]
    files.append({"path": SHARED / "diarization" / "sample.wav", "ref": None})
    for spk in ("1688", "1998", "2033", "2414", "2609"):
        p = CORPUS / f"librispeech_{spk}.wav"
        if not p.exists():
            sf.write(p, concat(sorted((SHARED / "speakers" / spk).glob("*.flac")), gap=1.0), 16000)
        files.append({"path": p, "ref": None})
    cohort = sorted((SHARED / "speakers" / "cohort").glob("*.flac"))
    for k in range(3):
        p = CORPUS / f"cohort_{k}.wav"
        if not p.exists():
            sf.write(p, concat(cohort[k * 10 : (k + 1) * 10], gap=1.5), 16000)
        files.append({"path": p, "ref": None})
    return files


def repeat_corpus(files: list[dict], hours: float) -> list[dict]:
    """Hard-linked (or copied) copies of the corpus until it holds ``hours`` of audio (GPU runs)."""
    import soundfile as sf

    total = sum(sf.info(str(f["path"])).duration for f in files)
    n = max(1, int(hours * 3600 / total + 0.999))
    if n == 1:
        return files
    d = CORPUS / f"x{n}"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for r in range(n):
        for f in files:
            src = Path(f["path"])
            dst = d / f"r{r:03d}_{src.name}"
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy(src, dst)
            out.append({"path": dst, "ref": f["ref"], "copy_of": src.name})
    return out


# ---------------------------------------------------------------- GPU utilisation


class GpuSampler:
    """Samples GPU utilisation (%) and memory while the timed work runs (nvidia-smi, else pynvml)."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.samples, self.mem = interval, [], []
        self._stop = threading.Event()
        self._thread = None
        self._proc = None

    def start(self):
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    f"-lms={int(self.interval * 1000)}",
                    "-i",
                    os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0],
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._thread = threading.Thread(target=self._read_smi, daemon=True)
        else:
            self._thread = threading.Thread(target=self._poll_torch, daemon=True)
        self._thread.start()
        return self

    def _read_smi(self):
        for line in self._proc.stdout:
            try:
                u, m = (float(x) for x in line.strip().split(","))
            except ValueError:
                continue
            self.samples.append(u)
            self.mem.append(m)

    def _poll_torch(self):
        import torch

        while not self._stop.wait(self.interval):
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:
                return

    def stop(self) -> dict | None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if not self.samples:
            return None
        s = sorted(self.samples)
        out = {
            "mean_percent": round(sum(s) / len(s), 1),
            "median_percent": s[len(s) // 2],
            "max_percent": s[-1],
            "samples": len(s),
            "interval_s": self.interval,
        }
        if self.mem:
            out["max_memory_mib"] = max(self.mem)
        return out


# ---------------------------------------------------------------- systems (each in its own process)


def _sync(device: str):
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run_audiotools(files, args, compute_type: str | None = None) -> dict:
    """The batch engine: decode workers -> VAD windows -> cross-file batches (no finishing steps)."""
    from audiotools.asr.transcribe import EngineItem, TranscribeOptions, Transcriber
    from audiotools.audio.decode import load_audio
    from audiotools.batch.prefetch import Prefetcher, PrepareOptions, default_workers

    opts = TranscribeOptions(
        model=args.model,
        device=args.device,
        language=args.language,
        batch_size=args.batch_size,
        word_timestamps=args.words,
        threads=args.threads,
        compute_type=compute_type,
    )
    tr = Transcriber(opts)
    list(
        tr.transcribe_many([EngineItem(0, load_audio(SHARED / "speech" / "jfk.flac").samples, language=args.language)])
    )  # warm-up
    workers = args.workers if args.workers is not None else default_workers(str(tr.device))
    # the decode workers are started like the model is loaded, before the clock: spawned, FFmpeg
    # and the VAD model loaded (Prefetcher.warm_up, no file touched); decoding and VAD are timed
    pf = Prefetcher([f["path"] for f in files], PrepareOptions(vad=opts.vad), workers=workers)
    warm = pf.warm_up()
    _sync(args.device)
    sampler = GpuSampler().start() if args.device.startswith("cuda") else None
    t0 = time.perf_counter()
    texts, durations, windows = {}, {}, 0

    def items():
        for p in pf:
            if p.error:
                raise RuntimeError(p.error)
            durations[p.index] = p.audio.duration
            yield EngineItem(key=p.index, samples=p.audio.samples, windows=p.windows, language=args.language)

    for key, segments, _language, stats in tr.transcribe_many(items()):
        texts[key] = " ".join(s.text.strip() for s in segments)
        windows += stats["windows"]
    _sync(args.device)
    elapsed = time.perf_counter() - t0
    gpu = sampler.stop() if sampler else None
    return {
        "seconds": elapsed,
        "texts": [texts[i] for i in range(len(files))],
        "gpu": gpu,
        "details": {
            "workers": workers,
            "batch_size": args.batch_size,
            "windows": windows,
            "device": str(tr.device),
            "dtype": str(tr.dtype),
            "compute_type": tr.compute_type,
            "worker_start_seconds": round(warm, 2),
        },
    }


def run_pipeline(files, args) -> dict:
    """``audiotools batch`` end to end with the recipe (``--pipeline``), into a temporary folder."""
    from audiotools.asr.transcribe import Transcriber
    from audiotools.audio.decode import load_audio
    from audiotools.batch.engine import BatchOptions
    from audiotools.batch.run import run_batch
    from audiotools.pipeline.recipe import load_recipe

    # the identify step caches speaker embeddings by PCM hash; the GPU corpus repeats its files, so
    # a warm cache would serve every copy after the first: time the work, not the cache
    os.environ["AUDIOTOOLS_NO_EMBEDDING_CACHE"] = "1"
    recipe = load_recipe(args.pipeline)
    recipe = recipe.replace(
        "transcribe",
        model=args.model,
        device=args.device,
        language=args.language,
        batch_size=args.batch_size,
        word_timestamps=args.words,
        threads=args.threads,
    )
    tr = Transcriber(recipe.options("transcribe"))
    tr.transcribe(load_audio(SHARED / "speech" / "jfk.flac"))  # warm-up
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        lst = Path(tmp) / "files.lst"
        lst.write_text("\n".join(str(f["path"]) for f in files) + "\n")
        # a throwaway run on one file warms up the finishing steps (models they load)
        run_batch(
            [str(SHARED / "speech" / "jfk.flac")],
            recipe,
            BatchOptions(output_dir=Path(tmp) / "warm", workers=0),
            transcriber=tr,
        )
        _sync(args.device)
        sampler = GpuSampler().start() if args.device.startswith("cuda") else None
        t0 = time.perf_counter()
        res = run_batch(
            [str(lst)], recipe, BatchOptions(output_dir=Path(tmp) / "out", workers=args.workers), transcriber=tr
        )
        _sync(args.device)
        elapsed = time.perf_counter() - t0
        gpu = sampler.stop() if sampler else None
        failed = [r.error for r in res.records if r.status != "ok"]
        texts = []
        step_seconds: dict[str, float] = {}  # summed over files (finishing threads overlap the engine)
        for r in res.records:
            js = next((Path(tmp) / "out" / o for o in r.outputs if o.endswith(".json")), None)
            doc = json.loads(js.read_text()) if js and js.exists() else {"segments": []}
            texts.append(" ".join(s["text"].strip() for s in doc["segments"]))
            for step, sec in ((doc.get("stats") or {}).get("step_seconds") or {}).items():
                step_seconds[step] = round(step_seconds.get(step, 0.0) + sec, 3)
    steps = [s for s in recipe.steps if recipe.enabled(s)]
    return {
        "seconds": elapsed,
        "texts": texts,
        "gpu": gpu,
        "details": {
            "recipe": recipe.name,
            "steps": steps,
            "failed": failed,
            "step_seconds": step_seconds,
            **res.info,
        },
    }


def run_openai_whisper(files, args) -> dict:
    import torch
    import whisper

    from audiotools.asr.models import load_model
    from audiotools.audio.decode import load_audio

    fp16 = args.device.startswith("cuda")
    # the plain openai-whisper module as whisper.load_model gives it: float32 parameters (cast per
    # call to float16 when fp16=True, as openai-whisper does on CUDA), not the engine's get_model
    # with its re-laid-out CPU weights
    model, _ = load_model(args.model, args.device, dtype=torch.float32)
    audio = [load_audio(f["path"]).samples for f in files]  # pre-decoded: not timed
    whisper.transcribe(
        model,
        load_audio(SHARED / "speech" / "jfk.flac").samples,
        fp16=fp16,
        language=args.language,
        word_timestamps=args.words,
        verbose=None,
    )
    _sync(args.device)
    sampler = GpuSampler().start() if args.device.startswith("cuda") else None
    t0 = time.perf_counter()
    texts = [
        whisper.transcribe(model, a, fp16=fp16, language=args.language, word_timestamps=args.words, verbose=None)[
            "text"
        ].strip()
        for a in audio
    ]
    _sync(args.device)
    elapsed = time.perf_counter() - t0
    gpu = sampler.stop() if sampler else None
    return {
        "seconds": elapsed,
        "texts": texts,
        "gpu": gpu,
        "details": {"condition_on_previous_text": True, "fp16": fp16},
    }


def run_faster_whisper(files, args, compute_type: str) -> dict:
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from transcribe_cpu import joined_ct2_dir

    device = "cuda" if args.device.startswith("cuda") else "cpu"
    model = WhisperModel(
        str(joined_ct2_dir(args.model)),
        device=device,
        compute_type=compute_type,
        cpu_threads=args.threads or (os.cpu_count() or 1),
    )
    pipe = BatchedInferencePipeline(model=model)

    def one(path):
        segs, _ = pipe.transcribe(
            str(path), batch_size=args.batch_size, language=args.language, word_timestamps=args.words, beam_size=1
        )
        return " ".join(s.text.strip() for s in segs)

    one(SHARED / "speech" / "jfk.flac")
    sampler = GpuSampler().start() if device == "cuda" else None
    t0 = time.perf_counter()
    texts = [one(f["path"]) for f in files]
    elapsed = time.perf_counter() - t0
    gpu = sampler.stop() if sampler else None
    return {
        "seconds": elapsed,
        "texts": texts,
        "gpu": gpu,
        "details": {"compute_type": compute_type, "batch_size": args.batch_size, "beam_size": 1},
    }


# -- transformers: a WhisperForConditionalGeneration built from the openai-whisper module's weights


def hf_model_from_whisper(model, tokenizer_json: Path | None):
    """(WhisperForConditionalGeneration, WhisperProcessor) with the weights of an openai-whisper module."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )
    from whisper.tokenizer import LANGUAGES, get_tokenizer

    d = model.dims
    cfg = WhisperConfig(
        vocab_size=d.n_vocab,
        num_mel_bins=d.n_mels,
        d_model=d.n_audio_state,
        encoder_layers=d.n_audio_layer,
        encoder_attention_heads=d.n_audio_head,
        decoder_layers=d.n_text_layer,
        decoder_attention_heads=d.n_text_head,
        encoder_ffn_dim=4 * d.n_audio_state,
        decoder_ffn_dim=4 * d.n_text_state,
        max_source_positions=d.n_audio_ctx,
        max_target_positions=d.n_text_ctx,
        decoder_start_token_id=50258 if model.is_multilingual else 50257,
        pad_token_id=50257 if model.is_multilingual else 50256,
        bos_token_id=50257 if model.is_multilingual else 50256,
        eos_token_id=50257 if model.is_multilingual else 50256,
    )
    sd = {}
    src = dict(model.state_dict().items())

    def put(hf, oa):
        sd[hf] = src[oa]

    for side, n_layers in (("encoder", d.n_audio_layer), ("decoder", d.n_text_layer)):
        for i in range(n_layers):
            o, h = f"{side}.blocks.{i}", f"model.{side}.layers.{i}"
            for a, b in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"), ("out", "out_proj")):
                put(f"{h}.self_attn.{b}.weight", f"{o}.attn.{a}.weight")
                if a != "key":
                    put(f"{h}.self_attn.{b}.bias", f"{o}.attn.{a}.bias")
                if side == "decoder":
                    put(f"{h}.encoder_attn.{b}.weight", f"{o}.cross_attn.{a}.weight")
                    if a != "key":
                        put(f"{h}.encoder_attn.{b}.bias", f"{o}.cross_attn.{a}.bias")
            for p in ("weight", "bias"):
                put(f"{h}.self_attn_layer_norm.{p}", f"{o}.attn_ln.{p}")
                put(f"{h}.fc1.{p}", f"{o}.mlp.0.{p}")
                put(f"{h}.fc2.{p}", f"{o}.mlp.2.{p}")
                put(f"{h}.final_layer_norm.{p}", f"{o}.mlp_ln.{p}")
                if side == "decoder":
                    put(f"{h}.encoder_attn_layer_norm.{p}", f"{o}.cross_attn_ln.{p}")
    for p in ("weight", "bias"):
        put(f"model.encoder.conv1.{p}", f"encoder.conv1.{p}")
        put(f"model.encoder.conv2.{p}", f"encoder.conv2.{p}")
        put(f"model.encoder.layer_norm.{p}", f"encoder.ln_post.{p}")
        put(f"model.decoder.layer_norm.{p}", f"decoder.ln.{p}")
    sd["model.encoder.embed_positions.weight"] = model.encoder.positional_embedding.detach().clone()
    put("model.decoder.embed_positions.weight", "decoder.positional_embedding")
    put("model.decoder.embed_tokens.weight", "decoder.token_embedding.weight")
    sd["proj_out.weight"] = src["decoder.token_embedding.weight"]
    hf = WhisperForConditionalGeneration(cfg)
    missing, unexpected = hf.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}")
    # generation config (normally downloaded with the model): from openai-whisper's tokenizer
    tok = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
    gen = GenerationConfig(
        decoder_start_token_id=tok.sot,
        eos_token_id=tok.eot,
        pad_token_id=tok.eot,
        bos_token_id=tok.eot,
        max_length=d.n_text_ctx,
        no_timestamps_token_id=tok.no_timestamps,
        is_multilingual=model.is_multilingual,
        suppress_tokens=sorted(tok.non_speech_tokens),
        begin_suppress_tokens=[tok.encode(" ")[0], tok.eot],
        forced_decoder_ids=None,
        return_timestamps=False,
        alignment_heads=[list(map(int, p)) for p in model.alignment_heads.indices().T.tolist()],
        prev_sot_token_id=tok.sot_prev,
    )
    if model.is_multilingual:
        codes = list(LANGUAGES)[: model.num_languages]
        gen.lang_to_id = {f"<|{c}|>": tok.sot + 1 + i for i, c in enumerate(codes)}
        gen.task_to_id = {"transcribe": tok.transcribe, "translate": tok.translate}
    hf.generation_config = gen
    if tokenizer_json is None or not tokenizer_json.exists():
        raise RuntimeError("no tokenizer.json beside the CTranslate2 weights for the HF tokenizer")
    special = tok.decode([tok.eot])  # <|endoftext|>
    hf_tok = WhisperTokenizerFast(
        tokenizer_file=str(tokenizer_json), unk_token=special, bos_token=special, eos_token=special, pad_token=special
    )
    fe = WhisperFeatureExtractor(feature_size=d.n_mels)
    return hf, WhisperProcessor(feature_extractor=fe, tokenizer=hf_tok)


def run_hf(files, args) -> dict:
    try:
        import torch
        import transformers
        from transformers import pipeline
    except ImportError:
        return {"skipped": "transformers is not installed (pip install transformers)"}
    from transcribe_cpu import joined_ct2_dir

    from audiotools.asr.models import load_model
    from audiotools.audio.decode import load_audio

    wmodel, _ = load_model(args.model, "cpu", dtype=torch.float32)
    hf, processor = hf_model_from_whisper(wmodel, joined_ct2_dir(args.model) / "tokenizer.json")
    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    hf = hf.to(device=args.device, dtype=dtype).eval()
    with contextlib.suppress(Exception):
        hf.config._attn_implementation = "sdpa"
    asr = pipeline(
        "automatic-speech-recognition",
        model=hf,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        device=torch.device(args.device),
        torch_dtype=dtype,
        chunk_length_s=30,
        batch_size=args.batch_size,
    )
    gen_kwargs = {"language": args.language, "task": "transcribe"} if wmodel.is_multilingual and args.language else {}
    audio = [load_audio(f["path"]).samples for f in files]  # pre-decoded, like openai-whisper
    asr(
        {"raw": load_audio(SHARED / "speech" / "jfk.flac").samples, "sampling_rate": 16000},
        generate_kwargs=gen_kwargs,
        return_timestamps=args.words and "word" or False,
    )
    _sync(args.device)
    sampler = GpuSampler().start() if args.device.startswith("cuda") else None
    t0 = time.perf_counter()
    outs = asr(
        [{"raw": a, "sampling_rate": 16000} for a in audio],
        generate_kwargs=gen_kwargs,
        return_timestamps=args.words and "word" or False,
    )
    _sync(args.device)
    elapsed = time.perf_counter() - t0
    gpu = sampler.stop() if sampler else None
    return {
        "seconds": elapsed,
        "texts": [o["text"].strip() for o in outs],
        "gpu": gpu,
        "details": {
            "transformers": transformers.__version__,
            "dtype": str(dtype),
            "chunk_length_s": 30,
            "batch_size": args.batch_size,
            "word_timestamps": bool(args.words),
        },
    }


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM; each system runs in its own process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def worker(system: str, args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    files = json.loads(Path(args.files_json).read_text())
    if system == "audiotools":
        return run_audiotools(files, args)
    if system.startswith("audiotools-") and system[len("audiotools-") :] in AUDIOTOOLS_COMPUTE:
        return run_audiotools(files, args, compute_type=system[len("audiotools-") :])
    if system == "audiotools-pipeline":
        return run_pipeline(files, args)
    if system == "openai-whisper":
        return run_openai_whisper(files, args)
    if system.startswith("faster-whisper-"):
        ct = {"int8": "int8", "fp32": "float32", "fp16": "float16"}[system.rsplit("-", 1)[1]]
        return run_faster_whisper(files, args, ct)
    if system == "hf":
        return run_hf(files, args)
    raise SystemExit(f"unknown system {system}")


# ---------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--model", default="base")
    ap.add_argument("--language", default="en", help="forced for every system (the corpus is English)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: 16 on CPU, 32 on CUDA")
    ap.add_argument("--threads", type=int, default=None, help="torch/CT2 threads (default: all cores)")
    ap.add_argument("--workers", type=int, default=None, help="audiotools decode workers (default: by device)")
    ap.add_argument("--no-words", dest="words", action="store_false", help="no word timestamps (all systems)")
    ap.add_argument("--systems", default=None, help=f"comma list of {','.join(SYSTEMS)}")
    ap.add_argument("--hf-baseline", action="store_true", help="also run the transformers pipeline")
    ap.add_argument("--pipeline", default=None, help="recipe for audiotools-pipeline (default: gpu-batch on CUDA)")
    ap.add_argument(
        "--hours", type=float, default=None, help="repeat the corpus to this much audio (default: 2 on CUDA)"
    )
    ap.add_argument("--quick", action="store_true", help="a few files only (smoke test)")
    ap.add_argument("--out", default=None, help="result name (default: batch, or batch_quick)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--files-json", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    if args.batch_size is None:
        args.batch_size = 32 if cuda else 16
    if args.pipeline is None:
        args.pipeline = "gpu-batch" if cuda else "default"
    if args.worker:
        res = worker(args.worker, args)
        res["peak_rss_mb"] = peak_rss_mb()
        Path(args.result_json).write_text(json.dumps(res))
        return

    import soundfile as sf

    files = build_corpus(args.quick)
    hours = args.hours if args.hours is not None else (2.0 if cuda and not args.quick else 0.0)
    if hours:
        files = repeat_corpus(files, hours)
    durations = [sf.info(str(f["path"])).duration for f in files]
    total = sum(durations)
    systems = (
        args.systems.split(",")
        if args.systems
        else (
            ["audiotools"]
            + ([] if cuda else ["audiotools-int8", "audiotools-bfloat16", "audiotools-int8_bfloat16"])
            + ["audiotools-pipeline", "openai-whisper"]
            + (["faster-whisper-fp16"] if cuda else ["faster-whisper-int8", "faster-whisper-fp32"])
            + (["hf"] if args.hf_baseline else [])
        )
    )
    print(
        f"{len(files)} files, {total / 60:.1f} min of audio, model {args.model}, device {args.device}, "
        f"batch {args.batch_size}, word timestamps {args.words}",
        flush=True,
    )
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fj = Path(tmp) / "files.json"
        fj.write_text(json.dumps([{"path": str(f["path"]), "ref": f["ref"]} for f in files]))
        for system in systems:
            rj = Path(tmp) / f"{system}.json"
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                system,
                "--files-json",
                str(fj),
                "--result-json",
                str(rj),
                "--device",
                args.device,
                "--model",
                args.model,
                "--language",
                args.language,
                "--batch-size",
                str(args.batch_size),
                "--pipeline",
                args.pipeline,
            ]
            for flag, v in (("--threads", args.threads), ("--workers", args.workers)):
                if v is not None:
                    cmd += [flag, str(v)]
            if not args.words:
                cmd.append("--no-words")
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0 or not rj.exists():
                err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                results[system] = {"error": err}
                print(f"{system:22s} FAILED: {err}", flush=True)
                continue
            r = json.loads(rj.read_text())
            if "skipped" in r:
                results[system] = r
                print(f"{system:22s} skipped: {r['skipped']}", flush=True)
                continue
            pairs = [(f["ref"], t) for f, t in zip(files, r["texts"]) if f["ref"]]
            r["wer"] = round(corpus_wer(pairs), 4) if pairs else None
            r["x_real_time"] = round(total / r["seconds"], 2)
            r["seconds"] = round(r["seconds"], 2)
            r["process_seconds"] = round(time.perf_counter() - t0, 1)
            results[system] = r
            gpu = f"  GPU util mean {r['gpu']['mean_percent']}%" if r.get("gpu") else ""
            rss = f"  peak RSS {r['peak_rss_mb']:.0f} MB" if r.get("peak_rss_mb") else ""
            print(
                f"{system:22s} {r['seconds']:8.2f} s  {r['x_real_time']:9.2f}x real time  WER {r['wer']}{rss}{gpu}",
                flush=True,
            )

    def agreement(a: str, b: str) -> float | None:
        if "texts" not in results.get(a, {}) or "texts" not in results.get(b, {}):
            return None
        pairs = [(tb, ta) for f, ta, tb in zip(files, results[a]["texts"], results[b]["texts"]) if not f["ref"]]
        return round(corpus_wer(pairs), 4) if pairs else None

    def ratio(a: str, b: str) -> float | None:
        if "seconds" not in results.get(a, {}) or "seconds" not in results.get(b, {}):
            return None
        return round(results[b]["seconds"] / results[a]["seconds"], 2)

    ratios = {f"audiotools_vs_{s}_speed": ratio("audiotools", s) for s in systems if s != "audiotools"}
    variants = [s for s in systems if s.startswith("audiotools-") and s[len("audiotools-") :] in AUDIOTOOLS_COMPUTE]
    for v in variants:
        ratios.update({f"{v}_vs_{s}_speed": ratio(v, s) for s in systems if s not in ("audiotools", v)})
    ratios["audiotools_pipeline_vs_openai-whisper_speed"] = ratio("audiotools-pipeline", "openai-whisper")
    wer_delta = None
    if (
        results.get("audiotools", {}).get("wer") is not None
        and results.get("openai-whisper", {}).get("wer") is not None
    ):
        wer_delta = round(results["audiotools"]["wer"] - results["openai-whisper"]["wer"], 4)
    variant_deltas = {
        f"wer_{v.replace('-', '_')}_minus_audiotools": round(results[v]["wer"] - results["audiotools"]["wer"], 4)
        for v in variants
        if results.get("audiotools", {}).get("wer") is not None and results.get(v, {}).get("wer") is not None
    }
    agreements = {
        f"audiotools_vs_{s}_wer_on_librispeech": agreement("audiotools", s) for s in systems if s != "audiotools"
    }
    for v in variants:
        agreements.update(
            {f"{v}_vs_{s}_wer_on_librispeech": agreement(v, s) for s in systems if s not in ("audiotools", v)}
        )
    for k, v in {**ratios, **agreements, "wer_audiotools_minus_openai_whisper": wer_delta, **variant_deltas}.items():
        if v is not None:
            print(f"{k}: {v}")
    # texts of one copy of each file only (the GPU corpus repeats them)
    n_unique = len({f.get("copy_of", str(f["path"])) for f in files})
    for r in results.values():
        if "texts" in r:
            r["texts"] = {Path(f["path"]).name: t for f, t in list(zip(files, r["texts"]))[:n_unique]}
    name = args.out or ("batch_quick" if args.quick else ("batch_cuda" if cuda else "batch"))
    out = write_result(
        name,
        {
            "model": args.model,
            "device": args.device,
            "language": args.language,
            "batch_size": args.batch_size,
            "word_timestamps": args.words,
            "files": len(files),
            "audio_seconds": round(total, 2),
            "wer_files": sorted({Path(f["path"]).name for f in files if f["ref"]}),
            "machine": machine(),
            "systems": results,
            "ratios": ratios,
            "agreement_wer": agreements,
            "wer_audiotools_minus_openai_whisper": wer_delta,
            **variant_deltas,
            "notes": "Each system in a fresh process, model loaded and warmed up before timing. openai-whisper gets "
            "pre-decoded arrays; audiotools and faster-whisper decode the files inside the timed region "
            "(audiotools' decode worker processes are started before it, as models are loaded). "
            "Agreement WER: LibriSpeech/cohort files, the other system's text as the reference.",
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
