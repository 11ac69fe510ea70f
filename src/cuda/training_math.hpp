// The element-wise training math of the CUDA training kernels (training_kernels.cu), written once for the
// device and the host: neuron forward/derivative, the float16/bfloat16 conversions, and the optimizer
// element updates. Compiled by nvcc for the kernels and by the host compiler for the tests, which check it
// against the CPU engine (core/neuron.hpp, core/dtype.hpp, core/optimizer_math.*) without a GPU.
//
// Arithmetic contract (what makes CUDA and CPU results agree):
//  * every float32 operation is the CPU's, in the CPU's order, one rounding each: the .cu is built with
//    -fmad=false (no fused multiply-add, like the CPU's -ffp-contract=off), IEEE division and square root and
//    no flush-to-zero (nvcc's defaults without --use_fast_math);
//  * conversions to float16/bfloat16 are core/dtype.hpp's bit-level RNE (NaN payloads included; the same
//    functions, usable in device code), not the CUDA intrinsics, whose NaN encodings differ;
//  * transcendental functions (exp, log, log1p, tanh, pow, erf) are evaluated in float64 and rounded once to
//    float32: that is the correctly rounded float32 value except in cases too rare to meet, which is what
//    glibc's float32 exp/log/pow compute (float64 evaluation, then one rounding; documented error ≤ 0.52,
//    0.82 ulp for pow). Where the CPU's libm is less accurate (log1pf, tanhf, erff in glibc < 2.41) the two
//    differ by the CPU's error; see the bounds in tests/api/test_device_kernels.cpp and docs/cuda-backend.md.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.hpp"
#include "core/optimizer_math.hpp"
#include "tconv/types.hpp"

#if defined(__CUDACC__)
#define TCONV_TM_FN __host__ __device__ __forceinline__
#else
#define TCONV_TM_FN inline
#endif

