// Tests of the main job's model (tools/tconv/train_model.*):
//  - its forward pass equals the PyTorch model it claims to be (Conv2d/ConvTranspose2d with padding 1,
//    computed here from the definitions in float64 on the model's own weights, in PyTorch's layout) — this
//    checks the whole MPS geometry, including the transposes sized by the convolutions' gradient states;
//  - its first Adam step moves every weight by at most lr in the direction against the gradient (Adam's
//    first step is lr·sign(g) up to ε), i.e. the gradients reach every layer through the optimizer;
//  - a short training run on Fashion-MNIST lowers the loss, and the saved model reloads to bit-identical
//    reconstructions and the same test MSE (the CI variant of the main job).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "tconv/device.hpp"
#include "train_data.hpp"
#include "train_model.hpp"
#include "train_rng.hpp"

namespace fs = std::filesystem;
using namespace tconv::cli::train;

namespace {

using Params = std::vector<std::pair<std::string, std::vector<float>>>;

const std::vector<float>& param(const Params& p, const std::string& name) {
  for (const auto& [n, v] : p)
    if (n == name) return v;
  ADD_FAILURE() << "no parameter " << name;
  static const std::vector<float> none;
  return none;
}

// PyTorch Conv2d (k4, s2, p1) on one image, CHW, float64.
std::vector<double> conv2d(const std::vector<double>& x, int64_t cin, int64_t hin, const std::vector<float>& w,
                           const std::vector<float>& b, int64_t cout) {
  const int64_t hout = hin / 2;
  std::vector<double> y(static_cast<std::size_t>(cout * hout * hout));
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t oy = 0; oy < hout; ++oy)
      for (int64_t ox = 0; ox < hout; ++ox) {
        double acc = b[o];
        for (int64_t c = 0; c < cin; ++c)
          for (int64_t q = 0; q < 4; ++q)
            for (int64_t p = 0; p < 4; ++p) {
              const int64_t iy = oy * 2 - 1 + q, ix = ox * 2 - 1 + p;
              if (iy < 0 || ix < 0 || iy >= hin || ix >= hin) continue;
              acc += w[((o * cin + c) * 4 + q) * 4 + p] * x[(c * hin + iy) * hin + ix];
            }
        y[(o * hout + oy) * hout + ox] = acc;
      }
  return y;
}

// PyTorch ConvTranspose2d (k4, s2, p1): weight [cin][cout][4][4]; scatter form of the definition.
std::vector<double> conv_transpose2d(const std::vector<double>& x, int64_t cin, int64_t hin,
                                     const std::vector<float>& w, const std::vector<float>& b, int64_t cout) {
  const int64_t hout = hin * 2;
  std::vector<double> y(static_cast<std::size_t>(cout * hout * hout));
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t i = 0; i < hout * hout; ++i) y[o * hout * hout + i] = b[o];
  for (int64_t c = 0; c < cin; ++c)
    for (int64_t iy = 0; iy < hin; ++iy)
      for (int64_t ix = 0; ix < hin; ++ix)
        for (int64_t o = 0; o < cout; ++o)
          for (int64_t q = 0; q < 4; ++q)
            for (int64_t p = 0; p < 4; ++p) {
              const int64_t oy = iy * 2 - 1 + q, ox = ix * 2 - 1 + p;
              if (oy < 0 || ox < 0 || oy >= hout || ox >= hout) continue;
              y[(o * hout + oy) * hout + ox] += w[((c * cout + o) * 4 + q) * 4 + p] * x[(c * hin + iy) * hin + ix];
            }
  return y;
}

void relu(std::vector<double>& v) {
  for (double& x : v) x = std::max(0.0, x);
}

std::vector<double> reference_forward(const Params& p, const float* image) {
  std::vector<double> x(image, image + kImagePixels);
  std::vector<double> h = conv2d(x, 1, 28, param(p, "enc1.weight"), param(p, "enc1.bias"), 32);
  relu(h);
  h = conv2d(h, 32, 14, param(p, "enc2.weight"), param(p, "enc2.bias"), 64);
  relu(h);
  h = conv_transpose2d(h, 64, 7, param(p, "dec1.weight"), param(p, "dec1.bias"), 32);
  relu(h);
  h = conv_transpose2d(h, 32, 14, param(p, "dec2.weight"), param(p, "dec2.bias"), 1);
  for (double& v : h) v = 1.0 / (1.0 + std::exp(-v));
  return h;
}

std::vector<float> random_images(int64_t n, uint64_t seed) {
  SplitMix64 r(seed);
  std::vector<float> v(static_cast<std::size_t>(n * kImagePixels));
  for (float& x : v) x = static_cast<float>(r.uniform01());
  return v;
}

std::string data_dir() {
  const char* env = std::getenv("TCONV_TEST_DATA");
  return env && *env ? env : kDefaultDataDir;
}

}  // namespace

TEST(TrainModel, ForwardEqualsThePyTorchModelDefinition) {
  AutoEncoder model(tconv::Device::cpu(2), 5, 1e-3f);
  const int64_t n = 3;
  const std::vector<float> images = random_images(n, 11);
  std::vector<float> out(images.size(), -1.0f);
  const double sse = model.reconstruct(images.data(), n, out.data());
  const Params p = model.torch_parameters();
  double ref_sse = 0;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<double> ref = reference_forward(p, images.data() + i * kImagePixels);
    ASSERT_EQ(ref.size(), static_cast<std::size_t>(kImagePixels));
    for (int64_t k = 0; k < kImagePixels; ++k) {
      ASSERT_NEAR(out[i * kImagePixels + k], ref[k], 2e-6) << "image " << i << " pixel " << k;
      const double d = ref[k] - images[i * kImagePixels + k];
      ref_sse += d * d;
    }
  }
  EXPECT_NEAR(sse, ref_sse, 1e-6 * ref_sse);
}

