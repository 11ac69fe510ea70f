// Test images: an NHWC image of any act_type stored as a window of a larger, poisoned buffer.
//
// The window has its own image, row, column and channel offsets and the buffer has row/channel padding, so
// the TensorView handed to a kernel is strided like a clipped MPS image with a feature-channel offset. Every
// buffer element starts as a NaN "poison" pattern; tests then check that outputs were written everywhere
// inside the window (no poison left) and nowhere outside it (poison intact). Inputs keep the poison outside
// their window too, so a kernel that reads outside its view produces NaNs and fails the comparison.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.hpp"
#include "core/problem.hpp"

namespace tconv::testing {

// Poison bit patterns (quiet NaNs with payloads no arithmetic produces).
constexpr uint32_t kPoisonF32 = 0x7fc0dea1u;
constexpr uint16_t kPoisonF16 = 0x7e5au;
constexpr uint16_t kPoisonBF16 = 0x7fd5u;

inline float poison_f32() { return core::bits_f32(kPoisonF32); }

struct Image {
  DataType type = DataType::float32;
  int64_t n = 1, h = 1, w = 1, c = 1;  // window (the problem's extents)
  int64_t N = 1, H = 1, W = 1, C = 1;  // buffer extents
  int64_t n0 = 0, y0 = 0, x0 = 0, c0 = 0;
  std::vector<uint32_t> storage;  // raw bytes (uint32 for alignment), 2 or 4 bytes per element

  int64_t elements() const { return N * H * W * C; }
  int64_t buffer_index(int64_t in, int64_t y, int64_t x, int64_t ch) const { return ((in * H + y) * W + x) * C + ch; }
  int64_t index(int64_t in, int64_t y, int64_t x, int64_t ch) const {
    return buffer_index(n0 + in, y0 + y, x0 + x, c0 + ch);
  }
  void* base() { return storage.data(); }
  const void* base() const { return storage.data(); }
  core::TensorView view() {
    core::TensorView v;
    v.data = static_cast<char*>(base()) + index(0, 0, 0, 0) * static_cast<int64_t>(size_of(type));
    v.sn = H * W * C;
    v.sh = W * C;
    v.sw = C;
    return v;
  }
  float get(int64_t in, int64_t y, int64_t x, int64_t ch) const {
    return core::load_as_f32(base(), index(in, y, x, ch), type);
  }
  void set(int64_t in, int64_t y, int64_t x, int64_t ch, float v) {
    core::store_from_f32(base(), index(in, y, x, ch), type, v);
  }
  uint32_t raw(int64_t buffer_i) const {
    if (type == DataType::float32) return storage[static_cast<size_t>(buffer_i)];
    uint16_t h16;
    std::memcpy(&h16, reinterpret_cast<const char*>(storage.data()) + 2 * buffer_i, 2);
    return h16;
  }
  uint32_t poison_bits() const {
    return type == DataType::float32 ? kPoisonF32 : (type == DataType::float16 ? kPoisonF16 : kPoisonBF16);
  }
  bool inside(int64_t buffer_i) const {
    const int64_t ch = buffer_i % C, x = (buffer_i / C) % W, y = (buffer_i / (C * W)) % H, in = buffer_i / (C * W * H);
    return in >= n0 && in < n0 + n && y >= y0 && y < y0 + h && x >= x0 && x < x0 + w && ch >= c0 && ch < c0 + c;
  }
  void poison_all() {
    for (int64_t i = 0; i < elements(); ++i) {
      if (type == DataType::float32) storage[static_cast<size_t>(i)] = kPoisonF32;
      else {
        const uint16_t p = static_cast<uint16_t>(poison_bits());
        std::memcpy(reinterpret_cast<char*>(storage.data()) + 2 * i, &p, 2);
      }
    }
  }
  // Fills the window with f(n, y, x, c) (rounded to the storage type).
  template <class F>
  void fill(F f) {
    for (int64_t in = 0; in < n; ++in)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          for (int64_t ch = 0; ch < c; ++ch) set(in, y, x, ch, f(in, y, x, ch));
  }
  // All window values in (n, y, x, c) order, as float.
  std::vector<float> values() const {
    std::vector<float> v;
    v.reserve(static_cast<size_t>(n * h * w * c));
    for (int64_t in = 0; in < n; ++in)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          for (int64_t ch = 0; ch < c; ++ch) v.push_back(get(in, y, x, ch));
    return v;
  }
};

// A poisoned image with the given window extents; `windowed` adds random margins on every axis (image
// index, rows, columns, channels), otherwise the buffer is exactly the window (dense).
inline Image make_image(DataType type, int64_t n, int64_t h, int64_t w, int64_t c, bool windowed, std::mt19937_64& rng) {
  Image im;
  im.type = type;
  im.n = n; im.h = h; im.w = w; im.c = c;
  auto margin = [&](int max) { return windowed ? static_cast<int64_t>(rng() % static_cast<uint64_t>(max + 1)) : 0; };
  im.n0 = margin(1); im.y0 = margin(2); im.x0 = margin(2); im.c0 = margin(5);
  im.N = n + im.n0 + margin(1);
  im.H = h + im.y0 + margin(2);
  im.W = w + im.x0 + margin(3);
  im.C = c + im.c0 + margin(5);
  const int64_t bytes = im.elements() * static_cast<int64_t>(size_of(type));
  im.storage.assign(static_cast<size_t>((bytes + 3) / 4), 0u);
  im.poison_all();
  return im;
}

// A float32 array with poisoned guard elements on both sides (to catch writes past the ends).
struct GuardedArray {
  static constexpr int64_t kGuard = 16;
  std::vector<float> storage;
  int64_t size = 0;
  explicit GuardedArray(int64_t count = 0) : storage(static_cast<size_t>(count + 2 * kGuard), poison_f32()), size(count) {}
  float* data() { return storage.data() + kGuard; }
  const float* data() const { return storage.data() + kGuard; }
  float& operator[](int64_t i) { return data()[i]; }
  float operator[](int64_t i) const { return data()[i]; }
  bool guards_intact() const {
    for (int64_t i = 0; i < kGuard; ++i) {
      if (core::f32_bits(storage[static_cast<size_t>(i)]) != kPoisonF32) return false;
      if (core::f32_bits(storage[static_cast<size_t>(kGuard + size + i)]) != kPoisonF32) return false;
    }
    return true;
  }
  std::vector<float> values() const { return std::vector<float>(data(), data() + size); }
};

}  // namespace tconv::testing
