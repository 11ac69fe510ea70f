// ConvolutionTransposeGradient against the spec's formulas (a.7.3 automatic, a.7.5 manual configuration):
// worked vector, forward→gradient consistency over many geometries, gradient options (e5), batch
// accumulation (e4), clip/channel offsets, decode with lazy weights (a.10), copy, reloads, and errors.
#include <gtest/gtest.h>

#include "api_test_util.hpp"
#include "io/coder.hpp"
#include "mps_reference.hpp"

using namespace tconv;
using namespace tconv::test;

namespace {

ConvolutionDescriptor make_desc(const Geo1& g) {
  ConvolutionDescriptor d(g.kw, g.kh, g.nin, g.nout);
  d.stride_x = g.sx;
  d.stride_y = g.sy;
  d.dilation_x = g.rx;
  d.dilation_y = g.ry;
  d.groups = g.groups;
  return d;
}

struct Pair {
  Geo1 g;
  std::vector<double> w, b;
  std::shared_ptr<ArrayDataSource> ds;
  ConvolutionTranspose fwd;
  ConvolutionTransposeGradient bwd;
  Pair(const Device& dev, Geo1 geo, uint32_t seed = 1) : g(geo) {
    w = ints(static_cast<size_t>(g.nout * g.kh * g.kw * (g.nin / g.groups)), seed);
    b = ints(static_cast<size_t>(g.nout), seed + 3);
    ds = source(make_desc(g), w, b);
    fwd = ConvolutionTranspose(dev, ds);
    bwd = ConvolutionTransposeGradient(dev, ds);
  }
};

}  // namespace

TEST(ConvolutionTransposeGradient, WorkedVector) {
  Device dev = Device::cpu(1);
  Pair P(dev, Geo1{1, 1, 1, 3, 1, 2, 1, 1, 1});
  const double W0 = P.w[0], W1 = P.w[1], W2 = P.w[2];
  Image x = make_image(dev, {2, -3}, 1, 1, 2, 1);
  CommandBuffer cb(dev);
  ConvolutionTransposeGradientState st;
  Image y = P.fwd.encode(cb, x, ConvolutionGradientState(), st, false);
  ASSERT_EQ(y.width(), 3);
  Image gy = make_image(dev, {1, 2, -1}, 1, 1, 3, 1);
  Image gx = P.bwd.encode(cb, gy, x, st);
  st.synchronize(cb);
  run(cb);
  expect_equal(read_all(gx), {W1 * 1 + W0 * 2, W2 * 2 + W1 * -1}, "gX0 = W1·gY0 + W0·gY1, gX1 = W2·gY1 + W1·gY2");
  expect_equal(buffer_floats(st.gradient_for_weights()), {2 * 2, 1 * 2 + -1 * -3, 2 * -3}, "gW");
  expect_equal(buffer_floats(st.gradient_for_biases()), {1 + 2 - 1}, "gB");
  EXPECT_TRUE(st.gradients_initialised());
}

