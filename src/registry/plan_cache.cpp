#include "registry/plan_cache.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cuda/backend.hpp"
#include "io/files.hpp"

namespace tconv::registry {

std::string plan_problem_key(const core::Problem& p) {
  const core::Geometry& g = p.g;
  std::ostringstream s;
  s << core::to_string(p.dir) << " n" << g.n << " ci" << g.c_in << " co" << g.c_out << " g" << g.groups << " in"
    << g.h_in << "x" << g.w_in << " out" << g.h_out << "x" << g.w_out << " k" << g.kh << "x" << g.kw << " s"
    << g.stride_h << "x" << g.stride_w << " d" << g.dil_h << "x" << g.dil_w << " p" << g.pad_h << "x" << g.pad_w
    << " " << to_string(p.act_type) << " " << to_string(p.precision) << " bias=" << (p.with_bias ? 1 : 0)
    << " accumulate=" << (p.accumulate ? 1 : 0) << " neuron=" << to_string(p.neuron.type);
  return s.str();
}

namespace {

std::string cpu_model_name() {
  // The first "model name" line of /proc/cpuinfo (x86 and most Arm kernels have one); without it the
  // entries of this machine are still keyed consistently, just not told apart from another unnamed CPU.
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    const auto b = v.find_first_not_of(" \t");
    const auto e = v.find_last_not_of(" \t\r");
    if (b != std::string::npos) return v.substr(b, e - b + 1);
  }
  return "unknown";
}

}  // namespace

std::string plan_device_label(DeviceKind backend, int ordinal) {
  // Asked on every choose() while a cache is active: computed once per device (a /proc read or a CUDA
  // property query is far slower than the lookup itself).
  // Never destroyed, like the active cache below (choose() may run during exit).
  struct Labels {
    std::mutex mu;
    std::map<std::pair<int, int>, std::string> map;
  };
  static Labels* labels = new Labels;
  const std::pair<int, int> k{static_cast<int>(backend), backend == DeviceKind::cuda ? ordinal : 0};
  std::lock_guard<std::mutex> lock(labels->mu);
  auto it = labels->map.find(k);
  if (it != labels->map.end()) return it->second;
  const std::string label =
      backend == DeviceKind::cuda ? "cuda:" + cuda_backend::device_name(ordinal) : "cpu:" + cpu_model_name();
  labels->map.emplace(k, label);
  return label;
}

// ---------------------------------------------------------------- PlanCache

PlanCache::PlanCache(const PlanCache& o) {
  std::shared_lock<std::shared_mutex> lock(o.mu_);
  map_ = o.map_;
}

PlanCache& PlanCache::operator=(const PlanCache& o) {
  if (this == &o) return *this;
  std::map<Key, PlanEntry, std::less<>> copy;
  {
    std::shared_lock<std::shared_mutex> lock(o.mu_);
    copy = o.map_;
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  map_.swap(copy);
  return *this;
}

void PlanCache::put(const PlanEntry& e) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  map_[Key{e.device, e.problem, e.deterministic_only}] = e;
}

std::optional<PlanEntry> PlanCache::find(std::string_view device, std::string_view problem,
                                         bool deterministic_only) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  // The map's key holds strings; build one key to look up (choose() calls this once or twice per plan).
  auto it = map_.find(Key{std::string(device), std::string(problem), deterministic_only});
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::vector<PlanEntry> PlanCache::entries() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<PlanEntry> v;
  v.reserve(map_.size());
  for (const auto& [k, e] : map_) v.push_back(e);
  return v;
}

std::size_t PlanCache::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return map_.size();
}

void PlanCache::clear() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  map_.clear();
}

