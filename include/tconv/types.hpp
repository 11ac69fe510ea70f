// tconv — small value types shared by the whole public API (no behaviour beyond helpers).
// Names follow MPS where the concept is MPS's (spec a.1–a.6), with C++ spelling.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace tconv {

// Element types of images, weights and arrays. Values are MPSDataType's (spec b.156) where one exists.
enum class DataType : uint32_t {
  float32 = 0x10000020,
  float16 = 0x10000010,
  bfloat16 = 0x90000010,  // not in MPS; tconv extension (e8)
  uint8 = 8,              // inference-only weights; rejected for training (e8)
};
std::size_t size_of(DataType t) noexcept;
std::string_view to_string(DataType t) noexcept;

// Arithmetic mode of a kernel: inputs are rounded to this format before each multiply, products are
// accumulated in float32 (float64 in the reference). fp32 = no rounding.
enum class Precision : uint8_t { fp32 = 0, tf32 = 1, bf16 = 2, fp16 = 3 };
std::string_view to_string(Precision p) noexcept;
bool parse_precision(std::string_view s, Precision& out) noexcept;

// MPSImageEdgeMode (spec b.114). Only zero is supported on the transpose and its gradient (e9).
enum class EdgeMode : uint8_t { zero = 0, clamp = 1 };

// MPSCNNConvolutionGradientOption (spec a.7.2).
enum class GradientOption : uint32_t { data = 1, weights_and_bias = 2, all = 3 };
inline bool has_data(GradientOption o) { return (static_cast<uint32_t>(o) & 1u) != 0; }
inline bool has_weights(GradientOption o) { return (static_cast<uint32_t>(o) & 2u) != 0; }

// MPSNNConvolutionAccumulatorPrecisionOption (spec b.157). Default float (e6).
enum class AccumulatorPrecision : uint8_t { half = 0, full = 1 };

// MPSDataLayout for host reads and writes of images (spec a.1.5).
enum class ImageLayout : uint8_t { hwc = 0, chw = 1 };

// MPSNNPaddingMethod bits (spec b.112).
namespace padding {
constexpr uint32_t align_centered = 0, align_top_left = 1, align_bottom_right = 2;
constexpr uint32_t align_mask = 3;
constexpr uint32_t add_remainder_to_top_left = 0 << 2, add_remainder_to_top_right = 1 << 2,
                   add_remainder_to_bottom_left = 2 << 2, add_remainder_to_bottom_right = 3 << 2;
constexpr uint32_t remainder_mask = 3 << 2;
constexpr uint32_t size_valid_only = 0, size_same = 16, size_full = 32;
constexpr uint32_t size_mask = 0x7f0;
constexpr uint32_t custom = 1u << 14, custom_whitelist_for_node_fusion = 1u << 13,
                   exclude_edges = 1u << 15;
constexpr uint32_t default_method = size_same | align_centered | add_remainder_to_top_left;  // 16
}  // namespace padding
using PaddingMethod = uint32_t;

// MPSOffset: x, y in pixels, z = image index in a multi-image Image.
struct Offset {
  int64_t x = 0, y = 0, z = 0;
  friend bool operator==(const Offset&, const Offset&) = default;
};

// MPSRegion used as a clip rectangle. The default is "no clip": the whole destination (MPSRectNoClip).
struct Region {
  int64_t x = 0, y = 0, z = 0;
  int64_t width = std::numeric_limits<int64_t>::max() / 4;
  int64_t height = std::numeric_limits<int64_t>::max() / 4;
  int64_t depth = std::numeric_limits<int64_t>::max() / 4;
  static Region no_clip() { return Region{}; }
  bool is_no_clip() const { return *this == Region{}; }
  friend bool operator==(const Region&, const Region&) = default;
};

// "As many as there are" for feature-channel max counts (MPS's ULONG_MAX).
constexpr uint64_t all_channels = std::numeric_limits<uint64_t>::max();

// Activation functions (MPSCNNNeuronType; spec a.2 fusedNeuronDescriptor). Parameters a, b, c as MPS.
enum class NeuronType : uint8_t {
  none = 0,        // f(x) = x
  relu,            // f(x) = x >= 0 ? x : a·x   (a = 0: plain ReLU; MPS's leaky form)
  linear,          // f(x) = a·x + b
  sigmoid,         // f(x) = 1 / (1 + e^-x)
  hard_sigmoid,    // f(x) = clamp(a·x + b, 0, 1)
  tanh,            // f(x) = a·tanh(b·x)
  absolute,        // f(x) = |x|
  soft_plus,       // f(x) = a·log(1 + e^(b·x))
  soft_sign,       // f(x) = x / (1 + |x|)
  elu,             // f(x) = x >= 0 ? x : a·(e^x − 1)
  relu_n,          // f(x) = min(x >= 0 ? x : a·x, b)
  power,           // f(x) = (a·x + b)^c
  exponential,     // f(x) = c^(a·x + b)   (c <= 0 means e)
  logarithm,       // f(x) = log_c(a·x + b) (c <= 0 means e)
  gelu,            // f(x) = x·Φ(x) (erf form)
};
std::string_view to_string(NeuronType t) noexcept;

struct NeuronDescriptor {
  NeuronType type = NeuronType::none;
  float a = 0.0f, b = 0.0f, c = 0.0f;
  friend bool operator==(const NeuronDescriptor&, const NeuronDescriptor&) = default;
};

}  // namespace tconv
