// The functional API's own contracts (include/tconv/functional.hpp), without Python: the spec's worked
// 1-D vector, layout and weight-layout independence, the explicit-output-size extension, float16
// activations, and every validation error with its code and the values in its message.
// Data are small integers so every result is exact and comparisons use zero tolerance.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "tconv/error.hpp"
#include "tconv/functional.hpp"

namespace tconv {
namespace {

std::vector<float> ints(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-3, 3);
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(d(rng));
  return v;
}

int64_t count(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

// NCHW <-> NHWC for float arrays (written here, independently of the library).
std::vector<float> nchw_to_nhwc(const std::vector<float>& a, int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<float> r(a.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) r[((i * h + y) * w + x) * c + ch] = a[((i * c + ch) * h + y) * w + x];
  return r;
}

// Spec a.13, written from the formula: Wpt[g·Ig + c][o − g·Og][kH−1−q][kW−1−p] = W[o][q][p][c].
std::vector<float> torch_to_mps(const std::vector<float>& wpt, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
                                int64_t groups) {
  const int64_t ig = cin / groups, og = cout / groups;
  std::vector<float> w(wpt.size());
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t q = 0; q < kh; ++q)
      for (int64_t p = 0; p < kw; ++p)
        for (int64_t c = 0; c < ig; ++c) {
          const int64_t g = o / og;
          w[((o * kh + q) * kw + p) * ig + c] = wpt[(((g * ig + c) * og + (o - g * og)) * kh + (kh - 1 - q)) * kw + (kw - 1 - p)];
        }
  return w;
}

ConvTranspose2dOptions ref_options() {
  ConvTranspose2dOptions o;
  o.algorithm = "cpu_ref_f64";
  return o;
}

TEST(Functional, SpecWorkedVector1D) {
  // Spec a.5.4: Win = 2, s = 2, kW = 3, T = 0 → PyTorch padding 1 (a.13), Wout = 3:
  // Y0 = W1·x0, Y1 = W0·x0 + W2·x1, Y2 = W1·x1 (MPS weights, unrotated).
  const std::vector<float> x = {2, 3}, w = {5, 7, 11};
  std::vector<float> y(3, -1.0f);
  ConvTranspose2dOptions o = ref_options();
  o.stride = {1, 2};
  o.padding = {0, 1};
  o.weight_layout = WeightLayout::mps;
  EXPECT_EQ(conv_transpose2d_output_shape({1, 1, 1, 2}, {1, 1, 3, 1}, o), (std::vector<int64_t>{1, 1, 1, 3}));
  conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, {1, 1, 1, 2}},
                   {w.data(), DataType::float32, {1, 1, 3, 1}}, {}, {y.data(), DataType::float32, {1, 1, 1, 3}}, o);
  EXPECT_EQ(y, (std::vector<float>{7 * 2, 5 * 2 + 11 * 3, 7 * 3}));
}

struct Case {
  int64_t n = 2, cin = 4, cout = 6, groups = 2, h = 3, w = 4, kh = 3, kw = 2;
  Hw stride{2, 3}, padding{1, 0}, output_padding{1, 2}, dilation{1, 2};
};

struct Results {
  std::vector<float> y, dx, dw, db;
};

