// The conv ↔ transpose mapping (core/direction.hpp) on its own: each conv pass computed through the mapping
// (with the reference algorithm) against a direct conv definition written here, on small-integer data so
// every value is exact and the comparison has zero tolerance. Plus the weight transform's formula, its
// round trip and the bias-gradient helper.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/direction.hpp"
#include "core/dtype.hpp"
#include "registry/algorithm.hpp"

namespace tconv::core {
namespace {

int64_t uni(std::mt19937_64& r, int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(r() % static_cast<uint64_t>(hi - lo + 1)); }

ConvGeometry random_conv(std::mt19937_64& r) {
  for (;;) {
    ConvGeometry c;
    c.n = uni(r, 1, 2);
    c.groups = uni(r, 1, 3);
    c.c_in = c.groups * uni(r, 1, 3);
    c.c_out = c.groups * uni(r, 1, 3);
    c.kh = uni(r, 1, 4); c.kw = uni(r, 1, 4);
    c.stride_h = uni(r, 1, 3); c.stride_w = uni(r, 1, 3);
    c.dil_h = uni(r, 1, 2); c.dil_w = uni(r, 1, 2);
    c.pad_h = uni(r, -1, 2); c.pad_w = uni(r, -1, 2);
    c.h_in = uni(r, 1, 8); c.w_in = uni(r, 1, 8);
    c.h_out = ConvGeometry::out_size(c.h_in, c.kh, c.stride_h, c.dil_h, c.pad_h);
    c.w_out = ConvGeometry::out_size(c.w_in, c.kw, c.stride_w, c.dil_w, c.pad_w);
    if (uni(r, 0, 3) == 0) c.h_out += uni(r, -1, 2);  // explicit output sizes beyond PyTorch's
    if (c.h_out > 0 && c.w_out > 0) return c;
  }
}

std::vector<float> ints(std::mt19937_64& r, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(uni(r, -3, 3));
  return v;
}

// Calls f(y index, x index, conv weight index) for every term of the direct conv definition.
template <class F>
void conv_terms(const ConvGeometry& c, F f) {
  const int64_t Ic = c.c_in / c.groups, Oc = c.c_out / c.groups;
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t j = 0; j < c.h_out; ++j)
      for (int64_t i = 0; i < c.w_out; ++i)
        for (int64_t o = 0; o < c.c_out; ++o)
          for (int64_t q = 0; q < c.kh; ++q)
            for (int64_t p = 0; p < c.kw; ++p)
              for (int64_t ci = 0; ci < Ic; ++ci) {
                const int64_t y = j * c.stride_h - c.pad_h + c.dil_h * q;
                const int64_t x = i * c.stride_w - c.pad_w + c.dil_w * p;
                if (y < 0 || y >= c.h_in || x < 0 || x >= c.w_in) continue;
                const int64_t cg = (o / Oc) * Ic + ci;
                f(((n * c.h_out + j) * c.w_out + i) * c.c_out + o, ((n * c.h_in + y) * c.w_in + x) * c.c_in + cg,
                  ((o * c.kh + q) * c.kw + p) * Ic + ci);
              }
}

const registry::Algorithm& ref() { return *registry::find("cpu_ref_f64"); }

TEST(DirectionMapping, ConvPassesEqualTransposePasses) {
  std::mt19937_64 r(5);
  for (int it = 0; it < 300; ++it) {
    const ConvGeometry c = random_conv(r);
    const int64_t nx = c.n * c.h_in * c.w_in * c.c_in, ny = c.n * c.h_out * c.w_out * c.c_out;
    const std::vector<float> x = ints(r, nx), dy = ints(r, ny), wc = ints(r, conv_wei_elements(c));
    std::vector<float> wt(wc.size());
    conv_weights_to_transpose(c, wc.data(), wt.data());

    std::vector<double> y_def(static_cast<size_t>(ny), 0.0), dx_def(static_cast<size_t>(nx), 0.0), dw_def(wc.size(), 0.0);
    conv_terms(c, [&](int64_t yi, int64_t xi, int64_t wi) {
      y_def[static_cast<size_t>(yi)] += static_cast<double>(wc[static_cast<size_t>(wi)]) * x[static_cast<size_t>(xi)];
      dx_def[static_cast<size_t>(xi)] += static_cast<double>(wc[static_cast<size_t>(wi)]) * dy[static_cast<size_t>(yi)];
      dw_def[static_cast<size_t>(wi)] += static_cast<double>(x[static_cast<size_t>(xi)]) * dy[static_cast<size_t>(yi)];
    });

    registry::ExecContext ctx;
    ctx.num_threads = 2;
    std::vector<float> xin = x, dyin = dy;  // inputs (views take non-const pointers)
    // conv fwd: y from x.
    {
      const Problem p = conv_as_transpose(c, ConvDirection::fwd);
      ASSERT_TRUE(validate(p).ok()) << validate(p).message;
      ASSERT_EQ(p.dir, Direction::bwd_data);
      std::vector<float> y(static_cast<size_t>(ny), -99.0f);
      const Args a = conv_args(ConvDirection::fwd, dense_nhwc(xin.data(), c.h_in, c.w_in, c.c_in),
                               dense_nhwc(y.data(), c.h_out, c.w_out, c.c_out), wt.data(), nullptr);
      ASSERT_TRUE(ref().run(p, a, nullptr, ctx).ok());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(static_cast<double>(y[i]), y_def[i]) << p.describe() << " y " << i;
    }
    // conv bwd_data: dx from dy.
    {
      const Problem p = conv_as_transpose(c, ConvDirection::bwd_data);
      ASSERT_TRUE(validate(p).ok());
      ASSERT_EQ(p.dir, Direction::fwd);
      std::vector<float> dx(static_cast<size_t>(nx), -99.0f);
      const Args a = conv_args(ConvDirection::bwd_data, dense_nhwc(dx.data(), c.h_in, c.w_in, c.c_in),
                               dense_nhwc(dyin.data(), c.h_out, c.w_out, c.c_out), wt.data(), nullptr);
      ASSERT_TRUE(ref().run(p, a, nullptr, ctx).ok());
      for (size_t i = 0; i < dx.size(); ++i) ASSERT_EQ(static_cast<double>(dx[i]), dx_def[i]) << p.describe() << " dx " << i;
    }
    // conv bwd_weights: dWc from x and dy, through the transpose layout (and accumulation there).
    {
      const bool acc = it % 2 == 1;
      const Problem p = conv_as_transpose(c, ConvDirection::bwd_weights, {.accumulate = acc});
      ASSERT_TRUE(validate(p).ok());
      ASSERT_EQ(p.dir, Direction::bwd_weights);
      const std::vector<float> prev_c = ints(r, conv_wei_elements(c));
      std::vector<float> dwt(wc.size(), -99.0f), dwc(wc.size());
      if (acc) conv_weights_to_transpose(c, prev_c.data(), dwt.data());
      const Args a = conv_args(ConvDirection::bwd_weights, dense_nhwc(xin.data(), c.h_in, c.w_in, c.c_in),
                               dense_nhwc(dyin.data(), c.h_out, c.w_out, c.c_out), nullptr, dwt.data());
      ASSERT_TRUE(ref().run(p, a, nullptr, ctx).ok());
      transpose_weights_to_conv(c, dwt.data(), dwc.data());
      for (size_t i = 0; i < dwc.size(); ++i)
        ASSERT_EQ(static_cast<double>(dwc[i]), dw_def[i] + (acc ? prev_c[i] : 0.0f)) << p.describe() << " dW " << i;
    }
  }
}

TEST(DirectionMapping, WeightTransformFormulaAndRoundTrip) {
  std::mt19937_64 r(6);
  for (int it = 0; it < 50; ++it) {
    const ConvGeometry c = random_conv(r);
    const int64_t count = conv_wei_elements(c);
    std::vector<float> wc(static_cast<size_t>(count)), wt(wc.size(), -1.0f), back(wc.size(), -1.0f);
    for (int64_t i = 0; i < count; ++i) wc[static_cast<size_t>(i)] = static_cast<float>(i);  // distinct values
    conv_weights_to_transpose(c, wc.data(), wt.data());
    const int64_t Ic = c.c_in / c.groups, Oc = c.c_out / c.groups;
    // W_T[g·Ic + c'][q][p][o'−g·Oc] = Wc[o'][kh−1−q][kw−1−p][c'], W_T of shape [Nin_c][kh][kw][Oc].
    for (int64_t o = 0; o < c.c_out; ++o)
      for (int64_t q = 0; q < c.kh; ++q)
        for (int64_t p = 0; p < c.kw; ++p)
          for (int64_t ci = 0; ci < Ic; ++ci) {
            const int64_t g = o / Oc;
            const float want = wc[static_cast<size_t>(((o * c.kh + (c.kh - 1 - q)) * c.kw + (c.kw - 1 - p)) * Ic + ci)];
            const float got = wt[static_cast<size_t>((((g * Ic + ci) * c.kh + q) * c.kw + p) * Oc + (o - g * Oc))];
            ASSERT_EQ(got, want);
          }
    transpose_weights_to_conv(c, wt.data(), back.data());
    EXPECT_EQ(back, wc);
    // The transposed geometry's weight count is the same tensor seen from the other side.
    EXPECT_EQ(wei_elements(conv_to_transpose_geometry(c)), count);
  }
}

TEST(DirectionMapping, BiasGradientIsSumOfDy) {
  std::mt19937_64 r(7);
  for (int it = 0; it < 30; ++it) {
    const ConvGeometry c = random_conv(r);
    const int64_t ny = c.n * c.h_out * c.w_out * c.c_out;
    // A float16 dy inside a buffer with two extra channels per pixel (a window with a channel offset).
    const int64_t C = c.c_out + 2;
    std::vector<uint16_t> buf(static_cast<size_t>(c.n * c.h_out * c.w_out * C), f32_to_f16(1000.0f));
    std::vector<double> want(static_cast<size_t>(c.c_out), 0.0);
    std::vector<float> dy = ints(r, ny);
    for (int64_t e = 0; e < ny; ++e) {
      const int64_t o = e % c.c_out, pix = e / c.c_out;
      buf[static_cast<size_t>(pix * C + 1 + o)] = f32_to_f16(dy[static_cast<size_t>(e)]);
      want[static_cast<size_t>(o)] += dy[static_cast<size_t>(e)];
    }
    TensorView v{buf.data() + 1, c.h_out * c.w_out * C, c.w_out * C, C};
    std::vector<float> db(static_cast<size_t>(c.c_out), 5.0f);
    conv_bias_gradient(c, v, DataType::float16, db.data());
    for (int64_t o = 0; o < c.c_out; ++o) EXPECT_EQ(db[static_cast<size_t>(o)], want[static_cast<size_t>(o)]);
    conv_bias_gradient(c, v, DataType::float16, db.data(), /*accumulate=*/true);
    for (int64_t o = 0; o < c.c_out; ++o) EXPECT_EQ(db[static_cast<size_t>(o)], 2 * want[static_cast<size_t>(o)]);
  }
}

TEST(DirectionMapping, GeometryRolesAndOptions) {
  ConvGeometry c;
  c.n = 3; c.c_in = 4; c.c_out = 6; c.groups = 2; c.h_in = 9; c.w_in = 7; c.kh = 3; c.kw = 2;
  c.stride_h = 2; c.dil_w = 2; c.pad_h = 1; c.pad_w = -1;
  c.h_out = ConvGeometry::out_size(9, 3, 2, 1, 1);  // floor((9 + 2 − 2 − 1)/2) + 1 = 5
  c.w_out = ConvGeometry::out_size(7, 2, 1, 2, -1);  // floor((7 − 2 − 2 − 1)/1) + 1 = 3
  EXPECT_EQ(c.h_out, 5);
  EXPECT_EQ(c.w_out, 3);
  const Problem p = conv_as_transpose(c, ConvDirection::bwd_data, {.act_type = DataType::float16, .precision = Precision::bf16});
  EXPECT_EQ(p.g.c_in, 6);
  EXPECT_EQ(p.g.c_out, 4);
  EXPECT_EQ(p.g.h_in, 5);
  EXPECT_EQ(p.g.h_out, 9);
  EXPECT_EQ(p.g.w_in, 3);
  EXPECT_EQ(p.g.w_out, 7);
  EXPECT_EQ(p.g.pad_w, -1);
  EXPECT_EQ(p.g.dil_w, 2);
  EXPECT_EQ(p.act_type, DataType::float16);
  EXPECT_EQ(p.precision, Precision::bf16);
  EXPECT_FALSE(p.with_bias);
  EXPECT_FALSE(p.accumulate);  // only bwd_weights carries accumulate
  EXPECT_EQ(conv_as_transpose(c, ConvDirection::fwd, {.accumulate = true}).accumulate, false);
  EXPECT_STREQ(to_string(ConvDirection::bwd_weights), "conv_bwd_weights");
}

}  // namespace
}  // namespace tconv::core
