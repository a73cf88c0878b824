"""Diarisation benchmark: accuracy, speaker counts, speed, overhead over transcription, long files.

    python benchmarks/diarize.py --no-array      # everything but the in-memory runs (about 20 min on 2 CPU cores)
    python benchmarks/diarize.py --hours 1       # long-file test at 1 h only
    python benchmarks/diarize.py --no-long --no-transcribe

Prints a summary and writes benchmarks/results/diarize.json:

* DER (pyannote.metrics, collar 0, overlapped speech scored) and speaker counts on
  ../shared/data/diarization/sample.wav, samples/conversation.wav, samples/phone_call.wav (mixed and
  --channels split), samples/russian.wav, stereo_diarization.wav (split and mixed);
* DER and counts on the tuning set (benchmarks/synthetic_meetings.py ``tuning_set`` and conditioned
  copies of the samples), the files the diariser's parameters were chosen on;
* with ``--degraded-tuning``, DER and counts on the tuning meetings degraded (noise at 5 dB, ``sox
  reverb 50``, their first 30 s clean and with noise at 10 dB; 84 files), which the close-merge
  parameters were chosen on;
* with ``--long-meetings``, DER, counts and the quietest talker's missed speech on four synthetic
  meetings of 15 min (seeds 201-204; one of them, with the tuning set, chose ``separation_chunks``);
* DER and counts on reverberant (far-field) copies and on noisy copies (white and brown noise at 5,
  10 and 15 dB SNR) of sample.wav and conversation.wav, not tuned on;
* DER and counts on synthetic meetings built from LibriSpeech utterances (benchmarks/synthetic_meetings.py:
  2-4 speakers, short turns, a quiet talker at RMS 0.005, far-field reverberation, overlaps);
* CPU speed (x real time) of the built-in diariser against Whisper base transcription of the same
  files (``Transcriber().transcribe(audio)``), both warmed up: the overhead of diarising, with
  CAM++ in float32 (the default) and at ``precision: auto`` side by side;
* 1 h and 4 h files concatenated from the repository's and shared recordings (written to a temp
  directory, removed afterwards), each diarised in a fresh process: seconds per audio hour, peak RSS
  of the whole process (decoding included) and of the diarisation alone; the 1 h file once more
  with CAM++ in float32 and at ``precision: auto`` (``precision_1h``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SHARED, machine, write_result

SAMPLES = ROOT / "samples"
SR = 16000
BACKEND = "builtin"
ACCURACY_OPTIONS: dict = {"backend": BACKEND}  # run_diarization options of the DER and count sections (--precision)
# what the built-in backend is; results of another diariser are dropped
DIARISER = "segmentation-3.0 (when, how many) + CAM++ on single-speaker chunks (who)"


def der_of(reference, hypothesis, duration: float) -> dict:
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = DiarizationErrorRate(collar=0.0, skip_overlap=False)(
            reference, hypothesis, detailed=True, uem=Timeline([Segment(0, duration)])
        )
    total = d["total"] or 1.0
    return {
        "der": round(100 * d["diarization error rate"], 2),
        "missed": round(100 * d["missed detection"] / total, 2),
        "false_alarm": round(100 * d["false alarm"] / total, 2),
        "confusion": round(100 * d["confusion"] / total, 2),
    }


def _speech_grid(annotation, n: int, grid: float) -> np.ndarray:
    """(n,) bool: speech of any speaker on a ``grid``-s frame grid."""
    mask = np.zeros(n, dtype=bool)
    for segment in annotation.get_timeline().support():
        mask[int(round(segment.start / grid)) : int(round(segment.end / grid))] = True
    return mask


def edge_offsets(reference, hypothesis, duration: float, grid: float = 0.01, near: float = 0.1) -> dict:
    """Where speech detection errs, speaker-agnostic: for every reference speech run, the signed
    distance (s) from its start and end to the nearest hypothesis run start and end (within 0.5 s;
    negative: the hypothesis starts or ends earlier), and the false-alarm time that lies within
    ``near`` s of reference speech (the edges of turns and the short pauses between them) as
    against anywhere else. Returns the lists and the seconds; :func:`edge_summary` pools them."""
    from audiotools.audio.level import moving_max
    from audiotools.diarize.builtin import runs_of

    n = int(np.ceil(duration / grid)) + 1
    ref, hyp = _speech_grid(reference, n, grid), _speech_grid(hypothesis, n, grid)
    r_on, r_off = np.array(runs_of(ref), dtype=int).reshape(-1, 2).T
    h_on, h_off = np.array(runs_of(hyp), dtype=int).reshape(-1, 2).T
    onsets, offsets = [], []
    if len(h_on):
        for a, b in zip(r_on, r_off):
            d_on = (h_on[np.argmin(np.abs(h_on - a))] - a) * grid
            d_off = (h_off[np.argmin(np.abs(h_off - b))] - b) * grid
            if abs(d_on) <= 0.5:
                onsets.append(round(float(d_on), 3))
            if abs(d_off) <= 0.5:
                offsets.append(round(float(d_off), 3))
    reach = int(round(near / grid))
    close = moving_max(ref, 2 * reach + 1).astype(bool)
    false_alarm = hyp & ~ref
    return {
        "onsets": onsets,
        "offsets": offsets,
        "false_alarm_s": float(false_alarm.sum() * grid),
        "false_alarm_near_s": float((false_alarm & close).sum() * grid),
    }


def edge_summary(stats: list[dict]) -> dict:
    """Pooled :func:`edge_offsets` of a set of files: median signed onset and offset distances
    (hypothesis minus reference, s; ``reference_speech_stretches``: the stretches whose start has a
    hypothesis start within 0.5 s) and the share of false-alarm time within 0.1 s of reference speech."""
    onsets = [d for s in stats for d in s["onsets"]]
    offsets = [d for s in stats for d in s["offsets"]]
    fa = sum(s["false_alarm_s"] for s in stats)
    return {
        "reference_speech_stretches": len(onsets),
        "onset_median_s": round(float(np.median(onsets)), 3) if onsets else None,
        "offset_median_s": round(float(np.median(offsets)), 3) if offsets else None,
        "false_alarm_near_reference_speech_pct": round(100 * sum(s["false_alarm_near_s"] for s in stats) / fa, 1)
        if fa
        else None,
    }


def accuracy() -> dict:
    from audiotools.audio.decode import load_audio
    from audiotools.diarize.diarization import run_diarization
    from audiotools.export.rttm import read_rttm

    def ref(p):
        return next(iter(read_rttm(p).values()))

    cases = [
        ("sample.wav", SHARED / "diarization" / "sample.wav", SHARED / "diarization" / "sample.rttm", 2, "mix"),
        ("conversation.wav", SAMPLES / "conversation.wav", SAMPLES / "conversation.rttm", 3, "mix"),
        ("phone_call.wav (mixed)", SAMPLES / "phone_call.wav", SAMPLES / "phone_call.rttm", 2, "mix"),
        ("phone_call.wav (split)", SAMPLES / "phone_call.wav", SAMPLES / "phone_call.rttm", 2, "split"),
        ("russian.wav", SAMPLES / "russian.wav", None, 1, "mix"),
        ("stereo_diarization.wav (split)", SHARED / "diarization" / "stereo_diarization.wav", None, 2, "split"),
        ("stereo_diarization.wav (mixed)", SHARED / "diarization" / "stereo_diarization.wav", None, 2, "mix"),
    ]
    out = {}
    for name, path, rttm, expected, channels in cases:
        audio = load_audio(path, keep_channels=channels == "split")
        res = run_diarization(audio, {**ACCURACY_OPTIONS, "channels": channels})
        row = {"speakers": res.num_speakers, "expected_speakers": expected, "labels": res.labels}
        if rttm:
            row.update(der_of(ref(rttm), res.annotation, audio.duration))
            if channels == "mix":
                row["edges"] = edge_summary([edge_offsets(ref(rttm), res.annotation, audio.duration)])
        out[name] = row
    return out


def _reference(name: str, turns):
    from pyannote.core import Annotation, Segment

    reference = Annotation(uri=name)
    for i, (s, e, spk) in enumerate(turns):
        reference[Segment(s, e), i] = spk
    return reference


def tuning() -> dict:
    """The tuning set (synthetic_meetings.tuning_set, and quiet and telephone copies of sample.wav
    and conversation.wav): the files the parameters were chosen on, reported so that a change is
    judged on both sets."""
    from synthetic_meetings import tuning_set

    from audiotools.audio.condition import simulate

    cases = [(m.name, m.samples, _reference(m.name, m.turns)) for m in tuning_set()]
    (sample, sample_ref), (conversation, conversation_ref) = labelled_recordings().values()
    cases += [
        ("sample.wav, -20 dB", sample * np.float32(0.1), sample_ref),
        ("sample.wav, telephone", simulate(sample, "telephone"), sample_ref),
        ("conversation.wav, telephone", simulate(conversation, "telephone"), conversation_ref),
    ]
    return score_cases(cases)


def labelled_recordings() -> dict:
    """The real sample.wav and samples/conversation.wav with their reference turns: name ->
    (samples, reference annotation)."""
    from audiotools.audio.decode import load_audio
    from audiotools.export.rttm import read_rttm

    return {
        name: (load_audio(wav).samples, next(iter(read_rttm(rttm).values())))
        for name, wav, rttm in (
            ("sample.wav", SHARED / "diarization" / "sample.wav", SHARED / "diarization" / "sample.rttm"),
            ("conversation.wav", SAMPLES / "conversation.wav", SAMPLES / "conversation.rttm"),
        )
    }


def score_cases(cases: list, given_count: bool = False, extra=None) -> dict:
    """DER and speaker count of each (name, samples, reference) case, their mean DER and how many
    counts are right; with ``given_count`` also the DER with the true count given (--num-speakers);
    ``extra(name, samples, reference, hypothesis)`` adds its dict to a case's row."""
    from audiotools.diarize.diarization import run_diarization

    out, ders, given_ders, right, edges = {}, [], [], 0, []
    for name, samples, reference in cases:
        res = run_diarization(samples, dict(ACCURACY_OPTIONS))
        expected = len(reference.labels())
        row = {"speakers": res.num_speakers, "expected_speakers": expected, "duration": round(len(samples) / SR, 1)}
        row.update(der_of(reference, res.annotation, len(samples) / SR))
        edges.append(edge_offsets(reference, res.annotation, len(samples) / SR))
        if extra is not None:
            row.update(extra(name, samples, reference, res.annotation))
        if given_count:
            given = run_diarization(samples, {**ACCURACY_OPTIONS, "num_speakers": expected})
            row["der_given_count"] = der_of(reference, given.annotation, len(samples) / SR)["der"]
            given_ders.append(row["der_given_count"])
        ders.append(row["der"])
        right += res.num_speakers == expected
        out[name] = row
    out["mean_der"] = round(float(np.mean(ders)), 2)
    if given_count:
        out["mean_der_given_count"] = round(float(np.mean(given_ders)), 2)
    out["counts_right"] = f"{right} / {len(cases)}"
    out["edges"] = edge_summary(edges)
    return out


