#include "tconv/types.hpp"

namespace tconv {

std::size_t size_of(DataType t) noexcept {
  switch (t) {
    case DataType::float32: return 4;
    case DataType::float16: case DataType::bfloat16: return 2;
    case DataType::uint8: return 1;
  }
  return 0;
}

std::string_view to_string(DataType t) noexcept {
  switch (t) {
    case DataType::float32: return "float32";
    case DataType::float16: return "float16";
    case DataType::bfloat16: return "bfloat16";
    case DataType::uint8: return "uint8";
  }
  return "unknown";
}

std::string_view to_string(Precision p) noexcept {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
  }
  return "unknown";
}

bool parse_precision(std::string_view s, Precision& out) noexcept {
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16})
    if (s == to_string(p)) { out = p; return true; }
  return false;
}

std::string_view to_string(NeuronType t) noexcept {
  switch (t) {
    case NeuronType::none: return "none";
    case NeuronType::relu: return "relu";
    case NeuronType::linear: return "linear";
    case NeuronType::sigmoid: return "sigmoid";
    case NeuronType::hard_sigmoid: return "hard_sigmoid";
    case NeuronType::tanh: return "tanh";
    case NeuronType::absolute: return "absolute";
    case NeuronType::soft_plus: return "soft_plus";
    case NeuronType::soft_sign: return "soft_sign";
    case NeuronType::elu: return "elu";
    case NeuronType::relu_n: return "relu_n";
    case NeuronType::power: return "power";
    case NeuronType::exponential: return "exponential";
    case NeuronType::logarithm: return "logarithm";
    case NeuronType::gelu: return "gelu";
  }
  return "unknown";
}

}  // namespace tconv