std::string PlanCache::to_json() const {
  // ordered_json: fields in the order of the format description (the header first), not alphabetical.
  nlohmann::ordered_json entries = nlohmann::ordered_json::array();
  for (const PlanEntry& e : this->entries()) {
    entries.push_back({{"device", e.device}, {"problem", e.problem}, {"deterministic_only", e.deterministic_only},
                       {"algorithm", e.algorithm}, {"ms", e.ms}});
  }
  nlohmann::ordered_json j = {{"format", "tconv-plan-cache"}, {"version", kPlanCacheVersion}, {"entries", entries}};
  return j.dump(1) + "\n";  // one field per line: small files that diff and hand-edit well
}

core::Status PlanCache::parse(std::string_view text, const std::string& origin, PlanCache* out) {
  auto bad = [&](const std::string& what) {
    return core::fail(ErrorCode::format_error, "plan cache '" + origin + "': " + what);
  };
  const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not valid JSON (a truncated or corrupt file? delete it and tune again)");
  if (!j.is_object()) return bad("the top level is not a JSON object");
  if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != "tconv-plan-cache")
    return bad("\"format\" is not \"tconv-plan-cache\" (not a plan cache file)");
  if (!j.contains("version") || !j["version"].is_number_integer())
    return bad("\"version\" is missing or not an integer");
  const int64_t version = j["version"].get<int64_t>();
  if (version > kPlanCacheVersion)
    return bad("version " + std::to_string(version) + " was written by a newer tconv (this one reads version " +
               std::to_string(kPlanCacheVersion) + ")");
  if (version < 1) return bad("version " + std::to_string(version) + " is not a valid version");
  if (!j.contains("entries") || !j["entries"].is_array()) return bad("\"entries\" is missing or not an array");
  PlanCache c;
  std::size_t index = 0;
  for (const nlohmann::json& e : j["entries"]) {
    const std::string at = "entry " + std::to_string(index++);
    if (!e.is_object()) return bad(at + " is not an object");
    auto str = [&](const char* field, std::string& v) -> core::Status {
      if (!e.contains(field) || !e[field].is_string() || e[field].get<std::string>().empty())
        return bad(at + ": \"" + field + "\" is missing or not a non-empty string");
      v = e[field].get<std::string>();
      return core::Status::ok_status();
    };
    PlanEntry pe;
    if (auto s = str("device", pe.device); !s.ok()) return s;
    if (auto s = str("problem", pe.problem); !s.ok()) return s;
    if (auto s = str("algorithm", pe.algorithm); !s.ok()) return s;
    if (!e.contains("deterministic_only") || !e["deterministic_only"].is_boolean())
      return bad(at + ": \"deterministic_only\" is missing or not true/false");
    pe.deterministic_only = e["deterministic_only"].get<bool>();
    if (!e.contains("ms") || !e["ms"].is_number()) return bad(at + ": \"ms\" is missing or not a number");
    pe.ms = e["ms"].get<double>();
    if (!std::isfinite(pe.ms) || pe.ms < 0) return bad(at + ": \"ms\" is " + std::to_string(pe.ms) + ", not >= 0");
    c.put(pe);  // a later duplicate of (device, problem, mode) replaces an earlier one
  }
  *out = c;
  return core::Status::ok_status();
}

core::Status PlanCache::load(const std::string& path, bool merge) {
  std::vector<uint8_t> bytes;
  try {
    bytes = io::read_file(path);
  } catch (const Error& e) {
    return core::fail(e.code(), std::string("plan cache: ") + e.message());
  }
  PlanCache loaded;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (auto s = parse(text, path, &loaded); !s.ok()) return s;
  if (!merge) {
    *this = loaded;
  } else {
    for (const PlanEntry& e : loaded.entries()) put(e);
  }
  return core::Status::ok_status();
}

core::Status PlanCache::save(const std::string& path) const {
  const std::string text = to_json();
  try {
    io::write_file_atomic(path, text.data(), text.size());
  } catch (const Error& e) {
    return core::fail(e.code(), std::string("plan cache: ") + e.message());
  }
  return core::Status::ok_status();
}

// ---------------------------------------------------------------- the process-wide cache

