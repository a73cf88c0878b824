"""The quality gate's SNR estimate is not fooled by silence elsewhere in the recording."""

from __future__ import annotations

import math

import numpy as np
import soundfile as sf
from conftest import SHARED, run_cli


def _noisy(snr_db: float, seed: int = 5) -> tuple[np.ndarray, float]:
    """A real LibriSpeech utterance (12.6 s) with white noise at ``snr_db`` under its VAD speech."""
    from audiotools.audio.decode import load_audio
    from audiotools.speakers.embedding_cache import cut
    from audiotools.vad.silero import speech_regions

    x = load_audio(sorted((SHARED / "speakers" / "1688").glob("*.flac"))[1]).samples.astype(np.float64)
    p = float(np.mean(cut(x, speech_regions(x.astype(np.float32))) ** 2))
    noise = np.random.default_rng(seed).standard_normal(len(x)) * math.sqrt(p / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32), p


def test_snr_of_noisy_speech_padded_with_silence():
    """Noisy speech with 2 s of digital silence, or of a -70 dB floor, after it: the noise is the
    noise under the speech, not the quiet padding (which alone would read as 60 dB)."""
    from audiotools.speakers.quality import estimate_snr
    from audiotools.vad.silero import speech_regions

    x, p = _noisy(5.0)
    plain = estimate_snr(x, speech_regions(x))["snr_db"]
    floor = np.random.default_rng(1).standard_normal(32000).astype(np.float32) * np.float32(math.sqrt(p) * 10**-3.5)
    for pad in (np.zeros(32000, np.float32), floor):
        y = np.concatenate([pad[:16000], x, pad])
        est = estimate_snr(y, speech_regions(y))
        assert abs(est["snr_db"] - 5.0) < 2.0, est
        assert abs(est["snr_db"] - plain) < 1.0, (est, plain)
        assert est["method"].startswith("10th percentile"), est


def test_verify_refuses_noisy_speech_padded_with_silence(tmp_path):
    """The CLI: 5 dB speech with trailing silence gets no likelihood ratio (insufficient quality)."""
    import json

    x, _ = _noisy(5.0)
    questioned = tmp_path / "q.wav"
    sf.write(questioned, np.concatenate([x, np.zeros(32000, np.float32)]), 16000, subtype="FLOAT")
    known = sorted((SHARED / "speakers" / "1688").glob("*.flac"))[0]
    r = run_cli("verify", str(questioned), "--reference", str(known), "--json")
    assert r.returncode == 0, r.stderr
    units = json.loads(r.stdout)["units"]
    assert units
    for u in units:  # enough speech: the SNR alone stops it
        assert u["quality"]["net_speech_seconds"] >= 3.0, u
        assert u["quality"]["snr_db"] < 10.0, u
        assert not u["scored"] and u["verdict"] == "insufficient quality", u
        assert any("estimated SNR" in reason for reason in u["quality"]["reasons"]), u
