// The random numbers `tconv train` shares with its PyTorch peer (scripts/train_torch.py implements the
// very same functions), so both trainers start from bit-identical weights and see the images in the same
// order: any difference in their results comes from the arithmetic, not from luck.
//
// Generator: SplitMix64 (Steele, Lea, Flood 2014) — 64-bit state, one add and three xor-shift-multiplies
// per draw, trivially identical in Python with a 64-bit mask.
// Streams: initialisation uses SplitMix64(seed); the shuffle of epoch e (0-based) uses
// SplitMix64(seed ^ (0xD1B54A32D192ED03 * (e + 1))) (wrapping multiply), so an epoch's order does not
// depend on how many numbers the initialisation drew.
// Uniform floats: u = (next() >> 40) · 2^-24, exactly representable in float32, in [0, 1); a parameter with
// bound b is (2u − 1)·b computed in double and rounded once to float32 — PyTorch's default Conv2d /
// ConvTranspose2d initialisation U(−b, b), b = 1/√fan_in (kaiming_uniform with a = √5; the bias uses the
// same bound).
// Shuffle: Fisher–Yates from the last index down, j = next() mod (i + 1).
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace tconv::cli::train {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 24 random bits (exact in float32).
  double uniform01() { return static_cast<double>(next() >> 40) * (1.0 / 16777216.0); }
  // U(−bound, bound), rounded once to float32.
  float uniform_symmetric(double bound) { return static_cast<float>((2.0 * uniform01() - 1.0) * bound); }

 private:
  uint64_t state_;
};

inline uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
  return seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(epoch + 1));
}

// The order in which epoch `epoch` visits `count` images.
inline std::vector<int64_t> epoch_permutation(uint64_t seed, int64_t epoch, int64_t count) {
  std::vector<int64_t> p(static_cast<std::size_t>(count));
  std::iota(p.begin(), p.end(), int64_t{0});
  SplitMix64 rng(epoch_seed(seed, epoch));
  for (int64_t i = count - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

// PyTorch's default bound for a layer's weights and bias: 1/√fan_in. fan_in is
// weight.size(1)·kH·kW of the PyTorch weight tensor: in_channels·k² for Conv2d ([out][in][kH][kW]) but
// out_channels·k² for ConvTranspose2d ([in][out][kH][kW]).
inline double default_init_bound(int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }

}  // namespace tconv::cli::train
