// Conv ↔ transpose direction mapping; see direction.hpp for the derivation summary and
// docs/direction-mapping.md for the full one.
#include "core/direction.hpp"

#include "core/dtype.hpp"
#include "core/mps_geometry.hpp"

namespace tconv::core {

const char* to_string(ConvDirection d) noexcept {
  switch (d) {
    case ConvDirection::fwd: return "conv_fwd";
    case ConvDirection::bwd_data: return "conv_bwd_data";
    case ConvDirection::bwd_weights: return "conv_bwd_weights";
  }
  return "?";
}

int64_t ConvGeometry::out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pad) {
  return mps::floor_div(in + 2 * pad - d * (k - 1) - 1, s) + 1;
}

Geometry conv_to_transpose_geometry(const ConvGeometry& c) {
  // The transpose's src side is the conv's output side and its dst side the conv's input side.
  Geometry g;
  g.n = c.n;
  g.c_in = c.c_out;
  g.c_out = c.c_in;
  g.groups = c.groups;
  g.h_in = c.h_out;
  g.w_in = c.w_out;
  g.h_out = c.h_in;
  g.w_out = c.w_in;
  g.kh = c.kh;
  g.kw = c.kw;
  g.stride_h = c.stride_h;
  g.stride_w = c.stride_w;
  g.dil_h = c.dil_h;
  g.dil_w = c.dil_w;
  g.pad_h = c.pad_h;
  g.pad_w = c.pad_w;
  return g;
}

Problem conv_as_transpose(const ConvGeometry& c, ConvDirection dir, const ConvOptions& opt) {
  Problem p;
  p.g = conv_to_transpose_geometry(c);
  p.act_type = opt.act_type;
  p.precision = opt.precision;
  p.with_bias = false;
  switch (dir) {
    case ConvDirection::fwd: p.dir = Direction::bwd_data; break;
    case ConvDirection::bwd_data: p.dir = Direction::fwd; break;
    case ConvDirection::bwd_weights:
      p.dir = Direction::bwd_weights;
      p.accumulate = opt.accumulate;
      break;
  }
  return p;
}

Args conv_args(ConvDirection dir, const TensorView& x, const TensorView& y, const float* wei_T, float* diff_wei_T) {
  // Whatever the direction, the transpose's src side is y and its dst side is x.
  Args a;
  a.src = y;
  a.diff_src = y;
  a.dst = x;
  a.diff_dst = x;
  if (dir == ConvDirection::bwd_weights) a.diff_wei = diff_wei_T;
  else a.wei = wei_T;
  return a;
}

int64_t conv_wei_elements(const ConvGeometry& c) { return c.c_out * c.kh * c.kw * (c.c_in / c.groups); }

namespace {
// Calls f(conv flat index, transpose flat index) for every weight element.
template <class F>
void for_each_weight_pair(const ConvGeometry& c, F f) {
  const int64_t Ic = c.c_in / c.groups, Oc = c.c_out / c.groups;
  for (int64_t o = 0; o < c.c_out; ++o) {
    const int64_t g = o / Oc, ol = o - g * Oc;
    for (int64_t q = 0; q < c.kh; ++q)
      for (int64_t p = 0; p < c.kw; ++p)
        for (int64_t ci = 0; ci < Ic; ++ci) {
          const int64_t conv_index = ((o * c.kh + q) * c.kw + p) * Ic + ci;
          const int64_t t_index = (((g * Ic + ci) * c.kh + (c.kh - 1 - q)) * c.kw + (c.kw - 1 - p)) * Oc + ol;
          f(conv_index, t_index);
        }
  }
}
}  // namespace

void conv_weights_to_transpose(const ConvGeometry& c, const float* wc, float* wt) {
  for_each_weight_pair(c, [&](int64_t ci, int64_t ti) { wt[ti] = wc[ci]; });
}

void transpose_weights_to_conv(const ConvGeometry& c, const float* wt, float* wc) {
  for_each_weight_pair(c, [&](int64_t ci, int64_t ti) { wc[ci] = wt[ti]; });
}

void conv_bias_gradient(const ConvGeometry& c, const TensorView& dyc, DataType act_type, float* db, bool accumulate) {
  for (int64_t o = 0; o < c.c_out; ++o) {
    double acc = accumulate ? static_cast<double>(db[o]) : 0.0;
    double sum = 0.0;
    for (int64_t n = 0; n < c.n; ++n)
      for (int64_t j = 0; j < c.h_out; ++j)
        for (int64_t i = 0; i < c.w_out; ++i)
          sum += static_cast<double>(load_as_f32(dyc.data, n * dyc.sn + j * dyc.sh + i * dyc.sw + o, act_type));
    acc += sum;
    db[o] = static_cast<float>(acc);
  }
}

}  // namespace tconv::core
