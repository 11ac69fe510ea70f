// Activation functions and their derivatives (spec a.2 fused neuron; training neurons for issue 6).
// Header-only and templated on the scalar so the float64 reference and float32 kernels share one definition.
#pragma once

#include <cmath>

#include "tconv/types.hpp"

namespace tconv::core {

template <class T>
T neuron_apply(const NeuronDescriptor& n, T x) {
  const T a = static_cast<T>(n.a), b = static_cast<T>(n.b), c = static_cast<T>(n.c);
  using std::abs; using std::exp; using std::log; using std::pow; using std::tanh; using std::erf;
  switch (n.type) {
    case NeuronType::none: return x;
    case NeuronType::relu: return x >= T(0) ? x : a * x;
    case NeuronType::linear: return a * x + b;
    case NeuronType::sigmoid: return T(1) / (T(1) + exp(-x));
    case NeuronType::hard_sigmoid: { T y = a * x + b; return y < T(0) ? T(0) : (y > T(1) ? T(1) : y); }
    case NeuronType::tanh: return a * tanh(b * x);
    case NeuronType::absolute: return abs(x);
    case NeuronType::soft_plus: return a * log1p(exp(b * x));
    case NeuronType::soft_sign: return x / (T(1) + abs(x));
    case NeuronType::elu: return x >= T(0) ? x : a * (exp(x) - T(1));
    case NeuronType::relu_n: { T y = x >= T(0) ? x : a * x; return y < b ? y : b; }
    case NeuronType::power: return pow(a * x + b, c);
    case NeuronType::exponential: return c > T(0) ? pow(c, a * x + b) : exp(a * x + b);
    case NeuronType::logarithm: return c > T(0) ? log(a * x + b) / log(c) : log(a * x + b);
    case NeuronType::gelu: return T(0.5) * x * (T(1) + erf(x / std::sqrt(T(2))));
  }
  return x;
}

// d f / d x at x (the pre-activation). Used by the neuron gradient kernels.
template <class T>
T neuron_derivative(const NeuronDescriptor& n, T x) {
  const T a = static_cast<T>(n.a), b = static_cast<T>(n.b), c = static_cast<T>(n.c);
  using std::abs; using std::exp; using std::log; using std::pow; using std::tanh;
  switch (n.type) {
    case NeuronType::none: return T(1);
    case NeuronType::relu: return x >= T(0) ? T(1) : a;
    case NeuronType::linear: return a;
    case NeuronType::sigmoid: { T s = T(1) / (T(1) + exp(-x)); return s * (T(1) - s); }
    case NeuronType::hard_sigmoid: { T y = a * x + b; return (y > T(0) && y < T(1)) ? a : T(0); }
    case NeuronType::tanh: { T t = tanh(b * x); return a * b * (T(1) - t * t); }
    case NeuronType::absolute: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case NeuronType::soft_plus: return a * b / (T(1) + exp(-b * x));
    case NeuronType::soft_sign: { T d = T(1) + abs(x); return T(1) / (d * d); }
    case NeuronType::elu: return x >= T(0) ? T(1) : a * exp(x);
    case NeuronType::relu_n: { T y = x >= T(0) ? x : a * x; return y < b ? (x >= T(0) ? T(1) : a) : T(0); }
    case NeuronType::power: return c * a * pow(a * x + b, c - T(1));
    case NeuronType::exponential: {
      T lc = c > T(0) ? log(c) : T(1);
      return a * lc * (c > T(0) ? pow(c, a * x + b) : exp(a * x + b));
    }
    case NeuronType::logarithm: { T lc = c > T(0) ? log(c) : T(1); return a / ((a * x + b) * lc); }
    case NeuronType::gelu: {
      const T kInvSqrt2Pi = T(0.3989422804014327);
      return T(0.5) * (T(1) + std::erf(x / std::sqrt(T(2)))) + x * kInvSqrt2Pi * exp(-x * x / T(2));
    }
  }
  return T(1);
}

}  // namespace tconv::core
