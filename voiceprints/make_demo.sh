#!/usr/bin/env bash
# Rebuild the demo voiceprint store (this directory) from the synthetic sample voices.
#
#   bash voiceprints/make_demo.sh        # from anywhere; needs espeak-ng and sox (apt-get install espeak-ng sox)
#
# 1. Enrols Anna, Boris and Clara from samples/voices/*.wav with the CLI.
# 2. The sample voices are synthetic (espeak-ng). The shipped calibration describes human speakers
#    (LibriSpeech), and to CAM++ (as to GE2E before it) the espeak voices sound much alike, so with it
#    every synthetic voice gets the largest likelihood ratio the calibration allows. This store
#    therefore carries its own calibration (_calibration.json), fitted with `voiceprint calibrate` on
#    91 *other* espeak-ng voices (the 5 configurations used in samples/ are excluded), each reading
#    two different sets of Harvard sentences: every A recording against every B recording, with
#    clean, telephone (mu-law) and GSM test sides. See docs/voiceprints.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STORE="$ROOT/voiceprints"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY="${PYTHON:-python}"

rm -f "$STORE"/*.json "$STORE"/*.safetensors
"$PY" -m audiotools voiceprint enroll Anna samples/voices/anna.wav --voiceprints "$STORE"
"$PY" -m audiotools voiceprint enroll Boris samples/voices/boris.wav --voiceprints "$STORE"
"$PY" -m audiotools voiceprint enroll Clara samples/voices/clara.wav --voiceprints "$STORE"

"$PY" benchmarks/verify.py --demo-trials "$TMP"
"$PY" -m audiotools voiceprint calibrate --trials "$TMP/K.tsv" --voiceprints "$STORE" \
    --description "91 espeak-ng voices (not those of samples/), 2 recordings each, all A-vs-B trials (benchmarks/verify.py --demo-trials)"
"$PY" -m audiotools voiceprint list --voiceprints "$STORE"
