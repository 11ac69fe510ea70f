// cpu_igemm_bwd_data_f32: the data gradient diff_src = (convolution of diff_dst with stride s, dilation d)
// as an indirect GEMM gather over diff_src pixels: every tap of every pixel reads a real diff_dst row (or
// padding), so there are no inserted zeros to skip. Engine: igemm_f32.hpp.
// float16/bfloat16 activations and rounding precision modes are staged into float32 (cpu_common.hpp);
// accumulation is float32 in a fixed order (deterministic for any thread count).
#include "cpu/cpu_algorithms.hpp"
#include "cpu/igemm_f32.hpp"

namespace tconv::cpu {

const registry::Algorithm* igemm_bwd_data() {
  static const IgemmAlgorithm a("cpu_igemm_bwd_data_f32", core::Direction::bwd_data, "data gradient (bwd_data)");
  return &a;
}

}  // namespace tconv::cpu
