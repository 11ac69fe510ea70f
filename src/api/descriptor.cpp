// ConvolutionDescriptor (spec a.2, e6, e12): validation with messages, the inference batch-norm fold, the
// deprecated neuron aliases, and coding through io::Encoder/Decoder (every field, so decode(encode(d)) == d).
#include "tconv/descriptor.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

#include "api/internal.hpp"
#include "io/coder.hpp"

namespace tconv {

ConvolutionDescriptor::ConvolutionDescriptor(int64_t kw, int64_t kh, int64_t nin, int64_t nout)
    : kernel_width(kw), kernel_height(kh), input_feature_channels(nin), output_feature_channels(nout) {}

void ConvolutionDescriptor::set_batch_normalization_parameters_for_inference(std::vector<float> mean,
                                                                              std::vector<float> variance,
                                                                              std::vector<float> gamma,
                                                                              std::vector<float> beta, float epsilon) {
  const auto check = [&](const std::vector<float>& v, const char* name) {
    if (!v.empty() && static_cast<int64_t>(v.size()) != output_feature_channels)
      api::throw_invalid("batch-norm ", name, " has ", v.size(), " values; expected 0 (default) or ",
                         output_feature_channels, " (output feature channels)");
  };
  check(mean, "mean");
  check(variance, "variance");
  check(gamma, "gamma");
  check(beta, "beta");
  if (!(epsilon >= 0.0f)) api::throw_invalid("batch-norm epsilon must be >= 0, got ", epsilon);
  batch_norm = BatchNormParameters{std::move(mean), std::move(variance), std::move(gamma), std::move(beta), epsilon};
}

void ConvolutionDescriptor::fold_batch_norm(float* weights, float* biases) const {
  if (!batch_norm) return;
  const BatchNormParameters& bn = *batch_norm;
  const int64_t per_o = kernel_height * kernel_width * (input_feature_channels / effective_groups());
  for (int64_t o = 0; o < output_feature_channels; ++o) {
    const double mean = bn.mean.empty() ? 0.0 : bn.mean[o];
    const double var = bn.variance.empty() ? 1.0 : bn.variance[o];
    const double gamma = bn.gamma.empty() ? 1.0 : bn.gamma[o];
    const double beta = bn.beta.empty() ? 0.0 : bn.beta[o];
    const double I = gamma / std::sqrt(var + bn.epsilon);
    const double J = beta - I * mean;
    for (int64_t i = 0; i < per_o; ++i) weights[o * per_o + i] = static_cast<float>(weights[o * per_o + i] * I);
    biases[o] = static_cast<float>(biases[o] * I + J);
  }
}

void ConvolutionDescriptor::set_neuron_type(NeuronType type, float a, float b) {
  fused_neuron = NeuronDescriptor{type, a, b, fused_neuron.c};
}

void ConvolutionDescriptor::set_neuron_to_prelu(const std::vector<float>& parameters_a) {
  api::throw_unsupported("per-channel PReLU (", parameters_a.size(),
                         " parameters) cannot be fused into a tconv convolution; use NeuronType::relu with one slope");
}

int64_t ConvolutionDescriptor::weight_elements() const {
  const int64_t g = effective_groups();
  return g > 0 ? output_feature_channels * kernel_height * kernel_width * (input_feature_channels / g) : 0;
}

std::optional<std::string> ConvolutionDescriptor::check() const {
  struct Named { const char* name; int64_t v; };
  const Named positive[] = {{"kernel width", kernel_width},
                            {"kernel height", kernel_height},
                            {"input feature channels", input_feature_channels},
                            {"output feature channels", output_feature_channels},
                            {"stride x", stride_x},
                            {"stride y", stride_y},
                            {"dilation x", dilation_x},
                            {"dilation y", dilation_y},
                            {"groups", groups},
                            {"sub-pixel scale factor", sub_pixel_scale_factor}};
  for (const Named& n : positive)
    if (n.v <= 0) return api::cat(n.name, " must be positive, got ", n.v);
  const int64_t big = int64_t{1} << 24;
  for (const Named& n : positive)
    if (n.v > big) return api::cat(n.name, " is too large (", n.v, " > 2^24)");
  if (depthwise) {
    if (output_feature_channels % input_feature_channels != 0)
      return api::cat("depthwise convolution: output feature channels (", output_feature_channels,
                      ") must be a multiple of input feature channels (", input_feature_channels, ")");
  } else if (input_feature_channels % groups != 0 || output_feature_channels % groups != 0) {
    return api::cat("groups (", groups, ") must divide input feature channels (", input_feature_channels,
                    ") and output feature channels (", output_feature_channels, ")");
  }
  if (batch_norm) {
    const BatchNormParameters& bn = *batch_norm;
    for (const auto* v : {&bn.mean, &bn.variance, &bn.gamma, &bn.beta})
      if (!v->empty() && static_cast<int64_t>(v->size()) != output_feature_channels)
        return api::cat("batch-norm parameters have ", v->size(), " values; expected ", output_feature_channels);
    for (std::size_t i = 0; i < bn.variance.size(); ++i)
      if (!(bn.variance[i] + bn.epsilon > 0.0f))
        return api::cat("batch-norm variance[", i, "] + epsilon = ", bn.variance[i] + bn.epsilon, " must be positive");
  }
  return std::nullopt;
}

void ConvolutionDescriptor::validate() const {
  if (auto why = check()) throw Error(ErrorCode::invalid_argument, "convolution descriptor: " + *why);
}

namespace {
void put_floats(io::Encoder& e, const std::string& key, const std::vector<float>& v) {
  e.set_tensor(key, DataType::float32, {static_cast<int64_t>(v.size())}, v.data(), v.size() * sizeof(float));
}
std::vector<float> get_floats(const io::Decoder& d, const std::string& key) {
  const io::Tensor& t = d.get_tensor(key);
  if (t.dtype != DataType::float32 || t.shape.size() != 1 || t.data.size() != static_cast<std::size_t>(t.shape[0]) * 4)
    throw Error(ErrorCode::format_error, "tensor '" + key + "' must be a 1-D float32 array");
  std::vector<float> v(static_cast<std::size_t>(t.shape[0]));
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}
}  // namespace

void ConvolutionDescriptor::encode_to(io::Encoder& e, const std::string& p) const {
  e.set_int(p + ".kernel_width", kernel_width);
  e.set_int(p + ".kernel_height", kernel_height);
  e.set_int(p + ".input_feature_channels", input_feature_channels);
  e.set_int(p + ".output_feature_channels", output_feature_channels);
  e.set_int(p + ".stride_x", stride_x);
  e.set_int(p + ".stride_y", stride_y);
  e.set_int(p + ".dilation_x", dilation_x);
  e.set_int(p + ".dilation_y", dilation_y);
  e.set_int(p + ".groups", groups);
  e.set_int(p + ".neuron.type", static_cast<int64_t>(fused_neuron.type));
  e.set_double(p + ".neuron.a", fused_neuron.a);
  e.set_double(p + ".neuron.b", fused_neuron.b);
  e.set_double(p + ".neuron.c", fused_neuron.c);
  e.set_int(p + ".sub_pixel_scale_factor", sub_pixel_scale_factor);
  e.set_bool(p + ".depthwise", depthwise);
  e.set_bool(p + ".batch_norm", batch_norm.has_value());
  if (batch_norm) {
    put_floats(e, p + ".bn.mean", batch_norm->mean);
    put_floats(e, p + ".bn.variance", batch_norm->variance);
    put_floats(e, p + ".bn.gamma", batch_norm->gamma);
    put_floats(e, p + ".bn.beta", batch_norm->beta);
    e.set_double(p + ".bn.epsilon", batch_norm->epsilon);
  }
}

ConvolutionDescriptor ConvolutionDescriptor::decode(const io::Decoder& d, const std::string& p) {
  ConvolutionDescriptor r(d.get_int(p + ".kernel_width"), d.get_int(p + ".kernel_height"),
                          d.get_int(p + ".input_feature_channels"), d.get_int(p + ".output_feature_channels"));
  r.stride_x = d.get_int(p + ".stride_x");
  r.stride_y = d.get_int(p + ".stride_y");
  r.dilation_x = d.get_int(p + ".dilation_x");
  r.dilation_y = d.get_int(p + ".dilation_y");
  r.groups = d.get_int(p + ".groups");
  const int64_t nt = d.get_int(p + ".neuron.type");
  if (nt < 0 || nt > static_cast<int64_t>(NeuronType::gelu))
    throw Error(ErrorCode::format_error, "descriptor neuron type " + std::to_string(nt) + " is unknown");
  r.fused_neuron = NeuronDescriptor{static_cast<NeuronType>(nt), static_cast<float>(d.get_double(p + ".neuron.a")),
                                    static_cast<float>(d.get_double(p + ".neuron.b")),
                                    static_cast<float>(d.get_double(p + ".neuron.c"))};
  r.sub_pixel_scale_factor = d.get_int(p + ".sub_pixel_scale_factor");
  r.depthwise = d.get_bool(p + ".depthwise");
  if (d.get_bool(p + ".batch_norm")) {
    r.batch_norm = BatchNormParameters{get_floats(d, p + ".bn.mean"), get_floats(d, p + ".bn.variance"),
                                       get_floats(d, p + ".bn.gamma"), get_floats(d, p + ".bn.beta"),
                                       static_cast<float>(d.get_double(p + ".bn.epsilon"))};
  }
  if (auto why = r.check()) throw Error(ErrorCode::format_error, "decoded convolution descriptor is invalid: " + *why);
  return r;
}

std::string ConvolutionDescriptor::describe() const {
  std::ostringstream os;
  os << kernel_width << "x" << kernel_height << " convolution " << input_feature_channels << "->"
     << output_feature_channels << ", stride " << stride_x << "x" << stride_y << ", dilation " << dilation_x << "x"
     << dilation_y << ", groups " << groups;
  if (depthwise) os << " (depthwise)";
  if (fused_neuron.type != NeuronType::none) os << ", neuron " << to_string(fused_neuron.type);
  if (batch_norm) os << ", batch-norm fold";
  if (sub_pixel_scale_factor != 1) os << ", sub-pixel x" << sub_pixel_scale_factor;
  return os.str();
}

}  // namespace tconv
