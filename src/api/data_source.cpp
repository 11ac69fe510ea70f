// ConvolutionDataSource defaults, ArrayDataSource, and the weight loading every kernel shares
// (spec a.3, a.4, e7, e8): load → weights → purge, conversion to float32, internal-precision rounding and
// the batch-norm fold.
#include "tconv/data_source.hpp"

#include <cstring>

#include "api/internal.hpp"
#include "core/dtype.hpp"

namespace tconv {

// ---------------------------------------------------------------- protocol defaults

ConvolutionWeightsAndBiasesState ConvolutionDataSource::update(CommandBuffer&, const ConvolutionGradientState&,
                                                               const ConvolutionWeightsAndBiasesState&) {
  return {};
}
bool ConvolutionDataSource::update(const ConvolutionGradientState&, const ConvolutionWeightsAndBiasesState&) {
  return false;
}
std::shared_ptr<ConvolutionDataSource> ConvolutionDataSource::copy_to(const Device&) const { return copy(); }

// ---------------------------------------------------------------- ArrayDataSource

ArrayDataSource::ArrayDataSource(ConvolutionDescriptor descriptor, std::vector<float> weights, std::vector<float> biases,
                                 DataType storage, std::string label)
    : descriptor_(std::move(descriptor)), storage_(storage), label_(std::move(label)) {
  descriptor_.validate();
  if (storage != DataType::float32 && storage != DataType::float16 && storage != DataType::bfloat16)
    api::throw_unsupported("ArrayDataSource stores float32, float16 or bfloat16 weights, not ", to_string(storage));
  const int64_t n = descriptor_.weight_elements();
  if (static_cast<int64_t>(weights.size()) != n)
    api::throw_invalid("ArrayDataSource: ", weights.size(), " weights given; the descriptor (",
                       descriptor_.describe(), ") needs Nout·kH·kW·Nin/G = ", n);
  set_weights(weights);
  set_biases(biases);
}

const void* ArrayDataSource::weights() {
  std::lock_guard<std::mutex> lock(mu_);
  return loaded_ > 0 ? weights_.data() : nullptr;
}

const float* ArrayDataSource::bias_terms() {
  std::lock_guard<std::mutex> lock(mu_);
  return loaded_ > 0 && !biases_.empty() ? biases_.data() : nullptr;
}

bool ArrayDataSource::load() {
  std::lock_guard<std::mutex> lock(mu_);
  ++loaded_;
  ++total_loads_;
  return true;
}

void ArrayDataSource::purge() {
  std::lock_guard<std::mutex> lock(mu_);
  if (loaded_ > 0) --loaded_;
}

std::shared_ptr<ConvolutionDataSource> ArrayDataSource::copy() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = std::make_shared<ArrayDataSource>(descriptor_, weights_as_floats_locked(), biases_, storage_, label_);
  c->kernel_weights_type_ = kernel_weights_type_;
  c->learning_rate_ = learning_rate_;
  return c;
}

std::vector<float> ArrayDataSource::weights_as_floats_locked() const {
  const int64_t n = descriptor_.weight_elements();
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = core::load_as_f32(weights_.data(), i, storage_);
  return out;
}

std::vector<float> ArrayDataSource::weights_as_floats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return weights_as_floats_locked();
}

std::vector<float> ArrayDataSource::biases() const {
  std::lock_guard<std::mutex> lock(mu_);
  return biases_;
}

void ArrayDataSource::set_weights(const std::vector<float>& w) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t n = descriptor_.weight_elements();
  if (static_cast<int64_t>(w.size()) != n)
    api::throw_invalid("ArrayDataSource::set_weights: ", w.size(), " values given, ", n, " expected");
  weights_.assign(static_cast<std::size_t>(n) * size_of(storage_), 0);
  for (int64_t i = 0; i < n; ++i) core::store_from_f32(weights_.data(), i, storage_, w[i]);
}

void ArrayDataSource::set_biases(const std::vector<float>& b) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!b.empty() && static_cast<int64_t>(b.size()) != descriptor_.output_feature_channels)
    api::throw_invalid("ArrayDataSource: ", b.size(), " biases given; expected 0 or ",
                       descriptor_.output_feature_channels, " (output feature channels)");
  biases_ = b;
}

int ArrayDataSource::load_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loaded_;
}
int ArrayDataSource::total_loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_loads_;
}

