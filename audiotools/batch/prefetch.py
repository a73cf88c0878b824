"""Decode workers ahead of the engine: load_audio + VAD windows in other processes, in input order.

``Prefetcher(paths, ...)`` runs :func:`prepare` (decode to 16 kHz float32 with ``load_audio``, hash
the source, Silero VAD -> speech regions -> ``make_windows``) in a pool of ``spawn``ed worker
processes and yields :class:`Prepared` results **in input order** while later files are still
being decoded, so the accelerator never waits for FFmpeg or for the VAD.

Memory is bounded whatever the number and length of the files: at most ``depth`` files are
submitted ahead of the consumer (being decoded or decoded and waiting), and no new file is
submitted while the decoded-but-not-yet-consumed samples exceed ``max_buffered_bytes``
(default 2 GiB; one file is always allowed). Peak decoded audio held by the prefetcher is
therefore about ``max(max_buffered_bytes, depth x largest file)``: 16 kHz float32 is 230 MB per hour
of audio, so the defaults (depth = 2 x workers) hold a few files of any usual length.

Samples travel through POSIX shared memory when they are large (one copy in the worker, one in
the consumer, no pickle buffers); small arrays are pickled. ``workers=0`` decodes in the calling
process (same results, no overlap).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from audiotools.vad.silero import VADOptions

log = logging.getLogger(__name__)

SHM_MIN_BYTES = 4 << 20  # arrays at least this big go through shared memory
DEFAULT_BUFFER_BYTES = 2 << 30  # decoded samples waiting for the consumer


@dataclass
class PrepareOptions:
    """What a worker does besides decoding (windows.speech_windows, as ``Transcriber.windows_for``)."""

    vad: bool = True
    vad_options: VADOptions | None = None  # None: the defaults
    keep_channels: bool = False  # also return per-channel samples (diarisation by channel)
    windows: bool = True  # compute windows (False: leave them to the engine)
    threads: int = 1  # torch threads in a worker
    nice: int = 10  # workers' scheduling priority below the engine's (os.nice)


@dataclass
class Prepared:
    index: int  # position in the input sequence
    path: str
    audio: object = None  # DecodedAudio
    windows: list | None = None  # list[Window] (None when not computed)
    error: str | None = None  # one-line reason when decoding failed
    decode_seconds: float = 0.0  # worker time: decode + hash + VAD
    extra: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        a = self.audio
        if a is None:
            return 0
        n = a.samples.nbytes
        if a.channel_samples is not None:
            n += a.channel_samples.nbytes
        return n


def error_line(e: BaseException) -> str:
    """A one-line description of an exception (``AudiotoolsError`` messages are already one line)."""
    from audiotools.errors import AudiotoolsError

    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(e, AudiotoolsError):
        return first or type(e).__name__
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def prepare(index: int, path: str, options: PrepareOptions) -> Prepared:
    """Decode one file and cut its speech windows (runs in a worker; never raises)."""
    from audiotools.audio.decode import load_audio

    t0 = time.perf_counter()
    try:
        audio = load_audio(path, keep_channels=options.keep_channels)
        windows = None
        if options.windows:
            from audiotools.asr.windows import speech_windows
            from audiotools.vad.silero import reusable_speech

            windows, regions = speech_windows(audio.samples, options.vad_options, options.vad)
            audio.speech = reusable_speech(regions, options.vad_options)
    except Exception as e:  # one bad file must not stop the batch: report it
        return Prepared(index=index, path=str(path), error=error_line(e), decode_seconds=time.perf_counter() - t0)
    return Prepared(index=index, path=str(path), audio=audio, windows=windows, decode_seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------ shared-memory transport

SHM_PREFIX = "audiotools_pf_"
_shm_counter = 0


def _shm_name() -> str:
    """``audiotools_pf_<consumer pid>_<worker pid>_<n>``: a crashed batch's segments can be found."""
    global _shm_counter
    _shm_counter += 1
    return f"{SHM_PREFIX}{os.getppid()}_{os.getpid()}_{_shm_counter}"


def remove_orphaned_shared_memory() -> int:
    """Unlink segments left in /dev/shm by a batch that was killed with its whole process group
    (``kill -9`` of the batch alone lets multiprocessing's resource tracker clean up)."""
    removed = 0
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return 0
    for name in names:
        if not name.startswith(SHM_PREFIX):
            continue
        try:
            owner = int(name[len(SHM_PREFIX) :].split("_")[0])
            os.kill(owner, 0)
            continue  # its batch is still running
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        try:
            os.unlink(os.path.join("/dev/shm", name))
            removed += 1
        except OSError:
            pass
    return removed


