#!/bin/bash
# session 8, several GPUs (nvidia-h200-x2): scripts/gpu_multi_check.sh without its Python step, 1-epoch scaling
TCONV_MULTI_SKIP_PY=1 TCONV_MULTI_EPOCHS=1 bash scripts/gpu_multi_check.sh $OUT/multi 2>&1
