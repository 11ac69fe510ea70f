#include "core/mps_geometry.hpp"

namespace tconv::core::mps {

namespace {
// -1 validOnly, 0 same, +1 full.
int style_of(PaddingMethod m) {
  switch (m & padding::size_mask) {
    case padding::size_valid_only: return -1;
    case padding::size_full: return 1;
    default: return 0;
  }
}
bool remainder_top_left(PaddingMethod m, bool vertical) {
  const uint32_t rem = m & padding::remainder_mask;
  // bit 0 of the remainder field: right (x); bit 1: bottom (y).
  return vertical ? (rem & (2u << 2)) == 0 : (rem & (1u << 2)) == 0;
}
int64_t ceil_div_nonneg(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

AxisSizing size_by_padding_policy(int64_t in, int64_t k, int64_t s, int64_t r, PaddingMethod method, bool vertical) {
  const int64_t ke = effective_kernel(k, r);
  const int style = style_of(method);
  AxisSizing a;
  a.out_size = (in - 1) * s + 1 + style * (ke - 1);
  const int64_t extra = (style + 1) * (ke - 1);
  const bool top_left = remainder_top_left(method, vertical);
  const int64_t left = top_left ? ceil_div_nonneg(extra, 2) : extra / 2;
  a.total_offset = half_window(k, r) - left;
  a.split = split_total_offset(a.total_offset, s);
  return a;
}

AxisSizing size_by_conv_state(int64_t conv_source_size, int64_t conv_offset, int64_t k, int64_t s, int64_t r) {
  AxisSizing a;
  a.out_size = conv_source_size;
  a.total_offset = parity(k, r) - conv_offset;
  a.split = split_total_offset(a.total_offset, s);
  return a;
}

ConvAxisSizing conv_size_by_padding_policy(int64_t in, int64_t k, int64_t s, int64_t r, PaddingMethod method,
                                           bool vertical) {
  // Forward filter rule (MPSNNPadding, header): valid: (in − ke)/s + 1; same: ceil(in/s); full: (in + ke − 2)/s + 1.
  const int64_t ke = effective_kernel(k, r);
  const int style = style_of(method);
  ConvAxisSizing c;
  if (style < 0) c.out_size = (in - ke) / s + 1;
  else if (style == 0) c.out_size = ceil_div_nonneg(in, s);
  else c.out_size = (in + ke - 2) / s + 1;
  // Centre the windows of the used source span: total padding needed so that the windows cover
  // (out−1)·s + ke source pixels starting at offset − h.
  const int64_t needed = (c.out_size - 1) * s + ke - in;  // pixels of padding in total (may be < 0)
  const bool top_left = remainder_top_left(method, vertical);
  const int64_t pad_left = needed <= 0 ? needed / 2 : (top_left ? ceil_div_nonneg(needed, 2) : needed / 2);
  c.offset = half_window(k, r) - pad_left;
  return c;
}

}  // namespace tconv::core::mps
