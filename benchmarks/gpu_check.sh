#!/usr/bin/env bash
# vaelab on one CUDA GPU, checked and timed in one go (under 8 minutes on one recent GPU):
#
#   bash benchmarks/gpu_check.sh [--dry-run]
#
# 1. a venv (.venv-gpu; it sees a CUDA torch installed system-wide, else pip brings one) with
#    vaelab and pytest; 2. MNIST; 3. the CUDA-marked tests; 4. the reference AE and VAE trained
#    3 epochs each in fp32 and bf16, and the VAE with --channels-last and with --compile
#    (throughput and final validation loss side by side); 5. a one-GPU torchrun (NCCL) job;
#    6. the default study on CUDA, timed. Each step's output is in build/gpu_check/<step>.log;
#    build/gpu_check/summary.json holds every step's seconds and exit status and every run's
#    throughput and loss. --dry-run prints the plan and runs nothing. No CI job runs this script.
set -uo pipefail
case "${1:-}" in
"") DRY=0 ;;
--dry-run) DRY=1 ;;
*) echo "gpu_check.sh: unknown argument '$1'; use --dry-run or nothing" >&2 && exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${GPU_CHECK_OUT:-$ROOT/build/gpu_check}
VENV=${GPU_CHECK_VENV:-$ROOT/.venv-gpu}
BIN=$VENV/bin
RUNS=("ae fp32" "ae bf16" "vae fp32" "vae bf16" "vae fp32 --channels-last" "vae fp32 --compile")

step() { # step NAME COMMAND...: run it, output to NAME.log, "NAME µs status" to steps.tsv
	local name=$1 t0 rc=0
	shift
	echo "== $name: $*"
	((DRY)) && return 0
	t0=${EPOCHREALTIME/./}
	"$@" >"$OUT/$name.log" 2>&1 || rc=$?
	echo -e "$name\t$((${EPOCHREALTIME/./} - t0))\t$rc" >>"$OUT/steps.tsv"
	((rc == 0)) || echo "   failed ($rc): see $OUT/$name.log"
}

((DRY)) || { rm -rf "$OUT" && mkdir -p "$OUT/runs"; } || exit 1
step venv python3 -m venv --system-site-packages "$VENV"
step install "$BIN/python" -m pip install --quiet -e "$ROOT" pytest
step cuda "$BIN/python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'"
step data "$BIN/vaelab" data fetch --dataset mnist
step tests "$BIN/python" -m pytest -q -m cuda "$ROOT/tests/test_cuda.py"
for run in "${RUNS[@]}"; do
	read -r model precision flag <<<"$run"
	name=train-$model-$precision${flag:+-${flag#--}}
	step "$name" "$BIN/vaelab" train --model "$model" --precision "$precision" $flag \
		--epochs 3 --device cuda --out "$OUT/runs/$name"
done
step torchrun "$BIN/torchrun" --standalone --nproc_per_node 1 -m vaelab train --model vae \
	--epochs 1 --device cuda --out "$OUT/runs/torchrun"
step study "$BIN/vaelab" study --preset default --device cuda --out "$OUT/study"
((DRY)) && echo "(dry run: nothing ran; the summary would be $OUT/summary.json)" && exit 0

"$BIN/python" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
steps = {}
for line in (out / "steps.tsv").read_text().splitlines():
    name, us, rc = line.split("\t")
    steps[name] = {"seconds": round(int(us) / 1e6, 1), "status": int(rc)}
runs = {}
for done in sorted(out.glob("runs/*/DONE")):
    d = json.loads(done.read_text())
    runs[done.parent.name] = {k: d[k] for k in ("images_per_s_mean", "train_time_s", "best_val_loss")}
summary = {"ok": all(s["status"] == 0 for s in steps.values()), "steps": steps, "runs": runs}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
sys.exit(0 if summary["ok"] else 1)
EOF
