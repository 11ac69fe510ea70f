// Algorithm records and the ordered registry (design §3 src/registry, §4.3 validate → plan → bind → run).
// An algorithm states which canonical problems it takes (or why it declines), how much workspace it needs,
// and runs one validated problem. Tests iterate the registry, so a registered algorithm is tested at once.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/problem.hpp"
#include "core/status.hpp"
#include "tconv/device.hpp"

namespace tconv::registry {

// What an algorithm gets to run with: the device's thread budget and, for CUDA, its stream.
struct ExecContext {
  int num_threads = 1;       // CPU: OpenMP threads to use (results must not depend on it: determinism)
  void* cuda_stream = nullptr;
  int cuda_device = -1;
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  // Names spell the contract: cpu_ref_f64, cpu_phase_gemm_f32, cuda_igemm_bf16_wgmma_128x128 ...
  virtual std::string_view name() const noexcept = 0;
  virtual DeviceKind backend() const noexcept = 0;
  // Fixed reduction order: bit-identical results across runs and thread counts.
  virtual bool deterministic() const noexcept { return true; }
  // nullopt: takes the problem. Otherwise a reason naming the values that make it decline.
  virtual std::optional<std::string> decline_reason(const core::Problem& p) const = 0;
  virtual std::size_t workspace_bytes(const core::Problem& p) const { (void)p; return 0; }
  // Runs a problem that validate() accepted and decline_reason() took. Must write every output element
  // of the views (or add into them when p.accumulate), and touch nothing else.
  virtual core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                           const ExecContext& ctx) const = 0;
};

// All registered algorithms of a backend, in preference order (best first, the reference last).
const std::vector<const Algorithm*>& algorithms(DeviceKind backend);
// By name across backends; nullptr if unknown.
const Algorithm* find(std::string_view name);

struct Choice {
  const Algorithm* algorithm = nullptr;
  std::string reason;  // why it was chosen, or why nothing could be (every candidate's decline reason)
  // Set when `forced` names no registered algorithm: a caller error (invalid_argument), unlike an
  // algorithm that exists but declines the problem (unsupported).
  bool unknown_name = false;
};
// The first algorithm in preference order that takes the problem; `forced` (non-empty) picks one by name
// and fails with its decline reason if it does not take the problem. `allow_nondeterministic` gates
// algorithms whose deterministic() is false.
Choice choose(const core::Problem& p, DeviceKind backend, std::string_view forced = {},
              bool allow_nondeterministic = false);

// Each backend contributes its list (explicit, no static-initialisation tricks). Defined in src/ref,
// src/cpu and src/cuda (a stub returning nothing when CUDA is off).
std::vector<const Algorithm*> reference_algorithms();  // cpu_ref_f64
std::vector<const Algorithm*> cpu_algorithms();        // optimised CPU algorithms, best first
std::vector<const Algorithm*> cuda_algorithms();       // CUDA algorithms, best first

}  // namespace tconv::registry
