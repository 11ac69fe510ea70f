#!/bin/bash
# session 7 call D: split-K sweeps of cuda_simt_f32 on fcn8s_up8 fp32 (data gradient S, weight gradient S)
set -u
T0=$(date +%s)
O=/tmp/g/d; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
b() { timeout 60 env "$@" $CLI bench --device cuda --suite $S --layers ${LAYERS:-fcn8s_up8} --dtypes fp32 --no-machine --warmup 5 --reps 30 --json $O/x.jsonl > /dev/null 2>&1
  echo "$* $(grep -h '"impl":"tconv"' $O/x.jsonl | python3 -c 'import sys,json;[print(d["layer"],d["dx_ms"],d["dwdb_ms"],d["all_ms"]) for d in map(json.loads,sys.stdin)]' | tr '\n' ' ')"; }
b X=0
for s in 1 2 3 4 5 6 8; do b TCONV_SIMT_F32_SPLIT=$s; done
for s in 6 8 12 16 20 25 32 40 50 64; do b TCONV_SIMT_F32_WSPLIT=$s; done
for t in 1 3; do for s in 1 2 3 4 6; do b TCONV_SIMT_F32_TILE=$t TCONV_SIMT_F32_SPLIT=$s; done; done
el done
