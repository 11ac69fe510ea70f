// core::mps geometry helpers against the spec's stated values (a.5.3–a.5.5, a.7.4, a.13, e3).
#include <gtest/gtest.h>

#include <cstdint>

#include "core/mps_geometry.hpp"
#include "core/problem.hpp"

namespace tconv::core::mps {
namespace {

TEST(MpsGeometry, FloorDivAndModOnNegatives) {
  EXPECT_EQ(floor_div(-1, 2), -1);
  EXPECT_EQ(mod(-1, 2), 1);  // spec a.0: mod(−1, 2) = 1
  EXPECT_EQ(floor_div(-4, 2), -2);
  EXPECT_EQ(mod(-4, 2), 0);
  EXPECT_EQ(floor_div(-7, 3), -3);
  EXPECT_EQ(mod(-7, 3), 2);
  EXPECT_EQ(floor_div(7, 3), 2);
  EXPECT_EQ(mod(7, 3), 1);
  EXPECT_EQ(floor_div(0, 5), 0);
  for (int64_t a = -20; a <= 20; ++a)
    for (int64_t b = 1; b <= 5; ++b) {
      EXPECT_EQ(floor_div(a, b) * b + mod(a, b), a);
      EXPECT_GE(mod(a, b), 0);
      EXPECT_LT(mod(a, b), b);
    }
  const OffsetSplit s = split_total_offset(-3, 2);
  EXPECT_EQ(s.offset, -2);
  EXPECT_EQ(s.kernel_offset, 1);
}

TEST(MpsGeometry, WindowTerms) {
  EXPECT_EQ(effective_kernel(3, 2), 5);
  EXPECT_EQ(half_window(3, 2), 2);
  EXPECT_EQ(parity(3, 2), 0);
  EXPECT_EQ(parity(2, 3), 1);  // ke = 4 (e3: parity of the dilated window)
  EXPECT_EQ(parity(4, 1), 1);
}

TEST(MpsGeometry, PaddingPolicyTotalOffsets) {
  for (int64_t k = 1; k <= 7; ++k)
    for (int64_t r = 1; r <= 3; ++r)
      for (int64_t s = 1; s <= 4; ++s)
        for (int64_t in = 1; in <= 6; ++in) {
          const int64_t ke = effective_kernel(k, r), h = half_window(k, r);
          const AxisSizing v = size_by_padding_policy(in, k, s, r, padding::size_valid_only);
          EXPECT_EQ(v.total_offset, h);  // validOnly: Tx = hW
          EXPECT_EQ(v.out_size, (in - 1) * s + 1 - (ke - 1));
          const AxisSizing f = size_by_padding_policy(in, k, s, r, padding::size_full);
          EXPECT_EQ(f.total_offset, h - (ke - 1));  // full: Tx = hW − (kWe − 1)
          EXPECT_EQ(f.out_size, (in - 1) * s + 1 + (ke - 1));
          const AxisSizing m = size_by_padding_policy(in, k, s, r, padding::size_same);
          EXPECT_EQ(m.out_size, (in - 1) * s + 1);
          if (ke % 2 == 1) {
            EXPECT_EQ(m.total_offset, 0);  // same, odd kWe: Tx = 0
          }
          for (const AxisSizing* a : {&v, &f, &m}) {
            EXPECT_EQ(a->split.offset, floor_div(a->total_offset, s));
            EXPECT_EQ(a->split.kernel_offset, mod(a->total_offset, s));
            EXPECT_EQ(a->split.offset * s + a->split.kernel_offset, a->total_offset);
          }
        }
}

// a.13: the 1-D example of a.5.4 (Win = 2, sX = 2, kW = 3, Tx = 0) is PyTorch padding P = 1 and length 3.
TEST(MpsGeometry, SpecA13OneDimensionalExample) {
  const int64_t P = fwd_pad_from_total_offset(0, 3, 1);
  EXPECT_EQ(P, 1);
  EXPECT_EQ(Geometry::out_size(2, 3, 2, 1, P, 0), 3);
  EXPECT_EQ(total_offset_from_fwd_pad(P, 3, 1), 0);
  for (int64_t T = -6; T <= 6; ++T)
    for (int64_t k = 1; k <= 5; ++k)
      for (int64_t r = 1; r <= 3; ++r) EXPECT_EQ(total_offset_from_fwd_pad(fwd_pad_from_total_offset(T, k, r), k, r), T);
}

// a.7.4: with the gradient's auto-configuration the three canonical pads coincide.
TEST(MpsGeometry, AutoConfigurationGivesOnePad) {
  for (int64_t T = -5; T <= 5; ++T)
    for (int64_t k = 1; k <= 6; ++k)
      for (int64_t r = 1; r <= 3; ++r)
        for (int64_t s = 1; s <= 3; ++s) {
          const int64_t fwd = fwd_pad_from_total_offset(T, k, r);
          EXPECT_EQ(bwd_data_pad(auto_primary_offset(T, k, r), k, r), fwd);
          EXPECT_EQ(bwd_weights_pad(auto_kernel_offset(T, k, r), 0, k, s, r), fwd);
        }
}

// a.5.5 (B): sized from a conv state, the transpose is the adjoint of that conv: same canonical pad, the
// conv's source size, and the offset split of T = par(kWe) − offset_conv.
TEST(MpsGeometry, ConvStateSizing) {
  for (int64_t off = -4; off <= 4; ++off)
    for (int64_t k = 1; k <= 6; ++k)
      for (int64_t r = 1; r <= 3; ++r)
        for (int64_t s = 1; s <= 3; ++s) {
          const AxisSizing a = size_by_conv_state(/*conv_source_size=*/11, off, k, s, r);
          EXPECT_EQ(a.out_size, 11);
          EXPECT_EQ(a.total_offset, parity(k, r) - off);
          EXPECT_EQ(a.split.offset, floor_div(a.total_offset, s));
          EXPECT_EQ(a.split.kernel_offset, mod(a.total_offset, s));
          EXPECT_EQ(fwd_pad_from_total_offset(a.total_offset, k, r), conv_canonical_pad(off, k, r));
        }
}

TEST(MpsGeometry, ConvPaddingPolicySizes) {
  // MPSNNPadding forward rule: valid (in − ke)/s + 1, same ceil(in/s), full (in + ke − 2)/s + 1.
  EXPECT_EQ(conv_size_by_padding_policy(10, 3, 2, 1, padding::size_valid_only).out_size, 4);
  EXPECT_EQ(conv_size_by_padding_policy(10, 3, 2, 1, padding::size_same).out_size, 5);
  EXPECT_EQ(conv_size_by_padding_policy(10, 3, 2, 1, padding::size_full).out_size, 6);
  // Same, stride 1, odd kernel: centred windows, offset 0 (canonical pad = h).
  const ConvAxisSizing c = conv_size_by_padding_policy(7, 5, 1, 1, padding::size_same);
  EXPECT_EQ(c.out_size, 7);
  EXPECT_EQ(c.offset, 0);
  EXPECT_EQ(conv_canonical_pad(c.offset, 5, 1), 2);
}

}  // namespace
}  // namespace tconv::core::mps
