// Element-wise training math on arrays: neuron forward and gradient, and the mean-squared-error loss.
//
// Arrays are dense and typed (float32, float16 or bfloat16, core/dtype.hpp); every element is loaded as
// float32, computed in float32 with the shared neuron definitions of core/neuron.hpp, and stored back
// rounded to nearest even. The object API (include/tconv/neuron.hpp, loss.hpp) calls these on images.
//
// MSE loss over `count` elements (all images of a batch together), with a scalar weight ω:
//    loss     = ω · Σ_i (p_i − t_i)² / count
//    ∂loss/∂p = ω · 2·(p_i − t_i) / count
// The forward sum is taken in float64 over fixed blocks of kMseBlock elements (each block summed in index
// order, then the block sums added in block order), so the value does not depend on the thread count.
#pragma once

#include <cstdint>

#include "tconv/types.hpp"

namespace tconv::core {

// A typed view of a dense array.
struct ConstArray {
  const void* data = nullptr;
  DataType type = DataType::float32;
};
struct MutArray {
  void* data = nullptr;
  DataType type = DataType::float32;
};

// y_i = f(x_i). x and y may be the same memory when they have the same type.
void neuron_forward(const NeuronDescriptor& neuron, ConstArray x, MutArray y, int64_t count, int threads);

// gX_i = gY_i · f'(x_i), x = the neuron's forward input. gX may be the same memory as gY (same type).
void neuron_gradient(const NeuronDescriptor& neuron, ConstArray gy, ConstArray x, MutArray gx, int64_t count,
                     int threads);

constexpr int64_t kMseBlock = 4096;

// ω · Σ (p − t)² / count, in float64 (formula above). count must be ≥ 1.
double mse_loss(ConstArray predictions, ConstArray targets, int64_t count, double weight, int threads);

// g_i = ω · 2·(p_i − t_i) / count, computed in float32 as (p − t) · (2ω/count) with the factor rounded once.
void mse_loss_gradient(ConstArray predictions, ConstArray targets, MutArray gradient, int64_t count, double weight,
                       int threads);

}  // namespace tconv::core
