// `tconv info`: what this build is and what it can run — version, build configuration, devices, every
// registered algorithm per backend (with its determinism), and the environment variables tconv reads with
// their current values (design §4.7: every environment variable is documented and echoed here).
// `--json` prints the same as one JSON object (the oracle test reads the algorithm list from it).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli_common.hpp"
#include "commands.hpp"
#include "cuda/backend.hpp"
#include "registry/algorithm.hpp"
#include "tconv/device.hpp"
#include "tconv/error.hpp"

#ifdef TCONV_HAVE_HWY
#include <hwy/targets.h>
#endif

#ifndef TCONV_VERSION
#define TCONV_VERSION "unknown"
#endif
#ifndef TCONV_BUILD_TYPE
#define TCONV_BUILD_TYPE "unknown"
#endif
#ifndef TCONV_CXX_FLAGS
#define TCONV_CXX_FLAGS ""
#endif

namespace tconv::cli {

namespace {

struct EnvVar {
  const char* name;
  const char* meaning;
};
// Every environment variable tconv's library and program read (docs/cli.md repeats this table).
constexpr EnvVar kEnvVars[] = {
    {"TCONV_NUM_THREADS", "CPU worker threads of a Device::cpu() created with threads = 0"},
    {"TCONV_DEVICE", "cpu|cuda: what Device::default_device() returns"},
    {"OMP_NUM_THREADS", "OpenMP's default thread count, used when TCONV_NUM_THREADS is unset"},
    {"OMP_WAIT_POLICY", "active|passive: whether idle OpenMP threads spin; the tconv program sets passive when "
                        "neither this nor GOMP_SPINCOUNT is set (docs/reliability.md)"},
    {"GOMP_SPINCOUNT", "libgomp's spin count before an idle thread sleeps (overrides OMP_WAIT_POLICY's)"},
    {"TCONV_OMP_WAIT_POLICY_SET", "set to 1 by the tconv program when it chose OMP_WAIT_POLICY=passive itself"},
    {"CUDA_VISIBLE_DEVICES", "which GPUs the CUDA runtime shows to tconv (CUDA builds)"},
    {"TCONV_PLAN_CACHE", "a plan cache file written by `tconv tune`; the planner prefers its entries (docs/tuning.md)"},
    {"TCONV_NCCL_ID", "the NCCL unique id shared by the ranks of a data-parallel run, instead of an id file"},
    {"NCCL_NVLS_ENABLE", "set to 0 by tconv before NCCL starts: NVLink multicast stays off on shared hosts"},
};

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("g++ ") + __VERSION__;
#else
  return "unknown";
#endif
}

nlohmann::json collect() {
  nlohmann::json j;
  j["version"] = TCONV_VERSION;
  nlohmann::json build;
  build["compiler"] = compiler();
  build["build_type"] = TCONV_BUILD_TYPE;
  build["cxx_flags"] = TCONV_CXX_FLAGS;
  build["cuda"] = cuda_backend::compiled_in();
#ifdef _OPENMP
  build["openmp"] = _OPENMP;
#endif
#ifdef TCONV_HAVE_HWY
  nlohmann::json targets = nlohmann::json::array();
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) targets.push_back(hwy::TargetName(t));
  build["highway_targets"] = targets;
#endif
  j["build"] = build;

  nlohmann::json devices = nlohmann::json::array();
  const Device cpu = Device::cpu();
  devices.push_back({{"kind", "cpu"}, {"name", cpu.name()}, {"threads", cpu.num_threads()}});
  const int n_cuda = Device::cuda_device_count();
  for (int i = 0; i < n_cuda; ++i) {
    devices.push_back({{"kind", "cuda"}, {"ordinal", i}, {"name", cuda_backend::device_name(i)}});
  }
  j["devices"] = devices;
  j["cuda_device_count"] = n_cuda;

