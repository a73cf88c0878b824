"""Speech detection for transcription: Silero (the transcription VAD) against segmentation-3.0.

    python benchmarks/vad.py            # figures -> benchmarks/results/vad.json

Files with a reference: ../shared/data/diarization/sample.wav (real two-speaker recording, RTTM),
samples/conversation.wav and samples/phone_call.wav (synthetic, RTTM), each as it is and in three
degraded copies made with sox at run time:
  quiet       ``gain -30``
  reverb      ``reverb 60 50 100`` (a large reverberant room), mixed down to one channel
  telephone   ``-r 8000 -e u-law`` after ``sinc 300-3400`` (then decoded back to 16 kHz)

Per detector and file, on a 10 ms grid: recall = detected reference speech / reference speech;
false alarm = detected non-speech / reference speech (the DER convention). Detectors:
  silero        ``audiotools.vad.silero.speech_regions`` with the transcription's default options
                (level normalisation, 0.2 s padding, 0.6 s minimum silence)
  segmentation  segmentation-3.0 after the diariser's gain control: frames whose mean number of
                local speakers over the covering windows rounds to at least one
  union         either of the two
Times are CPU seconds per audio minute (one thread).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import SHARED, machine, write_result  # noqa: E402

GRID = 0.01  # s
CONDITIONS = {
    "clean": [],
    "quiet": ["gain", "-30"],
    "reverb": ["reverb", "60", "50", "100", "remix", "-"],
    "telephone": ["sinc", "300-3400", "rate", "8000"],
}
FILES = {
    "sample": (SHARED / "diarization" / "sample.wav", SHARED / "diarization" / "sample.rttm"),
    "conversation": (ROOT / "samples" / "conversation.wav", ROOT / "samples" / "conversation.rttm"),
    "phone_call": (ROOT / "samples" / "phone_call.wav", ROOT / "samples" / "phone_call.rttm"),
}


def degrade(src: Path, condition: str, tmp: Path) -> Path:
    if condition == "clean":
        return src
    out = tmp / f"{src.stem}_{condition}.wav"
    cmd = ["sox", "-R", str(src), "-c", "1"]
    if condition == "telephone":
        cmd += ["-e", "u-law", str(out), *CONDITIONS[condition]]
    else:
        cmd += [str(out), *CONDITIONS[condition]]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def mask(regions, duration: float) -> np.ndarray:
    m = np.zeros(int(np.ceil(duration / GRID)) + 1, dtype=bool)
    for s, e in regions:
        m[int(round(s / GRID)) : int(round(e / GRID))] = True
    return m


def scores(hyp: np.ndarray, ref: np.ndarray) -> dict:
    n = ref.sum()
    return {
        "recall": round(float((hyp & ref).sum() / n), 4),
        "false_alarm": round(float((hyp & ~ref).sum() / n), 4),
    }


def main() -> None:
    import torch

    from audiotools.audio.decode import load_audio
    from audiotools.diarize.builtin import speech_regions as segmentation_regions
    from audiotools.export.rttm import recording_turns
    from audiotools.vad.silero import speech_regions as silero_regions

    torch.set_num_threads(1)
    rows = []
    cost = {"silero": 0.0, "segmentation": 0.0}
    audio_minutes = 0.0
    with tempfile.TemporaryDirectory() as d:
        for name, (wav, rttm) in FILES.items():
            ref_turns = [(t["start"], t["end"]) for t in recording_turns(rttm, wav)]
            for condition in CONDITIONS:
                audio = load_audio(degrade(wav, condition, Path(d)))
                ref = mask(ref_turns, audio.duration)
                found = {}
                for det, fn in (("silero", silero_regions), ("segmentation", segmentation_regions)):
                    t0 = time.process_time()
                    regions = fn(audio.samples)
                    cost[det] += time.process_time() - t0
                    found[det] = mask(regions, audio.duration)[: len(ref)]
                found["union"] = found["silero"] | found["segmentation"]
                audio_minutes += audio.duration / 60
                row = {"file": name, "condition": condition, **{k: scores(v, ref) for k, v in found.items()}}
                rows.append(row)
                print(
                    f"{name:13s} {condition:10s} "
                    + "  ".join(
                        f"{k}: recall {v['recall']:.3f} FA {v['false_alarm']:.3f}" for k, v in row.items() if k in found
                    )
                )
    summary = {}
    for det in ("silero", "segmentation", "union"):
        for condition in CONDITIONS:
            sel = [r[det] for r in rows if r["condition"] == condition]
            summary.setdefault(det, {})[condition] = {
                k: round(float(np.mean([s[k] for s in sel])), 4) for k in ("recall", "false_alarm")
            }
    for det, by in summary.items():
        print(det, json.dumps(by))
    result = {
        "machine": machine(),
        "rows": rows,
        "mean_by_condition": summary,
        "cpu_seconds_per_audio_minute": {k: round(v / audio_minutes, 3) for k, v in cost.items()},
    }
    print("CPU s per audio minute:", result["cpu_seconds_per_audio_minute"])
    print("wrote", write_result("vad", result))


if __name__ == "__main__":
    main()
