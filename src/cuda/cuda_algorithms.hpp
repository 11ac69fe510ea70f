// The CUDA algorithms of this folder, one accessor per file; cuda_algorithms.cpp orders them.
#pragma once

#include "registry/algorithm.hpp"

namespace tconv::registry {

const Algorithm* cuda_direct_algorithm();     // cuda_direct.cu: every problem, deterministic
const Algorithm* cuda_igemm_mma_algorithm();  // igemm_mma.cu: tensor cores, all passes, tf32/bf16/fp16
// cuda_cudnn.cu (built when cuDNN 9 is found): deterministic algorithm choice, or the fastest heuristic one.
const Algorithm* cuda_cudnn_algorithm();
const Algorithm* cuda_cudnn_nondeterministic_algorithm();

}  // namespace tconv::registry
