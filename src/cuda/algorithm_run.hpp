// Host-side pieces of the Algorithm records that CUDA algorithms with one launcher per direction share
// (cuda_direct.cu, stream_depthwise.cu, igemm_mma.cu): the activation-type check of decline_reason(), the
// device / workspace / direction plumbing of run(), and the single instance each file registers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/problem.hpp"
#include "core/status.hpp"
#include "cuda/cuda_util.hpp"
#include "registry/algorithm.hpp"

namespace tconv::cuda_backend {

// Why an algorithm that handles float32, float16 and bfloat16 images declines type t (nullopt: it does not).
inline std::optional<std::string> unsupported_activation(DataType t) {
  if (t == DataType::float32 || t == DataType::float16 || t == DataType::bfloat16) return std::nullopt;
  return "activation type " + std::string(to_string(t)) + " is not float32, float16 or bfloat16";
}

// run() of such an algorithm: makes ctx's device current for the call, refuses a missing workspace when the
// problem needs `workspace_bytes`, then returns the launcher of the problem's direction, each called as
// launch(stream) with ctx's stream.
template <class Fwd, class BwdData, class BwdWeights>
core::Status run_by_direction(std::string_view algorithm, const core::Problem& p, const registry::ExecContext& ctx,
                              const void* workspace, std::size_t workspace_bytes, const Fwd& fwd,
                              const BwdData& bwd_data, const BwdWeights& bwd_weights) {
  DeviceGuard guard(ctx.cuda_device);
  if (!guard.ok()) return guard.status();
  const auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  if (workspace == nullptr && workspace_bytes != 0)
    return core::invalid(std::string(algorithm) + " needs " + std::to_string(workspace_bytes) +
                         " bytes of device workspace");
  switch (p.dir) {
    case core::Direction::fwd: return fwd(stream);
    case core::Direction::bwd_data: return bwd_data(stream);
    case core::Direction::bwd_weights: return bwd_weights(stream);
  }
  return core::invalid("unknown direction");
}

// The one instance of algorithm class A, what each file's registration accessor returns.
template <class A>
const registry::Algorithm* single_instance() {
  static const A algorithm;
  return &algorithm;
}

}  // namespace tconv::cuda_backend
