// The autotuner (docs/tuning.md): times every algorithm that takes a problem on a device and records the
// fastest in a plan cache. Opt-in: nothing calls it on a plan; `tconv tune` and programs that want measured
// choices do, and choose() then consults the cache they fill (plan_cache.hpp).
//
// Timing is the one place of it in the library: dense NHWC tensors of random values in [-1, 1] (the
// problem's activation type; float32 weights), `warmup` untimed runs, then the median of `reps` runs —
// CPU: std::chrono::steady_clock around each run (the algorithms run synchronously); CUDA: timing events
// recorded on one stream between back-to-back runs (GPU time, the host issues ahead; cuda_backend facade).
// An algorithm whose first run already takes more than prune_factor times the best median so far is not run
// again (its one time is kept): the reference and other slow paths cost one run, not warmup + reps.
#pragma once

#include <string>
#include <vector>

#include "core/problem.hpp"
#include "core/status.hpp"
#include "registry/algorithm.hpp"
#include "registry/plan_cache.hpp"

namespace tconv::registry {

struct TuneOptions {
  int warmup = 2;
  int reps = 5;
  bool allow_nondeterministic = false;  // also time (and record a mode-any entry for) nondeterministic algorithms
  int num_threads = 1;                  // CPU: the ExecContext thread budget (time at the count you will run with)
  int cuda_device = 0;                  // CUDA: the device ordinal
  double prune_factor = 20.0;
  uint64_t seed = 1;
};

struct AlgorithmTiming {
  const Algorithm* algorithm = nullptr;
  double ms = 0;      // median of the timed runs
  int runs = 0;       // timed runs (1 when pruned)
  std::string error;  // the run failed: not eligible (message of its Status)
};

struct TuneResult {
  std::vector<AlgorithmTiming> timings;  // each allowed algorithm that takes the problem, in preference order
  const Algorithm* default_choice = nullptr;  // what the preference order picks (same determinism setting)
  bool nondeterministic_timed = false;        // nondeterministic algorithms were allowed

  // The fastest timing without an error (deterministic algorithms only when deterministic_only); nullptr if none.
  const AlgorithmTiming* fastest(bool deterministic_only) const;
  // The default choice's timing; nullptr when it failed or there is no default.
  const AlgorithmTiming* default_timing() const;
};

// Times the algorithms of `backend` (or `candidates`, when given: tests) that take `p`. Fails with the
// problem's validation error, device_unavailable / out_of_memory for the device and its tensors, unsupported
// when no algorithm takes the problem, internal when every one that does failed to run (their messages).
core::Status tune(const core::Problem& p, DeviceKind backend, const TuneOptions& o, TuneResult* out,
                  const std::vector<const Algorithm*>* candidates = nullptr);

// Records a result: the fastest deterministic algorithm as a deterministic_only entry, and when
// nondeterministic algorithms were timed, the fastest of all as a mode-any entry. Nothing when none ran.
void record(PlanCache& cache, const core::Problem& p, const std::string& device, const TuneResult& r);

}  // namespace tconv::registry
