// The canonical problem: the one form every kernel below the API understands (spec e14, design §1–2).
//
// A transposed convolution in PyTorch-style geometry, with MPS's OHWI weight layout (unrotated, spec a.4):
//
//   dst[n][oy][ox][o] = bias[o] + Σ_{q<kh} Σ_{p<kw} Σ_{c<Ig}
//                        src[n][iy][ix][g·Ig + c] · wei[o][q][p][c]
//   where oy = iy·stride_h − pad_h + dil_h·(kh − 1 − q),  ox = ix·stride_w − pad_w + dil_w·(kw − 1 − p),
//         g = o / Og, Ig = c_in / groups, Og = c_out / groups,
//         0 ≤ iy < h_in, 0 ≤ ix < w_in, 0 ≤ oy < h_out, 0 ≤ ox < w_out (terms outside are absent).
//
// pad_h/pad_w may be negative and h_out/w_out are explicit, so PyTorch's output_padding, MPS offsets,
// kernel offsets, padding policies and clip rectangles all reduce to this (src/core/mps_geometry.hpp).
// The rotation (kh − 1 − q) is what makes PyTorch's rotated [c_in][Og][kh][kw] weight equal MPS's OHWI one
// (spec a.13): with that mapping pad_* is exactly PyTorch's padding.
//
// Directions (roles named as oneDNN does):
//   fwd          src, wei, [bias]   -> dst               (+ fused neuron)
//   bwd_data     diff_dst, wei      -> diff_src          (the adjoint of fwd w.r.t. src)
//   bwd_weights  src, diff_dst      -> diff_wei, [diff_bias]   (sums over n and pixels; may accumulate)
//
// Tensors are NHWC views with element strides (channel stride 1); a view may be a window of a larger
// image (channel offset, clip rectangle, image index are folded into its base pointer). Weights and
// weight/bias gradients are dense float32 OHWI.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.hpp"
#include "tconv/types.hpp"

namespace tconv::core {

enum class Direction : uint8_t { fwd = 0, bwd_data = 1, bwd_weights = 2 };
const char* to_string(Direction d) noexcept;

struct Geometry {
  int64_t n = 1;                      // images
  int64_t c_in = 1, c_out = 1;        // channels of src (X) and of dst (Y)
  int64_t groups = 1;
  int64_t h_in = 1, w_in = 1;         // src spatial size
  int64_t h_out = 1, w_out = 1;       // dst spatial size
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dil_h = 1, dil_w = 1;
  int64_t pad_h = 0, pad_w = 0;       // PyTorch padding; may be negative
  friend bool operator==(const Geometry&, const Geometry&) = default;

  int64_t ig() const { return c_in / groups; }
  int64_t og() const { return c_out / groups; }
  // PyTorch's natural output size for this geometry with output_padding op.
  static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pad, int64_t op) {
    return (in - 1) * s - 2 * pad + d * (k - 1) + op + 1;
  }
};

struct Problem {
  Direction dir = Direction::fwd;
  Geometry g;
  DataType act_type = DataType::float32;  // element type of src/dst/diff_src/diff_dst
  Precision precision = Precision::fp32;  // input rounding before multiplies; accumulation is fp32+
  bool with_bias = false;                 // fwd: add bias; bwd_weights: also compute diff_bias
  bool accumulate = false;                // bwd_weights: add into diff_wei/diff_bias instead of overwrite (e4)
  NeuronDescriptor neuron{};              // fwd only: applied after the bias
  friend bool operator==(const Problem&, const Problem&) = default;

  std::string describe() const;  // one line, pasteable into `tconv bench --case`
  double flops() const;          // 2·MACs of this direction (bias and neuron not counted)
  int64_t macs() const;
};

// A strided NHWC view: element (n, h, w, c) is at data + n·sn + h·sh + w·sw + c.
struct TensorView {
  void* data = nullptr;
  int64_t sn = 0, sh = 0, sw = 0;
};
inline TensorView dense_nhwc(void* data, int64_t h, int64_t w, int64_t c) {
  return TensorView{data, h * w * c, w * c, c};
}

struct Args {
  TensorView src, dst, diff_src, diff_dst;  // by direction, see above
  const float* wei = nullptr;               // [c_out][kh][kw][c_in/groups]
  const float* bias = nullptr;              // [c_out] (fwd, may be null ⇒ 0)
  float* diff_wei = nullptr;                // [c_out][kh][kw][c_in/groups]
  float* diff_bias = nullptr;               // [c_out] (bwd_weights with with_bias)
};

// Checks the problem once: positive sizes, groups dividing channels, 64-bit size products that do not
// overflow, supported data types. The message names the offending values.
Status validate(const Problem& p);

// Elements of each tensor a dense layout would need (checked against overflow by validate()).
int64_t src_elements(const Geometry& g);   // n·h_in·w_in·c_in
int64_t dst_elements(const Geometry& g);   // n·h_out·w_out·c_out
int64_t wei_elements(const Geometry& g);   // c_out·kh·kw·c_in/groups

// Dense views of a problem's tensors (NHWC, channel stride 1).
Args dense_args(const Geometry& g, void* src, void* dst, const float* wei, const float* bias,
                float* diff_wei, float* diff_bias);

}  // namespace tconv::core