namespace {
void check_update_shapes(const ConvolutionDescriptor& d, const ConvolutionGradientState& g,
                         const ConvolutionWeightsAndBiasesState& s) {
  const int64_t n = d.weight_elements();
  if (!g || !s) api::throw_invalid("data source update: the gradient state and the source state must be non-null");
  if (static_cast<int64_t>(g.gradient_for_weights().length() / 4) != n || s.weight_count() < n)
    api::throw_invalid("data source update: the states hold ", g.gradient_for_weights().length() / 4,
                       " gradient and ", s.weight_count(), " weight values; the descriptor needs ", n);
}

// The update reads and writes the states where they live: host memory directly, device-only memory (CUDA)
// through host copies of just the ranges it uses.
struct HostRange {
  Buffer buffer;
  std::size_t offset = 0, count = 0;
  std::vector<float> staged;
  float* data = nullptr;
  HostRange(const Buffer& b, std::size_t off, std::size_t n) : buffer(b), offset(off), count(n) {
    if (!b || n == 0) return;
    if (void* p = buffer.contents()) {
      data = reinterpret_cast<float*>(static_cast<uint8_t*>(p) + off);
    } else {
      staged.resize(n);
      buffer.copy_to_host(staged.data(), n * sizeof(float), off);
      data = staged.data();
    }
  }
  void write_back() {
    if (!staged.empty()) buffer.copy_from_host(staged.data(), count * sizeof(float), offset);
  }
};
}  // namespace

bool ArrayDataSource::update(const ConvolutionGradientState& g, const ConvolutionWeightsAndBiasesState& s) {
  check_update_shapes(descriptor_, g, s);
  const auto n = static_cast<std::size_t>(descriptor_.weight_elements());
  const auto nout = static_cast<std::size_t>(descriptor_.output_feature_channels);
  const HostRange gw(g.gradient_for_weights(), 0, n), sw(s.weights(), s.weights_offset(), n);
  std::vector<float> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = sw.data[i] - learning_rate_ * gw.data[i];
  set_weights(w);
  if (s.biases() && s.bias_count() >= descriptor_.output_feature_channels) {
    const HostRange gb(g.gradient_for_biases(), 0, nout), sb(s.biases(), s.biases_offset(), nout);
    std::vector<float> b(nout);
    for (std::size_t o = 0; o < nout; ++o) b[o] = sb.data[o] - learning_rate_ * gb.data[o];
    set_biases(b);
  }
  return true;
}

ConvolutionWeightsAndBiasesState ArrayDataSource::update(CommandBuffer& cb, const ConvolutionGradientState& g,
                                                         const ConvolutionWeightsAndBiasesState& s) {
  check_update_shapes(descriptor_, g, s);
  const int64_t n = descriptor_.weight_elements();
  const int64_t nb = s.biases() ? std::min<int64_t>(s.bias_count(), descriptor_.output_feature_channels) : 0;
  const float lr = learning_rate_;
  cb.encode("ArrayDataSource SGD update", [g, s, n, nb, lr] {
    const HostRange gw(g.gradient_for_weights(), 0, static_cast<std::size_t>(n));
    HostRange w(s.weights(), s.weights_offset(), static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) w.data[i] -= lr * gw.data[i];
    w.write_back();
    if (nb > 0) {
      const HostRange gb(g.gradient_for_biases(), 0, static_cast<std::size_t>(nb));
      HostRange b(s.biases(), s.biases_offset(), static_cast<std::size_t>(nb));
      for (int64_t o = 0; o < nb; ++o) b.data[o] -= lr * gb.data[o];
      b.write_back();
    }
  });
  return s;
}

// ---------------------------------------------------------------- shared weight loading

