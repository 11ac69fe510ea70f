// tconv — ConvolutionTranspose: the forward transposed convolution (MPSCNNConvolutionTranspose, spec a.5).
// A reference type: copies of the handle share one kernel (properties, weights). copy_to() makes an
// independent deep copy (e11). Weights are copied from the data source at construction (load → weights →
// purge) into the kernel's own float32 OHWI buffer on its device, batch-norm folded (a.2), and rounded
// to fp16 when the data source's kernel_weights_data_type() is float16 (e7).
//
// Every encode reduces the MPS geometry to one canonical problem (src/core/mps_geometry.hpp) and runs the
// registry's choice for the device when the command buffer runs; validation happens at encode time and
// throws tconv::Error naming the values.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tconv/command_buffer.hpp"
#include "tconv/data_source.hpp"
#include "tconv/descriptor.hpp"
#include "tconv/image.hpp"
#include "tconv/kernel.hpp"
#include "tconv/state.hpp"

namespace tconv {

namespace io {
class Encoder;
class Decoder;
}  // namespace io

class ConvolutionTranspose {
 public:
  ConvolutionTranspose() = default;  // null handle
  // init(device:weights:). Throws Error(invalid_argument) for an invalid descriptor, load() == false, a
  // weights_layout() other than OHWI, or kernel_weights_data_type() == float32 with non-float32 data.
  ConvolutionTranspose(const Device& device, std::shared_ptr<ConvolutionDataSource> data_source);
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool same_object(const ConvolutionTranspose& o) const noexcept { return impl_ == o.impl_; }

  // ---- identity (MPSKernel) ----
  const Device& device() const;
  std::string label() const;
  void set_label(std::string label);

  // ---- read-only geometry ----
  int64_t input_feature_channels() const;   // Nin = channels of X
  int64_t output_feature_channels() const;  // Nout = channels of Y
  int64_t groups() const;
  int64_t kernel_width() const;
  int64_t kernel_height() const;
  int64_t stride_x() const;
  int64_t stride_y() const;
  int64_t dilation_x() const;
  int64_t dilation_y() const;
  bool is_backwards() const { return true; }
  bool is_state_modified() const { return false; }
  bool is_result_state_reused_across_batch() const { return true; }
  bool append_batch_barrier() const { return false; }
  const ConvolutionDescriptor& descriptor() const;
  std::shared_ptr<ConvolutionDataSource> data_source() const;

  // ---- read-write properties (offset, clipRect, channel offsets, edge mode, padding, kernel offsets,
  // accumulator precision, tconv precision/algorithm) ----
  KernelProperties& properties();
  const KernelProperties& properties() const;

  // ---- sizing ----
  // destinationImageDescriptor(sourceImages:sourceStates:): sizes the result and writes offset and
  // kernel offsets: by the paired conv state when states[0] is non-null (a.5.5 B), else by padding (A).
  ImageDescriptor destination_image_descriptor(const ImageBatch& sources,
                                               const ConvolutionGradientStateBatch& states = {});

  // ---- encodes (a.5.6) ----
  // Sized by padding policy; returns a new image of the source's data type.
  Image encode(CommandBuffer& cb, const Image& source);
  // Explicit destination: current offset/kernel offsets/clip rect, no sizing.
  void encode(CommandBuffer& cb, const Image& source, Image& destination);
  // Sized by the conv state (B) when non-null, else (A).
  Image encode(CommandBuffer& cb, const Image& source, const ConvolutionGradientState& conv_state);
  void encode(CommandBuffer& cb, const Image& source, const ConvolutionGradientState& conv_state,
              Image& destination);
  ImageBatch encode_batch(CommandBuffer& cb, const ImageBatch& sources,
                          const ConvolutionGradientStateBatch& conv_states);
  void encode_batch(CommandBuffer& cb, const ImageBatch& sources, const ConvolutionGradientStateBatch& conv_states,
                    ImageBatch& destinations);
  // Training forms: also make the state the gradient kernel needs (after sizing, so it records the final
  // properties). The batch form makes one state shared by every image.
  Image encode(CommandBuffer& cb, const Image& source, const ConvolutionGradientState& conv_state,
               ConvolutionTransposeGradientState& destination_state, bool destination_state_is_temporary);
  ImageBatch encode_batch(CommandBuffer& cb, const ImageBatch& sources,
                          const ConvolutionGradientStateBatch& conv_states,
                          ConvolutionTransposeGradientStateBatch& destination_states,
                          bool destination_state_is_temporary);
  // Low level: a state from result_state(); explicit destination; current properties.
  void encode_to_state(CommandBuffer& cb, const Image& source,
                       const ConvolutionTransposeGradientState& destination_state, Image& destination);
  // The inherited form without a conv-state argument is not supported on the transpose (a.5.6): always
  // throws Error(unsupported).
  Image encode(CommandBuffer& cb, const Image& source, ConvolutionTransposeGradientState& destination_state,
               bool destination_state_is_temporary);

