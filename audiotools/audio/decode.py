"""Audio loading: any file FFmpeg decodes -> 16 kHz float32 (mono, and per channel on request).

Decoding uses PyAV (FFmpeg's libraries, bundled in the wheel); WAV/FLAC/OGG files that are
already at 16 kHz take a soundfile fast path. Both paths produce the same samples: channels
are resampled independently to float32 and mixed down by their mean, so the PCM hash does
not depend on the path. Memory: one float32 array per kept channel plus one decoded frame;
never a float64 copy of the whole file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import InputError
from audiotools.fileio import sha256_file
from audiotools.transcript import AudioInfo

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = {
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".opus",
    ".oga",
    ".m4a",
    ".aac",
    ".amr",
    ".wma",
    ".aiff",
    ".aif",
    ".au",
    ".caf",
    ".mka",
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".3gp",
    ".ts",
    ".mpg",
    ".mpeg",
    ".spx",
    ".ac3",
    ".wv",
    ".gsm",
}
_SF_FAST = {".wav", ".flac", ".ogg"}


@dataclass
class DecodedAudio:
    samples: np.ndarray  # float32 mono at SAMPLE_RATE
    info: AudioInfo
    channel_samples: np.ndarray | None = None  # float32 (channels, n) at SAMPLE_RATE, when asked for
    warnings: list[str] = field(default_factory=list)
    # Silero speech regions (s) as vad.speech_regions gives them with its default options, once the
    # transcription has computed them: identification reuses them instead of running VAD again
    speech: list[tuple[float, float]] | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decoder_versions() -> dict[str, str]:
    import av
    import soundfile

    return {
        "pyav": av.__version__,
        "ffmpeg_libavcodec": _libavcodec_version(),
        "soundfile": soundfile.__version__,
        "libsndfile": soundfile.__libsndfile_version__,
    }


def _libavcodec_version() -> str:
    import av

    v = av.library_versions.get("libavcodec", ())
    return ".".join(str(x) for x in v)


def pcm_sha256(samples: np.ndarray) -> str:
    """sha256 of the mono PCM as float32 little-endian bytes (hashed in place, in blocks)."""
    h = hashlib.sha256()
    block = 1 << 22
    for i in range(0, len(samples), block):
        h.update(memoryview(np.ascontiguousarray(samples[i : i + block], dtype="<f4")).cast("B"))
    return h.hexdigest()


def check_input_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise InputError(p, "permission denied")
    if p.stat().st_size == 0:
        raise InputError(p, "empty file (0 bytes)")
    return p


def load_audio(path: str | os.PathLike, *, keep_channels: bool = False, hash_source: bool = True) -> DecodedAudio:
    """Decode ``path`` to 16 kHz float32. Raises :class:`InputError` with a one-line reason."""
    p = check_input_file(path)
    result = None
    if p.suffix.lower() in _SF_FAST:
        result = _load_soundfile(p, keep_channels)
    if result is None:
        result = _load_pyav(p, keep_channels)
    chans, src_rate, codec, container, decoder, warnings = result
    n_ch = chans.shape[0]
    if chans.shape[1] == 0:
        raise InputError(p, "contains no audio samples (zero length)")
    bad = ~np.isfinite(chans)
    if bad.any():
        count = int(bad.sum())
        chans[bad] = 0.0
        warnings.append(f"{count} non-finite (NaN/Inf) samples replaced by silence")
        log.warning("%s: %d non-finite (NaN/Inf) samples replaced by silence", p, count)
    # mono shares memory with a single channel (no copy of a multi-hour signal)
    mono = chans[0] if n_ch == 1 else chans.mean(axis=0, dtype=np.float32)
    np.clip(mono, -1.0, 1.0, out=mono)
    info = AudioInfo(
        path=str(p),
        sha256=sha256_file(p) if hash_source else "",
        pcm_sha256=pcm_sha256(mono),
        duration=round(len(mono) / SAMPLE_RATE, 3),
        sample_rate=SAMPLE_RATE,
        channels=n_ch,
        source_sample_rate=src_rate,
        codec=codec,
        container=container,
        decoder=decoder,
    )
    return DecodedAudio(
        samples=mono, info=info, channel_samples=chans if keep_channels and n_ch > 1 else None, warnings=warnings
    )


def _load_soundfile(p: Path, keep_channels: bool):
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except Exception:
        return None  # let FFmpeg try (and produce the error message)
    if info.samplerate != SAMPLE_RATE:
        return None
    try:
        data = sf.read(str(p), dtype="float32", always_2d=False)[0]
    except Exception as e:  # truncated / corrupt: FFmpeg decodes what is readable
        log.debug("soundfile failed on %s (%s); falling back to FFmpeg", p, e)
        return None
    chans = data[None, :] if data.ndim == 1 else np.ascontiguousarray(data.T)
    decoder = f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__})"
    return chans, info.samplerate, info.subtype.lower(), info.format.lower(), decoder, []


def _load_pyav(p: Path, keep_channels: bool):
    import av

    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise InputError(p, "not an audio file FFmpeg can decode (invalid data)") from None
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(p, f"cannot open: {_ffmsg(e)}") from None
    warnings: list[str] = []
    with container:
        streams = container.streams.audio
        if not streams:
            raise InputError(p, "has no audio stream")
        stream = streams[0]
        stream.thread_type = "AUTO"
        n_ch = stream.codec_context.channels or 1
        layout = stream.codec_context.layout.name if stream.codec_context.layout else None
        src_rate = stream.codec_context.sample_rate or stream.rate
        codec = stream.codec_context.name
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1e6
        est = int((duration or 60.0) * SAMPLE_RATE * 1.02) + SAMPLE_RATE
        buf = np.zeros((n_ch, est), dtype=np.float32)
        pos = 0
        resampler = av.AudioResampler(format="fltp", layout=layout or n_ch, rate=SAMPLE_RATE)

        def push(frames):
            nonlocal buf, pos
            for fr in frames:
                arr = fr.to_ndarray()  # (channels, n) float32 planar
                if arr.shape[0] != n_ch:
                    arr = arr[:n_ch] if arr.shape[0] > n_ch else np.repeat(arr, n_ch, axis=0)[:n_ch]
                n = arr.shape[1]
                if pos + n > buf.shape[1]:
                    grown = np.zeros((n_ch, max(buf.shape[1] * 3 // 2, pos + n)), dtype=np.float32)
                    grown[:, :pos] = buf[:, :pos]
                    buf = grown
                buf[:, pos : pos + n] = arr
                pos += n

        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler keep its own timeline
                push(resampler.resample(frame))
        except av.error.FFmpegError as e:
            corrupt = isinstance(e, av.error.InvalidDataError)
            if pos == 0:
                raise InputError(p, f"{'not decodable audio' if corrupt else 'decoding failed'}: {_ffmsg(e)}") from None
            what = "stream corrupt or truncated" if corrupt else "decoding stopped"
            msg = f"{what} after {pos / SAMPLE_RATE:.2f} s ({_ffmsg(e)}); decoded what was readable"
            warnings.append(msg)
            log.warning("%s: %s", p, msg)
        push(resampler.resample(None))
        if duration and pos < 0.9 * duration * SAMPLE_RATE - SAMPLE_RATE:
            msg = f"decoded {pos / SAMPLE_RATE:.2f} s of a stream that declares {duration:.2f} s (truncated file?)"
            warnings.append(msg)
            log.warning("%s: %s", p, msg)
        chans = buf[:, :pos]
        if buf.shape[1] > pos * 1.1:
            chans = chans.copy()
        decoder = f"pyav {av.__version__} (libavcodec {_libavcodec_version()}, swresample)"
        return chans, src_rate, codec, container.format.name, decoder, warnings


def _ffmsg(e: Exception) -> str:
    s = getattr(e, "strerror", None) or str(e)
    return s.strip().splitlines()[0] if s else type(e).__name__
