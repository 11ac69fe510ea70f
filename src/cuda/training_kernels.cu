// The training companions on the GPU (declared in cuda/training_backend.hpp): neuron forward and gradient,
// the MSE loss and its gradient, and the SGD / RMSProp / Adam updates, so that a training step on a CUDA
// device keeps its images, gradients, weights and optimizer states in device memory.
//
// The per-element math is cuda/training_math.hpp, shared with the host tests; this file only maps it onto
// threads. It is compiled with -fmad=false (src/cuda/training.cmake): the CPU engine is compiled with
// -ffp-contract=off and rounds every product, so a fused multiply-add here would change the last bit.
//
// Element-wise kernels are grid-stride loops over 64-bit indices; the neuron kernels are instantiated per
// neuron type so the formula switch folds away. The loss reduction reproduces the CPU's float64 order exactly
// (blocks of core::kMseBlock summed in index order by one thread, then the block sums in order): no atomics.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/pointwise.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/training_backend.hpp"
#include "cuda/training_math.hpp"

namespace tconv::cuda_backend::training {
namespace {

namespace tm = tconv::train_math;

constexpr int kThreads = 256;

unsigned blocks_for(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<int64_t>(b, 1, int64_t{1} << 20));
}

__device__ __forceinline__ int64_t first_index() { return blockIdx.x * int64_t{blockDim.x} + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t{gridDim.x} * blockDim.x; }

bool supported(DataType t) {
  return t == DataType::float32 || t == DataType::float16 || t == DataType::bfloat16;
}

core::Status bad_type(const char* kernel, const char* role, DataType t) {
  return core::fail(ErrorCode::unsupported, std::string(kernel) + ": the " + role + " has data type " +
                                                std::string(to_string(t)) +
                                                "; float32, float16 or bfloat16 are supported");
}

// ---------------------------------------------------------------- neurons

template <NeuronType kType>
__global__ void neuron_forward_kernel(const void* x, DataType tx, void* y, DataType ty, int64_t count, float a,
                                      float b, float c) {
  for (int64_t i = first_index(); i < count; i += grid_stride())
    tm::store(y, i, ty, tm::neuron_apply(kType, a, b, c, tm::load(x, i, tx)));
}

template <NeuronType kType>
__global__ void neuron_gradient_kernel(const void* gy, DataType tgy, const void* x, DataType tx, void* gx,
                                       DataType tgx, int64_t count, float a, float b, float c) {
  for (int64_t i = first_index(); i < count; i += grid_stride()) {
    // core::neuron_gradient: g · f'(x), the derivative evaluated first.
    const float g = tm::load(gy, i, tgy);
    const float d = tm::neuron_derivative(kType, a, b, c, tm::load(x, i, tx));
    tm::store(gx, i, tgx, g * d);
  }
}

// Calls f.template operator()<type>() for the neuron type known at run time.
template <class F>
core::Status with_neuron_type(NeuronType t, F&& f) {
  switch (t) {
    case NeuronType::none: f.template operator()<NeuronType::none>(); break;
    case NeuronType::relu: f.template operator()<NeuronType::relu>(); break;
    case NeuronType::linear: f.template operator()<NeuronType::linear>(); break;
    case NeuronType::sigmoid: f.template operator()<NeuronType::sigmoid>(); break;
    case NeuronType::hard_sigmoid: f.template operator()<NeuronType::hard_sigmoid>(); break;
    case NeuronType::tanh: f.template operator()<NeuronType::tanh>(); break;
    case NeuronType::absolute: f.template operator()<NeuronType::absolute>(); break;
    case NeuronType::soft_plus: f.template operator()<NeuronType::soft_plus>(); break;
    case NeuronType::soft_sign: f.template operator()<NeuronType::soft_sign>(); break;
    case NeuronType::elu: f.template operator()<NeuronType::elu>(); break;
    case NeuronType::relu_n: f.template operator()<NeuronType::relu_n>(); break;
    case NeuronType::power: f.template operator()<NeuronType::power>(); break;
    case NeuronType::exponential: f.template operator()<NeuronType::exponential>(); break;
    case NeuronType::logarithm: f.template operator()<NeuronType::logarithm>(); break;
    case NeuronType::gelu: f.template operator()<NeuronType::gelu>(); break;
    default:
      return core::fail(ErrorCode::invalid_argument,
                        "neuron kernel: unknown neuron type " + std::to_string(static_cast<int>(t)));
  }
  return core::Status::ok_status();
}

// ---------------------------------------------------------------- MSE loss

// One block per core::kMseBlock elements: the threads form the squared differences in float64 (each a single
// rounded product, as the CPU's d·d), then thread 0 adds them in index order — the CPU's summation, step for
// step. The sequential add is the price of bit-identical loss values (about 4096 dependent adds per block).
static_assert(core::kMseBlock * sizeof(double) <= 48 * 1024, "the squares of one block fit in shared memory");

__global__ void mse_partial_kernel(const void* p, DataType tp, const void* t, DataType tt, int64_t count,
                                   int64_t blocks, double* partial) {
  __shared__ double squares[core::kMseBlock];
  for (int64_t blk = blockIdx.x; blk < blocks; blk += gridDim.x) {
    const int64_t begin = blk * core::kMseBlock;
    const int64_t n = count - begin < core::kMseBlock ? count - begin : core::kMseBlock;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double d =
          static_cast<double>(tm::load(p, begin + j, tp)) - static_cast<double>(tm::load(t, begin + j, tt));
      squares[j] = d * d;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += squares[j];
      partial[blk] = sum;
    }
    __syncthreads();  // the squares are overwritten by the next block of this CUDA block
  }
}

