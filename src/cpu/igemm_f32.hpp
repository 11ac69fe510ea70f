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

#include <optional>
#include <string>
#include <string_view>

#include "core/problem.hpp"
#include "cpu/cpu_common.hpp"
#include "registry/algorithm.hpp"
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

// The registered algorithm of one direction of the engine (fwd: phase_igemm_fwd.cpp; bwd_data:
// igemm_bwd_data.cpp), which runs a whole problem as one job. Its workspace holds the packed weights, then
// the float32 staging of the operand image and of the output image where the problem's type and precision
// need it (cpu_common.hpp).
class IgemmAlgorithm final : public registry::Algorithm {
 public:
  // `computes` names the direction in the decline reason ("the <computes> only, not ...").
  IgemmAlgorithm(std::string_view name, core::Direction dir, std::string_view computes)
      : name_(name), dir_(dir), computes_(computes) {}
  std::string_view name() const noexcept override { return name_; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  std::optional<std::string> decline_reason(const core::Problem& p) const override;
  std::size_t workspace_bytes(const core::Problem& p) const override;
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const registry::ExecContext& ctx) const override;

 private:
  std::string_view name_;
  core::Direction dir_;
  std::string_view computes_;
};

}  // namespace tconv::cpu
