// The optimised CPU algorithms, one per file; each file exposes its single instance here and
// cpu_algorithms.cpp lists them best first (the registry appends the reference).
#pragma once

#include "registry/algorithm.hpp"

namespace tconv::cpu {

const registry::Algorithm* depthwise_stream();   // depthwise_stream.cpp: all directions, Ig = Og = 1
const registry::Algorithm* few_channels();       // few_channels.cpp: all directions, min(Ig, Og) <= 4
const registry::Algorithm* phase_igemm_fwd();    // phase_igemm_fwd.cpp: fwd
const registry::Algorithm* igemm_bwd_data();     // igemm_bwd_data.cpp: bwd_data
const registry::Algorithm* gemm_bwd_weights();   // gemm_bwd_weights.cpp: bwd_weights (+ fused diff_bias)

// The one instance of algorithm class A, what each file's accessor above returns.
template <class A>
const registry::Algorithm* single_instance() {
  static const A a;
  return &a;
}

}  // namespace tconv::cpu
