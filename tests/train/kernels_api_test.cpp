// Neuron and MSE-loss kernels of the object API (include/tconv/neuron.hpp, loss.hpp): results on images of
// each data type against the float64 definitions, in-place use, command-buffer ordering, and every error path.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/neuron.hpp"
#include "tconv/loss.hpp"
#include "tconv/neuron.hpp"

using namespace tconv;

namespace {

// A 2-image 3×5×4 image filled with reproducible values in [lo, hi).
Image random_image(const Device& dev, DataType t, unsigned seed, float lo = -2.0f, float hi = 2.0f) {
  Image img(dev, {.width = 5, .height = 3, .feature_channels = 4, .number_of_images = 2, .data_type = t});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t n = 0; n < 2; ++n) {
    std::vector<float> v(static_cast<size_t>(img.elements_per_image()));
    for (auto& x : v) x = d(rng);
    img.write_floats(v.data(), ImageLayout::hwc, n);
  }
  return img;
}

std::vector<float> all_floats(const Image& img) {
  std::vector<float> out;
  for (int64_t n = 0; n < img.number_of_images(); ++n) {
    auto v = img.read_floats(ImageLayout::hwc, n);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Relative tolerance of storing a float32 result in type t (half an ulp of its format, doubled).
double storage_tolerance(DataType t) {
  return t == DataType::float32 ? 1e-6 : (t == DataType::float16 ? 1e-3 : 8e-3);
}

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

const DataType kTypes[] = {DataType::float32, DataType::float16, DataType::bfloat16};

}  // namespace

TEST(NeuronApi, ForwardAndGradientOnEveryImageType) {
  const Device dev = Device::cpu(2);
  const NeuronDescriptor relu{NeuronType::relu, 0.0f}, sig{NeuronType::sigmoid};
  for (DataType t : kTypes) {
    for (const auto& nd : {relu, sig}) {
      SCOPED_TRACE(std::string(to_string(t)) + " neuron " + std::string(to_string(nd.type)));
      Image x = random_image(dev, t, 1), gy = random_image(dev, t, 2);
      NeuronKernel fwd(dev, nd);
      NeuronGradient bwd(dev, nd);
      CommandBuffer cb(dev);
      Image y = fwd.encode(cb, x);
      Image gx = bwd.encode(cb, gy, x);
      EXPECT_EQ(y.descriptor(), x.descriptor());
      cb.commit();
      cb.wait_and_check();
      const auto xv = all_floats(x), yv = all_floats(y), gyv = all_floats(gy), gxv = all_floats(gx);
      for (size_t i = 0; i < xv.size(); ++i) {
        const double want_y = core::neuron_apply<double>(nd, xv[i]);
        const double want_g = gyv[i] * core::neuron_derivative<double>(nd, xv[i]);
        ASSERT_NEAR(yv[i], want_y, storage_tolerance(t) * std::abs(want_y) + 1e-7) << i;
        ASSERT_NEAR(gxv[i], want_g, storage_tolerance(t) * std::abs(want_g) + 1e-7) << i;
      }
    }
  }
}

TEST(NeuronApi, InPlaceAndMixedTypes) {
  const Device dev = Device::cpu(1);
  const NeuronDescriptor th{NeuronType::tanh, 2.0f, 0.5f};
  Image x = random_image(dev, DataType::float32, 3);
  const auto x0 = all_floats(x);
  Image y16(dev, {.width = 5, .height = 3, .feature_channels = 4, .number_of_images = 2,
                  .data_type = DataType::float16});
  NeuronKernel fwd(dev, th);
  CommandBuffer cb(dev);
  fwd.encode(cb, x, y16);  // float32 → float16
  fwd.encode(cb, x, x);    // in place, after the first command read x
  cb.commit();
  cb.wait_and_check();
  const auto y = all_floats(y16), xi = all_floats(x);
  for (size_t i = 0; i < x0.size(); ++i) {
    const float want = 2.0f * std::tanh(0.5f * x0[i]);
    EXPECT_EQ(y[i], core::f16_to_f32(core::f32_to_f16(want))) << i;
    EXPECT_NEAR(xi[i], want, 1e-6) << i;
  }
}

TEST(NeuronApi, ErrorsNameTheValues) {
  const Device dev = Device::cpu(1);
  expect_invalid([&] { NeuronKernel(dev, {static_cast<NeuronType>(99)}); }, {"unknown neuron type 99"});
  expect_invalid([&] { NeuronGradient(dev, {static_cast<NeuronType>(42)}); }, {"unknown neuron type 42"});
  NeuronKernel fwd(dev, {NeuronType::relu});
  NeuronGradient bwd(dev, {NeuronType::relu});
  CommandBuffer cb(dev);
  Image x = random_image(dev, DataType::float32, 1);
  Image other(dev, {.width = 4, .height = 3, .feature_channels = 4, .number_of_images = 2});
  Image x16 = random_image(dev, DataType::float16, 1);
  expect_invalid([&] { fwd.encode(cb, Image(), x); }, {"NeuronKernel", "source image is empty"});
  expect_invalid([&] { fwd.encode(cb, x, Image()); }, {"destination image is empty"});
  expect_invalid([&] { fwd.encode(cb, x, other); }, {"source image is 2x3x5x4", "destination image is 2x3x4x4"});
  expect_invalid([&] { bwd.encode(cb, x, other, x); }, {"NeuronGradient", "source image is 2x3x4x4"});
  expect_invalid([&] { bwd.encode(cb, x, x, other); }, {"destination gradient image is 2x3x4x4"});
  EXPECT_NO_THROW(fwd.encode(cb, x, x));  // in place with one data type is allowed
  // A float16 image pointed at a float32 image's memory cannot be written from it in place.
  x16.buffer() = x.buffer();
  expect_invalid([&] { fwd.encode(cb, x, x16); }, {"share memory", "float32", "float16"});
  expect_invalid([&] { bwd.encode(cb, x, x, x16); }, {"share memory"});
  // A buffer too small for the image's shape.
  Image shrunk = random_image(dev, DataType::float32, 4);
  shrunk.buffer() = Buffer::allocate(dev, 16);
  expect_invalid([&] { fwd.encode(cb, shrunk, x); }, {"buffer holds 16 bytes", "480 are needed"});
  cb.commit();
  cb.wait_and_check();
}

TEST(LossApi, MseForwardAndGradientOnEveryType) {
  const Device dev = Device::cpu(2);
  for (DataType t : kTypes) {
    SCOPED_TRACE(to_string(t));
    Image p = random_image(dev, t, 7, 0.0f, 1.0f), tg = random_image(dev, DataType::float32, 8, 0.0f, 1.0f);
    MSELoss loss(dev, {.weight = 0.5f});
    EXPECT_EQ(loss.weight(), 0.5f);
    Buffer out = Buffer::allocate(dev, 16);
    CommandBuffer cb(dev);
    loss.encode_forward(cb, p, tg, out, 8);
    Image g = loss.encode_gradient(cb, p, tg);
    EXPECT_EQ(g.data_type(), t);
    cb.commit();
    cb.wait_and_check();
    const auto pv = all_floats(p), tv = all_floats(tg), gv = all_floats(g);
    const double count = static_cast<double>(pv.size());
    double sum = 0;
    for (size_t i = 0; i < pv.size(); ++i) sum += (double(pv[i]) - tv[i]) * (double(pv[i]) - tv[i]);
    std::vector<float> value(4);
    out.copy_to_host(value.data(), 16);
    EXPECT_EQ(value[0], 0.0f);
    EXPECT_EQ(value[1], 0.0f);
    EXPECT_FLOAT_EQ(value[2], static_cast<float>(0.5 * sum / count));
    EXPECT_EQ(value[3], 0.0f);
    for (size_t i = 0; i < pv.size(); ++i) {
      const double want = 0.5 * 2.0 * (double(pv[i]) - tv[i]) / count;
      ASSERT_NEAR(gv[i], want, storage_tolerance(t) * std::abs(want) + 1e-9) << i;
    }
  }
}

TEST(LossApi, GradientInPlaceOverPredictions) {
  const Device dev = Device::cpu(1);
  Image p = random_image(dev, DataType::float32, 9), t = random_image(dev, DataType::float32, 10);
  const auto p0 = all_floats(p), t0 = all_floats(t);
  MSELoss loss(dev);
  CommandBuffer cb(dev);
  loss.encode_gradient(cb, p, t, p);
  cb.commit();
  cb.wait_and_check();
  const auto g = all_floats(p);
  const float factor = static_cast<float>(2.0 / static_cast<double>(p0.size()));
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(g[i], (p0[i] - t0[i]) * factor) << i;
}

TEST(LossApi, ErrorsNameTheValues) {
  const Device dev = Device::cpu(1);
  expect_invalid([&] { MSELoss(dev, {.weight = NAN}); }, {"weight must be finite"});
  MSELoss loss(dev);
  CommandBuffer cb(dev);
  Image p = random_image(dev, DataType::float32, 1);
  Image q(dev, {.width = 5, .height = 3, .feature_channels = 4, .number_of_images = 1});
  Buffer out = Buffer::allocate(dev, 8);
  expect_invalid([&] { loss.encode_forward(cb, p, q, out); },
                 {"predictions image is 2x3x5x4", "targets image is 1x3x5x4"});
  expect_invalid([&] { loss.encode_forward(cb, Image(), p, out); }, {"predictions image is empty"});
  expect_invalid([&] { loss.encode_forward(cb, p, p, out, 2); }, {"loss buffer", "offset 2"});
  expect_invalid([&] { loss.encode_forward(cb, p, p, out, 8); }, {"loss buffer holds 0", "1 are needed"});
  expect_invalid([&] { loss.encode_forward(cb, p, p, Buffer()); }, {"loss buffer is a null buffer"});
  expect_invalid([&] { loss.encode_gradient(cb, p, p, q); }, {"gradient image is 1x3x5x4"});
  expect_invalid([&] { loss.encode_gradient(cb, p, Image()); }, {"targets image is empty"});
  Image g16(dev, {.width = 5, .height = 3, .feature_channels = 4, .number_of_images = 2,
                  .data_type = DataType::float16});
  g16.buffer() = p.buffer();
  expect_invalid([&] { loss.encode_gradient(cb, p, random_image(dev, DataType::float32, 3), g16); },
                 {"predictions image (float32)", "gradient image (float16) share memory"});
  cb.commit();
  cb.wait_and_check();
}
