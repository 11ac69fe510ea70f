// tconv — the mean-squared-error loss kernel (MPSCNNLoss with lossType meanSquaredError and reductionType
// mean, translated to a forward value and a gradient image).
//
// For predictions p and targets t with the same shape (all images of the batch together, count = images ×
// height × width × channels elements) and the descriptor's weight ω:
//    loss     = ω · Σ_i (p_i − t_i)² / count
//    ∂loss/∂p = ω · 2·(p_i − t_i) / count
// The forward sum is taken in float64 over fixed blocks (independent of the thread count) and stored as one
// float32 value. The gradient is computed in float32 as (p − t)·(2ω/count), the factor rounded once, and stored
// in the gradient image's data type. Images are dense NHWC float32, float16 or bfloat16 (types may differ);
// the gradient may be the predictions image itself when both have the same data type.
#pragma once

#include <cstddef>

#include "tconv/buffer.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/device.hpp"
#include "tconv/image.hpp"

namespace tconv {

struct MSELossDescriptor {
  float weight = 1.0f;  // MPSCNNLossDescriptor.weight: scales the loss and its gradient
};

class MSELoss {
 public:
  // Throws Error(invalid_argument) for a non-finite weight.
  explicit MSELoss(const Device& device, const MSELossDescriptor& descriptor = {});
  const Device& device() const noexcept { return device_; }
  float weight() const noexcept { return desc_.weight; }

  // Writes the loss as one float32 at byte `offset` (a multiple of 4) of `loss` when the command runs.
  void encode_forward(CommandBuffer& command_buffer, const Image& predictions, const Image& targets, Buffer loss,
                      std::size_t offset = 0) const;
  // Writes ∂loss/∂p into `gradient` (same shape as the predictions).
  void encode_gradient(CommandBuffer& command_buffer, const Image& predictions, const Image& targets,
                       const Image& gradient) const;
  // Allocates the gradient like the predictions and returns it.
  Image encode_gradient(CommandBuffer& command_buffer, const Image& predictions, const Image& targets) const;

 private:
  Device device_;
  MSELossDescriptor desc_;
};

}  // namespace tconv
