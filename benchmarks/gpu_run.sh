#!/usr/bin/env bash
# Device side of benchmarks/gpu_kit.py: join the parked kit parts, check them, install the wheels,
# run the GPU batch benchmark, and leave the results in $OUT. Run from the repository root.
#   KIT_DIR          where the parts and kit.json are (default /tmp/kit)
#   KIT_BENCH_ARGS   benchmark arguments (default: the GPU run below)
#   KIT_NO_INSTALL=1 skip the wheel install (a CPU check on a machine that has the packages)
set -euo pipefail
KIT_DIR=${KIT_DIR:-/tmp/kit}
OUT=${OUT:?set OUT to the folder whose files come back}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

log() { echo "[gpu_run $(date +%T)] $*"; }
log "joining $(ls "$KIT_DIR"/part-* | wc -l) parts"
"$PY" - "$KIT_DIR" <<'EOF'
import hashlib, json, sys, tarfile
from pathlib import Path
kit = Path(sys.argv[1])
m = json.loads((kit / "kit.json").read_text())
whole = hashlib.sha256()
with open(kit / "kit.tar", "wb") as out:
    for p in m["parts"]:
        data = (kit / p["name"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != p["sha256"]:
            sys.exit(f"{p['name']}: sha256 mismatch (a part was cut or is missing)")
        whole.update(data)
        out.write(data)
if whole.hexdigest() != m["sha256"]:
    sys.exit("kit.tar: sha256 mismatch")
with tarfile.open(kit / "kit.tar") as t:
    t.extractall(kit, filter="data")
print("kit ok:", m["model"], len(m["parts"]), "parts,", ", ".join(m["wheels"]))
EOF
X="$KIT_DIR/kit"
if [ -z "${KIT_NO_INSTALL:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$X"/whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export AUDIOTOOLS_SHARED_DATA="$X/shared"
# the speaker models travel as a model home; nothing can be fetched there, so say so at once
export AUDIOTOOLS_HOME="$X/home" AUDIOTOOLS_ALLOW_FETCH=0
mkdir -p benchmarks/work
cp -r "$X/work/." benchmarks/work/
"$PY" - <<'EOF'
import soundfile as sf
from pathlib import Path
for f in Path("benchmarks/work").rglob("*.flac"):          # the corpus travelled as FLAC
    data, sr = sf.read(str(f), dtype="int16")
    sf.write(str(f.with_suffix(".wav")), data, sr, subtype="PCM_16")
    f.unlink()
EOF

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} | tee "$OUT/device.txt"
"$PY" -c "import audiotools, whisper, av, silero_vad, pyannote.metrics, jiwer; print('imports ok')"

ARGS=${KIT_BENCH_ARGS:---device cuda --hf-baseline --systems audiotools,audiotools-pipeline,hf,openai-whisper --out batch_cuda}
log "benchmark: $ARGS"
marker=$(mktemp)
set +e
"$PY" benchmarks/batch.py --model "$X/model" $ARGS 2>&1 | tee "$OUT/batch.log"
rc=${PIPESTATUS[0]}
set -e
find benchmarks/results -name '*.json' -newer "$marker" -exec cp {} "$OUT/" \;
log "benchmark exit $rc; results: $(ls "$OUT")"
if [ -z "${KIT_BENCH_ARGS:-}" ]; then
  # with the time left in the call: the engine alone at a larger batch (the recipe's 32 is a guess)
  log "extra: audiotools at batch 128"
  "$PY" benchmarks/batch.py --model "$X/model" --device cuda --systems audiotools --batch-size 128 \
    --out batch_cuda_b128 2>&1 | tee "$OUT/batch_b128.log" || true
  find benchmarks/results -name '*.json' -newer "$marker" -exec cp {} "$OUT/" \;
fi
exit "$rc"
