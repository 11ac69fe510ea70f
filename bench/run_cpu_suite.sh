#!/usr/bin/env bash
# Measures tconv's CPU backend against PyTorch on the suite, both in the same run on this machine, and
# joins them with compare.py. Usage: bench/run_cpu_suite.sh [BUILD_DIR] [THREADS]
# Writes bench/results/cpu-<UTC date>.{peer.jsonl,tconv.jsonl,compare.txt,env.txt}; the .md report is
# written from these by hand (device, command, load, roofline fractions, what missed and why).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
threads=${2:-2}
shared=${TCONV_SHARED:-$root/../shared}
suite=$shared/bench/suite.json
stamp=$(date -u +%Y-%m-%d-%H%M)
out=$root/bench/results/cpu-$stamp
{
  echo "date: $(date -u)"
  echo "commit: $(git -C "$root" rev-parse HEAD) (working tree may differ: $(git -C "$root" status --short | wc -l) changed paths)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
  echo "load before: $(uptime)"
} > "$out.env.txt"
/usr/bin/python3 "$shared/bench/torch_peer.py" --suite "$suite" --device cpu --threads "$threads" ${TCONV_PEER_ARGS:-} > "$out.peer.jsonl"
echo "load between: $(uptime)" >> "$out.env.txt"
"$build/tools/tconv/tconv" bench --suite "$suite" --device cpu --threads "$threads" --json "$out.tconv.jsonl" \
  | grep '^#' > "$out.tconv.txt"
echo "load after: $(uptime)" >> "$out.env.txt"
for m in all_ms dx_ms dwdb_ms; do
  echo "== $m"
  /usr/bin/python3 "$shared/bench/compare.py" "$out.peer.jsonl" "$out.tconv.jsonl" --metric "$m"
done > "$out.compare.txt"
cat "$out.env.txt" "$out.tconv.txt" "$out.compare.txt"
