// cuda_simt_f32: the fp32 precision mode on the CUDA cores (exact float32 FFMA, no tensor cores — tf32 is a
// different mode), for all three passes: register-blocked SIMT implicit GEMMs (simt_f32.cuh) for the forward
// pass and the data gradient (simt_f32_gather.cu) and for the weight and bias gradients with deterministic
// split-K (simt_f32_wgrad.cu). Float32 images only. Deterministic: fixed k order per output, fixed-order
// reductions, no atomics.
// Declines fewer than 4 channels per group (a 32..128-wide channel tile would be mostly padding; the
// few-channel kernels and cuda_direct take those) and sizes beyond its 32-bit grid and slab counters.
#include <algorithm>
#include <optional>
#include <string>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/simt_f32.cuh"

namespace tconv::registry {
namespace {

class CudaSimtF32 final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_simt_f32"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.precision != Precision::fp32)
      return "precision " + std::string(to_string(p.precision)) + " is not fp32 (tensor-core algorithms take it)";
    if (p.act_type != DataType::float32)
      return "activation type " + std::string(to_string(p.act_type)) + " is not float32";
    const core::Geometry& g = p.g;
    if (g.ig() < 4 || g.og() < 4)
      return "fewer than 4 channels per group (" + std::to_string(g.ig()) + " in, " + std::to_string(g.og()) +
             " out): the channel tile would be mostly padding";
    // The kernels compute coordinates in 32 bits: iy·sh + dh·(kh − 1) − ph and the like stay below 2^31.
    constexpr int64_t kCoord = int64_t{1} << 29;
    if (std::max({g.h_in * g.stride_h, g.w_in * g.stride_w, g.h_out, g.w_out, g.dil_h * g.kh, g.dil_w * g.kw,
                  std::abs(g.pad_h), std::abs(g.pad_w)}) > kCoord)
      return "spatial extent beyond 2^29 (input size × stride, output size, dilated kernel or padding)";
    const int64_t taps = g.kh * g.kw;
    if (p.dir == core::Direction::bwd_weights) {
      if (g.n * g.h_in * g.w_in > (int64_t{1} << 33)) return "more than 2^33 source pixels";
      const int64_t tiles = ((taps * g.og() + 31) / 32) * ((g.ig() + 31) / 32) * g.groups;
      if (tiles > (int64_t{1} << 22)) return "too many weight-gradient tiles (" + std::to_string(tiles) + ")";
      return std::nullopt;
    }
    const bool fwd = p.dir == core::Direction::fwd;
    const int64_t k_total = fwd ? g.ig() : g.og(), n_total = fwd ? g.og() : g.ig();
    const int64_t phases = fwd ? g.stride_h * g.stride_w : 1;
    const int64_t m = fwd ? g.n * ((g.h_out + g.stride_h - 1) / g.stride_h) * ((g.w_out + g.stride_w - 1) / g.stride_w)
                          : g.n * g.h_in * g.w_in;
    if (taps * ((k_total + cuda_simt::kBK - 1) / cuda_simt::kBK) > (int64_t{1} << 30))
      return "more than 2^30 k slabs per tile (" + std::to_string(taps) + " taps × " + std::to_string(k_total) +
             " channels)";
    // bwd_data may split k in up to 16 ranges along the grid's z (simt_f32_gather.cu).
    if ((m + 63) / 64 > 0x7fffffff || g.groups * phases * (fwd ? 1 : 16) > 65535 || (n_total + 31) / 32 > 65535)
      return "grid too large (pixels " + std::to_string(m) + ", groups×phases " + std::to_string(g.groups * phases) +
             ", channels " + std::to_string(n_total) + ")";
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    return p.dir == core::Direction::bwd_weights ? cuda_simt::wgrad_workspace_bytes(p)
                                                 : cuda_simt::gather_workspace_bytes(p);
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    cuda_backend::DeviceGuard guard(ctx.cuda_device);
    if (!guard.ok()) return guard.status();
    const auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
    if (p.dir == core::Direction::bwd_weights) return cuda_simt::launch_wgrad(p, a, workspace, stream);
    return cuda_simt::launch_gather(p, a, workspace, stream);
  }
};

}  // namespace

const Algorithm* cuda_simt_f32_algorithm() {
  static const CudaSimtF32 algorithm;
  return &algorithm;
}

}  // namespace tconv::registry
