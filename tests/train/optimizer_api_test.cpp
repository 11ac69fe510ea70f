// Optimizer object API (include/tconv/optimizer.hpp): vector and convolution-state encodes run in
// command-buffer order and update through the states' buffers and byte offsets exactly as the engine rules
// (tested against float64 in optimizer_math_test) do; Adam's time step advances once per encode; biases are
// skipped with a single state entry; every validation error names its values.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/optimizer_math.hpp"
#include "tconv/convolution_transpose.hpp"
#include "tconv/data_source.hpp"
#include "tconv/optimizer.hpp"

using namespace tconv;
namespace tc = tconv::core;

namespace {

std::vector<float> random_floats(size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

Buffer buffer_of(const Device& dev, const std::vector<float>& v) {
  return Buffer::from_host(dev, v.data(), v.size() * sizeof(float));
}
std::vector<float> floats_of(const Buffer& b, size_t offset_bytes, size_t count) {
  std::vector<float> v(count);
  b.copy_to_host(v.data(), count * 4, offset_bytes);
  return v;
}

// A transposed-convolution layer's gradient state (3×3 kernel, 2 → 4 channels: 72 weights, 4 biases), made by
// the layer's state factory and filled with known gradients, and a weights-and-biases state living at byte
// offsets inside larger buffers.
struct Layer {
  Device dev = Device::cpu(2);
  ConvolutionDescriptor desc{3, 3, 2, 4};
  ConvolutionTransposeGradientState grad;
  std::vector<float> gw, gb, w0, b0;
  Buffer wbuf, bbuf;
  static constexpr size_t kWOff = 16, kBOff = 8;  // bytes
  ConvolutionWeightsAndBiasesState wb;

  Layer() {
    ConvolutionTranspose layer(dev, std::make_shared<ArrayDataSource>(desc, std::vector<float>(72, 0.0f),
                                                                      std::vector<float>(4, 0.0f)));
    const Image x(dev, {.width = 4, .height = 4, .feature_channels = 2});
    const Image y(dev, {.width = 4, .height = 4, .feature_channels = 4});
    grad = layer.result_state(x, {}, y);
    gw = random_floats(72, 1);
    gb = random_floats(4, 2);
    Buffer gwb = grad.gradient_for_weights(), gbb = grad.gradient_for_biases();
    gwb.copy_from_host(gw.data(), 72 * 4);
    gbb.copy_from_host(gb.data(), 4 * 4);
    w0 = random_floats(72, 3);
    b0 = random_floats(4, 4);
    wbuf = Buffer::allocate(dev, kWOff + 72 * 4 + 12);
    bbuf = Buffer::allocate(dev, kBOff + 4 * 4);
    wbuf.copy_from_host(w0.data(), 72 * 4, kWOff);
    bbuf.copy_from_host(b0.data(), 4 * 4, kBOff);
    wb = ConvolutionWeightsAndBiasesState(wbuf, kWOff, bbuf, kBOff, desc);
  }
  std::vector<float> weights() const { return floats_of(wbuf, kWOff, 72); }
  std::vector<float> biases() const { return floats_of(bbuf, kBOff, 4); }
};

// Expects `fn` to throw Error(invalid_argument) whose message contains every fragment.
template <class F>
void expect_invalid(F&& fn, std::vector<std::string> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(OptimizerApi, DescriptorDefaultsFollowMps) {
  OptimizerDescriptor d;
  EXPECT_EQ(d.learning_rate, 0.001f);
  EXPECT_EQ(d.gradient_rescale, 1.0f);
  EXPECT_FALSE(d.apply_gradient_clipping);
  EXPECT_EQ(d.regularization_type, RegularizationType::none);
  EXPECT_EQ(d.regularization_scale, 0.0f);
  const Device dev = Device::cpu(1);
  OptimizerRMSProp rms(dev, 0.01f);
  EXPECT_EQ(rms.decay(), 0.9);
  EXPECT_EQ(rms.epsilon(), 1e-8f);
  OptimizerAdam adam(dev, 0.01f);
  EXPECT_EQ(adam.beta1(), 0.9);
  EXPECT_EQ(adam.beta2(), 0.999);
  EXPECT_EQ(adam.epsilon(), 1e-8f);
  EXPECT_EQ(adam.time_step(), 0u);
  EXPECT_FALSE(adam.amsgrad());
  OptimizerSGD sgd(dev, 0.5f);
  EXPECT_EQ(sgd.learning_rate(), 0.5f);
  EXPECT_EQ(sgd.momentum_scale(), 0.0f);
  EXPECT_FALSE(sgd.use_nesterov_momentum());
  sgd.set_learning_rate(0.25f);
  EXPECT_EQ(sgd.learning_rate(), 0.25f);
}

TEST(OptimizerApi, SgdVectorFormRunsInCommandBufferOrderAndInPlace) {
  const Device dev = Device::cpu(2);
  const auto w0 = random_floats(100, 5), g1 = random_floats(100, 6);
  Buffer w = buffer_of(dev, w0), g = Buffer::allocate(dev, 400), m = Buffer::allocate(dev, 400);
  OptimizerDescriptor d{.learning_rate = 0.1f, .regularization_type = RegularizationType::l2,
                        .regularization_scale = 0.01f};
  OptimizerSGD sgd(dev, 0.9f, true, d);
  CommandBuffer cb(dev);
  // The gradient is written by an earlier command: the update must see it.
  cb.encode("write gradient", [g, g1]() mutable { g.copy_from_host(g1.data(), 400); });
  sgd.encode(cb, g, w, FloatVector(m), w);
  EXPECT_EQ(floats_of(w, 0, 100), w0);  // nothing runs before commit
  cb.commit();
  cb.wait_and_check();
  std::vector<float> ew = w0, em(100, 0.0f);
  tc::OptimizerCommon c{.learning_rate = 0.1f, .regularization = tc::Regularization::l2, .regularization_scale = 0.01f};
  tc::sgd_update(c, {0.9f, true}, {g1.data(), ew.data(), ew.data(), 100}, em.data(), 1);
  EXPECT_EQ(floats_of(w, 0, 100), ew);
  EXPECT_EQ(floats_of(m, 0, 100), em);
}

TEST(OptimizerApi, VectorRangesUseOffsetsAndLengths) {
  const Device dev = Device::cpu(1);
  std::vector<float> big(10, 1.0f), grad(10, 2.0f);
  Buffer v = buffer_of(dev, big), g = buffer_of(dev, grad), s = Buffer::allocate(dev, 40);
  OptimizerRMSProp rms(dev, 0.5, 0.0f, {.learning_rate = 0.25f});
  CommandBuffer cb(dev);
  // Elements 2..5 only: s = 0.5·4 = 2, w = 1 − 0.25·2/sqrt(2).
  rms.encode(cb, FloatVector(g, 8, 4), FloatVector(v, 8, 4), FloatVector(s, 8, 4), FloatVector(v, 8, 4));
  cb.commit();
  cb.wait_and_check();
  const auto out = floats_of(v, 0, 10), so = floats_of(s, 0, 10);
  for (int i = 0; i < 10; ++i) {
    const bool in = i >= 2 && i < 6;
    EXPECT_FLOAT_EQ(out[i], in ? 1.0f - 0.25f * 2.0f / std::sqrt(2.0f) : 1.0f) << i;
    EXPECT_EQ(so[i], in ? 2.0f : 0.0f) << i;
  }
}

TEST(OptimizerApi, AdamConvolutionStateUpdatesWeightsAndBiasesInPlace) {
  Layer L;
  OptimizerAdam adam(L.dev, {.time_step = 4}, {.learning_rate = 0.01f});
  std::vector<Buffer> m{Buffer::allocate(L.dev, 72 * 4), Buffer::allocate(L.dev, 4 * 4)};
  std::vector<Buffer> v{Buffer::allocate(L.dev, 72 * 4), Buffer::allocate(L.dev, 4 * 4)};
  CommandBuffer cb(L.dev);
  adam.encode(cb, L.grad, L.wb, m, v, L.wb);
  EXPECT_EQ(adam.time_step(), 5u);  // advanced once at encode, for weights and biases together
  cb.commit();
  cb.wait_and_check();
  const auto ap = tc::adam_params(0.9, 0.999, 1e-8f);
  const float step = tc::adam_step_size(0.01f, 0.9, 0.999, 5);
  tc::OptimizerCommon c{.learning_rate = 0.01f};
  std::vector<float> ew = L.w0, eb = L.b0, mw(72, 0), vw(72, 0), mb(4, 0), vb(4, 0);
  tc::adam_update(c, ap, step, {L.gw.data(), ew.data(), ew.data(), 72}, mw.data(), vw.data(), nullptr, 1);
  tc::adam_update(c, ap, step, {L.gb.data(), eb.data(), eb.data(), 4}, mb.data(), vb.data(), nullptr, 1);
  EXPECT_EQ(L.weights(), ew);
  EXPECT_EQ(L.biases(), eb);
  EXPECT_EQ(floats_of(m[1], 0, 4), mb);
  EXPECT_EQ(floats_of(v[0], 0, 72), vw);
  // The bytes around the sub-ranges are untouched.
  EXPECT_EQ(floats_of(L.wbuf, 0, 4), std::vector<float>(4, 0.0f));
  EXPECT_EQ(floats_of(L.wbuf, Layer::kWOff + 72 * 4, 3), std::vector<float>(3, 0.0f));
}

TEST(OptimizerApi, AmsGradConvolutionStateToSeparateResult) {
  Layer L;
  OptimizerAdam adam(L.dev, {.amsgrad = true}, {.learning_rate = 0.01f});
  std::vector<Buffer> m{Buffer::allocate(L.dev, 72 * 4), Buffer::allocate(L.dev, 16)};
  std::vector<Buffer> v{Buffer::allocate(L.dev, 72 * 4), Buffer::allocate(L.dev, 16)};
  const std::vector<float> vmax0(72, 0.5f);
  std::vector<Buffer> vmax{buffer_of(L.dev, vmax0), Buffer::allocate(L.dev, 16)};
  ConvolutionWeightsAndBiasesState result(L.dev, L.desc);
  CommandBuffer cb(L.dev);
  adam.encode(cb, L.grad, L.wb, m, v, vmax, result);
  cb.commit();
  cb.wait_and_check();
  std::vector<float> ew = L.w0, mw(72, 0), vw(72, 0), vm = vmax0;
  tc::adam_update({.learning_rate = 0.01f}, tc::adam_params(0.9, 0.999, 1e-8f),
                  tc::adam_step_size(0.01f, 0.9, 0.999, 1),
                  {L.gw.data(), L.w0.data(), ew.data(), 72}, mw.data(), vw.data(), vm.data(), 1);
  EXPECT_EQ(floats_of(result.weights(), result.weights_offset(), 72), ew);
  EXPECT_EQ(floats_of(vmax[0], 0, 72), vm);
  EXPECT_EQ(L.weights(), L.w0);  // the source is only read
}

TEST(OptimizerApi, SingleMomentumEntryLeavesBiasesAlone) {
  Layer L;
  OptimizerSGD sgd(L.dev, 0.5f, false, {.learning_rate = 0.1f});
  std::vector<Buffer> m{Buffer::allocate(L.dev, 72 * 4)};
  CommandBuffer cb(L.dev);
  sgd.encode(cb, L.grad, L.wb, m, L.wb);
  cb.commit();
  cb.wait_and_check();
  EXPECT_EQ(L.biases(), L.b0);
  std::vector<float> ew = L.w0, em(72, 0);
  tc::sgd_update({.learning_rate = 0.1f}, {0.5f, false}, {L.gw.data(), ew.data(), ew.data(), 72}, em.data(), 1);
  EXPECT_EQ(L.weights(), ew);
}

TEST(OptimizerApi, SgdWithoutMomentumUpdatesBiasesToo) {
  Layer L;
  OptimizerSGD sgd(L.dev, 0.5f);
  CommandBuffer cb(L.dev);
  sgd.encode(cb, L.grad, L.wb, {}, L.wb);
  cb.commit();
  cb.wait_and_check();
  const auto w = L.weights(), b = L.biases();
  for (int i = 0; i < 72; ++i) EXPECT_EQ(w[i], L.w0[i] - 0.5f * L.gw[i]);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b[i], L.b0[i] - 0.5f * L.gb[i]);
}

TEST(OptimizerApi, RmsPropConvolutionStateWithBiases) {
  Layer L;
  OptimizerRMSProp rms(L.dev, 0.95, 1e-6f, {.learning_rate = 0.02f, .gradient_rescale = 0.5f});
  std::vector<Buffer> s{Buffer::allocate(L.dev, 72 * 4), Buffer::allocate(L.dev, 16)};
  CommandBuffer cb(L.dev);
  rms.encode(cb, L.grad, L.wb, s, L.wb);
  cb.commit();
  cb.wait_and_check();
  std::vector<float> eb = L.b0, sb(4, 0);
  tc::rmsprop_update({.learning_rate = 0.02f, .gradient_rescale = 0.5f}, tc::rmsprop_params(0.95, 1e-6f),
                     {L.gb.data(), eb.data(), eb.data(), 4}, sb.data(), 1);
  EXPECT_EQ(L.biases(), eb);
  EXPECT_NE(L.weights(), L.w0);
}

TEST(OptimizerApi, AdamTimeStepIsPerObjectAndReadWrite) {
  const Device dev = Device::cpu(1);
  OptimizerAdam adam(dev, 0.1f);
  Buffer w = buffer_of(dev, {1.0f}), g = buffer_of(dev, {0.5f}), m = Buffer::allocate(dev, 4),
         v = Buffer::allocate(dev, 4);
  CommandBuffer cb(dev);
  adam.encode(cb, g, w, m, v, std::nullopt, w);
  adam.encode(cb, g, w, m, v, std::nullopt, w);
  EXPECT_EQ(adam.time_step(), 2u);
  adam.set_time_step(10);
  adam.encode(cb, g, w, m, v, std::nullopt, w);
  EXPECT_EQ(adam.time_step(), 11u);
  // A refused encode does not advance the counter.
  EXPECT_THROW(adam.encode(cb, g, w, m, v, FloatVector(m), w), Error);
  EXPECT_EQ(adam.time_step(), 11u);
  cb.commit();
  cb.wait_and_check();
  // Replay with the engine: steps 1, 2 then 11.
  float ew = 1.0f, em = 0.0f, ev = 0.0f, eg = 0.5f;
  const auto ap = tc::adam_params(0.9, 0.999, 1e-8f);
  for (int t : {1, 2, 11})
    tc::adam_update({.learning_rate = 0.1f}, ap, tc::adam_step_size(0.1f, 0.9, 0.999, t), {&eg, &ew, &ew, 1}, &em,
                    &ev, nullptr, 1);
  EXPECT_EQ(floats_of(w, 0, 1)[0], ew);
}

TEST(OptimizerApi, ConstructionErrorsNameTheValues) {
  const Device dev = Device::cpu(1);
  expect_invalid([&] { OptimizerSGD(dev, std::nanf("")); }, {"learning_rate"});
  expect_invalid([&] { OptimizerSGD(dev, 0.0f, false, {.gradient_rescale = INFINITY}); }, {"gradient_rescale"});
  expect_invalid([&] { OptimizerSGD(dev, INFINITY, false, {}); }, {"momentum_scale"});
  expect_invalid([&] { OptimizerSGD(dev, 0.0f, false, {.apply_gradient_clipping = true, .gradient_clip_max = -1,
                                                        .gradient_clip_min = 1}); },
                 {"gradient_clip_min 1", "gradient_clip_max -1"});
  expect_invalid([&] { OptimizerSGD(dev, 0.0f, false, {.regularization_type = RegularizationType(7)}); },
                 {"regularization_type 7"});
  expect_invalid([&] { OptimizerSGD(dev, 0.0f, false, {.regularization_scale = NAN}); }, {"regularization_scale"});
  expect_invalid([&] { OptimizerRMSProp(dev, 1.5, 1e-8f, {}); }, {"decay 1.5"});
  expect_invalid([&] { OptimizerRMSProp(dev, 0.9, -1.0f, {}); }, {"epsilon -1"});
  expect_invalid([&] { OptimizerAdam(dev, {.beta1 = 1.0}, {}); }, {"beta1 1"});
  expect_invalid([&] { OptimizerAdam(dev, {.beta2 = -0.1}, {}); }, {"beta2 -0.1"});
  expect_invalid([&] { OptimizerAdam(dev, {.epsilon = NAN}, {}); }, {"epsilon"});
  OptimizerSGD ok(dev, 0.1f);
  expect_invalid([&] { ok.set_learning_rate(INFINITY); }, {"learning_rate"});
}

TEST(OptimizerApi, VectorEncodeErrorsNameTheValues) {
  const Device dev = Device::cpu(1);
  Buffer a = Buffer::allocate(dev, 40), b = Buffer::allocate(dev, 36), c = Buffer::allocate(dev, 40);
  CommandBuffer cb(dev);
  OptimizerSGD sgd(dev, 0.9f, false, {});
  expect_invalid([&] { sgd.encode(cb, a, a, std::nullopt, a); }, {"momentum_scale is 0.9"});
  expect_invalid([&] { sgd.encode(cb, a, b, FloatVector(c), a); }, {"input values has 9 values", "has 10"});
  expect_invalid([&] { sgd.encode(cb, a, a, FloatVector(b), a); }, {"input momentum has 9"});
  expect_invalid([&] { sgd.encode(cb, a, a, FloatVector(c), FloatVector(c, 2)); }, {"result values", "offset 2"});
  expect_invalid([&] { sgd.encode(cb, FloatVector(a, 8, 9), a, FloatVector(c), a); },
                 {"input gradient", "9 float32 values", "from byte offset 8", "44 bytes", "has 40"});
  expect_invalid([&] { sgd.encode(cb, Buffer(), a, FloatVector(c), a); }, {"input gradient is a null buffer"});
  expect_invalid([&] { sgd.encode(cb, FloatVector(a, 44), a, FloatVector(c), a); }, {"past the buffer's end"});
  expect_invalid([&] { sgd.encode(cb, FloatVector(a, 0, -5), a, FloatVector(c), a); }, {"length -5 is negative"});
  OptimizerRMSProp rms(dev, 0.1f);
  expect_invalid([&] { rms.encode(cb, a, a, b, a); }, {"OptimizerRMSProp", "input sum of squares has 9"});
  OptimizerAdam adam(dev, 0.1f);
  expect_invalid([&] { adam.encode(cb, a, a, a, b, std::nullopt, a); }, {"input velocity has 9"});
  expect_invalid([&] { adam.encode(cb, a, a, a, a, FloatVector(c), a); }, {"amsgrad is off"});
  OptimizerAdam ams(dev, {.amsgrad = true}, {});
  expect_invalid([&] { ams.encode(cb, a, a, a, a, std::nullopt, a); }, {"amsgrad is on"});
  expect_invalid([&] { ams.encode(cb, a, a, a, a, FloatVector(b), a); }, {"maximum velocity has 9"});
}

TEST(OptimizerApi, StateEncodeErrorsNameTheValues) {
  Layer L;
  CommandBuffer cb(L.dev);
  Buffer mw = Buffer::allocate(L.dev, 72 * 4), mb = Buffer::allocate(L.dev, 16), small = Buffer::allocate(L.dev, 8);
  OptimizerSGD sgd(L.dev, 0.5f, false, {});
  ConvolutionWeightsAndBiasesState null_state;
  expect_invalid([&] { sgd.encode(cb, ConvolutionGradientState(), L.wb, {mw}, L.wb); }, {"gradient state is null"});
  expect_invalid([&] { sgd.encode(cb, L.grad, null_state, {mw}, L.wb); }, {"source", "null"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {mw}, null_state); }, {"result", "null"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {}, L.wb); }, {"momentum_scale is 0.5"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {mw, mb, mb}, L.wb); }, {"input momentum has 3 entries"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {small}, L.wb); },
                 {"input momentum[0]", "holds 2", "72 are needed"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {mw, small}, L.wb); }, {"input momentum[1]", "4 are needed"});
  // Weights of another shape (3×3, 2 → 8 channels: 144 weights).
  ConvolutionWeightsAndBiasesState other(L.dev, ConvolutionDescriptor{3, 3, 2, 8});
  expect_invalid([&] { sgd.encode(cb, L.grad, other, {mw}, L.wb); }, {"source state has 144 weights", "72"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {mw}, other); }, {"result state has 144 weights", "72"});
  // Biases requested from a state without biases.
  ConvolutionWeightsAndBiasesState no_bias(L.wbuf, Layer::kWOff, Buffer(), 0, L.desc);
  expect_invalid([&] { sgd.encode(cb, L.grad, no_bias, {mw, mb}, L.wb); }, {"source state has 0 biases", "4"});
  expect_invalid([&] { sgd.encode(cb, L.grad, L.wb, {mw, mb}, no_bias); }, {"result state has 0 biases"});
  OptimizerRMSProp rms(L.dev, 0.1f);
  expect_invalid([&] { rms.encode(cb, L.grad, L.wb, {}, L.wb); }, {"input sum of squares has 0 entries"});
  OptimizerAdam adam(L.dev, 0.1f);
  expect_invalid([&] { adam.encode(cb, L.grad, L.wb, {mw, mb}, {mw}, L.wb); },
                 {"input velocity has 1 entries", "input momentum has 2"});
  expect_invalid([&] { adam.encode(cb, L.grad, L.wb, {mw}, {mw}, {mw}, L.wb); }, {"amsgrad is off"});
  OptimizerAdam ams(L.dev, {.amsgrad = true}, {});
  expect_invalid([&] { ams.encode(cb, L.grad, L.wb, {mw}, {mw}, L.wb); }, {"amsgrad is on"});
  expect_invalid([&] { ams.encode(cb, L.grad, L.wb, {mw}, {mw}, {}, L.wb); }, {"maximum velocity has 0 entries"});
  EXPECT_EQ(adam.time_step(), 0u);
  EXPECT_EQ(ams.time_step(), 0u);
  // Nothing was encoded by the refused calls: committing changes nothing.
  cb.commit();
  cb.wait_and_check();
  EXPECT_EQ(L.weights(), L.w0);
}
