// tconv — optimizers (MPSNNOptimizerDescriptor, MPSNNOptimizer, MPSNNOptimizerStochasticGradientDescent,
// MPSNNOptimizerRMSProp, MPSNNOptimizerAdam; spec a.9, c.17, c.18). Formulas: docs/optimizers.md.
//
// Every encode validates its arguments at once (throwing tconv::Error(invalid_argument) with a message that
// names the values) and appends one command to the CommandBuffer; the update itself runs when the command
// buffer reaches it, so it sees the gradients written by the commands encoded before it. All arrays are
// float32. Results may be written in place (result == values, as MPS allows).
//
// Convolution-state forms: the gradient comes from a ConvolutionGradientState (or its transpose subclass),
// the current values from a ConvolutionWeightsAndBiasesState `source`, and the new values go to `result`
// (which may be `source`). Optimizer state vectors come as lists: index 0 belongs to the weights, index 1 to
// the biases; a list with one entry updates the weights only (the result's biases are left untouched). For
// SGD with momentum_scale 0, an empty list updates the weights and, when both states have biases, the biases.
//
// Optimizers are values: a copy has its own parameters (and its own Adam time step).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "tconv/buffer.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/device.hpp"
#include "tconv/state.hpp"

namespace tconv {

// MPSNNRegularizationType.
enum class RegularizationType : uint32_t { none = 0, l1 = 1, l2 = 2 };

// MPSNNOptimizerDescriptor. Gradient preprocessing, in this order: clip to [gradient_clip_min,
// gradient_clip_max] when apply_gradient_clipping, multiply by gradient_rescale, add regularization_scale·sign(w)
// (L1, sign(0) = 0) or regularization_scale·w (L2).
struct OptimizerDescriptor {
  float learning_rate = 0.001f;
  float gradient_rescale = 1.0f;
  bool apply_gradient_clipping = false;
  // MPS documents no defaults for the bounds; tconv's are "no bound" so that enabling clipping without
  // setting them changes nothing.
  float gradient_clip_max = std::numeric_limits<float>::max();
  float gradient_clip_min = std::numeric_limits<float>::lowest();
  RegularizationType regularization_type = RegularizationType::none;
  float regularization_scale = 0.0f;
  friend bool operator==(const OptimizerDescriptor&, const OptimizerDescriptor&) = default;
};

// MPSVector of float32 values: `length` floats of `buffer` from byte `offset` (multiple of 4);
// length = -1: up to the end of the buffer.
struct FloatVector {
  FloatVector() = default;
  FloatVector(Buffer b, std::size_t byte_offset = 0, int64_t count = -1)  // NOLINT: implicit from a Buffer
      : buffer(std::move(b)), offset(byte_offset), length(count) {}
  Buffer buffer;
  std::size_t offset = 0;
  int64_t length = -1;
};

// MPSNNOptimizer: the shared parameters.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  const Device& device() const noexcept { return device_; }
  const OptimizerDescriptor& descriptor() const noexcept { return desc_; }
  float learning_rate() const noexcept { return desc_.learning_rate; }
  // setLearningRate: applies to updates encoded afterwards. Must be finite.
  void set_learning_rate(float learning_rate);
  float gradient_rescale() const noexcept { return desc_.gradient_rescale; }
  bool apply_gradient_clipping() const noexcept { return desc_.apply_gradient_clipping; }
  void set_apply_gradient_clipping(bool apply);
  float gradient_clip_max() const noexcept { return desc_.gradient_clip_max; }
  float gradient_clip_min() const noexcept { return desc_.gradient_clip_min; }
  RegularizationType regularization_type() const noexcept { return desc_.regularization_type; }
  float regularization_scale() const noexcept { return desc_.regularization_scale; }

 protected:
  // Throws Error(invalid_argument) for a non-finite learning rate, rescale or regularisation scale, an
  // unknown regularisation type, or clip bounds with min > max (or NaN).
  Optimizer(const Device& device, const OptimizerDescriptor& descriptor);

 private:
  Device device_;
  OptimizerDescriptor desc_;
};

// MPSNNOptimizerStochasticGradientDescent.
//   no momentum:  w ← w − lr·g
//   classic:      m ← μ·m + lr·g ;  w ← w − m
//   Nesterov:     m ← μ·m + g    ;  w ← w − lr·(g + μ·m)
class OptimizerSGD : public Optimizer {
 public:
  // init(device:learningRate:): no momentum.
  OptimizerSGD(const Device& device, float learning_rate);
  // init(device:momentumScale:useNestrovMomentum:optimizerDescriptor:). momentum_scale must be finite.
  OptimizerSGD(const Device& device, float momentum_scale, bool use_nesterov_momentum,
               const OptimizerDescriptor& descriptor);

  float momentum_scale() const noexcept { return momentum_scale_; }
  bool use_nesterov_momentum() const noexcept { return nesterov_; }

