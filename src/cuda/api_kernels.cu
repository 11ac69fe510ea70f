// Small kernels the object API runs around a canonical problem on a CUDA device (declared in
// cuda/backend.hpp), so that a command never stages an image or a gradient through host memory:
//   epilogue                     bias + fused neuron + MPS half-accumulator rounding after a forward that the
//                                algorithm ran without them (the plain Convolution; the transpose's f16 rounding);
//   conv_weights_from_transpose  the plain convolution's weight gradient back from the canonical layout;
//   bias_gradient                the plain convolution's bias gradient (Σ of its output gradient).
// All deterministic (no atomics, orders fixed by the extents), 64-bit indices, grid-stride loops.
#include <algorithm>
#include <cstdint>

#include "cuda/backend.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::cuda_backend {
namespace {

using cuda_direct::Act;
using cuda_direct::neuron_dev;

constexpr int kThreads = 256;

unsigned blocks_for(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<int64_t>(b, 1, int64_t{1} << 20));
}

template <DataType T>
__global__ void epilogue_kernel(typename Act<T>::type* data, int64_t sn, int64_t sh, int64_t sw, int64_t h, int64_t w,
                                int64_t c, int64_t total, const float* bias, NeuronType nt, float na, float nb,
                                float nc, bool round_f16) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % c;
    int64_t r = i / c;
    const int64_t x = r % w;
    r /= w;
    const int64_t y = r % h;
    const int64_t n = r / h;
    const int64_t at = n * sn + y * sh + x * sw + o;
    float v = Act<T>::load(data, at);
    if (bias != nullptr) v += bias[o];
    v = neuron_dev(nt, na, nb, nc, v);
    if constexpr (T == DataType::float32) {
      if (round_f16) v = __half2float(__float2half_rn(v));
    }
    Act<T>::store(data, at, v);
  }
}

__global__ void conv_weights_kernel(int64_t total, int64_t ic, int64_t oc, int64_t kh, int64_t kw, const float* wt,
                                    float* wc, bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    // i = ((o·kh + q)·kw + p)·Ic + ci  (the convolution's OHWI), as core/direction.cpp enumerates it.
    const int64_t ci = i % ic;
    int64_t r = i / ic;
    const int64_t p = r % kw;
    r /= kw;
    const int64_t q = r % kh;
    const int64_t o = r / kh;
    const int64_t g = o / oc, ol = o - g * oc;
    const int64_t t = (((g * ic + ci) * kh + (kh - 1 - q)) * kw + (kw - 1 - p)) * oc + ol;
    wc[i] = accumulate ? wc[i] + wt[t] : wt[t];
  }
}

// Bias gradient, pass 1: block (channel tile of 32, chunk s); thread row ty sums every 8th pixel of the chunk
// for its channel, then row 0 adds the 8 row sums in order. Pass 2: one thread per channel adds the chunks in
// order. Consecutive threads read consecutive channels (NHWC), so the loads are coalesced.
constexpr int kBiasRows = 8;
constexpr int64_t kBiasPixelsPerChunk = 4096;
constexpr int64_t kBiasMaxChunks = 1024;

int64_t bias_chunks(int64_t pixels) {
  return std::clamp<int64_t>((pixels + kBiasPixelsPerChunk - 1) / kBiasPixelsPerChunk, 1, kBiasMaxChunks);
}

template <DataType T>
__global__ void bias_partial_kernel(const typename Act<T>::type* data, int64_t sn, int64_t sh, int64_t sw, int64_t h,
                                    int64_t w, int64_t c, int64_t pixels, int64_t per_chunk, double* partial) {
  __shared__ double rows[kBiasRows][32];
  const int64_t o = blockIdx.x * int64_t{32} + threadIdx.x;
  const int64_t s = blockIdx.y;
  const int64_t begin = s * per_chunk, end = std::min(pixels, begin + per_chunk);
  double sum = 0.0;
  if (o < c) {
    for (int64_t px = begin + threadIdx.y; px < end; px += kBiasRows) {
      const int64_t x = px % w, y = (px / w) % h, n = px / (w * h);
      sum += static_cast<double>(Act<T>::load(data, n * sn + y * sh + x * sw + o));
    }
  }
  rows[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && o < c) {
    double t = 0.0;
    for (int r = 0; r < kBiasRows; ++r) t += rows[r][threadIdx.x];
    partial[s * c + o] = t;
  }
}

