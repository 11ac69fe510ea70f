// tconv bench: times the training gradients of every layer of a suite (../shared/bench/suite.json format)
// and puts them next to what this machine can do. --device cuda is bench_cuda.cpp (through the object API,
// batch n, dtypes bf16/fp16/tf32/fp32, CUDA events, the GPU's bf16 matrix rate and copy bandwidth); the
// rest of this file is the CPU bench, through the engine directly (core::Problem + registry).
//
// For each layer (batch n_cpu on the CPU): dX alone, dW+db alone, and all three, each the median of --reps
// runs after warm-up. One JSON line per layer with the fields of torch_peer.py (impl, device, layer, n,
// dtype, layout, gflop_each, dx_ms, dwdb_ms, all_ms) plus the algorithms chosen, GFLOP/s and roofline
// fractions, so compare.py can join it with PyTorch measured in the same run.
// In the same run it measures the machine: OpenBLAS sgemm at the same thread count (the "matrix-multiply
// rate") and a parallel memory copy (bandwidth). Each layer is printed with its fraction of the sgemm rate
// and its "streaming fraction": the time to read and write its tensors once at that bandwidth divided by
// the measured time (1.0 = as fast as streaming the data).
#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bench_cuda.hpp"
#include "cli_common.hpp"
#include "commands.hpp"
#include "core/problem.hpp"
#include "registry/algorithm.hpp"
#include "tconv/error.hpp"

extern "C" void openblas_set_num_threads(int num_threads);

namespace tconv::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Median wall-clock and process-CPU milliseconds of `reps` runs after `warmup` runs. The CPU time (all
// threads) shows how much the machine's load stretched the wall time: on an idle machine with T busy threads
// wall ≈ cpu / T.
struct Timing {
  double wall_ms = 0, cpu_ms = 0;
};
double cpu_now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
Timing time_it(const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> wall, cpu;
  for (int i = 0; i < reps; ++i) {
    const double c0 = cpu_now_ms();
    const auto a = Clock::now();
    fn();
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    cpu.push_back(cpu_now_ms() - c0);
  }
  return {median(wall), median(cpu)};
}
double median_ms(const std::function<void()>& fn, int warmup, int reps) { return time_it(fn, warmup, reps).wall_ms; }

void fill_random(std::vector<float>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& x : v) x = u(rng);
}

// OpenBLAS sgemm, square m = n = k, at `threads` threads: GFLOP/s by wall clock, and by CPU time per
// thread (the rate the same threads reach when they get the cores: comparable on a loaded machine).
struct Rate {
  double wall = 0, cpu = 0;
};
Rate sgemm_gflops(int threads, int size) {
  openblas_set_num_threads(threads);
  std::vector<float> a(static_cast<size_t>(size) * size), b(a.size()), c(a.size());
  fill_random(a, 1);
  fill_random(b, 2);
  const Timing t = time_it([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, size, size, size, 1.0f, a.data(), size, b.data(), size,
                0.0f, c.data(), size);
  }, 1, 5);
  const double flop = 2.0 * size * size * static_cast<double>(size);
  return {flop / (t.wall_ms * 1e6), flop / (t.cpu_ms / threads * 1e6)};
}

// Parallel copy of a buffer far larger than the caches: GB/s counting bytes read plus bytes written.
double copy_gbps(int threads, size_t bytes) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  const size_t per = (bytes + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  const double ms = median_ms([&] {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const size_t b = static_cast<size_t>(t) * per, e = std::min(bytes, b + per);
      if (b < e) std::memcpy(dst.data() + b, src.data() + b, e - b);
    }
  }, 1, 5);
  return 2.0 * static_cast<double>(bytes) / (ms * 1e6);
}

std::pair<int64_t, int64_t> pair_of(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  if (v.is_array()) return {v.at(0).get<int64_t>(), v.at(1).get<int64_t>()};
  return {v.get<int64_t>(), v.get<int64_t>()};
}

}  // namespace

