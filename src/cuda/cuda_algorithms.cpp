// registry::cuda_algorithms(): the CUDA backend's list, best first. The planner takes the first that accepts
// a problem (and whose determinism the caller allows), so the order is the default preference:
//   cuda_stream_depthwise  bandwidth-bound kernels for depthwise layers
//   cuda_tap_gemm       data and weight gradients of layers with 1-4 output channels per group on the tensor
//                      cores, taps × output channels as the GEMM's k (fsrcnn's 56→1, dcgan's 64→3)
//   cuda_channel_pad   channel counts that are not multiples of 8, zero-padded onto cuda_tc_igemm / cuda_tc_wgrad
//                      where its measured cost rule says padding pays (decided per direction)
//   cuda_few_channels  bandwidth-bound CUDA-core kernels for layers with few channels on one side
//   cuda_tc_igemm      our pipelined tensor-core implicit GEMM (fwd, bwd_data; bf16/fp16/tf32 matching images)
//   cuda_tc_wgrad      our pipelined tensor-core weight/bias gradient (bwd_weights; same precisions)
//   cuda_simt_f32      our true-float32 SIMT implicit GEMM (all passes; fp32 precision, float32 images)
//   cuda_cudnn_nondet  cuDNN's fastest heuristic algorithm; nondeterministic, used only on explicit opt-in
//   cuda_cudnn         cuDNN restricted to its deterministic algorithms; declines what cuDNN cannot express
//   cuda_igemm_mma     our tensor-core implicit GEMM (all passes; tf32/bf16/fp16 precision)
//   cuda_direct        our direct kernels; take every valid problem
// cuDNN is listed only when the build found cuDNN 9 (TCONV_HAVE_CUDNN, set by cuda.cmake).
#include "cuda/cuda_algorithms.hpp"

namespace tconv::registry {

const Algorithm* cuda_channel_pad_algorithm();  // channel_pad.cu: few channels padded onto the tensor cores
std::vector<const Algorithm*> cuda_algorithms() {
  std::vector<const Algorithm*> v;
  v.push_back(cuda_stream_depthwise_algorithm());
  v.push_back(cuda_tap_gemm_algorithm());
  v.push_back(cuda_channel_pad_algorithm());
  v.push_back(cuda_few_channels_algorithm());
  v.push_back(cuda_tc_igemm_algorithm());
  v.push_back(cuda_tc_wgrad_algorithm());
  v.push_back(cuda_simt_f32_algorithm());
#if defined(TCONV_HAVE_CUDNN)
  v.push_back(cuda_cudnn_nondeterministic_algorithm());
  v.push_back(cuda_cudnn_algorithm());
#endif
  v.push_back(cuda_igemm_mma_algorithm());
  v.push_back(cuda_direct_algorithm());
  return v;
}

}  // namespace tconv::registry