__global__ void bias_final_kernel(const double* partial, int64_t chunks, int64_t c, float* db, bool accumulate) {
  for (int64_t o = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; o < c; o += int64_t{gridDim.x} * blockDim.x) {
    double sum = 0.0;
    for (int64_t s = 0; s < chunks; ++s) sum += partial[s * c + o];
    const double acc = (accumulate ? static_cast<double>(db[o]) : 0.0) + sum;
    db[o] = static_cast<float>(acc);
  }
}

}  // namespace

core::Status epilogue(int device, void* stream, const core::TensorView& v, DataType t, int64_t n, int64_t h, int64_t w,
                      int64_t c, const float* bias, const NeuronDescriptor& neuron, bool round_f16) {
  const bool rounding = round_f16 && t == DataType::float32;
  if (bias == nullptr && neuron.type == NeuronType::none && !rounding) return core::Status::ok_status();
  const int64_t total = n * h * w * c;
  if (total == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(total);
  switch (t) {
    case DataType::float32:
      epilogue_kernel<DataType::float32><<<blocks, kThreads, 0, s>>>(static_cast<float*>(v.data), v.sn, v.sh, v.sw, h,
                                                                    w, c, total, bias, neuron.type, neuron.a, neuron.b,
                                                                    neuron.c, rounding);
      break;
    case DataType::float16:
      epilogue_kernel<DataType::float16><<<blocks, kThreads, 0, s>>>(static_cast<__half*>(v.data), v.sn, v.sh, v.sw, h,
                                                                    w, c, total, bias, neuron.type, neuron.a, neuron.b,
                                                                    neuron.c, false);
      break;
    case DataType::bfloat16:
      epilogue_kernel<DataType::bfloat16><<<blocks, kThreads, 0, s>>>(static_cast<__nv_bfloat16*>(v.data), v.sn, v.sh,
                                                                     v.sw, h, w, c, total, bias, neuron.type, neuron.a,
                                                                     neuron.b, neuron.c, false);
      break;
    default:
      return core::fail(ErrorCode::unsupported, std::string("epilogue: image type ") + std::string(to_string(t)) +
                                                    " is not float32, float16 or bfloat16");
  }
  return check_launch("epilogue");
}

core::Status conv_weights_from_transpose(int device, void* stream, int64_t c_in, int64_t c_out, int64_t groups,
                                         int64_t kh, int64_t kw, const float* wt, float* wc, bool accumulate) {
  const int64_t ic = c_in / groups, oc = c_out / groups;
  const int64_t total = c_out * kh * kw * ic;
  if (total == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  conv_weights_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(total, ic, oc, kh, kw, wt,
                                                                                            wc, accumulate);
  return check_launch("conv_weights_from_transpose");
}

std::size_t bias_gradient_workspace(int64_t n, int64_t h, int64_t w, int64_t c) {
  return static_cast<std::size_t>(bias_chunks(n * h * w) * c) * sizeof(double);
}

core::Status bias_gradient(int device, void* stream, const core::TensorView& v, DataType t, int64_t n, int64_t h,
                           int64_t w, int64_t c, float* db, bool accumulate, void* workspace) {
  if (c == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const auto s = static_cast<cudaStream_t>(stream);
  const int64_t pixels = n * h * w, chunks = bias_chunks(pixels);
  const int64_t per_chunk = (pixels + chunks - 1) / chunks;
  auto* partial = static_cast<double*>(workspace);
  const dim3 grid(static_cast<unsigned>((c + 31) / 32), static_cast<unsigned>(chunks)), block(32, kBiasRows);
  switch (t) {
    case DataType::float32:
      bias_partial_kernel<DataType::float32><<<grid, block, 0, s>>>(static_cast<const float*>(v.data), v.sn, v.sh,
                                                                   v.sw, h, w, c, pixels, per_chunk, partial);
      break;
    case DataType::float16:
      bias_partial_kernel<DataType::float16><<<grid, block, 0, s>>>(static_cast<const __half*>(v.data), v.sn, v.sh,
                                                                   v.sw, h, w, c, pixels, per_chunk, partial);
      break;
    case DataType::bfloat16:
      bias_partial_kernel<DataType::bfloat16><<<grid, block, 0, s>>>(static_cast<const __nv_bfloat16*>(v.data), v.sn,
                                                                    v.sh, v.sw, h, w, c, pixels, per_chunk, partial);
      break;
    default:
      return core::fail(ErrorCode::unsupported, std::string("bias_gradient: image type ") + std::string(to_string(t)) +
                                                    " is not float32, float16 or bfloat16");
  }
  if (auto st = check_launch("bias_gradient partial sums"); !st.ok()) return st;
  bias_final_kernel<<<blocks_for(c), kThreads, 0, s>>>(partial, chunks, c, db, accumulate);
  return check_launch("bias_gradient");
}

}  // namespace tconv::cuda_backend
