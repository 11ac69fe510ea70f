// ConvolutionDescriptor (validation, batch-norm fold, neuron aliases, coding), ArrayDataSource (load/purge,
// storage precision, update hooks, copy) and the weights-and-biases state.
#include <gtest/gtest.h>

#include <cmath>

#include "api_test_util.hpp"
#include "io/coder.hpp"
#include "mps_reference.hpp"

using namespace tconv;
using namespace tconv::test;

TEST(Descriptor, ValidationNamesTheValues) {
  ConvolutionDescriptor d(3, 3, 8, 12);
  EXPECT_FALSE(d.check().has_value());
  EXPECT_EQ(d.weight_elements(), 12 * 9 * 8);
  d.stride_y = 0;
  expect_error([&] { d.validate(); }, ErrorCode::invalid_argument, "stride y must be positive, got 0");
  d.stride_y = 1;
  d.groups = 3;
  expect_error([&] { d.validate(); }, ErrorCode::invalid_argument, "groups (3) must divide input feature channels (8)");
  d.groups = 2;  // e12: no multiple-of-4 rule
  EXPECT_FALSE(d.check().has_value());
  d.dilation_x = -1;
  expect_error([&] { d.validate(); }, ErrorCode::invalid_argument, "dilation x must be positive, got -1");
  ConvolutionDescriptor dw(3, 3, 4, 8);
  dw.depthwise = true;
  EXPECT_EQ(dw.effective_groups(), 4);
  EXPECT_EQ(dw.channel_multiplier(), 2);
  EXPECT_EQ(dw.weight_elements(), 8 * 9);
  dw.output_feature_channels = 6;
  expect_error([&] { dw.validate(); }, ErrorCode::invalid_argument, "multiple of input feature channels");
}

TEST(Descriptor, BatchNormFoldFormula) {
  ConvolutionDescriptor d(1, 1, 2, 2);
  d.set_batch_normalization_parameters_for_inference({1, 0}, {}, {3, 1}, {}, 0.0f);  // var = 1, beta = 0 defaults
  std::vector<float> w = {1, 2, 3, 4}, b = {10, 20};
  d.fold_batch_norm(w.data(), b.data());
  // I = gamma/sqrt(1) = {3, 1}; J = −I·mean = {−3, 0}.
  EXPECT_EQ(w, (std::vector<float>{3, 6, 3, 4}));
  EXPECT_EQ(b, (std::vector<float>{27, 20}));
  expect_error([&] { d.set_batch_normalization_parameters_for_inference({1}, {}, {}, {}, 0); },
               ErrorCode::invalid_argument, "mean has 1 values");
  ConvolutionDescriptor e(1, 1, 1, 1);
  e.set_batch_normalization_parameters_for_inference({}, {-1}, {}, {}, 0.5f);
  expect_error([&] { e.validate(); }, ErrorCode::invalid_argument, "variance[0] + epsilon");
}

TEST(Descriptor, NeuronAliasesCopyEqualityCoding) {
  ConvolutionDescriptor d(4, 2, 6, 3);
  d.stride_x = 2;
  d.dilation_y = 3;
  d.groups = 3;
  d.set_neuron_type(NeuronType::relu_n, 0.25f, 6.0f);
  EXPECT_EQ(d.neuron_type(), NeuronType::relu_n);
  EXPECT_EQ(d.neuron_parameter_a(), 0.25f);
  EXPECT_EQ(d.neuron_parameter_b(), 6.0f);
  d.set_batch_normalization_parameters_for_inference({0.5f, 1, 2}, {1, 2, 3}, {}, {0, 0.125f, 1}, 1e-5f);
  expect_error([&] { d.set_neuron_to_prelu({1, 2, 3}); }, ErrorCode::unsupported, "PReLU");
  ConvolutionDescriptor c = d;  // NSCopying: all fields
  EXPECT_EQ(c, d);
  c.kernel_height = 3;
  EXPECT_FALSE(c == d);
  io::Encoder e;
  d.encode_to(e, "desc");
  const auto bytes = e.to_bytes();
  const ConvolutionDescriptor back = ConvolutionDescriptor::decode(io::Decoder::from_bytes(bytes.data(), bytes.size()), "desc");
  EXPECT_EQ(back, d);
  EXPECT_NE(d.describe().find("4x2"), std::string::npos);
  // A decoded invalid descriptor is a format error.
  ConvolutionDescriptor bad(1, 1, 1, 1);
  bad.groups = 2;
  io::Encoder e2;
  bad.encode_to(e2);
  const auto b2 = e2.to_bytes();
  expect_error([&] { ConvolutionDescriptor::decode(io::Decoder::from_bytes(b2.data(), b2.size())); },
               ErrorCode::format_error, "groups (2)");
}

