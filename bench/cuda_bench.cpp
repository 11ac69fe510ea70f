// tconv_cuda_bench: times the registered CUDA algorithms on the suite's layers, one JSON line per
// (algorithm, layer, dtype) with the fields torch_peer.py writes, so bench/compare.py can join them:
//   {"impl", "device", "layer", "n", "dtype", "layout", "gflop_each", "dx_ms", "dwdb_ms", "all_ms", "fwd_ms"}
// dx_ms: data gradient; dwdb_ms: weight and bias gradients; all_ms: both, back to back on one stream; fwd_ms:
// the forward pass. Each is the median of --reps timed calls (CUDA events) after --warmup calls, on random
// data in [-1, 1] (never zeros). dtype: fp32 / tf32 (float32 images), fp16, bf16 (images of that type,
// matching precision mode). Engine level (algorithms called directly, one stream); what the object API gives
// (two-stream gradient) is `tconv bench --device cuda` (tools/tconv/bench_cuda.cpp).
//
//   tconv_cuda_bench --cases suite.txt [--dtypes bf16,fp16,tf32,fp32] [--algorithms cuda_direct,cuda_cudnn]
//                    [--warmup 5] [--reps 20] [--nondeterministic]
// suite.txt: one layer a line: name n cin cout h w kh kw groups sh sw ph pw oph opw dh dw
// (gpu_check.sh writes it from bench/suite.json).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/problem.hpp"
#include "cuda/backend.hpp"
#include "registry/algorithm.hpp"

namespace {

using namespace tconv;

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "%s failed: %s (line %d)\n", #x, cudaGetErrorString(e_), __LINE__); \
      std::exit(2);                                                                             \
    }                                                                                           \
  } while (0)

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

struct Layer {
  std::string name;
  core::Geometry g;
};

void* device_random(std::size_t count, DataType t, std::mt19937& rng) {
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  std::vector<unsigned char> host(count * size_of(t));
  for (std::size_t i = 0; i < count; ++i) core::store_from_f32(host.data(), static_cast<int64_t>(i), t, uni(rng));
  void* d = nullptr;
  CK(cudaMalloc(&d, std::max<std::size_t>(host.size(), 1)));
  CK(cudaMemcpy(d, host.data(), host.size(), cudaMemcpyHostToDevice));
  return d;
}