// Runs forward and backward with the given layouts; inputs are given in NCHW / PyTorch layouts and
// converted here, results are returned in the layouts asked for.
Results run_case(const Case& c, ActivationLayout l, WeightLayout wl, const std::vector<float>& x_nchw,
                 const std::vector<float>& wpt, const std::vector<float>& b, const std::vector<float>& dy_nchw,
                 std::vector<int64_t>* y_shape_out) {
  ConvTranspose2dOptions o = ref_options();
  o.stride = c.stride; o.padding = c.padding; o.output_padding = c.output_padding; o.dilation = c.dilation;
  o.groups = c.groups; o.layout = l; o.weight_layout = wl;
  const std::vector<int64_t> xs = l == ActivationLayout::nchw ? std::vector<int64_t>{c.n, c.cin, c.h, c.w}
                                                              : std::vector<int64_t>{c.n, c.h, c.w, c.cin};
  const std::vector<int64_t> ws = wl == WeightLayout::pytorch
                                      ? std::vector<int64_t>{c.cin, c.cout / c.groups, c.kh, c.kw}
                                      : std::vector<int64_t>{c.cout, c.kh, c.kw, c.cin / c.groups};
  const std::vector<int64_t> ys = conv_transpose2d_output_shape(xs, ws, o);
  *y_shape_out = ys;
  const int64_t ho = l == ActivationLayout::nchw ? ys[2] : ys[1], wo = l == ActivationLayout::nchw ? ys[3] : ys[2];
  const std::vector<float> x = l == ActivationLayout::nchw ? x_nchw : nchw_to_nhwc(x_nchw, c.n, c.cin, c.h, c.w);
  const std::vector<float> dy = l == ActivationLayout::nchw ? dy_nchw : nchw_to_nhwc(dy_nchw, c.n, c.cout, ho, wo);
  const std::vector<float> w = wl == WeightLayout::pytorch ? wpt : torch_to_mps(wpt, c.cin, c.cout, c.kh, c.kw, c.groups);
  Results r;
  r.y.assign(static_cast<size_t>(count(ys)), -7.0f);
  r.dx.assign(x.size(), -7.0f);
  r.dw.assign(w.size(), -7.0f);
  r.db.assign(static_cast<size_t>(c.cout), -7.0f);
  const Device dev = Device::cpu(2);
  conv_transpose2d(dev, {x.data(), DataType::float32, xs}, {w.data(), DataType::float32, ws},
                   {b.data(), DataType::float32, {c.cout}}, {r.y.data(), DataType::float32, ys}, o);
  ConvTranspose2dGrads g{{r.dx.data(), DataType::float32, xs}, {r.dw.data(), DataType::float32, ws},
                         {r.db.data(), DataType::float32, {c.cout}}};
  const auto names = conv_transpose2d_backward(dev, {x.data(), DataType::float32, xs}, {w.data(), DataType::float32, ws},
                                               {dy.data(), DataType::float32, ys}, g, o);
  EXPECT_EQ(names.data_algorithm, "cpu_ref_f64");
  EXPECT_EQ(names.weights_algorithm, "cpu_ref_f64");
  return r;
}

TEST(Functional, LayoutsAndWeightLayoutsAgree) {
  const Case c;
  ConvTranspose2dOptions o;
  o.stride = c.stride; o.padding = c.padding; o.output_padding = c.output_padding; o.dilation = c.dilation;
  o.groups = c.groups;
  const auto ys = conv_transpose2d_output_shape({c.n, c.cin, c.h, c.w}, {c.cin, c.cout / c.groups, c.kh, c.kw}, o);
  // PyTorch's size formula: (in − 1)·s − 2·p + d·(k − 1) + op + 1.
  ASSERT_EQ(ys, (std::vector<int64_t>{2, 6, (3 - 1) * 2 - 2 + 2 + 1 + 1, (4 - 1) * 3 - 0 + 2 + 2 + 1}));
  const auto x = ints(static_cast<size_t>(c.n * c.cin * c.h * c.w), 1);
  const auto wpt = ints(static_cast<size_t>(c.cin * (c.cout / c.groups) * c.kh * c.kw), 2);
  const auto b = ints(static_cast<size_t>(c.cout), 3);
  const auto dy = ints(static_cast<size_t>(count(ys)), 4);
  std::vector<int64_t> s0, s1, s2;
  const Results base = run_case(c, ActivationLayout::nchw, WeightLayout::pytorch, x, wpt, b, dy, &s0);
  const Results nhwc = run_case(c, ActivationLayout::nhwc, WeightLayout::pytorch, x, wpt, b, dy, &s1);
  const Results mps = run_case(c, ActivationLayout::nchw, WeightLayout::mps, x, wpt, b, dy, &s2);
  EXPECT_EQ(s1, (std::vector<int64_t>{ys[0], ys[2], ys[3], ys[1]}));
  EXPECT_EQ(nchw_to_nhwc(base.y, ys[0], ys[1], ys[2], ys[3]), nhwc.y);
  EXPECT_EQ(nchw_to_nhwc(base.dx, c.n, c.cin, c.h, c.w), nhwc.dx);
  EXPECT_EQ(base.dw, nhwc.dw);
  EXPECT_EQ(base.db, nhwc.db);
  EXPECT_EQ(base.y, mps.y);
  EXPECT_EQ(base.dx, mps.dx);
  EXPECT_EQ(torch_to_mps(base.dw, c.cin, c.cout, c.kh, c.kw, c.groups), mps.dw);
  EXPECT_EQ(base.db, mps.db);
  // db is the sum of dy over batch and pixels, computed here directly.
  for (int64_t o2 = 0; o2 < c.cout; ++o2) {
    float s = 0;
    for (int64_t n = 0; n < ys[0]; ++n)
      for (int64_t i = 0; i < ys[2] * ys[3]; ++i) s += dy[static_cast<size_t>((n * ys[1] + o2) * ys[2] * ys[3] + i)];
    EXPECT_EQ(base.db[static_cast<size_t>(o2)], s);
  }
}