TEST(ConvolutionTransposeGradient, ForwardGradientConsistency) {
  Device dev = Device::cpu(2);
  const Geo1 geos[] = {{2, 3, 1, 3, 3, 2, 2, 1, 1}, {4, 6, 2, 4, 2, 2, 3, 1, 1}, {3, 3, 3, 2, 3, 1, 2, 2, 1},
                       {2, 2, 1, 4, 4, 2, 2, 2, 2}, {1, 2, 1, 5, 1, 3, 1, 1, 1}, {2, 4, 2, 1, 1, 2, 2, 1, 1}};
  int checked = 0;
  for (const Geo1& g : geos)
    for (uint32_t pol : {padding::size_same, padding::size_valid_only, padding::size_full}) {
      Pair P(dev, g, 5);
      P.fwd.properties().padding = pol;
      const int64_t N = 2, H = 4, W = 5;
      auto xv = ints(static_cast<size_t>(N * H * W * g.nin), 9);
      Image x = make_image(dev, xv, N, H, W, g.nin);
      CommandBuffer cb(dev);
      ConvolutionTransposeGradientState st;
      Image y;
      try {
        y = P.fwd.encode(cb, x, ConvolutionGradientState(), st, false);
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
        continue;  // policy gives an empty result for this geometry
      }
      auto gyv = ints(static_cast<size_t>(N * y.height() * y.width() * g.nout), 13);
      Image gy = make_image(dev, gyv, N, y.height(), y.width(), g.nout);
      Image gx = P.bwd.encode(cb, gy, x, st);
      run(cb);
      const int64_t Tx = st.forward().total_offset_x, Ty = st.forward().total_offset_y;
      // The automatic configuration of a.7.4 (with e3's parity of the dilated window).
      EXPECT_EQ(P.bwd.properties().primary_offset.x, par(g.kw, g.rx) - Tx);
      EXPECT_EQ(P.bwd.properties().primary_offset.y, par(g.kh, g.ry) - Ty);
      EXPECT_EQ(P.bwd.properties().kernel_offset_x, Tx - hw(g.kw, g.rx));
      EXPECT_EQ(P.bwd.properties().kernel_offset_y, Ty - hw(g.kh, g.ry));
      EXPECT_EQ(P.bwd.properties().secondary_offset.x, 0);
      ASSERT_EQ(gx.width(), W);
      ASSERT_EQ(gx.height(), H);
      ASSERT_EQ(gx.feature_channels(), g.nin);
      expect_equal(read_all(gx), grad_data(g, gyv, N, y.height(), y.width(), P.w, H, W, Tx, Ty), "gX");
      std::vector<double> gw, gb;
      grad_weights(g, gyv, N, y.height(), y.width(), xv, H, W, Tx, Ty, gw, gb);
      expect_equal(buffer_floats(st.gradient_for_weights()), gw, "gW");
      expect_equal(buffer_floats(st.gradient_for_biases()), gb, "gB");
      ++checked;
    }
  EXPECT_GE(checked, 15) << "most geometry/policy pairs give a non-empty result and must be checked";
}

TEST(ConvolutionTransposeGradient, ManualConfiguration) {
  Device dev = Device::cpu(1);
  Geo1 g{2, 2, 1, 3, 4, 2, 2, 1, 1};
  Pair P(dev, g, 3);
  const int64_t H = 3, W = 4, Hg = 5, Wg = 6;
  auto xv = ints(H * W * 2, 2), gyv = ints(Hg * Wg * 2, 4);
  Image x = make_image(dev, xv, 1, H, W, 2), gy = make_image(dev, gyv, 1, Hg, Wg, 2);
  ConvolutionTransposeGradientState st = P.fwd.result_state(x, {}, Image());
  auto& p = P.bwd.properties();
  p.primary_offset = Offset{1, -1, 0};
  p.secondary_offset = Offset{1, 0, 0};
  p.kernel_offset_x = -2;
  p.kernel_offset_y = 1;
  Image gx(dev, ImageDescriptor{W, H, 2, 1});
  CommandBuffer cb(dev);
  P.bwd.encode(cb, gy, x, st, gx);
  run(cb);
  // a.7.5 expressed through the definition: data gradient with T' = par − P, weights with T'' = K + s·S + h.
  expect_equal(read_all(gx), grad_data(g, gyv, 1, Hg, Wg, P.w, H, W, par(3, 1) - 1, par(4, 1) + 1), "manual gX");
  std::vector<double> gw, gb;
  grad_weights(g, gyv, 1, Hg, Wg, xv, H, W, -2 + 2 * 1 + hw(3, 1), 1 + 0 + hw(4, 1), gw, gb);
  expect_equal(buffer_floats(st.gradient_for_weights()), gw, "manual gW");
  // The explicit form does not configure: the properties are still the manual ones.
  EXPECT_EQ(p.primary_offset.x, 1);
  // destination_image_descriptor() configures on request.
  ImageDescriptor dd = P.bwd.destination_image_descriptor({gy, x}, {st});
  EXPECT_EQ(dd.width, W);
  EXPECT_EQ(dd.height, H);
  EXPECT_EQ(p.primary_offset.x, par(3, 1) - st.forward().total_offset_x);
  EXPECT_EQ(p.secondary_offset.x, 0);
}

