// The public plan-cache calls (tconv/tuning.hpp): the process-wide cache of src/registry/plan_cache.hpp,
// with failed statuses turned into tconv::Error as everywhere in the API layer.
#include "tconv/tuning.hpp"

#include "core/status.hpp"
#include "registry/plan_cache.hpp"

namespace tconv {

void load_plan_cache(const std::string& path) { core::throw_if_error(registry::load_active_plan_cache(path)); }

void save_plan_cache(const std::string& path) { core::throw_if_error(registry::save_active_plan_cache(path)); }

void clear_plan_cache() noexcept { registry::clear_active_plan_cache(); }

bool plan_cache_active() noexcept { return registry::active_plan_cache() != nullptr; }

std::size_t plan_cache_size() noexcept {
  const registry::PlanCache* c = registry::active_plan_cache();
  return c != nullptr ? c->size() : 0;
}

}  // namespace tconv
