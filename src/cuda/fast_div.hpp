// FastDiv: division of 32-bit unsigned numbers by a divisor fixed at plan time, as a multiply-high, an add and a
// shift (Granlund and Montgomery's round-up method, as in "Division by Invariant Integers using Multiplication",
// 1994): with l = ⌈log2 d⌉ and m = ⌊2^32·(2^l − d) / d⌋ + 1, n / d = (umulhi(n, m) + n) >> l for every n < 2^32,
// the sum taken in 64 bits. Kernels that split a flat element index into coordinates (index / channels, then /
// width) spend about 20 instructions on each compiler-generated integer division; this is three.
// Host and device (the plan computes m on the host; tests check it there against the / operator).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TCONV_FASTDIV_HD __host__ __device__ __forceinline__
#else
#define TCONV_FASTDIV_HD inline
#endif

namespace tconv::cuda_backend {

struct FastDiv {
  uint32_t d = 1, mul = 1, shift = 0;
  FastDiv() = default;
  // divisor ≥ 1.
  explicit FastDiv(uint32_t divisor) : d(divisor) {
    while ((uint64_t{1} << shift) < divisor) ++shift;
    mul = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }
  TCONV_FASTDIV_HD uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(n, mul);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(n) * mul) >> 32);
#endif
    return static_cast<uint32_t>((static_cast<uint64_t>(hi) + n) >> shift);
  }
};

}  // namespace tconv::cuda_backend