  // Vector form. Without a momentum vector the update is the plain step; momentum_scale must then be 0.
  void encode(CommandBuffer& command_buffer, const FloatVector& input_gradient, const FloatVector& input_values,
              const std::optional<FloatVector>& input_momentum, const FloatVector& result_values) const;
  // Convolution-state form (momentum: {} (only with momentum_scale 0) / {weights} / {weights, biases}).
  void encode(CommandBuffer& command_buffer, const ConvolutionGradientState& gradient_state,
              const ConvolutionWeightsAndBiasesState& source_state, const std::vector<Buffer>& input_momentum,
              ConvolutionWeightsAndBiasesState& result_state) const;

 private:
  float momentum_scale_ = 0.0f;
  bool nesterov_ = false;
};

// MPSNNOptimizerRMSProp: s ← decay·s + (1 − decay)·g² ; w ← w − lr·g/(sqrt(s) + ε).
class OptimizerRMSProp : public Optimizer {
 public:
  OptimizerRMSProp(const Device& device, float learning_rate);  // decay 0.9, epsilon 1e-8
  // init(device:decay:epsilon:optimizerDescriptor:). decay in [0, 1], epsilon finite and ≥ 0.
  OptimizerRMSProp(const Device& device, double decay, float epsilon, const OptimizerDescriptor& descriptor);

  double decay() const noexcept { return decay_; }
  float epsilon() const noexcept { return epsilon_; }

  void encode(CommandBuffer& command_buffer, const FloatVector& input_gradient, const FloatVector& input_values,
              const FloatVector& input_sum_of_squares, const FloatVector& result_values) const;
  // sum_of_squares: {weights} or {weights, biases}.
  void encode(CommandBuffer& command_buffer, const ConvolutionGradientState& gradient_state,
              const ConvolutionWeightsAndBiasesState& source_state, const std::vector<Buffer>& input_sum_of_squares,
              ConvolutionWeightsAndBiasesState& result_state) const;

 private:
  double decay_ = 0.9;
  float epsilon_ = 1e-8f;
};

// MPSNNOptimizerAdam. Each encode first advances time_step by one (c.17: the counter belongs to this object,
// so one Adam object shared by several layers advances once per layer update), then uses
//   lr_t = lr·sqrt(1 − β2^t)/(1 − β1^t) ; m ← β1·m + (1 − β1)·g ; v ← β2·v + (1 − β2)·g²
//   w ← w − lr_t·m/(sqrt(v) + ε)                  (AMSGrad: vmax ← max(vmax, v), sqrt(vmax) instead)
// The user zero-initialises m, v (and vmax).
struct AdamParameters {
  double beta1 = 0.9;
  double beta2 = 0.999;
  float epsilon = 1e-8f;
  bool amsgrad = false;     // 10.15+: needs max-velocity vectors in every encode
  uint64_t time_step = 0;   // the step the next encode advances from
};

class OptimizerAdam : public Optimizer {
 public:
  OptimizerAdam(const Device& device, float learning_rate);  // β1 0.9, β2 0.999, ε 1e-8, t 0
  // init(device:beta1:beta2:epsilon:timeStep:optimizerDescriptor:) (+ amsgrad). β in [0, 1), ε finite ≥ 0.
  OptimizerAdam(const Device& device, const AdamParameters& parameters, const OptimizerDescriptor& descriptor);

  double beta1() const noexcept { return p_.beta1; }
  double beta2() const noexcept { return p_.beta2; }
  float epsilon() const noexcept { return p_.epsilon; }
  bool amsgrad() const noexcept { return p_.amsgrad; }
  uint64_t time_step() const noexcept { return p_.time_step; }
  void set_time_step(uint64_t time_step) noexcept { p_.time_step = time_step; }

  // Vector form: max_velocity is required with amsgrad and refused without it.
  void encode(CommandBuffer& command_buffer, const FloatVector& input_gradient, const FloatVector& input_values,
              const FloatVector& input_momentum, const FloatVector& input_velocity,
              const std::optional<FloatVector>& maximum_velocity, const FloatVector& result_values);
  // Convolution-state form: momentum and velocity lists of equal length ({weights} or {weights, biases}).
  void encode(CommandBuffer& command_buffer, const ConvolutionGradientState& gradient_state,
              const ConvolutionWeightsAndBiasesState& source_state, const std::vector<Buffer>& input_momentum,
              const std::vector<Buffer>& input_velocity, ConvolutionWeightsAndBiasesState& result_state);
  // AMSGrad form: maximum_velocity has the same length as the other lists.
  void encode(CommandBuffer& command_buffer, const ConvolutionGradientState& gradient_state,
              const ConvolutionWeightsAndBiasesState& source_state, const std::vector<Buffer>& input_momentum,
              const std::vector<Buffer>& input_velocity, const std::vector<Buffer>& maximum_velocity,
              ConvolutionWeightsAndBiasesState& result_state);

 private:
  void encode_state(CommandBuffer& command_buffer, const ConvolutionGradientState& gradient_state,
                    const ConvolutionWeightsAndBiasesState& source_state, const std::vector<Buffer>& momentum,
                    const std::vector<Buffer>& velocity, const std::vector<Buffer>* maximum_velocity,
                    ConvolutionWeightsAndBiasesState& result_state);
  AdamParameters p_;
};

}  // namespace tconv