namespace api {

void check_data_source(const ConvolutionDataSource& ds, const char* kernel) {
  if (ds.weights_layout() != WeightsLayout::ohwi)
    throw_unsupported(kernel, ": data source weights layout ", static_cast<uint32_t>(ds.weights_layout()),
                      " (only OHWI = 0 exists)");
  const DataType t = ds.data_type();
  if (t != DataType::float32 && t != DataType::float16 && t != DataType::bfloat16 && t != DataType::uint8)
    throw_unsupported(kernel, ": data source data type ", static_cast<uint32_t>(t), " is not supported");
  if (auto k = ds.kernel_weights_data_type()) {
    if (*k == DataType::float32 && t != DataType::float32)
      throw_invalid(kernel, ": kernel_weights_data_type() is float32 but data_type() is ", to_string(t),
                    " (float32 storage needs float32 weights)");
    if (*k == DataType::uint8) throw_invalid(kernel, ": kernel_weights_data_type() cannot be uint8");
  }
}

DataType storage_type_of(const ConvolutionDataSource& ds) {
  const auto k = ds.kernel_weights_data_type();
  return k ? *k : DataType::float32;  // e7: float32 unless fp16 (or bf16) is asked for
}

void round_to_storage(std::vector<float>& w, DataType storage) {
  if (storage == DataType::float16)
    for (float& v : w) v = core::f16_to_f32(core::f32_to_f16(v));
  else if (storage == DataType::bfloat16)
    for (float& v : w) v = core::bf16_to_f32(core::f32_to_bf16(v));
}

WeightStore load_weights(ConvolutionDataSource& ds, const ConvolutionDescriptor& desc, DataType storage, bool fold) {
  const int64_t n = desc.weight_elements();
  const int64_t nout = desc.output_feature_channels;
  if (!ds.load()) throw_invalid("data source '", ds.label(), "': load() returned false");
  WeightStore s;
  try {
    const void* w = ds.weights();
    if (w == nullptr) throw_invalid("data source '", ds.label(), "': weights() is null after load()");
    s.weights.resize(static_cast<std::size_t>(n));
    const DataType t = ds.data_type();
    if (t == DataType::uint8) {
      const uint8_t* u = static_cast<const uint8_t*>(w);
      const WeightsQuantizationType q = ds.weights_quantization_type();
      const int64_t per_o = n / nout;
      if (q == WeightsQuantizationType::linear) {
        const float* r = ds.ranges_for_uint8_kernel();
        if (r == nullptr) throw_invalid("data source '", ds.label(), "': linear uint8 weights need ranges_for_uint8_kernel()");
        for (int64_t i = 0; i < n; ++i) {
          const int64_t o = i / per_o;
          s.weights[i] = u[i] / 255.0f * (r[2 * o + 1] - r[2 * o]) + r[2 * o];
        }
      } else if (q == WeightsQuantizationType::lookup_table) {
        const float* lut = ds.lookup_table_for_uint8_kernel();
        if (lut == nullptr)
          throw_invalid("data source '", ds.label(), "': lookup-table uint8 weights need lookup_table_for_uint8_kernel()");
        for (int64_t i = 0; i < n; ++i) s.weights[i] = lut[u[i]];
      } else {
        for (int64_t i = 0; i < n; ++i) s.weights[i] = static_cast<float>(u[i]);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) s.weights[i] = core::load_as_f32(w, i, t);
    }
    s.biases.assign(static_cast<std::size_t>(nout), 0.0f);
    if (const float* b = ds.bias_terms()) {
      std::memcpy(s.biases.data(), b, static_cast<std::size_t>(nout) * sizeof(float));
      s.has_bias = true;
    }
  } catch (...) {
    ds.purge();
    throw;
  }
  ds.purge();
  if (fold && desc.batch_norm) {
    desc.fold_batch_norm(s.weights.data(), s.biases.data());
    s.has_bias = true;
  }
  round_to_storage(s.weights, storage);
  return s;
}

void validate_for_gradient(const ConvolutionDataSource& ds, const ConvolutionDescriptor& desc, const char* kernel) {
  desc.validate();
  if (desc.sub_pixel_scale_factor != 1)
    throw_invalid(kernel, ": sub-pixel scale factor must be 1 for a gradient kernel, got ", desc.sub_pixel_scale_factor);
  if (desc.depthwise) throw_invalid(kernel, ": depthwise descriptors are not supported by gradient kernels");
  if (desc.fused_neuron.type != NeuronType::none)
    throw_invalid(kernel, ": the descriptor fuses a ", to_string(desc.fused_neuron.type),
                  " neuron; gradient kernels do not apply the neuron derivative, so training through a fused neuron "
                  "would be wrong (e10): use an identity neuron and a separate neuron kernel");
  const DataType t = ds.data_type();
  if (t == DataType::uint8)
    throw_invalid(kernel, ": uint8 weights are for inference only and cannot be trained (e8)");
  check_data_source(ds, kernel);
}

}  // namespace api
}  // namespace tconv
