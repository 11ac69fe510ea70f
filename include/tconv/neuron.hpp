// tconv — neuron kernels (MPSCNNNeuron and MPSCNNNeuronGradient; spec a.2 for the neuron types, translated
// to whole-image element-wise kernels).
//
// NeuronKernel computes y = f(x) for every element of an image; NeuronGradient computes gX = gY · f'(x),
// where x is the forward kernel's *input* (MPS's "source image" of the gradient). The functions f and their
// derivatives are those of NeuronType (include/tconv/types.hpp), evaluated in float32 and stored in the
// destination's data type (round to nearest even). Images are dense NHWC float32, float16 or bfloat16; all
// images of one encode have the same shape (images × height × width × channels), their data types may
// differ. A destination may be the source itself (in place) when both have the same data type.
// Encodes check their arguments at once (tconv::Error naming the values) and run in command-buffer order.
#pragma once

#include "tconv/command_buffer.hpp"
#include "tconv/device.hpp"
#include "tconv/image.hpp"
#include "tconv/types.hpp"

namespace tconv {

class NeuronKernel {
 public:
  // Throws Error(invalid_argument) for an unknown neuron type.
  NeuronKernel(const Device& device, const NeuronDescriptor& neuron);
  const Device& device() const noexcept { return device_; }
  const NeuronDescriptor& neuron() const noexcept { return neuron_; }

  void encode(CommandBuffer& command_buffer, const Image& source, const Image& destination) const;
  // Allocates the destination like the source (same shape and data type) and returns it.
  Image encode(CommandBuffer& command_buffer, const Image& source) const;

 private:
  Device device_;
  NeuronDescriptor neuron_;
};

class NeuronGradient {
 public:
  NeuronGradient(const Device& device, const NeuronDescriptor& neuron);
  const Device& device() const noexcept { return device_; }
  const NeuronDescriptor& neuron() const noexcept { return neuron_; }

  // gX = gY · f'(x): source_gradient = gY, source_image = x (the forward's input).
  void encode(CommandBuffer& command_buffer, const Image& source_gradient, const Image& source_image,
              const Image& destination_gradient) const;
  // Allocates gX like gY and returns it.
  Image encode(CommandBuffer& command_buffer, const Image& source_gradient, const Image& source_image) const;

 private:
  Device device_;
  NeuronDescriptor neuron_;
};

}  // namespace tconv
