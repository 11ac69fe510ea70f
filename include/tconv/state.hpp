// tconv — states (MPSState and its convolution subclasses; spec a.8, e2, e4).
// States are reference types: a handle shares the state with its copies (so a batch "reuses one state"
// by holding the same handle several times; same_object() tells). A default-constructed handle is null
// (Objective-C nil); operator bool tests it.
//
// Temporary states (MPS's GPU-private objects with a readCount) are translated to shared ownership (e2):
// a "temporary" state is an ordinary state whose memory lives as long as any handle or any encoded command
// refers to it, so there is no readCount to decrement and reading it never fails. is_temporary() keeps the
// flag for callers that branch on it. Buffers are host memory on the CPU: synchronize() only orders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tconv/buffer.hpp"
#include "tconv/data_source.hpp"
#include "tconv/descriptor.hpp"
#include "tconv/kernel.hpp"

namespace tconv {

class CommandBuffer;
class Convolution;
class ConvolutionTranspose;

// MPSState: a container of buffers.
class State {
 public:
  State() = default;
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  bool same_object(const State& other) const noexcept { return impl_ == other.impl_; }
  bool is_temporary() const;
  // Always 0: read counts are replaced by shared ownership (e2, see the file comment).
  int64_t read_count() const noexcept { return 0; }
  std::string label() const;
  void set_label(std::string label);
  // resourceCount / resource(at:) / bufferSize(at:) / resourceSize(). Errors name the index.
  int64_t resource_count() const;
  Buffer resource(int64_t index) const;
  std::size_t buffer_size(int64_t index) const;
  std::size_t resource_size() const;  // bytes of all resources
  // synchronize(on:): makes the buffers' contents visible to the host once `command_buffer` completed.
  // Host memory is always coherent on the CPU, so this encodes an empty, ordered command.
  void synchronize(CommandBuffer& command_buffer) const;

  struct Impl;
  Impl& impl() const;  // throws Error(invalid_argument) on a null handle

 protected:
  friend struct StateAccess;
  explicit State(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// MPSCNNConvolutionWeightsAndBiasesState: float32 OHWI weights and optional float32 biases, at byte
// offsets inside (possibly larger) buffers.
class ConvolutionWeightsAndBiasesState : public State {
 public:
  ConvolutionWeightsAndBiasesState() = default;
  // init(weights:biases:): buffers of exact size (weights: a multiple of 4 bytes; biases may be null).
  ConvolutionWeightsAndBiasesState(Buffer weights, Buffer biases);
  // init(device:cnnConvolutionDescriptor:): zero-filled buffers sized from the descriptor.
  ConvolutionWeightsAndBiasesState(const Device& device, const ConvolutionDescriptor& descriptor);
  // init(weights:weightsOffset:biases:biasesOffset:cnnConvolutionDescriptor:): sub-ranges. Offsets must be
  // multiples of 4 and offset + Nout·kH·kW·(Nin/G)·4 ≤ weights.length (Nout·4 for the biases).
  ConvolutionWeightsAndBiasesState(Buffer weights, std::size_t weights_offset, Buffer biases,
                                   std::size_t biases_offset, const ConvolutionDescriptor& descriptor);
  // temporaryCNNConvolutionWeightsAndBiasesState(commandBuffer:cnnConvolutionDescriptor:).
  static ConvolutionWeightsAndBiasesState temporary(const CommandBuffer& command_buffer,
                                                    const ConvolutionDescriptor& descriptor);

  const Buffer& weights() const;
  const Buffer& biases() const;  // null buffer when there are no biases
  std::size_t weights_offset() const;
  std::size_t biases_offset() const;
  int64_t weight_count() const;  // float32 values from weights_offset
  int64_t bias_count() const;    // 0 without biases
  // Host pointers at the offsets (nullptr for device-only memory or no biases).
  float* weight_data() const;
  float* bias_data() const;
};

// MPSCNNConvolutionGradientState: gradient buffers (float32, OHWI and Nout) plus the forward's record.
class ConvolutionGradientState : public State {
 public:
  ConvolutionGradientState() = default;

  const Buffer& gradient_for_weights() const;  // Nout·kH·kW·(Nin/G) float32, OHWI
  const Buffer& gradient_for_biases() const;   // Nout float32
  WeightsLayout gradient_for_weights_layout() const { return WeightsLayout::ohwi; }
  // MPSImageSizeEncodingState: size of the source image given to the forward that made this state.
  int64_t source_width() const;
  int64_t source_height() const;
  // The forward's properties at encode time.
  const ForwardRecord& forward() const;
  // The weights shape these gradients belong to (Nout, kH, kW, Nin/G of the producing kernel's descriptor).
  ConvolutionDescriptor descriptor() const;
  // The convolution that produced this state. For a transpose state: the convolution of the paired
  // convolution gradient state; Error(invalid_argument) when there is none (c.15).
  Convolution convolution() const;
  // e4: false until the first gradient encode wrote the buffers; later encodes add to them.
  bool gradients_initialised() const;

 protected:
  using State::State;
  friend struct StateAccess;
};

// MPSCNNConvolutionTransposeGradientState: made by ConvolutionTranspose, consumed by its gradient.
class ConvolutionTransposeGradientState : public ConvolutionGradientState {
 public:
  ConvolutionTransposeGradientState() = default;
  ConvolutionTranspose convolution_transpose() const;
  // The paired convolution gradient state given to the forward encode (null handle if none).
  ConvolutionGradientState paired_convolution_state() const;

 protected:
  using ConvolutionGradientState::ConvolutionGradientState;
  friend struct StateAccess;
};

using ConvolutionGradientStateBatch = std::vector<ConvolutionGradientState>;
using ConvolutionTransposeGradientStateBatch = std::vector<ConvolutionTransposeGradientState>;

}  // namespace tconv
