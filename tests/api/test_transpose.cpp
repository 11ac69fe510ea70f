// ConvolutionTranspose through the API against the spec's definition (tests/api/mps_reference.hpp):
// worked vector, padding policies, offsets, kernel offsets, clip rectangles, channel offsets, image indices,
// groups, dilation, conv-state sizing, neuron/batch-norm, precisions, training forms, weights, copy, coding,
// and the error paths. Inputs are small integers, so float32 results are exact and compared with ==.
#include <gtest/gtest.h>

#include <cmath>

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

int64_t fdiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

struct Layer {
  Geo1 g;
  std::vector<double> w, b;
  std::shared_ptr<ArrayDataSource> ds;
  explicit Layer(Geo1 geo, bool bias = true, uint32_t seed = 1) : g(geo) {
    w = ints(static_cast<size_t>(g.nout * g.kh * g.kw * (g.nin / g.groups)), seed);
    if (bias) b = ints(static_cast<size_t>(g.nout), seed + 7);
    ds = source(make_desc(g), w, b);
  }
};

}  // namespace

TEST(ConvolutionTranspose, WorkedVector1D) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(3, 1, 1, 1);
  d.stride_x = 2;
  ConvolutionTranspose k(dev, source(d, {1, 10, 100}));
  Image x = make_image(dev, {2, 3}, 1, 1, 2, 1);
  CommandBuffer cb(dev);
  Image y = k.encode(cb, x);
  run(cb);
  EXPECT_EQ(y.width(), 3);
  EXPECT_EQ(y.height(), 1);
  expect_equal(read_all(y), {10 * 2, 1 * 2 + 100 * 3, 10 * 3}, "Y = [W1·x0, W0·x0 + W2·x1, W1·x1]");
  EXPECT_EQ(k.properties().offset.x, 0);
  EXPECT_EQ(k.properties().kernel_offset_x, 0);
  EXPECT_TRUE(k.is_backwards());
  EXPECT_EQ(k.input_feature_channels(), 1);
  EXPECT_EQ(k.output_feature_channels(), 1);
}

TEST(ConvolutionTranspose, PaddingPolicies) {
  Device dev = Device::cpu(2);
  for (int64_t k : {3, 4})
    for (int64_t s : {1, 2, 3})
      for (int64_t r : {1, 2})
        for (uint32_t style : {padding::size_valid_only, padding::size_same, padding::size_full}) {
          Layer L(Geo1{2, 3, 1, k, k - 1, s, s, r, 1});
          ConvolutionTranspose t(dev, L.ds);
          t.properties().padding = style | padding::align_centered | padding::add_remainder_to_top_left;
          const int64_t H = 3, W = 4;
          auto xv = ints(2 * H * W * 2, 5);
          Image x = make_image(dev, xv, 2, H, W, 2);
          CommandBuffer cb(dev);
          const int st = style == padding::size_valid_only ? -1 : style == padding::size_same ? 0 : 1;
          const int64_t kwe = ke(k, r), khe = ke(k - 1, 1);
          if ((W - 1) * s + 1 + st * (kwe - 1) <= 0 || (H - 1) * s + 1 + st * (khe - 1) <= 0) {
            expect_error([&] { t.encode(cb, x); }, ErrorCode::invalid_argument, "source gives a");
            continue;
          }
          Image y = t.encode(cb, x);
          run(cb);
          EXPECT_EQ(y.width(), (W - 1) * s + 1 + st * (kwe - 1));
          EXPECT_EQ(y.height(), (H - 1) * s + 1 + st * (khe - 1));
          // T from the centring rule (remainder to the top/left: left = ceil(extra/2)).
          const int64_t extra = (st + 1) * (kwe - 1);
          const int64_t Tx = hw(k, r) - (extra + 1) / 2;
          const int64_t extra_y = (st + 1) * (khe - 1);
          const int64_t Ty = hw(k - 1, 1) - (extra_y + 1) / 2;
          const auto& p = t.properties();
          EXPECT_EQ(p.offset.x * s + p.kernel_offset_x, Tx);
          EXPECT_GE(p.kernel_offset_x, 0);
          EXPECT_LT(p.kernel_offset_x, s);
          EXPECT_EQ(p.offset.y * s + p.kernel_offset_y, Ty);
          auto want = forward(L.g, xv, 2, H, W, L.w, L.b, y.height(), y.width(), Tx, Ty);
          expect_equal(read_all(y), want, "padding policy result");
        }
}