__global__ void mse_final_kernel(const double* partial, int64_t blocks, int64_t count, double weight, float* loss) {
  double total = 0.0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  *loss = static_cast<float>(weight * total / static_cast<double>(count));
}

__global__ void mse_gradient_kernel(const void* p, DataType tp, const void* t, DataType tt, void* g, DataType tg,
                                    int64_t count, float factor) {
  for (int64_t i = first_index(); i < count; i += grid_stride())
    tm::store(g, i, tg, (tm::load(p, i, tp) - tm::load(t, i, tt)) * factor);
}

// ---------------------------------------------------------------- optimizers

// The segments of one update by value (kernel parameter space): weights, then biases.
struct Segments {
  UpdateSegment s[kMaxUpdateSegments];
  int64_t end[kMaxUpdateSegments];  // running element counts: segment k covers [end[k-1], end[k])
  int count = 0;
  int64_t total = 0;
};

// The segment and element of flat index i.
__device__ __forceinline__ const UpdateSegment& locate(const Segments& sg, int64_t i, int64_t* j) {
  int k = 0;
  while (k + 1 < sg.count && i >= sg.end[k]) ++k;
  *j = i - (k == 0 ? 0 : sg.end[k - 1]);
  return sg.s[k];
}

template <tm::SgdKind kKind>
__global__ void sgd_kernel(Segments sg, core::OptimizerCommon c, float mu) {
  for (int64_t i = first_index(); i < sg.total; i += grid_stride()) {
    int64_t j;
    const UpdateSegment& s = locate(sg, i, &j);
    float* m = kKind == tm::SgdKind::plain ? nullptr : s.state[0] + j;
    s.result[j] = tm::sgd_element(c, mu, kKind, s.gradient[j], s.values[j], m);
  }
}

__global__ void rmsprop_kernel(Segments sg, core::OptimizerCommon c, core::RmsPropParams r) {
  for (int64_t i = first_index(); i < sg.total; i += grid_stride()) {
    int64_t j;
    const UpdateSegment& s = locate(sg, i, &j);
    s.result[j] = tm::rmsprop_element(c, r, s.gradient[j], s.values[j], s.state[0] + j);
  }
}

