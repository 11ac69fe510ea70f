// Convolution and ConvolutionGradient (the plain convolution for the auto-encoder pairing, a.5.5 B):
// forward and gradients against the MPSCNNConvolution definition written out here, and the transpose
// sized by the convolution's state being the exact adjoint of the convolution (c.21 weight mapping).
#include <gtest/gtest.h>

#include "api_test_util.hpp"
#include "mps_reference.hpp"

using namespace tconv;
using namespace tconv::test;

namespace {

struct ConvGeo {
  int64_t nin, nout, groups, k, s, r;
};

// Y[n][y][x][o] = b[o] + Σ W[o][q][p][c]·X[n][oy + s·y − h + r·q][ox + s·x − h + r·p][g·Ig + c].
std::vector<double> conv_ref(const ConvGeo& g, const std::vector<double>& x, int64_t N, int64_t H, int64_t W,
                             const std::vector<double>& w, const std::vector<double>& b, int64_t Ho, int64_t Wo,
                             int64_t ox, int64_t oy) {
  const int64_t Ig = g.nin / g.groups, Og = g.nout / g.groups, h = hw(g.k, g.r);
  std::vector<double> y(static_cast<size_t>(N * Ho * Wo * g.nout));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t yy = 0; yy < Ho; ++yy)
      for (int64_t xx = 0; xx < Wo; ++xx)
        for (int64_t o = 0; o < g.nout; ++o) {
          double acc = b.empty() ? 0.0 : b[o];
          for (int64_t q = 0; q < g.k; ++q)
            for (int64_t p = 0; p < g.k; ++p)
              for (int64_t c = 0; c < Ig; ++c) {
                const int64_t iy = oy + g.s * yy - h + g.r * q, ix = ox + g.s * xx - h + g.r * p;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += w[((o * g.k + q) * g.k + p) * Ig + c] * x[((n * H + iy) * W + ix) * g.nin + (o / Og) * Ig + c];
              }
          y[((n * Ho + yy) * Wo + xx) * g.nout + o] = acc;
        }
  return y;
}

ConvolutionDescriptor desc_of(const ConvGeo& g) {
  ConvolutionDescriptor d(g.k, g.k, g.nin, g.nout);
  d.stride_x = d.stride_y = g.s;
  d.dilation_x = d.dilation_y = g.r;
  d.groups = g.groups;
  return d;
}

}  // namespace

TEST(Convolution, ForwardAndGradientMatchTheDefinition) {
  Device dev = Device::cpu(2);
  for (ConvGeo g : {ConvGeo{3, 2, 1, 3, 2, 1}, ConvGeo{4, 6, 2, 4, 1, 1}, ConvGeo{2, 2, 1, 3, 1, 2}})
    for (uint32_t pol : {padding::size_same, padding::size_valid_only, padding::size_full}) {
      auto w = ints(static_cast<size_t>(g.nout * g.k * g.k * (g.nin / g.groups)), 3);
      auto b = ints(static_cast<size_t>(g.nout), 4);
      auto ds = source(desc_of(g), w, b);
      Convolution conv(dev, ds);
      conv.properties().padding = pol;
      const int64_t N = 2, H = 7, W = 6;
      auto xv = ints(static_cast<size_t>(N * H * W * g.nin), 5);
      Image x = make_image(dev, xv, N, H, W, g.nin);
      CommandBuffer cb(dev);
      ConvolutionGradientState st;
      Image y = conv.encode(cb, x, st, false);
      run(cb);
      const int64_t ox = conv.properties().offset.x, oy = conv.properties().offset.y;
      expect_equal(read_all(y), conv_ref(g, xv, N, H, W, w, b, y.height(), y.width(), ox, oy), "conv forward");
      EXPECT_EQ(st.source_width(), W);
      EXPECT_EQ(st.forward().total_offset_x, ox);
      EXPECT_TRUE(st.convolution().same_object(conv));
      // Gradient by the adjoint identities: <dX, x'> = <gY, conv(x')> and dW, db by finite structure:
      // the conv is linear in W, so dW[i] = <gY, conv_i(x)> with conv_i the conv with only weight i = 1.
      ConvolutionGradient grad(dev, ds);
      auto gyv = ints(static_cast<size_t>(y.element_count()), 6);
      Image gy = make_image(dev, gyv, N, y.height(), y.width(), g.nout);
      CommandBuffer cb2(dev);
      Image dx = grad.encode(cb2, gy, x, st);
      run(cb2);
      ASSERT_EQ(dx.width(), W);
      const auto dxv = read_all(dx);
      const auto gw = buffer_floats(st.gradient_for_weights());
      const auto gb = buffer_floats(st.gradient_for_biases());
      for (size_t i = 0; i < w.size(); ++i) {
        std::vector<double> e(w.size(), 0.0);
        e[i] = 1.0;
        auto yi = conv_ref(g, xv, N, H, W, e, {}, y.height(), y.width(), ox, oy);
        double dot = 0;
        for (size_t j = 0; j < yi.size(); ++j) dot += yi[j] * gyv[j];
        ASSERT_EQ(gw[i], dot) << "dW[" << i << "]";
      }
      for (int64_t o = 0; o < g.nout; ++o) {
        double s = 0;
        for (size_t j = static_cast<size_t>(o); j < gyv.size(); j += static_cast<size_t>(g.nout)) s += gyv[j];
        ASSERT_EQ(gb[o], s);
      }
      for (int64_t n = 0; n < N; ++n)  // dX at a few pixels: dX[p] = <gY, conv(unit at p)>
        for (int64_t pix : {int64_t{0}, H * W / 2, H * W - 1})
          for (int64_t c = 0; c < g.nin; ++c) {
            std::vector<double> e(xv.size(), 0.0);
            e[static_cast<size_t>((n * H * W + pix) * g.nin + c)] = 1.0;
            auto yi = conv_ref(g, e, N, H, W, w, {}, y.height(), y.width(), ox, oy);
            double dot = 0;
            for (size_t j = 0; j < yi.size(); ++j) dot += yi[j] * gyv[j];
            ASSERT_EQ(dxv[static_cast<size_t>((n * H * W + pix) * g.nin + c)], dot);
          }
    }
}