TEST(ConvolutionTranspose, OffsetsKernelOffsetsExplicitDestination) {
  Device dev = Device::cpu(2);
  Layer L(Geo1{3, 2, 1, 3, 2, 2, 3, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  const int64_t H = 3, W = 3;
  auto xv = ints(H * W * 3, 9);
  Image x = make_image(dev, xv, 1, H, W, 3);
  for (int64_t ox : {-1, 0, 2})
    for (int64_t kx : {-2, 0, 1})
      for (int64_t oy : {-1, 1}) {
        t.properties().offset = Offset{ox, oy, 0};
        t.properties().kernel_offset_x = kx;
        t.properties().kernel_offset_y = 1;
        Image y(dev, ImageDescriptor{5, 6, 2, 1});
        CommandBuffer cb(dev);
        t.encode(cb, x, y);
        run(cb);
        auto want = forward(L.g, xv, 1, H, W, L.w, L.b, 6, 5, ox * 2 + kx, oy * 3 + 1);
        expect_equal(read_all(y), want, "explicit destination with offsets");
      }
}

TEST(ConvolutionTranspose, ClipRectChannelOffsetsImageIndices) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{2, 3, 1, 3, 3, 2, 2, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  const int64_t H = 2, W = 3, SC = 4;  // source has 4 channels; the kernel reads channels 1..2
  auto xall = ints(2 * H * W * SC, 4);
  Image x = make_image(dev, xall, 2, H, W, SC);
  Image y(dev, ImageDescriptor{6, 5, 6, 3});  // 3 images, 6 channels; written: channels 2..4
  y.fill(7.0f);
  auto& p = t.properties();
  p.offset = Offset{1, 0, 1};  // read source image 1
  p.kernel_offset_x = 1;
  p.source_feature_channel_offset = 1;
  p.destination_feature_channel_offset = 2;
  p.clip_rect = Region{1, 2, 2, 3, 2, 1};
  CommandBuffer cb(dev);
  t.encode(cb, x, y);
  run(cb);
  // Reference on the extracted source image/channels.
  std::vector<double> xs;
  for (int64_t i = 0; i < H * W; ++i)
    for (int64_t c = 1; c <= 2; ++c) xs.push_back(xall[(1 * H * W + i) * SC + c]);
  auto want = forward(L.g, xs, 1, H, W, L.w, L.b, 2, 3, 1 * 2 + 1, 0);
  auto got = read_all(y);
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t yy = 0; yy < 5; ++yy)
      for (int64_t xx = 0; xx < 6; ++xx)
        for (int64_t c = 0; c < 6; ++c) {
          const double v = got[((n * 5 + yy) * 6 + xx) * 6 + c];
          const bool inside = n == 2 && yy >= 2 && yy < 4 && xx >= 1 && xx < 4 && c >= 2 && c < 5;
          if (inside) ASSERT_EQ(v, want[((yy - 2) * 3 + (xx - 1)) * 3 + (c - 2)]);
          else ASSERT_EQ(v, 7.0) << "untouched outside the clip/channels n=" << n << " y=" << yy << " x=" << xx;
        }
  // Source channel max count below what the kernel needs is an error naming the counts.
  p.source_feature_channel_max_count = 1;
  CommandBuffer cb2(dev);
  expect_error([&] { t.encode(cb2, x, y); }, ErrorCode::invalid_argument, "max count 1");
}

TEST(ConvolutionTranspose, ClipRectCutByDestinationEdge) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{1, 1, 1, 3, 3, 2, 2, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  auto xv = ints(9, 3);
  Image x = make_image(dev, xv, 1, 3, 3, 1);
  t.properties().clip_rect = Region{-2, -1, 0, 6, 5, 1};  // origin outside the destination
  Image y(dev, ImageDescriptor{4, 4, 1, 1});
  CommandBuffer cb(dev);
  t.encode(cb, x, y);
  run(cb);
  // Destination pixel (yy, xx) is clip-relative (yy + 1, xx + 2).
  auto full = forward(L.g, xv, 1, 3, 3, L.w, L.b, 5, 6, 0, 0);
  auto got = read_all(y);
  for (int64_t yy = 0; yy < 4; ++yy)
    for (int64_t xx = 0; xx < 4; ++xx) ASSERT_EQ(got[yy * 4 + xx], full[(yy + 1) * 6 + (xx + 2)]);
}

TEST(ConvolutionTranspose, GroupsDilationEvenKernels) {
  Device dev = Device::cpu(2);
  for (Geo1 g : {Geo1{4, 6, 2, 2, 4, 2, 3, 1, 2}, Geo1{6, 3, 3, 4, 1, 3, 1, 2, 1}, Geo1{2, 2, 2, 5, 5, 1, 1, 3, 3}}) {
    Layer L(g);
    ConvolutionTranspose t(dev, L.ds);
    EXPECT_EQ(t.groups(), g.groups);
    auto xv = ints(static_cast<size_t>(2 * 4 * 5 * g.nin), 11);
    Image x = make_image(dev, xv, 2, 4, 5, g.nin);
    CommandBuffer cb(dev);
    Image y = t.encode(cb, x);
    run(cb);
    const auto& p = t.properties();
    auto want = forward(g, xv, 2, 4, 5, L.w, L.b, y.height(), y.width(), p.offset.x * g.sx + p.kernel_offset_x,
                        p.offset.y * g.sy + p.kernel_offset_y);
    expect_equal(read_all(y), want, "groups/dilation/even kernel");
  }
}

TEST(ConvolutionTranspose, SizedByConvolutionState) {
  Device dev = Device::cpu(1);
  // The convolution being undone: 5x5 kernel, stride 2, 7 -> 4 channels, source 9x8.
  for (int64_t k : {3, 4}) {
    ConvolutionDescriptor cd(k, k, 3, 2);
    cd.stride_x = cd.stride_y = 2;
    auto cw = ints(static_cast<size_t>(2 * k * k * 3), 2);
    Convolution conv(dev, source(cd, cw));
    Image src = make_image(dev, ints(9 * 8 * 3, 8), 1, 9, 8, 3);
    CommandBuffer cb(dev);
    ConvolutionGradientState cs;
    Image yc = conv.encode(cb, src, cs, false);
    ASSERT_TRUE(cs);
    EXPECT_EQ(cs.source_width(), 8);
    EXPECT_EQ(cs.source_height(), 9);
    // The transpose that undoes it (2 -> 3 channels).
    Geo1 g{2, 3, 1, k, k, 2, 2, 1, 1};
    Layer L(g);
    ConvolutionTranspose t(dev, L.ds);
    Image y = t.encode(cb, yc, cs);
    run(cb);
    EXPECT_EQ(y.width(), 8);
    EXPECT_EQ(y.height(), 9);
    const int64_t Tx = par(k, 1) - conv.properties().offset.x;
    const int64_t Ty = par(k, 1) - conv.properties().offset.y;
    EXPECT_EQ(t.properties().offset.x, fdiv(Tx, 2));
    EXPECT_EQ(t.properties().offset.x * 2 + t.properties().kernel_offset_x, Tx);
    EXPECT_EQ(t.properties().offset.y * 2 + t.properties().kernel_offset_y, Ty);
    auto want = forward(g, read_all(yc), 1, yc.height(), yc.width(), L.w, L.b, 9, 8, Tx, Ty);
    expect_equal(read_all(y), want, "sized by the convolution state");
  }
  // Kernel size mismatch is reported.
  ConvolutionDescriptor cd(3, 3, 1, 1);
  Convolution conv(dev, source(cd, ints(9, 1)));
  Image src = make_image(dev, ints(16, 2), 1, 4, 4, 1);
  CommandBuffer cb(dev);
  ConvolutionGradientState cs;
  Image yc = conv.encode(cb, src, cs, true);
  EXPECT_TRUE(cs.is_temporary());
  Layer L(Geo1{1, 1, 1, 5, 5, 1, 1, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  expect_error([&] { t.encode(cb, yc, cs); }, ErrorCode::invalid_argument, "differs from the paired convolution's 3x3");
}

TEST(ConvolutionTranspose, FusedNeuronAndBatchNormFold) {
  Device dev = Device::cpu(1);
  Geo1 g{2, 2, 1, 3, 3, 1, 1, 1, 1};
  ConvolutionDescriptor d = make_desc(g);
  d.fused_neuron = NeuronDescriptor{NeuronType::relu, 0.5f, 0, 0};
  // I = gamma/sqrt(var + eps) = {2, 0.5}; J = beta − I·mean = {1 − 2·1, 0 − 0.5·(−2)} = {−1, 1}.
  d.set_batch_normalization_parameters_for_inference({1, -2}, {0.75f, 3.75f}, {2, 1}, {1, 0}, 0.25f);
  auto w = ints(2 * 9 * 2, 3);
  auto b = std::vector<double>{1, -1};
  ConvolutionTranspose t(dev, source(d, w, b));
  auto xv = ints(3 * 3 * 2, 6);
  Image x = make_image(dev, xv, 1, 3, 3, 2);
  CommandBuffer cb(dev);
  Image y = t.encode(cb, x);
  run(cb);
  std::vector<double> wf = w, bf = {1 * 2 - 1, -1 * 0.5 + 1};
  for (size_t i = 0; i < wf.size(); ++i) wf[i] *= (i < 18 ? 2.0 : 0.5);
  auto pre = forward(g, xv, 1, 3, 3, wf, bf, 3, 3, 0, 0);
  for (auto& v : pre) v = v >= 0 ? v : 0.5 * v;
  expect_equal(read_all(y), pre, "BN-folded weights and leaky relu");
  // Exported weights are the folded ones the kernel uses.
  CommandBuffer cb2(dev);
  auto st = t.export_weights_and_biases(cb2, false);
  run(cb2);
  expect_equal(buffer_floats(st.weights()), wf, "exported folded weights");
  expect_equal(buffer_floats(st.biases()), bf, "exported folded biases");
}

TEST(ConvolutionTranspose, PrecisionsRoundWhereAsked) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(1, 1, 1, 1);
  const float w = 1.0f + 1.0f / 4096.0f;  // not representable in fp16: rounds to 1
  auto ds = std::make_shared<ArrayDataSource>(d, std::vector<float>{w});
  Image x = make_image(dev, {1}, 1, 1, 1, 1);
  {
    ConvolutionTranspose t(dev, ds);  // e7: float32 storage by default
    CommandBuffer cb(dev);
    Image y = t.encode(cb, x);
    run(cb);
    EXPECT_EQ(y.read_floats()[0], w);
    t.properties().accumulator_precision = AccumulatorPrecision::half;
    CommandBuffer cb2(dev);
    Image y2 = t.encode(cb2, x);
    run(cb2);
    EXPECT_EQ(y2.read_floats()[0], 1.0f);
  }
  {
    ConvolutionTranspose t(dev, ds);  // precision mode (tconv extension): inputs rounded before multiplying
    t.properties().precision = Precision::bf16;
    CommandBuffer cb(dev);
    Image y = t.encode(cb, x);
    run(cb);
    EXPECT_EQ(y.read_floats()[0], 1.0f);
  }
  ds->set_kernel_weights_data_type(DataType::float16);
  ConvolutionTranspose t16(dev, ds);
  EXPECT_EQ(t16.current_weights()[0], 1.0f);
  // A data source asking for float32 storage of float16 data is refused.
  auto h = std::make_shared<ArrayDataSource>(d, std::vector<float>{1}, std::vector<float>{}, DataType::float16);
  h->set_kernel_weights_data_type(DataType::float32);
  expect_error([&] { ConvolutionTranspose(dev, h); }, ErrorCode::invalid_argument, "float32 storage needs float32");
}

TEST(ConvolutionTranspose, HalfImages) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{2, 2, 1, 3, 3, 2, 2, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  auto xv = ints(2 * 2 * 2, 3);
  Image x = make_image(dev, xv, 1, 2, 2, 2, DataType::float16);
  CommandBuffer cb(dev);
  Image y = t.encode(cb, x);
  run(cb);
  EXPECT_EQ(y.data_type(), DataType::float16);
  expect_equal(read_all(y), forward(L.g, xv, 1, 2, 2, L.w, L.b, 3, 3, 0, 0), "fp16 images, small integers exact");
}

TEST(ConvolutionTranspose, TrainingFormsAndStates) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{2, 3, 1, 3, 3, 2, 2, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  Image x = make_image(dev, ints(3 * 4 * 2, 1), 1, 3, 4, 2);
  CommandBuffer cb(dev);
  ConvolutionTransposeGradientState st;
  Image y = t.encode(cb, x, ConvolutionGradientState(), st, false);
  ASSERT_TRUE(st);
  EXPECT_FALSE(st.is_temporary());
  EXPECT_TRUE(st.convolution_transpose().same_object(t));
  EXPECT_EQ(st.source_width(), 4);
  EXPECT_EQ(st.source_height(), 3);
  EXPECT_EQ(st.forward().total_offset_x, t.properties().offset.x * 2 + t.properties().kernel_offset_x);
  EXPECT_EQ(st.gradient_for_weights().length(), static_cast<size_t>(3 * 9 * 2 * 4));
  EXPECT_EQ(st.gradient_for_biases().length(), 12u);
  EXPECT_EQ(st.resource_count(), 2);
  EXPECT_FALSE(st.gradients_initialised());
  EXPECT_FALSE(st.paired_convolution_state());
  expect_error([&] { st.convolution(); }, ErrorCode::invalid_argument, "without a paired convolution");
  // Batch training: one state shared by the batch.
  ImageBatch xs = {x, make_image(dev, ints(24, 2), 1, 3, 4, 2)};
  ConvolutionTransposeGradientStateBatch sts;
  ImageBatch ys = t.encode_batch(cb, xs, {}, sts, true);
  ASSERT_EQ(sts.size(), 2u);
  EXPECT_TRUE(sts[0].same_object(sts[1]));
  EXPECT_TRUE(sts[0].is_temporary());
  auto rs = t.result_state_batch(xs, {}, ys);
  EXPECT_TRUE(rs[0].same_object(rs[1]));
  auto ts = t.temporary_result_state(cb, x, {}, y);
  EXPECT_TRUE(ts.is_temporary());
  // Low-level form with a made state; a state of another kernel is refused.
  Image y2(dev, y.descriptor());
  t.encode_to_state(cb, x, ts, y2);
  ConvolutionTranspose other(dev, L.ds);
  auto foreign = other.result_state(x, {}, y);
  expect_error([&] { t.encode_to_state(cb, x, foreign, y2); }, ErrorCode::invalid_argument, "another ConvolutionTranspose");
  // The inherited form without a conv-state argument is unsupported.
  ConvolutionTransposeGradientState none;
  expect_error([&] { t.encode(cb, x, none, false); }, ErrorCode::unsupported, "not supported on the transpose");
  run(cb);
  expect_equal(read_all(y2), read_all(y), "low-level form = sized form");
  expect_equal(read_all(ys[0]), read_all(y), "batch image 0");
  // Explicit batch form.
  ImageBatch outs = {Image(dev, y.descriptor()), Image(dev, y.descriptor())};
  CommandBuffer cb2(dev);
  t.encode_batch(cb2, xs, {}, outs);
  run(cb2);
  expect_equal(read_all(outs[1]), read_all(ys[1]), "explicit batch");
  expect_error([&] { t.encode_batch(cb2, xs, {}, ys = ImageBatch{y}); }, ErrorCode::invalid_argument, "1 destination");
}

TEST(ConvolutionTranspose, Uint8WeightsAreInferenceOnly) {
  struct U8Source : ConvolutionDataSource {
    ConvolutionDescriptor d{1, 1, 1, 2};
    uint8_t w[2] = {0, 255};
    float ranges[4] = {-1, 1, 0, 4};
    DataType data_type() const override { return DataType::uint8; }
    ConvolutionDescriptor descriptor() const override { return d; }
    const void* weights() override { return w; }
    const float* bias_terms() override { return nullptr; }
    bool load() override { return true; }
    void purge() override {}
    std::string label() const override { return "u8"; }
    std::shared_ptr<ConvolutionDataSource> copy() const override { return std::make_shared<U8Source>(*this); }
    WeightsQuantizationType weights_quantization_type() const override { return WeightsQuantizationType::linear; }
    const float* ranges_for_uint8_kernel() override { return ranges; }
  };
  Device dev = Device::cpu(1);
  auto ds = std::make_shared<U8Source>();
  ConvolutionTranspose t(dev, ds);
  const std::vector<float> cw = t.current_weights();
  expect_equal(std::vector<double>(cw.begin(), cw.end()), {-1, 4}, "dequantised");
  Image x = make_image(dev, {3}, 1, 1, 1, 1);
  CommandBuffer cb(dev);
  Image y = t.encode(cb, x);
  ConvolutionTransposeGradientState st;
  expect_error([&] { t.encode(cb, x, ConvolutionGradientState(), st, false); }, ErrorCode::invalid_argument, "e8");
  run(cb);
  expect_equal(read_all(y), {-3, 12}, "uint8 inference");
  expect_error([&] { ConvolutionTransposeGradient(dev, ds); }, ErrorCode::invalid_argument, "uint8");
}

TEST(ConvolutionTranspose, ErrorPaths) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{2, 2, 1, 3, 3, 1, 1, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  Image x = make_image(dev, ints(8, 1), 1, 2, 2, 2);
  Image y(dev, ImageDescriptor{2, 2, 2, 1});
  CommandBuffer cb(dev);
  expect_error([&] { ConvolutionTranspose(dev, nullptr); }, ErrorCode::invalid_argument, "null");
  expect_error([&] { t.encode(cb, x, x); }, ErrorCode::invalid_argument, "aliases");
  Image narrow(dev, ImageDescriptor{2, 2, 1, 1});
  expect_error([&] { t.encode(cb, narrow, y); }, ErrorCode::invalid_argument, "source image has 1 feature channels");
  t.properties().destination_feature_channel_offset = 1;
  expect_error([&] { t.encode(cb, x, y); }, ErrorCode::invalid_argument, "from channel offset 1 only 1 are available but 2");
  t.properties().destination_feature_channel_offset = 0;
  t.properties().edge_mode = EdgeMode::clamp;
  expect_error([&] { t.encode(cb, x, y); }, ErrorCode::unsupported, "clamp");
  t.properties().edge_mode = EdgeMode::zero;
  t.properties().clip_rect = Region{5, 0, 0, 2, 2, 1};
  expect_error([&] { t.encode(cb, x, y); }, ErrorCode::invalid_argument, "does not intersect");
  t.properties().clip_rect = Region::no_clip();
  t.properties().offset.z = 1;
  expect_error([&] { t.encode(cb, x, y); }, ErrorCode::invalid_argument, "offset.z 1");
  t.properties().offset.z = 0;
  Image yh(dev, ImageDescriptor{2, 2, 2, 1, DataType::float16});
  expect_error([&] { t.encode(cb, x, yh); }, ErrorCode::unsupported, "one data type");
  t.properties().algorithm = "no_such_algorithm";
  // An unknown name is a caller error (invalid_argument); a known algorithm that declines is unsupported.
  expect_error([&] { t.encode(cb, x, y); }, ErrorCode::invalid_argument, "unknown algorithm 'no_such_algorithm'");
  t.properties().algorithm.clear();
  ConvolutionDescriptor bad(0, 3, 1, 1);
  expect_error([&] { ConvolutionTranspose(dev, std::make_shared<ArrayDataSource>(ConvolutionDescriptor(3, 3, 1, 1),
                                                                                  std::vector<float>(9)))
                         .descriptor();
                 bad.validate(); },
               ErrorCode::invalid_argument, "kernel width must be positive, got 0");
  struct Failing : ArrayDataSource {
    using ArrayDataSource::ArrayDataSource;
    bool load() override { return false; }
  };
  expect_error([&] { ConvolutionTranspose(dev, std::make_shared<Failing>(ConvolutionDescriptor(1, 1, 1, 1), std::vector<float>{1})); },
               ErrorCode::invalid_argument, "load() returned false");
  EXPECT_EQ(L.ds->load_count(), 0) << "every load() was balanced by purge()";
}

TEST(ConvolutionTranspose, ExportReloadOrderedOnTheQueue) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(1, 1, 1, 1);
  auto ds = std::make_shared<ArrayDataSource>(d, std::vector<float>{2}, std::vector<float>{1});
  ConvolutionTranspose t(dev, ds);
  Image x = make_image(dev, {3}, 1, 1, 1, 1);
  CommandBuffer cb(dev);
  auto wb = t.export_weights_and_biases(cb, true);
  EXPECT_TRUE(wb.is_temporary());
  Image before = t.encode(cb, x);  // uses w = 2, b = 1
  // Build a state holding w = 5, b = -4 inside larger buffers (sub-range init).
  Buffer wbuf = Buffer::allocate(dev, 16), bbuf = Buffer::allocate(dev, 8);
  const float five = 5, minus4 = -4;
  wbuf.copy_from_host(&five, 4, 8);
  bbuf.copy_from_host(&minus4, 4, 4);
  ConvolutionWeightsAndBiasesState fresh(wbuf, 8, bbuf, 4, d);
  EXPECT_EQ(fresh.weights_offset(), 8u);
  t.reload_weights_and_biases(cb, fresh);
  Image after = t.encode(cb, x);
  run(cb);
  EXPECT_EQ(buffer_floats(wb.weights())[0], 2.0);
  EXPECT_EQ(buffer_floats(wb.biases())[0], 1.0);
  EXPECT_EQ(before.read_floats()[0], 7.0f);
  EXPECT_EQ(after.read_floats()[0], 11.0f);
  // Reload from the data source (CPU style).
  ds->set_weights({-1});
  t.reload_weights_and_biases_from_data_source();
  EXPECT_EQ(t.current_weights()[0], -1.0f);
  EXPECT_EQ(t.current_biases()[0], 1.0f);
  // Sub-range checks.
  expect_error([&] { ConvolutionWeightsAndBiasesState(wbuf, 16, bbuf, 0, d); }, ErrorCode::invalid_argument,
               "weights offset 16 + 4 bytes");
  expect_error([&] { ConvolutionWeightsAndBiasesState(wbuf, 2, bbuf, 0, d); }, ErrorCode::invalid_argument,
               "not a multiple of 4");
  ConvolutionWeightsAndBiasesState small(Buffer::allocate(dev, 4), Buffer());
  ConvolutionTranspose big(dev, source(ConvolutionDescriptor(3, 3, 1, 1), ints(9, 1)));
  CommandBuffer cb2(dev);
  expect_error([&] { big.reload_weights_and_biases(cb2, small); }, ErrorCode::invalid_argument, "needs 36");
}

TEST(ConvolutionTranspose, CopyIsDeepAndEqual) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{2, 2, 1, 3, 3, 2, 2, 1, 1});
  ConvolutionTranspose t(dev, L.ds);
  t.properties().offset = Offset{1, 0, 0};
  t.set_label("layer");
  ConvolutionTranspose c = t.copy_to(Device::cpu(2));
  EXPECT_FALSE(c.same_object(t));
  EXPECT_TRUE(c.equals(t));
  EXPECT_NE(c.data_source(), t.data_source());  // the data source was copied
  L.ds->set_weights(std::vector<float>(L.w.size(), 0.0f));
  t.reload_weights_and_biases_from_data_source();
  EXPECT_FALSE(c.equals(t));
  EXPECT_EQ(c.current_weights(), to_f(L.w));
  EXPECT_NE(t.description().find("layer"), std::string::npos);
  ConvolutionTranspose alias = t;  // a handle copy shares the kernel
  alias.properties().kernel_offset_x = 1;
  EXPECT_EQ(t.properties().kernel_offset_x, 1);
}

