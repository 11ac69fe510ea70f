#!/bin/bash
# session 8 call E (CLI from the working tree, carried): tf32 data gradient with A from registers (RS wgmma,
# rounded in registers) — the planner's default and forced tiles; bf16 default as a no-change check; PyTorch tf32
set -u
T0=$(date +%s)
O=/tmp/g/e; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
L=dcgan_g2,dcgan_g3,dcgan_g4,unet_up1,unet_up3,unet_up4,cyclegan_up1,cyclegan_up2,stylegan2_up_g8,dilated_up
run() { local tag=$1 dt=$2; shift 2
  timeout 100 env "$@" $CLI bench --device cuda --suite $S --layers $L --dtypes $dt --no-machine --warmup 5 --reps 30 --json $O/$tag.jsonl > $O/$tag.log 2>&1
  el "$tag rc=$?"; }
run default tf32,bf16 X=0
run t128x256 tf32 TCONV_TC_IGEMM_TILE=wg128x256
run t128x128d tf32 TCONV_TC_IGEMM_TILE=wg128x128d
run t128x128 tf32 TCONV_TC_IGEMM_TILE=wg128x128
run t256x128 tf32 TCONV_TC_IGEMM_TILE=wg256x128
python3 - $O <<'PY'
import json,sys,os
O=sys.argv[1]; tags=['default','t128x256','t128x128d','t128x128','t256x128']
d={}
for t in tags:
  for l in open(os.path.join(O,t+'.jsonl')):
    r=json.loads(l)
    if r.get('impl')!='tconv': continue
    d.setdefault((r['layer'],r['dtype']),{})[t]=r['dx_ms']
    if t=='default': d[(r['layer'],r['dtype'])]['all']=r['all_ms']
print('layer dtype all '+' '.join(tags))
for k in sorted(d): print(k[0].ljust(16),k[1].ljust(5),str(d[k].get('all')).ljust(8),' '.join(str(d[k].get(t)).ljust(8) for t in tags))
PY
timeout 120 env PYTHONUNBUFFERED=1 python3 .carry/bench/torch_peer.py --suite $S --device cuda --dtypes tf32 --layers $L --warmup 5 --reps 30 > $O/peer.jsonl 2> $O/peer.err
el "torch rc=$?"
python3 .carry/bench/compare.py $O/peer.jsonl $O/default.jsonl 2>&1 | tail -14
cp $O/*.jsonl $OUT/
el done