TEST(ConvolutionTransposeGradient, GradientOptions) {
  Device dev = Device::cpu(1);
  Pair P(dev, Geo1{2, 2, 1, 3, 3, 2, 2, 1, 1});
  Image x = make_image(dev, ints(2 * 2 * 2, 1), 1, 2, 2, 2);
  CommandBuffer cb(dev);
  ConvolutionTransposeGradientState st;
  Image y = P.fwd.encode(cb, x, ConvolutionGradientState(), st, false);
  Image gy = make_image(dev, ints(static_cast<size_t>(y.element_count()), 2), 1, y.height(), y.width(), 2);
  EXPECT_EQ(P.bwd.gradient_option(), GradientOption::all);
  P.bwd.set_gradient_option(GradientOption::data);
  Image gx = P.bwd.encode(cb, gy, x, st);
  run(cb);
  EXPECT_FALSE(gx.empty());
  EXPECT_FALSE(st.gradients_initialised());
  EXPECT_EQ(buffer_floats(st.gradient_for_weights()), std::vector<double>(36, 0.0)) << "data only: state untouched";
  P.bwd.set_gradient_option(GradientOption::weights_and_bias);
  CommandBuffer cb2(dev);
  Image none = P.bwd.encode(cb2, gy, x, st);
  EXPECT_TRUE(none.empty()) << "weights only: the image-returning form returns an empty image (e5)";
  Image poisoned(dev, gx.descriptor());
  poisoned.fill(9.0f);
  P.bwd.encode(cb2, gy, x, st, poisoned);  // accumulates a second time into the state
  run(cb2);
  EXPECT_EQ(read_all(poisoned), std::vector<double>(8, 9.0)) << "weights only: destination untouched";
  std::vector<double> gw, gb;
  grad_weights(P.g, read_all(gy), 1, y.height(), y.width(), read_all(x), 2, 2, st.forward().total_offset_x,
               st.forward().total_offset_y, gw, gb);
  for (auto& v : gw) v *= 2;
  for (auto& v : gb) v *= 2;
  expect_equal(buffer_floats(st.gradient_for_weights()), gw, "two weight encodes add (e4)");
  expect_equal(buffer_floats(st.gradient_for_biases()), gb, "two bias encodes add (e4)");
  expect_error([&] { P.bwd.set_gradient_option(static_cast<GradientOption>(4)); }, ErrorCode::invalid_argument, "4");
}

TEST(ConvolutionTransposeGradient, BatchOfImagesSumsIntoOneState) {
  Device dev = Device::cpu(2);
  Geo1 g{2, 3, 1, 3, 3, 2, 2, 1, 1};
  Pair P(dev, g);
  auto x0 = ints(3 * 3 * 2, 1), x1 = ints(3 * 3 * 2, 2);
  ImageBatch xs = {make_image(dev, x0, 1, 3, 3, 2), make_image(dev, x1, 1, 3, 3, 2)};
  CommandBuffer cb(dev);
  ConvolutionTransposeGradientStateBatch sts;
  ImageBatch ys = P.fwd.encode_batch(cb, xs, {}, sts, false);
  const int64_t Hg = ys[0].height(), Wg = ys[0].width();
  auto g0 = ints(static_cast<size_t>(Hg * Wg * 3), 5), g1 = ints(static_cast<size_t>(Hg * Wg * 3), 6);
  ImageBatch gys = {make_image(dev, g0, 1, Hg, Wg, 3), make_image(dev, g1, 1, Hg, Wg, 3)};
  ImageBatch gxs = P.bwd.encode_batch(cb, gys, xs, sts);
  run(cb);
  // The same batch as one multi-image Image.
  std::vector<double> xcat = x0, gcat = g0;
  xcat.insert(xcat.end(), x1.begin(), x1.end());
  gcat.insert(gcat.end(), g1.begin(), g1.end());
  std::vector<double> gw, gb;
  grad_weights(g, gcat, 2, Hg, Wg, xcat, 3, 3, sts[0].forward().total_offset_x, sts[0].forward().total_offset_y, gw, gb);
  expect_equal(buffer_floats(sts[0].gradient_for_weights()), gw, "batch gW = sum over images");
  expect_equal(buffer_floats(sts[0].gradient_for_biases()), gb, "batch gB");
  ASSERT_EQ(gxs.size(), 2u);
  expect_equal(read_all(gxs[1]), grad_data(g, g1, 1, Hg, Wg, P.w, 3, 3, sts[0].forward().total_offset_x,
                                           sts[0].forward().total_offset_y), "batch gX[1]");
  ImageBatch dsts = {Image(dev, gxs[0].descriptor()), Image(dev, gxs[0].descriptor())};
  CommandBuffer cb2(dev);
  ConvolutionTransposeGradientState fresh = P.fwd.result_state(xs[0], {}, ys[0]);
  P.bwd.encode_batch(cb2, gys, xs, {fresh, fresh}, dsts);
  run(cb2);
  expect_equal(read_all(dsts[0]), read_all(gxs[0]), "explicit batch form");
  expect_equal(buffer_floats(fresh.gradient_for_weights()), gw, "explicit batch accumulates");
  expect_error([&] { P.bwd.encode_batch(cb2, gys, {xs[0]}, sts); }, ErrorCode::invalid_argument, "differ in length");
}

