// tconv — ConvolutionTransposeGradient: gX, gW and gB of a transposed convolution
// (MPSCNNConvolutionTransposeGradient, spec a.6–a.7, e3–e5, e9, e10).
// A reference type like ConvolutionTranspose. Built from the *same* data source as the forward kernel; it
// keeps its own copy of the raw (never batch-norm folded) weights. Primary source = gY, secondary = X.
//
// Image-returning encodes configure the kernel from the state first (a.7.4: primary offset = par − T,
// kernel offset = T − h, secondary offset = 0, size = the forward's source); explicit-destination encodes
// use the properties exactly as set (a.7.5). Weight and bias gradients go to the state's buffers; the first
// encode into a fresh state writes them, later encodes add (e4). gradient_option selects the outputs (e5).
#pragma once

#include <memory>
#include <string>

#include "tconv/command_buffer.hpp"
#include "tconv/convolution_transpose.hpp"
#include "tconv/data_source.hpp"
#include "tconv/image.hpp"
#include "tconv/kernel.hpp"
#include "tconv/state.hpp"

namespace tconv {

class ConvolutionTransposeGradient {
 public:
  ConvolutionTransposeGradient() = default;  // null handle (MPS's init(device:) is unavailable)
  // init(device:weights:). Throws Error(invalid_argument) for: invalid descriptor, sub_pixel_scale_factor
  // != 1, depthwise, a non-identity fused neuron (e10), data_type() not float32/float16 (uint8: e8),
  // load() == false.
  ConvolutionTransposeGradient(const Device& device, std::shared_ptr<ConvolutionDataSource> data_source);
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool same_object(const ConvolutionTransposeGradient& o) const noexcept { return impl_ == o.impl_; }

  const Device& device() const;
  std::string label() const;
  void set_label(std::string label);

  // Null after decode until the first encode adopts the forward kernel's data source (a.10).
  std::shared_ptr<ConvolutionDataSource> data_source() const;
  GradientOption gradient_option() const;
  void set_gradient_option(GradientOption option);
  int64_t groups() const;
  int64_t source_gradient_feature_channels() const;  // Nout (channels of gY)
  int64_t source_image_feature_channels() const;     // Nin (channels of X and gX)
  int64_t kernel_width() const;   // primary and secondary kernel width
  int64_t kernel_height() const;
  int64_t primary_kernel_width() const { return kernel_width(); }
  int64_t primary_kernel_height() const { return kernel_height(); }
  int64_t secondary_kernel_width() const { return kernel_width(); }
  int64_t secondary_kernel_height() const { return kernel_height(); }
  int64_t primary_dilation_rate_x() const;
  int64_t primary_dilation_rate_y() const;
  int64_t secondary_dilation_rate_x() const { return primary_dilation_rate_x(); }
  int64_t secondary_dilation_rate_y() const { return primary_dilation_rate_y(); }
  bool is_backwards() const { return false; }
  bool is_state_modified() const { return true; }  // writes the gradient buffers of its state
  bool is_result_state_reused_across_batch() const { return false; }
  bool append_batch_barrier() const { return false; }
  const ConvolutionDescriptor& descriptor() const;

  BinaryKernelProperties& properties();
  const BinaryKernelProperties& properties() const;

  // destinationImageDescriptor(sourceImages:sourceStates:) — sources = {gY, X}, states[0] the transpose
  // gradient state: writes primary/secondary offsets and kernel offsets (a.7.4) and returns gX's size.
  ImageDescriptor destination_image_descriptor(const ImageBatch& sources,
                                               const ConvolutionTransposeGradientStateBatch& states);

  // ---- the four gradient encodes (a.6.3) ----
  // Auto-configures, allocates and returns gX (an empty Image when gradient_option has no data bit, e5).
  Image encode(CommandBuffer& cb, const Image& source_gradient, const Image& source_image,
               const ConvolutionTransposeGradientState& gradient_state);
  // Explicit destination, no configuration.
  void encode(CommandBuffer& cb, const Image& source_gradient, const Image& source_image,
              const ConvolutionTransposeGradientState& gradient_state, Image& destination_gradient);
  ImageBatch encode_batch(CommandBuffer& cb, const ImageBatch& source_gradients, const ImageBatch& source_images,
                          const ConvolutionTransposeGradientStateBatch& gradient_states);
  void encode_batch(CommandBuffer& cb, const ImageBatch& source_gradients, const ImageBatch& source_images,
                    const ConvolutionTransposeGradientStateBatch& gradient_states,
                    ImageBatch& destination_gradients);

  // ---- weights (a.7.7) ----
  void reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state);
  void reload_weights_and_biases_from_data_source();
  std::vector<float> current_weights() const;  // empty while a decoded kernel has not adopted weights

  // ---- copy, coding, description ----
  ConvolutionTransposeGradient copy_to(const Device& device) const;  // deep copy (e11)
  ConvolutionTransposeGradient copy() const { return copy_to(device()); }
  // Stores properties, descriptor, gradient option; no weights and no data source (a.10). `key_prefix` is
  // prepended verbatim to every key (several kernels in one file); empty keeps the historical names.
  void encode_to(io::Encoder& coder, const std::string& key_prefix = "") const;
  static ConvolutionTransposeGradient decode(const io::Decoder& coder, const Device& device,
                                             const std::string& key_prefix = "");
  std::string description() const;
  bool equals(const ConvolutionTransposeGradient& other) const;  // configuration and current weights

  struct Impl;
  Impl& impl() const;

 private:
  explicit ConvolutionTransposeGradient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace tconv
