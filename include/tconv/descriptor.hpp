// tconv — ConvolutionDescriptor (MPSCNNConvolutionDescriptor and its sub-pixel / depthwise subclasses;
// spec a.2, e6, e12).
// A plain value: copying copies every field (NSCopying). Kernel sizes are required at construction (e6:
// no default window). validate() checks the geometry and names the offending values; kernels call it.
// The inference batch-norm fold (a.2) is kept as parameters and applied by fold_batch_norm(); gradient
// kernels ignore it (a.7.3: they use the raw weights).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tconv/types.hpp"

namespace tconv {

namespace io {
class Encoder;
class Decoder;
}  // namespace io

// setBatchNormalizationParametersForInference: per output channel; an empty vector means the default
// (mean 0, variance 1, gamma 1, beta 0).
struct BatchNormParameters {
  std::vector<float> mean, variance, gamma, beta;
  float epsilon = 0.0f;
  friend bool operator==(const BatchNormParameters&, const BatchNormParameters&) = default;
};

class ConvolutionDescriptor {
 public:
  // initWithKernelWidth:kernelHeight:inputFeatureChannels:outputFeatureChannels:
  ConvolutionDescriptor(int64_t kernel_width, int64_t kernel_height, int64_t input_feature_channels,
                        int64_t output_feature_channels);

  int64_t kernel_width = 1, kernel_height = 1;
  int64_t input_feature_channels = 1, output_feature_channels = 1;
  int64_t stride_x = 1, stride_y = 1;        // strideInPixelsX/Y (transpose: upsampling factor)
  int64_t dilation_x = 1, dilation_y = 1;    // dilationRateX/Y
  int64_t groups = 1;                        // need only divide both channel counts (e12)
  NeuronDescriptor fused_neuron{};           // fusedNeuronDescriptor: applied after bias (forward only)
  // MPSCNNSubPixelConvolutionDescriptor.subPixelScaleFactor; must be 1 for every kernel tconv has
  // (the forward pixel shuffle is not implemented; gradients reject it as MPS does).
  int64_t sub_pixel_scale_factor = 1;
  // MPSCNNDepthWiseConvolutionDescriptor: weights [Nout][kH][kW] (== OHWI with Nin/G = 1), groups are taken
  // as Nin; channel_multiplier() = Nout / Nin. Rejected by the gradient kernels (a.7.1).
  bool depthwise = false;
  std::optional<BatchNormParameters> batch_norm;  // set by set_batch_normalization_parameters_for_inference

  // Inference batch-norm fold: I = gamma/sqrt(var + eps), J = beta − I·mean; W' = W·I[o], b' = b·I[o] + J[o].
  // Each vector is empty (default) or has output_feature_channels values; checked by validate().
  void set_batch_normalization_parameters_for_inference(std::vector<float> mean, std::vector<float> variance,
                                                        std::vector<float> gamma, std::vector<float> beta,
                                                        float epsilon);
  // Applies the fold in place to OHWI float32 weights (Nout·kH·kW·Nin/G) and Nout biases (biases may be
  // null only if there is no fold). No-op without batch-norm parameters.
  void fold_batch_norm(float* weights, float* biases) const;

  // Deprecated neuron API (setNeuronType:parameterA:parameterB:, neuronType, neuronParameterA/B): aliases
  // of fused_neuron. setNeuronToPReLU (per-channel parameters) has no tconv neuron: throws unsupported.
  void set_neuron_type(NeuronType type, float a = 0.0f, float b = 0.0f);
  NeuronType neuron_type() const { return fused_neuron.type; }
  float neuron_parameter_a() const { return fused_neuron.a; }
  float neuron_parameter_b() const { return fused_neuron.b; }
  void set_neuron_to_prelu(const std::vector<float>& parameters_a);

  int64_t effective_groups() const { return depthwise ? input_feature_channels : groups; }
  int64_t channel_multiplier() const {
    return input_feature_channels > 0 ? output_feature_channels / input_feature_channels : 0;
  }
  // Elements of the OHWI weight array: Nout·kH·kW·(Nin/G).
  int64_t weight_elements() const;

  // Empty when valid; otherwise the reason, naming the values.
  std::optional<std::string> check() const;
  // Throws Error(invalid_argument) with check()'s reason.
  void validate() const;

  // Coder (NSSecureCoding): every field under "<prefix>.<field>".
  void encode_to(io::Encoder& coder, const std::string& prefix = "descriptor") const;
  static ConvolutionDescriptor decode(const io::Decoder& coder, const std::string& prefix = "descriptor");

  std::string describe() const;  // one line: "3x3 conv 8->16, stride 2x2, dilation 1x1, groups 1, ..."

  friend bool operator==(const ConvolutionDescriptor&, const ConvolutionDescriptor&) = default;
};

}  // namespace tconv
