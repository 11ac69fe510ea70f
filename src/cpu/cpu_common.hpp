// Helpers shared by the optimised CPU algorithms (src/cpu): staging of non-float32 or precision-rounded
// inputs into float32 tiles, conversion of float32 results back into the activation type, and the tap
// geometry of the canonical problem (src/core/problem.hpp).
//
// Why staging: the micro-kernels read float32 rows through pointers (indirect GEMM). When the activation
// type is float16/bfloat16, or a precision mode rounds the multiply inputs, the operand tensor is first
// converted once into a dense float32 copy holding core::round_input(value) — exactly the value the
// reference multiplies with — so the kernels stay float32-only and precision semantics match the reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/problem.hpp"

namespace tconv::cpu {

// One spatial axis of the canonical geometry. For a source coordinate i and tap q the destination
// coordinate is o = i·s − pad + d·(k − 1 − q) (problem.hpp).
struct Axis {
  int64_t in, out, k, s, d, pad;
  int64_t dst_of(int64_t i, int64_t q) const { return i * s - pad + d * (k - 1 - q); }
  // Source coordinate of destination o through tap q, or -1 when o is not hit by that tap (the term would
  // multiply an inserted zero) or the source falls outside the image.
  int64_t src_of(int64_t o, int64_t q) const {
    const int64_t t = o + pad - d * (k - 1 - q);
    if (t < 0 || t % s != 0) return -1;
    const int64_t i = t / s;
    return i < in ? i : -1;
  }
};
inline Axis axis_h(const core::Geometry& g) { return {g.h_in, g.h_out, g.kh, g.stride_h, g.dil_h, g.pad_h}; }
inline Axis axis_w(const core::Geometry& g) { return {g.w_in, g.w_out, g.kw, g.stride_w, g.dil_w, g.pad_w}; }

// A float32 NHWC view (element strides), what the kernels read and write.
struct F32View {
  float* data = nullptr;
  int64_t sn = 0, sh = 0, sw = 0;
  float* at(int64_t n, int64_t h, int64_t w) const { return data + n * sn + h * sh + w * sw; }
};

// True when an input tensor of type t must be staged for precision p (kernels then read the copy).
inline bool input_needs_staging(DataType t, Precision p) { return t != DataType::float32 || p != Precision::fp32; }
// True when the staged value equals the stored value (round_input is the identity on type t).
bool rounding_is_identity(DataType t, Precision p);

// Bytes of a dense float32 copy of an n×h×w×c tensor, rounded up to a 64-byte multiple.
std::size_t f32_bytes(int64_t n, int64_t h, int64_t w, int64_t c);

// Copies v (type t) into dense float32 `out` with round_input(·, p) applied. Parallel over rows.
F32View stage_input(const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, DataType t,
                    Precision p, float* out, int threads);
// Writes dense float32 `in` into v (type t), rounding to nearest even. Parallel over rows.
void unstage_output(const float* in, const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c,
                    DataType t, int threads);
// A float32 view of a float32 tensor view (no copy).
inline F32View as_f32(const core::TensorView& v) { return {static_cast<float*>(v.data), v.sn, v.sh, v.sw}; }

// Rounds n up to a multiple of m.
inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Hands out consecutive pieces of an algorithm's workspace, each rounded up to 64 bytes (so every piece
// stays 64-byte aligned); workspace_bytes() must reserve the same pieces in the same order.
class WorkspaceCursor {
 public:
  explicit WorkspaceCursor(void* base) : next_(static_cast<char*>(base)) {}
  void* bytes(int64_t n) {
    char* r = next_;
    next_ += round_up(n, 64);
    return r;
  }
  float* floats(int64_t n) { return static_cast<float*>(bytes(n * 4)); }

 private:
  char* next_;
};

// Workspace of input_f32 for an n×h×w×c input of problem p (0 when the kernels read the tensor in place).
inline std::size_t input_staging_bytes(const core::Problem& p, int64_t n, int64_t h, int64_t w, int64_t c) {
  return input_needs_staging(p.act_type, p.precision) ? f32_bytes(n, h, w, c) : 0;
}
// What the kernels read for input v (n×h×w×c) of problem p: v itself when it is float32 and the precision
// mode does not round, else a rounded float32 copy staged into the next piece of the workspace.
F32View input_f32(const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, const core::Problem& p,
                  WorkspaceCursor& ws, int threads);

// Workspace of StagedOutput for an n×h×w×c output of problem p (0 when the kernels write it in place).
inline std::size_t output_staging_bytes(const core::Problem& p, int64_t n, int64_t h, int64_t w, int64_t c) {
  return p.act_type != DataType::float32 ? f32_bytes(n, h, w, c) : 0;
}
// Where the kernels write output v (n×h×w×c, type t): v itself when float32, else a dense float32 copy in
// the next piece of the workspace, which finish() converts into v (rounding to nearest even).
class StagedOutput {
 public:
  StagedOutput(const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, DataType t,
               WorkspaceCursor& ws);
  const F32View& view() const { return f32_; }
  void finish(int threads) const;

 private:
  core::TensorView v_;
  int64_t n_, h_, w_, c_;
  DataType t_;
  F32View f32_;
};

// What a weight-gradient kernel writes (diff_wei, diff_bias or null; added to or overwritten) and diff_dst as
// stored, whose unrounded values the bias gradient sums (reference semantics). The weight-gradient jobs of
// the kernels derive from it.
struct WgradTarget {
  float* dw = nullptr;       // [c_out][kh][kw][Ig]
  float* db = nullptr;       // [c_out] or null
  bool accumulate = false;
  core::TensorView dy_orig;  // diff_dst as stored
  DataType act = DataType::float32;
  void set_wgrad_target(const core::Problem& p, const core::Args& a) {
    dw = a.diff_wei;
    db = p.with_bias ? a.diff_bias : nullptr;
    accumulate = p.accumulate;
    dy_orig = a.diff_dst;
    act = p.act_type;
  }
};

// The float32 bias-gradient summands of a weight gradient: the stored diff_dst values, never rounded by the
// precision mode. That is diff_dst itself when float32, its staged copy `staged_dy` when staging did not
// round (rounding_is_identity), else an empty view (data null): the kernels then convert diff_dst one by one.
inline F32View bias_summands(const core::Problem& p, const core::TensorView& diff_dst, const F32View& staged_dy) {
  if (p.act_type == DataType::float32) return as_f32(diff_dst);
  if (rounding_is_identity(p.act_type, p.precision)) return staged_dy;
  return {};
}

}  // namespace tconv::cpu
