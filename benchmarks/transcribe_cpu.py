"""CPU transcription speed and accuracy: audiotools vs openai-whisper's transcribe() vs faster-whisper int8.

All three use the same Whisper base weights (the offline CTranslate2 package; audiotools and
openai-whisper run the converted torch module, faster-whisper runs the CTranslate2 file itself),
the same audio and greedy decoding, measured side by side in one run. Model loading is excluded;
each system is warmed up first. Usage: python benchmarks/transcribe_cpu.py [--model base] [--repeat 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import JFK_TEXT, SHARED, WORK, concat, corpus_wer, machine, sample_reference, write_result


def build_files() -> list[dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    longer = WORK / "librispeech_1688.wav"
    if not longer.exists():
        files = sorted((SHARED / "speakers" / "1688").glob("*.flac"))
        sf.write(longer, concat(files, gap=1.5), 16000)
    return [
        {"path": SHARED / "speech" / "jfk.flac", "ref": JFK_TEXT},
        {
            "path": Path(__file__).resolve().parents[1] / "samples" / "conversation.wav",
            "ref": sample_reference("conversation"),
        },
        {"path": SHARED / "diarization" / "sample.wav", "ref": None},
        {"path": longer, "ref": None},
    ]


def joined_ct2_dir(model: str) -> Path:
    from audiotools.asr.models import ct2_files, resolve

    src = resolve(model, allow_download=False)
    bins, cfg_dir = ct2_files(src)
    if bins == [cfg_dir / "model.bin"]:
        return cfg_dir  # a CTranslate2 directory with one model.bin already
    d = WORK / f"ct2-{model}"
    if not (d / "model.bin").exists():
        d.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
            if (cfg_dir / f).exists():
                shutil.copy(cfg_dir / f, d / f)
        with open(d / "model.bin.tmp", "wb") as out:
            for b in bins:
                out.write(b.read_bytes())
        (d / "model.bin.tmp").rename(d / "model.bin")
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    import torch
    import whisper
    from faster_whisper import WhisperModel

    from audiotools.asr.models import load_model
    from audiotools.asr.transcribe import TranscribeOptions, Transcriber
    from audiotools.audio.decode import load_audio

    torch.set_num_threads(args.threads)
    files = build_files()
    audio = {str(f["path"]): load_audio(f["path"]) for f in files}
    total_dur = sum(a.duration for a in audio.values())

    # openai-whisper on the module as it loads it (not the engine's, whose CPU weights are re-laid out)
    plain_model, _ = load_model(args.model, "cpu", dtype=torch.float32)
    systems = {}
    for words in (True, False):
        ours = Transcriber(TranscribeOptions(model=args.model, device="cpu", word_timestamps=words))
        systems[f"audiotools{'+words' if words else ''}"] = lambda f, o=ours: (
            o.transcribe(load_audio(f["path"])).text
        )  # decode + VAD + ASR, all timed
        model = plain_model
        systems[f"openai-whisper{'+words' if words else ''}"] = lambda f, m=model, w=words: whisper.transcribe(
            m, audio[str(f["path"])].samples, fp16=False, word_timestamps=w, verbose=None
        )["text"]
    fw = WhisperModel(str(joined_ct2_dir(args.model)), device="cpu", compute_type="int8", cpu_threads=args.threads)

    def run_fw(f, words=False):
        segs, _ = fw.transcribe(str(f["path"]), beam_size=1, word_timestamps=words)
        return " ".join(s.text.strip() for s in segs)

    systems["faster-whisper-int8"] = run_fw
    systems["faster-whisper-int8+words"] = lambda f: run_fw(f, True)

    results = {}
    warm = files[0]
    for name, fn in systems.items():
        fn(warm)  # warm-up
        best = None
        for _ in range(args.repeat):
            texts, t0 = {}, time.perf_counter()
            for f in files:
                texts[str(f["path"])] = fn(f)
            elapsed = time.perf_counter() - t0
            best = elapsed if best is None else min(best, elapsed)
        pairs = [(f["ref"], texts[str(f["path"])]) for f in files if f["ref"]]
        results[name] = {
            "seconds": round(best, 2),
            "x_real_time": round(total_dur / best, 2),
            "rtf": round(best / total_dur, 4),
            "wer": round(corpus_wer(pairs), 4),
            "texts": {Path(k).name: v for k, v in texts.items()},
        }
        print(
            f"{name:28s} {best:7.2f} s  {total_dur / best:6.2f}x real time  WER {results[name]['wer']:.3f}", flush=True
        )

    ratios = {
        "audiotools_vs_openai_whisper_speed": round(
            results["openai-whisper"]["seconds"] / results["audiotools"]["seconds"], 2
        ),
        "audiotools_vs_openai_whisper_speed_with_words": round(
            results["openai-whisper+words"]["seconds"] / results["audiotools+words"]["seconds"], 2
        ),
        "audiotools_vs_faster_whisper_int8_speed": round(
            results["faster-whisper-int8"]["seconds"] / results["audiotools"]["seconds"], 2
        ),
        "audiotools_vs_faster_whisper_int8_speed_with_words": round(
            results["faster-whisper-int8+words"]["seconds"] / results["audiotools+words"]["seconds"], 2
        ),
    }
    for k, v in ratios.items():
        print(f"{k}: {v}x")
    out = write_result(
        "transcribe_cpu",
        {
            "model": args.model,
            "decoding": "greedy, temperature fallback",
            "audio_seconds": round(total_dur, 2),
            "files": [Path(f["path"]).name for f in files],
            "wer_files": [Path(f["path"]).name for f in files if f["ref"]],
            "machine": machine(),
            "systems": results,
            "ratios": ratios,
            "notes": "openai-whisper receives pre-decoded audio (no ffmpeg binary here); audiotools' time includes "
            "decoding and VAD. WER: openai-whisper's English normaliser, corpus level over jfk + conversation.",
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