def _pack(arr: np.ndarray | None):
    if arr is None or arr.nbytes < SHM_MIN_BYTES:
        return ("raw", arr)
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=_shm_name(), create=True, size=arr.nbytes)
    try:
        np.ndarray(arr.shape, dtype=arr.dtype, buffer=shm.buf)[...] = arr
        name = shm.name
    finally:
        shm.close()
    return ("shm", name, arr.shape, arr.dtype.str)


def _unpack(packed) -> np.ndarray | None:
    if packed[0] == "raw":
        return packed[1]
    from multiprocessing import shared_memory

    _, name, shape, dtype = packed
    shm = shared_memory.SharedMemory(name=name)
    try:
        out = np.array(np.ndarray(shape, dtype=np.dtype(dtype), buffer=shm.buf))  # own copy
    finally:
        shm.close()
        shm.unlink()
    return out


def _release(packed) -> None:
    if packed and packed[0] == "shm":
        from multiprocessing import shared_memory

        try:
            shm = shared_memory.SharedMemory(name=packed[1])
            shm.close()
            shm.unlink()
        except FileNotFoundError:
            pass


PARENT_POLL_SECONDS = 0.2


def _die_with_parent(parent: int) -> None:
    """Exit as soon as the process that started this worker is gone (``kill -9`` of the batch).

    A daemon thread compares ``os.getppid()`` with the parent's pid (an orphan is re-parented to
    init or a subreaper). Not ``prctl(PR_SET_PDEATHSIG)``: that fires when the parent's *thread*
    that spawned the worker ends, and the pool may spawn workers from a short-lived thread. With
    the workers gone, multiprocessing's resource tracker sees its pipe close, unlinks the shared
    memory and semaphores they registered, and exits too: no orphans, nothing left in /dev/shm.
    """
    import threading

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(70)
            time.sleep(PARENT_POLL_SECONDS)

    threading.Thread(target=watch, name="audiotools-parent-watch", daemon=True).start()


class _CarriedWithTheFile(logging.Filter):
    """Drops the decoder's warnings in a worker: each is in ``DecodedAudio.warnings`` too, which travels
    back with the file, so the parent shows it (once, as ``warning: FILE: text``) and records it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "audiotools.audio.decode" and record.levelno == logging.WARNING)


class _OneLineFormatter(logging.Formatter):
    """``warning: text`` / ``error: text`` on one line, like the commands' own lines."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno < logging.WARNING:
            return super().format(record)
        text = " ".join(record.getMessage().split())
        return f"{'error' if record.levelno >= logging.ERROR else 'warning'}: {text}"