namespace {

struct Global {
  PlanCache cache;
  std::atomic<bool> active{false};
  std::once_flag env_once;
};

// Never destroyed: choose() may run from other static destructors or detached threads at exit.
Global& raw_global() {
  static Global* g = new Global;
  return *g;
}

Global& global() {
  Global& g = raw_global();
  std::call_once(g.env_once, [&g] {
    const char* path = std::getenv("TCONV_PLAN_CACHE");
    if (path == nullptr || *path == '\0') return;
    const core::Status s = g.cache.load(path);
    if (!s.ok()) {
      // The engine does not throw and a plan cache is only an optimisation: say why once, run on with the
      // preference order.
      std::fprintf(stderr, "tconv: warning: TCONV_PLAN_CACHE ignored: %s: %s\n", to_string(s.code), s.message.c_str());
      return;
    }
    g.active.store(true, std::memory_order_release);
  });
  return g;
}

}  // namespace

const PlanCache* active_plan_cache() {
  Global& g = global();
  return g.active.load(std::memory_order_acquire) ? &g.cache : nullptr;
}

core::Status load_active_plan_cache(const std::string& path) {
  Global& g = global();
  PlanCache c;
  if (auto s = c.load(path); !s.ok()) return s;
  g.cache = c;
  g.active.store(true, std::memory_order_release);
  return core::Status::ok_status();
}

core::Status save_active_plan_cache(const std::string& path) {
  return global().cache.save(path);  // inactive: empty (cleared or never loaded)
}

void set_active_plan_cache(const PlanCache& c) {
  Global& g = global();
  g.cache = c;
  g.active.store(true, std::memory_order_release);
}

void clear_active_plan_cache() {
  Global& g = global();
  g.active.store(false, std::memory_order_release);
  g.cache.clear();
}

// ---------------------------------------------------------------- choice

Choice choose_from(const std::vector<const Algorithm*>& candidates, const PlanCache* cache, std::string_view device,
                   const core::Problem& p, bool allow_nondeterministic) {
  Choice c;
  std::string ignored;  // why cached entries were not taken (shown in the reason: `tconv info`, errors)
  if (cache != nullptr && cache->size() > 0) {
    const std::string key = plan_problem_key(p);
    // With nondeterministic algorithms allowed, the fastest of all first, then the fastest deterministic.
    const bool modes[2] = {false, true};
    for (int m = allow_nondeterministic ? 0 : 1; m < 2; ++m) {
      const std::optional<PlanEntry> e = cache->find(device, key, modes[m]);
      if (!e) continue;
      const Algorithm* a = nullptr;
      for (const Algorithm* cand : candidates)
        if (cand->name() == e->algorithm) a = cand;
      std::string why;
      if (a == nullptr) why = "not registered for this backend in this build";
      else if (!a->deterministic() && !allow_nondeterministic) why = "nondeterministic, and nondeterministic algorithms are not allowed";
      else if (auto r = a->decline_reason(p)) why = "declines: " + *r;
      if (why.empty()) {
        std::ostringstream r;
        r << ignored << "plan cache (fastest when tuned: " << e->ms << " ms)";
        c.algorithm = a;
        c.reason = r.str();
        return c;
      }
      ignored += "plan cache entry '" + e->algorithm + "' ignored: " + why + "; ";
    }
  }
  std::ostringstream why;
  for (const Algorithm* a : candidates) {
    if (!a->deterministic() && !allow_nondeterministic) {
      why << a->name() << ": nondeterministic; ";
      continue;
    }
    if (auto r = a->decline_reason(p)) {
      why << a->name() << ": " << *r << "; ";
      continue;
    }
    c.algorithm = a;
    c.reason = ignored + "first in preference order that takes the problem";
    return c;
  }
  c.reason = "no algorithm takes " + p.describe() + ": " + ignored + why.str();
  return c;
}

}  // namespace tconv::registry
