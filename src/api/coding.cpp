// Coding of the kernels' property sets (NSSecureCoding translated, spec a.10, e15) and their one-line
// descriptions. Every field is stored, so decode(encode(k)) has the same properties.
#include <sstream>

#include "api/internal.hpp"
#include "core/dtype.hpp"
#include "io/coder.hpp"

namespace tconv::api {

namespace {
void put_offset(io::Encoder& e, const std::string& k, const Offset& o) {
  e.set_int(k + ".x", o.x);
  e.set_int(k + ".y", o.y);
  e.set_int(k + ".z", o.z);
}
Offset get_offset(const io::Decoder& d, const std::string& k) {
  return Offset{d.get_int(k + ".x"), d.get_int(k + ".y"), d.get_int(k + ".z")};
}
void put_region(io::Encoder& e, const std::string& k, const Region& r) {
  e.set_int(k + ".x", r.x);
  e.set_int(k + ".y", r.y);
  e.set_int(k + ".z", r.z);
  e.set_int(k + ".width", r.width);
  e.set_int(k + ".height", r.height);
  e.set_int(k + ".depth", r.depth);
}
Region get_region(const io::Decoder& d, const std::string& k) {
  return Region{d.get_int(k + ".x"),     d.get_int(k + ".y"),      d.get_int(k + ".z"),
                d.get_int(k + ".width"), d.get_int(k + ".height"), d.get_int(k + ".depth")};
}
// Max counts are uint64 (all_channels = 2^64 − 1): stored as their text through a string.
void put_count(io::Encoder& e, const std::string& k, uint64_t v) { e.set_string(k, std::to_string(v)); }
uint64_t get_count(const io::Decoder& d, const std::string& k) {
  const std::string s = d.get_string(k);
  try {
    std::size_t used = 0;
    const unsigned long long v = std::stoull(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    throw Error(ErrorCode::format_error, "key '" + k + "' holds '" + s + "', not a channel count");
  }
}
template <class E>
E get_enum(const io::Decoder& d, const std::string& k, int64_t max) {
  const int64_t v = d.get_int(k);
  if (v < 0 || v > max) throw Error(ErrorCode::format_error, "key '" + k + "' holds " + std::to_string(v) + ", out of range");
  return static_cast<E>(v);
}
}  // namespace

void encode_properties(io::Encoder& e, const std::string& p, const KernelProperties& k) {
  put_offset(e, p + ".offset", k.offset);
  put_region(e, p + ".clip_rect", k.clip_rect);
  e.set_int(p + ".destination_feature_channel_offset", k.destination_feature_channel_offset);
  e.set_int(p + ".source_feature_channel_offset", k.source_feature_channel_offset);
  put_count(e, p + ".source_feature_channel_max_count", k.source_feature_channel_max_count);
  e.set_int(p + ".edge_mode", static_cast<int64_t>(k.edge_mode));
  e.set_int(p + ".padding", k.padding);
  e.set_int(p + ".kernel_offset_x", k.kernel_offset_x);
  e.set_int(p + ".kernel_offset_y", k.kernel_offset_y);
  e.set_int(p + ".accumulator_precision", static_cast<int64_t>(k.accumulator_precision));
  e.set_int(p + ".precision", static_cast<int64_t>(k.precision));
  e.set_string(p + ".algorithm", k.algorithm);
  e.set_bool(p + ".allow_nondeterministic", k.allow_nondeterministic);
}

KernelProperties decode_kernel_properties(const io::Decoder& d, const std::string& p) {
  KernelProperties k;
  k.offset = get_offset(d, p + ".offset");
  k.clip_rect = get_region(d, p + ".clip_rect");
  k.destination_feature_channel_offset = d.get_int(p + ".destination_feature_channel_offset");
  k.source_feature_channel_offset = d.get_int(p + ".source_feature_channel_offset");
  k.source_feature_channel_max_count = get_count(d, p + ".source_feature_channel_max_count");
  k.edge_mode = get_enum<EdgeMode>(d, p + ".edge_mode", 1);
  k.padding = static_cast<PaddingMethod>(get_enum<uint32_t>(d, p + ".padding", 0xffff));
  k.kernel_offset_x = d.get_int(p + ".kernel_offset_x");
  k.kernel_offset_y = d.get_int(p + ".kernel_offset_y");
  k.accumulator_precision = get_enum<AccumulatorPrecision>(d, p + ".accumulator_precision", 1);
  k.precision = get_enum<Precision>(d, p + ".precision", 3);
  k.algorithm = d.get_string(p + ".algorithm");
  k.allow_nondeterministic = d.get_bool(p + ".allow_nondeterministic");
  return k;
}

void encode_properties(io::Encoder& e, const std::string& p, const BinaryKernelProperties& k) {
  put_offset(e, p + ".primary_offset", k.primary_offset);
  put_offset(e, p + ".secondary_offset", k.secondary_offset);
  put_region(e, p + ".clip_rect", k.clip_rect);
  e.set_int(p + ".destination_feature_channel_offset", k.destination_feature_channel_offset);
  e.set_int(p + ".primary_source_feature_channel_offset", k.primary_source_feature_channel_offset);
  e.set_int(p + ".secondary_source_feature_channel_offset", k.secondary_source_feature_channel_offset);
  put_count(e, p + ".primary_source_feature_channel_max_count", k.primary_source_feature_channel_max_count);
  put_count(e, p + ".secondary_source_feature_channel_max_count", k.secondary_source_feature_channel_max_count);
  e.set_int(p + ".primary_edge_mode", static_cast<int64_t>(k.primary_edge_mode));
  e.set_int(p + ".secondary_edge_mode", static_cast<int64_t>(k.secondary_edge_mode));
  e.set_int(p + ".primary_stride_x", k.primary_stride_x);
  e.set_int(p + ".primary_stride_y", k.primary_stride_y);
  e.set_int(p + ".secondary_stride_x", k.secondary_stride_x);
  e.set_int(p + ".secondary_stride_y", k.secondary_stride_y);
  e.set_int(p + ".padding", k.padding);
  e.set_int(p + ".kernel_offset_x", k.kernel_offset_x);
  e.set_int(p + ".kernel_offset_y", k.kernel_offset_y);
  e.set_int(p + ".precision", static_cast<int64_t>(k.precision));
  e.set_string(p + ".algorithm", k.algorithm);
  e.set_bool(p + ".allow_nondeterministic", k.allow_nondeterministic);
}

BinaryKernelProperties decode_binary_properties(const io::Decoder& d, const std::string& p) {
  BinaryKernelProperties k;
  k.primary_offset = get_offset(d, p + ".primary_offset");
  k.secondary_offset = get_offset(d, p + ".secondary_offset");
  k.clip_rect = get_region(d, p + ".clip_rect");
  k.destination_feature_channel_offset = d.get_int(p + ".destination_feature_channel_offset");
  k.primary_source_feature_channel_offset = d.get_int(p + ".primary_source_feature_channel_offset");
  k.secondary_source_feature_channel_offset = d.get_int(p + ".secondary_source_feature_channel_offset");
  k.primary_source_feature_channel_max_count = get_count(d, p + ".primary_source_feature_channel_max_count");
  k.secondary_source_feature_channel_max_count = get_count(d, p + ".secondary_source_feature_channel_max_count");
  k.primary_edge_mode = get_enum<EdgeMode>(d, p + ".primary_edge_mode", 1);
  k.secondary_edge_mode = get_enum<EdgeMode>(d, p + ".secondary_edge_mode", 1);
  k.primary_stride_x = d.get_int(p + ".primary_stride_x");
  k.primary_stride_y = d.get_int(p + ".primary_stride_y");
  k.secondary_stride_x = d.get_int(p + ".secondary_stride_x");
  k.secondary_stride_y = d.get_int(p + ".secondary_stride_y");
  k.padding = static_cast<PaddingMethod>(get_enum<uint32_t>(d, p + ".padding", 0xffff));
  k.kernel_offset_x = d.get_int(p + ".kernel_offset_x");
  k.kernel_offset_y = d.get_int(p + ".kernel_offset_y");
  k.precision = get_enum<Precision>(d, p + ".precision", 3);
  k.algorithm = d.get_string(p + ".algorithm");
  k.allow_nondeterministic = d.get_bool(p + ".allow_nondeterministic");
  return k;
}

void check_class(const io::Decoder& d, const std::string& expected, int64_t max_version, const std::string& prefix) {
  const std::string cls = d.get_string(prefix + "kernel.class");
  if (cls != expected)
    throw Error(ErrorCode::format_error, "coded object is a '" + cls + "', expected a '" + expected + "'");
  const int64_t v = d.get_int(prefix + "kernel.version");
  if (v < 1 || v > max_version)
    throw Error(ErrorCode::format_error, expected + " version " + std::to_string(v) + " is not readable (this tconv reads 1.." +
                                             std::to_string(max_version) + ")");
}

void encode_data_source_weights(io::Encoder& e, const std::string& prefix, ConvolutionDataSource& ds,
                                const ConvolutionDescriptor& desc) {
  // As safetensors tensors PyTorch can read; uint8 (quantised) sources are stored dequantised as float32.
  WeightStore raw = load_weights(ds, desc, DataType::float32, false);
  const std::vector<int64_t> shape = {desc.output_feature_channels, desc.kernel_height, desc.kernel_width,
                                      desc.input_feature_channels / desc.effective_groups()};
  const DataType keep = ds.data_type() == DataType::uint8 ? DataType::float32 : ds.data_type();
  std::vector<uint8_t> bytes(raw.weights.size() * size_of(keep));
  for (std::size_t i = 0; i < raw.weights.size(); ++i)
    core::store_from_f32(bytes.data(), static_cast<int64_t>(i), keep, raw.weights[i]);
  e.set_tensor(prefix + "weights", keep, shape, bytes.data(), bytes.size());
  if (raw.has_bias)
    e.set_tensor(prefix + "biases", DataType::float32, {desc.output_feature_channels}, raw.biases.data(),
                 raw.biases.size() * 4);
  e.set_string(prefix + "datasource.label", ds.label());
  const auto kw = ds.kernel_weights_data_type();
  e.set_int(prefix + "datasource.kernel_weights_data_type", kw ? static_cast<int64_t>(*kw) : 0);
}

namespace {
std::vector<float> tensor_floats(const io::Tensor& t, int64_t expected, const std::string& key) {
  if (t.elements() != expected)
    throw Error(ErrorCode::format_error, "tensor '" + key + "' has " + std::to_string(t.elements()) +
                                             " elements; the descriptor needs " + std::to_string(expected));
  if (t.dtype != DataType::float32 && t.dtype != DataType::float16 && t.dtype != DataType::bfloat16)
    throw Error(ErrorCode::format_error, "tensor '" + key + "' has unsupported type " + std::string(to_string(t.dtype)));
  std::vector<float> v(static_cast<std::size_t>(expected));
  for (int64_t i = 0; i < expected; ++i) v[static_cast<std::size_t>(i)] = core::load_as_f32(t.data.data(), i, t.dtype);
  return v;
}
}  // namespace

std::shared_ptr<ConvolutionDataSource> decode_array_data_source(const io::Decoder& d, const std::string& prefix,
                                                                const ConvolutionDescriptor& desc) {
  const io::Tensor& wt = d.get_tensor(prefix + "weights");
  std::vector<float> w = tensor_floats(wt, desc.weight_elements(), prefix + "weights");
  std::vector<float> b;
  if (d.has(prefix + "biases"))
    b = tensor_floats(d.get_tensor(prefix + "biases"), desc.output_feature_channels, prefix + "biases");
  auto ds = std::make_shared<ArrayDataSource>(desc, std::move(w), std::move(b), wt.dtype,
                                              d.get_string(prefix + "datasource.label"));
  const int64_t kw = d.get_int(prefix + "datasource.kernel_weights_data_type");
  if (kw != 0) ds->set_kernel_weights_data_type(static_cast<DataType>(kw));
  return ds;
}

namespace {
std::string region_text(const Region& r) {
  if (r.is_no_clip()) return "no clip";
  std::ostringstream os;
  os << "(" << r.x << "," << r.y << "," << r.z << " " << r.width << "x" << r.height << "x" << r.depth << ")";
  return os.str();
}
std::string count_text(uint64_t c) { return c == all_channels ? std::string("all") : std::to_string(c); }
}  // namespace

std::string describe_properties(const KernelProperties& k) {
  std::ostringstream os;
  os << "offset (" << k.offset.x << "," << k.offset.y << "," << k.offset.z << "), kernel offset (" << k.kernel_offset_x
     << "," << k.kernel_offset_y << "), clip " << region_text(k.clip_rect) << ", channels src+" << k.source_feature_channel_offset
     << " (max " << count_text(k.source_feature_channel_max_count) << ") dst+" << k.destination_feature_channel_offset
     << ", padding " << k.padding << ", accumulator " << (k.accumulator_precision == AccumulatorPrecision::half ? "half" : "float")
     << ", precision " << to_string(k.precision);
  if (!k.algorithm.empty()) os << ", algorithm " << k.algorithm;
  return os.str();
}

std::string describe_properties(const BinaryKernelProperties& k) {
  std::ostringstream os;
  os << "primary offset (" << k.primary_offset.x << "," << k.primary_offset.y << "," << k.primary_offset.z
     << "), secondary offset (" << k.secondary_offset.x << "," << k.secondary_offset.y << "," << k.secondary_offset.z
     << "), kernel offset (" << k.kernel_offset_x << "," << k.kernel_offset_y << "), clip " << region_text(k.clip_rect)
     << ", channels gY+" << k.primary_source_feature_channel_offset << " X+" << k.secondary_source_feature_channel_offset
     << " dst+" << k.destination_feature_channel_offset << ", strides " << k.primary_stride_x << "x" << k.primary_stride_y
     << "/" << k.secondary_stride_x << "x" << k.secondary_stride_y << ", precision " << to_string(k.precision);
  if (!k.algorithm.empty()) os << ", algorithm " << k.algorithm;
  return os.str();
}

}  // namespace tconv::api
