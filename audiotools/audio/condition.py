"""Recording conditions (channels) for speaker comparison: detection and simulation.

A speaker embedding depends on the channel as much as on the voice. Measured on LibriSpeech with
the former GE2E embeddings, raw cosine scoring of a clean enrolment against a telephone-band test
gave an equal error rate above 15 % (about 1 % clean against clean), badly miscalibrated; CAM++
narrows the gap but is still trained mostly on wideband speech. The cure used here is *condition
matching*: both sides of a comparison are brought into the same, most degraded, condition before embedding:

* the questioned recording's condition is detected (:func:`detect`),
* the known (enrolment / reference) audio is passed through a simulation of that channel
  (:func:`simulate`): 8 kHz, 300-3400 Hz band-pass, then G.711 mu-law companding or a low-rate
  speech codec (AMR-NB 12.2 kbit/s through FFmpeg, standing in for GSM/AMR),
* a condition-specific score-normalisation cohort and calibration are used
  (``audiotools/data/calibration``).

Conditions, from least to most degraded:

``wideband``         16 kHz or more, energy above 4 kHz (interviews, speeches, microphones)
``telephone``        telephone band (8 kHz sampling or no energy above ~4 kHz), PCM / G.711 codecs
``telephone-codec``  telephone band through a low-bit-rate speech codec (GSM, AMR-NB, ...)

Detection uses the codec name and source sample rate that FFmpeg reports and the measured
bandwidth: the energy between 4.3 and 7.6 kHz relative to the 300-3400 Hz band (about -15 dB for
wideband speech, below -55 dB for telephone audio resampled to 16 kHz).
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from audiotools.audio import SAMPLE_RATE

log = logging.getLogger(__name__)

WIDEBAND = "wideband"
TELEPHONE = "telephone"
TELEPHONE_CODEC = "telephone-codec"
CONDITIONS = (WIDEBAND, TELEPHONE, TELEPHONE_CODEC)  # ordered: least to most degraded
DESCRIPTIONS = {
    WIDEBAND: "wideband (16 kHz or more, full speech band)",
    TELEPHONE: "telephone band (8 kHz, 300-3400 Hz, G.711/PCM)",
    TELEPHONE_CODEC: "telephone band through a low-rate speech codec (GSM/AMR)",
}
# Codec names as FFmpeg reports them.
LOWRATE_CODECS = {
    "gsm",
    "gsm_ms",
    "libgsm",
    "libgsm_ms",
    "amr_nb",
    "amrnb",
    "libopencore_amrnb",
    "amr",
    "g723_1",
    "g729",
    "ilbc",
    "qcelp",
    "evrc",
    "sipr",
    "ra_144",
    "ra_288",
    "speex",
    "libspeex",
    "truespeech",
    "adpcm_g726",
    "g726",
    "adpcm_g726le",
    "dss_sp",
    "smv",
    "acelp.kelvin",
}
NARROWBAND_CODECS = {"pcm_mulaw", "pcm_alaw", "mulaw", "alaw", "u-law", "a-law", "ulaw", "pcm_vidc"}
NARROWBAND_RATE = 11025  # a source sampled at or below this rate cannot hold wideband speech
HF_THRESHOLD_DB = -50.0  # energy 4.3-7.6 kHz vs 0.3-3.4 kHz below this: band-limited
SIMULATION_VERSION = 1  # part of the embedding-cache key: bump when simulate() changes


@dataclass
class ChannelInfo:
    """What we know about a recording's channel, and the condition it implies."""

    condition: str
    source_sample_rate: int | None = None
    codec: str | None = None
    hf_energy_db: float | None = None  # energy above 4.3 kHz relative to 300-3400 Hz, dB
    reasons: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.condition, self.condition)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["description"] = self.description
        if d["hf_energy_db"] is not None:
            d["hf_energy_db"] = round(d["hf_energy_db"], 1)
        return d


