// Helpers for the CUDA kernel tests: host tensors in any activation type laid out as (possibly padded)
// NHWC views, device buffers through the cuda_backend facade, and one call that runs a registered
// algorithm on the GPU with host inputs and returns host outputs. Plain C++ (no CUDA headers).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/problem.hpp"
#include "cuda/backend.hpp"
#include "registry/algorithm.hpp"

namespace tconv::cuda_test {

#define TCONV_SKIP_WITHOUT_GPU()                                                        \
  do {                                                                                  \
    if (::tconv::cuda_backend::device_count() == 0) GTEST_SKIP() << "no CUDA device";  \
  } while (0)

// TCONV_CUDA_TEST_ALGORITHMS=name,name (unset: all) limits which CUDA algorithms the tests run, e.g. to
// keep a compute-sanitizer pass on our own kernels short.
inline bool selected(const registry::Algorithm& a) {
  const char* env = std::getenv("TCONV_CUDA_TEST_ALGORITHMS");
  if (env == nullptr || *env == 0) return true;
  const std::string list = std::string(",") + env + ",";
  return list.find("," + std::string(a.name()) + ",") != std::string::npos;
}

// Element bytes that every type reads as NaN (f32 0xffffffff, f16/bf16 0xffff): "not written".
constexpr unsigned char kPoison = 0xff;

// An NHWC tensor of n×h×w×c elements of `type`, stored with pad_c extra channels per pixel and pad_w extra
// pixels per row (and one extra row per image when padded), so a view can be a window of a larger image.
struct HostTensor {
  DataType type = DataType::float32;
  int64_t n = 0, h = 0, w = 0, c = 0;
  int64_t sn = 0, sh = 0, sw = 0;
  std::vector<unsigned char> bytes;

  HostTensor() = default;
  HostTensor(DataType t, int64_t n_, int64_t h_, int64_t w_, int64_t c_, bool padded) : type(t), n(n_), h(h_), w(w_), c(c_) {
    sw = c + (padded ? 3 : 0);
    sh = (w + (padded ? 2 : 0)) * sw;
    sn = (h + (padded ? 1 : 0)) * sh;
    bytes.assign(static_cast<size_t>(n * sn) * size_of(t), kPoison);
  }
  int64_t at(int64_t in, int64_t y, int64_t x, int64_t ch) const { return in * sn + y * sh + x * sw + ch; }
  float get(int64_t i) const { return core::load_as_f32(bytes.data(), i, type); }
  void set(int64_t i, float v) { core::store_from_f32(bytes.data(), i, type, v); }
  core::TensorView view(void* base) const { return core::TensorView{base, sn, sh, sw}; }
  template <class F>
  void fill(F&& f) {
    for (int64_t a = 0; a < n; ++a)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          for (int64_t ch = 0; ch < c; ++ch) set(at(a, y, x, ch), f());
  }
};

// Device memory that frees itself.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    const core::Status s = cuda_backend::malloc_device(0, bytes, &p_);
    status_ = s;
  }
  ~DeviceBuffer() { cuda_backend::free_device(0, p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }
  const core::Status& status() const { return status_; }
  std::size_t size() const { return bytes_; }

 private:
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
  core::Status status_;
};

// All tensors of one problem on the host; the outputs start out poisoned (or hold the values to accumulate).
struct HostProblem {
  core::Problem p;
  HostTensor src, dst;          // src side (c_in), dst side (c_out): inputs or outputs by direction
  std::vector<float> wei, bias; // weights/bias (fwd, bwd_data) or their gradients (bwd_weights)
};

