// MPS geometry -> canonical geometry, one axis at a time (spec a.5.3–a.5.5, a.7.4–a.7.5, a.13, e3, e14).
//
// Notation (spec a.0): k kernel size, s stride, r dilation, ke = (k−1)·r + 1, h = floor(ke/2),
// par = 1 if ke is even (e3: parity of the *dilated* window everywhere).
// T is the forward transpose's total offset in the zero-inserted frame: T = offset·s + kernelOffset.
//
// Forward (a.5.4):      Y[y'] = Σ_q W[q]·Z[T + y' − h + r·q]       ⇒ canonical pad = T − h + (ke − 1)
// Data gradient (a.7.5): gX[v'] = Σ_q W[q]·gY[s·v' + P − h + r(k−1−q)] ⇒ canonical pad = h − P
// Weight gradient (a.7.5): gW[q] = Σ gY[y'']·Z[K + s·S + y'' + r·q] ⇒ canonical pad = K + s·S + ke − 1
// (P = primaryOffset, S = secondaryOffset, K = kernelOffset of the gradient kernel.)
// With the auto-configuration of a.7.4 (P = par − T, K = T − h, S = 0) all three pads are equal.
#pragma once

#include <cstdint>

#include "tconv/types.hpp"

namespace tconv::core::mps {

inline int64_t floor_div(int64_t a, int64_t b) { int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; }
inline int64_t mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

inline int64_t effective_kernel(int64_t k, int64_t r) { return (k - 1) * r + 1; }
inline int64_t half_window(int64_t k, int64_t r) { return effective_kernel(k, r) / 2; }
inline int64_t parity(int64_t k, int64_t r) { return (effective_kernel(k, r) % 2 == 0) ? 1 : 0; }

// Transpose forward: canonical padding from the total offset T, and back.
inline int64_t fwd_pad_from_total_offset(int64_t T, int64_t k, int64_t r) {
  return T - half_window(k, r) + (effective_kernel(k, r) - 1);
}
inline int64_t total_offset_from_fwd_pad(int64_t pad, int64_t k, int64_t r) {
  return pad + half_window(k, r) - (effective_kernel(k, r) - 1);
}
// Data gradient with primary offset P (explicit configuration).
inline int64_t bwd_data_pad(int64_t primary_offset, int64_t k, int64_t r) { return half_window(k, r) - primary_offset; }
// Weight gradient with kernel offset K and secondary offset S (explicit configuration).
inline int64_t bwd_weights_pad(int64_t kernel_offset, int64_t secondary_offset, int64_t k, int64_t s, int64_t r) {
  return kernel_offset + s * secondary_offset + effective_kernel(k, r) - 1;
}

// The split MPS writes back into the properties: offset = floor(T/s), kernelOffset = mod(T, s).
struct OffsetSplit {
  int64_t offset = 0;         // in source (X) pixels
  int64_t kernel_offset = 0;  // in zero-inserted (Z) pixels, 0 ≤ kernel_offset < s
};
inline OffsetSplit split_total_offset(int64_t T, int64_t s) { return {floor_div(T, s), mod(T, s)}; }

// Result of sizing a transpose destination on one axis.
struct AxisSizing {
  int64_t out_size = 0;
  int64_t total_offset = 0;  // T
  OffsetSplit split;
};

// (A) no convolution state: padding policy (spec a.5.5 A, c.3). Custom policies are the caller's business.
// vertical selects the remainder bit of the y axis (bottom) instead of the x axis (right).
AxisSizing size_by_padding_policy(int64_t in, int64_t k, int64_t s, int64_t r, PaddingMethod method,
                                  bool vertical = false);
// (B) with the gradient state of the convolution being undone (spec a.5.5 B, e3: par of ke).
AxisSizing size_by_conv_state(int64_t conv_source_size, int64_t conv_offset, int64_t k, int64_t s, int64_t r);

// Gradient auto-configuration from the forward's T (spec a.7.4).
inline int64_t auto_primary_offset(int64_t T, int64_t k, int64_t r) { return parity(k, r) - T; }
inline int64_t auto_kernel_offset(int64_t T, int64_t k, int64_t r) { return T - half_window(k, r); }

// Plain MPS convolution (MPSCNNConvolution), source X_c, destination Y_c:
//   Y_c[y'] = Σ_q W_c[q]·X_c[offset + s·y' − h + r·q]
// Its canonical form is the transpose's bwd_data with diff_dst := X_c (see core/direction.hpp), whose
// canonical pad is h − offset. The conv's own sizing by padding policy (forward filter rule, c.3):
struct ConvAxisSizing {
  int64_t out_size = 0;
  int64_t offset = 0;
};
ConvAxisSizing conv_size_by_padding_policy(int64_t in, int64_t k, int64_t s, int64_t r, PaddingMethod method,
                                           bool vertical = false);
inline int64_t conv_canonical_pad(int64_t offset, int64_t k, int64_t r) { return half_window(k, r) - offset; }

}  // namespace tconv::core::mps