namespace tconv::train_math {

// ---------------------------------------------------------------- storage conversions (core/dtype.hpp)

// core/dtype.hpp's own bit-level conversions (__host__ __device__ under nvcc), under the names the kernels use.
using core::bf16_to_f32;
using core::bits_f32;
using core::f16_to_f32;
using core::f32_bits;
using core::f32_to_bf16;
using core::f32_to_f16;

// Element i of a dense array of type t (float32, float16 or bfloat16), as core::load_as_f32/store_from_f32.
TCONV_TM_FN float load(const void* base, int64_t i, DataType t) {
  if (t == DataType::float16) return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  if (t == DataType::bfloat16) return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  return static_cast<const float*>(base)[i];
}
TCONV_TM_FN void store(void* base, int64_t i, DataType t, float v) {
  if (t == DataType::float16) static_cast<uint16_t*>(base)[i] = f32_to_f16(v);
  else if (t == DataType::bfloat16) static_cast<uint16_t*>(base)[i] = f32_to_bf16(v);
  else static_cast<float*>(base)[i] = v;
}

// ---------------------------------------------------------------- float32 transcendentals

// The math policy of the neuron functions below: where each transcendental comes from. The kernels use
// Float64Rounded: float64 evaluation, one rounding to float32 (see the contract at the top); the
// global-namespace double functions are CUDA's in device code and libm's on the host. The tests substitute
// the CPU's own libm calls for a bit-exact check of everything else in these expressions.
struct Float64Rounded {
  static TCONV_TM_FN float exp(float x) { return static_cast<float>(::exp(static_cast<double>(x))); }
  static TCONV_TM_FN float log(float x) { return static_cast<float>(::log(static_cast<double>(x))); }
  static TCONV_TM_FN float log1p(float x) { return static_cast<float>(::log1p(static_cast<double>(x))); }
  static TCONV_TM_FN float tanh(float x) { return static_cast<float>(::tanh(static_cast<double>(x))); }
  static TCONV_TM_FN float erf(float x) { return static_cast<float>(::erf(static_cast<double>(x))); }
  static TCONV_TM_FN float pow(float x, float y) {
    return static_cast<float>(::pow(static_cast<double>(x), static_cast<double>(y)));
  }
};

// sqrt(2) rounded to float32: the CPU's std::sqrt(2.0f) (IEEE square root is correctly rounded).
constexpr float kSqrt2 = 1.41421353816986083984375f;

// ---------------------------------------------------------------- neurons (core/neuron.hpp, T = float)

// Each case is core::neuron_apply<float>'s expression with the same operations in the same order.
template <class M = Float64Rounded>
TCONV_TM_FN float neuron_apply(NeuronType type, float a, float b, float c, float x) {
  switch (type) {
    case NeuronType::none: return x;
    case NeuronType::relu: return x >= 0.0f ? x : a * x;
    case NeuronType::linear: return a * x + b;
    case NeuronType::sigmoid: return 1.0f / (1.0f + M::exp(-x));
    case NeuronType::hard_sigmoid: {
      const float y = a * x + b;
      return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
    }
    case NeuronType::tanh: return a * M::tanh(b * x);
    case NeuronType::absolute: return fabsf(x);
    case NeuronType::soft_plus: return a * M::log1p(M::exp(b * x));
    case NeuronType::soft_sign: return x / (1.0f + fabsf(x));
    case NeuronType::elu: return x >= 0.0f ? x : a * (M::exp(x) - 1.0f);
    case NeuronType::relu_n: {
      const float y = x >= 0.0f ? x : a * x;
      return y < b ? y : b;
    }
    case NeuronType::power: return M::pow(a * x + b, c);
    case NeuronType::exponential: return c > 0.0f ? M::pow(c, a * x + b) : M::exp(a * x + b);
    case NeuronType::logarithm: return c > 0.0f ? M::log(a * x + b) / M::log(c) : M::log(a * x + b);
    case NeuronType::gelu: return 0.5f * x * (1.0f + M::erf(x / kSqrt2));
  }
  return x;
}

// core::neuron_derivative<float>, likewise.
template <class M = Float64Rounded>
TCONV_TM_FN float neuron_derivative(NeuronType type, float a, float b, float c, float x) {
  switch (type) {
    case NeuronType::none: return 1.0f;
    case NeuronType::relu: return x >= 0.0f ? 1.0f : a;
    case NeuronType::linear: return a;
    case NeuronType::sigmoid: {
      const float s = 1.0f / (1.0f + M::exp(-x));
      return s * (1.0f - s);
    }
    case NeuronType::hard_sigmoid: {
      const float y = a * x + b;
      return (y > 0.0f && y < 1.0f) ? a : 0.0f;
    }
    case NeuronType::tanh: {
      const float t = M::tanh(b * x);
      return a * b * (1.0f - t * t);
    }
    case NeuronType::absolute: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case NeuronType::soft_plus: return a * b / (1.0f + M::exp(-b * x));
    case NeuronType::soft_sign: {
      const float d = 1.0f + fabsf(x);
      return 1.0f / (d * d);
    }
    case NeuronType::elu: return x >= 0.0f ? 1.0f : a * M::exp(x);
    case NeuronType::relu_n: {
      const float y = x >= 0.0f ? x : a * x;
      return y < b ? (x >= 0.0f ? 1.0f : a) : 0.0f;
    }
    case NeuronType::power: return c * a * M::pow(a * x + b, c - 1.0f);
    case NeuronType::exponential: {
      const float lc = c > 0.0f ? M::log(c) : 1.0f;
      return a * lc * (c > 0.0f ? M::pow(c, a * x + b) : M::exp(a * x + b));
    }
    case NeuronType::logarithm: {
      const float lc = c > 0.0f ? M::log(c) : 1.0f;
      return a / ((a * x + b) * lc);
    }
    case NeuronType::gelu: {
      // The CPU rounds this literal through float64 (T(0.3989…)), so do the same.
      const float kInvSqrt2Pi = static_cast<float>(0.3989422804014327);
      return 0.5f * (1.0f + M::erf(x / kSqrt2)) + x * kInvSqrt2Pi * M::exp(-x * x / 2.0f);
    }
  }
  return 1.0f;
}

// ---------------------------------------------------------------- optimizers (core/optimizer_math.*)

// core::preprocess_gradient (that one is host-only).
TCONV_TM_FN float preprocess(const core::OptimizerCommon& p, float g, float w) {
  if (p.apply_gradient_clipping) {
    g = g < p.gradient_clip_min ? p.gradient_clip_min : g;
    g = g > p.gradient_clip_max ? p.gradient_clip_max : g;
  }
  g = g * p.gradient_rescale;
  if (p.regularization == core::Regularization::l1) {
    const float s = w > 0.0f ? 1.0f : (w < 0.0f ? -1.0f : 0.0f);
    g = g + p.regularization_scale * s;
  } else if (p.regularization == core::Regularization::l2) {
    g = g + p.regularization_scale * w;
  }
  return g;
}

enum class SgdKind : int { plain = 0, momentum = 1, nesterov = 2 };

// One element of core::sgd_update: returns the new value; m is the momentum element (unused for plain).
TCONV_TM_FN float sgd_element(const core::OptimizerCommon& c, float mu, SgdKind kind, float grad, float w,
                              float* m) {
  const float lr = c.learning_rate;
  const float g = preprocess(c, grad, w);
  if (kind == SgdKind::plain) return w - lr * g;
  if (kind == SgdKind::momentum) {
    const float mn = mu * *m + lr * g;
    *m = mn;
    return w - mn;
  }
  const float mn = mu * *m + g;
  *m = mn;
  return w - lr * (g + mu * mn);
}

// One element of core::rmsprop_update.
TCONV_TM_FN float rmsprop_element(const core::OptimizerCommon& c, const core::RmsPropParams& r, float grad, float w,
                                  float* s) {
  const float g = preprocess(c, grad, w);
  const float sn = r.decay * *s + r.one_minus_decay * (g * g);
  *s = sn;
  return w - c.learning_rate * g / (sqrtf(sn) + r.epsilon);
}

// One element of core::adam_update; vmax == nullptr: plain Adam, else AMSGrad.
TCONV_TM_FN float adam_element(const core::OptimizerCommon& c, const core::AdamParams& p, float lr_t, float grad,
                               float w, float* m, float* v, float* vmax) {
  const float g = preprocess(c, grad, w);
  const float mn = p.beta1 * *m + p.one_minus_beta1 * g;
  const float vn = p.beta2 * *v + p.one_minus_beta2 * (g * g);
  *m = mn;
  *v = vn;
  if (vmax == nullptr) return w - lr_t * mn / (sqrtf(vn) + p.epsilon);
  const float vm = *vmax > vn ? *vmax : vn;
  *vmax = vm;
  return w - lr_t * mn / (sqrtf(vm) + p.epsilon);
}

}  // namespace tconv::train_math