template <bool kAmsgrad>
__global__ void adam_kernel(Segments sg, core::OptimizerCommon c, core::AdamParams p, float step_size) {
  for (int64_t i = first_index(); i < sg.total; i += grid_stride()) {
    int64_t j;
    const UpdateSegment& s = locate(sg, i, &j);
    float* vmax = kAmsgrad ? s.state[2] + j : nullptr;
    s.result[j] = tm::adam_element(c, p, step_size, s.gradient[j], s.values[j], s.state[0] + j, s.state[1] + j, vmax);
  }
}

// Checks the segment list against the states the rule needs (`states` arrays in every non-empty segment)
// and packs the non-empty segments.
core::Status pack(const char* rule, const UpdateSegment* segments, int n, int states, Segments* out) {
  if (n < 0 || n > kMaxUpdateSegments)
    return core::fail(ErrorCode::invalid_argument, std::string(rule) + ": " + std::to_string(n) +
                                                       " segments; at most " + std::to_string(kMaxUpdateSegments));
  Segments sg;
  for (int k = 0; k < n; ++k) {
    const UpdateSegment& s = segments[k];
    if (s.count < 0)
      return core::fail(ErrorCode::invalid_argument, std::string(rule) + ": segment " + std::to_string(k) + " has " +
                                                         std::to_string(s.count) + " values");
    if (s.count == 0) continue;
    bool ok = s.gradient != nullptr && s.values != nullptr && s.result != nullptr;
    for (int q = 0; q < states; ++q) ok = ok && s.state[q] != nullptr;
    if (!ok)
      return core::fail(ErrorCode::invalid_argument, std::string(rule) + ": segment " + std::to_string(k) +
                                                         " lacks an array (gradient, values, result or a state)");
    sg.s[sg.count] = s;
    sg.total += s.count;
    sg.end[sg.count] = sg.total;
    ++sg.count;
  }
  *out = sg;
  return core::Status::ok_status();
}

}  // namespace

// ---------------------------------------------------------------- entry points

