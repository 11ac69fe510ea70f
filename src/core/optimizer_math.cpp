// Optimizer update rules over float32 arrays (see optimizer_math.hpp for the formulas and the arithmetic
// contract). Each loop body evaluates its formula left to right as written in the header, one float32
// rounding per operation; this file is compiled with -ffp-contract=off (src/core/train_math.cmake) so that
// the order documented in docs/optimizers.md is the order executed, whatever -march is used.
#include "core/optimizer_math.hpp"

#include <cmath>

#include <omp.h>

namespace tconv::core {
namespace {

// Small arrays (biases) are not worth waking a team of threads for. The choice cannot change results:
// elements are independent.
constexpr int64_t kParallelThreshold = 1 << 14;

int team_size(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

}  // namespace

void sgd_update(const OptimizerCommon& common, const SgdParams& sgd, const UpdateArrays& a, float* momentum,
                int threads) {
  const float lr = common.learning_rate;
  const float mu = sgd.momentum_scale;
  const int64_t n = a.count;
  const int team = team_size(threads);
  if (momentum == nullptr) {
#pragma omp parallel for schedule(static) num_threads(team) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w = a.values[i];
      const float g = preprocess_gradient(common, a.gradient[i], w);
      a.result[i] = w - lr * g;
    }
  } else if (!sgd.nesterov) {
#pragma omp parallel for schedule(static) num_threads(team) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w = a.values[i];
      const float g = preprocess_gradient(common, a.gradient[i], w);
      const float m = mu * momentum[i] + lr * g;
      momentum[i] = m;
      a.result[i] = w - m;
    }
  } else {
#pragma omp parallel for schedule(static) num_threads(team) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w = a.values[i];
      const float g = preprocess_gradient(common, a.gradient[i], w);
      const float m = mu * momentum[i] + g;
      momentum[i] = m;
      a.result[i] = w - lr * (g + mu * m);
    }
  }
}

void rmsprop_update(const OptimizerCommon& common, const RmsPropParams& rms, const UpdateArrays& a,
                    float* sum_of_squares, int threads) {
  const float lr = common.learning_rate;
  const float decay = rms.decay;
  const float one_minus_decay = rms.one_minus_decay;
  const float eps = rms.epsilon;
  const int64_t n = a.count;
#pragma omp parallel for schedule(static) num_threads(team_size(threads)) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const float w = a.values[i];
    const float g = preprocess_gradient(common, a.gradient[i], w);
    const float s = decay * sum_of_squares[i] + one_minus_decay * (g * g);
    sum_of_squares[i] = s;
    a.result[i] = w - lr * g / (std::sqrt(s) + eps);
  }
}

RmsPropParams rmsprop_params(double decay, float epsilon) {
  return {static_cast<float>(decay), static_cast<float>(1.0 - decay), epsilon};
}

AdamParams adam_params(double beta1, double beta2, float epsilon) {
  return {static_cast<float>(beta1), static_cast<float>(1.0 - beta1), static_cast<float>(beta2),
          static_cast<float>(1.0 - beta2), epsilon};
}

float adam_step_size(float learning_rate, double b1, double b2, int64_t time_step) {
  const double t = static_cast<double>(time_step);
  const double lr_t = static_cast<double>(learning_rate) * std::sqrt(1.0 - std::pow(b2, t)) / (1.0 - std::pow(b1, t));
  return static_cast<float>(lr_t);
}

void adam_update(const OptimizerCommon& common, const AdamParams& adam, float step_size, const UpdateArrays& a,
                 float* momentum, float* velocity, float* max_velocity, int threads) {
  const float b1 = adam.beta1, b2 = adam.beta2, eps = adam.epsilon;
  const float one_minus_b1 = adam.one_minus_beta1, one_minus_b2 = adam.one_minus_beta2;
  const float lr_t = step_size;
  const int64_t n = a.count;
  const int team = team_size(threads);
  if (max_velocity == nullptr) {
#pragma omp parallel for schedule(static) num_threads(team) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w = a.values[i];
      const float g = preprocess_gradient(common, a.gradient[i], w);
      const float m = b1 * momentum[i] + one_minus_b1 * g;
      const float v = b2 * velocity[i] + one_minus_b2 * (g * g);
      momentum[i] = m;
      velocity[i] = v;
      a.result[i] = w - lr_t * m / (std::sqrt(v) + eps);
    }
  } else {
#pragma omp parallel for schedule(static) num_threads(team) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w = a.values[i];
      const float g = preprocess_gradient(common, a.gradient[i], w);
      const float m = b1 * momentum[i] + one_minus_b1 * g;
      const float v = b2 * velocity[i] + one_minus_b2 * (g * g);
      const float vmax = max_velocity[i] > v ? max_velocity[i] : v;
      momentum[i] = m;
      velocity[i] = v;
      max_velocity[i] = vmax;
      a.result[i] = w - lr_t * m / (std::sqrt(vmax) + eps);
    }
  }
}

}  // namespace tconv::core
