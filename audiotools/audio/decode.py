"""Audio loading: any file FFmpeg decodes -> 16 kHz float32 (mono, and per channel on request).

Decoding uses PyAV (FFmpeg's libraries, bundled in the wheel); WAV/FLAC/OGG files that are
already at 16 kHz take a soundfile fast path. Both paths produce the same samples: channels
are resampled independently to float32 and mixed down by their mean, so the PCM hash does
not depend on the path.

Hostile input (issue 16): every failure is an :class:`InputError` (one line, the file named).
The header is checked before decoding (channels 1-256, sample rate 2-768 kHz, a decoder for
the codec); the stream is decoded frame by frame into the mono mix (and the channels only
when asked for), so memory follows the samples actually present, never the duration the
header declares; the decoded length is capped at ``600 s + file size / 8 bytes`` (a
decompression bomb is refused); a file that holds less than its header declares (WAV, FLAC,
any FFmpeg stream) gets a truncation warning. The resampler writes interleaved float32 (PyAV
crashes converting planar frames of 8 or more channels); the values are the same.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiotools.audio import SAMPLE_RATE
from audiotools.errors import AudiotoolsError, InputError
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

MIN_SAMPLE_RATE = 2000  # below this a "recording" is a forged header (1 Hz: hours of noise from bytes)
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 256
# decoded length allowed for a file of ``size`` bytes: BUDGET_BASE_SECONDS + size / BUDGET_BYTES_PER_SECOND.
# Real codecs need far more than 8 bytes per second (FLAC digital silence about 60, Opus 6 kbit/s 750),
# so only a decompression bomb or a forged header reaches it
BUDGET_BASE_SECONDS = 600.0
BUDGET_BYTES_PER_SECOND = 8.0
_PREALLOC_MAX_SECONDS = 2 * 3600  # the first buffer never exceeds this, whatever the header says
_BLOCK_FRAMES = 1 << 18  # soundfile path: frames per block


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


def _one_line(e: BaseException) -> str:
    s = getattr(e, "strerror", None) or str(e)
    s = s.strip().splitlines()[0] if s and s.strip() else ""
    return s or type(e).__name__


def check_input_file(path: str | os.PathLike) -> Path:
    """The path is a readable, non-empty regular file (no file is opened: a FIFO would block).
    Raises :class:`InputError` naming what the path is instead."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise InputError(p, "broken symbolic link (its target does not exist)") from None
        raise InputError(p, "no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(p, "symbolic link loop (the link resolves back to itself)") from None
        if e.errno == errno.ENAMETOOLONG:
            raise InputError(p, "file name too long for this file system") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise InputError(p, "permission denied") from None
        if e.errno == errno.ENOTDIR:
            raise InputError(p, "no such file (a part of the path is not a directory)") from None
        raise InputError(p, f"cannot read: {_one_line(e)}") from None
    except ValueError as e:  # an embedded NUL byte
        raise InputError(p, f"invalid path ({_one_line(e)})") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise InputError(p, "is a directory, not an audio file")
    if stat.S_ISFIFO(mode):
        raise InputError(p, "is a named pipe (FIFO), not a regular file: save the audio to a file first")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise InputError(p, "is a device, not a regular file")
    if stat.S_ISSOCK(mode):
        raise InputError(p, "is a socket, not a regular file")
    if not stat.S_ISREG(mode):
        raise InputError(p, "not a regular file")
    if not os.access(p, os.R_OK):
        raise InputError(p, "permission denied")
    if st.st_size == 0:
        raise InputError(p, "empty file (0 bytes)")
    return p


def decode_budget_seconds(size_bytes: int) -> float:
    """The most audio (seconds) a file of ``size_bytes`` may decode to."""
    return BUDGET_BASE_SECONDS + size_bytes / BUDGET_BYTES_PER_SECOND


def _check_format(p: Path, channels, rate, what: str = "header") -> None:
    if not isinstance(channels, int) or channels <= 0:
        raise InputError(p, f"the {what} declares {channels} audio channels")
    if channels > MAX_CHANNELS:
        raise InputError(p, f"the {what} declares {channels} audio channels (at most {MAX_CHANNELS} are supported)")
    if not rate or rate < MIN_SAMPLE_RATE or rate > MAX_SAMPLE_RATE:
        raise InputError(
            p,
            f"the {what} declares a sample rate of {rate} Hz (supported: {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)",
        )


def declared_seconds(path: str | os.PathLike) -> float | None:
    """Seconds of audio a WAV or FLAC header declares (None: another format, or no usable header)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    try:
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            i, rate, align = 12, None, None
            while i + 8 <= len(head):
                cid, size = head[i : i + 4], struct.unpack("<I", head[i + 4 : i + 8])[0]
                if cid == b"fmt " and i + 22 <= len(head):
                    rate = struct.unpack("<I", head[i + 12 : i + 16])[0]
                    align = struct.unpack("<H", head[i + 20 : i + 22])[0]
                elif cid == b"data":
                    return size / align / rate if rate and align else None
                i += 8 + size + (size & 1)
            return None
        if head[:4] == b"fLaC" and len(head) >= 26 and head[4] & 0x7F == 0:
            info = int.from_bytes(head[18:26], "big")  # rate 20 bits, channels 3, bits 5, samples 36
            rate, total = info >> 44, info & ((1 << 36) - 1)
            return total / rate if rate and total else None
    except struct.error:
        return None
    return None


class _Sink:
    """Decoded chunks -> the mono mix (and the channels when kept), within the decode budget."""

    def __init__(self, p: Path, keep_channels: bool, declared: float | None, budget_seconds: float):
        self.p, self.keep = p, keep_channels
        self.max_samples = int(budget_seconds * SAMPLE_RATE)
        est = declared if declared and declared > 0 else 60.0
        self.cap = int(min(est, budget_seconds, _PREALLOC_MAX_SECONDS) * SAMPLE_RATE * 1.02) + SAMPLE_RATE
        self.mono = np.zeros(self.cap, dtype=np.float32)
        self.chans: np.ndarray | None = None
        self.n_ch = 0
        self.pos = 0
        self.nonfinite = 0

    def _grow(self, need: int) -> None:
        cap = max(self.cap * 3 // 2, need)
        # in place: a buffer this large is reallocated by remapping its pages, not copied, so the old
        # and the new buffer are never held together (a 4 h file peaked at twice its size). The sink
        # holds the only reference to it: views are made in result() only.
        self.mono.resize(cap, refcheck=False)
        if self.chans is not None:
            chans = np.zeros((self.chans.shape[0], cap), dtype=np.float32)
            chans[:, : self.pos] = self.chans[:, : self.pos]
            self.chans = chans
        self.cap = cap

    def push(self, arr: np.ndarray) -> None:
        """``arr``: float32 (channels, n), C-contiguous."""
        ch, n = arr.shape
        if n == 0:
            return
        if self.n_ch == 0:
            self.n_ch = ch
        if self.pos + n > self.max_samples:
            raise InputError(
                self.p,
                f"decodes to more than {self.max_samples / SAMPLE_RATE:.0f} s of audio from "
                f"{self.p.stat().st_size} bytes (a forged header or a decompression bomb); refused",
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            self.nonfinite += int(bad.sum())
            arr = arr.copy()
            arr[bad] = 0.0
        if ch != self.n_ch and self.keep:  # a mid-stream channel change: keep the first layout's count
            arr = arr[: self.n_ch] if ch > self.n_ch else np.repeat(arr, self.n_ch, axis=0)[: self.n_ch]
            arr = np.ascontiguousarray(arr)
            ch = self.n_ch
        if self.pos + n > self.cap:
            self._grow(self.pos + n)
        # the mean over channels row by row, as numpy reduces a (channels, n) array: the same float32
        # sums whatever the block size, so the PCM hash does not depend on how the file was read
        self.mono[self.pos : self.pos + n] = arr[0] if ch == 1 else arr.mean(axis=0, dtype=np.float32)
        if self.keep and self.n_ch > 1:
            if self.chans is None:
                self.chans = np.zeros((self.n_ch, self.cap), dtype=np.float32)
            self.chans[:, self.pos : self.pos + n] = arr
        self.pos += n

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        chans = None if self.chans is None else self.chans[:, : self.pos]
        if self.cap > self.pos * 1.1 + SAMPLE_RATE:  # give the unused tail back (in place, as in _grow)
            self.mono.resize(self.pos, refcheck=False)
            self.cap = self.pos
            chans = None if chans is None else chans.copy()
        return self.mono[: self.pos], chans


def probe_audio(path: str | os.PathLike) -> Path:
    """Cheap checks before any model loads: the file (``check_input_file``) and its header (a
    container FFmpeg or libsndfile opens, an audio stream, a decoder, channels and sample rate in
    range). Decodes nothing. Raises :class:`InputError`."""
    p = check_input_file(path)
    try:
        if p.suffix.lower() in _SF_FAST:
            import soundfile as sf

            try:
                info = sf.info(str(p))
            except Exception:
                info = None
            if info is not None:
                _check_format(p, info.channels, info.samplerate)
                return p
        with _open_container(p) as container:
            _audio_stream(p, container)
        return p
    except AudiotoolsError:
        raise
    except MemoryError:
        raise InputError(p, "header too large to read") from None
    except Exception as e:
        raise InputError(p, f"unreadable header ({type(e).__name__}: {_one_line(e)})") from None


def _audio_stream(p: Path, container):
    streams = container.streams.audio
    if not streams:
        raise InputError(p, "has no audio stream")
    stream = streams[0]
    cc = stream.codec_context
    if cc is None:
        raise InputError(p, "the audio stream's codec is unknown or unsupported (no decoder)")
    _check_format(p, cc.channels, cc.sample_rate or stream.rate)
    return stream


def load_audio(path: str | os.PathLike, *, keep_channels: bool = False, hash_source: bool = True) -> DecodedAudio:
    """Decode ``path`` to 16 kHz float32. Raises :class:`InputError` with a one-line reason (and
    nothing else, whatever the bytes: see the module docstring)."""
    p = check_input_file(path)
    try:
        return _load(p, keep_channels, hash_source)
    except AudiotoolsError:
        raise
    except MemoryError:
        raise InputError(p, "too large to decode in memory") from None
    except Exception as e:
        log.debug("decoding %s failed", p, exc_info=True)
        raise InputError(p, f"cannot decode ({type(e).__name__}: {_one_line(e)})") from None


def _load(p: Path, keep_channels: bool, hash_source: bool) -> DecodedAudio:
    size = p.stat().st_size
    budget = decode_budget_seconds(size)
    result = None
    if p.suffix.lower() in _SF_FAST:
        result = _load_soundfile(p, keep_channels, budget)
    if result is None:
        result = _load_pyav(p, keep_channels, budget)
    sink, src_rate, codec, container, decoder, warnings, declared = result
    mono, chans = sink.result()
    n_ch = sink.n_ch
    if len(mono) == 0:
        raise InputError(p, "contains no audio samples (zero length)")
    header = declared_seconds(p)
    if header is not None and (declared is None or header > declared):
        declared = header
    got = len(mono) / SAMPLE_RATE
    if declared and got < 0.9 * declared - 1.0 and not any("truncated" in w for w in warnings):
        msg = f"decoded {got:.2f} s of a stream that declares {declared:.2f} s (truncated file?)"
        warnings.append(msg)
        log.warning("%s: %s", p, msg)
    if sink.nonfinite:
        warnings.append(f"{sink.nonfinite} non-finite (NaN/Inf) samples replaced by silence")
        log.warning("%s: %d non-finite (NaN/Inf) samples replaced by silence", p, sink.nonfinite)
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


def _load_soundfile(p: Path, keep_channels: bool, budget: float):
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except Exception:
        return None  # let FFmpeg try (and produce the error message)
    if info.samplerate != SAMPLE_RATE:
        return None
    _check_format(p, info.channels, info.samplerate)
    frames = info.frames if 0 < info.frames < (1 << 62) else None
    sink = _Sink(p, keep_channels, frames / SAMPLE_RATE if frames else None, budget)
    try:
        with sf.SoundFile(str(p)) as f:
            while True:
                block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                sink.push(np.ascontiguousarray(block.T))
    except InputError:
        raise
    except Exception as e:
        log.debug("soundfile failed on %s (%s); falling back to FFmpeg", p, e)
        return None
    decoder = f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__})"
    return sink, info.samplerate, info.subtype.lower(), info.format.lower(), decoder, [], None


def _open_container(p: Path):
    """PyAV's container for p, its failures as InputError (invalid data, or why it cannot be opened)."""
    import av

    try:
        return av.open(str(p), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise InputError(p, "not an audio file FFmpeg can decode (invalid data)") from None
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(p, f"cannot open: {_one_line(e)}") from None


def _load_pyav(p: Path, keep_channels: bool, budget: float):
    import av

    container = _open_container(p)
    warnings: list[str] = []
    with container:
        stream = _audio_stream(p, container)
        stream.thread_type = "AUTO"
        src_rate = stream.codec_context.sample_rate or stream.rate
        codec = stream.codec_context.name
        duration = None
        try:
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1e6
        except (OverflowError, ValueError, ZeroDivisionError):
            duration = None
        if duration is not None and not (0 < duration < 1e9):
            duration = None
        sink = _Sink(p, keep_channels, duration, budget)
        state: dict = {"resampler": None, "key": None, "ch": 0}

        def push(frames) -> None:
            for fr in frames:
                ch = state["ch"]
                arr = fr.to_ndarray()  # interleaved float32: (1, n * channels)
                if ch <= 0 or arr.size % ch:
                    raise InputError(p, f"resampler returned {arr.size} values for {ch} channels")
                sink.push(np.ascontiguousarray(arr.reshape(-1, ch).T))

        def resample(frame) -> None:
            n_ch = frame.layout.nb_channels if frame.layout is not None else 0
            _check_format(p, n_ch, frame.sample_rate, "stream")
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != state["key"]:  # the first frame, or the stream's format changed mid-way
                if state["resampler"] is not None:
                    push(state["resampler"].resample(None))
                # packed float32 ("flt"): PyAV's to_ndarray crashes on planar frames of 8+ channels
                state["resampler"] = av.AudioResampler(format="flt", layout=frame.layout, rate=SAMPLE_RATE)
                state["key"], state["ch"] = key, n_ch
            frame.pts = None  # let the resampler keep its own timeline
            push(state["resampler"].resample(frame))

        try:
            for frame in container.decode(stream):
                resample(frame)
        except av.error.FFmpegError as e:
            corrupt = isinstance(e, av.error.InvalidDataError)
            if sink.pos == 0:
                what = "not decodable audio" if corrupt else "decoding failed"
                raise InputError(p, f"{what}: {_one_line(e)}") from None
            what = "stream corrupt or truncated" if corrupt else "decoding stopped"
            msg = f"{what} after {sink.pos / SAMPLE_RATE:.2f} s ({_one_line(e)}); decoded what was readable"
            warnings.append(msg)
            log.warning("%s: %s", p, msg)
        if state["resampler"] is not None:
            push(state["resampler"].resample(None))
        decoder = f"pyav {av.__version__} (libavcodec {_libavcodec_version()}, swresample)"
        return sink, src_rate, codec, container.format.name, decoder, warnings, duration


def _ffmsg(e: Exception) -> str:
    return _one_line(e)