TEST(Functional, ExplicitOutputSizeWithNegativePaddingFramesTheResult) {
  // padding −1 and an output 2 pixels larger on each axis: the PyTorch result shifted by one, in a zero frame.
  const std::vector<int64_t> xs{1, 2, 3, 3}, ws{2, 1, 2, 2};
  const auto x = ints(18, 5), w = ints(8, 6);
  ConvTranspose2dOptions o = ref_options();
  o.stride = {2, 2};
  const auto ys = conv_transpose2d_output_shape(xs, ws, o);  // 6x6
  std::vector<float> y(static_cast<size_t>(count(ys)));
  conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, xs}, {w.data(), DataType::float32, ws}, {},
                   {y.data(), DataType::float32, ys}, o);
  o.padding = {-1, -1};
  o.output_size = {ys[2] + 2, ys[3] + 2};
  const std::vector<int64_t> ys2{1, 1, ys[2] + 2, ys[3] + 2};
  EXPECT_EQ(conv_transpose2d_output_shape(xs, ws, o), ys2);
  std::vector<float> y2(static_cast<size_t>(count(ys2)), -7.0f);
  conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, xs}, {w.data(), DataType::float32, ws}, {},
                   {y2.data(), DataType::float32, ys2}, o);
  for (int64_t i = 0; i < ys2[2]; ++i)
    for (int64_t j = 0; j < ys2[3]; ++j) {
      const bool inside = i >= 1 && j >= 1 && i <= ys[2] && j <= ys[3];
      const float want = inside ? y[static_cast<size_t>((i - 1) * ys[3] + (j - 1))] : 0.0f;
      EXPECT_EQ(y2[static_cast<size_t>(i * ys2[3] + j)], want) << "at " << i << "," << j;
    }
}

TEST(Functional, Float16ActivationsRoundTheStoredResult) {
  const std::vector<int64_t> xs{1, 1, 2, 2}, ws{1, 1, 2, 2};
  const std::vector<float> xf = {1000, 3, -2, 1}, w = {1, 1, 1, 1};
  std::vector<uint16_t> xh(4);
  for (size_t i = 0; i < 4; ++i) xh[i] = core::f32_to_f16(xf[i]);
  ConvTranspose2dOptions o = ref_options();
  const auto ys = conv_transpose2d_output_shape(xs, ws, o);  // 3x3
  std::vector<uint16_t> yh(9);
  conv_transpose2d(Device::cpu(1), {xh.data(), DataType::float16, xs}, {w.data(), DataType::float32, ws}, {},
                   {yh.data(), DataType::float16, ys}, o);
  // y[0][1] = x00 + x01 = 1003: exactly representable in binary16 (spacing 0.5 at 1003).
  EXPECT_EQ(core::f16_to_f32(yh[1]), 1003.0f);
  // y[1][1] = 1000 + 3 − 2 + 1 = 1002.
  EXPECT_EQ(core::f16_to_f32(yh[4]), 1002.0f);
  std::vector<float> yf(9);
  EXPECT_THROW(conv_transpose2d(Device::cpu(1), {xh.data(), DataType::float16, xs}, {w.data(), DataType::float32, ws},
                                {}, {yf.data(), DataType::float32, ys}, o),
               Error);
}

// Expects Error(code) whose message contains every fragment.
template <class F>
void expect_error(F&& f, ErrorCode code, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& frag : fragments) EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
  }
}

