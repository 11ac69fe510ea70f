// Shared helpers of the reliability tests: a small training rig (one transpose and its gradient on a CPU
// device, small-integer weights so every float32 sum is exact), its known-good results, and a checker
// that catches *anything* a call throws (a tconv::Error of the wrong code, or a foreign exception such as
// std::bad_alloc escaping the API, which the error contract forbids).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "tconv/functional.hpp"
#include "tconv/tconv.hpp"

namespace tconv::reliability {

// Runs f and checks that it throws tconv::Error with `code` and a message containing `fragment`.
template <class F>
void expect_error(F&& f, ErrorCode code, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected " << to_string(code) << " with '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_EQ(to_string(e.code()), std::string(to_string(code))) << "message: " << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message '" << e.what() << "' lacks '" << fragment << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "a non-tconv exception escaped the API: " << typeid(e).name() << ": " << e.what()
                  << "; expected tconv::Error(" << to_string(code) << ")";
  }
}

// Weights Nout·kH·kW·Nin/G as small integers in [-2, 2] (never all zero), biases 1..Nout.
inline std::vector<float> int_weights(const ConvolutionDescriptor& d, int salt = 0) {
  std::vector<float> w(static_cast<std::size_t>(d.weight_elements()));
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>((i * 7 + salt) % 5) - 2);
  return w;
}
inline std::vector<float> int_biases(const ConvolutionDescriptor& d) {
  std::vector<float> b(static_cast<std::size_t>(d.output_feature_channels));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i + 1);
  return b;
}
// An image filled with small integers from a seed (values in [-3, 3]).
inline Image int_image(const Device& dev, int64_t n, int64_t h, int64_t w, int64_t c, int seed,
                       DataType t = DataType::float32) {
  Image img(dev, ImageDescriptor{w, h, c, n, t});
  const int64_t per = h * w * c;
  std::vector<float> v(static_cast<std::size_t>(per));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < per; ++k) v[static_cast<std::size_t>(k)] = static_cast<float>((k * 5 + i * 3 + seed) % 7 - 3);
    img.write_floats(v.data(), ImageLayout::hwc, i);
  }
  return img;
}
inline std::vector<float> all_floats(const Image& img) {
  std::vector<float> out;
  for (int64_t i = 0; i < img.number_of_images(); ++i) {
    const std::vector<float> f = img.read_floats(ImageLayout::hwc, i);
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}
inline std::vector<float> buffer_floats(const Buffer& b) {
  std::vector<float> v(b.length() / 4);
  b.copy_to_host(v.data(), v.size() * 4);
  return v;
}

// The outputs of one full training pass (forward, then all gradients).
struct PassResult {
  std::vector<float> y, gx, gw, gb;
  friend bool operator==(const PassResult&, const PassResult&) = default;
};

// One CPU device (2 threads) for the tests of a process. Sharing it keeps its queue's worker thread (and that
// thread's OpenMP team) alive across tests: tearing a device down joins them, which costs up to a few hundred
// milliseconds while libgomp's idle threads spin on a loaded machine.
inline Device shared_cpu() {
  static const Device d = Device::cpu(2);
  return d;
}

// A 3×3 stride-2 transpose, 4 → 6 channels in 2 groups, and its gradient kernel, on a CPU device
// (threads < 0: the shared one; otherwise a device of its own with that many threads, 0 = the default).
struct Rig {
  Device dev;
  ConvolutionDescriptor desc{3, 3, 4, 6};
  std::shared_ptr<ArrayDataSource> ds;
  ConvolutionTranspose fwd;
  ConvolutionTransposeGradient grad;
  KernelProperties fwd_props0;
  BinaryKernelProperties grad_props0;

  explicit Rig(int threads = -1) : dev(threads < 0 ? shared_cpu() : Device::cpu(threads)) {
    desc.stride_x = desc.stride_y = 2;
    desc.groups = 2;
    ds = std::make_shared<ArrayDataSource>(desc, int_weights(desc), int_biases(desc));
    fwd = ConvolutionTranspose(dev, ds);
    grad = ConvolutionTransposeGradient(dev, ds);
    fwd_props0 = fwd.properties();
    grad_props0 = grad.properties();
  }
  Image source(int seed = 1) const { return int_image(dev, 2, 5, 5, 4, seed); }

  // Forward (sized by the padding policy, training form) and every gradient, with fresh images and state.
  PassResult pass() {
    fwd.properties() = fwd_props0;
    grad.properties() = grad_props0;
    grad.set_gradient_option(GradientOption::all);
    CommandBuffer cb(dev);
    const Image x = source();
    ConvolutionTransposeGradientState st;
    const Image y = fwd.encode(cb, x, ConvolutionGradientState{}, st, false);
    const Image gy = int_image(dev, y.number_of_images(), y.height(), y.width(), y.feature_channels(), 2);
    const Image gx = grad.encode(cb, gy, x, st);
    cb.commit();
    cb.wait_and_check();
    return PassResult{all_floats(y), all_floats(gx), buffer_floats(st.gradient_for_weights()),
                      buffer_floats(st.gradient_for_biases())};
  }
};

// The pass's results from a rig that has seen no bad input (computed once).
inline const PassResult& golden_pass() {
  static const PassResult r = [] {
    Rig rig;
    return rig.pass();
  }();
  return r;
}

}  // namespace tconv::reliability