def sox_reverb(samples: np.ndarray, reverberance: int) -> np.ndarray:
    """``sox ... reverb N`` (its defaults otherwise), float output so that sox adds no dither."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, samples, SR, subtype="FLOAT")
        subprocess.run(["sox", str(src), "-e", "floating-point", str(dst), "reverb", str(reverberance)], check=True)
        wet, _ = sf.read(dst, dtype="float32")
    return (wet.mean(axis=1) if wet.ndim > 1 else wet)[: len(samples)]


def reverberant() -> dict:
    """Far-field copies of the real sample.wav and of conversation.wav: each in a synthetic room
    (synthetic_meetings.far_field, RT60 0.3 and 0.5 s, as in the meetings) and through ``sox reverb
    50``. Not tuned on."""
    from synthetic_meetings import far_field

    sox = shutil.which("sox") is not None
    if not sox:
        print("sox not installed: the far-field copies are the synthetic rooms only")
    cases = []
    for label, (dry, reference) in labelled_recordings().items():
        for seed, rt60 in ((11, 0.3), (12, 0.5)):
            room = far_field(dry, rt60, np.random.default_rng(seed))
            cases.append((f"{label}, room RT60 {rt60:g} s", room, reference))
        if sox:
            cases.append((f"{label}, sox reverb 50", sox_reverb(dry, 50), reference))
    return score_cases(cases, given_count=True)


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: ``white``, or ``brown`` (integrated white noise with its slow drift removed,
    as under the synthetic meetings)."""
    x = rng.standard_normal(n)
    if kind == "brown":
        x = np.cumsum(x)
        x -= np.convolve(x, np.ones(801) / 801, mode="same")
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def noisy() -> dict:
    """Copies of the real sample.wav and of conversation.wav with white or brown noise added at 5,
    10 and 15 dB under the speech's RMS (its non-zero samples). Not tuned on."""
    cases = []
    for label, (dry, reference) in labelled_recordings().items():
        rng = np.random.default_rng(5)
        level = float(np.sqrt(np.mean(np.square(dry[dry != 0], dtype=np.float64))))
        for kind in ("white", "brown"):
            unit = noise(kind, len(dry), rng)
            for snr in (5, 10, 15):
                cases.append(
                    (f"{label}, {kind} noise {snr} dB", dry + unit * np.float32(level * 10 ** (-snr / 20)), reference)
                )
    return score_cases(cases, given_count=True)


