"""Speech detection for transcription: Silero (the transcription VAD) against segmentation-3.0.

    python benchmarks/vad.py            # figures -> benchmarks/results/vad.json

Files with a reference: ../shared/data/diarization/sample.wav (real two-speaker recording, RTTM),
samples/conversation.wav and samples/phone_call.wav (synthetic, RTTM), each as it is and in three
degraded copies made with sox at run time:
  quiet       ``gain -30``
  reverb      ``reverb 60 50 100`` (a large reverberant room), mixed down to one channel
  telephone   ``-r 8000 -e u-law`` after ``sinc 300-3400`` (then decoded back to 16 kHz)

Synthetic meetings with exact reference turns (benchmarks/synthetic_meetings.py): the benchmark's
six 60 s meetings and two of the 15 min ones (3 speakers at RT60 0.3 s, 5 speakers at RT60 0.4 s),
each with one quiet talker; for these the recall of the quietest talker's speech is reported too.

Per detector and file, on a 10 ms grid: recall = detected reference speech / reference speech;
false alarm = detected non-speech / reference speech (the DER convention). Detectors:
  silero        ``audiotools.vad.silero.speech_regions`` with the transcription's default options
                (level normalisation, gain control, 0.2 s padding, 0.6 s minimum silence)
  silero_plain  the same without the gain control (``PLAIN_VAD``: what identification uses)
  segmentation  segmentation-3.0 after the diariser's gain control: frames whose mean number of
                local speakers over the covering windows rounds to at least one
  union         silero or segmentation
Times are CPU seconds per audio minute (one thread).

``--words`` adds what the detectors change in the transcript (``quiet_talker_words``): four of the
meetings (the 15 min one at RT60 0.3 s and the three 60 s ones in a room) transcribed with Whisper
base, the windows cut by silero (the default), by silero_plain and with no VAD (fixed 30 s windows).
The words whose middle falls in the quietest talker's turns (where nobody else speaks) are scored
against the words there in a transcript of the same meeting with that talker at a normal level
(RMS 0.04 instead of 0.005; the same pieces at the same times), pooled over the meetings.
"""

from __future__ import annotations

import json
import os
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


DETECTORS = ("silero", "silero_plain", "segmentation", "union")


def detect(samples: np.ndarray, duration: float, length: int, cost: dict) -> dict[str, np.ndarray]:
    """Each detector's speech mask (``length`` grid frames) for ``samples``; CPU seconds added to ``cost``."""
    from audiotools.diarize.builtin import speech_regions as segmentation_regions
    from audiotools.vad.silero import PLAIN_VAD
    from audiotools.vad.silero import speech_regions as silero_regions

    found = {}
    for det, fn in (
        ("silero", silero_regions),
        ("silero_plain", lambda x: silero_regions(x, PLAIN_VAD)),
        ("segmentation", segmentation_regions),
    ):
        t0 = time.process_time()
        regions = fn(samples)
        cost[det] += time.process_time() - t0
        found[det] = mask(regions, duration)[:length]
    found["union"] = found["silero"] | found["segmentation"]
    return found


def line(name: str, row: dict) -> str:
    return f"{name:34s} " + "  ".join(
        f"{k}: R {v['recall']:.3f} FA {v['false_alarm']:.3f}"
        + (f" quietest {v['quietest_recall']:.3f}" if "quietest_recall" in v else "")
        for k, v in row.items()
        if k in DETECTORS
    )


def meetings() -> list:
    from synthetic_meetings import make_meeting, meeting_set

    return meeting_set() + [
        make_meeting(201, 3, 900.0, overlap_prob=0.1, rt60=0.3),
        make_meeting(203, 5, 900.0, overlap_prob=0.15, rt60=0.4),
    ]


WORD_MEETINGS = [(201, 3, 900.0, 0.1, 0.3), (4, 2, 60.0, 0.0, 0.4), (5, 3, 60.0, 0.15, 0.5), (6, 4, 60.0, 0.15, 0.3)]


