// cuda_cudnn / cuda_cudnn_nondet: cuDNN 9 (legacy convolution API) as algorithms among ours.
//
// Mapping (core/problem.hpp; see docs/cuda-backend.md): our transposed convolution with OHWI weights is the
// cuDNN cross-correlation whose "x" is our dst side (c_out channels, h_out×w_out) and whose "y" is our src
// side (c_in channels, h_in×w_in), with the KRSC filter (K = c_in, C = Og)
//     wc[g·Ig + c][r][s][o] = wei[g·Og + o][kh − 1 − r][kw − 1 − s][c]
// so: our fwd = cuDNN backward data, our bwd_data = cuDNN forward, our bwd_weights = cuDNN backward filter
// (then transformed back to OHWI). Bias add (fwd) and the bias gradient are our own small kernels; the bias
// gradient is a fixed-order block reduction, so it is deterministic.
//
// What cuDNN cannot express is declined with a reason: negative padding; an output size that is not
// PyTorch's natural size plus an output padding in [0, stride); a fused neuron; and precision modes that
// would need the inputs rounded to a narrower type than the images are stored in (cuDNN computes with its
// tensors' own types): only f32 images with fp32 or tf32, f16 with fp16, bf16 with bf16 are taken.
// Numerics that differ from our kernels: tf32 uses the tensor cores' own input rounding; with f16/bf16 images
// the weight gradient comes out of cuDNN in the image type before it is widened to float32.
//
// The algorithm is measured on first use of a problem (cuDNN's Find*Ex, fastest first — what PyTorch's
// cudnn.benchmark does) and remembered for the process. cuda_cudnn takes the fastest algorithm cuDNN reports
// as CUDNN_DETERMINISTIC (bit-identical on every later call; a new process measures again and may settle on
// another deterministic algorithm, as PyTorch does with deterministic=True and benchmark=True);
// cuda_cudnn_nondet takes the fastest whatever its determinism and is only used on explicit opt-in.
// cuDNN handles are cached per thread and device (a handle must not be used by two threads at once); cuDNN's
// own workspace is taken stream-ordered (cudaMallocAsync) on the call's stream.
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::registry {
namespace {

using cuda_direct::Act;
using cuda_direct::grid_for;
using cuda_direct::KGeom;
using cuda_direct::kgeom;
using cuda_direct::KView;
using cuda_direct::kview;

core::Status cudnn_check(cudnnStatus_t s, const char* what) {
  if (s == CUDNN_STATUS_SUCCESS) return core::Status::ok_status();
  return core::fail(ErrorCode::device_unavailable, std::string(what) + " failed: " + cudnnGetErrorString(s));
}

core::Status handle_for(int device, cudnnHandle_t* out) {
  thread_local std::unordered_map<int, cudnnHandle_t> handles;
  auto it = handles.find(device);
  if (it == handles.end()) {
    cudnnHandle_t h = nullptr;
    if (auto st = cudnn_check(cudnnCreate(&h), "cudnnCreate"); !st.ok()) return st;
    it = handles.emplace(device, h).first;
  }
  *out = it->second;
  return core::Status::ok_status();
}

// wc[g·Ig + c][r][s][o] = wei[g·Og + o][kh − 1 − r][kw − 1 − s][c], stored as the image type.
template <DataType T>
__global__ void to_cudnn_filter(const float* __restrict__ wei, typename Act<T>::type* __restrict__ wc, KGeom g,
                                int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % g.og;
    int64_t r = i / g.og;
    const int64_t s = r % g.kw;
    r /= g.kw;
    const int64_t rr = r % g.kh;
    const int64_t ci = r / g.kh;
    const int64_t grp = ci / g.ig, c = ci % g.ig;
    Act<T>::store(wc, i, wei[(((grp * g.og + o) * g.kh + (g.kh - 1 - rr)) * g.kw + (g.kw - 1 - s)) * g.ig + c]);
  }
}

// The inverse for the weight gradient: diff_wei[o][q][p][c] (+)= dwc[g·Ig + c][kh − 1 − q][kw − 1 − p][o − g·Og].
template <DataType T>
__global__ void from_cudnn_filter(const typename Act<T>::type* __restrict__ dwc, float* __restrict__ diff_wei,
                                  KGeom g, int64_t count, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = i % g.ig;
    int64_t r = i / g.ig;
    const int64_t p = r % g.kw;
    r /= g.kw;
    const int64_t q = r % g.kh;
    const int64_t o = r / g.kh;
    const int64_t grp = o / g.og;
    const float v = Act<T>::load(dwc, (((grp * g.ig + c) * g.kh + (g.kh - 1 - q)) * g.kw + (g.kw - 1 - p)) * g.og +
                                          (o - grp * g.og));
    diff_wei[i] = accumulate ? diff_wei[i] + v : v;
  }
}