TEST(ConvolutionTransposeGradient, ClipRectAndChannelOffsets) {
  Device dev = Device::cpu(1);
  Geo1 g{2, 2, 1, 3, 3, 1, 1, 1, 1};
  Pair P(dev, g);
  const int64_t H = 3, W = 3;
  auto xall = ints(H * W * 4, 3), gall = ints(H * W * 3, 4);
  Image x = make_image(dev, xall, 1, H, W, 4);    // channels 2..3 are X
  Image gy = make_image(dev, gall, 1, H, W, 3);   // channels 1..2 are gY
  ConvolutionTransposeGradientState st = P.fwd.result_state(x, {}, Image());
  P.bwd.destination_image_descriptor({gy, x}, {st});  // auto-configure, then add offsets
  auto& p = P.bwd.properties();
  p.primary_source_feature_channel_offset = 1;
  p.secondary_source_feature_channel_offset = 2;
  p.destination_feature_channel_offset = 1;
  p.clip_rect = Region{1, 0, 0, 2, 2, 1};
  Image gx(dev, ImageDescriptor{3, 3, 4, 1});
  gx.fill(-5.0f);
  CommandBuffer cb(dev);
  P.bwd.encode(cb, gy, x, st, gx);
  run(cb);
  std::vector<double> xs, gs;
  for (int64_t i = 0; i < H * W; ++i) {
    xs.push_back(xall[i * 4 + 2]);
    xs.push_back(xall[i * 4 + 3]);
    gs.push_back(gall[i * 3 + 1]);
    gs.push_back(gall[i * 3 + 2]);
  }
  // Clip origin (1, 0): gX pixel (v, u) is clip-relative (v, u − 1); the primary offset is par − T = 0 here.
  const int64_t T = st.forward().total_offset_x;
  auto full = grad_data(g, gs, 1, H, W, P.w, H, W, T, T);
  auto got = read_all(gx);
  for (int64_t v = 0; v < 3; ++v)
    for (int64_t u = 0; u < 3; ++u)
      for (int64_t c = 0; c < 4; ++c) {
        const bool inside = v < 2 && u >= 1 && c >= 1 && c < 3;
        const double want = inside ? full[(v * W + (u - 1)) * 2 + (c - 1)] : -5.0;
        ASSERT_EQ(got[(v * 3 + u) * 4 + c], want) << v << "," << u << "," << c;
      }
  std::vector<double> gw, gb;
  grad_weights(g, gs, 1, H, W, xs, H, W, T, T, gw, gb);
  expect_equal(buffer_floats(st.gradient_for_weights()), gw, "gW over the whole gY (c.19)");
}

TEST(ConvolutionTransposeGradient, ConstructionAndProperties) {
  Device dev = Device::cpu(1);
  Geo1 g{4, 6, 2, 3, 5, 2, 3, 1, 2};
  Pair P(dev, g);
  EXPECT_EQ(P.bwd.source_gradient_feature_channels(), 6);
  EXPECT_EQ(P.bwd.source_image_feature_channels(), 4);
  EXPECT_EQ(P.bwd.groups(), 2);
  EXPECT_EQ(P.bwd.primary_kernel_width(), 3);
  EXPECT_EQ(P.bwd.secondary_kernel_height(), 5);
  EXPECT_EQ(P.bwd.properties().primary_stride_x, 2);
  EXPECT_EQ(P.bwd.properties().secondary_stride_y, 3);
  EXPECT_EQ(P.bwd.primary_dilation_rate_y(), 2);
  EXPECT_FALSE(P.bwd.is_backwards());
  EXPECT_TRUE(P.bwd.is_state_modified());
  EXPECT_EQ(P.bwd.data_source(), P.ds);
  EXPECT_FALSE(ConvolutionTransposeGradient());
  ConvolutionDescriptor d = make_desc(g);
  d.fused_neuron.type = NeuronType::sigmoid;
  expect_error([&] { ConvolutionTransposeGradient(dev, source(d, P.w)); }, ErrorCode::invalid_argument, "sigmoid");
  d = make_desc(g);
  d.sub_pixel_scale_factor = 2;
  expect_error([&] { ConvolutionTransposeGradient(dev, source(d, P.w)); }, ErrorCode::invalid_argument, "sub-pixel");
  ConvolutionDescriptor dw(3, 3, 4, 4);
  dw.depthwise = true;
  expect_error([&] { ConvolutionTransposeGradient(dev, source(dw, ints(36, 1))); }, ErrorCode::invalid_argument, "depthwise");
  ConvolutionDescriptor bad(3, 3, 4, 6);
  bad.groups = 4;
  expect_error([&] { bad.validate(); }, ErrorCode::invalid_argument, "groups (4) must divide");
}