TEST(Convolution, TransposeSizedByItsStateIsTheAdjoint) {
  Device dev = Device::cpu(1);
  for (ConvGeo g : {ConvGeo{2, 3, 1, 3, 2, 1}, ConvGeo{2, 2, 1, 4, 2, 1}, ConvGeo{4, 2, 2, 3, 3, 1}, ConvGeo{1, 1, 1, 2, 1, 3}}) {
    auto wc = ints(static_cast<size_t>(g.nout * g.k * g.k * (g.nin / g.groups)), 7);
    Convolution conv(dev, source(desc_of(g), wc));
    const int64_t H = 8, W = 7;
    auto xv = ints(static_cast<size_t>(H * W * g.nin), 8);
    Image x = make_image(dev, xv, 1, H, W, g.nin);
    CommandBuffer cb(dev);
    ConvolutionGradientState cs;
    Image yc = conv.encode(cb, x, cs, false);
    // W_T[g·Ic + c'][q][p][o'] = Wc[o'][k−1−q][k−1−p][c']  (c.21), transpose channels nout -> nin.
    const int64_t Ic = g.nin / g.groups, Oc = g.nout / g.groups;
    std::vector<double> wt(wc.size());
    for (int64_t o = 0; o < g.nout; ++o)
      for (int64_t q = 0; q < g.k; ++q)
        for (int64_t p = 0; p < g.k; ++p)
          for (int64_t c = 0; c < Ic; ++c) {
            const int64_t grp = o / Oc;
            wt[(((grp * Ic + c) * g.k + (g.k - 1 - q)) * g.k + (g.k - 1 - p)) * Oc + (o % Oc)] =
                wc[((o * g.k + q) * g.k + p) * Ic + c];
          }
    ConvolutionDescriptor td(g.k, g.k, g.nout, g.nin);
    td.stride_x = td.stride_y = g.s;
    td.dilation_x = td.dilation_y = g.r;
    td.groups = g.groups;
    ConvolutionTranspose t(dev, source(td, wt));
    auto gv = ints(static_cast<size_t>(yc.height() * yc.width() * g.nout), 9);
    Image gimg = make_image(dev, gv, 1, yc.height(), yc.width(), g.nout);
    Image tx = t.encode(cb, gimg, cs);
    run(cb);
    ASSERT_EQ(tx.width(), W);
    ASSERT_EQ(tx.height(), H);
    const auto ycv = read_all(yc), txv = read_all(tx);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < ycv.size(); ++i) lhs += ycv[i] * gv[i];
    for (size_t i = 0; i < txv.size(); ++i) rhs += txv[i] * xv[i];
    EXPECT_EQ(lhs, rhs) << "<conv(x), g> = <x, transpose(g)> for k=" << g.k << " s=" << g.s << " r=" << g.r;
  }
}

TEST(Convolution, Errors) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(3, 3, 2, 2);
  auto ds = source(d, ints(36, 1));
  Convolution conv(dev, ds);
  Image x = make_image(dev, ints(2 * 2 * 2, 1), 1, 2, 2, 2);
  conv.properties().kernel_offset_x = 1;
  CommandBuffer cb(dev);
  expect_error([&] { conv.encode(cb, x); }, ErrorCode::invalid_argument, "must be 0 on a convolution");
  conv.properties().kernel_offset_x = 0;
  ConvolutionGradient grad(dev, ds);
  ConvolutionTranspose t(dev, ds);
  auto ts = t.result_state(x, {}, Image());
  expect_error([&] { grad.encode(cb, x, x, ts); }, ErrorCode::invalid_argument, "made by a ConvolutionTranspose");
  Image y2 = t.encode(cb, x);
  expect_error([&] { t.encode(cb, x, ConvolutionGradientState(ts)); }, ErrorCode::invalid_argument,
               "made by a ConvolutionTranspose");
  run(cb);
}
