// libFuzzer target: the MPS sizing functions (core/mps_geometry.hpp) over the range the API admits
// (sizes, kernel, stride, dilation in [1, 2^20], offsets within ±2^30, any padding-method bits), checking
// the identities the spec states rather than re-deriving the formulas:
//   * split_total_offset(T, s) = {floor(T/s), T mod s}: offset·s + kernel_offset = T, 0 ≤ kernel_offset < s;
//   * fwd_pad_from_total_offset and total_offset_from_fwd_pad are inverse;
//   * with the gradient auto-configuration (a.7.4) the three canonical pads are equal (mps_geometry.hpp).
// UBSan reports any overflow in between.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>

#include "core/mps_geometry.hpp"

using namespace tconv;
using namespace tconv::core::mps;

namespace {
void check_split(const OffsetSplit& sp, int64_t T, int64_t s) {
  if (sp.kernel_offset < 0 || sp.kernel_offset >= s) std::abort();
  if (sp.offset * s + sp.kernel_offset != T) std::abort();
}
void check_pads(int64_t T, int64_t k, int64_t s, int64_t r) {
  const int64_t fwd = fwd_pad_from_total_offset(T, k, r);
  if (total_offset_from_fwd_pad(fwd, k, r) != T) std::abort();
  const int64_t data = bwd_data_pad(auto_primary_offset(T, k, r), k, r);
  const int64_t weights = bwd_weights_pad(auto_kernel_offset(T, k, r), 0, k, s, r);
  if (fwd != data || fwd != weights) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int64_t max = int64_t{1} << 20;
  const int64_t n = in.ConsumeIntegralInRange<int64_t>(1, max);
  const int64_t k = in.ConsumeIntegralInRange<int64_t>(1, max);
  const int64_t s = in.ConsumeIntegralInRange<int64_t>(1, max);
  const int64_t r = in.ConsumeIntegralInRange<int64_t>(1, max);
  const int64_t offset = in.ConsumeIntegralInRange<int64_t>(-(int64_t{1} << 30), int64_t{1} << 30);
  const PaddingMethod method = in.ConsumeIntegral<uint32_t>();
  const bool vertical = in.ConsumeBool();

  const AxisSizing a = size_by_padding_policy(n, k, s, r, method, vertical);
  check_split(a.split, a.total_offset, s);
  check_pads(a.total_offset, k, s, r);

  const AxisSizing b = size_by_conv_state(n, offset, k, s, r);
  if (b.out_size != n) std::abort();
  check_split(b.split, b.total_offset, s);
  check_pads(b.total_offset, k, s, r);

  const ConvAxisSizing c = conv_size_by_padding_policy(n, k, s, r, method, vertical);
  (void)conv_canonical_pad(c.offset, k, r);
  check_split(split_total_offset(offset, s), offset, s);
  return 0;
}