TEST(ConvolutionTransposeGradient, EncodeErrors) {
  Device dev = Device::cpu(1);
  Pair P(dev, Geo1{2, 2, 1, 3, 3, 1, 1, 1, 1});
  Pair Q(dev, Geo1{2, 3, 1, 3, 3, 1, 1, 1, 1});
  Image x = make_image(dev, ints(18, 1), 1, 3, 3, 2);
  Image gy = make_image(dev, ints(18, 2), 1, 3, 3, 2);
  auto st = P.fwd.result_state(x, {}, Image());
  auto other = Q.fwd.result_state(x, {}, Image());
  CommandBuffer cb(dev);
  expect_error([&] { P.bwd.encode(cb, gy, x, ConvolutionTransposeGradientState()); }, ErrorCode::invalid_argument, "state");
  expect_error([&] { P.bwd.encode(cb, gy, x, other); }, ErrorCode::invalid_argument, "the gradient state belongs to");
  Image gx(dev, ImageDescriptor{3, 3, 2, 1});
  expect_error([&] { P.bwd.encode(cb, gy, x, st, gy); }, ErrorCode::invalid_argument, "aliases the source gradient");
  Image one(dev, ImageDescriptor{3, 3, 1, 1});
  expect_error([&] { P.bwd.encode(cb, one, x, st, gx); }, ErrorCode::invalid_argument, "source gradient image has 1");
  P.bwd.properties().secondary_edge_mode = EdgeMode::clamp;
  expect_error([&] { P.bwd.encode(cb, gy, x, st, gx); }, ErrorCode::unsupported, "secondary edge mode clamp");
  P.bwd.properties().secondary_edge_mode = EdgeMode::zero;
  Image xh = make_image(dev, ints(18, 1), 1, 3, 3, 2, DataType::float16);
  expect_error([&] { P.bwd.encode(cb, gy, xh, st, gx); }, ErrorCode::unsupported, "one data type");
  // gY must have the forward's written size when the kernel configures itself from the state.
  Image y = make_image(dev, ints(18, 1), 1, 3, 3, 2);
  auto sized = P.fwd.result_state(x, {}, y);
  Image small = make_image(dev, ints(8, 2), 1, 2, 2, 2);
  expect_error([&] { P.bwd.encode(cb, small, x, sized); }, ErrorCode::invalid_argument, "the forward wrote 3x3");
  P.bwd.properties().primary_offset.z = 3;
  expect_error([&] { P.bwd.encode(cb, gy, x, st, gx); }, ErrorCode::invalid_argument, "primary offset z 3");
}

