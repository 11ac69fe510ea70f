// tconv bench --device cuda (bench_cuda.cpp; bench_cuda_stub.cpp in a build without CUDA): the options
// cmd_bench.cpp parses, and the suite geometry helper both devices share.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/problem.hpp"

namespace tconv::cli {

struct CudaBenchOptions {
  nlohmann::json suite;                          // the parsed suite file
  std::set<std::string> layers;                  // empty: all
  std::vector<std::string> dtypes;               // bf16, fp16, tf32, fp32
  std::string algo;                              // force one algorithm (impl "tconv-<algo>")
  std::vector<std::string> algorithms;           // per-algorithm lines besides the planner's ("list": all)
  bool nondeterministic = false;                 // include (or allow forcing) nondeterministic algorithms
  int reps = 10, warmup = 3;
  bool machine = true;                           // measure the bf16 matrix rate and the copy bandwidth
  int gemm_size = 8192;
  std::function<void(const nlohmann::json&)> emit;  // prints one JSON line (and writes --json)
};
int bench_cuda(const CudaBenchOptions& o);

// The suite's PyTorch geometry as the canonical problem at batch n (pad = PyTorch padding, explicit sizes).
core::Geometry suite_geometry(const nlohmann::json& layer, int64_t n);

}  // namespace tconv::cli
