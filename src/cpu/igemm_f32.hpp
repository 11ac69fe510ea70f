// The indirect-GEMM engine shared by the forward (phase decomposition) and data-gradient algorithms.
//
// Both directions are, per destination pixel, a sum over kernel taps of (a source row) × (a weight slice):
//   fwd       dst[n][oy][ox][g·Og + o]      = bias[o] + Σ_taps Σ_c  src[n][iy][ix][g·Ig + c] · wei[g·Og + o][q][p][c]
//   bwd_data  diff_src[n][iy][ix][g·Ig + c] =           Σ_taps Σ_o  diff_dst[n][oy][ox][g·Og + o] · wei[g·Og + o][q][p][c]
// so one engine computes C[pixel][col] = init[col] + Σ_t Σ_k A_t[pixel][k] · B_t[k][col], where A_t[pixel] is a
// pointer to a row of the operand image (or to a zero row when the tap falls outside it: padding) and B_t is
// the weight slice of tap t packed into panels of NR columns. There is no im2col buffer: the micro-kernel
// reads the operand rows in place through the pointer table (XNNPACK's indirection idea), so grouped layers
// need no per-group copies either (the group is a channel offset on the same rows).
//
// Forward: destination pixels are enumerated phase by phase (oy mod stride_h, ox mod stride_w); all pixels of
// one phase are hit by the same taps, so the taps that would multiply an inserted zero are dropped for the
// whole phase, and no multiply touches an inserted zero (the sub-pixel decomposition).
#pragma once

#include <cstddef>

#include "core/problem.hpp"
#include "cpu/cpu_common.hpp"
#include "tconv/types.hpp"

namespace tconv::cpu {

struct IgemmJob {
  bool fwd = true;
  core::Geometry g;
  F32View a;                   // fwd: src; bwd_data: diff_dst (float32, already rounded for the precision mode)
  F32View c;                   // fwd: dst; bwd_data: diff_src (float32)
  const float* wei = nullptr;  // [c_out][kh][kw][Ig], rounded with round_input while packing
  Precision precision = Precision::fp32;
  const float* bias = nullptr;  // fwd only; null ⇒ no bias
  NeuronDescriptor neuron{};    // fwd only
  void* packed = nullptr;       // igemm_packed_bytes(g, fwd) bytes
  int threads = 1;
};

// Workspace for the packed weights (upper bound over all compiled SIMD targets).
std::size_t igemm_packed_bytes(const core::Geometry& g, bool fwd);
// Runs the job with the best SIMD target of this machine (Highway dynamic dispatch).
void igemm_run(const IgemmJob& job);

}  // namespace tconv::cpu
