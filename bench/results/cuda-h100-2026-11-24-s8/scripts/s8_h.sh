#!/bin/bash
# session 8 call H: build from source (scripts/gpu_check.sh, build only) and the training check
# (scripts/gpu_train_check.sh: tconv train --device cuda against the PyTorch peer, 3 epochs of Fashion-MNIST)
set -u
T0=$(date +%s)
O=$OUT
TCONV_GPU_QUICK=1 TCONV_GPU_SKIP_TESTS=1 TCONV_GPU_BUILD_LIMIT=470 bash scripts/gpu_check.sh $O/build > /dev/null 2>&1
el "build: $(grep -E '^(build|binaries)' $O/build/summary.txt | tr '\n' ' ')"
. .carry/lead/env.sh
timeout 115 bash scripts/gpu_train_check.sh $O/train > $O/train.out 2>&1
el "train rc=$?"
cat $O/train/summary_train.txt
rm -f $O/build/build.log
el done
