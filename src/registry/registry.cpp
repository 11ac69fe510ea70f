#include "registry/algorithm.hpp"

#include <sstream>

#include "registry/plan_cache.hpp"

namespace tconv::registry {

const std::vector<const Algorithm*>& algorithms(DeviceKind backend) {
  // Built once on first use from the explicit per-backend lists; immutable afterwards (thread-safe).
  static const std::vector<const Algorithm*> cpu = [] {
    std::vector<const Algorithm*> v = cpu_algorithms();
    for (const Algorithm* a : reference_algorithms()) v.push_back(a);
    return v;
  }();
  static const std::vector<const Algorithm*> cuda = cuda_algorithms();
  return backend == DeviceKind::cuda ? cuda : cpu;
}

const Algorithm* find(std::string_view name) {
  for (DeviceKind k : {DeviceKind::cpu, DeviceKind::cuda})
    for (const Algorithm* a : algorithms(k))
      if (a->name() == name) return a;
  return nullptr;
}

Choice choose(const core::Problem& p, DeviceKind backend, std::string_view forced, bool allow_nondeterministic) {
  Choice c;
  if (!forced.empty()) {
    const Algorithm* a = find(forced);
    if (a == nullptr) {
      c.reason = "unknown algorithm '" + std::string(forced) + "' (tconv info lists them)";
      c.unknown_name = true;
      return c;
    }
    if (a->backend() != backend) {
      c.reason = "algorithm '" + std::string(forced) + "' runs on another backend than the device";
      return c;
    }
    if (!a->deterministic() && !allow_nondeterministic) {
      c.reason = "algorithm '" + std::string(forced) + "' is nondeterministic; enable nondeterministic algorithms to use it";
      return c;
    }
    if (auto why = a->decline_reason(p)) {
      c.reason = "algorithm '" + std::string(forced) + "' declines: " + *why;
      return c;
    }
    c.algorithm = a;
    c.reason = "forced";
    return c;
  }
  // Not forced: a plan cache entry when a cache is active (plan_cache.hpp), else the preference order.
  const PlanCache* cache = active_plan_cache();
  return choose_from(algorithms(backend), cache, cache != nullptr ? plan_device_label(backend) : std::string(), p,
                     allow_nondeterministic);
}

}  // namespace tconv::registry
