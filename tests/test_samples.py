"""Checks on the synthetic sample recordings in ``samples/``.

The recordings and their ground truth are produced by
``samples/make_samples.sh`` (espeak-ng + sox).  These tests check that the
ground-truth files agree with each other and with the audio itself: formats,
durations, levels (one quiet talker), and that speech energy lies inside the
annotated turns and only noise floor between them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

# Versions the committed files were generated with (see samples/README.md).
ESPEAK_VERSION = "1.51"
SOX_VERSION = "14.4.2"

GENERATED = [
    "conversation.wav",
    "conversation.txt",
    "conversation.rttm",
    "conversation.json",
    "voices/anna.wav",
    "voices/boris.wav",
    "voices/clara.wav",
    "phone_call.wav",
    "phone_call.txt",
    "phone_call.rttm",
    "russian.wav",
    "russian.txt",
]

FRAME = 0.02  # s, frame length for the energy envelope
EDGE = 0.01  # s, margin kept away from turn boundaries when checking gaps
GAP_MAX_FRAME_RMS = 0.0025  # noise floor is ~0.0008 RMS (frames up to ~0.0015)
SPEECH_FRAME_RMS = 0.003  # a frame counts as "speech" above this
TIME_TOL = 0.0005  # timestamps are written with 3 decimals


# ----------------------------------------------------------------- helpers --


def read_txt(path: Path) -> list[dict]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        head, text = line.split("\t")
        start, end, speaker = head.split(" ")
        assert re.fullmatch(r"\d+\.\d{3}", start) and re.fullmatch(r"\d+\.\d{3}", end), line
        turns.append({"start": float(start), "end": float(end), "speaker": speaker, "text": text})
    return turns


def read_rttm(path: Path) -> list[dict]:
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        assert len(fields) == 10, line
        kind, uri, chan, start, dur, ortho, stype, speaker, conf, slat = fields
        assert kind == "SPEAKER"
        assert (ortho, stype, conf, slat) == ("<NA>",) * 4
        turns.append(
            {
                "uri": uri,
                "channel": int(chan),
                "start": float(start),
                "end": float(start) + float(dur),
                "duration": float(dur),
                "speaker": speaker,
            }
        )
    return turns


def conversation_json() -> dict:
    return json.loads((SAMPLES / "conversation.json").read_text(encoding="utf-8"))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def frame_rms(x: np.ndarray, sr: int, start: float, end: float) -> np.ndarray:
    seg = x[int(round(start * sr)) : int(round(end * sr))]
    n = int(FRAME * sr)
    m = len(seg) // n
    assert m > 0, (start, end)
    return np.sqrt(np.mean(np.square(seg[: m * n].reshape(m, n), dtype=np.float64), axis=1))


def segment(x: np.ndarray, sr: int, start: float, end: float) -> np.ndarray:
    return x[int(round(start * sr)) : int(round(end * sr))]


def gaps(turns: list[dict], duration: float) -> list[tuple[float, float]]:
    """Intervals not covered by any turn (including lead-in and tail)."""
    out, pos = [], 0.0
    for t in sorted(turns, key=lambda t: t["start"]):
        if t["start"] > pos:
            out.append((pos, t["start"]))
        pos = max(pos, t["end"])
    if duration > pos:
        out.append((pos, duration))
    return out


def assert_sorted_non_overlapping(turns: list[dict]) -> None:
    for a, b in zip(turns, turns[1:]):
        assert a["start"] < a["end"], a
        assert a["end"] <= b["start"] + 1e-9, (a, b)
    assert turns[-1]["start"] < turns[-1]["end"]


# ------------------------------------------------------------------- files --


def test_files_exist_and_are_small():
    missing = [f for f in GENERATED if not (SAMPLES / f).is_file()]
    assert not missing, f"missing (run `bash samples/make_samples.sh`): {missing}"
    assert (SAMPLES / "make_samples.sh").is_file()
    assert (SAMPLES / "README.md").is_file()
    total = sum((SAMPLES / f).stat().st_size for f in GENERATED)
    assert total < 5 * 1024 * 1024, total


@pytest.mark.parametrize("name", ["conversation.rttm", "phone_call.rttm"])
def test_rttm_lines_have_ten_fields(name):
    turns = read_rttm(SAMPLES / name)
    assert turns
    assert {t["uri"] for t in turns} == {Path(name).stem}
    for t in turns:
        assert t["duration"] > 0


# ------------------------------------------------------------ ground truth --


def test_conversation_txt_and_rttm_agree_with_json():
    meta = conversation_json()
    assert meta["file"] == "conversation.wav"
    turns = meta["turns"]
    txt = read_txt(SAMPLES / "conversation.txt")
    rttm = read_rttm(SAMPLES / "conversation.rttm")
    assert len(turns) == len(txt) == len(rttm)
    for j, t, r in zip(turns, txt, rttm):
        assert set(j) >= {"start", "end", "speaker", "text"}
        assert j["speaker"] in meta["speakers"]
        assert t["speaker"] == r["speaker"] == j["speaker"]
        assert t["text"] == j["text"]
        assert r["channel"] == 1
        for key in ("start", "end"):
            assert abs(t[key] - j[key]) < TIME_TOL
            assert abs(r[key] - j[key]) < 2 * TIME_TOL


def test_conversation_structure():
    meta = conversation_json()
    turns = meta["turns"]
    assert len(meta["speakers"]) == 3
    assert 8 <= len(turns) <= 12
    assert {t["speaker"] for t in turns} == set(meta["speakers"])
    assert_sorted_non_overlapping(turns)
    # realistic pauses between turns, and at least one short turn
    for a, b in zip(turns, turns[1:]):
        assert 0.3 - TIME_TOL <= b["start"] - a["end"] <= 1.5 + TIME_TOL, (a, b)
    assert min(t["end"] - t["start"] for t in turns) < 1.5
    # voices are distinct; each speaker has an enrolment clip
    voices = {(s["espeak_voice"], s["pitch"], s["speed"]) for s in meta["speakers"].values()}
    assert len(voices) == 3
    for name, spk in meta["speakers"].items():
        assert spk["id"] == name.lower()
        assert spk["enrolment"] == f"voices/{spk['id']}.wav"


@pytest.mark.parametrize("name", ["conversation", "phone_call", "russian"])
def test_turns_sorted_and_non_overlapping(name):
    turns = read_txt(SAMPLES / f"{name}.txt")
    assert turns
    assert_sorted_non_overlapping(turns)


def test_phone_call_txt_and_rttm_agree():
    txt = read_txt(SAMPLES / "phone_call.txt")
    rttm = read_rttm(SAMPLES / "phone_call.rttm")
    assert len(txt) == len(rttm)
    assert {t["speaker"] for t in txt} == {"CHANNEL_1", "CHANNEL_2"}
    for t, r in zip(txt, rttm):
        assert t["speaker"] == r["speaker"]
        assert r["channel"] == int(r["speaker"].rsplit("_", 1)[1])
        assert abs(t["start"] - r["start"]) < TIME_TOL
        assert abs(t["end"] - r["end"]) < 2 * TIME_TOL
    # turns alternate between the two channels
    for a, b in zip(txt, txt[1:]):
        assert a["speaker"] != b["speaker"]


def test_russian_transcript_is_cyrillic():
    turns = read_txt(SAMPLES / "russian.txt")
    assert len({t["speaker"] for t in turns}) == 1
    assert all(re.search("[а-яё]", t["text"], re.IGNORECASE) for t in turns)


# ------------------------------------------------------------------- audio --


def test_conversation_audio_format():
    meta = conversation_json()
    info = sf.info(str(SAMPLES / "conversation.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 35 <= info.duration <= 50
    assert abs(info.duration - meta["duration"]) < TIME_TOL
    assert meta["turns"][-1]["end"] < info.duration


@pytest.mark.parametrize("speaker", ["anna", "boris", "clara"])
def test_enrolment_clip(speaker):
    path = SAMPLES / "voices" / f"{speaker}.wav"
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 8 <= info.duration <= 12
    x, _ = sf.read(str(path))
    assert 0.04 <= rms(x) <= 0.1  # normal level, even for the quiet talker
    assert speaker in {s["id"] for s in conversation_json()["speakers"].values()}


def test_phone_call_audio_format():
    info = sf.info(str(SAMPLES / "phone_call.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 2, "ULAW")
    assert 15 <= info.duration <= 25
    assert read_txt(SAMPLES / "phone_call.txt")[-1]["end"] < info.duration


def test_russian_audio_format():
    info = sf.info(str(SAMPLES / "russian.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 8 <= info.duration <= 13
    assert read_txt(SAMPLES / "russian.txt")[-1]["end"] < info.duration


def test_quiet_speaker_is_at_least_10db_below_the_others():
    meta = conversation_json()
    x, sr = sf.read(str(SAMPLES / "conversation.wav"))
    level = {}
    for name in meta["speakers"]:
        speech = np.concatenate([segment(x, sr, t["start"], t["end"]) for t in meta["turns"] if t["speaker"] == name])
        level[name] = rms(speech)
    quiet = min(level, key=level.get)
    assert meta["speakers"][quiet]["relative_level_db"] <= -10
    assert 0.005 <= level[quiet] <= 0.01, level
    for name, value in level.items():
        if name != quiet:
            assert 0.05 <= value <= 0.1, level
            assert 20 * np.log10(value / level[quiet]) >= 10, level


def check_energy(x: np.ndarray, sr: int, turns: list[dict]) -> None:
    """Speech energy inside every turn, only the noise floor between turns."""
    duration = len(x) / sr
    for start, end in gaps(turns, duration):
        if end - start < 2 * EDGE + FRAME:
            continue
        seg = segment(x, sr, start + EDGE, end - EDGE)
        assert np.any(seg != 0), f"gap {start:.3f}-{end:.3f} is digital silence"
        peak = frame_rms(x, sr, start + EDGE, end - EDGE).max()
        assert peak < GAP_MAX_FRAME_RMS, f"energy {peak:.4f} in gap {start:.3f}-{end:.3f}"
    for t in turns:
        frames = frame_rms(x, sr, t["start"], t["end"])
        active = float(np.mean(frames > SPEECH_FRAME_RMS))
        assert active >= 0.5, f"turn {t['start']:.3f}-{t['end']:.3f}: only {active:.0%} speech frames"
        # the turn really starts at its start time: speech within the first 100 ms
        assert frame_rms(x, sr, t["start"], t["start"] + 0.1).max() > SPEECH_FRAME_RMS, t
        # and ends at its end time.  The end is where the synthesised signal ends;
        # for the quiet talker the last ~200 ms of decay is below the noise floor.
        assert frame_rms(x, sr, t["end"] - 0.3, t["end"]).max() > SPEECH_FRAME_RMS, t


def test_conversation_energy_matches_turns():
    x, sr = sf.read(str(SAMPLES / "conversation.wav"))
    check_energy(x, sr, conversation_json()["turns"])


def test_russian_energy_matches_turns():
    x, sr = sf.read(str(SAMPLES / "russian.wav"))
    check_energy(x, sr, read_txt(SAMPLES / "russian.txt"))


@pytest.mark.parametrize("channel", [1, 2])
def test_phone_call_energy_matches_turns_per_channel(channel):
    x, sr = sf.read(str(SAMPLES / "phone_call.wav"), always_2d=True)
    turns = read_txt(SAMPLES / "phone_call.txt")
    own = [t for t in turns if t["speaker"] == f"CHANNEL_{channel}"]
    # the other talker's turns are silence (noise floor) on this channel
    check_energy(x[:, channel - 1], sr, own)
    for t in own:
        assert 0.05 <= rms(segment(x[:, channel - 1], sr, t["start"], t["end"])) <= 0.1


# ----------------------------------------------------------- reproducibility --


def tool_versions() -> tuple[str, str] | None:
    if not (shutil.which("espeak-ng") and shutil.which("sox") and shutil.which("soxi")):
        return None
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    sox = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout
    m1 = re.search(r"text-to-speech: (\S+)", espeak)
    m2 = re.search(r"SoX v(\S+)", sox)
    return (m1.group(1) if m1 else "?", m2.group(1) if m2 else "?")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_readme_records_tool_versions():
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    assert f"espeak-ng {ESPEAK_VERSION}" in readme
    assert f"SoX {SOX_VERSION}" in readme


def test_make_samples_is_reproducible(tmp_path):
    versions = tool_versions()
    if versions is None:
        pytest.skip("espeak-ng / sox not installed")
    outputs = []
    for run in ("a", "b"):
        work = tmp_path / run / "samples"
        work.mkdir(parents=True)
        shutil.copy(SAMPLES / "make_samples.sh", work)
        subprocess.run(["bash", str(work / "make_samples.sh")], check=True, capture_output=True)
        outputs.append({f: sha256(work / f) for f in GENERATED})
    assert outputs[0] == outputs[1], "two runs of make_samples.sh differ"
    if versions != (ESPEAK_VERSION, SOX_VERSION):
        pytest.skip(f"tool versions {versions} differ from the ones the samples were made with")
    committed = {f: sha256(SAMPLES / f) for f in GENERATED}
    stale = [f for f in GENERATED if committed[f] != outputs[0][f]]
    assert not stale, f"samples differ from make_samples.sh output, regenerate: {stale}"
