#!/bin/bash
# session 8 call B (CLI from the working tree, carried): the new wg128x256 tile against the planner's default and
# the other one-block tiles — data-gradient time (dx_ms) per layer, tf32 / bf16 / fp16, --warmup 5 --reps 30
set -u
T0=$(date +%s)
O=/tmp/g/b; mkdir -p $O /tmp/tconv-deps
tar xJf .carry/deps/ob.tar.xz -C /tmp/tconv-deps
. .carry/lead/env.sh
xz -dc .carry/gpu/tconv.xz > /tmp/tconv && chmod +x /tmp/tconv
CLI=/tmp/tconv; S=.carry/bench/suite.json
L=dcgan_g2,dcgan_g3,dcgan_g4,unet_up1,unet_up3,unet_up4,cyclegan_up1,cyclegan_up2,stylegan2_up_g8,dilated_up
run() { local tag=$1; shift
  timeout 100 env "$@" $CLI bench --device cuda --suite $S --layers $L --dtypes tf32,bf16,fp16 --no-machine --warmup 5 --reps 30 --json $O/$tag.jsonl > $O/$tag.log 2>&1
  el "$tag rc=$?"; }
run default X=0
run t128x256 TCONV_TC_IGEMM_TILE=wg128x256
run t128x256s1 TCONV_TC_IGEMM_TILE=wg128x256 TCONV_TC_IGEMM_SPLIT=1
run t256x128 TCONV_TC_IGEMM_TILE=wg256x128
run t128x128d TCONV_TC_IGEMM_TILE=wg128x128d
python3 - $O <<'PY'
import json,sys,os
O=sys.argv[1]; tags=['default','t128x256','t128x256s1','t256x128','t128x128d']
d={}
for t in tags:
  for l in open(os.path.join(O,t+'.jsonl')):
    r=json.loads(l)
    if r.get('impl')!='tconv': continue
    d.setdefault((r['layer'],r['dtype']),{})[t]=r['dx_ms']
print('layer dtype '+' '.join(tags))
for k in sorted(d): print(k[0].ljust(16),k[1].ljust(5),' '.join(str(d[k].get(t)).ljust(8) for t in tags))
PY
cp $O/*.jsonl $OUT/
el done
