// cpu_phase_igemm_f32: the forward pass (dst = neuron(bias + transposed convolution of src)) as an indirect
// GEMM over the stride phases of dst (sub-pixel decomposition): each phase is a dense convolution with the
// taps that hit it, so no multiply touches an inserted zero. Engine: igemm_f32.hpp.
// float16/bfloat16 activations and rounding precision modes are staged into float32 (cpu_common.hpp);
// accumulation is float32 in a fixed order (deterministic for any thread count).
#include "cpu/cpu_algorithms.hpp"
#include "cpu/igemm_f32.hpp"

namespace tconv::cpu {

const registry::Algorithm* phase_igemm_fwd() {
  static const IgemmAlgorithm a("cpu_phase_igemm_f32", core::Direction::fwd, "forward direction");
  return &a;
}

}  // namespace tconv::cpu