def degraded_tuning() -> dict:
    """The tuning meetings degraded (84 files): each as it is, with white and with brown noise at 5 dB
    under its speech, through ``sox reverb 50``, and its first 30 s clean and with white noise at
    10 dB. The set ``close_merge_threshold`` and ``close_separation`` were chosen on (split-off
    clusters of a few chunks in noise and rooms, short recordings)."""
    import zlib

    from synthetic_meetings import tuning_set

    cases = []
    for m in tuning_set():
        x, ref = m.samples, _reference(m.name, m.turns)
        rng = np.random.default_rng(zlib.crc32(m.name.encode()))
        level = float(np.sqrt(np.mean(np.square(x[np.abs(x) > 1e-3], dtype=np.float64))))
        cases.append((m.name, x, ref))
        for kind in ("white", "brown"):
            cases.append(
                (f"{m.name}, {kind} noise 5 dB", x + noise(kind, len(x), rng) * np.float32(level / 10**0.25), ref)
            )
        if shutil.which("sox"):
            cases.append((f"{m.name}, sox reverb 50", sox_reverb(x, 50), ref))
        cut = 30.0
        first = [(s, min(e, cut), k) for s, e, k in m.turns if s < cut - 0.1]
        short, short_ref = x[: int(cut * SR)], _reference(m.name, first)
        cases.append((f"{m.name}, first 30 s", short, short_ref))
        white = noise("white", len(short), rng) * np.float32(level / 10**0.5)
        cases.append((f"{m.name}, first 30 s, white noise 10 dB", short + white, short_ref))
    return score_cases(cases)