  // ---- state factories (record the current properties: call after sizing) ----
  ConvolutionTransposeGradientState result_state(const Image& source, const ConvolutionGradientStateBatch& source_states,
                                                 const Image& destination);
  ConvolutionTransposeGradientStateBatch result_state_batch(const ImageBatch& sources,
                                                            const ConvolutionGradientStateBatch& source_states,
                                                            const ImageBatch& destinations);
  ConvolutionTransposeGradientState temporary_result_state(CommandBuffer& cb, const Image& source,
                                                           const ConvolutionGradientStateBatch& source_states,
                                                           const Image& destination);
  ConvolutionTransposeGradientStateBatch temporary_result_state_batch(CommandBuffer& cb, const ImageBatch& sources,
                                                                      const ConvolutionGradientStateBatch& source_states,
                                                                      const ImageBatch& destinations);

  // ---- weights (a.5.7) ----
  // Encodes a copy of the current (folded, possibly fp16-rounded) weights and biases into a new float32
  // state; `result_state_can_be_temporary` only sets the state's temporary flag.
  ConvolutionWeightsAndBiasesState export_weights_and_biases(CommandBuffer& cb, bool result_state_can_be_temporary);
  // Encodes a copy from the state (float32 OHWI at its offsets) into the kernel's weights, with the fp16
  // rounding when storage is fp16. The batch-norm fold is not applied to state weights (they are taken to be
  // the weights to use, as MPS does). Null biases in the state leave the biases as they are.
  void reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state);
  // load → copy → purge, now (work already encoded keeps the weights it was encoded with).
  void reload_weights_and_biases_from_data_source();
  // Deprecated in MPS; the argument is ignored (same as reload_weights_and_biases_from_data_source()).
  void reload_weights_and_biases_with_data_source(const std::shared_ptr<ConvolutionDataSource>& ignored);
  // tconv helpers: the kernel's current weights and biases (float32), read on the host now.
  std::vector<float> current_weights() const;
  std::vector<float> current_biases() const;

  // ---- copy, coding, description ----
  // copy(with:device:): a deep copy on `device` with its own weights (e11); the data source is copied
  // with copy_to(device).
  ConvolutionTranspose copy_to(const Device& device) const;
  ConvolutionTranspose copy() const { return copy_to(device()); }
  // Stores the properties, the descriptor and the data source's weights/biases (safetensors tensors
  // "weights" [Nout][kH][kW][Nin/G] and "biases" [Nout]). `key_prefix` is prepended verbatim to every key
  // ("dec1." stores "dec1.weights", "dec1.kernel.class", ...), so several kernels can share one file;
  // the default (empty) writes and reads the historical key names.
  void encode_to(io::Encoder& coder, const std::string& key_prefix = "") const;
  // init(coder:device:): the decoded kernel's data source is an ArrayDataSource holding the stored arrays.
  // `key_prefix` must be the one given to encode_to.
  static ConvolutionTranspose decode(const io::Decoder& coder, const Device& device, const std::string& key_prefix = "");
  std::string description() const;
  // Same configuration (descriptor, properties, label) and the same current weights and biases.
  bool equals(const ConvolutionTranspose& other) const;

  struct Impl;
  Impl& impl() const;  // throws Error(invalid_argument) on a null handle

 private:
  explicit ConvolutionTranspose(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  friend struct KernelAccess;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tconv
