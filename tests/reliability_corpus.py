"""Hostile inputs, a seeded fuzz corpus and a crash-proof decoding harness (issue 16).

Used by ``tests/test_reliability.py`` and ``benchmarks/reliability.py``. Everything is real: files are
written with soundfile / PyAV and then damaged byte by byte; the harness decodes them with
``load_audio`` in a child process, so a segfault or a hang is recorded against the file that
caused it instead of killing the caller.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- seed files


def _tone(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((len(t), channels))
    return x.astype(np.float32)


def _encode(path: Path, codec: str, rate: int, seconds: float = 0.5) -> Path:
    import av

    x = _tone(seconds, 16000)[:, 0]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        resampler = av.AudioResampler(format=s.format.name if s.format else "fltp", layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
        frame.sample_rate = 16000
        for f in resampler.resample(frame):
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def make_seeds(d: Path) -> list[Path]:
    """Small valid files of the common formats (0.3-0.5 s each)."""
    d.mkdir(parents=True, exist_ok=True)
    seeds = []

    def w(name, x, rate, **kw):
        p = d / name
        sf.write(p, x, rate, **kw)
        seeds.append(p)

    w("s16k.wav", _tone(0.5, 16000), 16000, subtype="PCM_16")
    w("s44st.wav", _tone(0.3, 44100, 2), 44100, subtype="PCM_16")
    w("s8kmulaw.wav", _tone(0.5, 8000), 8000, subtype="ULAW")
    w("s48f.wav", _tone(0.3, 48000, 2), 48000, subtype="FLOAT")
    w("s22_24.wav", _tone(0.3, 22050), 22050, subtype="PCM_24")
    w("s16k.flac", _tone(0.5, 16000), 16000)
    w("s44st.flac", _tone(0.3, 44100, 2), 44100)
    w("s22.ogg", _tone(0.5, 22050), 22050)
    w("s8ch48.wav", _tone(0.2, 48000, 8), 48000, subtype="PCM_16")
    seeds.append(_encode(d / "s16.mp3", "mp3", 16000))
    seeds.append(_encode(d / "s48.opus", "libopus", 48000))
    seeds.append(_encode(d / "s16.m4a", "aac", 16000))
    return seeds


# ---------------------------------------------------------------- hostile single files


def _patch(data: bytes, offset: int, fmt: str, value) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _wav(channels=1, rate=16000, seconds=0.5, subtype="PCM_16") -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, _tone(seconds, rate, channels), rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def _flac(channels=1, rate=16000, seconds=0.5) -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, _tone(seconds, rate, channels), rate, format="FLAC")
    return buf.getvalue()


def _data_offset(wav: bytes) -> int:
    i = 12
    while i + 8 <= len(wav):
        cid, size = wav[i : i + 4], struct.unpack("<I", wav[i + 4 : i + 8])[0]
        if cid == b"data":
            return i
        i += 8 + size + (size & 1)
    raise ValueError("no data chunk")


@dataclass
class Hostile:
    name: str
    path: Path
    expect: str  # "ok" (decodes), "error" (InputError), "any" (either, but never a crash or traceback)
    warning: str | None = None  # a word the warnings must contain when it decodes


def hostile_inputs(d: Path) -> list[Hostile]:
    """60+ files and paths an attacker or a careless user would feed in (see issue 16)."""
    d.mkdir(parents=True, exist_ok=True)
    out: list[Hostile] = []

    def add(name, data: bytes, expect, warning=None):
        p = d / name
        p.write_bytes(data)
        out.append(Hostile(name, p, expect, warning))

    base = _wav()
    # WAV header fields (fmt chunk at 12: tag @20, channels @22, rate @24, byte rate @28, align @32, bits @34)
    for ch, rate in ((8, 44100), (9, 48000), (16, 22050), (32, 8000), (64, 16000), (7, 44100), (12, 96000)):
        add(f"ch{ch}_{rate}.wav", _wav(ch, rate, 0.2), "ok")
    add("channels0.wav", _patch(base, 22, "<H", 0), "error")
    add("channels65535.wav", _patch(base, 22, "<H", 65535), "error")
    add("channels300.wav", _patch(base, 22, "<H", 300), "error")
    for rate in (0, 1, 100, 1999, 0xFFFFFFFF, 2_000_000):
        add(f"rate{rate}.wav", _patch(base, 24, "<I", rate), "error")
    big1hz = _patch(_wav(1, 16000, 10.0), 24, "<I", 1)  # 300 KB that claims 20 hours
    add("rate1_300k.wav", _patch(big1hz, 28, "<I", 2), "error")
    add("tag_unknown.wav", _patch(base, 20, "<H", 0x1234), "any")
    add("tag_ffff.wav", _patch(base, 20, "<H", 0xFFFF), "any")
    add("tag_zero.wav", _patch(base, 20, "<H", 0), "any")
    for bits in (0, 7, 64, 255):
        add(f"bits{bits}.wav", _patch(base, 34, "<H", bits), "any")
    add("align0.wav", _patch(base, 32, "<H", 0), "any")
    add("byterate0.wav", _patch(base, 28, "<I", 0), "any")
    off = _data_offset(base)
    add("data4gib.wav", _patch(base, off + 4, "<I", 0xFFFFFFFF), "ok", "truncated")
    add("data0.wav", _patch(base, off + 4, "<I", 0), "any")
    add("halfcut.wav", _wav(1, 44100, 4.0)[: len(_wav(1, 44100, 4.0)) // 2], "ok", "truncated")
    add("riffsize_wrong.wav", _patch(base, 4, "<I", 12), "any")
    add("riffsize_huge.wav", _patch(base, 4, "<I", 0xFFFFFFFF), "any")
    add("fmt_huge.wav", _patch(base, 16, "<I", 0x7FFFFFFF), "any")
    add("no_data_chunk.wav", base[:off], "any")
    add("header_only.wav", base[:44], "any")
    add("riff_only.wav", base[:12], "error")
    add("dup_fmt.wav", base[:36] + base[12:36] + base[36:], "any")
    add("float_nan.wav", _nan_wav(), "ok", "non-finite")
    add("float_huge.wav", _huge_wav(), "ok")
    # FLAC
    flac = _flac()
    add("random.flac", random.Random(1).randbytes(4096), "error")
    add("magic_garbage.flac", b"fLaC" + random.Random(2).randbytes(2000), "error")
    add("samples_2e36.flac", _flac_total(flac, (1 << 36) - 1), "ok", "truncated")
    add("flac_rate0.flac", _flac_rate(flac, 0), "any")
    add("flac_cut10.flac", flac[: len(flac) // 10], "any")
    add("flac_cut50.flac", _flac(1, 44100, 4.0)[: len(_flac(1, 44100, 4.0)) // 2], "ok", "truncated")
    add("flac_header_only.flac", flac[:42], "any")
    add("flac_8ch_44k.flac", _flac(8, 44100, 0.2), "ok")
    add("flac_7ch_48k.flac", _flac(7, 48000, 0.2), "ok")
    # compressed and other containers
    tmp = d / "_enc"
    tmp.mkdir(exist_ok=True)
    mp3 = _encode(tmp / "a.mp3", "mp3", 16000, 2.0).read_bytes()
    opus = _encode(tmp / "a.opus", "libopus", 48000, 2.0).read_bytes()
    m4a = _encode(tmp / "a.m4a", "aac", 16000, 2.0).read_bytes()
    add("random.mp3", random.Random(3).randbytes(4000), "error")
    add("mp3_cut.mp3", mp3[: len(mp3) // 3], "any")
    add("mp3_id3_huge.mp3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + mp3, "any")
    add("opus_cut.opus", opus[: len(opus) // 2], "any")
    add("random.ogg", b"OggS" + random.Random(4).randbytes(3000), "error")
    add("m4a_cut.m4a", m4a[: len(m4a) // 2], "any")
    add("m4a_head.m4a", m4a[:64], "any")
    add("random.m4a", random.Random(5).randbytes(5000), "error")
    add("text.wav", b"this is a text file, not audio\n" * 40, "error")
    add("png.wav", b"\x89PNG\r\n\x1a\n" + random.Random(6).randbytes(500), "error")
    add("zip.mp3", b"PK\x03\x04" + random.Random(7).randbytes(500), "error")
    add("one_byte.wav", b"R", "error")
    add("zeros.flac", bytes(8192), "error")
    add("empty.wav", b"", "error")
    add("one_sample.wav", _wav(1, 16000, 1 / 16000), "ok")
    add("silence.wav", _silence(), "ok")
    # paths that are not regular files
    loop = d / "loop.wav"
    if not loop.is_symlink():
        os.symlink(loop.name, loop)
    out.append(Hostile("symlink loop", loop, "error"))
    broken = d / "broken_link.wav"
    if not broken.is_symlink():
        os.symlink("does-not-exist.wav", broken)
    out.append(Hostile("broken symlink", broken, "error"))
    fifo = d / "fifo.wav"
    if not fifo.exists():
        os.mkfifo(fifo)
    out.append(Hostile("FIFO", fifo, "error"))
    zero = d / "devzero.wav"
    if not zero.is_symlink():
        os.symlink("/dev/zero", zero)
    out.append(Hostile("/dev/zero", zero, "error"))
    folder = d / "folder.wav"
    folder.mkdir(exist_ok=True)
    out.append(Hostile("directory x.wav", folder, "error"))
    out.append(Hostile("missing", d / "missing.wav", "error"))
    long = d / ("n" * 246 + ".wav")
    long.write_bytes(base)
    out.append(Hostile("250-byte name", long, "ok"))
    nl = d / "new\nline.wav"
    nl.write_bytes(base)
    out.append(Hostile("newline in name", nl, "ok"))
    return out


def _nan_wav() -> bytes:
    import io

    x = _tone(0.5, 16000)
    x[100:200] = np.nan
    x[300] = np.inf
    buf = io.BytesIO()
    sf.write(buf, x, 16000, subtype="FLOAT", format="WAV")
    return buf.getvalue()


def _huge_wav() -> bytes:
    import io

    x = _tone(0.5, 22050) * 1e30
    buf = io.BytesIO()
    sf.write(buf, x, 22050, subtype="FLOAT", format="WAV")
    return buf.getvalue()


def _silence() -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000, dtype=np.float32), 16000, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _flac_total(flac: bytes, total: int) -> bytes:
    b = bytearray(flac)
    info = int.from_bytes(b[18:26], "big")
    info = (info & ~((1 << 36) - 1)) | total
    b[18:26] = info.to_bytes(8, "big")
    return bytes(b)


def _flac_rate(flac: bytes, rate: int) -> bytes:
    b = bytearray(flac)
    info = int.from_bytes(b[18:26], "big")
    info = (info & ((1 << 44) - 1)) | (rate << 44)
    b[18:26] = info.to_bytes(8, "big")
    return bytes(b)


# ---------------------------------------------------------------- fuzz corpus


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(7)
    if kind == 0:  # flip a few bytes, mostly in the header
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(min(len(b), 128)) if rng.random() < 0.7 else rng.randrange(len(b))
            b[i] = rng.randrange(256)
    elif kind == 1:  # an extreme 16/32-bit value in the header
        i = rng.randrange(max(1, min(len(b) - 4, 96)))
        fmt = rng.choice(["<H", "<I", ">H", ">I"])
        top = 0xFFFF if fmt[1] == "H" else 0xFFFFFFFF
        struct.pack_into(fmt, b, i, min(top, rng.choice([0, 1, 7, 8, 9, 255, 65535, 0x7FFFFFFF, 0xFFFFFFFF])))
    elif kind == 2:  # truncate
        b = b[: rng.randrange(1, len(b))]
    elif kind == 3:  # insert random bytes
        i = rng.randrange(len(b))
        b[i:i] = rng.randbytes(rng.randint(1, 64))
    elif kind == 4:  # delete a span
        i = rng.randrange(len(b))
        del b[i : i + rng.randint(1, 256)]
    elif kind == 5:  # random bytes after the first 12 (keeps the magic)
        b = b[:12] + bytearray(rng.randbytes(rng.randint(16, 2048)))
    else:  # splice two halves of the file in the wrong order
        i = rng.randrange(len(b))
        b = b[i:] + b[:i]
    return bytes(b) or b"\x00"


def fuzz_corpus(d: Path, n: int, seed: int = 16) -> list[Path]:
    """``n`` mutated copies of the seed files (seeded: the same corpus every time)."""
    seeds = make_seeds(d / "seeds")
    rng = random.Random(seed)
    blobs = [(p.suffix, p.read_bytes()) for p in seeds]
    paths = []
    for i in range(n):
        suffix, data = blobs[i % len(blobs)]
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data = mutate(data, rng)
        p = d / f"fuzz{i:05d}{suffix}"
        p.write_bytes(data)
        paths.append(p)
    return paths


# ---------------------------------------------------------------- the harness

_CHILD = r"""
import json, os, sys, traceback
sys.path.insert(0, os.environ["AUDIOTOOLS_ROOT"])
import audiotools.errors as errors
from audiotools.audio.decode import load_audio
allowed = tuple(v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, BaseException))
for line in sys.stdin:
    i, path = json.loads(line)
    print(json.dumps(["start", i]), flush=True)
    try:
        a = load_audio(path)
        r = ["ok", i, a.duration, a.warnings]
    except allowed as e:
        r = ["error", i, type(e).__name__, str(e)]
    except BaseException as e:
        r = ["uncaught", i, type(e).__name__, traceback.format_exc(limit=3)]
    print(json.dumps(r), flush=True)
    with open("/proc/self/status") as status:  # this process's own peak (ru_maxrss would include the
        hwm = [int(l.split()[1]) for l in status if l.startswith("VmHWM:")]  # forked parent's pages)
    print(json.dumps(["mem", i, hwm[0] / 1024 if hwm else 0.0]), flush=True)
