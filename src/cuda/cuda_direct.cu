// cuda_direct: the direct, deterministic CUDA kernel family for all three directions, every activation type
// (f32, f16, bf16) and every precision mode (inputs rounded as core::round_input does, float32
// accumulation). It takes every problem core::validate() accepts, so the CUDA backend always has an
// algorithm; faster algorithms are registered ahead of it and decline what they cannot do.
// Kernels: direct_fwd.cu (gather), direct_bwd_data.cu (gather), direct_bwd_weights.cu (two-pass split-K).
#include <optional>
#include <string>

#include "cuda/algorithm_run.hpp"
#include "cuda/cuda_algorithms.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::registry {
namespace {

class CudaDirect final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_direct"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    return cuda_backend::unsupported_activation(p.act_type);
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    switch (p.dir) {
      case core::Direction::fwd: return cuda_direct::fwd_workspace_bytes(p);
      case core::Direction::bwd_data: return 0;
      case core::Direction::bwd_weights: return cuda_direct::bwd_weights_workspace_bytes(p);
    }
    return 0;
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    return cuda_backend::run_by_direction(
        name(), p, ctx, workspace, workspace_bytes(p),
        [&](cudaStream_t s) { return cuda_direct::launch_fwd(p, a, workspace, s); },
        [&](cudaStream_t s) { return cuda_direct::launch_bwd_data(p, a, s); },
        [&](cudaStream_t s) { return cuda_direct::launch_bwd_weights(p, a, workspace, s); });
  }
};

}  // namespace

const Algorithm* cuda_direct_algorithm() { return cuda_backend::single_instance<CudaDirect>(); }

}  // namespace tconv::registry