  nlohmann::json algos = nlohmann::json::object();
  for (DeviceKind k : {DeviceKind::cpu, DeviceKind::cuda}) {
    nlohmann::json list = nlohmann::json::array();
    for (const registry::Algorithm* a : registry::algorithms(k)) {
      list.push_back({{"name", std::string(a->name())}, {"deterministic", a->deterministic()}});
    }
    algos[k == DeviceKind::cpu ? "cpu" : "cuda"] = list;
  }
  j["algorithms"] = algos;

  nlohmann::json env = nlohmann::json::array();
  for (const EnvVar& e : kEnvVars) {
    const char* v = std::getenv(e.name);
    env.push_back({{"name", e.name}, {"meaning", e.meaning}, {"value", v ? nlohmann::json(v) : nlohmann::json()}});
  }
  j["environment"] = env;

  // The wait policy libgomp runs with in this process: it read the environment when it was loaded, and
  // nothing has changed these variables since (main() re-executes before anything else when it sets them).
  const char* wp = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const char* by_tconv = std::getenv("TCONV_OMP_WAIT_POLICY_SET");
  std::string effective;
  if (wp != nullptr) {
    effective = std::string(wp) + (by_tconv != nullptr ? " (set by tconv: the environment had none)" : " (from the environment)");
    if (spin != nullptr) effective += ", spin count " + std::string(spin) + " (GOMP_SPINCOUNT)";
  } else if (spin != nullptr) {
    effective = "spin count " + std::string(spin) + " (GOMP_SPINCOUNT)";
  } else {
    effective = "libgomp default: idle threads spin before sleeping";
  }
  j["openmp_wait_policy"] = effective;
  return j;
}

void print_text(const nlohmann::json& j) {
  std::printf("tconv %s\n\nbuild\n", j["version"].get<std::string>().c_str());
  const auto& b = j["build"];
  std::printf("  compiler     %s\n", b["compiler"].get<std::string>().c_str());
  std::printf("  build type   %s\n", b["build_type"].get<std::string>().c_str());
  std::printf("  c++ flags    %s\n", b["cxx_flags"].get<std::string>().c_str());
  std::printf("  cuda         %s\n", b["cuda"].get<bool>() ? "compiled in" : "not compiled in");
  if (b.contains("openmp")) std::printf("  openmp       %d\n", b["openmp"].get<int>());
  if (b.contains("highway_targets")) {
    std::printf("  highway      ");
    for (const auto& t : b["highway_targets"]) std::printf("%s ", t.get<std::string>().c_str());
    std::printf("\n");
  }
  std::printf("\ndevices\n");
  for (const auto& d : j["devices"]) std::printf("  %-5s %s\n", d["kind"].get<std::string>().c_str(),
                                                 d["name"].get<std::string>().c_str());
  std::printf("\nalgorithms (preference order; det = bit-identical across runs and thread counts)\n");
  for (const char* backend : {"cpu", "cuda"}) {
    const auto& list = j["algorithms"][backend];
    std::printf("  %s:%s\n", backend, list.empty() ? " none" : "");
    for (const auto& a : list) {
      std::printf("    %-40s %s\n", a["name"].get<std::string>().c_str(),
                  a["deterministic"].get<bool>() ? "det" : "nondeterministic");
    }
  }
  std::printf("\nOpenMP wait policy: %s\n", j["openmp_wait_policy"].get<std::string>().c_str());
  std::printf("\nenvironment variables read by tconv\n");
  for (const auto& e : j["environment"]) {
    const std::string value = e["value"].is_null() ? "(unset)" : "= " + e["value"].get<std::string>();
    std::printf("  %-22s %-14s %s\n", e["name"].get<std::string>().c_str(), value.c_str(),
                e["meaning"].get<std::string>().c_str());
  }
}

}  // namespace

int cmd_info(int argc, char** argv) {
  CLI::App app{"Build configuration, devices, registered algorithms and environment variables.", "tconv info"};
  bool json = false;
  app.add_flag("--json", json, "print one JSON object instead of text");
  if (auto rc = parse_arguments(app, argc, argv)) return *rc;
  const nlohmann::json j = collect();
  if (json) std::printf("%s\n", j.dump(2).c_str());
  else print_text(j);
  return 0;
}

}  // namespace tconv::cli
