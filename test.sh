#!/usr/bin/env bash
# Run the test suite (installs what is missing first, so it also works on a fresh clone).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if ! "$PY" -c "import audiotools, faster_whisper, jiwer, num2words, pytest, ray, matplotlib, playwright" 2>/dev/null || ! "$PY" -m ruff --version >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
   || ! "$PY" -c "import sys; from audiotools.weights import ALL_WEIGHTS, find; sys.exit(any(find(w)[0] is None for w in ALL_WEIGHTS))"; then
  bash setup.sh --no-run
fi
"$PY" -m ruff check --quiet .          # lint (pyproject.toml [tool.ruff]); fails the run on any finding
"$PY" -m ruff format --check --quiet .
exec "$PY" -m pytest -q "$@"
