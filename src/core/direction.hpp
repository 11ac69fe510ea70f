// The plain (non-transposed) convolution expressed as canonical transposed-convolution problems
// (design §2: write the mapping once, test it on its own; docs/direction-mapping.md derives it).
//
// The plain convolution (PyTorch Conv2d / MPSCNNConvolution cross-correlation), conv weights OHWI
// Wc[Nout_c][kh][kw][Ic], Ic = Nin_c/G, Oc = Nout_c/G, g = o'/Oc:
//
//   yc[n][j][i][o'] = Σ_q Σ_p Σ_{c'<Ic} Wc[o'][q][p][c'] · xc[n][j·s − pad + d·q][i·s − pad + d·p][g·Ic + c']
//
// The transpose of problem.hpp with the same stride, dilation, padding and groups, whose "src" is the conv's
// output side (c_in_T = Nout_c, h_in_T = conv output height) and whose "dst" is the conv's input side
// (c_out_T = Nin_c, h_out_T = conv input height), has the tap position oy = iy·s − pad + d·(k − 1 − q_T),
// so the conv's tap q is the transpose's tap k − 1 − q. With the weight transform
//
//   W_T[g·Ic + c'][q_T][p_T][o' − g·Oc] = Wc[o'][kh − 1 − q_T][kw − 1 − p_T][c']       (OHWI both sides)
//
// the three conv passes are exactly transpose passes:
//   conv fwd          yc  from xc, Wc   ≡ transpose bwd_data    diff_dst := xc, diff_src := yc
//   conv bwd_data     dxc from dyc, Wc  ≡ transpose fwd         src := dyc,      dst := dxc
//   conv bwd_weights  dWc from xc, dyc  ≡ transpose bwd_weights src := dyc,      diff_dst := xc,
//                                         dWc = transpose_weights_to_conv(diff_wei_T)
// The conv bias is not part of the mapping: the transpose's bias lives on its dst side (the conv's input).
// Add the conv bias after conv fwd yourself; its gradient is conv_bias_gradient() (Σ of dyc).
#pragma once

#include <cstdint>

#include "core/problem.hpp"
#include "core/status.hpp"

namespace tconv::core {

enum class ConvDirection : uint8_t { fwd = 0, bwd_data = 1, bwd_weights = 2 };
const char* to_string(ConvDirection d) noexcept;

// Geometry of a plain convolution; x is its source, y its destination. Output size is explicit (the
// padding on the far side is whatever makes it fit), like the canonical transpose.
struct ConvGeometry {
  int64_t n = 1;
  int64_t c_in = 1, c_out = 1;   // channels of x and of y
  int64_t groups = 1;
  int64_t h_in = 1, w_in = 1;    // x spatial size
  int64_t h_out = 1, w_out = 1;  // y spatial size
  int64_t kh = 1, kw = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dil_h = 1, dil_w = 1;
  int64_t pad_h = 0, pad_w = 0;  // may be negative
  friend bool operator==(const ConvGeometry&, const ConvGeometry&) = default;

  // PyTorch's Conv2d output size: floor((in + 2·pad − d·(k − 1) − 1)/s) + 1 (may be ≤ 0: invalid).
  static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pad);
};

// Element types and flags carried over to the canonical problem.
struct ConvOptions {
  DataType act_type = DataType::float32;
  Precision precision = Precision::fp32;
  bool accumulate = false;  // bwd_weights only: add into the (transpose-layout) weight gradient
};

// The canonical transposed-convolution geometry equivalent to the conv (see above).
Geometry conv_to_transpose_geometry(const ConvGeometry& c);
// The canonical problem computing the given conv pass. with_bias is always false (see above).
Problem conv_as_transpose(const ConvGeometry& c, ConvDirection dir, const ConvOptions& opt = {});

// Canonical arguments for a conv pass from the conv's own tensors. x/y are views of the conv's source and
// destination sides (for bwd_data: x := dxc written, y := dyc read; for bwd_weights: x := xc, y := dyc).
// wei_T: weights already in transpose layout; diff_wei_T: gradient in transpose layout.
Args conv_args(ConvDirection dir, const TensorView& x, const TensorView& y, const float* wei_T, float* diff_wei_T);

// Elements of the (conv or transpose) weight tensor: Nout_c·kh·kw·Ic.
int64_t conv_wei_elements(const ConvGeometry& c);
// Conv OHWI Wc[Nout_c][kh][kw][Ic] -> transpose OHWI W_T[Nin_c][kh][kw][Oc] (rotated, channels swapped).
void conv_weights_to_transpose(const ConvGeometry& c, const float* wc, float* wt);
// The inverse: transpose OHWI W_T[Nin_c][kh][kw][Oc] -> conv OHWI Wc[Nout_c][kh][kw][Ic].
void transpose_weights_to_conv(const ConvGeometry& c, const float* wt, float* wc);

// Conv bias gradient: db[o'] = Σ_n Σ_j Σ_i dyc[n][j][i][o'] (accumulated in double, stored float32;
// accumulate adds into db). dyc is a view of act_type elements with the conv's output extents.
void conv_bias_gradient(const ConvGeometry& c, const TensorView& dyc, DataType act_type, float* db,
                        bool accumulate = false);

}  // namespace tconv::core
