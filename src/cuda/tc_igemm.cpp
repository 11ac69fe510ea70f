// cuda_tc_igemm: pipelined tensor-core implicit GEMM for the forward pass and the data gradient, when the images
// already have the precision's element type (bf16 images with bf16 precision, f16 with fp16, f32 with tf32). This
// file is the algorithm as the registry sees it — what it declines and why, its workspace, the dispatch to one
// operand type's kernels; the design and the kernels are tc_igemm_kernels.cuh, the planner tc_igemm_plan.cpp.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/tc_igemm.hpp"
#include "cuda/tc_igemm_plan.hpp"

namespace tconv::registry {
namespace {

// Element bytes of the operand type of a precision mode this algorithm takes (0: not taken).
int operand_bytes(const core::Problem& p) {
  if (p.precision == Precision::bf16 && p.act_type == DataType::bfloat16) return 2;
  if (p.precision == Precision::fp16 && p.act_type == DataType::float16) return 2;
  if (p.precision == Precision::tf32 && p.act_type == DataType::float32) return 4;
  return 0;
}

class CudaTcIgemm final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_tc_igemm"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.dir == core::Direction::bwd_weights)
      return "the weight gradient is not computed here (cuda_tc_wgrad, cuda_igemm_mma take it)";
    const int bytes = operand_bytes(p);
    if (bytes == 0)
      return "activation type " + std::string(to_string(p.act_type)) + " with precision " +
             std::string(to_string(p.precision)) +
             ": only bfloat16+bf16, float16+fp16 and float32+tf32 are copied straight into the tensor cores";
    const core::Geometry& g = p.g;
    const bool fwd = p.dir == core::Direction::fwd;
    const int64_t kc = fwd ? g.ig() : g.og(), n_cols = fwd ? g.og() : g.ig();
    const int64_t vec = 16 / bytes;
    if (kc % vec != 0)
      return "reduction channels per group " + std::to_string(kc) + " not a multiple of " + std::to_string(vec) +
             " (16-byte copies)";
    if (n_cols < cuda_tc::kMinChannels)
      return "fewer than " + std::to_string(cuda_tc::kMinChannels) + " output channels per group (" +
             std::to_string(n_cols) + "): a tensor-core tile would be mostly empty";
    if (g.kh > cuda_tc::kMaxTaps || g.kw > cuda_tc::kMaxTaps)
      return "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " larger than " +
             std::to_string(cuda_tc::kMaxTaps) + " per dimension";
    constexpr int64_t k30 = int64_t{1} << 30, k29 = int64_t{1} << 29;
    if (g.h_in * g.stride_h > k30 || g.w_in * g.stride_w > k30 || g.h_out > k30 || g.w_out > k30 ||
        std::abs(g.pad_h) > k29 || std::abs(g.pad_w) > k29 || g.dil_h * (g.kh - 1) > k29 ||
        g.dil_w * (g.kw - 1) > k29 || g.c_in > k30 || g.c_out > k30)
      return "spatial extent or channel count too large for 32-bit coordinates";
    const cuda_tc::GemmDims d = cuda_tc::gemm_dims(p, bytes);  // the launch grid's extent
    if ((d.max_m + 63) / 64 > 0x7fffffff || (n_cols + 63) / 64 > 65535 || d.gz > 65535)
      return "grid too large (pixels " + std::to_string(d.max_m) + ", groups x phases " + std::to_string(d.gz) + ")";
    return std::nullopt;
  }

  // The packed weights (operand type), plus the split-K partial tiles where the plan splits (the larger of the
  // wgmma and the mma.sync plan: the device is not known here), each with 16 bytes to align its start.
  std::size_t workspace_bytes(const core::Problem& p) const override {
    if (p.dir == core::Direction::bwd_weights) return 0;
    const int bytes = operand_bytes(p);
    return bytes == 0 ? 0 : cuda_tc::workspace_for(p, bytes);
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    cuda_backend::DeviceGuard guard(ctx.cuda_device);
    if (!guard.ok()) return guard.status();
    const auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
    const bool fwd = p.dir == core::Direction::fwd;
    // 16-byte copies need the gathered view's start and strides on 16-byte boundaries (the channel count per
    // group is, by decline_reason). A view that is not — a window at an odd channel offset, say — goes to
    // cuda_igemm_mma, which loads element by element; decline_reason cannot see pointers.
    const core::TensorView& in = fwd ? a.src : a.diff_dst;
    const int64_t vec = 16 / operand_bytes(p);
    if (!cuda_tc::aligned16(in.data) || in.sn % vec != 0 || in.sh % vec != 0 || in.sw % vec != 0) {
      const Algorithm* fallback = cuda_igemm_mma_algorithm();
      if (auto why = fallback->decline_reason(p))
        return core::unsupported("cuda_tc_igemm: input view not 16-byte aligned, and cuda_igemm_mma declines: " + *why);
      if (fallback->workspace_bytes(p) != 0)
        return core::unsupported("cuda_tc_igemm: input view not 16-byte aligned (cuda_igemm_mma needs workspace)");
      return fallback->run(p, a, nullptr, ctx);
    }
    if (workspace == nullptr) return core::invalid("cuda_tc_igemm needs device workspace for the packed weights");
    int device = 0;  // the guard made it current
    if (cudaGetDevice(&device) != cudaSuccess) cudaGetLastError();
    switch (p.precision) {
      case Precision::bf16: return cuda_tc::run_igemm_bf16(p, a, workspace, stream, device);
      case Precision::fp16: return cuda_tc::run_igemm_f16(p, a, workspace, stream, device);
      case Precision::tf32: return cuda_tc::run_igemm_tf32(p, a, workspace, stream, device);
      default: return core::unsupported("cuda_tc_igemm: precision " + std::string(to_string(p.precision)));
    }
  }
};

}  // namespace

const Algorithm* cuda_tc_igemm_algorithm() {
  static const CudaTcIgemm algorithm;
  return &algorithm;
}

}  // namespace tconv::registry