def meetings() -> dict:
    """The benchmark meetings, each also with the true number of speakers given (--num-speakers:
    labelling errors alone)."""
    from synthetic_meetings import meeting_set

    return score_cases([(m.name, m.samples, _reference(m.name, m.turns)) for m in meeting_set()], given_count=True)


LONG_MEETINGS = [  # (seed, speakers, overlap share of turn changes, RT60 or None); 15 min each
    (201, 3, 0.1, 0.3),
    (202, 4, 0.1, None),
    (203, 5, 0.15, 0.4),
    (204, 2, 0.0, 0.5),
]


def long_meetings(minutes: float = 15.0) -> dict:
    """Synthetic meetings of ``minutes`` (seeds 201-204, other than the benchmark's and the tuning
    set's; 2-5 speakers, one quiet talker each, rooms and overlap as in the 60 s meetings): whether
    what holds on a minute holds over a meeting's length. Scored like the meetings, with the true
    count given too, and with the share of the quietest talker's speech that no speaker covers
    (the quiet far-field talker of the issue). The cap on the separation's cluster sizes
    (``separation_chunks``) was chosen on the tuning set and the two-person meeting (seed 204)."""
    from synthetic_meetings import make_meeting

    meetings = [make_meeting(seed, k, minutes * 60, overlap_prob=ov, rt60=rt) for seed, k, ov, rt in LONG_MEETINGS]
    cases = [(f"{m.name}_{minutes:g}min", m.samples, _reference(m.name, m.turns)) for m in meetings]
    return score_cases(cases, given_count=True, extra=quietest_talker)


def quietest_talker(name: str, samples: np.ndarray, reference, hypothesis) -> dict:
    """The reference speaker with the lowest speech RMS in the mix: its level, the loudest other
    speaker's, and the share of its speech that no hypothesis speaker covers."""
    from pyannote.core import Timeline

    def level(label: str) -> float:
        pieces = [samples[int(seg.start * SR) : int(seg.end * SR)] for seg in reference.label_timeline(label)]
        return float(np.sqrt(np.mean(np.square(np.concatenate(pieces), dtype=np.float64))))

    quiet = min(reference.labels(), key=level)
    own = reference.label_timeline(quiet).support()
    covered = own.crop(Timeline(list(hypothesis.get_timeline().support()))).support().duration()
    return {
        "quietest_talker": {
            "rms": round(level(quiet), 4),
            "loudest_other_rms": round(max(level(k) for k in reference.labels() if k != quiet), 4),
            "speech_s": round(own.duration(), 1),
            "missed_pct": round(100 * (1 - covered / own.duration()), 1),
        }
    }