TEST(ArrayDataSource, LoadPurgeStorageAndCopy) {
  ConvolutionDescriptor d(1, 1, 1, 2);
  ArrayDataSource ds(d, {1.0f + 1.0f / 4096.0f, 2.0f}, {0.5f, -0.5f}, DataType::float16, "lbl");
  EXPECT_EQ(ds.data_type(), DataType::float16);
  EXPECT_EQ(ds.label(), "lbl");
  EXPECT_EQ(ds.weights(), nullptr) << "no data before load()";
  ASSERT_TRUE(ds.load());
  EXPECT_EQ(ds.load_count(), 1);
  const uint16_t* h = static_cast<const uint16_t*>(ds.weights());
  EXPECT_EQ(h[0], 0x3c00);  // 1 + 2^-12 rounds to 1.0 in fp16
  EXPECT_EQ(ds.bias_terms()[1], -0.5f);
  ds.purge();
  EXPECT_EQ(ds.load_count(), 0);
  EXPECT_EQ(ds.total_loads(), 1);
  EXPECT_EQ(ds.weights_as_floats(), (std::vector<float>{1.0f, 2.0f}));
  auto c = ds.copy();
  ds.set_weights({5, 6});
  auto* ac = dynamic_cast<ArrayDataSource*>(c.get());
  ASSERT_NE(ac, nullptr);
  EXPECT_EQ(ac->weights_as_floats(), (std::vector<float>{1.0f, 2.0f})) << "copy() is deep";
  EXPECT_EQ(ds.weights_layout(), WeightsLayout::ohwi);
  EXPECT_EQ(ds.weights_quantization_type(), WeightsQuantizationType::none);
  EXPECT_FALSE(ds.kernel_weights_data_type().has_value());
  expect_error([&] { ds.set_weights({1}); }, ErrorCode::invalid_argument, "1 values given, 2 expected");
  expect_error([&] { ArrayDataSource(d, {1, 2, 3}); }, ErrorCode::invalid_argument, "needs Nout·kH·kW·Nin/G = 2");
  expect_error([&] { ArrayDataSource(d, {1, 2}, {1}); }, ErrorCode::invalid_argument, "1 biases given");
}

TEST(ArrayDataSource, UpdateHooksApplySgd) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(1, 1, 1, 2);
  auto ds = std::make_shared<ArrayDataSource>(d, std::vector<float>{1, 2}, std::vector<float>{3, 4});
  ds->set_learning_rate(0.5f);
  ConvolutionTranspose f(dev, ds);
  ConvolutionTransposeGradient g(dev, ds);
  Image x = make_image(dev, {2}, 1, 1, 1, 1), gy = make_image(dev, {1, -2}, 1, 1, 1, 2);
  CommandBuffer cb(dev);
  ConvolutionTransposeGradientState st;
  f.encode(cb, x, ConvolutionGradientState(), st, false);
  g.encode(cb, gy, x, st);
  ConvolutionWeightsAndBiasesState wb = f.export_weights_and_biases(cb, false);
  run(cb);
  // gW = gY·x = {2, −4}, gB = {1, −2}.
  ASSERT_TRUE(ds->update(st, wb));  // CPU style
  EXPECT_EQ(ds->weights_as_floats(), (std::vector<float>{0, 4}));
  EXPECT_EQ(ds->biases(), (std::vector<float>{2.5f, 5}));
  f.reload_weights_and_biases_from_data_source();
  EXPECT_EQ(f.current_weights(), (std::vector<float>{0, 4}));
  // GPU style: in place on the state, then the kernels reload from it.
  CommandBuffer cb2(dev);
  ConvolutionWeightsAndBiasesState out = ds->update(cb2, st, wb);
  EXPECT_TRUE(out.same_object(wb));
  f.reload_weights_and_biases(cb2, out);
  run(cb2);
  EXPECT_EQ(buffer_floats(wb.weights()), (std::vector<double>{0, 4}));
  EXPECT_EQ(buffer_floats(wb.biases()), (std::vector<double>{2.5, 5}));
  EXPECT_EQ(f.current_biases(), (std::vector<float>{2.5f, 5}));
  // The protocol defaults: no update.
  struct Plain : ArrayDataSource {
    using ArrayDataSource::ArrayDataSource;
    bool update(const ConvolutionGradientState& a, const ConvolutionWeightsAndBiasesState& b) override {
      return ConvolutionDataSource::update(a, b);
    }
  };
  Plain p(d, {1, 2});
  EXPECT_FALSE(p.update(st, wb));
}

TEST(WeightsAndBiasesState, ConstructionAndResources) {
  Device dev = Device::cpu(1);
  ConvolutionDescriptor d(3, 3, 4, 2);
  d.groups = 2;
  ConvolutionWeightsAndBiasesState s(dev, d);
  EXPECT_EQ(s.weight_count(), 2 * 9 * 2);
  EXPECT_EQ(s.bias_count(), 2);
  EXPECT_EQ(s.resource_count(), 2);
  EXPECT_EQ(s.buffer_size(0), static_cast<size_t>(36 * 4));
  EXPECT_EQ(s.resource_size(), static_cast<size_t>(38 * 4));
  expect_error([&] { s.resource(2); }, ErrorCode::invalid_argument, "resource index 2");
  EXPECT_FALSE(s.is_temporary());
  EXPECT_EQ(s.read_count(), 0);
  s.set_label("wb");
  EXPECT_EQ(s.label(), "wb");
  CommandBuffer cb(dev);
  auto t = ConvolutionWeightsAndBiasesState::temporary(cb, d);
  EXPECT_TRUE(t.is_temporary());
  ConvolutionWeightsAndBiasesState exact(Buffer::allocate(dev, 8), Buffer());
  EXPECT_EQ(exact.weight_count(), 2);
  EXPECT_EQ(exact.bias_data(), nullptr);
  expect_error([&] { ConvolutionWeightsAndBiasesState(Buffer::allocate(dev, 6), Buffer()); }, ErrorCode::invalid_argument,
               "6 bytes is not a positive multiple of 4");
  expect_error([&] { ConvolutionWeightsAndBiasesState(Buffer::allocate(dev, 200), 0, Buffer::allocate(dev, 4), 0, d); },
               ErrorCode::invalid_argument, "biases offset 0 + 8 bytes");
  ConvolutionWeightsAndBiasesState null;
  expect_error([&] { null.weights(); }, ErrorCode::invalid_argument, "null state");
}
