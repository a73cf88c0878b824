"""Audio loading on real files and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from conftest import JFK, SAMPLES, SHARED

from audiotools.audio.decode import SAMPLE_RATE, load_audio, pcm_sha256
from audiotools.errors import InputError
from audiotools.fileio import sha256_file


def test_flac_44k_stereo_to_16k_mono():
    a = load_audio(JFK, keep_channels=True)
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1
    assert a.info.sample_rate == SAMPLE_RATE and a.info.source_sample_rate == 44100
    assert abs(a.duration - 11.0) < 0.01
    assert a.info.sha256 == sha256_file(JFK)
    assert a.info.pcm_sha256 == pcm_sha256(a.samples)
    assert "pyav" in a.info.decoder and "libavcodec" in a.info.decoder
    # the file's two channels are kept for per-channel use, and their mean is the mono signal
    assert a.channel_samples.shape == (2, len(a.samples))
    np.testing.assert_allclose(a.channel_samples.mean(axis=0), a.samples, atol=1e-6)


def test_soundfile_fast_path_equals_ffmpeg_path(tmp_path):
    """A 16 kHz WAV decodes to the same PCM hash whether soundfile or FFmpeg reads it."""
    from audiotools.audio import decode as audio_mod

    p = SHARED / "diarization" / "sample.wav"
    fast = load_audio(p)
    assert fast.info.decoder.startswith("soundfile")
    sink, *_ = audio_mod._load_pyav(p, False, audio_mod.decode_budget_seconds(p.stat().st_size))
    mono, _ = sink.result()
    assert pcm_sha256(mono) == fast.info.pcm_sha256


def test_8khz_mulaw_phone_audio_is_resampled():
    a = load_audio(SAMPLES / "phone_call.wav", keep_channels=True)
    assert a.info.source_sample_rate == 8000 and a.info.codec == "pcm_mulaw"
    assert a.channel_samples.shape[0] == 2
    assert abs(a.duration - 22.859) < 0.01


@pytest.mark.parametrize("fmt,codec", [("mp3", "mp3"), ("ogg", "libopus"), ("m4a", "aac")])
def test_compressed_containers(tmp_path, fmt, codec):
    """Encode JFK with FFmpeg (PyAV) into lossy formats; each decodes to ~11 s at 16 kHz."""
    import av

    src = load_audio(JFK).samples
    out = tmp_path / f"jfk.{fmt}"
    with av.open(str(out), "w") as c:
        rate = 48000 if codec == "libopus" else 16000 if codec == "mp3" else 16000
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        resampler = av.AudioResampler(format=s.format.name if s.format else "fltp", layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(src[None, :], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for f in resampler.resample(frame):
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    a = load_audio(out)
    assert abs(a.duration - 11.0) < 0.15
    # the decoded signal still follows the original speech envelope (allowing for codec delay)
    n = min(len(a.samples), len(src)) - 8000
    env = lambda x: np.sqrt(np.convolve(x**2, np.ones(1600) / 1600, mode="valid"))[::160]
    best = max(np.corrcoef(env(a.samples[lag : lag + n]), env(src[:n]))[0, 1] for lag in range(0, 4800, 80))
    assert best > 0.9


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file") as e:
        load_audio(tmp_path / "nope.wav")
    assert str(tmp_path / "nope.wav") in str(e.value)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp3"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_audio(p)


def test_non_audio_bytes(tmp_path):
    p = tmp_path / "notes.wav"
    p.write_text("this is a text file, not audio\n" * 50)
    with pytest.raises(InputError, match="not an audio file") as e:
        load_audio(p)
    assert "notes.wav" in str(e.value) and "\n" not in str(e.value)


def test_zero_length_audio(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(InputError, match="zero length"):
        load_audio(p)


def test_truncated_flac_decodes_the_readable_part_with_a_warning(tmp_path):
    data = JFK.read_bytes()
    p = tmp_path / "cut.flac"
    p.write_bytes(data[: len(data) * 4 // 10])
    a = load_audio(p)
    assert 2.0 < a.duration < 6.0
    assert any("truncated" in w for w in a.warnings)


def test_nan_samples_are_replaced_and_reported(tmp_path):
    x = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    x[100:300] = np.nan
    x[500] = np.inf
    p = tmp_path / "nan.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    a = load_audio(p)
    assert np.isfinite(a.samples).all()
    assert any("201 non-finite" in w for w in a.warnings)


def test_decode_sink_grows_and_shrinks_its_buffer_in_place_keeping_every_sample(tmp_path):
    """A stream longer than its first buffer (no declared duration: 60 s) grows it in place; the
    result holds exactly the pushed samples, mixed to mono, and the unused tail is given back."""
    from audiotools.audio.decode import _Sink

    rng = np.random.default_rng(0)
    sizes = [SAMPLE_RATE * 50, SAMPLE_RATE * 30, SAMPLE_RATE * 45, 1234]
    blocks = [rng.uniform(-0.5, 0.5, (2, n)).astype(np.float32) for n in sizes]
    sink = _Sink(tmp_path / "x.wav", False, None, budget_seconds=3600)
    first_cap = sink.cap
    for b in blocks:
        sink.push(np.ascontiguousarray(b))
    mono, chans = sink.result()
    expected = np.concatenate([b.mean(axis=0, dtype=np.float32) for b in blocks])
    assert sink.cap >= len(expected) > first_cap and chans is None
    assert len(mono) == len(expected) and np.array_equal(mono, expected)
    assert mono.base is None or mono.base.size <= len(expected) * 1.1 + SAMPLE_RATE  # no unused tail kept
