// `tconv tune`: fills a plan cache (docs/tuning.md) from a suite of layers.
//
// For every layer of the suite (../shared/bench/suite.json format; batch n on CUDA, n_cpu on the CPU) and
// dtype, the three problems a training step plans — fwd with bias, bwd_data, bwd_weights with the bias
// gradient (the problems `tconv bench`, the object API's kernels and `tconv grad --dx --dw --db` plan) — are
// tuned by registry::tune (every algorithm that takes the problem, median of --reps runs) and the fastest is
// recorded. The cache file (--cache, default $TCONV_PLAN_CACHE) is read first when it exists, so tuning adds to
// it (a malformed one stops the command rather than being overwritten), and is written atomically after each
// layer, so an interrupted run keeps what it measured. Then `TCONV_PLAN_CACHE=FILE tconv bench ...` (or any
// program) plans with it.
//
// One table row per problem: layer, dtype, direction, the chosen (fastest) algorithm and its ms, the
// preference order's choice and its ms, and the speed-up of the choice over the default.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bench_cuda.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "core/problem.hpp"
#include "cuda/backend.hpp"
#include "registry/plan_cache.hpp"
#include "registry/tuner.hpp"
#include "tconv/device.hpp"
#include "tconv/error.hpp"

namespace tconv::cli {

namespace {

struct Dtype {
  std::string name;
  DataType images;
  Precision precision;
};

// The dtype names of `tconv bench`: images and multiplies of that type (bf16, fp16), or float32 images with
// tf32 / fp32 multiplies.
Dtype dtype_of(const std::string& s) {
  if (s == "fp32") return Dtype{s, DataType::float32, Precision::fp32};
  if (s == "tf32") return Dtype{s, DataType::float32, Precision::tf32};
  if (s == "fp16") return Dtype{s, DataType::float16, Precision::fp16};
  if (s == "bf16") return Dtype{s, DataType::bfloat16, Precision::bf16};
  throw Error(ErrorCode::invalid_argument, "--dtypes: '" + s + "' is not one of bf16, fp16, tf32, fp32");
}

bool file_exists(const std::string& path) {
  std::ifstream f(path);
  return static_cast<bool>(f);
}

}  // namespace

int cmd_tune(int argc, char** argv) {
  CLI::App app{"Time every algorithm on the layers of a suite and write the fastest per problem to a plan cache "
               "(TCONV_PLAN_CACHE=FILE makes later runs use it).",
               "tconv tune"};
  std::string suite_path, device = "cpu", cache_path, layers_arg, dtypes_arg;
  int threads = 0, reps = 5, warmup = 2;
  bool nondeterministic = false, verbose = false;
  app.add_option("--suite", suite_path, "suite JSON (../shared/bench/suite.json format)")->required();
  app.add_option("--device", device, "cpu (batch n_cpu) or cuda[:N] (batch n)");
  app.add_option("--cache", cache_path, "plan cache file to fill (default: $TCONV_PLAN_CACHE); read first if it exists");
  app.add_option("--dtypes", dtypes_arg, "comma-separated bf16, fp16, tf32, fp32 (default: fp32 on cpu, all four on cuda)");
  app.add_option("--layers", layers_arg, "comma-separated layer names (default: all)");
  app.add_option("--threads", threads, "CPU threads to time with (default: TCONV_NUM_THREADS, OpenMP or hardware)");
  app.add_option("--reps", reps, "timed runs per algorithm (median recorded)");
  app.add_option("--warmup", warmup, "untimed runs before them (the first run is always made)");
  app.add_flag("--nondeterministic", nondeterministic,
               "also time nondeterministic algorithms (recorded as entries that only runs allowing them use)");
  app.add_flag("--verbose", verbose, "print every algorithm's time, not only the choice");
  if (auto rc = parse_arguments(app, argc, argv)) return *rc;
  DeviceKind backend = DeviceKind::cpu;
  int ordinal = 0;
  if (device == "cuda") {
    backend = DeviceKind::cuda;
  } else if (device.rfind("cuda:", 0) == 0) {
    backend = DeviceKind::cuda;
    try {
      std::size_t used = 0;
      ordinal = std::stoi(device.substr(5), &used);
      if (used != device.size() - 5 || ordinal < 0) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw Error(ErrorCode::invalid_argument, "--device: '" + device + "' is not cpu, cuda or cuda:N");
    }
  } else if (device != "cpu") {
    throw Error(ErrorCode::invalid_argument, "--device: '" + device + "' is not cpu, cuda or cuda:N");
  }
  if (reps < 1 || warmup < 0) throw Error(ErrorCode::invalid_argument, "--reps must be >= 1 and --warmup >= 0");
  if (cache_path.empty()) {
    const char* env = std::getenv("TCONV_PLAN_CACHE");
    if (env == nullptr || *env == '\0')
      throw Error(ErrorCode::invalid_argument, "no cache file: give --cache FILE or set TCONV_PLAN_CACHE");
    cache_path = env;
  }
  if (dtypes_arg.empty()) dtypes_arg = backend == DeviceKind::cuda ? "bf16,fp16,tf32,fp32" : "fp32";
  std::vector<Dtype> dtypes;
  for (const std::string& s : split_list(dtypes_arg)) dtypes.push_back(dtype_of(s));
  if (dtypes.empty()) throw Error(ErrorCode::invalid_argument, "--dtypes names no dtype");
  const std::vector<std::string> layer_list = split_list(layers_arg);
  const std::set<std::string> wanted(layer_list.begin(), layer_list.end());

  if (backend == DeviceKind::cuda && ordinal >= cuda_backend::device_count())
    throw Error(ErrorCode::device_unavailable, "--device " + device + ": " +
                                                   std::to_string(cuda_backend::device_count()) +
                                                   " CUDA devices are present" +
                                                   (cuda_backend::compiled_in() ? "" : " (this build has no CUDA backend)"));

  const nlohmann::json suite = read_suite(suite_path);

  // Read the existing cache first: tuning adds to it. A malformed file stops here, before anything would
  // overwrite it (it may be someone's hand-edited cache; delete it to start afresh).
  registry::PlanCache cache;
  if (file_exists(cache_path)) {
    if (auto s = cache.load(cache_path); !s.ok())
      throw Error(s.code, s.message + " (not overwritten: delete it or give another --cache)");
  }

  registry::TuneOptions o;
  o.warmup = warmup;
  o.reps = reps;
  o.allow_nondeterministic = nondeterministic;
  o.num_threads = Device::cpu(threads).num_threads();
  o.cuda_device = ordinal;
  const std::string label = registry::plan_device_label(backend, ordinal);
  std::printf("# tuning on %s%s; cache %s (%zu entries before)\n", label.c_str(),
              backend == DeviceKind::cpu ? (" at " + std::to_string(o.num_threads) + " threads").c_str() : "",
              cache_path.c_str(), cache.size());
  std::printf("# %-16s %-5s %-11s %-34s %9s   %-34s %10s %7s\n", "layer", "dtype", "dir", "chosen", "ms", "default",
              "default ms", "speedup");
  int tuned = 0, skipped = 0, failed = 0;
  bool any_layer = false;
  for (const auto& L : suite["layers"]) {
    std::string name;
    core::Geometry g;
    try {
      name = L.at("name").get<std::string>();
      if (!wanted.empty() && !wanted.count(name)) continue;
      g = suite_geometry(L, L.at(backend == DeviceKind::cuda ? "n" : "n_cpu").get<int64_t>());
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::format_error, "suite file '" + suite_path + "', layer '" + name + "': " + e.what());
    }
    any_layer = true;
    for (const Dtype& dt : dtypes) {
      core::Problem base;
      base.g = g;
      base.act_type = dt.images;
      base.precision = dt.precision;
      for (core::Direction dir : {core::Direction::fwd, core::Direction::bwd_data, core::Direction::bwd_weights}) {
        core::Problem p = base;
        p.dir = dir;
        p.with_bias = dir != core::Direction::bwd_data;  // the bias in fwd, the bias gradient in bwd_weights
        registry::TuneResult r;
        const core::Status s = registry::tune(p, backend, o, &r);
        if (!s.ok()) {
          // No algorithm for the problem on this device is not a failure of tuning (there is nothing to choose);
          // anything else is, and makes the exit status 1 once the rest is tuned.
          if (s.code == ErrorCode::unsupported) ++skipped;
          else ++failed;
          std::printf("# %-16s %-5s %-11s not tuned: %s: %s\n", name.c_str(), dt.name.c_str(), core::to_string(dir),
                      to_string(s.code), s.message.c_str());
          continue;
        }
        registry::record(cache, p, label, r);
        ++tuned;
        const registry::AlgorithmTiming* best = r.fastest(!nondeterministic);
        const registry::AlgorithmTiming* def = r.default_timing();
        const std::string def_name = r.default_choice ? std::string(r.default_choice->name()) : "-";
        char def_ms[32] = "-", speedup[32] = "-";
        if (def != nullptr) {
          std::snprintf(def_ms, sizeof def_ms, "%.4f", def->ms);
          std::snprintf(speedup, sizeof speedup, "%.2fx", def->ms / best->ms);
        }
        std::printf("  %-16s %-5s %-11s %-34s %9.4f   %-34s %10s %7s\n", name.c_str(), dt.name.c_str(),
                    core::to_string(dir), std::string(best->algorithm->name()).c_str(), best->ms, def_name.c_str(),
                    def_ms, speedup);
        if (verbose) {
          for (const registry::AlgorithmTiming& t : r.timings) {
            if (!t.error.empty())
              std::printf("      %-34s failed: %s\n", std::string(t.algorithm->name()).c_str(), t.error.c_str());
            else
              std::printf("      %-34s %9.4f ms (%d run%s)\n", std::string(t.algorithm->name()).c_str(), t.ms, t.runs,
                          t.runs == 1 ? "" : "s");
          }
        }
        std::fflush(stdout);
      }
    }
    core::throw_if_error(cache.save(cache_path));  // after each layer: an interrupted run keeps its measurements
  }
  if (!any_layer) throw Error(ErrorCode::invalid_argument, "no layer of '" + suite_path + "' matches --layers");
  core::throw_if_error(cache.save(cache_path));
  std::printf("# wrote %s: %zu entries (%d problems tuned, %d taken by no algorithm, %d failed)\n", cache_path.c_str(),
              cache.size(), tuned, skipped, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace tconv::cli
