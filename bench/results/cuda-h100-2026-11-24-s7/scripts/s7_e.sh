#!/bin/bash
# session 7 call E (experiment binary, not a commit): what the per-k-tile tf32 rounding of cuda_tc_igemm's A chunks
# costs — tf32 data gradient with and without it (TCONV_EXP_NOROUND: truncated operands, wrong precision; timing only)
set -u
T0=$(date +%s)
O=/tmp/g/e; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
L=dcgan_g2,dcgan_g3,dcgan_g4,unet_up1,unet_up3,unet_up4,cyclegan_up1,cyclegan_up2,stylegan2_up_g8,dilated_up
b() { timeout 90 env "$@" $CLI bench --device cuda --suite $S --layers $L --dtypes tf32 --no-machine --warmup 5 --reps 30 --json $O/x.jsonl > /dev/null 2>&1
  echo "== $*"; grep -h '"impl":"tconv"' $O/x.jsonl | python3 -c 'import sys,json;[print(" ",d["layer"].ljust(16),d["dx_ms"],d["dwdb_ms"],d["all_ms"]) for d in map(json.loads,sys.stdin)]'; }
b X=0
b TCONV_EXP_NOROUND=1
b TCONV_TC_IGEMM_WS=1
b TCONV_TC_IGEMM_WS=1 TCONV_EXP_NOROUND=1
el done
