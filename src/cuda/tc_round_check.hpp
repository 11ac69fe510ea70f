// A self-check of the tf32 rounding the tensor-core kernels use (tc_common.cuh): sm_90's one-instruction
// cvt.rn.tf32.f32 (tf32_rne_fast) against the integer round-to-nearest-even (tf32_rne_bits, core::round_input's
// rule) over every float bit pattern, on the device. The kernels rely on the two agreeing wherever the tensor
// cores look (the 19 high bits); a test runs it (tests/cuda/cuda_kernels_test.cpp). Plain C++ declarations.
#pragma once

#include <cstdint>

#include "core/status.hpp"

namespace tconv::cuda_tc {

struct Tf32RoundCheck {
  uint64_t mismatches = 0;  // finite or infinite inputs whose 19 high result bits differ
  uint64_t nan_lost = 0;    // NaN inputs whose result is not a NaN
  uint32_t first_input = 0, first_fast = 0, first_reference = 0;  // the first mismatch found (any order)
};

// Runs the check on `device` (synchronously); the status reports CUDA errors.
core::Status check_tf32_rounding(int device, Tf32RoundCheck& out);

}  // namespace tconv::cuda_tc