// The suite's PyTorch geometry as the canonical problem (pad is PyTorch's padding; output size explicit).
core::Geometry suite_geometry(const nlohmann::json& L, int64_t n) {
  core::Geometry g;
  g.n = n;
  g.c_in = L.at("cin").get<int64_t>();
  g.c_out = L.at("cout").get<int64_t>();
  g.groups = L.at("groups").get<int64_t>();
  g.h_in = L.at("h").get<int64_t>();
  g.w_in = L.at("w").get<int64_t>();
  g.kh = L.at("kh").get<int64_t>();
  g.kw = L.at("kw").get<int64_t>();
  std::tie(g.stride_h, g.stride_w) = pair_of(L, "stride");
  std::tie(g.pad_h, g.pad_w) = pair_of(L, "pad");
  std::tie(g.dil_h, g.dil_w) = pair_of(L, "dil");
  g.h_out = L.at("out_h").get<int64_t>();
  g.w_out = L.at("out_w").get<int64_t>();
  return g;
}

namespace {

const registry::Algorithm* pick(const core::Problem& p, const std::string& forced, const std::string& layer) {
  std::string use;
  if (!forced.empty()) {
    const registry::Algorithm* a = registry::find(forced);
    if (a != nullptr && !a->decline_reason(p)) use = forced;  // --algo applies to the directions it takes
  }
  const registry::Choice c = registry::choose(p, DeviceKind::cpu, use);
  if (c.algorithm == nullptr) throw Error(ErrorCode::unsupported, "layer " + layer + ": " + c.reason);
  return c.algorithm;
}

double round4(double v) { return std::round(v * 1e4) / 1e4; }

}  // namespace

