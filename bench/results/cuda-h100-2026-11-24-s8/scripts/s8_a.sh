#!/bin/bash
# session 8 call A (CLI built on the development machine at the working tree, carried): tf32 timing after moving
# cuda_tc_igemm's tf32 rounding one k-tile ahead (beside the wgmmas); PyTorch tf32 in the same call
set -u
T0=$(date +%s)
O=/tmp/g/a; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
L=dcgan_g2,dcgan_g3,dcgan_g4,unet_up1,unet_up3,unet_up4,cyclegan_up1,cyclegan_up2,stylegan2_up_g8,dilated_up
b() { timeout 90 env "$@" $CLI bench --device cuda --suite $S --layers $L --dtypes tf32 --no-machine --warmup 5 --reps 30 --json $O/x.jsonl > /dev/null 2>&1
  echo "== $*"; grep -h '"impl":"tconv"' $O/x.jsonl | python3 -c 'import sys,json;[print(" ",d["layer"].ljust(16),d["dx_ms"],d["dwdb_ms"],d["all_ms"]) for d in map(json.loads,sys.stdin)]'; cp $O/x.jsonl $O/ours_$1.jsonl; }
b X=0
b TCONV_TC_IGEMM_WS=1
el tconv
timeout 120 env PYTHONUNBUFFERED=1 python3 .carry/bench/torch_peer.py --suite $S --device cuda --dtypes tf32 --layers $L --warmup 5 --reps 30 > $O/peer.jsonl 2> $O/peer.err
el "torch rc=$?"
python3 .carry/bench/compare.py $O/peer.jsonl $O/ours_X=0.jsonl 2>&1 | tail -14
cp $O/*.jsonl $OUT/
el done
