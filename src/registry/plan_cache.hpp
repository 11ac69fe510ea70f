// The plan cache: measured algorithm choices that override the preference order (docs/tuning.md).
//
// The heuristic default of choose() — the first algorithm in preference order that does not decline — is
// right for most problems without tuning. `tconv tune` (or registry::tune) times every algorithm that takes
// a problem and records the fastest here; when a cache is active, choose() takes a cached entry for the
// problem if that algorithm still exists, runs on the backend, is allowed by the determinism setting and
// takes the problem, and otherwise falls back to the preference order (a stale or foreign entry is never
// an error: the cache is an optimisation only).
//
// A key is everything that affects which algorithms take a problem and how fast they are: direction,
// geometry, groups, activation type, precision, the bias / accumulate / neuron flags, and the device (backend
// and its name, so a cache tuned on an H100 does nothing on another GPU or on the CPU). Data pointers and
// view strides are not part of it: decline rules see the canonical problem only, and the tuner times dense
// views.
//
// An entry is recorded per determinism mode: `deterministic_only` entries hold the fastest deterministic
// algorithm and serve every run; entries with it false hold the fastest of all algorithms and serve only runs
// that allow nondeterministic algorithms (they are consulted first there).
//
// File format (JSON, version 1; written atomically through io::write_file_atomic):
//   {"format": "tconv-plan-cache", "version": 1,
//    "entries": [{"device": "cuda:NVIDIA H100 80GB HBM3", "problem": "bwd_data n128 ci512 ...",
//                 "deterministic_only": true, "algorithm": "cuda_tc_igemm_...", "ms": 0.123}, ...]}
// A file that is not JSON, has another format tag or a newer version, or an entry with a missing or
// mistyped field, is refused as a whole with ErrorCode::format_error naming the file, the entry and the
// field; the cache it was to be loaded into is left unchanged.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/problem.hpp"
#include "core/status.hpp"
#include "registry/algorithm.hpp"
#include "tconv/device.hpp"

namespace tconv::registry {

inline constexpr int kPlanCacheVersion = 1;

// The canonical text of a problem's key, e.g. "bwd_weights n22 ci512 co256 g1 in4x4 out8x8 k4x4 s2x2 d1x1
// p1x1 float32 fp32 bias=1 accumulate=0 neuron=none". Part of the file format: change it only with the version.
std::string plan_problem_key(const core::Problem& p);
// The device part of a key: "cpu:<model name from /proc/cpuinfo>" or "cuda:<device name>" (of `ordinal`).
// Computed once per process and device.
std::string plan_device_label(DeviceKind backend, int ordinal = 0);

struct PlanEntry {
  std::string device;            // plan_device_label
  std::string problem;           // plan_problem_key
  bool deterministic_only = true;
  std::string algorithm;         // Algorithm::name()
  double ms = 0;                 // the median time measured when tuning (informational)
};

// A thread-safe map from (device, problem, mode) to an entry. Lookups take a shared lock, so choose() on many
// threads does not serialise.
class PlanCache {
 public:
  PlanCache() = default;
  PlanCache(const PlanCache& o);
  PlanCache& operator=(const PlanCache& o);

  // Adds or replaces the entry with the same device, problem and mode.
  void put(const PlanEntry& e);
  std::optional<PlanEntry> find(std::string_view device, std::string_view problem, bool deterministic_only) const;
  std::vector<PlanEntry> entries() const;  // sorted by (device, problem, mode)
  std::size_t size() const;
  void clear();

  // Serialisation (file format above). parse() replaces nothing on failure; `origin` names the source in
  // messages (a path).
  std::string to_json() const;
  static core::Status parse(std::string_view text, const std::string& origin, PlanCache* out);
  // Reads `path` and, on success, replaces (merge = false) or adds to (merge = true) this cache's entries.
  // io_error: the file cannot be read; format_error: see above. On failure this cache is unchanged.
  core::Status load(const std::string& path, bool merge = false);
  // Writes atomically (a reader sees the old file or the complete new one). io_error names the path.
  core::Status save(const std::string& path) const;

 private:
  using Key = std::tuple<std::string, std::string, bool>;
  mutable std::shared_mutex mu_;
  std::map<Key, PlanEntry, std::less<>> map_;
};

// ---- the process-wide cache choose() consults ---------------------------------------------------------------
// Inactive until a cache is loaded. The first call of any function below (or of choose()) reads the
// environment variable TCONV_PLAN_CACHE once: when it names a file, that file is loaded; when the file cannot
// be read or is malformed, one line on stderr says why and the cache stays inactive (a process never fails
// because of its plan cache).

// The active cache, or nullptr when none is active. The pointer stays valid for the life of the process.
const PlanCache* active_plan_cache();
// Loads `path` as the active cache (replacing its entries) and activates it. On failure (io_error,
// format_error) the active cache and its state are unchanged.
core::Status load_active_plan_cache(const std::string& path);
// Writes the active cache (an empty cache when none is active) to `path` atomically.
core::Status save_active_plan_cache(const std::string& path);
// Makes `c` the active cache's content and activates it.
void set_active_plan_cache(const PlanCache& c);
// Empties and deactivates the active cache (choose() uses the preference order again).
void clear_active_plan_cache();

// ---- choice with an explicit cache and candidate list ------------------------------------------------------
// What choose() does without a forced name: with `cache`, the entry for (device, plan_problem_key(p)) wins —
// the mode-any entry first when nondeterministic algorithms are allowed, then the deterministic one — if its
// algorithm is among `candidates`, is allowed by the determinism setting and takes p; otherwise the first
// candidate that is allowed and takes p. Choice::reason says which and, for an entry ignored, why.
// choose() passes the active cache, plan_device_label(backend) and algorithms(backend); tests pass their own.
Choice choose_from(const std::vector<const Algorithm*>& candidates, const PlanCache* cache, std::string_view device,
                   const core::Problem& p, bool allow_nondeterministic);

}  // namespace tconv::registry