TEST(ConvolutionTransposeGradient, DecodeTakesWeightsLazilyFromTheForwardKernel) {
  Device dev = Device::cpu(1);
  Geo1 g{2, 3, 1, 3, 2, 2, 1, 1, 1};
  Pair P(dev, g);
  P.bwd.set_gradient_option(GradientOption::all);
  P.bwd.properties().precision = Precision::fp32;
  P.bwd.set_label("g");
  io::Encoder e;
  P.bwd.encode_to(e);
  const auto bytes = e.to_bytes();
  const io::Decoder dec = io::Decoder::from_bytes(bytes.data(), bytes.size());
  EXPECT_FALSE(dec.has("weights")) << "the gradient kernel stores no weights (a.10)";
  ConvolutionTransposeGradient back = ConvolutionTransposeGradient::decode(dec, dev);
  EXPECT_FALSE(back.data_source());
  EXPECT_TRUE(back.current_weights().empty());
  EXPECT_FALSE(back.equals(P.bwd));
  expect_error([&] { back.reload_weights_and_biases_from_data_source(); }, ErrorCode::invalid_argument, "no data source");
  Image x = make_image(dev, ints(2 * 3 * 2, 1), 1, 2, 3, 2);
  CommandBuffer cb(dev);
  ConvolutionTransposeGradientState st;
  Image y = P.fwd.encode(cb, x, ConvolutionGradientState(), st, false);
  Image gy = make_image(dev, ints(static_cast<size_t>(y.element_count()), 3), 1, y.height(), y.width(), 3);
  Image a = P.bwd.encode(cb, gy, x, st);
  Image b = back.encode(cb, gy, x, st);
  run(cb);
  EXPECT_EQ(back.data_source(), P.ds) << "adopted from state.convolution_transpose().data_source()";
  EXPECT_TRUE(back.equals(P.bwd));
  expect_equal(read_all(b), read_all(a), "decoded kernel computes the same gX");
  // Copy: deep, with its own weights.
  ConvolutionTransposeGradient c = P.bwd.copy();
  EXPECT_TRUE(c.equals(P.bwd));
  P.ds->set_weights(std::vector<float>(P.w.size(), 1.0f));
  P.bwd.reload_weights_and_biases_from_data_source();
  EXPECT_FALSE(c.equals(P.bwd));
  EXPECT_NE(P.bwd.description().find("gradient option 3"), std::string::npos);
}

TEST(ConvolutionTransposeGradient, ReloadFromStateAndFp16Weights) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(1, 1, 1, 1);
  auto ds = std::make_shared<ArrayDataSource>(d, std::vector<float>{3});
  ConvolutionTranspose f(dev, ds);
  ConvolutionTransposeGradient k(dev, ds);
  Image x = make_image(dev, {1}, 1, 1, 1, 1), gy = make_image(dev, {2}, 1, 1, 1, 1);
  auto st = f.result_state(x, {}, Image());
  CommandBuffer cb(dev);
  Image before = k.encode(cb, gy, x, st);
  ConvolutionWeightsAndBiasesState wb(dev, d);
  const float v = 1.0f + 1.0f / 4096.0f;
  Buffer w = wb.weights();
  w.copy_from_host(&v, 4);
  k.reload_weights_and_biases(cb, wb);
  Image after = k.encode(cb, gy, x, st);
  run(cb);
  EXPECT_EQ(before.read_floats()[0], 6.0f);
  EXPECT_EQ(after.read_floats()[0], 2.0f * v);
  ds->set_kernel_weights_data_type(DataType::float16);
  ConvolutionTransposeGradient k16(dev, ds);
  CommandBuffer cb2(dev);
  k16.reload_weights_and_biases(cb2, wb);
  run(cb2);
  EXPECT_EQ(k16.current_weights()[0], 1.0f) << "fp16 storage rounds reloaded weights (e7)";
}

TEST(ConvolutionTransposeGradient, ForwardClipCutByTheEdgeStaysConsistent) {
  Device dev = Device::cpu(1);
  Geo1 g{2, 2, 1, 3, 3, 2, 2, 1, 1};
  Pair P(dev, g);
  auto xv = ints(3 * 3 * 2, 5);
  Image x = make_image(dev, xv, 1, 3, 3, 2);
  P.fwd.properties().clip_rect = Region{-1, -2, 0, 5, 6, 1};
  Image y(dev, ImageDescriptor{4, 4, 2, 1});
  CommandBuffer cb(dev);
  auto st = P.fwd.result_state(x, {}, y);
  P.fwd.encode_to_state(cb, x, st, y);
  EXPECT_EQ(st.forward().destination_width, 4);
  EXPECT_EQ(st.forward().destination_height, 4);
  const int64_t Tx = st.forward().total_offset_x, Ty = st.forward().total_offset_y;
  EXPECT_EQ(Tx, 1);
  EXPECT_EQ(Ty, 2);
  auto gyv = ints(4 * 4 * 2, 6);
  Image gy = make_image(dev, gyv, 1, 4, 4, 2);
  Image gx = P.bwd.encode(cb, gy, x, st);
  run(cb);
  expect_equal(read_all(y), forward(g, xv, 1, 3, 3, P.w, P.b, 4, 4, Tx, Ty), "forward with a cut clip");
  expect_equal(read_all(gx), grad_data(g, gyv, 1, 4, 4, P.w, 3, 3, Tx, Ty), "its adjoint");
}