def speed(transcribe: bool) -> dict:
    """Diarisation time of conversation.wav and sample.wav (best of 3) with the defaults (CAM++ in
    float32), with CAM++ at ``precision: auto`` (bfloat16 on a CPU with it in hardware), and with
    segmentation windows every 1 s instead of the default 2 s, side by side, against
    Whisper base transcription of the same files (best of 3)."""
    from audiotools.audio.decode import load_audio
    from audiotools.device import network_precision
    from audiotools.diarize.diarization import DiarizationOptions, run_diarization

    files = [SAMPLES / "conversation.wav", SHARED / "diarization" / "sample.wav"]
    audios = [load_audio(f) for f in files]
    # what run_diarization runs when the options do not say (DiarizationOptions' default)
    default = network_precision(DiarizationOptions().precision, "cpu")
    auto = network_precision("auto", "cpu")
    t0 = time.perf_counter()
    for p in {default, auto}:  # load models, warm up
        run_diarization(audios[1].samples[: 5 * SR], {"backend": BACKEND, "precision": p})
    load_s = time.perf_counter() - t0
    out: dict = {"model_load_and_warmup_s": round(load_s, 2), "precision": default, "auto_precision": auto}
    out["files"] = {}
    transcriber = None
    if transcribe:
        from audiotools.asr.transcribe import Transcriber

        transcriber = Transcriber()
        transcriber.transcribe(audios[1])  # warm up
    # the settings timed side by side: key infix -> run_diarization options (beside the backend)
    variants = {"": {}, "_auto": {"precision": "auto"}, "_step_1s": {"segmentation_step": 1.0}}
    totals = dict.fromkeys(variants, 0.0)
    tot_t = 0.0
    for f, a in zip(files, audios):
        best = {
            key: min(_timed(lambda a=a, o=opts: run_diarization(a, {"backend": BACKEND, **o})) for _ in range(3))
            for key, opts in variants.items()
        }
        row = {"duration_s": round(a.duration, 2), "diarize_x_real_time": round(a.duration / best[""], 1)}
        row.update({f"diarize{key}_s": round(seconds, 3) for key, seconds in best.items()})
        for key, seconds in best.items():
            totals[key] += seconds
        if transcriber is not None:
            tt = min(_timed(lambda a=a: transcriber.transcribe(a)) for _ in range(3))  # best of 3, as diarisation
            row.update({"transcribe_s": round(tt, 2), "transcribe_x_real_time": round(a.duration / tt, 1)})
            row.update({f"diarize{key}_overhead_pct": round(100 * seconds / tt, 1) for key, seconds in best.items()})
            tot_t += tt
        out["files"][f.name] = row
    out["auto_vs_default_speed"] = round(totals[""] / totals["_auto"], 2)
    out["step_2s_vs_1s_speed"] = round(totals["_step_1s"] / totals[""], 2)  # the default 2 s hop against the 1 s one
    if tot_t:
        out.update({f"diarize{key}_overhead_pct": round(100 * seconds / tot_t, 1) for key, seconds in totals.items()})
    import torch

    out["torch_threads"] = torch.get_num_threads()
    return out


def segmentation_paths(minutes: float = 5.0) -> dict:
    """Segmentation alone (10 s windows every 2 s, batches of 32, the gain control) on ``minutes`` of
    the long-file material, side by side: each batch's span convolved once by the sinc front end
    (the default, SincNet.forward_span) against every window convolved on its own (a hop one sample
    off the sinc stride takes that path). Best of 3 each, same process."""
    from audiotools.audio.decode import load_audio
    from audiotools.diarize.builtin import Config, segment
    from audiotools.diarize.segmentation import segmentation_model

    pieces, total = [], int(minutes * 60 * SR)
    while sum(map(len, pieces)) < total:
        pieces += [load_audio(f).samples for f in long_material()]
    x = np.concatenate(pieces)[:total]
    model = segmentation_model("cpu")
    segment(model, x[: 30 * SR], Config())  # warm up
    shared = min(_timed(lambda: segment(model, x, Config())) for _ in range(3))
    alone = min(_timed(lambda: segment(model, x, Config(step=2.0 + 1 / SR))) for _ in range(3))
    return {
        "audio_s": round(len(x) / SR, 1),
        "shared_sinc_s": round(shared, 2),
        "per_window_sinc_s": round(alone, 2),
        "speedup": round(alone / shared, 2),
    }


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def long_material() -> list[Path]:
    files = [
        SAMPLES / "conversation.wav",
        SAMPLES / "phone_call.wav",
        SAMPLES / "russian.wav",
        SHARED / "diarization" / "sample.wav",
        SHARED / "speech" / "jfk.flac",
    ]
    files += sorted((SHARED / "speakers").glob("*/*.flac"))
    return files


def write_long_file(path: Path, hours: float) -> None:
    """A ``hours``-long 16 kHz WAV: the recordings above, concatenated with pauses, repeated, written
    block by block (never the whole file in memory)."""
    from audiotools.audio.decode import load_audio

    rng = np.random.default_rng(0)
    pieces = [load_audio(f).samples for f in long_material()]
    target = int(hours * 3600 * SR)
    written = 0
    with sf.SoundFile(str(path), "w", samplerate=SR, channels=1, subtype="PCM_16") as out:
        while written < target:
            for i in rng.permutation(len(pieces)):
                x = pieces[i] * np.float32(rng.choice([0.1, 0.3, 1.0]))  # quiet and loud passages
                gap = np.zeros(int(rng.uniform(0.3, 2.0) * SR), dtype=np.float32)
                block = np.concatenate([x, gap])[: target - written]
                out.write(block)
                written += len(block)
                if written >= target:
                    break