"""


@dataclass
class Outcome:
    path: str
    status: str  # ok | error | uncaught | crash | hang
    detail: object = None
    warnings: list = field(default_factory=list)


@dataclass
class HarnessResult:
    outcomes: list[Outcome]
    seconds: float
    peak_rss_mb: float  # the largest child's peak RSS (its VmHWM after exec, reported by the child)
    restarts: int = 0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def run_harness(paths: list[Path], timeout: float = 60.0) -> HarnessResult:
    """Decode every path with ``load_audio`` in a child process. A child killed by a signal (crash) or
    silent for ``timeout`` s (hang, then killed) is restarted after the file that caused it."""
    t0 = time.perf_counter()
    outcomes: dict[int, Outcome] = {}
    peak = 0.0
    restarts = 0
    todo = list(range(len(paths)))
    env = dict(os.environ, AUDIOTOOLS_ROOT=str(ROOT), OMP_NUM_THREADS="1")
    while todo:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        for i in todo:
            proc.stdin.write(json.dumps([i, str(paths[i])]) + "\n")
        proc.stdin.close()
        current = None
        killed_for_hang = False
        buf = ""
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                proc.kill()
                killed_for_hang = True
                break
            chunk = os.read(proc.stdout.fileno(), 1 << 16).decode()
            if not chunk:
                break
            buf += chunk
            while "\n" in buf:
                line, buf = buf.split("\n", 1)
                msg = json.loads(line)
                if msg[0] == "start":
                    current = msg[1]
                    continue
                if msg[0] == "mem":
                    peak = max(peak, msg[2])
                    continue
                i = msg[1]
                current = None
                if msg[0] == "ok":
                    outcomes[i] = Outcome(str(paths[i]), "ok", msg[2], msg[3])
                else:
                    outcomes[i] = Outcome(str(paths[i]), msg[0], f"{msg[2]}: {msg[3]}")
        _, status, _ = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if current is not None:
            if killed_for_hang:
                outcomes[current] = Outcome(str(paths[current]), "hang", f"no answer in {timeout:.0f} s")
            else:
                sig = -proc.returncode if proc.returncode < 0 else None
                name = signal.Signals(sig).name if sig else f"exit {proc.returncode}"
                outcomes[current] = Outcome(str(paths[current]), "crash", f"killed by {name}")
            restarts += 1
        todo = [i for i in todo if i not in outcomes]
        if todo and current is None:  # the child ended without a culprit: record the rest as crashes
            for i in todo:
                outcomes[i] = Outcome(str(paths[i]), "crash", f"child ended (exit {proc.returncode})")
            todo = []
    return HarnessResult([outcomes[i] for i in range(len(paths))], time.perf_counter() - t0, round(peak, 1), restarts)


# ---------------------------------------------------------------- process trees (kill tests)


def descendants(pid: int) -> set[int]:
    """Every process under pid (children, their children, ...), read from /proc."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out.update(kids)
        todo += kids
    return out


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