TEST(ConvolutionTranspose, CoderRoundTrip) {
  Device dev = Device::cpu(1);
  Layer L(Geo1{4, 2, 2, 3, 2, 2, 1, 1, 2});
  ConvolutionTranspose t(dev, L.ds);
  t.properties().offset = Offset{-1, 2, 0};
  t.properties().kernel_offset_y = 1;
  t.properties().source_feature_channel_max_count = 7;
  t.properties().precision = Precision::bf16;
  t.set_label("dec");
  io::Encoder e;
  t.encode_to(e);
  const auto bytes = e.to_bytes();
  ConvolutionTranspose back = ConvolutionTranspose::decode(io::Decoder::from_bytes(bytes.data(), bytes.size()), dev);
  EXPECT_TRUE(back.equals(t));
  EXPECT_EQ(back.properties().source_feature_channel_max_count, 7u);
  ASSERT_TRUE(back.data_source());
  EXPECT_EQ(back.data_source()->descriptor(), t.descriptor());
  // The weights are stored as a safetensors tensor [Nout][kH][kW][Nin/G].
  const io::Decoder dec = io::Decoder::from_bytes(bytes.data(), bytes.size());
  const auto& wt = dec.get_tensor("weights");
  EXPECT_EQ(wt.shape, (std::vector<int64_t>{2, 2, 3, 2}));
  // A gradient kernel's file is not a transpose.
  ConvolutionTransposeGradient gk(dev, L.ds);
  io::Encoder e2;
  gk.encode_to(e2);
  const auto b2 = e2.to_bytes();
  expect_error([&] { ConvolutionTranspose::decode(io::Decoder::from_bytes(b2.data(), b2.size()), dev); },
               ErrorCode::format_error, "expected a 'ConvolutionTranspose'");
}

