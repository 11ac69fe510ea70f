// The optimised CPU algorithms, best first. (The reference is appended by the registry.)
// Order is the heuristic: the depthwise streaming path takes only Ig = Og = 1 layers and declines the rest;
// the few-channel path takes layers with at most 4 channels per group on one side (GEMM K of 1-4 per tap);
// each direction then has one general register-blocked algorithm that takes every problem of it.
#include "cpu/cpu_algorithms.hpp"

namespace tconv::registry {
std::vector<const Algorithm*> cpu_algorithms() {
  return {cpu::depthwise_stream(), cpu::few_channels(), cpu::phase_igemm_fwd(), cpu::igemm_bwd_data(), cpu::gemm_bwd_weights()};
}
}  // namespace tconv::registry
