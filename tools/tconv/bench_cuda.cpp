// tconv bench --device cuda: the suite's layers on the GPU through the object API — what a user gets.
//
// Per layer (batch n of the suite) and dtype (bf16, fp16: images and multiplies of that type; tf32, fp32:
// float32 images), a ConvolutionTranspose and a ConvolutionTransposeGradient on Device::cuda(0), configured
// from the layer's PyTorch geometry (tconv/convert.hpp offsets; the gradient auto-configured from the forward's
// state), time:
//   fwd_ms   the forward pass;
//   dx_ms    the gradient with option data (dX alone);
//   dwdb_ms  the gradient with option weights_and_bias (dW + db alone);
//   all_ms   the gradient with option all: dX on the command buffer's stream and dW + db on the second stream,
//            at the same time (docs/cuda-backend.md), as a training step issues it.
// Each is the median of --reps units after --warmup units, encoded back to back into one command buffer with
// CUDA timing events recorded on its stream between units (GPU time per unit; the host issues ahead). Each
// gradient unit has its own fresh state, so every unit overwrites dW/db as a training step does (e4).
// Once per layer and dtype the object API's two-stream results are compared bit for bit with the chosen
// algorithms run directly on the same device data ("check"): a wrong geometry mapping would show there.
//
// Lines: impl "tconv" (the planner's choice per direction), or "tconv-<name>" with one algorithm forced for
// every direction (--algo NAME, or --algorithms list|a,b beside the planner's line), where a direction the
// algorithm declines is null (and all_ms too when it declines either gradient). Before the layers, the GPU's
// bf16 matrix rate (cuBLAS cublasGemmEx, bf16 inputs and output, fp32 accumulation, m = n = k = --gemm-size)
// and its device-to-device copy bandwidth, as '#' lines and a "tconv-machine" JSON line.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_cuda.hpp"
#include "core/dtype.hpp"
#include "registry/algorithm.hpp"
#include "tconv/tconv.hpp"