int cmd_bench(int argc, char** argv) {
  CLI::App app{"Time dX, dW+db and all three gradients on a suite of layers (JSON lines).", "tconv bench"};
  std::string suite_path, device = "cpu", layers_arg, json_path, algo, dtypes_arg = "bf16,fp16,tf32,fp32", algorithms_arg;
  int threads = 0, reps = 10, warmup = 3, gemm_size = 0;
  bool no_machine = false, nondeterministic = false;
  app.add_option("--suite", suite_path, "suite JSON (../shared/bench/suite.json)")->required();
  app.add_option("--device", device, "cpu (batch n_cpu, fp32) or cuda (batch n, --dtypes, through the object API)");
  app.add_option("--threads", threads, "OpenMP threads (0: the OpenMP default; CPU)");
  app.add_option("--layers", layers_arg, "comma-separated layer names (default: all)");
  app.add_option("--json", json_path, "write the JSON lines to this file (default: stdout only)");
  app.add_option("--algo", algo, "CPU: force this algorithm for the directions it takes; CUDA: force it for every "
                                 "direction (impl tconv-NAME, declined directions null)");
  app.add_option("--dtypes", dtypes_arg, "CUDA: comma-separated bf16, fp16, tf32, fp32");
  app.add_option("--algorithms", algorithms_arg, "CUDA: also one line per algorithm forced (list: every registered "
                                                  "CUDA algorithm, or comma-separated names)");
  app.add_flag("--nondeterministic", nondeterministic, "CUDA: include (allow) nondeterministic algorithms");
  app.add_option("--reps", reps, "timed runs per measurement (median reported)");
  app.add_option("--warmup", warmup, "untimed runs before each measurement");
  app.add_option("--gemm-size", gemm_size, "m = n = k of the matrix-rate measurement (default 2048 CPU, 8192 CUDA)");
  app.add_flag("--no-machine", no_machine, "skip the matrix-rate and bandwidth measurements");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (device != "cpu" && device != "cuda")
    throw Error(ErrorCode::invalid_argument, "--device must be cpu or cuda, got '" + device + "'");
  if (reps < 1 || warmup < 0) throw Error(ErrorCode::invalid_argument, "--reps must be >= 1 and --warmup >= 0");
  if (gemm_size < 0) throw Error(ErrorCode::invalid_argument, "--gemm-size must be positive");
  if (gemm_size == 0) gemm_size = device == "cuda" ? 8192 : 2048;
  if (threads <= 0) threads = omp_get_max_threads();
  if (device == "cpu" && !algo.empty() && registry::find(algo) == nullptr)
    throw Error(ErrorCode::invalid_argument, "unknown algorithm '" + algo + "' (tconv info lists them)");

  const nlohmann::json suite = read_suite(suite_path);
  const std::vector<std::string> layer_list = split_list(layers_arg);
  const std::set<std::string> wanted(layer_list.begin(), layer_list.end());
  std::ofstream out;
  if (!json_path.empty()) {
    out.open(json_path);
    if (!out) throw Error(ErrorCode::io_error, "cannot write '" + json_path + "'");
  }
  auto emit = [&](const nlohmann::json& j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    if (out) out << j.dump() << "\n" << std::flush;
  };
  if (device == "cuda") {
    CudaBenchOptions o;
    o.suite = suite;
    o.layers = wanted;
    o.dtypes = split_list(dtypes_arg);
    o.algo = algo;
    o.algorithms = split_list(algorithms_arg);
    o.nondeterministic = nondeterministic;
    o.reps = reps;
    o.warmup = warmup;
    o.machine = !no_machine;
    o.gemm_size = gemm_size;
    o.emit = emit;
    return bench_cuda(o);
  }

  double gemm = 0, bw = 0, gemm_cpu = 0;
  if (!no_machine) {
    const Rate r = sgemm_gflops(threads, gemm_size);
    gemm = r.wall;
    gemm_cpu = r.cpu;
    bw = copy_gbps(threads, size_t{256} << 20);
    std::printf("# machine: OpenBLAS sgemm %dx%dx%d at %d threads: %.1f GFLOP/s (%.1f by CPU time per thread); "
                "parallel copy: %.1f GB/s (read+write)\n", gemm_size, gemm_size, gemm_size, threads, gemm, gemm_cpu, bw);
    emit({{"impl", "tconv-machine"}, {"device", "cpu"}, {"threads", threads}, {"sgemm_gflops", round4(gemm)},
          {"copy_gbps", round4(bw)}, {"sgemm_size", gemm_size}, {"sgemm_gflops_cpu", round4(gemm_cpu)}});
  }
  std::printf("# %-16s %-24s %-26s %8s %8s %8s %7s %6s %6s %9s %9s\n", "layer", "algo dX", "algo dW+db", "dx ms", "dwdb ms",
              "all ms", "GFLOP/s", "%gemm", "stream", "all cpu ms", "%gemm(cpu)");

  for (const auto& L : suite.at("layers")) {
    const std::string name = L.at("name").get<std::string>();
    if (!wanted.empty() && !wanted.count(name)) continue;
    const int64_t n = L.at("n_cpu").get<int64_t>();
    core::Problem pd;
    pd.g = suite_geometry(L, n);
    pd.dir = core::Direction::bwd_data;
    core::Problem pw = pd;
    pw.dir = core::Direction::bwd_weights;
    pw.with_bias = true;
    for (const core::Problem* p : {&pd, &pw})
      if (auto s = core::validate(*p); !s.ok()) throw Error(s.code, "layer " + name + ": " + s.message);
    const registry::Algorithm* ad = pick(pd, algo, name);
    const registry::Algorithm* aw = pick(pw, algo, name);
    if (!algo.empty() && ad->name() != algo && aw->name() != algo)
      throw Error(ErrorCode::unsupported, "layer " + name + ": algorithm '" + algo + "' takes neither gradient");

    const core::Geometry& g = pd.g;
    std::vector<float> x(static_cast<size_t>(core::src_elements(g))), dx(x.size()),
        dy(static_cast<size_t>(core::dst_elements(g))), w(static_cast<size_t>(core::wei_elements(g))), dw(w.size()),
        db(static_cast<size_t>(g.c_out));
    fill_random(x, 11);
    fill_random(dy, 12);
    fill_random(w, 13);
    std::vector<unsigned char> ws(std::max(ad->workspace_bytes(pd), aw->workspace_bytes(pw)) + 64);
    void* wsp = ws.data() + (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) % 64;
    core::Args a;
    a.src = core::dense_nhwc(x.data(), g.h_in, g.w_in, g.c_in);
    a.diff_src = core::dense_nhwc(dx.data(), g.h_in, g.w_in, g.c_in);
    a.diff_dst = core::dense_nhwc(dy.data(), g.h_out, g.w_out, g.c_out);
    a.wei = w.data();
    a.diff_wei = dw.data();
    a.diff_bias = db.data();
    const registry::ExecContext ctx{.num_threads = threads};
    auto check = [&](const core::Status& s) {
      if (!s.ok()) throw Error(s.code, "layer " + name + ": " + s.message);
    };
    auto run_dx = [&] { check(ad->run(pd, a, wsp, ctx)); };
    auto run_dw = [&] { check(aw->run(pw, a, wsp, ctx)); };
    const Timing tdx = time_it(run_dx, warmup, reps), tdw = time_it(run_dw, warmup, reps),
                 tall = time_it([&] { run_dx(); run_dw(); }, warmup, reps);
    const double dx_ms = tdx.wall_ms, dw_ms = tdw.wall_ms, all_ms = tall.wall_ms;

    // The suite's own FLOP count scaled to this batch, as torch_peer.py writes it (so the files join).
    const double gflop_each = L.at("gflop_each").get<double>() * static_cast<double>(n) / L.at("n").get<double>();
    const double gflops = 2.0 * gflop_each / (all_ms * 1e-3);
    const double bytes_all = 4.0 * static_cast<double>(2 * x.size() + dy.size() + 2 * w.size() + db.size());
    const double stream_ms = bw > 0 ? bytes_all / (bw * 1e6) : 0.0;
    nlohmann::json j = {{"impl", "tconv"}, {"device", "cpu"}, {"layer", name}, {"n", n}, {"dtype", "fp32"},
                        {"layout", "nhwc"}, {"gflop_each", round4(gflop_each)}, {"dx_ms", round4(dx_ms)},
                        {"dwdb_ms", round4(dw_ms)}, {"all_ms", round4(all_ms)}, {"algo_dx", ad->name()},
                        {"algo_dw", aw->name()}, {"gflops", round4(gflops)},
                        {"gflops_dx", round4(gflop_each / (dx_ms * 1e-3))},
                        {"gflops_dwdb", round4(gflop_each / (dw_ms * 1e-3))}, {"threads", threads},
                        {"dx_cpu_ms", round4(tdx.cpu_ms)}, {"dwdb_cpu_ms", round4(tdw.cpu_ms)},
                        {"all_cpu_ms", round4(tall.cpu_ms)}};
    // Rate by CPU time per thread: what the threads achieve while they hold the cores.
    const double gflops_cpu = 2.0 * gflop_each / (tall.cpu_ms / threads * 1e-3);
    j["gflops_cpu"] = round4(gflops_cpu);
    if (gemm > 0) j["sgemm_fraction"] = round4(gflops / gemm);
    if (gemm_cpu > 0) j["sgemm_fraction_cpu"] = round4(gflops_cpu / gemm_cpu);
    if (bw > 0) j["stream_fraction"] = round4(stream_ms / all_ms);
    std::printf("# case: %s\n", pw.describe().c_str());
    std::printf("# %-16s %-24s %-26s %8.3f %8.3f %8.3f %7.1f %5.0f%% %6.2f %9.3f %8.0f%%\n", name.c_str(),
                std::string(ad->name()).c_str(), std::string(aw->name()).c_str(), dx_ms, dw_ms, all_ms, gflops,
                gemm > 0 ? 100.0 * gflops / gemm : 0.0, bw > 0 ? stream_ms / all_ms : 0.0, tall.cpu_ms,
                gemm_cpu > 0 ? 100.0 * gflops_cpu / gemm_cpu : 0.0);
    emit(j);
  }
  return 0;
}

}  // namespace tconv::cli