# Peak RSS from /proc/self/status VmHWM (reset by exec; ru_maxrss is not: it would report the
# parent's peak, which holds Whisper during this benchmark).
MEM = r"""
def mem(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
"""

CHILD = (
    MEM
    + r"""
import json, sys, time
from audiotools.audio.decode import load_audio
from audiotools.diarize.diarization import run_diarization
t0 = time.perf_counter()
audio = load_audio(sys.argv[1], hash_source=False)
t1 = time.perf_counter()
hwm_loaded, rss_loaded = mem("VmHWM"), mem("VmRSS")
res = run_diarization(audio, {"backend": sys.argv[2], "precision": sys.argv[3] if len(sys.argv) > 3 else "auto"})
t2 = time.perf_counter()
print(json.dumps({"load_s": t1 - t0, "diarize_s": t2 - t1, "speakers": res.num_speakers, "turns": len(res.turns()),
                  "peak_rss_after_load_mb": hwm_loaded, "rss_after_load_mb": rss_loaded,
                  "peak_rss_mb": mem("VmHWM"), "timings": res.info.get("timings")}))
"""
)

CHILD_ARRAY = (
    MEM
    + r"""
import json, sys, time
import numpy as np, soundfile as sf
from audiotools.diarize.diarization import run_diarization
with sf.SoundFile(sys.argv[1]) as f:
    x = np.empty(f.frames, dtype=np.float32)
    pos = 0
    for block in f.blocks(blocksize=1 << 20, dtype="float32"):
        x[pos:pos + len(block)] = block
        pos += len(block)
rss0 = mem("VmRSS")
t0 = time.perf_counter()
res = run_diarization(x, {"backend": sys.argv[2]})
print(json.dumps({"diarize_s": time.perf_counter() - t0, "rss_before_mb": rss0, "peak_rss_mb": mem("VmHWM"),
                  "speakers": res.num_speakers}))
"""
)


