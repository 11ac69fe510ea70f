// tconv — Convolution and ConvolutionGradient: the plain (downsampling) convolution and its gradient
// (MPSCNNConvolution, MPSCNNConvolutionGradient), provided for the auto-encoder pairing of spec a.5.5 B:
// a Convolution's training encode produces the ConvolutionGradientState that sizes the transpose.
//
// Forward arithmetic (MPSCNNConvolution):
//   Y[n'][y][x][dstOff + o] = neuron(bias[o] + Σ_{q,p,c} W[o][q][p][c]·X[n][offset.y + s·y' − h + r·q]
//                                                                     [offset.x + s·x' − h + r·p][srcOff + g·Ig + c])
// It is computed as the transpose engine's bwd_data direction with the roles and weights exchanged
// (core/direction.hpp); the gradient as the fwd (dX) and bwd_weights (dW) directions. db is a plain sum.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tconv/command_buffer.hpp"
#include "tconv/data_source.hpp"
#include "tconv/image.hpp"
#include "tconv/kernel.hpp"
#include "tconv/state.hpp"

namespace tconv {

namespace io {
class Encoder;
class Decoder;
}  // namespace io

class Convolution {
 public:
  Convolution() = default;
  Convolution(const Device& device, std::shared_ptr<ConvolutionDataSource> data_source);
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool same_object(const Convolution& o) const noexcept { return impl_ == o.impl_; }

  const Device& device() const;
  int64_t input_feature_channels() const;
  int64_t output_feature_channels() const;
  int64_t groups() const;
  const ConvolutionDescriptor& descriptor() const;
  std::shared_ptr<ConvolutionDataSource> data_source() const;
  // offset, clip_rect, channel offsets, padding, precision; kernel_offset_x/y must stay 0.
  KernelProperties& properties();
  const KernelProperties& properties() const;

  // Sizing by padding policy (forward filter rule); writes offset.
  ImageDescriptor destination_image_descriptor(const Image& source);
  Image encode(CommandBuffer& cb, const Image& source);
  void encode(CommandBuffer& cb, const Image& source, Image& destination);
  // Training form: returns Y and makes the state (records source size and offset).
  Image encode(CommandBuffer& cb, const Image& source, ConvolutionGradientState& destination_state,
               bool destination_state_is_temporary);
  ConvolutionGradientState result_state(const Image& source, const Image& destination);

  // ---- weights (as ConvolutionTranspose's, a.5.7) ----
  // Encodes a copy of the current (folded, possibly fp16-rounded) weights and biases into a new float32
  // state ([Nout][kH][kW][Nin/G], the convolution's own layout).
  ConvolutionWeightsAndBiasesState export_weights_and_biases(CommandBuffer& cb, bool result_state_can_be_temporary);
  // Encodes a copy from the state into the kernel's weights (fp16-rounded when storage is fp16; no batch-norm
  // fold). Encodes after this call use the new weights; null biases in the state keep the biases.
  void reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state);
  // load → copy → purge, now. Throws Error(invalid_argument) for a kernel without a data source.
  void reload_weights_and_biases_from_data_source();
  std::vector<float> current_weights() const;
  std::vector<float> current_biases() const;  // empty when the kernel has no biases

  // ---- coding, description, equality (as ConvolutionTranspose's) ----
  // Stores the label, descriptor, properties and the data source's weights/biases; `key_prefix` is prepended
  // verbatim to every key (several kernels in one file).
  void encode_to(io::Encoder& coder, const std::string& key_prefix = "") const;
  // The decoded kernel's data source is an ArrayDataSource holding the stored arrays.
  static Convolution decode(const io::Decoder& coder, const Device& device, const std::string& key_prefix = "");
  std::string description() const;
  // Same configuration (descriptor, properties, label, storage) and the same current weights and biases.
  bool equals(const Convolution& other) const;

  struct Impl;
  Impl& impl() const;

 private:
  explicit Convolution(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  friend struct KernelAccess;
  std::shared_ptr<Impl> impl_;
};

class ConvolutionGradient {
 public:
  ConvolutionGradient() = default;
  // Same validation as the transpose gradient (no sub-pixel, no depthwise, identity neuron, float types).
  ConvolutionGradient(const Device& device, std::shared_ptr<ConvolutionDataSource> data_source);
  explicit operator bool() const noexcept { return impl_ != nullptr; }

  const Device& device() const;
  GradientOption gradient_option() const;
  void set_gradient_option(GradientOption option);
  const ConvolutionDescriptor& descriptor() const;

  // Returns dX (the convolution's source size from the state; empty without the data bit); writes dW and
  // db into the state (first encode writes, later ones add: e4). The convolution's own offset recorded in
  // the state sets the geometry; gY must be the forward's destination size.
  Image encode(CommandBuffer& cb, const Image& source_gradient, const Image& source_image,
               const ConvolutionGradientState& gradient_state);
  void encode(CommandBuffer& cb, const Image& source_gradient, const Image& source_image,
              const ConvolutionGradientState& gradient_state, Image& destination_gradient);
  // GPU-side reload of the data gradient's weights from a float32 OHWI state (MPS reloadWeightsAndBiases(with:state:)).
  void reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state);
  void reload_weights_and_biases_from_data_source();

  struct Impl;
  Impl& impl() const;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tconv
