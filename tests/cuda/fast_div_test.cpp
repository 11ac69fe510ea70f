// FastDiv (src/cuda/fast_div.hpp), the multiply-high division the cuda_tap_gemm kernels index with, against the /
// operator: every numerator below 2^17 and the edges of the 32-bit range (each multiple of d and its neighbours near
// 2^31 and 2^32), for every divisor up to 4096 and for large and power-of-two divisors. Host code: runs without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cuda/fast_div.hpp"

namespace tconv::cuda_test {
namespace {

using cuda_backend::FastDiv;

void check_divisor(uint32_t d, int64_t* checked) {
  const FastDiv f(d);
  std::vector<uint32_t> ns;
  for (uint32_t n = 0; n < (1u << 17); ++n) ns.push_back(n);
  for (uint64_t top : {uint64_t{1} << 31, uint64_t{1} << 32}) {
    const uint64_t q = (top - 1) / d;  // the last multiples of d below top, and their neighbours
    for (uint64_t k = (q >= 2 ? q - 2 : 0); k <= q; ++k)
      for (int64_t delta = -1; delta <= 1; ++delta) {
        const int64_t n = static_cast<int64_t>(k * d) + delta;
        if (n >= 0 && n < static_cast<int64_t>(top)) ns.push_back(static_cast<uint32_t>(n));
      }
    ns.push_back(static_cast<uint32_t>(top - 1));
  }
  for (uint32_t n : ns) {
    ASSERT_EQ(f.div(n), n / d) << n << " / " << d;
    ++*checked;
  }
}

TEST(CudaFastDiv, MatchesIntegerDivision) {
  int64_t checked = 0;
  for (uint32_t d = 1; d <= 4096; ++d) check_divisor(d, &checked);
  for (uint32_t d : {4097u, 65535u, 65536u, 65537u, (1u << 20) + 7u, (1u << 30) - 1u, 1u << 30, (1u << 31) - 1u,
                     1u << 31, (1u << 31) + 1u, 0xfffffffeu, 0xffffffffu})
    check_divisor(d, &checked);
  EXPECT_GT(checked, int64_t{4096} << 17);
}

}  // namespace
}  // namespace tconv::cuda_test