template <class F>
double median_ms(F&& f, int warmup, int reps, cudaStream_t s) {
  for (int i = 0; i < warmup; ++i) f();
  CK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> ts;
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a, s));
    f();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    ts.push_back(ms);
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string cases, dtypes = "bf16,fp16,tf32,fp32", algs;
  int warmup = 5, reps = 20;
  bool nondet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--cases") cases = next();
    else if (k == "--dtypes") dtypes = next();
    else if (k == "--algorithms") algs = next();
    else if (k == "--warmup") warmup = std::stoi(next());
    else if (k == "--reps") reps = std::stoi(next());
    else if (k == "--nondeterministic") nondet = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", k.c_str());
      return 1;
    }
  }
  if (cuda_backend::device_count() == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  std::ifstream in(cases);
  if (!in) {
    std::fprintf(stderr, "cannot read --cases %s\n", cases.c_str());
    return 1;
  }
  std::vector<Layer> layers;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    Layer L;
    int64_t oph, opw;
    core::Geometry& g = L.g;
    if (!(ls >> L.name >> g.n >> g.c_in >> g.c_out >> g.h_in >> g.w_in >> g.kh >> g.kw >> g.groups >> g.stride_h >>
          g.stride_w >> g.pad_h >> g.pad_w >> oph >> opw >> g.dil_h >> g.dil_w))
      continue;
    g.h_out = core::Geometry::out_size(g.h_in, g.kh, g.stride_h, g.dil_h, g.pad_h, oph);
    g.w_out = core::Geometry::out_size(g.w_in, g.kw, g.stride_w, g.dil_w, g.pad_w, opw);
    layers.push_back(L);
  }
  const std::string device = cuda_backend::device_name(0);
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::mt19937 rng(7);
  const std::vector<std::string> want = split(algs, ',');
  for (const Layer& L : layers) {
    for (const std::string& dt : split(dtypes, ',')) {
      core::Problem p;
      p.g = L.g;
      p.with_bias = true;
      if (dt == "fp32") { p.act_type = DataType::float32; p.precision = Precision::fp32; }
      else if (dt == "tf32") { p.act_type = DataType::float32; p.precision = Precision::tf32; }
      else if (dt == "fp16") { p.act_type = DataType::float16; p.precision = Precision::fp16; }
      else if (dt == "bf16") { p.act_type = DataType::bfloat16; p.precision = Precision::bf16; }
      else continue;
      const core::Geometry& g = p.g;
      void* src = device_random(static_cast<std::size_t>(core::src_elements(g)), p.act_type, rng);
      void* dst = device_random(static_cast<std::size_t>(core::dst_elements(g)), p.act_type, rng);
      void* dsrc = device_random(static_cast<std::size_t>(core::src_elements(g)), p.act_type, rng);
      auto* wei = static_cast<float*>(device_random(static_cast<std::size_t>(core::wei_elements(g)), DataType::float32, rng));
      auto* dwei = static_cast<float*>(device_random(static_cast<std::size_t>(core::wei_elements(g)), DataType::float32, rng));
      auto* bias = static_cast<float*>(device_random(static_cast<std::size_t>(g.c_out), DataType::float32, rng));
      auto* dbias = static_cast<float*>(device_random(static_cast<std::size_t>(g.c_out), DataType::float32, rng));
      core::Args a = core::dense_args(g, src, dst, wei, bias, dwei, dbias);
      a.diff_src = core::dense_nhwc(dsrc, g.h_in, g.w_in, g.c_in);  // bwd_data writes here; src stays an input
      for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cuda)) {
        if (!want.empty() && std::find(want.begin(), want.end(), std::string(alg->name())) == want.end()) continue;
        if (!alg->deterministic() && !nondet) continue;
        core::Problem pf = p, pd = p, pw = p;
        pf.dir = core::Direction::fwd;
        pd.dir = core::Direction::bwd_data;
        pd.with_bias = false;
        pw.dir = core::Direction::bwd_weights;
        std::ostringstream rec;
        rec << "{\"impl\": \"tconv-" << alg->name() << "\", \"device\": \"" << device << "\", \"layer\": \"" << L.name
            << "\", \"n\": " << g.n << ", \"dtype\": \"" << dt << "\", \"layout\": \"nhwc\", \"gflop_each\": "
            << pd.flops() / 1e9;
        // A direction the algorithm declines is reported as null; the line is "declined" only when all are.
        std::string why;
        bool takes[3] = {true, true, true};
        const core::Problem* dirs[3] = {&pf, &pd, &pw};
        for (int i = 0; i < 3; ++i)
          if (auto r = alg->decline_reason(*dirs[i])) {
            why = *r;
            takes[i] = false;
          }
        if (!takes[0] && !takes[1] && !takes[2]) {
          std::string esc;
          for (char c : why) esc += (c == '"' || c == '\\') ? '\'' : c;
          rec << ", \"error\": \"declined: " << esc << "\"}";
          std::printf("%s\n", rec.str().c_str());
          std::fflush(stdout);
          continue;
        }
        const std::size_t ws_bytes =
            std::max({alg->workspace_bytes(pf), alg->workspace_bytes(pd), alg->workspace_bytes(pw)});
        void* ws = nullptr;
        CK(cudaMalloc(&ws, std::max<std::size_t>(ws_bytes, 1)));
        registry::ExecContext ctx;
        ctx.cuda_device = 0;
        ctx.cuda_stream = stream;
        bool failed = false;
        std::string err;
        auto call = [&](const core::Problem& q) {
          const core::Status s = alg->run(q, a, ws, ctx);
          if (!s.ok() && !failed) { failed = true; err = s.message; }
        };
        const double fwd = takes[0] ? median_ms([&] { call(pf); }, warmup, reps, stream) : -1;
        const double dx = takes[1] ? median_ms([&] { call(pd); }, warmup, reps, stream) : -1;
        const double dw = takes[2] ? median_ms([&] { call(pw); }, warmup, reps, stream) : -1;
        const double all = takes[1] && takes[2] ? median_ms([&] { call(pd); call(pw); }, warmup, reps, stream) : -1;
        CK(cudaFree(ws));
        if (failed) {
          std::string esc;
          for (char c : err) esc += (c == '"' || c == '\\') ? '\'' : c;
          rec << ", \"error\": \"" << esc << "\"}";
        } else {
          auto num = [](double ms) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.4f", ms);
            return ms < 0 ? std::string("null") : std::string(buf);
          };
          rec << ", \"dx_ms\": " << num(dx) << ", \"dwdb_ms\": " << num(dw) << ", \"all_ms\": " << num(all)
              << ", \"fwd_ms\": " << num(fwd) << "}";
        }
        std::printf("%s\n", rec.str().c_str());
        std::fflush(stdout);
      }
      for (void* ptr : {src, dst, dsrc, static_cast<void*>(wei), static_cast<void*>(dwei), static_cast<void*>(bias),
                        static_cast<void*>(dbias)})
        CK(cudaFree(ptr));
    }
  }
  CK(cudaStreamDestroy(stream));
  return 0;
}
