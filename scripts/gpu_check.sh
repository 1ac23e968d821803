#!/usr/bin/env bash
# One prepared pass on a GPU machine: the CUDA tests, the benchmark harness and a short real
# mt-train, each under its own time limit, logs and JSON under $OUT (default ./gpu_out).
#
#   bash scripts/gpu_check.sh [TRAIN_MINUTES] [STEPS]   # STEPS: tests,bench,train (default: all three)
#   bash scripts/gpu_check.sh 3 tests,train trainer.precision=fp32     # extra mt-train overrides last
#
# Expects the Python dependencies importable (a machine without network gets them as wheels in
# .whl/, installed here into /tmp/site) and Multi30k under $MT_DATA_DIR/multi30k or data/multi30k.
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
TRAIN_MINUTES=${1:-3}
STEPS=${2:-tests,bench,train}
shift $(( $# < 2 ? $# : 2 ))  # the rest: mt-train overrides
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  if ! python3 -c "import datasets" 2>"$OUT/datasets_import.txt" && [ -d .whl-pa ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl-pa/*.whl
  fi
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "
import torch, pyarrow, datasets, hydra, sacrebleu
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))
print('pyarrow', pyarrow.__version__, 'datasets', datasets.__version__, 'hydra', hydra.__version__)"; } \
  2>&1 | tee "$OUT/env.txt"

step() {  # step NAME SECONDS CMD...: run with a limit, keep its log, print its tail and time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - t0)) s"
  tail -n 6 "$OUT/$name.log"
}

want() { [[ ",$STEPS," == *",$1,"* ]]; }
want tests && step cuda_tests 240 python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py
want bench && step benchmark 240 python3 scripts/benchmark.py --quick --device cuda --no-train-run --json "$OUT/bench.json"
want train && step train 420 python3 -m mt.train trainer.device=cuda "trainer.max_minutes=$TRAIN_MINUTES" \
  trainer.max_steps=0 trainer.progress=false "hydra.run.dir=$OUT/run" "$@"
python3 - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
r = out / "run" / "results.json"
if r.is_file():
    res = json.loads(r.read_text())
    tr = res["train"]
    print("train:", tr["steps"], "steps in", tr["train_minutes"], "min;", res["device"],
          "valid BLEU", res["valid"]["bleu"]["score"],
          {k: v["bleu"]["score"] for k, v in res["test"].items()})
for ckpt in (out / "run" / "checkpoints").glob("*.pt"):
    ckpt.unlink()  # too big to bring back; the scores are in results.json
EOF