TEST(Functional, ValidationNamesTheValues) {
  std::vector<float> x(64), w(64), y(4096), b(8);
  auto fwd = [&](std::vector<int64_t> xs, std::vector<int64_t> ws, ConvTranspose2dOptions o) {
    return [=, &x, &w, &y] {
      const auto ys = conv_transpose2d_output_shape(xs, ws, o);
      conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, xs}, {w.data(), DataType::float32, ws}, {},
                       {y.data(), DataType::float32, ys}, o);
    };
  };
  ConvTranspose2dOptions o;
  ConvTranspose2dOptions g2 = o;
  g2.groups = 2;
  expect_error(fwd({1, 3, 2, 2}, {3, 1, 1, 1}, g2), ErrorCode::invalid_argument, {"input channels (3)", "groups (2)"});
  ConvTranspose2dOptions op = o;
  op.stride = {2, 2};
  op.dilation = {3, 1};
  op.output_padding = {2, 2};  // height: 2 < max(2, 3) fine; width: 2 >= max(2, 1)
  expect_error(fwd({1, 1, 2, 2}, {1, 1, 1, 1}, op), ErrorCode::invalid_argument,
               {"output_padding width = 2", "max(stride 2, dilation 1)"});
  expect_error(fwd({1, 1, 2}, {1, 1, 1, 1}, o), ErrorCode::invalid_argument, {"4-D", "[1, 1, 2]"});
  expect_error(fwd({1, 2, 2, 2}, {3, 1, 1, 1}, o), ErrorCode::invalid_argument, {"3 input channels but x has 2"});
  expect_error(fwd({1, 1, 0, 2}, {1, 1, 1, 1}, o), ErrorCode::invalid_argument, {"[1, 1, 0, 2]"});
  ConvTranspose2dOptions bad_size = o;
  bad_size.output_size = {4, 4};
  bad_size.output_padding = {1, 0};
  expect_error(fwd({1, 1, 2, 2}, {1, 1, 1, 1}, bad_size), ErrorCode::invalid_argument, {"output_padding (1,0)"});
  ConvTranspose2dOptions unknown = o;
  unknown.algorithm = "cpu_no_such_algorithm";
  expect_error(fwd({1, 1, 2, 2}, {1, 1, 1, 1}, unknown), ErrorCode::invalid_argument, {"cpu_no_such_algorithm"});
  // Output shape that does not match.
  expect_error([&] {
    conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, {1, 1, 2, 2}},
                     {w.data(), DataType::float32, {1, 1, 1, 1}}, {}, {y.data(), DataType::float32, {1, 1, 3, 3}}, o);
  }, ErrorCode::invalid_argument, {"y has shape [1, 1, 3, 3], expected [1, 1, 2, 2]"});
  // Bias of the wrong length; uint8 weights.
  expect_error([&] {
    conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, {1, 1, 2, 2}},
                     {w.data(), DataType::float32, {1, 2, 1, 1}}, {b.data(), DataType::float32, {3}},
                     {y.data(), DataType::float32, {1, 2, 2, 2}}, o);
  }, ErrorCode::invalid_argument, {"bias has shape [3], expected [2]"});
  expect_error([&] {
    conv_transpose2d(Device::cpu(1), {x.data(), DataType::float32, {1, 1, 2, 2}},
                     {w.data(), DataType::uint8, {1, 1, 1, 1}}, {}, {y.data(), DataType::float32, {1, 1, 2, 2}}, o);
  }, ErrorCode::invalid_argument, {"weights has element type uint8"});
  // Backward: dy shape, nothing asked, mismatched types.
  std::vector<float> dx(64), dy(64);
  expect_error([&] {
    conv_transpose2d_backward(Device::cpu(1), {x.data(), DataType::float32, {1, 1, 2, 2}},
                              {w.data(), DataType::float32, {1, 1, 1, 1}}, {dy.data(), DataType::float32, {1, 1, 2, 3}},
                              {{dx.data(), DataType::float32, {1, 1, 2, 2}}, {}, {}}, o);
  }, ErrorCode::invalid_argument, {"dy has shape [1, 1, 2, 3], expected [1, 1, 2, 2]"});
  expect_error([&] {
    conv_transpose2d_backward(Device::cpu(1), {x.data(), DataType::float32, {1, 1, 2, 2}},
                              {w.data(), DataType::float32, {1, 1, 1, 1}}, {dy.data(), DataType::float32, {1, 1, 2, 2}},
                              {}, o);
  }, ErrorCode::invalid_argument, {"no gradient asked for"});
  expect_error([&] {
    conv_transpose2d_backward(Device::cpu(1), {x.data(), DataType::float16, {1, 1, 2, 2}},
                              {w.data(), DataType::float32, {1, 1, 1, 1}}, {dy.data(), DataType::float32, {1, 1, 2, 2}},
                              {{}, {dx.data(), DataType::float32, {1, 1, 1, 1}}, {}}, o);
  }, ErrorCode::invalid_argument, {"x has element type float16 but dy has float32"});
}

}  // namespace
}  // namespace tconv