def check_condition(condition: str) -> str:
    from audiotools.errors import UsageError

    if condition not in CONDITIONS:
        raise UsageError(f"unknown recording condition {condition!r} (choose from {', '.join(CONDITIONS)})")
    return condition


def worst(*conditions: str) -> str:
    """The most degraded of ``conditions`` (the one both sides of a comparison are brought to)."""
    cs = [c for c in conditions if c]
    return max(cs, key=CONDITIONS.index) if cs else WIDEBAND


def welch_psd(x: np.ndarray, sample_rate: int, nperseg: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.welch(x, sample_rate, nperseg=nperseg)`` with its defaults (periodic Hann
    window, half overlap, mean removed per segment, density scaling, one-sided, mean of the
    segments), as whole-array numpy operations. scipy >= 1.12 routes welch through ShortTimeFFT,
    which detrends and transforms every segment in a Python loop: half of the identify step's time.
    Returns (frequencies, power spectral density)."""
    step = nperseg // 2
    n = (len(x) - nperseg) // step + 1
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nperseg) / nperseg)
    freqs = np.fft.rfftfreq(nperseg, 1.0 / sample_rate)
    total = np.zeros(len(freqs))
    x = np.asarray(x, dtype=np.float64)
    block = 4096  # segments per FFT call: bounded memory
    for b0 in range(0, n, block):
        idx = (np.arange(b0, min(n, b0 + block)) * step)[:, None] + np.arange(nperseg)[None]
        seg = x[idx]
        seg -= seg.mean(axis=1, keepdims=True)
        total += np.square(np.abs(np.fft.rfft(seg * window, axis=1))).sum(axis=0)
    psd = total / max(n, 1) / (sample_rate * np.square(window).sum())
    psd[1 : -1 if nperseg % 2 == 0 else None] *= 2  # one-sided: every bin but DC (and Nyquist)
    return freqs, psd


def hf_energy_db(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Energy between 4.3 and 7.6 kHz relative to the 300-3400 Hz band, in dB (None if silent)."""
    if len(samples) < 1024:
        return None
    x = samples
    max_len = 120 * sample_rate  # two minutes are plenty for a spectrum estimate
    if len(x) > max_len:
        idx = np.linspace(0, len(x) - max_len // 8, 8).astype(int)
        x = np.concatenate([x[i : i + max_len // 8] for i in idx])
    f, p = welch_psd(x, sample_rate, nperseg=512)
    band = float(p[(f >= 300) & (f <= 3400)].sum())
    high = float(p[(f >= 4300) & (f <= 7600)].sum())
    if band <= 1e-20:
        return None
    return 10.0 * np.log10(high / band + 1e-20)


def detect(samples: np.ndarray, source_sample_rate: int | None = None, codec: str | None = None) -> ChannelInfo:
    """The condition of a recording from its codec, source rate and measured bandwidth."""
    reasons: list[str] = []
    codec_l = (codec or "").lower()
    hf = hf_energy_db(samples)
    narrow = False
    if source_sample_rate and source_sample_rate <= NARROWBAND_RATE:
        narrow = True
        reasons.append(f"source sampled at {source_sample_rate} Hz")
    if codec_l in NARROWBAND_CODECS:
        narrow = True
        reasons.append(f"telephone codec {codec}")
    if hf is not None and hf < HF_THRESHOLD_DB:
        narrow = True
        reasons.append(f"no energy above 4 kHz ({hf:.0f} dB relative to 300-3400 Hz)")
    lowrate = codec_l in LOWRATE_CODECS or codec_l.startswith(("amr", "gsm", "g72", "g729"))
    if lowrate:
        reasons.append(f"low-rate speech codec {codec}")
        condition = TELEPHONE_CODEC
    elif narrow:
        condition = TELEPHONE
    else:
        condition = WIDEBAND
        if hf is not None:
            reasons.append(f"energy above 4 kHz present ({hf:.0f} dB relative to 300-3400 Hz)")
    return ChannelInfo(
        condition=condition, source_sample_rate=source_sample_rate, codec=codec, hf_energy_db=hf, reasons=reasons
    )


def detect_audio(audio) -> ChannelInfo:
    """:func:`detect` for a :class:`audiotools.audio.decode.DecodedAudio`."""
    return detect(audio.samples, audio.info.source_sample_rate, audio.info.codec)


# ----------------------------------------------------------------------------------------- simulation
def _speech_level(x: np.ndarray, frame: int = 160) -> float:
    n = len(x) // frame
    if n == 0:
        return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0
    rms = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame)), axis=1))
    return float(np.percentile(rms, 90))


def _to_telephone_band(samples: np.ndarray) -> np.ndarray:
    """16 kHz -> 8 kHz, 300-3400 Hz band-pass (8th-order Butterworth, zero phase), at a phone level."""
    from scipy import signal

    y = signal.resample_poly(np.asarray(samples, dtype=np.float64), 1, 2)
    sos = signal.butter(8, [300, 3400], btype="bandpass", fs=8000, output="sos")
    if len(y) > 64:
        y = signal.sosfiltfilt(sos, y)
    level = _speech_level(y)
    if level > 1e-6:  # speech at about -20 dBFS (loud frames), as a phone line carries it
        y = y * (0.1 / level)
    return np.clip(y, -1.0, 1.0)


def mulaw(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """G.711 mu-law companding with 8-bit quantisation (encode + decode)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1.0) * 127.5) / 127.5 - 1.0
    return np.sign(q) * ((1.0 + mu) ** np.abs(q) - 1.0) / mu


def amr_roundtrip(x8k: np.ndarray, bit_rate: int = 12200) -> np.ndarray | None:
    """Encode and decode 8 kHz audio with AMR-NB through FFmpeg (PyAV); None when no encoder."""
    import av

    try:
        av.codec.Codec("libopencore_amrnb", "w")
    except Exception:
        return None
    pcm = (np.clip(x8k, -1.0, 1.0) * 32767).astype(np.int16)
    buf = io.BytesIO()
    try:
        with av.open(buf, "w", format="amr") as out:
            st = out.add_stream("libopencore_amrnb", rate=8000)
            st.bit_rate = bit_rate
            st.layout = "mono"
            fr = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
            fr.sample_rate = 8000
            for p in st.encode(fr):
                out.mux(p)
            for p in st.encode(None):
                out.mux(p)
        buf.seek(0)
        parts = []
        with av.open(buf, "r") as inp:
            for f in inp.decode(audio=0):
                parts.append(f.to_ndarray().reshape(-1))
    except Exception as e:  # pragma: no cover - depends on the FFmpeg build
        log.debug("AMR-NB simulation failed (%s); falling back to mu-law", e)
        return None
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    y = y.astype(np.float64) / 32768.0 if y.dtype == np.int16 else y.astype(np.float64)
    d = 40  # codec delay (samples at 8 kHz); irrelevant for embeddings, kept for alignment
    y = y[d : d + len(x8k)]
    if len(y) < len(x8k):
        y = np.pad(y, (0, len(x8k) - len(y)))
    return y


def simulate(samples: np.ndarray, condition: str) -> np.ndarray:
    """``samples`` (16 kHz float32) as they would sound through ``condition``'s channel, at 16 kHz.

    ``wideband`` returns the input. Deterministic (no random noise is added).
    """
    from scipy import signal

    if condition == WIDEBAND or len(samples) == 0:
        return samples
    y = _to_telephone_band(samples)
    if condition == TELEPHONE_CODEC:
        coded = amr_roundtrip(y)
        y = coded if coded is not None else mulaw(y)
    else:
        y = mulaw(y)
    return signal.resample_poly(y, 2, 1).astype(np.float32)