def quiet_talker_words() -> dict:
    """The quietest talker's words with each way of cutting the windows (see the module docstring)."""
    import jiwer
    from synthetic_meetings import make_meeting
    from whisper.normalizers import EnglishTextNormalizer

    from audiotools.asr.transcribe import TranscribeOptions, Transcriber
    from audiotools.vad.silero import PLAIN_VAD

    norm = EnglishTextNormalizer()
    base = {"model": "base", "device": "cpu", "language": "en"}
    transcribers = {
        "silero": Transcriber(TranscribeOptions(**base)),
        "silero_plain": Transcriber(TranscribeOptions(**base, vad_options=PLAIN_VAD.to_params())),
        "no_vad": Transcriber(TranscribeOptions(**base, vad=False)),
    }
    out: dict = {"meetings": {}}
    pooled = {k: {"errors": 0, "words": 0} for k in transcribers}
    with tempfile.TemporaryDirectory() as d:
        for seed, k, dur, overlap, rt60 in WORD_MEETINGS:
            quiet = make_meeting(seed, k, dur, overlap_prob=overlap, rt60=rt60)
            loud = make_meeting(seed, k, dur, overlap_prob=overlap, rt60=rt60, quiet_rms=0.04)
            assert quiet.turns == loud.turns
            talker = quiet.quietest_speaker()
            others = [(a, b) for a, b, s in quiet.turns if s != talker]
            alone = [(a, b) for a, b, s in quiet.turns if s == talker and not any(a < f and e < b for e, f in others)]

            ref = words_alone(transcribers["silero"], loud, alone, Path(d) / "loud.wav", norm)
            row = {"quiet_talker_alone_s": round(sum(b - a for a, b in alone), 1), "reference_words": len(ref.split())}
            for name, transcriber in transcribers.items():
                hyp = words_alone(transcriber, quiet, alone, Path(d) / f"{name}.wav", norm)
                m = jiwer.process_words(ref, hyp)
                errors = m.substitutions + m.deletions + m.insertions
                row[name] = {"wer": round(errors / max(1, len(ref.split())), 3), "words": len(hyp.split())}
                pooled[name]["errors"] += errors
                pooled[name]["words"] += len(ref.split())
            out["meetings"][quiet.name] = row
            print(quiet.name, json.dumps(row), flush=True)
    out["pooled_wer"] = {k: round(v["errors"] / max(1, v["words"]), 3) for k, v in pooled.items()}
    print("quiet talker words, pooled WER:", out["pooled_wer"])
    return out


def words_alone(transcriber, meeting, alone: list, path: Path, norm) -> str:
    """Normalised text of the words of ``meeting``'s transcript whose middle lies in ``alone``."""
    import soundfile as sf

    from audiotools.audio.decode import load_audio

    sf.write(path, meeting.samples, 16000)
    t = transcriber.transcribe(load_audio(path))
    said = [
        w.word for seg in t.segments for w in seg.words or [] if any(a <= (w.start + w.end) / 2 <= b for a, b in alone)
    ]
    return norm(" ".join(said))


def main() -> None:
    import argparse

    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", action="store_true", help="also transcribe four meetings (about 10 min of CPU)")
    args = ap.parse_args()

    from audiotools.audio.decode import load_audio
    from audiotools.export.rttm import recording_turns

    torch.set_num_threads(1)
    rows, meeting_rows = [], []
    cost = dict.fromkeys(DETECTORS[:3], 0.0)
    audio_minutes = 0.0
    with tempfile.TemporaryDirectory() as d:
        for name, (wav, rttm) in FILES.items():
            ref_turns = [(t["start"], t["end"]) for t in recording_turns(rttm, wav)]
            for condition in CONDITIONS:
                audio = load_audio(degrade(wav, condition, Path(d)))
                ref = mask(ref_turns, audio.duration)
                found = detect(audio.samples, audio.duration, len(ref), cost)
                audio_minutes += audio.duration / 60
                row = {"file": name, "condition": condition, **{k: scores(v, ref) for k, v in found.items()}}
                rows.append(row)
                print(line(f"{name} {condition}", row), flush=True)
    for m in meetings():
        ref = mask([(a, b) for a, b, _ in m.turns], m.duration)
        quiet = m.quietest_speaker()
        quiet_ref = mask([(a, b) for a, b, s in m.turns if s == quiet], m.duration)
        found = detect(m.samples, m.duration, len(ref), cost)
        audio_minutes += m.duration / 60
        row = {"file": m.name, "quietest_talker": quiet}
        for k, v in found.items():
            row[k] = {**scores(v, ref), "quietest_recall": round(float((v & quiet_ref).sum() / quiet_ref.sum()), 4)}
        meeting_rows.append(row)
        print(line(m.name, row), flush=True)
    summary = {}
    for det in DETECTORS:
        for condition in CONDITIONS:
            sel = [r[det] for r in rows if r["condition"] == condition]
            summary.setdefault(det, {})[condition] = {
                k: round(float(np.mean([s[k] for s in sel])), 4) for k in ("recall", "false_alarm")
            }
        summary[det]["meetings"] = {
            k: round(float(np.mean([r[det][k] for r in meeting_rows])), 4)
            for k in ("recall", "false_alarm", "quietest_recall")
        }
        summary[det]["meetings"]["quietest_recall_min"] = min(r[det]["quietest_recall"] for r in meeting_rows)
    for det, by in summary.items():
        print(det, json.dumps(by))
    result = {
        "machine": machine(),
        "rows": rows,
        "meetings": meeting_rows,
        "mean_by_condition": summary,
        "cpu_seconds_per_audio_minute": {k: round(v / audio_minutes, 3) for k, v in cost.items()},
    }
    print("CPU s per audio minute:", result["cpu_seconds_per_audio_minute"])
    if args.words:
        torch.set_num_threads(os.cpu_count() or 1)  # the transcriber as it runs by default
        result["quiet_talker_words"] = quiet_talker_words()
    print("wrote", write_result("vad", result))


if __name__ == "__main__":
    main()
