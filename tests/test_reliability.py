"""Issue 16: no crash on any input, bounded memory, forged headers refused, one-line errors.

Decoding runs in a child process (``reliability_corpus.run_harness``): a segfault or a hang fails
the test, naming the file, instead of killing the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT
from reliability_corpus import fuzz_corpus, hostile_inputs, run_harness

from audiotools.audio import decode
from audiotools.audio.decode import check_input_file, declared_seconds, load_audio, probe_audio
from audiotools.errors import InputError


def _one_line_naming(outcome) -> bool:
    text = str(outcome.detail)
    msg = text.split(": ", 1)[1] if ": " in text else text
    name = Path(outcome.path).name.replace("\n", "\\n")
    return "\n" not in msg and name in msg


# ---------------------------------------------------------------- many channels (the segfault)


@pytest.mark.parametrize(
    "channels,rate,fmt", [(8, 44100, "WAV"), (9, 48000, "WAV"), (16, 22050, "WAV"), (8, 48000, "FLAC")]
)
def test_many_channel_files_decode_in_a_subprocess(tmp_path, channels, rate, fmt):
    """8+ channels at a rate other than 16 kHz used to kill the process in PyAV's to_ndarray (exit 139)."""
    rng = np.random.default_rng(channels)
    x = (rng.standard_normal((rate // 2, channels)) * 0.1).astype(np.float32)
    p = tmp_path / f"many.{fmt.lower()}"
    sf.write(p, x, rate, format=fmt, subtype="PCM_16")
    code = (
        "import sys, numpy as np; from audiotools.audio.decode import load_audio;"
        "a = load_audio(sys.argv[1], keep_channels=True);"
        "assert a.channel_samples.shape[0] == a.info.channels;"
        "assert np.allclose(a.channel_samples.mean(axis=0), a.samples, atol=1e-6);"
        "print(a.info.channels, a.duration)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(p)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-2000:]}"
    ch, dur = r.stdout.split()
    assert int(ch) == channels and abs(float(dur) - 0.5) < 0.01


def test_resampled_pcm_is_unchanged_by_the_packed_resampler(tmp_path):
    """The interleaved resampler output equals the planar one bit for bit (PCM hashes of old
    transcripts still verify): the mono mix equals the mean of the kept channels exactly."""
    x = (np.random.default_rng(3).standard_normal((44100, 3)) * 0.2).astype(np.float32)
    p = tmp_path / "three.wav"
    sf.write(p, x, 44100, subtype="PCM_16")
    a = load_audio(p, keep_channels=True)
    mono = np.clip(a.channel_samples.mean(axis=0, dtype=np.float32), -1, 1)
    assert np.array_equal(mono, a.samples)


# ---------------------------------------------------------------- hostile files and the fuzz corpus


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    items = hostile_inputs(d)
    return items, run_harness([h.path for h in items], timeout=120)


def test_hostile_inputs_never_crash_and_fail_with_one_line(hostile):
    items, result = hostile
    assert len(items) >= 60
    problems = []
    for h, o in zip(items, result.outcomes):
        if o.status in ("crash", "hang", "uncaught"):
            problems.append(f"{h.name}: {o.status} {o.detail}")
        elif h.expect != "any" and o.status != h.expect:
            problems.append(f"{h.name}: expected {h.expect}, got {o.status} {o.detail}")
        elif o.status == "error" and not _one_line_naming(o):
            problems.append(f"{h.name}: error is not one line naming the file: {o.detail!r}")
        elif o.status == "ok" and h.warning and not any(h.warning in w for w in o.warnings):
            problems.append(f"{h.name}: no {h.warning!r} warning ({o.warnings})")
    assert not problems, "\n".join(problems)
    # forged durations (a 300 KB WAV at 1 Hz declaring 20 h, a FLAC declaring 2^36 samples, a WAV
    # declaring 4 GiB) cost memory for the samples present only
    assert result.peak_rss_mb < 1000, result.peak_rss_mb


def test_hostile_reasons_say_what_the_path_is(hostile):
    items, result = hostile
    reason = {h.name: str(o.detail) for h, o in zip(items, result.outcomes)}
    assert "symbolic link loop" in reason["symlink loop"]
    assert "named pipe" in reason["FIFO"]
    assert "is a device" in reason["/dev/zero"]
    assert "is a directory" in reason["directory x.wav"]
    assert "broken symbolic link" in reason["broken symlink"]
    assert "1 Hz" in reason["rate1_300k.wav"]
    assert "300 audio channels" in reason["channels300.wav"]
    assert "codec is unknown" in reason["tag_unknown.wav"]


def test_fuzz_corpus_raises_only_input_errors(tmp_path):
    """A seeded corpus of mutated WAV/FLAC/OGG/MP3/Opus/M4A files: no signal, no hang, no exception
    type outside audiotools.errors, every error one line naming the file."""
    paths = fuzz_corpus(tmp_path, 360, seed=16)
    result = run_harness(paths, timeout=120)
    bad = [f"{Path(o.path).name}: {o.status} {o.detail}" for o in result.outcomes if o.status not in ("ok", "error")]
    assert not bad, "\n".join(bad)
    assert result.count("error") > 50 and result.count("ok") > 50  # the corpus exercises both outcomes
    not_one_line = [o.detail for o in result.outcomes if o.status == "error" and not _one_line_naming(o)]
    assert not not_one_line, not_one_line[:5]
    assert result.restarts == 0 and result.peak_rss_mb < 1000


# ---------------------------------------------------------------- budgets and truncation


def test_decode_budget_refuses_a_decompression_bomb(tmp_path, monkeypatch):
    """Decoding stops with an InputError once the samples exceed the budget for the file's size
    (lowered here, so a real 30 s FLAC stands in for a bomb)."""
    p = tmp_path / "silence.flac"
    sf.write(p, np.zeros(16000 * 30, dtype=np.float32), 16000)
    monkeypatch.setattr(decode, "BUDGET_BASE_SECONDS", 5.0)
    monkeypatch.setattr(decode, "BUDGET_BYTES_PER_SECOND", 1e9)
    with pytest.raises(InputError, match="decompression bomb"):
        load_audio(p)
    p44 = tmp_path / "silence44.flac"
    sf.write(p44, np.zeros(44100 * 30, dtype=np.float32), 44100)  # the FFmpeg path too
    with pytest.raises(InputError, match="decompression bomb"):
        load_audio(p44)
    monkeypatch.undo()
    assert abs(load_audio(p).duration - 30) < 0.01


@pytest.mark.parametrize("rate", [16000, 44100])  # soundfile path, FFmpeg path
def test_truncated_wav_warns_on_every_path(tmp_path, rate):
    p = tmp_path / "cut.wav"
    sf.write(p, np.zeros(rate * 4, dtype=np.float32) + 0.1, rate, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert abs(declared_seconds(p) - 4.0) < 1e-6
    a = load_audio(p)
    assert 1.9 < a.duration < 2.1
    assert any("truncated" in w and "4.00 s" in w for w in a.warnings), a.warnings


def test_input_checks_name_what_the_path_is(tmp_path):
    loop = tmp_path / "loop.wav"
    os.symlink("loop.wav", loop)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path, words in [(loop, "symbolic link loop"), (fifo, "named pipe"), (Path("/dev/zero"), "is a device")]:
        with pytest.raises(InputError, match=words):
            check_input_file(path)
        with pytest.raises(InputError, match=words):
            probe_audio(path)
    bad = tmp_path / "tag.wav"
    sf.write(bad, np.zeros(1600, dtype=np.float32), 16000, subtype="PCM_16")
    b = bytearray(bad.read_bytes())
    b[20:22] = (0x1234).to_bytes(2, "little")
    bad.write_bytes(bytes(b))
    with pytest.raises(InputError, match="codec is unknown"):
        probe_audio(bad)


def test_control_characters_in_a_file_name_stay_on_one_line(tmp_path):
    p = tmp_path / "a\nb.wav"
    p.write_bytes(b"")
    with pytest.raises(InputError) as e:
        load_audio(p)
    assert "\n" not in str(e.value) and "a\\nb.wav" in str(e.value)