def configure_worker_logging(level: int = logging.WARNING) -> None:
    """A spawned worker has no logging set up: without this, Python's last-resort handler prints its
    warnings as bare lines. Here they get the parent's level and the ``warning:`` form, and the ones
    that travel back with the file are left to the parent."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLineFormatter("%(message)s"))
    handler.addFilter(_CarriedWithTheFile())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)  # other libraries: warnings
    logging.getLogger("audiotools").setLevel(level)  # ours at the parent's level (-v: debug, -q: errors)


def _init_worker(threads: int, nice: int = 0, parent: int | None = None, log_level: int = logging.WARNING) -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent stops the batch and shuts
    # the pool down; a worker that took it too would print a traceback from its queue wait
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_worker_logging(log_level)
    if parent is not None:
        _die_with_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except Exception:  # pragma: no cover - torch is a dependency
        pass


def _warm(options: PrepareOptions) -> int:
    """Load what ``prepare`` needs (FFmpeg bindings, the Silero VAD model) in a worker; its pid."""
    import importlib

    importlib.import_module("av")
    if options.windows and options.vad:
        from audiotools.vad.silero import load_vad_model

        load_vad_model()
    return os.getpid()


def _prepare_packed(index: int, path: str, options: PrepareOptions):
    p = prepare(index, path, options)
    if p.audio is None:
        return p, None, None
    a = p.audio
    samples, channels = a.samples, a.channel_samples
    a.samples = np.zeros(0, dtype=np.float32)
    a.channel_samples = None
    try:
        ps = _pack(samples)
        pc = _pack(channels)
    except Exception as e:  # /dev/shm full or missing: pickle instead
        log.debug("shared memory unavailable (%s); pickling samples", e)
        ps, pc = ("raw", samples), ("raw", channels)
    return p, ps, pc


def _finish(result) -> Prepared:
    p, ps, pc = result
    if p.audio is not None:
        p.audio.samples = _unpack(ps)
        p.audio.channel_samples = _unpack(pc)
    return p


# ------------------------------------------------------------------ the prefetcher


def default_workers(device: str) -> int:
    """Decode workers for a device: one on a CPU (the engine needs the cores); on a GPU every core but
    two (the engine's Python loop and the finishing threads): decoding + Silero VAD run at roughly
    150-200x real time per core, so a fast GPU needs many of them."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if str(device).startswith("cuda"):
        return max(1, min(32, cpus - 2))
    return 1


class Prefetcher:
    """Iterate :class:`Prepared` results for ``paths`` in order, decoding ahead in worker processes."""

    def __init__(
        self,
        paths: Iterable,
        options: PrepareOptions | None = None,
        *,
        workers: int = 1,
        depth: int | None = None,
        max_buffered_bytes: int = DEFAULT_BUFFER_BYTES,
    ):
        self.paths = list(paths)
        self.options = options or PrepareOptions()
        self.workers = max(0, int(workers))
        self.depth = max(1, depth if depth is not None else 2 * max(1, self.workers))
        self.max_buffered_bytes = max_buffered_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._queue: collections.deque[tuple[int, Future]] = collections.deque()
        self._next = 0
        self.peak_in_flight = 0

    # the pool is started lazily, so a fully resumed batch never spawns a process
    def _ensure_pool(self) -> None:
        if self._pool is None and self.workers > 0:
            remove_orphaned_shared_memory()
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(
                    self.options.threads,
                    self.options.nice,
                    os.getpid(),
                    logging.getLogger("audiotools").getEffectiveLevel(),
                ),
            )

    def start(self) -> Prefetcher:
        """Spawn the workers and submit the first files now (e.g. while the model loads) instead of
        at the first ``next``. Returns self."""
        if self.workers > 0 and self._pool is None:
            self._ensure_pool()
            self._fill()
        return self

    def warm_up(self) -> float:
        """Spawn the workers and wait until each has loaded the decoder and the VAD model, without
        decoding any file (process start-up, kept apart from decoding work: benchmarks). Seconds taken."""
        t0 = time.perf_counter()
        if self.workers > 0:
            self._ensure_pool()
            for fut in [self._pool.submit(_warm, self.options) for _ in range(self.workers)]:
                fut.result()
        return time.perf_counter() - t0

    def _buffered_bytes(self) -> int:
        total = 0
        for _, fut in self._queue:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                p, ps, pc = fut.result()
                for packed in (ps, pc):
                    if packed is None:
                        continue
                    if packed[0] == "shm":
                        total += int(np.prod(packed[2])) * np.dtype(packed[3]).itemsize
                    elif packed[1] is not None:
                        total += packed[1].nbytes
        return total

    def _fill(self) -> None:
        while self._next < len(self.paths) and len(self._queue) < self.depth:
            if self._queue and self._buffered_bytes() >= self.max_buffered_bytes:
                break
            i = self._next
            self._next += 1
            self._queue.append((i, self._pool.submit(_prepare_packed, i, str(self.paths[i]), self.options)))
        self.peak_in_flight = max(self.peak_in_flight, len(self._queue))

    def __iter__(self) -> Iterator[Prepared]:
        if self.workers == 0:
            for i, path in enumerate(self.paths):
                yield prepare(i, str(path), self.options)
            return
        self._ensure_pool()
        try:
            self._fill()
            while self._queue:
                i, fut = self._queue.popleft()
                try:
                    result = fut.result()
                except Exception as e:  # the worker died (killed, out of memory): report the file
                    prepared = Prepared(
                        index=i, path=str(self.paths[i]), error=f"decode worker failed: {error_line(e)}"
                    )
                    if "BrokenProcessPool" in type(e).__name__:
                        self._restart_pool()
                else:
                    prepared = _finish(result)
                self._fill()  # submit the next file before handing this one out
                yield prepared
        finally:
            self.close()

    def _restart_pool(self) -> None:
        """A crashed worker breaks the whole pool: resubmit what was queued on a fresh pool."""
        old = list(self._queue)
        self._queue.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        self._ensure_pool()
        for i, fut in old:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._queue.append((i, fut))
            else:
                self._queue.append((i, self._pool.submit(_prepare_packed, i, str(self.paths[i]), self.options)))

    def close(self) -> None:
        """Stop the workers; shared memory of results nobody will read is freed."""
        pool, self._pool = self._pool, None
        queue, self._queue = list(self._queue), collections.deque()
        if pool is None:
            return
        for _, fut in queue:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        for _, fut in queue:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                _, ps, pc = fut.result()
                _release(ps)
                _release(pc)
