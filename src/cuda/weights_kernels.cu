// Weight-store copies for the object API's device-side reloads and exports (cuda/weights_backend.hpp): one
// grid-stride kernel that rounds each weight to the kernel's storage type, moves it to its place in the
// target layout and copies the biases after it — so a reload from a device-resident weights state is one launch
// on the queue's stream instead of a device → host → device round trip that waits for the GPU.
// Deterministic (each output written once by one thread), 64-bit indices, no floating-point arithmetic besides
// the rounding (bit-level, shared with the training kernels: cuda/training_math.hpp).
#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda/cuda_util.hpp"
#include "cuda/training_math.hpp"
#include "cuda/weights_backend.hpp"

namespace tconv::cuda_backend::weights {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::clamp<int64_t>(b, 1, int64_t{1} << 16));
}

__device__ __forceinline__ float round_storage(float v, DataType storage) {
  if (storage == DataType::float16) return train_math::f16_to_f32(train_math::f32_to_f16(v));
  if (storage == DataType::bfloat16) return train_math::bf16_to_f32(train_math::f32_to_bf16(v));
  return v;
}

// The canonical (transposed-convolution) flat index of the convolution's flat index i, as core/direction.cpp's
// for_each_weight_pair enumerates the pairs: i = ((o·kh + q)·kw + p)·ic + ci.
__device__ __forceinline__ int64_t canonical_index(int64_t i, int64_t ic, int64_t oc, int64_t kh, int64_t kw) {
  const int64_t ci = i % ic;
  int64_t r = i / ic;
  const int64_t p = r % kw;
  r /= kw;
  const int64_t q = r % kh;
  const int64_t o = r / kh;
  const int64_t g = o / oc, ol = o - g * oc;
  return (((g * ic + ci) * kh + (kh - 1 - q)) * kw + (kw - 1 - p)) * oc + ol;
}

__global__ void copy_weights_kernel(const float* __restrict__ src_w, float* __restrict__ dst_w, int64_t count,
                                    DataType storage, Reorder reorder, int64_t ic, int64_t oc, int64_t kh, int64_t kw,
                                    const float* __restrict__ src_b, float* __restrict__ dst_b, int64_t bias_count) {
  const int64_t total = count + (src_b != nullptr ? bias_count : 0);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    if (i >= count) {
      dst_b[i - count] = src_b[i - count];
      continue;
    }
    switch (reorder) {
      case Reorder::none: dst_w[i] = round_storage(src_w[i], storage); break;
      case Reorder::conv_to_transpose: dst_w[canonical_index(i, ic, oc, kh, kw)] = round_storage(src_w[i], storage); break;
      case Reorder::transpose_to_conv: dst_w[i] = round_storage(src_w[canonical_index(i, ic, oc, kh, kw)], storage); break;
    }
  }
}

// Sleeps on the global nanosecond timer until `ns` have passed (a test's stand-in for long GPU work).
__global__ void spin_kernel(int64_t ns) {
  uint64_t start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(10000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (static_cast<int64_t>(now - start) < ns);
}

}  // namespace

core::Status copy_weights(int device, void* stream, const float* src_w, float* dst_w, int64_t count, DataType storage,
                          Reorder reorder, const ConvShape& shape, const float* src_b, float* dst_b,
                          int64_t bias_count) {
  if (count < 0 || bias_count < 0)
    return core::fail(ErrorCode::invalid_argument, "copy_weights: negative count " + std::to_string(count) + " / " +
                                                       std::to_string(bias_count));
  if (storage != DataType::float32 && storage != DataType::float16 && storage != DataType::bfloat16)
    return core::fail(ErrorCode::unsupported, std::string("copy_weights: storage type ") +
                                                  std::string(to_string(storage)) + " is not float32/float16/bfloat16");
  int64_t ic = 1, oc = 1;
  if (reorder != Reorder::none) {
    if (shape.groups <= 0 || shape.c_in % shape.groups != 0 || shape.c_out % shape.groups != 0 || shape.kh <= 0 ||
        shape.kw <= 0 || shape.c_out * shape.kh * shape.kw * (shape.c_in / shape.groups) != count)
      return core::fail(ErrorCode::invalid_argument,
                        "copy_weights: convolution shape c_in " + std::to_string(shape.c_in) + " c_out " +
                            std::to_string(shape.c_out) + " groups " + std::to_string(shape.groups) + " kernel " +
                            std::to_string(shape.kh) + "x" + std::to_string(shape.kw) + " does not hold " +
                            std::to_string(count) + " weights");
    ic = shape.c_in / shape.groups;
    oc = shape.c_out / shape.groups;
  }
  const int64_t total = count + (src_b != nullptr ? bias_count : 0);
  if (total == 0) return core::Status::ok_status();
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  copy_weights_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      src_w, dst_w, count, storage, reorder, ic, oc, shape.kh, shape.kw, src_b, dst_b, bias_count);
  return check_launch("copy_weights");
}

core::Status stream_idle(int device, void* stream, bool* idle) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  const cudaError_t e = cudaStreamQuery(static_cast<cudaStream_t>(stream));
  if (e == cudaErrorNotReady) {
    cudaGetLastError();  // "not ready" is an answer, not an error: keep it out of the last-error slot
    *idle = false;
    return core::Status::ok_status();
  }
  *idle = true;
  return check(e, "cudaStreamQuery");
}

core::Status spin(int device, void* stream, int64_t microseconds) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  spin_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(microseconds * 1000);
  return check_launch("spin");
}

}  // namespace tconv::cuda_backend::weights
