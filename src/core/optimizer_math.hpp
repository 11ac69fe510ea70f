// Optimizer update rules (spec a.9, c.17, c.18) as pure functions over float32 arrays.
//
// These are the engine half of tconv's optimizers: no devices, no buffers, no MPS objects. The object API
// (src/api/training_optimizer.cpp) validates sizes, resolves buffers and offsets and calls these.
//
// Arithmetic contract (docs/optimizers.md):
//  * every per-element value is computed in float32, in the order the formulas are written below; the
//    library builds this file with -ffp-contract=off so no multiply-add is fused behind our back;
//  * the only scalar computed in float64 is Adam's step size lr_t (once per update, then rounded to
//    float32): β^t in float32 loses most of its digits for large t;
//  * elements are independent, so results are bitwise identical for any thread count.
//
// Gradient preprocessing (a.9.1, c.18), applied to every gradient element g with current value w:
//    g ← clip(g, min, max)            if clipping is enabled   (min(max(g, min), max))
//    g ← g · rescale
//    g ← g + scale · sign(w)          L1 (sign(0) = 0)
//    g ← g + scale · w                L2 (no factor 2)
#pragma once

#include <cstdint>

namespace tconv::core {

enum class Regularization : uint8_t { none = 0, l1 = 1, l2 = 2 };  // MPSNNRegularizationType values

// MPSNNOptimizerDescriptor, engine side.
struct OptimizerCommon {
  float learning_rate = 0.001f;
  float gradient_rescale = 1.0f;
  bool apply_gradient_clipping = false;
  float gradient_clip_max = 0.0f;
  float gradient_clip_min = 0.0f;
  Regularization regularization = Regularization::none;
  float regularization_scale = 0.0f;
};

// The preprocessed gradient of one element (formula at the top of the file).
inline float preprocess_gradient(const OptimizerCommon& p, float g, float w) {
  if (p.apply_gradient_clipping) {
    g = g < p.gradient_clip_min ? p.gradient_clip_min : g;
    g = g > p.gradient_clip_max ? p.gradient_clip_max : g;
  }
  g = g * p.gradient_rescale;
  if (p.regularization == Regularization::l1) {
    const float s = w > 0.0f ? 1.0f : (w < 0.0f ? -1.0f : 0.0f);
    g = g + p.regularization_scale * s;
  } else if (p.regularization == Regularization::l2) {
    g = g + p.regularization_scale * w;
  }
  return g;
}

// One array to update: n elements of gradient, current values and results (results may equal values:
// in-place updates are allowed). Optimizer state arrays have n elements too.
struct UpdateArrays {
  const float* gradient = nullptr;
  const float* values = nullptr;
  float* result = nullptr;
  int64_t count = 0;
};

// SGD (a.9.2). momentum == nullptr: w ← w − lr·g. Otherwise
//   classic:   m ← μ·m + lr·g ;  w ← w − m
//   Nesterov:  m ← μ·m + g    ;  w ← w − lr·(g + μ·m)      (m is the updated momentum)
struct SgdParams {
  float momentum_scale = 0.0f;
  bool nesterov = false;
};
void sgd_update(const OptimizerCommon& common, const SgdParams& sgd, const UpdateArrays& a, float* momentum,
                int threads);

// RMSProp (a.9.3): s ← decay·s + (1 − decay)·g² ;  w ← w − lr·g / (sqrt(s) + ε).
// decay is float64 (MPSNNOptimizerRMSProp.decay); decay and (1 − decay) are rounded once to float32.
struct RmsPropParams {
  float decay = 0.9f, one_minus_decay = 0.1f;
  float epsilon = 1e-8f;
};
RmsPropParams rmsprop_params(double decay, float epsilon);
void rmsprop_update(const OptimizerCommon& common, const RmsPropParams& rms, const UpdateArrays& a,
                    float* sum_of_squares, int threads);

// Adam (a.9.4), for the time step t the caller has already advanced to (t ≥ 1):
//   lr_t = lr·sqrt(1 − β2^t)/(1 − β1^t)           (adam_step_size, float64, rounded to float32)
//   m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
//   AMSGrad (max_velocity != nullptr): vmax ← max(vmax, v), d = sqrt(vmax); else d = sqrt(v)
//   w ← w − lr_t·m / (d + ε)
// β1, β2 are float64 (as MPSNNOptimizerAdam's properties); the per-element constants β and (1 − β) are each
// formed in float64 and rounded once to float32 (adam_params).
struct AdamParams {
  float beta1 = 0.9f, one_minus_beta1 = 0.1f;
  float beta2 = 0.999f, one_minus_beta2 = 0.001f;
  float epsilon = 1e-8f;
};
AdamParams adam_params(double beta1, double beta2, float epsilon);
float adam_step_size(float learning_rate, double beta1, double beta2, int64_t time_step);
void adam_update(const OptimizerCommon& common, const AdamParams& adam, float step_size, const UpdateArrays& a,
                 float* momentum, float* velocity, float* max_velocity, int threads);

}  // namespace tconv::core