core::Status neuron_forward(int device, void* stream, const NeuronDescriptor& neuron, const void* x, DataType tx,
                            void* y, DataType ty, int64_t count) {
  if (!supported(tx)) return bad_type("NeuronKernel", "source", tx);
  if (!supported(ty)) return bad_type("NeuronKernel", "destination", ty);
  if (count <= 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(count);
  core::Status st = with_neuron_type(neuron.type, [&]<NeuronType kType>() {
    neuron_forward_kernel<kType><<<blocks, kThreads, 0, s>>>(x, tx, y, ty, count, neuron.a, neuron.b, neuron.c);
  });
  if (!st.ok()) return st;
  return check_launch("neuron forward kernel");
}

core::Status neuron_gradient(int device, void* stream, const NeuronDescriptor& neuron, const void* gy, DataType tgy,
                             const void* x, DataType tx, void* gx, DataType tgx, int64_t count) {
  if (!supported(tgy)) return bad_type("NeuronGradient", "source gradient", tgy);
  if (!supported(tx)) return bad_type("NeuronGradient", "source", tx);
  if (!supported(tgx)) return bad_type("NeuronGradient", "destination gradient", tgx);
  if (count <= 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(count);
  core::Status st = with_neuron_type(neuron.type, [&]<NeuronType kType>() {
    neuron_gradient_kernel<kType><<<blocks, kThreads, 0, s>>>(gy, tgy, x, tx, gx, tgx, count, neuron.a, neuron.b,
                                                              neuron.c);
  });
  if (!st.ok()) return st;
  return check_launch("neuron gradient kernel");
}

std::size_t mse_loss_workspace(int64_t count) {
  const int64_t blocks = count <= 0 ? 0 : (count + core::kMseBlock - 1) / core::kMseBlock;
  return static_cast<std::size_t>(blocks) * sizeof(double);
}

core::Status mse_loss(int device, void* stream, const void* p, DataType tp, const void* t, DataType tt, int64_t count,
                      double weight, float* loss, void* workspace) {
  if (!supported(tp)) return bad_type("MSELoss", "predictions", tp);
  if (!supported(tt)) return bad_type("MSELoss", "targets", tt);
  if (count <= 0)
    return core::fail(ErrorCode::invalid_argument,
                      "MSELoss: " + std::to_string(count) + " elements; at least 1 is needed");
  if (workspace == nullptr || loss == nullptr)
    return core::fail(ErrorCode::invalid_argument, "MSELoss: null loss or workspace pointer");
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const int64_t blocks = (count + core::kMseBlock - 1) / core::kMseBlock;
  const auto grid = static_cast<unsigned>(std::min<int64_t>(blocks, int64_t{1} << 20));
  auto* partial = static_cast<double*>(workspace);
  mse_partial_kernel<<<grid, kThreads, 0, s>>>(p, tp, t, tt, count, blocks, partial);
  if (core::Status st = check_launch("MSE loss partial sums"); !st.ok()) return st;
  mse_final_kernel<<<1, 1, 0, s>>>(partial, blocks, count, weight, loss);
  return check_launch("MSE loss total");
}

core::Status mse_loss_gradient(int device, void* stream, const void* p, DataType tp, const void* t, DataType tt,
                               void* g, DataType tg, int64_t count, float factor) {
  if (!supported(tp)) return bad_type("MSELoss", "predictions", tp);
  if (!supported(tt)) return bad_type("MSELoss", "targets", tt);
  if (!supported(tg)) return bad_type("MSELoss", "gradient", tg);
  if (count <= 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  mse_gradient_kernel<<<blocks_for(count), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p, tp, t, tt, g, tg, count,
                                                                                         factor);
  return check_launch("MSE loss gradient");
}

core::Status sgd_update(int device, void* stream, const core::OptimizerCommon& common, const core::SgdParams& sgd,
                        const UpdateSegment* segments, int segment_count) {
  // The momentum form is decided by the first segment (the API passes momentum for all segments or none).
  const bool momentum = segment_count > 0 && segments[0].state[0] != nullptr;
  Segments sg;
  if (core::Status st = pack("OptimizerSGD", segments, segment_count, momentum ? 1 : 0, &sg); !st.ok()) return st;
  if (sg.total == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(sg.total);
  if (!momentum) sgd_kernel<tm::SgdKind::plain><<<blocks, kThreads, 0, s>>>(sg, common, sgd.momentum_scale);
  else if (!sgd.nesterov) sgd_kernel<tm::SgdKind::momentum><<<blocks, kThreads, 0, s>>>(sg, common, sgd.momentum_scale);
  else sgd_kernel<tm::SgdKind::nesterov><<<blocks, kThreads, 0, s>>>(sg, common, sgd.momentum_scale);
  return check_launch("OptimizerSGD update");
}

core::Status rmsprop_update(int device, void* stream, const core::OptimizerCommon& common,
                            const core::RmsPropParams& rms, const UpdateSegment* segments, int segment_count) {
  Segments sg;
  if (core::Status st = pack("OptimizerRMSProp", segments, segment_count, 1, &sg); !st.ok()) return st;
  if (sg.total == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  rmsprop_kernel<<<blocks_for(sg.total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(sg, common, rms);
  return check_launch("OptimizerRMSProp update");
}

core::Status adam_update(int device, void* stream, const core::OptimizerCommon& common, const core::AdamParams& adam,
                         float step_size, const UpdateSegment* segments, int segment_count) {
  const bool amsgrad = segment_count > 0 && segments[0].state[2] != nullptr;
  Segments sg;
  if (core::Status st = pack("OptimizerAdam", segments, segment_count, amsgrad ? 3 : 2, &sg); !st.ok()) return st;
  if (sg.total == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(sg.total);
  if (amsgrad) adam_kernel<true><<<blocks, kThreads, 0, s>>>(sg, common, adam, step_size);
  else adam_kernel<false><<<blocks, kThreads, 0, s>>>(sg, common, adam, step_size);
  return check_launch("OptimizerAdam update");
}

core::Status copy_h2d_async(int device, void* stream, void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)),
               "cudaMemcpyAsync host to device");
}

}  // namespace tconv::cuda_backend::training