namespace tconv::cli {
namespace {

void ck(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error(ErrorCode::device_unavailable, std::string(what) + " failed: " + cudaGetErrorString(e));
  }
}
void ck(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(ErrorCode::device_unavailable, std::string(what) + " failed: cuBLAS status " + std::to_string(s));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}
double round4(double v) { return std::round(v * 1e4) / 1e4; }

// Timing events, destroyed with the object.
class Events {
 public:
  explicit Events(int count) : events_(static_cast<std::size_t>(count), nullptr) {
    for (cudaEvent_t& e : events_) ck(cudaEventCreate(&e), "cudaEventCreate");
  }
  ~Events() {
    for (cudaEvent_t e : events_)
      if (e != nullptr) cudaEventDestroy(e);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  cudaEvent_t operator[](int i) const { return events_[static_cast<std::size_t>(i)]; }
  double ms(int a, int b) const {
    float t = 0;
    ck(cudaEventElapsedTime(&t, (*this)[a], (*this)[b]), "cudaEventElapsedTime");
    return t;
  }

 private:
  std::vector<cudaEvent_t> events_;
};

// Median GPU milliseconds of one unit of work: warmup + reps units encoded back to back into one command
// buffer, with an event recorded on the buffer's stream (CommandBuffer::cuda_stream) before each timed unit
// and after the last. The gradient's side stream is joined into that stream after each unit, so the time
// between two events covers both of its streams.
double time_units(const Device& gpu, int warmup, int reps, const std::function<void(CommandBuffer&, int)>& unit) {
  CommandBuffer cb(gpu);
  Events ev(reps + 1);
  const auto stream = static_cast<cudaStream_t>(cb.cuda_stream());
  auto mark = [&](int i) {
    cudaEvent_t e = ev[i];
    cb.encode("bench mark", [e, stream] { ck(cudaEventRecord(e, stream), "cudaEventRecord"); });
  };
  for (int i = 0; i < warmup; ++i) unit(cb, i);
  for (int i = 0; i < reps; ++i) {
    mark(i);
    unit(cb, warmup + i);
  }
  mark(reps);
  cb.commit();
  cb.wait_and_check();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(ev.ms(i, i + 1));
  return median(t);
}

// ---------------------------------------------------------------- the machine

struct Machine {
  double bf16_tflops = 0, copy_gbps = 0;
};

Machine measure_machine(int size) {
  Machine m;
  cudaStream_t s = nullptr;
  ck(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  cublasHandle_t h = nullptr;
  ck(cublasCreate(&h), "cublasCreate");
  std::vector<void*> owned;
  auto dev_alloc = [&](std::size_t bytes) {
    void* p = nullptr;
    ck(cudaMalloc(&p, bytes), "cudaMalloc");
    owned.push_back(p);
    return p;
  };
  auto cleanup = [&] {
    for (void* p : owned) cudaFree(p);
    cublasDestroy(h);
    cudaStreamDestroy(s);
  };
  try {
    ck(cublasSetStream(h, s), "cublasSetStream");
    const std::size_t elems = static_cast<std::size_t>(size) * static_cast<std::size_t>(size);
    std::vector<uint16_t> host(elems);
    uint32_t r = 12345;
    for (uint16_t& v : host) {
      r = r * 1664525u + 1013904223u;
      v = core::f32_to_bf16(static_cast<float>(r >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f);
    }
    void* a = dev_alloc(elems * 2);
    void* b = dev_alloc(elems * 2);
    void* c = dev_alloc(elems * 2);
    ck(cudaMemcpy(a, host.data(), elems * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    ck(cudaMemcpy(b, host.data(), elems * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    const float alpha = 1.0f, beta = 0.0f;
    auto timed = [&](const std::function<void()>& f, int warmup, int reps) {
      for (int i = 0; i < warmup; ++i) f();
      Events ev(reps + 1);
      for (int i = 0; i < reps; ++i) {
        ck(cudaEventRecord(ev[i], s), "cudaEventRecord");
        f();
      }
      ck(cudaEventRecord(ev[reps], s), "cudaEventRecord");
      ck(cudaEventSynchronize(ev[reps]), "cudaEventSynchronize");
      std::vector<double> t;
      for (int i = 0; i < reps; ++i) t.push_back(ev.ms(i, i + 1));
      return median(t);
    };
    const double gemm_ms = timed([&] {
      ck(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, size, size, size, &alpha, a, CUDA_R_16BF, size, b, CUDA_R_16BF,
                      size, &beta, c, CUDA_R_16BF, size, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
         "cublasGemmEx");
    }, 3, 10);
    m.bf16_tflops = 2.0 * size * static_cast<double>(size) * size / (gemm_ms * 1e-3) / 1e12;
    const std::size_t bytes = std::size_t{1} << 30;
    void* src = dev_alloc(bytes);
    void* dst = dev_alloc(bytes);
    ck(cudaMemsetAsync(src, 1, bytes, s), "cudaMemset");
    const double copy_ms = timed([&] { ck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), "copy"); }, 2, 10);
    m.copy_gbps = 2.0 * static_cast<double>(bytes) / (copy_ms * 1e-3) / 1e9;  // read + write
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  return m;
}

// ---------------------------------------------------------------- one layer

struct Dtype {
  std::string name;
  DataType images;
  Precision precision;
};
std::optional<Dtype> dtype_of(const std::string& s) {
  if (s == "fp32") return Dtype{s, DataType::float32, Precision::fp32};
  if (s == "tf32") return Dtype{s, DataType::float32, Precision::tf32};
  if (s == "fp16") return Dtype{s, DataType::float16, Precision::fp16};
  if (s == "bf16") return Dtype{s, DataType::bfloat16, Precision::bf16};
  return std::nullopt;
}

std::vector<float> randoms(std::size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t r = seed * 2654435761u + 1;
  for (float& x : v) {
    r = r * 1664525u + 1013904223u;
    x = static_cast<float>(r >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  }
  return v;
}

void fill_random(Image& img, uint32_t seed) {
  const std::vector<float> f = randoms(static_cast<std::size_t>(img.element_count()), seed);
  std::vector<uint8_t> bytes(f.size() * size_of(img.data_type()));
  for (std::size_t i = 0; i < f.size(); ++i) core::store_from_f32(bytes.data(), static_cast<int64_t>(i), img.data_type(), f[i]);
  Buffer b = img.buffer();
  b.copy_from_host(bytes.data(), bytes.size());
}

// The device data of one (layer, dtype) and the kernels' configuration from the PyTorch geometry.
struct Case {
  Device gpu;
  core::Geometry g;
  Dtype dt;
  ConvolutionDescriptor desc{1, 1, 1, 1};
  std::shared_ptr<ArrayDataSource> ds;
  std::vector<float> weights, biases;
  Image x, y, gy, gx;
  MpsTransposeOffsets offsets;
};

Case make_case(const Device& gpu, const core::Geometry& g, const Dtype& dt) {
  Case c{gpu, g, dt};
  c.desc = ConvolutionDescriptor(g.kw, g.kh, g.c_in, g.c_out);
  c.desc.groups = g.groups;
  c.desc.stride_x = g.stride_w;
  c.desc.stride_y = g.stride_h;
  c.desc.dilation_x = g.dil_w;
  c.desc.dilation_y = g.dil_h;
  c.weights = randoms(static_cast<std::size_t>(core::wei_elements(g)), 3);
  c.biases = randoms(static_cast<std::size_t>(g.c_out), 4);
  c.ds = std::make_shared<ArrayDataSource>(c.desc, c.weights, c.biases);
  c.x = Image(gpu, ImageDescriptor{g.w_in, g.h_in, g.c_in, g.n, dt.images});
  c.gx = Image(gpu, c.x.descriptor());
  c.y = Image(gpu, ImageDescriptor{g.w_out, g.h_out, g.c_out, g.n, dt.images});
  c.gy = Image(gpu, c.y.descriptor());
  fill_random(c.x, 1);
  fill_random(c.gy, 2);
  TorchTransposeGeometry t;
  t.stride = {g.stride_h, g.stride_w};
  t.padding = {g.pad_h, g.pad_w};
  t.dilation = {g.dil_h, g.dil_w};
  t.groups = g.groups;
  c.offsets = mps_offsets_from_torch(t, g.kh, g.kw);
  return c;
}

// The kernels of one configuration: `algorithm` forced (empty: the planner's choice).
struct Kernels {
  ConvolutionTranspose fwd;
  ConvolutionTransposeGradient grad;
};
Kernels make_kernels(const Case& c, const std::string& algorithm, bool nondeterministic) {
  ConvolutionTranspose f(c.gpu, c.ds);
  KernelProperties& p = f.properties();
  p.padding = padding::custom;  // the offsets below are the layer's padding
  p.offset.x = c.offsets.offset_x;
  p.offset.y = c.offsets.offset_y;
  p.kernel_offset_x = c.offsets.kernel_offset_x;
  p.kernel_offset_y = c.offsets.kernel_offset_y;
  p.precision = c.dt.precision;
  p.algorithm = algorithm;
  p.allow_nondeterministic = nondeterministic;
  ConvolutionTransposeGradient g(c.gpu, c.ds);
  g.properties().precision = c.dt.precision;
  g.properties().algorithm = algorithm;
  g.properties().allow_nondeterministic = nondeterministic;
  // a.7.4: primary offset and kernel offset from the forward's state; then all three canonical paddings are
  // the layer's padding.
  g.destination_image_descriptor({c.gy, c.x}, {f.result_state(c.x, {}, c.y)});
  return Kernels{std::move(f), std::move(g)};
}

struct Problems {
  core::Problem fwd, data, weights;
};
Problems problems_of(const Case& c) {
  Problems p;
  p.fwd.g = c.g;
  p.fwd.act_type = c.dt.images;
  p.fwd.precision = c.dt.precision;
  p.fwd.dir = core::Direction::fwd;
  p.fwd.with_bias = true;
  p.data = p.fwd;
  p.data.dir = core::Direction::bwd_data;
  p.data.with_bias = false;
  p.weights = p.fwd;
  p.weights.dir = core::Direction::bwd_weights;
  return p;
}

struct Timings {
  std::optional<double> fwd, dx, dwdb, all;
};

// Times what `k` takes of the three passes (`take_*` false: declined, left null).
Timings time_kernels(const Case& c, Kernels& k, bool take_fwd, bool take_dx, bool take_dw, int warmup, int reps) {
  Timings t;
  const int units = warmup + reps;
  if (take_fwd) {
    Image y = c.y;
    t.fwd = time_units(c.gpu, warmup, reps, [&](CommandBuffer& cb, int) { k.fwd.encode(cb, c.x, y); });
  }
  auto gradient = [&](GradientOption o) {
    k.grad.set_gradient_option(o);
    std::vector<ConvolutionTransposeGradientState> states;
    for (int i = 0; i < units; ++i) states.push_back(k.fwd.result_state(c.x, {}, c.y));
    Image gx = c.gx;
    return time_units(c.gpu, warmup, reps, [&](CommandBuffer& cb, int i) {
      k.grad.encode(cb, c.gy, c.x, states[static_cast<std::size_t>(i)], gx);
    });
  };
  if (take_dx) t.dx = gradient(GradientOption::data);
  if (take_dw) t.dwdb = gradient(GradientOption::weights_and_bias);
  if (take_dx && take_dw) t.all = gradient(GradientOption::all);
  return t;
}

std::vector<uint8_t> bytes_of(const Buffer& b) {
  std::vector<uint8_t> v(b.length());
  b.copy_to_host(v.data(), v.size());
  return v;
}

// The object API's two-stream gradient against the two algorithms run directly on the same device data:
// equal bytes show that the API ran exactly the canonical problems the suite describes.
bool check_against_direct(const Case& c, Kernels& k, const Problems& p, const registry::Algorithm& ad,
                          const registry::Algorithm& aw) {
  const Device& gpu = c.gpu;
  CommandBuffer cb(gpu);
  k.grad.set_gradient_option(GradientOption::all);
  ConvolutionTransposeGradientState st = k.fwd.result_state(c.x, {}, c.y);
  Image gx_api = c.gx;
  k.grad.encode(cb, c.gy, c.x, st, gx_api);
  Image gx(gpu, c.x.descriptor());
  Buffer wei = Buffer::from_host(gpu, c.weights.data(), c.weights.size() * 4);
  Buffer dw = Buffer::allocate(gpu, c.weights.size() * 4), db = Buffer::allocate(gpu, c.biases.size() * 4);
  Buffer ws = Buffer::allocate(gpu, std::max(ad.workspace_bytes(p.data), aw.workspace_bytes(p.weights)) + 1);
  void* stream = cb.cuda_stream();
  cb.encode("direct", [&, stream] {
    registry::ExecContext ctx;
    ctx.cuda_device = gpu.ordinal();
    ctx.cuda_stream = stream;
    core::Args a;
    a.src = core::dense_nhwc(c.x.buffer().device_pointer(), c.g.h_in, c.g.w_in, c.g.c_in);
    a.diff_src = core::dense_nhwc(gx.buffer().device_pointer(), c.g.h_in, c.g.w_in, c.g.c_in);
    a.diff_dst = core::dense_nhwc(c.gy.buffer().device_pointer(), c.g.h_out, c.g.w_out, c.g.c_out);
    a.wei = static_cast<const float*>(wei.device_pointer());
    a.diff_wei = static_cast<float*>(dw.device_pointer());
    a.diff_bias = static_cast<float*>(db.device_pointer());
    core::throw_if_error(ad.run(p.data, a, ws.device_pointer(), ctx));
    core::throw_if_error(aw.run(p.weights, a, ws.device_pointer(), ctx));
  });
  cb.commit();
  cb.wait_and_check();
  return bytes_of(gx_api.buffer()) == bytes_of(gx.buffer()) &&
         bytes_of(st.gradient_for_weights()) == bytes_of(dw) && bytes_of(st.gradient_for_biases()) == bytes_of(db);
}

nlohmann::json opt_ms(const std::optional<double>& v) { return v ? nlohmann::json(round4(*v)) : nlohmann::json(nullptr); }
nlohmann::json opt_rate(double gflop, const std::optional<double>& ms) {
  return ms ? nlohmann::json(round4(gflop / (*ms * 1e-3))) : nlohmann::json(nullptr);
}

}  // namespace

int bench_cuda(const CudaBenchOptions& o) {
  if (Device::cuda_device_count() == 0)
    throw Error(ErrorCode::device_unavailable, "--device cuda: no CUDA device is present");
  if (o.reps < 1 || o.warmup < 0) throw Error(ErrorCode::invalid_argument, "--reps must be >= 1 and --warmup >= 0");
  std::vector<Dtype> dtypes;
  for (const std::string& s : o.dtypes) {
    auto d = dtype_of(s);
    if (!d) throw Error(ErrorCode::invalid_argument, "--dtypes: '" + s + "' is not one of bf16, fp16, tf32, fp32");
    dtypes.push_back(*d);
  }
  // The configurations: the planner ("" -> impl "tconv") unless --algo forces one; then --algorithms.
  std::vector<std::string> configs;
  auto add_algorithm = [&](const std::string& name) {
    const registry::Algorithm* a = registry::find(name);
    if (a == nullptr || a->backend() != DeviceKind::cuda)
      throw Error(ErrorCode::invalid_argument, "unknown CUDA algorithm '" + name + "' (tconv info lists them)");
    if (std::find(configs.begin(), configs.end(), name) == configs.end()) configs.push_back(name);
  };
  if (!o.algo.empty()) add_algorithm(o.algo);
  else configs.push_back("");
  for (const std::string& name : o.algorithms) {
    if (name == "list") {
      for (const registry::Algorithm* a : registry::algorithms(DeviceKind::cuda))
        if (a->deterministic() || o.nondeterministic) add_algorithm(std::string(a->name()));
    } else {
      add_algorithm(name);
    }
  }

  Device gpu = Device::cuda(0);
  cudaDeviceProp prop{};
  ck(cudaGetDeviceProperties(&prop, gpu.ordinal()), "cudaGetDeviceProperties");
  const std::string device_name = prop.name;  // as torch.cuda.get_device_name() writes it
  double gemm_tflops = 0;
  if (o.machine) {
    const Machine m = measure_machine(o.gemm_size);
    gemm_tflops = m.bf16_tflops;
    std::printf("# machine: %s; cuBLAS bf16 GEMM %dx%dx%d (fp32 accumulation): %.1f TFLOP/s; device-to-device copy: "
                "%.1f GB/s (read+write)\n", device_name.c_str(), o.gemm_size, o.gemm_size, o.gemm_size, m.bf16_tflops,
                m.copy_gbps);
    o.emit({{"impl", "tconv-machine"}, {"device", device_name}, {"bf16_gemm_tflops", round4(m.bf16_tflops)},
            {"gemm_size", o.gemm_size}, {"copy_gbps", round4(m.copy_gbps)}});
  }
  std::printf("# %-16s %-5s %-22s %-22s %-22s %8s %8s %8s %8s %7s %6s %7s\n", "layer", "dtype", "algo fwd", "algo dX",
              "algo dW+db", "fwd ms", "dx ms", "dwdb ms", "all ms", "TFLOP/s", "%gemm", "overlap");

  for (const auto& L : o.suite.at("layers")) {
    const std::string name = L.at("name").get<std::string>();
    if (!o.layers.empty() && !o.layers.count(name)) continue;
    const int64_t n = L.at("n").get<int64_t>();
    const core::Geometry g = suite_geometry(L, n);
    const double gflop_each = L.at("gflop_each").get<double>() * static_cast<double>(n) / L.at("n").get<double>();
    for (const Dtype& dt : dtypes) {
      std::optional<Case> c;
      try {
        c = make_case(gpu, g, dt);
      } catch (const Error& e) {
        o.emit({{"impl", "tconv"}, {"device", device_name}, {"layer", name}, {"n", n}, {"dtype", dt.name},
                {"layout", "nhwc"}, {"error", e.what()}});
        continue;
      }
      const Problems p = problems_of(*c);
      for (const std::string& algo : configs) {
        nlohmann::json j = {{"impl", algo.empty() ? std::string("tconv") : "tconv-" + algo},
                            {"device", device_name}, {"layer", name}, {"n", n}, {"dtype", dt.name},
                            {"layout", "nhwc"}, {"gflop_each", round4(gflop_each)}};
        try {
          // What each direction runs: the planner's choice, or the forced algorithm unless it declines.
          nlohmann::json declined = nlohmann::json::object();
          auto pick = [&](const core::Problem& q, const char* dir) -> const registry::Algorithm* {
            const registry::Choice ch = registry::choose(q, DeviceKind::cuda, algo, o.nondeterministic);
            if (ch.algorithm == nullptr) declined[dir] = ch.reason;
            return ch.algorithm;
          };
          const registry::Algorithm* af = pick(p.fwd, "fwd");
          const registry::Algorithm* ad = pick(p.data, "dx");
          const registry::Algorithm* aw = pick(p.weights, "dwdb");
          if (algo.empty() && (af == nullptr || ad == nullptr || aw == nullptr))
            throw Error(ErrorCode::unsupported, "no CUDA algorithm takes the layer: " + declined.dump());
          Kernels k = make_kernels(*c, algo, o.nondeterministic);
          const Timings t = time_kernels(*c, k, af != nullptr, ad != nullptr, aw != nullptr, o.warmup, o.reps);
          auto name_of = [](const registry::Algorithm* a) {
            return a ? nlohmann::json(std::string(a->name())) : nlohmann::json(nullptr);
          };
          j["dx_ms"] = opt_ms(t.dx);
          j["dwdb_ms"] = opt_ms(t.dwdb);
          j["all_ms"] = opt_ms(t.all);
          j["fwd_ms"] = opt_ms(t.fwd);
          j["algo_fwd"] = name_of(af);
          j["algo_dx"] = name_of(ad);
          j["algo_dw"] = name_of(aw);
          std::optional<double> both;
          if (t.all) both = *t.all / 2.0;  // all_ms covers two passes of gflop_each
          j["gflops"] = opt_rate(gflop_each, both);
          j["gflops_dx"] = opt_rate(gflop_each, t.dx);
          j["gflops_dwdb"] = opt_rate(gflop_each, t.dwdb);
          j["gflops_fwd"] = opt_rate(gflop_each, t.fwd);
          if (t.all && gemm_tflops > 0) j["bf16_gemm_fraction"] = round4(2.0 * gflop_each / (*t.all * 1e-3) / (gemm_tflops * 1e3));
          // > 1: the two streams overlapped (dX alone + dW+db alone took longer than both together).
          if (t.all && t.dx && t.dwdb) j["overlap"] = round4((*t.dx + *t.dwdb) / *t.all);
          if (!declined.empty()) j["declined"] = declined;
          if (algo.empty()) j["check"] = check_against_direct(*c, k, p, *ad, *aw) ? "bitwise" : "MISMATCH";
          auto col = [](const std::optional<double>& v) { return v ? *v : NAN; };
          std::printf("# %-16s %-5s %-22s %-22s %-22s %8.3f %8.3f %8.3f %8.3f %7.1f %5.1f%% %7.2f\n", name.c_str(),
                      dt.name.c_str(), af ? std::string(af->name()).c_str() : "-",
                      ad ? std::string(ad->name()).c_str() : "-", aw ? std::string(aw->name()).c_str() : "-",
                      col(t.fwd), col(t.dx), col(t.dwdb), col(t.all),
                      t.all ? 2.0 * gflop_each / (*t.all * 1e-3) / 1e3 : NAN,
                      t.all && gemm_tflops > 0 ? 100.0 * 2.0 * gflop_each / (*t.all * 1e-3) / (gemm_tflops * 1e3) : NAN,
                      t.all && t.dx && t.dwdb ? (*t.dx + *t.dwdb) / *t.all : NAN);
        } catch (const Error& e) {
          j["error"] = e.what();
        }
        o.emit(j);
      }
    }
  }
  return 0;
}

}  // namespace tconv::cli
