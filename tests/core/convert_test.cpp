// Public MPS ↔ PyTorch conversions (include/tconv/convert.hpp; spec a.13, e13): weight layouts element by
// element and round trips, geometry round trips, errors naming values, and the a.13 claim itself: MPS's
// forward (a.5.4, written here from the zero-inserted image) equals PyTorch's ConvTranspose2d definition
// (written here as a scatter) with the converted weights and padding.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/mps_geometry.hpp"
#include "tconv/convert.hpp"
#include "tconv/error.hpp"

namespace tconv {
namespace {

int64_t uni(std::mt19937_64& r, int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(r() % static_cast<uint64_t>(hi - lo + 1)); }

WeightShape random_shape(std::mt19937_64& r) {
  WeightShape s;
  s.groups = uni(r, 1, 3);
  s.in_channels = s.groups * uni(r, 1, 4);
  s.out_channels = s.groups * uni(r, 1, 4);
  s.kernel_h = uni(r, 1, 5);
  s.kernel_w = uni(r, 1, 5);
  return s;
}

std::vector<float> iota(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  return v;
}

TEST(Convert, TransposeWeightsFollowA13) {
  std::mt19937_64 r(1);
  for (int it = 0; it < 40; ++it) {
    const WeightShape s = random_shape(r);
    const int64_t Ig = s.in_channels / s.groups, Og = s.out_channels / s.groups, kh = s.kernel_h, kw = s.kernel_w;
    const std::vector<float> w = iota(s.elements());
    const std::vector<float> pt = transpose_weights_to_torch(w, s);
    // Wpt[g·Ig + c][o − g·Og][kH−1−q][kW−1−p] = W[o][q][p][c]
    for (int64_t o = 0; o < s.out_channels; ++o)
      for (int64_t q = 0; q < kh; ++q)
        for (int64_t p = 0; p < kw; ++p)
          for (int64_t c = 0; c < Ig; ++c) {
            const int64_t g = o / Og;
            const size_t ti = static_cast<size_t>((((g * Ig + c) * Og + (o - g * Og)) * kh + (kh - 1 - q)) * kw + (kw - 1 - p));
            ASSERT_EQ(pt[ti], w[static_cast<size_t>(((o * kh + q) * kw + p) * Ig + c)]);
          }
    EXPECT_EQ(transpose_weights_from_torch(pt, s), w);
    std::vector<float> back(w.size());
    transpose_weights_from_torch(pt.data(), back.data(), s);
    EXPECT_EQ(back, w);
  }
}

TEST(Convert, ConvWeightsFollowPyTorchLayout) {
  std::mt19937_64 r(2);
  for (int it = 0; it < 40; ++it) {
    const WeightShape s = random_shape(r);
    const int64_t Ig = s.in_channels / s.groups, kh = s.kernel_h, kw = s.kernel_w;
    const std::vector<float> w = iota(s.elements());
    const std::vector<float> pt = conv_weights_to_torch(w, s);
    for (int64_t o = 0; o < s.out_channels; ++o)
      for (int64_t q = 0; q < kh; ++q)
        for (int64_t p = 0; p < kw; ++p)
          for (int64_t c = 0; c < Ig; ++c)
            ASSERT_EQ(pt[static_cast<size_t>(((o * Ig + c) * kh + q) * kw + p)],
                      w[static_cast<size_t>(((o * kh + q) * kw + p) * Ig + c)]);
    EXPECT_EQ(conv_weights_from_torch(pt, s), w);
  }
}

TEST(Convert, BadSizesThrowInvalidArgumentNamingValues) {
  const WeightShape s{.in_channels = 4, .out_channels = 6, .kernel_h = 3, .kernel_w = 3, .groups = 2};
  try {
    (void)transpose_weights_to_torch(std::vector<float>(10), s);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("108"), std::string::npos) << e.what();  // expected 6·3·3·2
    EXPECT_NE(std::string(e.what()).find("10"), std::string::npos) << e.what();
  }
  WeightShape g = s;
  g.groups = 4;  // does not divide 6
  try {
    (void)conv_weights_from_torch(std::vector<float>(1), g);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("groups 4"), std::string::npos) << e.what();
  }
  WeightShape z = s;
  z.kernel_w = 0;
  EXPECT_THROW((void)conv_weights_to_torch(std::vector<float>(), z), Error);
  EXPECT_THROW((void)torch_transpose_output_size(2, 3, 1, 1, 5, 0), Error);  // output size ≤ 0
  EXPECT_THROW((void)torch_conv_output_size(2, 5, 1, 1, 0), Error);
  EXPECT_THROW((void)mps_offsets_from_torch(TorchTransposeGeometry{.stride = {0, 1}}, 3, 3), Error);
}