TEST(ConvolutionTranspose, DepthwiseDescriptorIsGroupsEqualToChannels) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor dw(3, 3, 3, 6);
  dw.depthwise = true;
  dw.stride_x = dw.stride_y = 2;
  auto w = ints(6 * 9, 2);
  ConvolutionTranspose t(dev, source(dw, w));
  EXPECT_EQ(t.groups(), 3);
  auto xv = ints(2 * 2 * 3, 3);
  Image x = make_image(dev, xv, 1, 2, 2, 3);
  CommandBuffer cb(dev);
  Image y = t.encode(cb, x);
  run(cb);
  expect_equal(read_all(y), forward(Geo1{3, 6, 3, 3, 3, 2, 2, 1, 1}, xv, 1, 2, 2, w, {}, 3, 3, 0, 0), "depthwise");
}

// A reload takes effect in queue order: until its command runs the kernel reads as before (host reads and runs
// alike); a reload skipped because its command buffer failed earlier leaves the weights as they were, and later
// command buffers run with them.
TEST(ConvolutionTranspose, ReloadTakesEffectWhenItRunsAndASkippedReloadKeepsTheWeights) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(1, 1, 1, 1);
  auto ds = source(d, {2}, {1});
  ConvolutionTranspose t(dev, ds);
  ConvolutionTransposeGradient g(dev, ds);
  Image x = make_image(dev, {3}, 1, 1, 1, 1);
  auto state = [&](float w, float b) {
    return ConvolutionWeightsAndBiasesState(Buffer::from_host(dev, &w, 4), Buffer::from_host(dev, &b, 4));
  };
  CommandBuffer cb(dev);
  t.reload_weights_and_biases(cb, state(5, -1));
  g.reload_weights_and_biases(cb, state(5, -1));
  EXPECT_EQ(t.current_weights(), (std::vector<float>{2})) << "encoded, not run: the weights are as before";
  EXPECT_EQ(t.current_biases(), (std::vector<float>{1}));
  EXPECT_EQ(g.current_weights(), (std::vector<float>{2}));
  EXPECT_TRUE(t.copy_to(dev).equals(ConvolutionTranspose(dev, ds)));
  run(cb);
  EXPECT_EQ(t.current_weights(), (std::vector<float>{5}));
  EXPECT_EQ(t.current_biases(), (std::vector<float>{-1}));
  EXPECT_EQ(g.current_weights(), (std::vector<float>{5}));

  CommandBuffer bad(dev);
  bad.encode("injected failure", [] { throw Error(ErrorCode::internal, "injected"); });
  t.reload_weights_and_biases(bad, state(7, 9));
  g.reload_weights_and_biases(bad, state(7, 9));
  bad.commit();
  bad.wait_until_completed();
  EXPECT_EQ(bad.status(), CommandBufferStatus::error);
  EXPECT_EQ(t.current_weights(), (std::vector<float>{5})) << "a skipped reload keeps the weights";
  EXPECT_EQ(t.current_biases(), (std::vector<float>{-1}));
  EXPECT_EQ(g.current_weights(), (std::vector<float>{5}));
  CommandBuffer later(dev);
  Image y = t.encode(later, x);
  run(later);
  EXPECT_EQ(y.read_floats()[0], 3.0f * 5.0f - 1.0f);
}
