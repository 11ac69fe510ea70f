#!/usr/bin/env bash
# The main job's benchmark: `tconv train` against its PyTorch peer (scripts/train_torch.py), same model,
# same init, same data order, same epochs and thread count, one after the other in the same run on the same
# machine. Writes bench/results/train-cpu-<date>.md with the commands, date, commit, machine and numbers.
# Usage: scripts/bench_train.sh [TCONV_BINARY] [EPOCHS] [THREADS]
# Environment: DATA (Fashion-MNIST folder), PIN (CPU list for taskset, e.g. 0,1: both trainers on the same
# cores), PYTHON (the interpreter with torch; default Debian's /usr/bin/python3), COMMIT (when the tree has no
# .git), RESULT (the result file), EXTRA (more options for both trainers, e.g. "--limit-train 512" for a smoke
# test).
set -euo pipefail
cd "$(dirname "$0")/.."
TCONV=${1:-build/tools/tconv/tconv}
EPOCHS=${2:-3}
THREADS=${3:-2}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
PYTHON=${PYTHON:-/usr/bin/python3}
DATE=$(date -u +%Y-%m-%d)
STAMP=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
DIRTY=$(git status --porcelain 2>/dev/null | head -1 || true)
WORK=$(mktemp -d)
RESULT=${RESULT:-bench/results/train-cpu-$DATE.md}
pin=()
if [ -n "${PIN:-}" ]; then pin=(taskset -c "$PIN"); fi

tconv_cmd=("${pin[@]}" "$TCONV" train --epochs "$EPOCHS" --threads "$THREADS" --device cpu --data "$DATA"
           --progress 0 --out "$WORK/tconv" ${EXTRA:-})
torch_cmd=("${pin[@]}" "$PYTHON" scripts/train_torch.py --epochs "$EPOCHS" --threads "$THREADS" --data "$DATA"
           --json ${EXTRA:-})

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"${tconv_cmd[@]}" >"$WORK/tconv.out" 2>"$WORK/tconv.err"
load_mid=$(cut -d' ' -f1-3 /proc/loadavg)
"${torch_cmd[@]}" >"$WORK/torch.json" 2>"$WORK/torch.err"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

read -r t_mse t_ips t_fp < <("$PYTHON" - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
s = json.load(open(f"{w}/tconv/summary.json"))
fp = open(f"{w}/tconv.out").read().split("init fingerprint ")[1].split()[0]
print(s["test_mse"], s["images_per_s"], fp)
EOF
)
read -r p_mse p_ips p_fp p_ver < <("$PYTHON" -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["test_mse"], s["images_per_s"], s["init_fingerprint"], s["torch"])' "$WORK/torch.json")

mkdir -p "$(dirname "$RESULT")"
{
  echo "# tconv train vs PyTorch — CPU, $EPOCHS epochs, $THREADS threads"
  echo
  echo "- date: $STAMP"
  echo "- commit: $COMMIT${DIRTY:+ (working tree with uncommitted changes)}"
  echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- load average (1/5/15 min) before tconv: $load_before; between: $load_mid; after PyTorch: $load_after"
  echo "- PyTorch $p_ver ($PYTHON)${PIN:+; both pinned to CPUs $PIN with taskset}"
  echo "- commands:"
  echo "  - \`${tconv_cmd[*]}\`"
  echo "  - \`${torch_cmd[*]}\`"
  echo
  echo "| trainer | test MSE after $EPOCHS epochs | training images/s | init fingerprint |"
  echo "|---|---|---|---|"
  printf '| tconv | %.6f | %.0f | %s |\n' "$t_mse" "$t_ips" "$t_fp"
  printf '| PyTorch | %.6f | %.0f | %s |\n' "$p_mse" "$p_ips" "$p_fp"
  echo
  "$PYTHON" -c "
import sys
t_mse, t_ips, p_mse, p_ips = map(float, sys.argv[1:])
print(f'tconv / PyTorch: throughput x{t_ips / p_ips:.2f}, test MSE {100 * (t_mse / p_mse - 1):+.1f}%')" \
    "$t_mse" "$t_ips" "$p_mse" "$p_ips"
  echo
  echo "Per epoch (tconv): $(grep 'done:' "$WORK/tconv.err" | sed 's/^/  /' | tr '\n' ';')"
  echo
  echo "Per epoch (PyTorch): $(grep 'epoch' "$WORK/torch.err" | tr '\n' ';')"
} >"$RESULT"
cat "$RESULT"
rm -rf "$WORK"