TEST(Convert, SpecOneDimensionalExample) {
  // a.13: Win = 2, sX = 2, kW = 3, Tx = 0 ⇔ PyTorch padding 1, output length 3.
  EXPECT_EQ(torch_padding_from_mps_total_offset(0, 3, 1), 1);
  EXPECT_EQ(mps_total_offset_from_torch_padding(1, 3, 1), 0);
  EXPECT_EQ(torch_transpose_output_size(2, 3, 2, 1, 1, 0), 3);
  TorchTransposeGeometry t;
  t.stride = {1, 2};
  t.padding = {0, 1};
  const MpsTransposeOffsets o = mps_offsets_from_torch(t, 1, 3);
  EXPECT_EQ(o.offset_x, 0);
  EXPECT_EQ(o.kernel_offset_x, 0);
  // Height: k = 1, P = 0 ⇒ T = 0.
  EXPECT_EQ(o.offset_y, 0);
  // Negative totals split with floor/mod: P = 0, k = 3, s = 2 ⇒ T = −1 ⇒ offset −1, kernelOffset 1.
  t.padding = {0, 0};
  const MpsTransposeOffsets n = mps_offsets_from_torch(t, 1, 3);
  EXPECT_EQ(n.offset_x, -1);
  EXPECT_EQ(n.kernel_offset_x, 1);
  EXPECT_EQ(torch_conv_output_size(10, 3, 2, 1, 1), 5);
}

TEST(Convert, GeometryRoundTripsAndRefusals) {
  std::mt19937_64 r(3);
  for (int it = 0; it < 500; ++it) {
    TorchTransposeGeometry t;
    t.stride = {uni(r, 1, 4), uni(r, 1, 4)};
    t.dilation = {uni(r, 1, 3), uni(r, 1, 3)};
    const int64_t kh = uni(r, 1, 6), kw = uni(r, 1, 6);
    t.padding = {uni(r, 0, (kh - 1) * t.dilation.h), uni(r, 0, (kw - 1) * t.dilation.w)};
    t.output_padding = {uni(r, 0, std::max(t.stride.h, t.dilation.h) - 1), uni(r, 0, std::max(t.stride.w, t.dilation.w) - 1)};
    t.groups = uni(r, 1, 3);
    const TorchTransposeGeometry::HW in{uni(r, 1, 9), uni(r, 1, 9)};
    TorchTransposeGeometry::HW out;
    try {
      out = {torch_transpose_output_size(in.h, kh, t.stride.h, t.dilation.h, t.padding.h, t.output_padding.h),
             torch_transpose_output_size(in.w, kw, t.stride.w, t.dilation.w, t.padding.w, t.output_padding.w)};
    } catch (const Error&) {
      continue;  // this combination has no positive output size
    }
    const MpsTransposeOffsets o = mps_offsets_from_torch(t, kh, kw);
    EXPECT_GE(o.kernel_offset_x, 0);
    EXPECT_LT(o.kernel_offset_x, t.stride.w);
    EXPECT_EQ(torch_from_mps(o, kh, kw, t.stride, t.dilation, t.groups, in, out), t);
  }
  // Negative padding and output_padding ≥ max(stride, dilation) are refused with the values named.
  const MpsTransposeOffsets neg{.offset_x = -2, .offset_y = 0, .kernel_offset_x = 0, .kernel_offset_y = 0};
  try {
    (void)torch_from_mps(neg, 1, 1, {1, 1}, {1, 1}, 1, {4, 4}, {4, 6});
    FAIL() << "negative padding accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("-2"), std::string::npos) << e.what();
  }
  try {
    (void)torch_from_mps(MpsTransposeOffsets{}, 1, 1, {2, 2}, {1, 1}, 1, {4, 4}, {7, 9});  // x: op = 2 ≥ stride 2
    FAIL() << "output_padding 2 with stride 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output_padding 2"), std::string::npos) << e.what();
  }
}

