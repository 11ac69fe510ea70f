// The CUDA algorithms of this folder, one accessor per file; cuda_algorithms.cpp orders them.
#pragma once

#include "registry/algorithm.hpp"

namespace tconv::registry {

const Algorithm* cuda_stream_depthwise_algorithm();  // stream_depthwise.cu: groups == channels, all passes
const Algorithm* cuda_few_channels_algorithm();      // stream_few.cu: <= 4 channels a side (or <= 32 both), all passes
const Algorithm* cuda_tap_gemm_algorithm();     // tap_gemm.cu: 1-4 output channels, bwd_data/bwd_weights, tensor cores
const Algorithm* cuda_tc_igemm_algorithm();   // tc_igemm.cpp: pipelined tensor-core fwd/bwd_data
const Algorithm* cuda_tc_wgrad_algorithm();    // tc_wgrad.cu: pipelined tensor-core bwd_weights
const Algorithm* cuda_simt_f32_algorithm();   // simt_f32.cu: fp32 precision on the CUDA cores, all passes
const Algorithm* cuda_direct_algorithm();     // cuda_direct.cu: every problem, deterministic
const Algorithm* cuda_igemm_mma_algorithm();  // igemm_mma.cu: tensor cores, all passes, tf32/bf16/fp16
// cuda_cudnn.cu (built when cuDNN 9 is found): deterministic algorithm choice, or the fastest heuristic one.
const Algorithm* cuda_cudnn_algorithm();
const Algorithm* cuda_cudnn_nondeterministic_algorithm();

}  // namespace tconv::registry
