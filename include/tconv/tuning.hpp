// tconv — the plan cache: measured algorithm choices (docs/tuning.md).
//
// Without a cache every plan takes the first algorithm in the backend's preference order that takes the
// problem (the heuristic default). `tconv tune --suite FILE --cache FILE` times every algorithm on each layer
// and writes the fastest per problem and device to a cache file; a program that loads that file — with
// load_plan_cache(), or by setting the environment variable TCONV_PLAN_CACHE=FILE, read once at the first
// plan — then plans with the measured choices. An entry whose algorithm is unknown to this build, declines
// the problem or is nondeterministic where that is not allowed is skipped (the default is used), so a cache
// can never make a plan fail. A forced algorithm (KernelProperties::algorithm, --algo) overrides the cache.
//
// Errors follow tconv/error.hpp: these functions throw tconv::Error. A malformed file is refused as a whole
// (format_error naming the file, the entry and the field) and the active cache is left as it was; a
// malformed file named by TCONV_PLAN_CACHE is reported with one line on stderr and ignored.
#pragma once

#include <cstddef>
#include <string>

namespace tconv {

// Loads `path` as the active plan cache (replacing the entries of any cache active before) and activates it.
// Throws Error(io_error) when the file cannot be read, Error(format_error) when it is malformed.
void load_plan_cache(const std::string& path);
// Writes the active plan cache to `path` atomically (an empty cache when none is active).
// Throws Error(io_error) naming the path.
void save_plan_cache(const std::string& path);
// Empties and deactivates the active plan cache: plans use the preference order again.
void clear_plan_cache() noexcept;
// Whether a plan cache is active, and its number of entries (0 when none is).
bool plan_cache_active() noexcept;
std::size_t plan_cache_size() noexcept;

}  // namespace tconv