// a.13 end to end in 1-D with groups: MPS a.5.4 from the zero-inserted source equals PyTorch's
// ConvTranspose1d scatter y[o] += Wpt[ci][o_local][k]·x[ci][i] at o = i·s − P + d·k, wherever both exist.
TEST(Convert, MpsForwardEqualsPyTorchDefinition) {
  std::mt19937_64 r(4);
  for (int it = 0; it < 300; ++it) {
    const int64_t G = uni(r, 1, 2), Ig = uni(r, 1, 3), Og = uni(r, 1, 3), k = uni(r, 1, 5), s = uni(r, 1, 3),
                  d = uni(r, 1, 2), win = uni(r, 1, 5);
    const int64_t nin = G * Ig, nout = G * Og;
    const int64_t ke = (k - 1) * d + 1, h = ke / 2;
    const int64_t T = uni(r, h - (ke - 1), h + 2);  // between "full" and beyond "validOnly"
    const int64_t P = torch_padding_from_mps_total_offset(T, k, d);
    if (P < 0) continue;  // PyTorch cannot express it (a.13: pad X first)
    const int64_t wout = (win - 1) * s - 2 * P + d * (k - 1) + 1;
    if (wout <= 0) continue;
    const WeightShape shape{.in_channels = nin, .out_channels = nout, .kernel_h = 1, .kernel_w = k, .groups = G};
    std::vector<float> W(static_cast<size_t>(shape.elements()));
    for (float& v : W) v = static_cast<float>(uni(r, -3, 3));
    std::vector<double> X(static_cast<size_t>(win * nin));
    for (double& v : X) v = static_cast<double>(uni(r, -3, 3));
    const std::vector<float> Wpt = transpose_weights_to_torch(W, shape);
    // MPS a.5.4 (offset/kernelOffset split of T, Z = zero-inserted X).
    const auto split = core::mps::split_total_offset(T, s);
    ASSERT_EQ(split.offset * s + split.kernel_offset, T);
    auto Z = [&](int64_t zi, int64_t ch) -> double {
      if (zi < 0 || zi % s != 0 || zi / s >= win) return 0.0;
      return X[static_cast<size_t>((zi / s) * nin + ch)];
    };
    std::vector<double> mps(static_cast<size_t>(wout * nout), 0.0), pt(mps.size(), 0.0);
    for (int64_t x = 0; x < wout; ++x)
      for (int64_t o = 0; o < nout; ++o)
        for (int64_t p = 0; p < k; ++p)
          for (int64_t c = 0; c < Ig; ++c)
            mps[static_cast<size_t>(x * nout + o)] +=
                W[static_cast<size_t>(o * k * Ig + p * Ig + c)] * Z(T + x - h + d * p, (o / Og) * Ig + c);
    for (int64_t i = 0; i < win; ++i)
      for (int64_t ci = 0; ci < nin; ++ci)
        for (int64_t ol = 0; ol < Og; ++ol)
          for (int64_t kk = 0; kk < k; ++kk) {
            const int64_t o = i * s - P + d * kk;
            if (o < 0 || o >= wout) continue;
            const int64_t g = ci / Ig;
            pt[static_cast<size_t>(o * nout + g * Og + ol)] +=
                Wpt[static_cast<size_t>((ci * Og + ol) * k + kk)] * X[static_cast<size_t>(i * nin + ci)];
          }
    ASSERT_EQ(mps, pt) << "T " << T << " P " << P << " k " << k << " s " << s << " d " << d << " win " << win;
  }
}

}  // namespace
}  // namespace tconv