inline HostProblem make_host_problem(const core::Problem& p, bool exact, bool padded, uint32_t seed) {
  HostProblem hp;
  hp.p = p;
  const core::Geometry& g = p.g;
  hp.src = HostTensor(p.act_type, g.n, g.h_in, g.w_in, g.c_in, padded);
  hp.dst = HostTensor(p.act_type, g.n, g.h_out, g.w_out, g.c_out, padded);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> small(-2, 2);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  auto value = [&]() { return exact ? static_cast<float>(small(rng)) : uni(rng); };
  const int64_t we = core::wei_elements(g);
  hp.wei.resize(static_cast<size_t>(we));
  hp.bias.resize(static_cast<size_t>(g.c_out));
  switch (p.dir) {
    case core::Direction::fwd:
      hp.src.fill(value);
      for (float& v : hp.wei) v = value();
      for (float& v : hp.bias) v = value();
      break;
    case core::Direction::bwd_data:
      hp.dst.fill(value);
      for (float& v : hp.wei) v = value();
      break;
    case core::Direction::bwd_weights:
      hp.src.fill(value);
      hp.dst.fill(value);
      // Accumulate adds into what is there; otherwise the gradients start as NaN (poison).
      for (float& v : hp.wei) v = p.accumulate ? value() : std::nanf("");
      for (float& v : hp.bias) v = p.accumulate ? value() : std::nanf("");
      break;
  }
  return hp;
}

inline core::Args host_args(HostProblem& hp) {
  core::Args a;
  a.src = a.diff_src = hp.src.view(hp.src.bytes.data());
  a.dst = a.diff_dst = hp.dst.view(hp.dst.bytes.data());
  a.wei = hp.wei.data();
  a.bias = hp.bias.data();
  a.diff_wei = hp.wei.data();
  a.diff_bias = hp.bias.data();
  return a;
}

// Runs `alg` on the GPU (device 0, a stream of its own) with hp's host tensors; hp's outputs are replaced
// by what the GPU wrote (inputs are copied back unchanged). Returns the run's status.
inline core::Status run_on_gpu(const registry::Algorithm& alg, HostProblem& hp, void* stream) {
  DeviceBuffer src(hp.src.bytes.size()), dst(hp.dst.bytes.size()), wei(hp.wei.size() * 4), bias(hp.bias.size() * 4);
  for (const DeviceBuffer* b : {&src, &dst, &wei, &bias})
    if (!b->status().ok()) return b->status();
  const std::size_t ws_bytes = alg.workspace_bytes(hp.p);
  DeviceBuffer ws(ws_bytes);
  if (!ws.status().ok()) return ws.status();
  core::Status s;
  if (!(s = cuda_backend::copy_h2d(0, src.get(), hp.src.bytes.data(), src.size())).ok()) return s;
  if (!(s = cuda_backend::copy_h2d(0, dst.get(), hp.dst.bytes.data(), dst.size())).ok()) return s;
  if (!(s = cuda_backend::copy_h2d(0, wei.get(), hp.wei.data(), wei.size())).ok()) return s;
  if (!(s = cuda_backend::copy_h2d(0, bias.get(), hp.bias.data(), bias.size())).ok()) return s;
  core::Args a;
  a.src = a.diff_src = hp.src.view(src.get());
  a.dst = a.diff_dst = hp.dst.view(dst.get());
  a.wei = a.diff_wei = static_cast<float*>(wei.get());
  a.bias = a.diff_bias = static_cast<float*>(bias.get());
  registry::ExecContext ctx;
  ctx.cuda_device = 0;
  ctx.cuda_stream = stream;
  if (!(s = alg.run(hp.p, a, ws.get(), ctx)).ok()) return s;
  if (!(s = cuda_backend::stream_synchronize(0, stream)).ok()) return s;
  if (!(s = cuda_backend::copy_d2h(0, hp.src.bytes.data(), src.get(), src.size())).ok()) return s;
  if (!(s = cuda_backend::copy_d2h(0, hp.dst.bytes.data(), dst.get(), dst.size())).ok()) return s;
  if (!(s = cuda_backend::copy_d2h(0, hp.wei.data(), wei.get(), wei.size())).ok()) return s;
  return cuda_backend::copy_d2h(0, hp.bias.data(), bias.get(), bias.size());
}

// A stream for the test's lifetime.
class Stream {
 public:
  Stream() { status_ = cuda_backend::stream_create(0, &s_); }
  ~Stream() { cuda_backend::stream_destroy(0, s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  void* get() const { return s_; }
  const core::Status& status() const { return status_; }

 private:
  void* s_ = nullptr;
  core::Status status_;
};

}  // namespace tconv::cuda_test
