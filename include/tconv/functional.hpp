// tconv — the PyTorch-style functional API: one call per pass on host arrays, geometry as
// torch.nn.functional.conv_transpose2d (stride, padding, output_padding, dilation, groups; each {h, w}).
//
// This is the layer the CLI (`tconv forward`, `tconv grad`) and the Python package call. It knows nothing of
// MPS offsets: callers with MPS geometry reduce it first (core/mps_geometry.hpp) and pass the canonical
// padding (which may then be negative) and an explicit output size.
//
// Arrays:
//   activations x, y, dy, dx   4-D, NCHW [N][C][H][W] (PyTorch) or NHWC [N][H][W][C] (MPS images);
//                              float32, float16 or bfloat16; x, dy, y and dx share one element type
//   weights w, dw              PyTorch [Cin][Cout/G][kH][kW] or MPS OHWI [Cout][kH][kW][Cin/G]; w may be
//                              float32, float16 or bfloat16, dw is always float32
//   bias b, db                 [Cout]; float32 (b may also be float16/bfloat16)
// Outputs are written by the call into caller-owned memory of the shape the *_shape helpers return.
//
// Beyond PyTorch (documented extensions, both needed by MPS geometry): padding may be negative, and an
// explicit output_size may be given (then output_padding must be 0, and any positive size is taken).
// Every failure throws tconv::Error whose message names the offending values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tconv/device.hpp"
#include "tconv/types.hpp"

namespace tconv {

enum class ActivationLayout : uint8_t { nchw = 0, nhwc = 1 };
enum class WeightLayout : uint8_t { pytorch = 0, mps = 1 };
std::string_view to_string(ActivationLayout l) noexcept;
std::string_view to_string(WeightLayout l) noexcept;

struct Hw {
  int64_t h = 0, w = 0;
  friend bool operator==(const Hw&, const Hw&) = default;
};

struct ConvTranspose2dOptions {
  Hw stride{1, 1};
  Hw padding{0, 0};          // PyTorch's; negative values are a tconv extension (crop)
  Hw output_padding{0, 0};   // 0 ≤ output_padding < max(stride, dilation), as PyTorch
  Hw dilation{1, 1};
  int64_t groups = 1;
  Hw output_size{0, 0};      // {0, 0}: from output_padding; otherwise the explicit output size (extension)
  ActivationLayout layout = ActivationLayout::nchw;
  WeightLayout weight_layout = WeightLayout::pytorch;
  Precision precision = Precision::fp32;
  std::string algorithm;     // empty: the registry's first algorithm that takes the problem
  bool allow_nondeterministic = false;
};

// A view of caller-owned host memory: dense, C order, in `shape` (the layout the options name).
struct ConstArrayRef {
  const void* data = nullptr;
  DataType type = DataType::float32;
  std::vector<int64_t> shape;
};
struct ArrayRef {
  void* data = nullptr;
  DataType type = DataType::float32;
  std::vector<int64_t> shape;
};

// Shapes the calls expect for their outputs (in the options' layouts). Throw on invalid geometry.
std::vector<int64_t> conv_transpose2d_output_shape(const std::vector<int64_t>& x_shape,
                                                   const std::vector<int64_t>& w_shape,
                                                   const ConvTranspose2dOptions& opt);

// y = conv_transpose2d(x, w, b). b.data == nullptr: no bias. y.type must equal x.type.
// Returns the name of the algorithm that ran.
std::string conv_transpose2d(const Device& device, const ConstArrayRef& x, const ConstArrayRef& w,
                             const ConstArrayRef& b, const ArrayRef& y, const ConvTranspose2dOptions& opt);

// Gradients of y = conv_transpose2d(x, w, b) for a given dy. Each output whose data is nullptr is not
// computed. The shapes of x, w and dy are always needed (they give the geometry); their data only where
// read: dx reads w and dy, dw/db read x and dy (so x.data may be null when only dx is wanted, w.data when
// only dw/db are). dx has x's shape and dy's type; dw has w's shape (float32); db is [Cout] float32.
struct ConvTranspose2dGrads {
  ArrayRef dx, dw, db;
};
struct ConvTranspose2dBackwardResult {
  std::string data_algorithm;     // empty when dx was not asked for
  std::string weights_algorithm;  // empty when dw/db were not asked for
};
ConvTranspose2dBackwardResult conv_transpose2d_backward(const Device& device, const ConstArrayRef& x,
                                                        const ConstArrayRef& w, const ConstArrayRef& dy,
                                                        const ConvTranspose2dGrads& grads,
                                                        const ConvTranspose2dOptions& opt);

}  // namespace tconv
