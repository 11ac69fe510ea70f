// The training companions wired into a real training step (spec a.9.5, without a graph):
// ConvolutionTranspose (with its gradient state) → sigmoid NeuronKernel → MSELoss → NeuronGradient →
// ConvolutionTransposeGradient (fills the state's weight/bias gradients) → OptimizerAdam on the convolution
// states, in place on the weights-and-biases state → reload of both kernels from that state.
// Checks that the optimizer read exactly the gradients the gradient kernel wrote (replayed with the engine
// rule) and that a few steps fit a teacher layer's output (the loss falls by a large factor).
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <vector>

#include "core/optimizer_math.hpp"
#include "tconv/convolution_transpose.hpp"
#include "tconv/convolution_transpose_gradient.hpp"
#include "tconv/data_source.hpp"
#include "tconv/loss.hpp"
#include "tconv/neuron.hpp"
#include "tconv/optimizer.hpp"

using namespace tconv;

namespace {

std::vector<float> random_floats(size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<float> floats_of(const Buffer& b, size_t offset, size_t count) {
  std::vector<float> v(count);
  b.copy_to_host(v.data(), count * 4, offset);
  return v;
}

}  // namespace

TEST(TrainingStep, TransposeSigmoidMseAdamThroughStates) {
  const Device dev = Device::cpu(2);
  ConvolutionDescriptor desc(3, 3, 2, 3);  // transpose: 2 → 3 channels, 3×3, upsampling 2
  desc.stride_x = desc.stride_y = 2;
  const size_t nw = 3 * 3 * 3 * 2, nb = 3;

  // Teacher: fixed weights produce the targets.
  auto teacher_ds = std::make_shared<ArrayDataSource>(desc, random_floats(nw, 1, 0.8f), random_floats(nb, 2, 0.3f));
  ConvolutionTranspose teacher(dev, teacher_ds);
  Image x(dev, {.width = 5, .height = 4, .feature_channels = 2, .number_of_images = 3});
  for (int64_t n = 0; n < 3; ++n) {
    auto v = random_floats(static_cast<size_t>(x.elements_per_image()), 10 + n, 1.0f);
    x.write_floats(v.data(), ImageLayout::hwc, n);
  }
  NeuronKernel sigmoid(dev, {NeuronType::sigmoid});
  NeuronGradient sigmoid_grad(dev, {NeuronType::sigmoid});
  Image target;
  {
    CommandBuffer cb(dev);
    target = sigmoid.encode(cb, teacher.encode(cb, x, ConvolutionGradientState()));
    cb.commit();
    cb.wait_and_check();
  }

  // Student: starts elsewhere; its weights live in a weights-and-biases state the optimizer updates.
  const auto w0 = random_floats(nw, 3, 0.8f), b0 = random_floats(nb, 4, 0.3f);
  auto ds = std::make_shared<ArrayDataSource>(desc, w0, b0);
  ConvolutionTranspose fwd(dev, ds);
  ConvolutionTransposeGradient bwd(dev, ds);
  bwd.set_gradient_option(GradientOption::weights_and_bias);
  ConvolutionWeightsAndBiasesState wb(Buffer::from_host(dev, w0.data(), nw * 4),
                                      Buffer::from_host(dev, b0.data(), nb * 4));
  OptimizerAdam adam(dev, AdamParameters{}, OptimizerDescriptor{.learning_rate = 0.05f});
  std::vector<Buffer> m{Buffer::allocate(dev, nw * 4), Buffer::allocate(dev, nb * 4)};
  std::vector<Buffer> v{Buffer::allocate(dev, nw * 4), Buffer::allocate(dev, nb * 4)};
  MSELoss mse(dev);
  Buffer loss = Buffer::allocate(dev, 4);

  std::vector<float> losses;
  for (int step = 0; step < 40; ++step) {
    const auto w_before = floats_of(wb.weights(), 0, nw);
    CommandBuffer cb(dev);
    ConvolutionTransposeGradientState st;
    Image y = fwd.encode(cb, x, ConvolutionGradientState(), st, false);
    Image p = sigmoid.encode(cb, y);
    mse.encode_forward(cb, p, target, loss);
    Image gp = mse.encode_gradient(cb, p, target);
    Image gy = sigmoid_grad.encode(cb, gp, y);
    bwd.encode(cb, gy, x, st);
    adam.encode(cb, st, wb, m, v, wb);
    fwd.reload_weights_and_biases(cb, wb);
    bwd.reload_weights_and_biases(cb, wb);
    cb.commit();
    cb.wait_and_check();
    losses.push_back(floats_of(loss, 0, 1)[0]);
    if (step == 0) {
      // Replay the first update from the gradients the kernel left in the state.
      std::vector<float> g = floats_of(st.gradient_for_weights(), 0, nw), w = w_before, mm(nw, 0), vv(nw, 0);
      core::adam_update({.learning_rate = 0.05f}, core::adam_params(0.9, 0.999, 1e-8f),
                        core::adam_step_size(0.05f, 0.9, 0.999, 1), {g.data(), w.data(), w.data(),
                        static_cast<int64_t>(nw)}, mm.data(), vv.data(), nullptr, 1);
      EXPECT_EQ(floats_of(wb.weights(), 0, nw), w);
      EXPECT_NE(w, w_before);
    }
  }
  EXPECT_EQ(adam.time_step(), 40u);
  EXPECT_LT(losses.back(), 0.2f * losses.front()) << "first " << losses.front() << " last " << losses.back();
}