TEST(TrainModel, InitialisationFollowsPyTorchsDefaultBounds) {
  AutoEncoder model(tconv::Device::cpu(1), 9, 1e-3f);
  // bound = 1/sqrt(fan_in): Conv2d fan_in = in·16, ConvTranspose2d fan_in = out·16.
  const std::pair<const char*, double> bounds[] = {{"enc1", 1 / 4.0}, {"enc2", 1 / std::sqrt(512.0)},
                                                   {"dec1", 1 / std::sqrt(512.0)}, {"dec2", 1 / 4.0}};
  const Params p = model.torch_parameters();
  for (const auto& [layer, bound] : bounds) {
    for (const char* kind : {".weight", ".bias"}) {
      const std::vector<float>& v = param(p, std::string(layer) + kind);
      ASSERT_FALSE(v.empty());
      double maxabs = 0;
      for (float x : v) maxabs = std::max(maxabs, std::abs(static_cast<double>(x)));
      EXPECT_LE(maxabs, bound) << layer << kind;
      if (v.size() > 100) EXPECT_GT(maxabs, 0.9 * bound) << layer << kind;  // the range is used
    }
  }
  // The same seed gives the same weights; another seed different ones.
  EXPECT_EQ(model.fingerprint(), AutoEncoder(tconv::Device::cpu(1), 9, 1e-3f).fingerprint());
  EXPECT_NE(model.fingerprint(), AutoEncoder(tconv::Device::cpu(1), 10, 1e-3f).fingerprint());
}

TEST(TrainModel, FirstAdamStepMovesEveryLayerByAtMostTheLearningRate) {
  const float lr = 1e-3f;
  AutoEncoder model(tconv::Device::cpu(2), 3, lr);
  const Params before = model.torch_parameters();
  const std::vector<float> images = random_images(8, 4);
  const double loss = model.train_step(images.data(), 8);
  EXPECT_GT(loss, 0.0);
  const Params after = model.torch_parameters();
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t k = 0; k < before.size(); ++k) {
    const auto& b = before[k].second;
    const auto& a = after[k].second;
    ASSERT_EQ(a.size(), b.size());
    int64_t moved = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double d = std::abs(static_cast<double>(a[i]) - b[i]);
      EXPECT_LE(d, lr * 1.001 + 1e-7) << before[k].first << "[" << i << "]";
      moved += d > lr * 0.5;
    }
    // Adam's first step is ±lr wherever the gradient is not (almost) zero: most values move by ~lr.
    EXPECT_GT(moved, static_cast<int64_t>(a.size()) / 2) << before[k].first;
  }
}

TEST(TrainModel, ShortRunLowersTheLossAndReloadsIdentically) {
  const tconv::Device device = tconv::Device::cpu(2);
  const Dataset train = load_fashion_mnist(data_dir(), "train", 2048);
  const Dataset test = load_fashion_mnist(data_dir(), "t10k", 256);
  AutoEncoder model(device, 1, 1e-3f);
  const double test_before = model.evaluate(test.pixels.data(), test.count, 100);
  const int64_t batch = 64, steps_per_epoch = train.count / batch;
  std::vector<float> buf(static_cast<std::size_t>(batch * kImagePixels));
  std::vector<double> losses;
  for (int64_t epoch = 0; epoch < 7; ++epoch) {  // 224 steps
    const std::vector<int64_t> order = epoch_permutation(1, epoch, train.count);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      for (int64_t i = 0; i < batch; ++i)
        std::copy_n(train.image(order[s * batch + i]), kImagePixels, buf.data() + i * kImagePixels);
      losses.push_back(model.train_step(buf.data(), batch));
    }
  }
  const auto mean = [](auto first, auto last) { return std::accumulate(first, last, 0.0) / (last - first); };
  const double early = mean(losses.begin(), losses.begin() + 20), late = mean(losses.end() - 20, losses.end());
  EXPECT_LT(late, 0.3 * early) << "first 20 steps " << early << ", last 20 steps " << late;
  EXPECT_LT(late, 0.03);  // well below predicting the mean image (≈ 0.1 on Fashion-MNIST)
  const double test_after = model.evaluate(test.pixels.data(), test.count, 100);
  EXPECT_LT(test_after, 0.3 * test_before);

  const fs::path dir = fs::temp_directory_path() / ("tconv_train_model_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "model.safetensors").string();
  model.save(path, TrainingRecord{.epochs = 7, .batch = batch, .learning_rate = 1e-3, .seed = 1,
                                  .train_images = train.count, .test_images = test.count, .eval_batch = 100,
                                  .test_mse = test_after});
  TrainingRecord record;
  AutoEncoder reloaded = AutoEncoder::load(path, device, &record);
  EXPECT_EQ(record.test_mse, test_after);
  EXPECT_EQ(record.eval_batch, 100);
  EXPECT_EQ(reloaded.fingerprint(), model.fingerprint());
  std::vector<float> a(static_cast<std::size_t>(test.count * kImagePixels)), b(a.size());
  model.reconstruct(test.pixels.data(), test.count, a.data());
  reloaded.reconstruct(test.pixels.data(), test.count, b.data());
  EXPECT_EQ(a, b);  // bit-identical
  EXPECT_EQ(reloaded.evaluate(test.pixels.data(), test.count, 100), test_after);
  fs::remove_all(dir);
}
