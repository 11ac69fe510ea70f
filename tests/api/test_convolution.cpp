// Convolution and ConvolutionGradient (the plain convolution for the auto-encoder pairing, a.5.5 B):
// forward and gradients against the MPSCNNConvolution definition written out here, and the transpose
// sized by the convolution's state being the exact adjoint of the convolution (c.21 weight mapping).
// Also: export/reload of weights, coding (with key prefixes, several kernels in one file) and equality.
#include <gtest/gtest.h>

#include "api_test_util.hpp"
#include "io/coder.hpp"
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

// export → reload moves one kernel's weights into another: the receiver then computes exactly what the
// sender does; reload_weights_and_biases_from_data_source brings its own weights back.
TEST(Convolution, ExportAndReloadWeightsAndBiases) {
  Device dev = Device::cpu(1);
  const ConvGeo g{4, 3, 1, 3, 2, 1};
  const ConvolutionDescriptor d = desc_of(g);
  const auto wa = ints(static_cast<size_t>(3 * 3 * 3 * 4), 11), ba = ints(3, 12);
  const auto wb = ints(wa.size(), 13), bb = ints(3, 14);
  Convolution a(dev, source(d, wa, ba)), b(dev, source(d, wb, bb));
  ASSERT_FALSE(a.equals(b));
  Image x = make_image(dev, ints(2 * 7 * 6 * 4, 15), 2, 7, 6, 4);

  CommandBuffer cb(dev);
  ConvolutionWeightsAndBiasesState st = a.export_weights_and_biases(cb, false);
  b.reload_weights_and_biases(cb, st);
  Image ya = a.encode(cb, x);
  Image yb = b.encode(cb, x);  // encoded after the reload: runs with a's weights
  run(cb);
  expect_equal(buffer_floats(st.weights()), std::vector<double>(wa.begin(), wa.end()), "exported weights");
  expect_equal(buffer_floats(st.biases()), std::vector<double>(ba.begin(), ba.end()), "exported biases");
  EXPECT_EQ(b.current_weights(), a.current_weights());
  EXPECT_EQ(b.current_biases(), a.current_biases());
  expect_equal(read_all(yb), read_all(ya), "output after reload");

  b.reload_weights_and_biases_from_data_source();
  const std::vector<float> own(wb.begin(), wb.end());
  EXPECT_EQ(b.current_weights(), own);

  // A state for a smaller kernel cannot fill this one; a state on another device is refused too.
  ConvolutionWeightsAndBiasesState small(dev, ConvolutionDescriptor(1, 1, 4, 3));
  CommandBuffer cb2(dev);
  expect_error([&] { b.reload_weights_and_biases(cb2, small); }, ErrorCode::invalid_argument, "the kernel needs 432");
  expect_error([&] { b.reload_weights_and_biases(cb2, ConvolutionWeightsAndBiasesState()); },
               ErrorCode::invalid_argument, "null weights-and-biases state");
  expect_error([&] { Convolution().reload_weights_and_biases_from_data_source(); }, ErrorCode::invalid_argument,
               "null Convolution");
}

TEST(Convolution, CoderRoundTripDescriptionAndEquality) {
  Device dev = Device::cpu(1);
  const ConvGeo g{4, 6, 2, 3, 1, 2};
  Convolution c(dev, source(desc_of(g), ints(6 * 3 * 3 * 2, 21), ints(6, 22)));
  c.properties().offset = Offset{2, 1, 0};
  c.properties().precision = Precision::bf16;
  c.properties().source_feature_channel_max_count = 9;
  io::Encoder e;
  c.encode_to(e);
  const auto bytes = e.to_bytes();
  Convolution back = Convolution::decode(io::Decoder::from_bytes(bytes.data(), bytes.size()), dev);
  EXPECT_TRUE(back.equals(c));
  EXPECT_TRUE(c.equals(back));
  EXPECT_EQ(back.properties().offset.x, 2);
  EXPECT_EQ(back.current_biases(), c.current_biases());
  EXPECT_EQ(back.description(), c.description());
  EXPECT_NE(c.description().find("Convolution"), std::string::npos) << c.description();
  EXPECT_NE(c.description().find("bf16"), std::string::npos) << c.description();
  // Different properties or weights: not equal.
  back.properties().precision = Precision::fp32;
  EXPECT_FALSE(back.equals(c));
  Convolution other(dev, source(desc_of(g), ints(6 * 3 * 3 * 2, 23), ints(6, 22)));
  EXPECT_FALSE(other.equals(c));
  EXPECT_TRUE(Convolution().equals(Convolution()));
  EXPECT_FALSE(Convolution().equals(c));
  // A transpose's file is not a convolution, nor the other way round.
  ConvolutionTranspose t(dev, source(desc_of(g), ints(6 * 3 * 3 * 2, 24)));
  io::Encoder et;
  t.encode_to(et);
  const auto tb = et.to_bytes();
  expect_error([&] { Convolution::decode(io::Decoder::from_bytes(tb.data(), tb.size()), dev); }, ErrorCode::format_error,
               "expected a 'Convolution'");
  expect_error([&] { ConvolutionTranspose::decode(io::Decoder::from_bytes(bytes.data(), bytes.size()), dev); },
               ErrorCode::format_error, "expected a 'ConvolutionTranspose'");
}

// Key prefixes let an encoder, a decoder and the decoder's gradient kernel share one file.
TEST(Convolution, SeveralKernelsShareOneFileThroughKeyPrefixes) {
  Device dev = Device::cpu(1);
  const ConvGeo g{2, 4, 1, 3, 2, 1};
  Convolution enc(dev, source(desc_of(g), ints(4 * 3 * 3 * 2, 31), ints(4, 32)));
  ConvolutionTranspose dec(dev, source(desc_of(g), ints(4 * 3 * 3 * 2, 33), ints(4, 34)));
  ConvolutionTranspose dec2(dev, source(desc_of(g), ints(4 * 3 * 3 * 2, 35)));
  ConvolutionTransposeGradient dec_grad(dev, dec.data_source());
  dec.set_label("dec");
  dec2.properties().offset = Offset{1, 0, 0};
  io::Encoder e;
  enc.encode_to(e, "enc.");
  dec.encode_to(e, "dec.");
  dec2.encode_to(e, "dec2.");
  dec_grad.encode_to(e, "dec_grad.");
  const auto bytes = e.to_bytes();
  const io::Decoder d = io::Decoder::from_bytes(bytes.data(), bytes.size());
  EXPECT_TRUE(d.has("enc.weights"));
  EXPECT_TRUE(d.has("dec.weights"));
  EXPECT_TRUE(d.has("dec2.weights"));
  EXPECT_FALSE(d.has("weights"));
  EXPECT_TRUE(Convolution::decode(d, dev, "enc.").equals(enc));
  EXPECT_TRUE(ConvolutionTranspose::decode(d, dev, "dec.").equals(dec));
  EXPECT_TRUE(ConvolutionTranspose::decode(d, dev, "dec2.").equals(dec2));
  EXPECT_FALSE(ConvolutionTranspose::decode(d, dev, "dec2.").equals(dec));
  const ConvolutionTransposeGradient gk = ConvolutionTransposeGradient::decode(d, dev, "dec_grad.");
  EXPECT_EQ(gk.description(), dec_grad.description());
  expect_error([&] { ConvolutionTranspose::decode(d, dev, "enc."); }, ErrorCode::format_error,
               "expected a 'ConvolutionTranspose'");
  // Without the prefix nothing matches: a missing key, not a silent default.
  EXPECT_THROW(ConvolutionTranspose::decode(d, dev), Error);
}