def _child(code: str, path: Path, *args: str) -> dict:
    """Run one of the child scripts above on ``path`` in a fresh interpreter; its JSON line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), BACKEND, *args], check=True, env=env, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def precision_side_by_side(hours: float = 1.0) -> dict:
    """The long file of ``hours`` diarised with CAM++ in float32 (the default) and at ``precision:
    auto`` (bfloat16 on a CPU with it in hardware), each in a fresh process, one after the other:
    time, peak RSS and the speaker count."""
    from audiotools.device import network_precision

    out: dict = {"audio_hours": hours, "auto": network_precision("auto", "cpu")}
    with tempfile.TemporaryDirectory(prefix="audiotools-diarize-bench-") as tmp:
        path = Path(tmp) / f"long_{hours:g}h.wav"
        write_long_file(path, hours)
        for precision in ("float32", "auto"):
            run = _child(CHILD, path, precision)
            out["float32" if precision == "float32" else "auto_run"] = {
                "diarize_s": round(run["diarize_s"], 1),
                "peak_rss_mb_whole_process": round(run["peak_rss_mb"]),
                "embeddings_cpu_s": run["timings"]["embeddings"],
                "speakers": run["speakers"],
            }
    out["auto_vs_float32_speed"] = round(out["float32"]["diarize_s"] / out["auto_run"]["diarize_s"], 2)
    return out


def long_files(hours_list: list[float], array: bool = True) -> dict:
    """Diarise each long file in a fresh process (decoded from disk), and when ``array``, once more from
    an in-memory array (the diariser's own peak without the decoder's)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="audiotools-diarize-bench-") as tmp:
        for hours in hours_list:
            path = Path(tmp) / f"long_{hours:g}h.wav"
            write_long_file(path, hours)
            full = _child(CHILD, path)
            out[f"{hours:g}h"] = {
                "audio_hours": hours,
                "diarize_s": round(full["diarize_s"], 1),
                "diarize_s_per_audio_hour": round(full["diarize_s"] / hours, 1),
                "x_real_time": round(hours * 3600 / full["diarize_s"], 1),
                "speakers": full["speakers"],
                "turns": full["turns"],
                "timings": full["timings"],
                "decode_s": round(full["load_s"], 1),
                "peak_rss_mb_whole_process": round(full["peak_rss_mb"]),
                "peak_rss_mb_during_decoding": round(full["peak_rss_after_load_mb"]),
                "rss_mb_after_decoding": round(full["rss_after_load_mb"]),
            }
            if array:
                arr = _child(CHILD_ARRAY, path)
                out[f"{hours:g}h"]["peak_rss_mb_diarising_an_in_memory_array"] = round(arr["peak_rss_mb"])
                out[f"{hours:g}h"]["rss_mb_of_that_process_before_diarising"] = round(arr["rss_before_mb"])
            path.unlink()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", default="1,4", help="long-file lengths in hours (comma list)")
    ap.add_argument("--no-long", action="store_true")
    ap.add_argument(
        "--no-array", action="store_true", help="long files: skip the second run that diarises an in-memory array"
    )
    ap.add_argument("--no-transcribe", action="store_true", help="skip the Whisper comparison")
    ap.add_argument("--no-meetings", action="store_true")
    ap.add_argument("--no-tuning", action="store_true", help="skip the tuning set (14 meetings, 3 conditioned files)")
    ap.add_argument(
        "--no-reverb", action="store_true", help="skip the reverberant copies of sample.wav and conversation.wav"
    )
    ap.add_argument("--no-noise", action="store_true", help="skip the noisy copies of sample.wav and conversation.wav")
    ap.add_argument(
        "--degraded-tuning",
        action="store_true",
        help="also the degraded tuning meetings (84 files, 15 min), on which the close-merge parameters were chosen",
    )
    ap.add_argument(
        "--long-meetings",
        action="store_true",
        help="also four synthetic meetings of 15 min each (about 7 min of CPU)",
    )
    ap.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16"],
        default="float32",
        help="CAM++'s arithmetic in the DER and count sections (the diariser's default: float32; "
        "auto: bfloat16 where the CPU has it)",
    )
    ap.add_argument(
        "--step",
        type=float,
        help="s between segmentation windows in the DER and count sections (default: the diariser's; a side run)",
    )
    ap.add_argument("--name", default="diarize", help="write benchmarks/results/NAME.json (a side run: another name)")
    args = ap.parse_args(argv)

    from _common import RESULTS

    name = args.name
    ACCURACY_OPTIONS["precision"] = args.precision
    if args.step:
        ACCURACY_OPTIONS["segmentation_step"] = args.step
    previous = RESULTS / f"{name}.json"
    result: dict = json.loads(previous.read_text()) if previous.exists() else {}
    if result.get("diariser") != DIARISER:  # figures of another diariser are not kept
        result = {}
    # what a run may keep from an earlier one (long-file entries, speed, precision_1h): that run's time
    kept = [*result.get("long_files", {}).values(), result.get("speed"), result.get("precision_1h")]
    for row in kept:
        if isinstance(row, dict):
            row.setdefault("measured", result.get("machine", {}).get("time"))
    result.update({"machine": machine(), "backend": BACKEND, "diariser": DIARISER})  # skipped sections keep theirs
    from audiotools.device import network_precision
    from audiotools.diarize.builtin import Config

    # CAM++'s arithmetic in the DER and count sections of this run (speed and precision_1h say their own)
    result["accuracy_precision"] = network_precision(args.precision, "cpu")
    result["accuracy_segmentation_step"] = args.step or Config.step
    t0 = time.perf_counter()
    result["files"] = accuracy()
    if not args.no_meetings:
        result["synthetic_meetings"] = meetings()
    if not args.no_tuning:
        result["tuning_set"] = tuning()
    if not args.no_reverb:
        result["reverberant_copies"] = reverberant()
    if not args.no_noise:
        result["noisy_copies"] = noisy()
    if args.degraded_tuning:
        result["degraded_tuning_set"] = degraded_tuning()
    if args.long_meetings:
        result["long_meetings"] = long_meetings()
    if not (args.no_transcribe and "speed" in result and "diarize_overhead_pct" in result["speed"]):
        result["speed"] = {**speed(not args.no_transcribe), "measured": result["machine"]["time"]}
    result["segmentation_paths"] = segmentation_paths()
    sp = result["segmentation_paths"]
    print(
        f"segmentation of {sp['audio_s']:.0f} s: {sp['shared_sinc_s']} s with the shared sinc convolution, "
        f"{sp['per_window_sinc_s']} s window by window ({sp['speedup']}x)"
    )
    if not args.no_long:
        # lengths not measured now keep their earlier entry; each entry says when it was measured
        measured = long_files([float(h) for h in args.hours.split(",") if h], not args.no_array)
        for row in measured.values():
            row["measured"] = result["machine"]["time"]
        result["long_files"] = {**result.get("long_files", {}), **measured}
        result["precision_1h"] = {**precision_side_by_side(1.0), "measured": result["machine"]["time"]}
        pr = result["precision_1h"]
        rss = [pr[k]["peak_rss_mb_whole_process"] for k in ("auto_run", "float32")]
        print(
            f"1 h, CAM++ at auto ({pr['auto']}) against float32: {pr['auto_vs_float32_speed']}x faster, "
            f"peak RSS {rss[0]} MB against {rss[1]} MB"
        )
    result["benchmark_seconds"] = round(time.perf_counter() - t0, 1)
    path = write_result(name, result)

    print("file                              speakers  DER%   (missed / false alarm / confusion)")
    for name, row in result["files"].items():
        der = (
            f"{row['der']:5.1f}  ({row['missed']:.1f} / {row['false_alarm']:.1f} / {row['confusion']:.1f})"
            if "der" in row
            else "  -"
        )
        print(f"{name:34s} {row['speakers']:>2d}/{row['expected_speakers']:<2d}   {der}")
    for name, row in (result.get("synthetic_meetings") or {}).items():
        if isinstance(row, dict) and "der" in row:
            print(
                f"{name:34s} {row['speakers']:>2d}/{row['expected_speakers']:<2d}   {row['der']:5.1f}  "
                f"({row['missed']:.1f} / {row['false_alarm']:.1f} / {row['confusion']:.1f})"
            )
    if "synthetic_meetings" in result:
        sm = result["synthetic_meetings"]
        print(
            f"synthetic meetings mean DER: {sm['mean_der']:.1f} % "
            f"({sm.get('mean_der_given_count', float('nan')):.1f} % with the speaker count given)"
        )
    for name, row in (result.get("long_meetings") or {}).items():
        if isinstance(row, dict) and "der" in row:
            q = row["quietest_talker"]
            print(
                f"{name:34s} {row['speakers']:>2d}/{row['expected_speakers']:<2d}   {row['der']:5.1f}  "
                f"({row['missed']:.1f} / {row['false_alarm']:.1f} / {row['confusion']:.1f}), "
                f"quietest talker {q['missed_pct']:.1f} % missed"
            )
    if "long_meetings" in result:
        lm = result["long_meetings"]
        print(
            f"long meetings mean DER: {lm['mean_der']:.1f} % ({lm['mean_der_given_count']:.1f} % with the count "
            f"given), speaker counts right {lm['counts_right']}"
        )
    if "tuning_set" in result:
        ts = result["tuning_set"]
        print(f"tuning set mean DER: {ts['mean_der']:.1f} %, speaker counts right {ts['counts_right']}")
    for key, title in (("reverberant_copies", "reverberant copies"), ("noisy_copies", "noisy copies")):
        if key not in result:
            continue
        copies = result[key]
        for name, row in copies.items():
            if isinstance(row, dict) and "der" in row:
                print(f"{name:34s} {row['speakers']:>2d}/{row['expected_speakers']:<2d}   {row['der']:5.1f}")
        print(
            f"{title} mean DER: {copies['mean_der']:.1f} % ({copies['mean_der_given_count']:.1f} % with the "
            f"speaker count given), speaker counts right {copies['counts_right']}"
        )
    for key in ("synthetic_meetings", "tuning_set", "reverberant_copies", "noisy_copies", "long_meetings"):
        e = (result.get(key) or {}).get("edges")
        if e and e["onset_median_s"] is not None and e["offset_median_s"] is not None:
            print(
                f"{key}: hypothesis speech starts {e['onset_median_s']:+.3f} s and ends {e['offset_median_s']:+.3f} s "
                f"from the reference's (medians over {e['reference_speech_stretches']} stretches of speech); "
                f"{e['false_alarm_near_reference_speech_pct']} % of the false alarm within 0.1 s of reference speech"
            )
    for name, row in result["speed"]["files"].items():
        extra = (
            f", transcription {row['transcribe_x_real_time']}x: diarisation adds {row['diarize_overhead_pct']} %"
            if "transcribe_s" in row
            else ""
        )
        print(f"speed {name}: diarisation {row['diarize_x_real_time']}x real time{extra}")
    for name, row in (result.get("long_files") or {}).items():
        print(
            f"{name}: {row['diarize_s_per_audio_hour']} s per audio hour ({row['x_real_time']}x), "
            f"peak RSS {row['peak_rss_mb_whole_process']} MB (whole process incl. decoding), "
            f"{row.get('peak_rss_mb_diarising_an_in_memory_array', '-')} MB (diarising an in-memory array), "
            f"{row['speakers']} speakers"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
