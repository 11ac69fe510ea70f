// The training companions' kernels on a CUDA device (training_kernels.cu), as the object API sees them: plain
// C++, no CUDA headers; in a build without CUDA every function reports device_unavailable (stub.cpp).
//
// They are the CUDA form of the CPU engine's element-wise training math — neurons and the MSE loss of
// core/pointwise.hpp, the optimizer rules of core/optimizer_math.hpp — with the same float32 operations in the
// same order (cuda/training_math.hpp), so results equal the CPU's bit for bit (optimizers, loss, arithmetic
// neurons) or within the CPU libm's error (neurons with exp/log/tanh/pow/erf; docs/cuda-backend.md).
//
// All launch on `stream` (a cudaStream_t) and return without synchronising; pointers are device pointers of
// `device`; arrays are dense; index math is 64-bit; no floating-point atomics.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/optimizer_math.hpp"
#include "core/status.hpp"
#include "tconv/types.hpp"

namespace tconv::cuda_backend::training {

// y[i] = f(x[i]) for i < count; x and y of type float32, float16 or bfloat16 (may differ); y may be x.
core::Status neuron_forward(int device, void* stream, const NeuronDescriptor& neuron, const void* x, DataType tx,
                            void* y, DataType ty, int64_t count);
// gx[i] = gy[i] · f'(x[i]); gx may be gy (same type).
core::Status neuron_gradient(int device, void* stream, const NeuronDescriptor& neuron, const void* gy, DataType tgy,
                             const void* x, DataType tx, void* gx, DataType tgx, int64_t count);

// *loss = float32(ω · Σ (p − t)² / count), the sum in float64 exactly as core::mse_loss orders it (blocks of
// core::kMseBlock elements each summed in index order, then the block sums in block order): bit-identical to
// the CPU. `workspace` holds mse_loss_workspace(count) bytes of device memory (one float64 per block).
std::size_t mse_loss_workspace(int64_t count);
core::Status mse_loss(int device, void* stream, const void* p, DataType tp, const void* t, DataType tt, int64_t count,
                      double weight, float* loss, void* workspace);
// g[i] = (p[i] − t[i]) · factor in float32 (factor = float32(2ω/count), rounded once by the caller, as
// core::mse_loss_gradient does); g may be p (same type).
core::Status mse_loss_gradient(int device, void* stream, const void* p, DataType tp, const void* t, DataType tt,
                               void* g, DataType tg, int64_t count, float factor);

// One array an optimizer updates (core::UpdateArrays plus its state arrays, all of `count` float32 values).
// result may be values (in place); state[k] is null where the rule has no k-th state.
struct UpdateSegment {
  const float* gradient = nullptr;
  const float* values = nullptr;
  float* result = nullptr;
  float* state[3] = {nullptr, nullptr, nullptr};
  int64_t count = 0;
};
// An update covers the weights and, optionally, the biases: one launch for both.
constexpr int kMaxUpdateSegments = 2;

// core::sgd_update on each segment; momentum = state[0] (null everywhere: the plain step).
core::Status sgd_update(int device, void* stream, const core::OptimizerCommon& common, const core::SgdParams& sgd,
                        const UpdateSegment* segments, int segment_count);
// core::rmsprop_update; sum of squares = state[0].
core::Status rmsprop_update(int device, void* stream, const core::OptimizerCommon& common,
                            const core::RmsPropParams& rms, const UpdateSegment* segments, int segment_count);
// core::adam_update with the step size of its time step; momentum, velocity, maximum velocity = state[0..2]
// (state[2] null everywhere: plain Adam, else AMSGrad).
core::Status adam_update(int device, void* stream, const core::OptimizerCommon& common, const core::AdamParams& adam,
                         float step_size, const UpdateSegment* segments, int segment_count);

// cudaMemcpyAsync host → device on `stream`: ordered with the stream's work, no device synchronisation. With
// pageable host memory the call returns once the source has been read (staged), so it may be reused at once.
core::Status copy_h2d_async(int device, void* stream, void* dst, const void* src, std::size_t bytes);

}  // namespace tconv::cuda_backend::training