template <DataType T>
__global__ void add_bias(KView dst, const float* __restrict__ bias, KGeom g, int64_t count) {
  auto* d = static_cast<typename Act<T>::type*>(dst.data);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % g.c_out;
    int64_t r = i / g.c_out;
    const int64_t x = r % g.w_out;
    r /= g.w_out;
    const int64_t y = r % g.h_out, n = r / g.h_out;
    const int64_t at = n * dst.sn + y * dst.sh + x * dst.sw + o;
    Act<T>::store(d, at, Act<T>::load(d, at) + bias[o]);
  }
}

// diff_bias[o] (+)= Σ over n, oy, ox of diff_dst[..][o]: one block per channel, a fixed thread-to-pixel
// assignment and a fixed shared-memory tree, so the order of additions never changes.
constexpr int kBiasThreads = 256;
template <DataType T>
__global__ void bias_gradient(KView dd, float* __restrict__ diff_bias, KGeom g, bool accumulate) {
  __shared__ float part[kBiasThreads];
  const auto* d = static_cast<const typename Act<T>::type*>(dd.data);
  const int64_t o = blockIdx.x;
  const int64_t pixels = g.n * g.h_out * g.w_out;
  float acc = 0.f;
  for (int64_t i = threadIdx.x; i < pixels; i += kBiasThreads) {
    const int64_t x = i % g.w_out, r = i / g.w_out;
    const int64_t y = r % g.h_out, n = r / g.h_out;
    acc += Act<T>::load(d, n * dd.sn + y * dd.sh + x * dd.sw + o);
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int step = kBiasThreads / 2; step > 0; step /= 2) {
    if (threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
    __syncthreads();
  }
  if (threadIdx.x == 0) diff_bias[o] = accumulate ? diff_bias[o] + part[0] : part[0];
}

// PyTorch's natural size plus op, op in [0, s): the conv from the dst side gives back exactly h_in.
bool natural_size(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d, int64_t pad) {
  const int64_t span = out + 2 * pad - d * (k - 1) - 1;
  return span >= 0 && span / s + 1 == in;
}

cudnnDataType_t cudnn_type(DataType t) {
  switch (t) {
    case DataType::float16: return CUDNN_DATA_HALF;
    case DataType::bfloat16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

// RAII for the four descriptors of one call.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // x: our dst side, y: our src side
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~Descriptors() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
  }
};

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

core::Status make_descriptors(const core::Problem& p, const core::TensorView& dst_side,
                              const core::TensorView& src_side, Descriptors& d) {
  const core::Geometry& g = p.g;
  for (int64_t v : {dst_side.sn, dst_side.sh, dst_side.sw, src_side.sn, src_side.sh, src_side.sw})
    if (!fits_int(v)) return core::unsupported("cuDNN takes 32-bit strides; a view stride is " + std::to_string(v));
  const cudnnDataType_t t = cudnn_type(p.act_type);
  if (auto st = cudnn_check(cudnnCreateTensorDescriptor(&d.x), "cudnnCreateTensorDescriptor"); !st.ok()) return st;
  if (auto st = cudnn_check(cudnnCreateTensorDescriptor(&d.y), "cudnnCreateTensorDescriptor"); !st.ok()) return st;
  if (auto st = cudnn_check(cudnnCreateFilterDescriptor(&d.w), "cudnnCreateFilterDescriptor"); !st.ok()) return st;
  if (auto st = cudnn_check(cudnnCreateConvolutionDescriptor(&d.conv), "cudnnCreateConvolutionDescriptor"); !st.ok())
    return st;
  auto i = [](int64_t v) { return static_cast<int>(v); };
  if (auto st = cudnn_check(cudnnSetTensor4dDescriptorEx(d.x, t, i(g.n), i(g.c_out), i(g.h_out), i(g.w_out),
                                                         i(dst_side.sn), 1, i(dst_side.sh), i(dst_side.sw)),
                            "cudnnSetTensor4dDescriptorEx (dst side)");
      !st.ok())
    return st;
  if (auto st = cudnn_check(cudnnSetTensor4dDescriptorEx(d.y, t, i(g.n), i(g.c_in), i(g.h_in), i(g.w_in),
                                                         i(src_side.sn), 1, i(src_side.sh), i(src_side.sw)),
                            "cudnnSetTensor4dDescriptorEx (src side)");
      !st.ok())
    return st;
  if (auto st = cudnn_check(cudnnSetFilter4dDescriptor(d.w, t, CUDNN_TENSOR_NHWC, i(g.c_in), i(g.og()), i(g.kh), i(g.kw)),
                            "cudnnSetFilter4dDescriptor");
      !st.ok())
    return st;
  if (auto st = cudnn_check(cudnnSetConvolution2dDescriptor(d.conv, i(g.pad_h), i(g.pad_w), i(g.stride_h),
                                                            i(g.stride_w), i(g.dil_h), i(g.dil_w),
                                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                            "cudnnSetConvolution2dDescriptor");
      !st.ok())
    return st;
  if (auto st = cudnn_check(cudnnSetConvolutionGroupCount(d.conv, i(g.groups)), "cudnnSetConvolutionGroupCount");
      !st.ok())
    return st;
  return cudnn_check(cudnnSetConvolutionMathType(
                         d.conv, p.precision == Precision::fp32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH),
                     "cudnnSetConvolutionMathType");
}

// First heuristic candidate that cuDNN can run, is deterministic when asked, and keeps fp32 off the tensor
// cores. Returns false if there is none.
template <class Perf>
bool pick(const Perf* perf, int count, bool need_deterministic, Precision prec, Perf& out) {
  for (int k = 0; k < count; ++k) {
    if (perf[k].status != CUDNN_STATUS_SUCCESS) continue;
    if (need_deterministic && perf[k].determinism != CUDNN_DETERMINISTIC) continue;
    if (prec == Precision::fp32 && perf[k].mathType != CUDNN_FMA_MATH) continue;
    out = perf[k];
    return true;
  }
  return false;
}

class CudaCudnn final : public Algorithm {
 public:
  explicit CudaCudnn(bool deterministic) : deterministic_(deterministic) {}
  std::string_view name() const noexcept override { return deterministic_ ? "cuda_cudnn" : "cuda_cudnn_nondet"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return deterministic_; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    if (g.pad_h < 0 || g.pad_w < 0)
      return "cuDNN takes no negative padding (pad " + std::to_string(g.pad_h) + "," + std::to_string(g.pad_w) + ")";
    if (!natural_size(g.h_in, g.h_out, g.kh, g.stride_h, g.dil_h, g.pad_h) ||
        !natural_size(g.w_in, g.w_out, g.kw, g.stride_w, g.dil_w, g.pad_w))
      return "output size " + std::to_string(g.h_out) + "x" + std::to_string(g.w_out) +
             " is not the natural size plus an output padding below the stride, which cuDNN requires";
    const bool types_ok = (p.act_type == DataType::float32 &&
                           (p.precision == Precision::fp32 || p.precision == Precision::tf32)) ||
                          (p.act_type == DataType::float16 && p.precision == Precision::fp16) ||
                          (p.act_type == DataType::bfloat16 && p.precision == Precision::bf16);
    if (!types_ok)
      return std::string("cuDNN computes in its tensors' types: ") + std::string(to_string(p.act_type)) +
             " images with " + std::string(to_string(p.precision)) +
             " precision are not expressible (f32 with fp32/tf32, f16 with fp16, bf16 with bf16 are)";
    if (p.neuron.type != NeuronType::none) return "cuDNN's backward-data has no fused neuron";
    for (int64_t v : {core::src_elements(g), core::dst_elements(g), core::wei_elements(g), g.c_in, g.c_out, g.h_in,
                      g.w_in, g.h_out, g.w_out, g.kh, g.kw, g.stride_h, g.stride_w, g.dil_h, g.dil_w, g.pad_h,
                      g.pad_w, g.n})
      if (!fits_int(v)) return "a size or element count exceeds cuDNN's 32-bit range (" + std::to_string(v) + ")";
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    // The filter in cuDNN's layout and type (fwd, bwd_data: input; bwd_weights: cuDNN's output).
    return static_cast<std::size_t>(core::wei_elements(p.g)) * size_of(p.act_type);
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    cuda_backend::DeviceGuard guard(ctx.cuda_device);
    if (!guard.ok()) return guard.status();
    int device = 0;
    if (auto st = cuda_backend::check(cudaGetDevice(&device), "cudaGetDevice"); !st.ok()) return st;
    cudnnHandle_t h = nullptr;
    if (auto st = handle_for(device, &h); !st.ok()) return st;
    const auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
    if (auto st = cudnn_check(cudnnSetStream(h, stream), "cudnnSetStream"); !st.ok()) return st;
    return cuda_direct::dispatch_types(p.act_type, Precision::fp32, [&](auto act_c, auto) -> core::Status {
      constexpr DataType T = decltype(act_c)::value;
      return run_typed<T>(h, device, p, a, workspace, stream);
    });
  }

 private:
  template <DataType T>
  core::Status run_typed(cudnnHandle_t h, int device, const core::Problem& p, const core::Args& a, void* workspace,
                         cudaStream_t stream) const {
    const KGeom g = kgeom(p.g);
    const int64_t wcount = core::wei_elements(p.g);
    auto* wc = static_cast<typename Act<T>::type*>(workspace);
    const float one = 1.f, zero = 0.f;
    Descriptors d;
    const bool fwd = p.dir == core::Direction::fwd, bwd_data = p.dir == core::Direction::bwd_data;
    const core::TensorView& dst_side = fwd ? a.dst : a.diff_dst;
    const core::TensorView& src_side = fwd || p.dir == core::Direction::bwd_weights ? a.src : a.diff_src;
    if (auto st = make_descriptors(p, dst_side, src_side, d); !st.ok()) return st;
    if (fwd || bwd_data) {
      to_cudnn_filter<T><<<grid_for(wcount, 256), 256, 0, stream>>>(a.wei, wc, g, wcount);
      if (auto st = cuda_backend::check_launch("cuda_cudnn filter layout"); !st.ok()) return st;
    }
    auto none = [&](const char* pass) {
      return core::unsupported(std::string("cuDNN offers no ") + (deterministic_ ? "deterministic " : "") +
                               "algorithm for " + pass + " of " + p.describe());
    };
    // Algorithm: measured once per problem, view strides and device with cuDNN's Find*Ex (as PyTorch's
    // cudnn.benchmark does), fastest first, then filtered by pick(); remembered for later calls.
    const CacheKey key{p, {dst_side.sn, dst_side.sh, dst_side.sw, src_side.sn, src_side.sh, src_side.sw}, device};
    Selected sel{};
    core::Status st;
    if (!lookup(key, sel)) {
      const char* pass = fwd ? "backward data" : bwd_data ? "forward" : "backward filter";
      std::size_t free_b = 0, total_b = 0;
      if (st = cuda_backend::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo"); !st.ok()) return st;
      const std::size_t find_bytes = std::min<std::size_t>(std::size_t{256} << 20, free_b / 2);
      void* fws = nullptr;
      if (st = cuda_backend::check(cudaMalloc(&fws, find_bytes), "cudaMalloc (cuDNN search workspace)"); !st.ok())
        return st;
      constexpr int kMax = 16;
      int found = 0;
      bool have = false;
      if (fwd) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[kMax], best{};
        static_cast<void>(st = cudnn_check(
            cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, wc, d.y, a.src.data, d.conv, d.x, a.dst.data, kMax,
                                                        &found, perf, fws, find_bytes),
            "cudnnFindConvolutionBackwardDataAlgorithmEx"));
        if (st.ok() && (have = pick(perf, found, deterministic_, p.precision, best))) sel = {int(best.algo), best.mathType};
      } else if (bwd_data) {
        cudnnConvolutionFwdAlgoPerf_t perf[kMax], best{};
        static_cast<void>(st = cudnn_check(
            cudnnFindConvolutionForwardAlgorithmEx(h, d.x, a.diff_dst.data, d.w, wc, d.conv, d.y, a.diff_src.data, kMax,
                                                   &found, perf, fws, find_bytes),
            "cudnnFindConvolutionForwardAlgorithmEx"));
        if (st.ok() && (have = pick(perf, found, deterministic_, p.precision, best))) sel = {int(best.algo), best.mathType};
      } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax], best{};
        static_cast<void>(st = cudnn_check(
            cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, a.diff_dst.data, d.y, a.src.data, d.conv, d.w, wc,
                                                          kMax, &found, perf, fws, find_bytes),
            "cudnnFindConvolutionBackwardFilterAlgorithmEx"));
        if (st.ok() && (have = pick(perf, found, deterministic_, p.precision, best))) sel = {int(best.algo), best.mathType};
      }
      cudaFree(fws);
      if (!st.ok()) return st;
      if (!have) return none(pass);
      store(key, sel);
    }
    cudnnSetConvolutionMathType(d.conv, sel.math);
    std::size_t ws_bytes = 0;
    void* ws = nullptr;
    auto get_ws = [&]() -> core::Status {
      if (ws_bytes == 0) return core::Status::ok_status();
      return cuda_backend::check(cudaMallocAsync(&ws, ws_bytes, stream), "cudaMallocAsync (cuDNN workspace)");
    };
    if (fwd) {  // our fwd = cuDNN backward data: dx (our dst) from dy (our src)
      const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(sel.algo);
      if (st = cudnn_check(cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, algo, &ws_bytes),
                           "cudnnGetConvolutionBackwardDataWorkspaceSize");
          !st.ok())
        return st;
      if (st = get_ws(); !st.ok()) return st;
      static_cast<void>(st = cudnn_check(cudnnConvolutionBackwardData(h, &one, d.w, wc, d.y, a.src.data, d.conv, algo,
                                                                      ws, ws_bytes, &zero, d.x, a.dst.data),
                                         "cudnnConvolutionBackwardData"));
      if (st.ok() && p.with_bias && a.bias != nullptr) {
        const int64_t count = core::dst_elements(p.g);
        add_bias<T><<<grid_for(count, 256), 256, 0, stream>>>(kview(a.dst), a.bias, g, count);
        static_cast<void>(st = cuda_backend::check_launch("cuda_cudnn bias"));
      }
    } else if (bwd_data) {  // our bwd_data = cuDNN forward: y (our diff_src) from x (our diff_dst)
      const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(sel.algo);
      if (st = cudnn_check(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, algo, &ws_bytes),
                           "cudnnGetConvolutionForwardWorkspaceSize");
          !st.ok())
        return st;
      if (st = get_ws(); !st.ok()) return st;
      static_cast<void>(st = cudnn_check(cudnnConvolutionForward(h, &one, d.x, a.diff_dst.data, d.w, wc, d.conv, algo,
                                                                 ws, ws_bytes, &zero, d.y, a.diff_src.data),
                                         "cudnnConvolutionForward"));
    } else {  // our bwd_weights = cuDNN backward filter: dw from x (our diff_dst) and dy (our src)
      const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(sel.algo);
      if (st = cudnn_check(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, algo, &ws_bytes),
                           "cudnnGetConvolutionBackwardFilterWorkspaceSize");
          !st.ok())
        return st;
      if (st = get_ws(); !st.ok()) return st;
      static_cast<void>(st = cudnn_check(cudnnConvolutionBackwardFilter(h, &one, d.x, a.diff_dst.data, d.y, a.src.data,
                                                                        d.conv, algo, ws, ws_bytes, &zero, d.w, wc),
                                         "cudnnConvolutionBackwardFilter"));
      if (st.ok()) {
        from_cudnn_filter<T><<<grid_for(wcount, 256), 256, 0, stream>>>(wc, a.diff_wei, g, wcount, p.accumulate);
        static_cast<void>(st = cuda_backend::check_launch("cuda_cudnn weight-gradient layout"));
      }
      if (st.ok() && p.with_bias && a.diff_bias != nullptr) {
        bias_gradient<T><<<static_cast<unsigned>(p.g.c_out), kBiasThreads, 0, stream>>>(kview(a.diff_dst),
                                                                                       a.diff_bias, g, p.accumulate);
        static_cast<void>(st = cuda_backend::check_launch("cuda_cudnn bias gradient"));
      }
    }
    if (ws != nullptr) {
      const core::Status freed = cuda_backend::check(cudaFreeAsync(ws, stream), "cudaFreeAsync (cuDNN workspace)");
      if (st.ok()) static_cast<void>(st = freed);
    }
    return st;
  }

  // The measured choice per (problem, view strides, device). The Algorithm interface carries no context to
  // keep it in, so it lives here, guarded; it only ever grows by one entry per distinct problem.
  struct CacheKey {
    core::Problem p;
    int64_t strides[6];
    int device;
    bool operator==(const CacheKey&) const = default;
  };
  struct Selected {
    int algo;
    cudnnMathType_t math;
  };
  bool lookup(const CacheKey& k, Selected& out) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : cache_)
      if (e.first == k) {
        out = e.second;
        return true;
      }
    return false;
  }
  void store(const CacheKey& k, const Selected& s) const {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.emplace_back(k, s);
  }

  bool deterministic_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<CacheKey, Selected>> cache_;
};

}  // namespace

const Algorithm* cuda_cudnn_algorithm() {
  static const CudaCudnn algorithm(true);
  return &algorithm;
}
const Algorithm* cuda_cudnn_nondeterministic_algorithm() {
  static const CudaCudnn algorithm(false);
  return &algorithm;
}

}  // namespace tconv::registry
