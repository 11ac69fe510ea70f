// ConvolutionTranspose (spec a.5, a.10, e7–e9, e11, e14): construction from a data source, sizing by
// padding policy (a.5.5 A) or by a paired convolution gradient state (B), every encode form of a.5.6,
// result states, weight export/reload, copy and coding.
//
// One encode = one canonical fwd problem: the destination view starts at the effective clip origin
// (clipRect ∩ destination), the source view at image offset.z and the source channel offset, and the
// total offset T = offset·s + kernelOffset (+ the part of the clip rectangle cut off by the destination's
// left/top edge) becomes the canonical padding T − h + (ke − 1) (core/mps_geometry.hpp).
#include "tconv/convolution_transpose.hpp"

#include <algorithm>
#include <sstream>

#include "api/internal.hpp"
#include "core/dtype.hpp"
#include "core/mps_geometry.hpp"
#include "cuda/backend.hpp"
#include "io/coder.hpp"

namespace tconv {

namespace {

constexpr const char* kName = "ConvolutionTranspose";


// Validates and encodes one forward pass with the kernel's current properties.
void encode_forward(const std::shared_ptr<ConvolutionTranspose::Impl>& kp, CommandBuffer& cb, const Image& src,
                    const Image& dst) {
  ConvolutionTranspose::Impl& k = *kp;
  const ConvolutionDescriptor& d = k.desc;
  const KernelProperties& p = k.props;
  if (src.empty()) api::throw_invalid(kName, ": the source image is empty");
  if (dst.empty()) api::throw_invalid(kName, ": the destination image is empty");
  api::require_same_device(k.device, src.device(), "the source image");
  api::require_same_device(k.device, dst.device(), "the destination image");
  api::require_same_device(k.device, cb.device(), "the command buffer");
  api::require_not_aliased(dst, src, "destination", "source");
  if (src.data_type() != dst.data_type())
    api::throw_unsupported(kName, ": source (", to_string(src.data_type()), ") and destination (",
                           to_string(dst.data_type()), ") images must have one data type");
  api::require_zero_edge(p.edge_mode, kName, "the");
  const int64_t nin = d.input_feature_channels, nout = d.output_feature_channels;
  api::require_channels(src, "source", p.source_feature_channel_offset, p.source_feature_channel_max_count, nin);
  api::require_channels(dst, "destination", p.destination_feature_channel_offset, all_channels, nout);

  const Region& c = p.clip_rect;
  const int64_t x0 = std::max<int64_t>(c.x, 0), y0 = std::max<int64_t>(c.y, 0);
  const int64_t x1 = std::min<int64_t>(c.x + c.width, dst.width()), y1 = std::min<int64_t>(c.y + c.height, dst.height());
  if (x1 <= x0 || y1 <= y0)
    api::throw_invalid(kName, ": clip rectangle origin (", c.x, ",", c.y, ") size ", c.width, "x", c.height,
                       " does not intersect the ", dst.width(), "x", dst.height(), " destination");
  if (c.z < 0 || c.z >= dst.number_of_images())
    api::throw_invalid(kName, ": clip rectangle image origin ", c.z, " is outside the destination's ",
                       dst.number_of_images(), " images");
  if (p.offset.z < 0 || p.offset.z >= src.number_of_images())
    api::throw_invalid(kName, ": offset.z ", p.offset.z, " is outside the source's ", src.number_of_images(), " images");
  if (c.depth <= 0) api::throw_invalid(kName, ": clip rectangle depth ", c.depth, " must be positive");
  const int64_t images =
      std::min({c.depth, dst.number_of_images() - c.z, src.number_of_images() - p.offset.z});

  const int64_t tx = p.offset.x * d.stride_x + p.kernel_offset_x + (x0 - c.x);
  const int64_t ty = p.offset.y * d.stride_y + p.kernel_offset_y + (y0 - c.y);
  core::Problem prob;
  prob.dir = core::Direction::fwd;
  core::Geometry& g = prob.g;
  g.n = images;
  g.c_in = nin;
  g.c_out = nout;
  g.groups = d.effective_groups();
  g.h_in = src.height();
  g.w_in = src.width();
  g.h_out = y1 - y0;
  g.w_out = x1 - x0;
  g.kh = d.kernel_height;
  g.kw = d.kernel_width;
  g.stride_h = d.stride_y;
  g.stride_w = d.stride_x;
  g.dil_h = d.dilation_y;
  g.dil_w = d.dilation_x;
  g.pad_h = core::mps::fwd_pad_from_total_offset(ty, d.kernel_height, d.dilation_y);
  g.pad_w = core::mps::fwd_pad_from_total_offset(tx, d.kernel_width, d.dilation_x);
  prob.act_type = src.data_type();
  prob.precision = p.precision;
  std::shared_ptr<WeightStore> w = api::snapshot(k.mu, k.weights);
  prob.with_bias = w->has_bias;
  prob.neuron = d.fused_neuron;

  core::Args a;
  a.src = api::image_view(src, p.offset.z, 0, 0, p.source_feature_channel_offset);
  a.dst = api::image_view(dst, c.z, y0, x0, p.destination_feature_channel_offset);
  api::BoundProblem bp = api::bind(k.device, prob, a, p.algorithm, p.allow_nondeterministic);
  const bool half = p.accumulator_precision == AccumulatorPrecision::half;
  Device queue = cb.device();  // the command runs on the command buffer's queue (its streams, its workspace slot)
  std::shared_ptr<api::WorkspaceCache> ws = k.workspace;
  cb.encode(k.label.empty() ? std::string(kName) : k.label, [bp, w, src, dst, half, queue, ws] {
    // The weights are read where they live: on a CUDA device the store's resident copies (uploaded when the
    // store was made, not here).
    api::BoundProblem b = bp;
    b.args.wei = w->run_weights();
    b.args.bias = w->has_bias ? w->run_biases() : nullptr;
    api::run_bound(queue, b, *ws, api::WorkspaceCache::main_stream);
    if (!half) return;
    const core::Geometry& g = b.problem.g;
    if (queue.kind() == DeviceKind::cuda) {
      core::throw_if_error(cuda_backend::epilogue(queue.ordinal(), api::queue_streams(queue).main, b.args.dst,
                                                  dst.data_type(), g.n, g.h_out, g.w_out, g.c_out, nullptr,
                                                  NeuronDescriptor{}, true));
      return;
    }
    api::round_view_through_f16(b.args.dst, dst.data_type(), g.n, g.h_out, g.w_out, g.c_out);
  });
}

// The paired state must come from a plain Convolution (its record holds that convolution's offset).
void check_conv_state(const ConvolutionTranspose::Impl& k, const ConvolutionGradientState& s) {
  GradientStateImpl& g = StateAccess::gradient(s);
  if (dynamic_cast<TransposeGradientStateImpl*>(&g) != nullptr)
    api::throw_invalid(kName, ": the convolution gradient state given was made by a ConvolutionTranspose; sizing needs "
                              "the state of the Convolution being undone");
  if (g.record.kernel_width != k.desc.kernel_width || g.record.kernel_height != k.desc.kernel_height)
    api::throw_invalid(kName, ": kernel size ", k.desc.kernel_width, "x", k.desc.kernel_height,
                       " differs from the paired convolution's ", g.record.kernel_width, "x", g.record.kernel_height);
}

ForwardRecord make_record(const ConvolutionTranspose::Impl& k, const Image& src, const Image& dst) {
  const ConvolutionDescriptor& d = k.desc;
  ForwardRecord r;
  r.kernel_width = d.kernel_width;
  r.kernel_height = d.kernel_height;
  r.stride_x = d.stride_x;
  r.stride_y = d.stride_y;
  r.dilation_x = d.dilation_x;
  r.dilation_y = d.dilation_y;
  r.input_feature_channels = d.input_feature_channels;
  r.output_feature_channels = d.output_feature_channels;
  r.groups = d.effective_groups();
  r.offset = k.props.offset;
  r.kernel_offset_x = k.props.kernel_offset_x;
  r.kernel_offset_y = k.props.kernel_offset_y;
  // The part of a clip rectangle that starts left of/above the destination is not written, so the first
  // written pixel (gY's origin) is further along by that amount.
  r.total_offset_x = k.props.offset.x * d.stride_x + k.props.kernel_offset_x + std::max<int64_t>(0, -k.props.clip_rect.x);
  r.total_offset_y = k.props.offset.y * d.stride_y + k.props.kernel_offset_y + std::max<int64_t>(0, -k.props.clip_rect.y);
  r.clip_rect = k.props.clip_rect;
  r.edge_mode = k.props.edge_mode;
  r.source_width = src.width();
  r.source_height = src.height();
  r.source_feature_channels = src.feature_channels();
  if (!dst.empty()) {  // the size of the region the forward writes: what gY must measure (a.7.3)
    const Region& c = k.props.clip_rect;
    r.destination_width = std::min<int64_t>(c.x + c.width, dst.width()) - std::max<int64_t>(c.x, 0);
    r.destination_height = std::min<int64_t>(c.y + c.height, dst.height()) - std::max<int64_t>(c.y, 0);
  }
  return r;
}

ConvolutionTransposeGradientState make_state(const std::shared_ptr<ConvolutionTranspose::Impl>& kp, const Image& src,
                                             const ConvolutionGradientStateBatch& source_states, const Image& dst,
                                             bool temporary) {
  ConvolutionTranspose::Impl& k = *kp;
  if (k.uint8_weights)
    api::throw_invalid(kName, ": uint8 weights are for inference only; a training state cannot be made (e8)");
  if (src.empty()) api::throw_invalid(kName, ": result state needs the source image");
  auto s = new_transpose_state_impl(k.device, k.desc, temporary);
  s->record = make_record(k, src, dst);
  s->transpose = kp;
  if (!source_states.empty() && source_states[0]) s->paired = source_states[0];
  return StateAccess::make_transpose(std::move(s));
}

void check_batch(std::size_t n, std::size_t states, std::size_t dsts, bool with_dsts) {
  if (n == 0) api::throw_invalid(kName, ": empty source batch");
  if (states != 0 && states != n)
    api::throw_invalid(kName, ": ", n, " source images but ", states, " convolution gradient states (give none or one each)");
  if (with_dsts && dsts != n) api::throw_invalid(kName, ": ", n, " source images but ", dsts, " destination images");
}

}  // namespace

// ---------------------------------------------------------------- construction and properties

ConvolutionTranspose::ConvolutionTranspose(const Device& device, std::shared_ptr<ConvolutionDataSource> ds) {
  if (!ds) api::throw_invalid(kName, ": the data source is null");
  auto k = std::make_shared<Impl>();
  k->device = device;
  k->desc = ds->descriptor();
  k->desc.validate();
  if (k->desc.sub_pixel_scale_factor != 1)
    api::throw_unsupported(kName, ": sub-pixel scale factor ", k->desc.sub_pixel_scale_factor,
                           " (pixel shuffle) is not implemented; use 1");
  api::check_data_source(*ds, kName);
  k->uint8_weights = ds->data_type() == DataType::uint8;
  k->storage = api::storage_type_of(*ds);
  k->weights = api::finished_store(api::load_weights(*ds, k->desc, k->storage, true), device, nullptr);
  k->label = ds->label();
  k->data_source = std::move(ds);
  impl_ = std::move(k);
}

ConvolutionTranspose::Impl& ConvolutionTranspose::impl() const {
  if (!impl_) api::throw_invalid("use of a null ConvolutionTranspose");
  return *impl_;
}

const Device& ConvolutionTranspose::device() const { return impl().device; }
std::string ConvolutionTranspose::label() const { return impl().label; }
void ConvolutionTranspose::set_label(std::string label) { impl().label = std::move(label); }
int64_t ConvolutionTranspose::input_feature_channels() const { return impl().desc.input_feature_channels; }
int64_t ConvolutionTranspose::output_feature_channels() const { return impl().desc.output_feature_channels; }
int64_t ConvolutionTranspose::groups() const { return impl().desc.effective_groups(); }
int64_t ConvolutionTranspose::kernel_width() const { return impl().desc.kernel_width; }
int64_t ConvolutionTranspose::kernel_height() const { return impl().desc.kernel_height; }
int64_t ConvolutionTranspose::stride_x() const { return impl().desc.stride_x; }
int64_t ConvolutionTranspose::stride_y() const { return impl().desc.stride_y; }
int64_t ConvolutionTranspose::dilation_x() const { return impl().desc.dilation_x; }
int64_t ConvolutionTranspose::dilation_y() const { return impl().desc.dilation_y; }
const ConvolutionDescriptor& ConvolutionTranspose::descriptor() const { return impl().desc; }
std::shared_ptr<ConvolutionDataSource> ConvolutionTranspose::data_source() const { return impl().data_source; }
KernelProperties& ConvolutionTranspose::properties() { return impl().props; }
const KernelProperties& ConvolutionTranspose::properties() const { return impl().props; }

// ---------------------------------------------------------------- sizing

ImageDescriptor ConvolutionTranspose::destination_image_descriptor(const ImageBatch& sources,
                                                                   const ConvolutionGradientStateBatch& states) {
  Impl& k = impl();
  if (sources.empty() || sources[0].empty()) api::throw_invalid(kName, ": sizing needs a source image");
  const Image& src = sources[0];
  const ConvolutionDescriptor& d = k.desc;
  ImageDescriptor out;
  out.feature_channels = d.output_feature_channels;
  out.number_of_images = src.number_of_images();
  out.data_type = src.data_type();
  if (!states.empty() && states[0]) {
    check_conv_state(k, states[0]);
    const ForwardRecord& r = states[0].forward();
    const auto ax = core::mps::size_by_conv_state(r.source_width, r.total_offset_x, d.kernel_width, d.stride_x, d.dilation_x);
    const auto ay = core::mps::size_by_conv_state(r.source_height, r.total_offset_y, d.kernel_height, d.stride_y, d.dilation_y);
    out.width = ax.out_size;
    out.height = ay.out_size;
    k.props.offset.x = ax.split.offset;
    k.props.offset.y = ay.split.offset;
    k.props.kernel_offset_x = ax.split.kernel_offset;
    k.props.kernel_offset_y = ay.split.kernel_offset;
  } else {
    const auto ax = core::mps::size_by_padding_policy(src.width(), d.kernel_width, d.stride_x, d.dilation_x, k.props.padding, false);
    const auto ay = core::mps::size_by_padding_policy(src.height(), d.kernel_height, d.stride_y, d.dilation_y, k.props.padding, true);
    out.width = ax.out_size;
    out.height = ay.out_size;
    // A custom padding policy keeps the offsets the caller set (MPSNNPadding's custom hook).
    if ((k.props.padding & padding::custom) == 0) {
      k.props.offset.x = ax.split.offset;
      k.props.offset.y = ay.split.offset;
      k.props.kernel_offset_x = ax.split.kernel_offset;
      k.props.kernel_offset_y = ay.split.kernel_offset;
    }
  }
  if (out.width <= 0 || out.height <= 0)
    api::throw_invalid(kName, ": a ", src.width(), "x", src.height(), " source gives a ", out.width, "x", out.height,
                       " result with padding policy ", k.props.padding, " (kernel ", d.kernel_width, "x", d.kernel_height, ")");
  return out;
}

// ---------------------------------------------------------------- encodes

Image ConvolutionTranspose::encode(CommandBuffer& cb, const Image& source) {
  return encode(cb, source, ConvolutionGradientState());
}

void ConvolutionTranspose::encode(CommandBuffer& cb, const Image& source, Image& destination) {
  impl();
  encode_forward(impl_, cb, source, destination);
}

Image ConvolutionTranspose::encode(CommandBuffer& cb, const Image& source, const ConvolutionGradientState& conv_state) {
  const ImageDescriptor desc = destination_image_descriptor({source}, {conv_state});
  Image dst(impl().device, desc);
  encode_forward(impl_, cb, source, dst);
  return dst;
}

void ConvolutionTranspose::encode(CommandBuffer& cb, const Image& source, const ConvolutionGradientState& conv_state,
                                  Image& destination) {
  if (conv_state) check_conv_state(impl(), conv_state);  // consumed only: no sizing (a.5.6)
  encode_forward(impl_, cb, source, destination);
}

ImageBatch ConvolutionTranspose::encode_batch(CommandBuffer& cb, const ImageBatch& sources,
                                              const ConvolutionGradientStateBatch& conv_states) {
  check_batch(sources.size(), conv_states.size(), 0, false);
  ImageBatch out;
  out.reserve(sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i)
    out.push_back(encode(cb, sources[i], conv_states.empty() ? ConvolutionGradientState() : conv_states[i]));
  return out;
}

void ConvolutionTranspose::encode_batch(CommandBuffer& cb, const ImageBatch& sources,
                                        const ConvolutionGradientStateBatch& conv_states, ImageBatch& destinations) {
  check_batch(sources.size(), conv_states.size(), destinations.size(), true);
  for (std::size_t i = 0; i < sources.size(); ++i)
    encode(cb, sources[i], conv_states.empty() ? ConvolutionGradientState() : conv_states[i], destinations[i]);
}

Image ConvolutionTranspose::encode(CommandBuffer& cb, const Image& source, const ConvolutionGradientState& conv_state,
                                   ConvolutionTransposeGradientState& destination_state, bool temporary) {
  const ImageDescriptor desc = destination_image_descriptor({source}, {conv_state});
  Image dst(impl().device, desc);
  ConvolutionTransposeGradientState st = make_state(impl_, source, {conv_state}, dst, temporary);
  encode_forward(impl_, cb, source, dst);
  destination_state = st;
  return dst;
}

ImageBatch ConvolutionTranspose::encode_batch(CommandBuffer& cb, const ImageBatch& sources,
                                              const ConvolutionGradientStateBatch& conv_states,
                                              ConvolutionTransposeGradientStateBatch& destination_states, bool temporary) {
  check_batch(sources.size(), conv_states.size(), 0, false);
  ImageBatch out;
  ConvolutionTransposeGradientState shared;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const ConvolutionGradientState cs = conv_states.empty() ? ConvolutionGradientState() : conv_states[i];
    const ImageDescriptor desc = destination_image_descriptor({sources[i]}, {cs});
    Image dst(impl().device, desc);
    if (i == 0) shared = make_state(impl_, sources[0], {cs}, dst, temporary);
    else if (sources[i].width() != sources[0].width() || sources[i].height() != sources[0].height())
      api::throw_invalid(kName, ": batch images must share one size to share a gradient state; image ", i, " is ",
                         sources[i].width(), "x", sources[i].height(), ", image 0 is ", sources[0].width(), "x",
                         sources[0].height());
    encode_forward(impl_, cb, sources[i], dst);
    out.push_back(dst);
  }
  destination_states.assign(sources.size(), shared);  // one state for the whole batch
  return out;
}

void ConvolutionTranspose::encode_to_state(CommandBuffer& cb, const Image& source,
                                           const ConvolutionTransposeGradientState& destination_state, Image& destination) {
  if (!destination_state) api::throw_invalid(kName, ": the destination state is null");
  TransposeGradientStateImpl& t = StateAccess::transpose(destination_state);
  if (t.transpose != impl_)
    api::throw_invalid(kName, ": the destination state was made by another ConvolutionTranspose");
  encode_forward(impl_, cb, source, destination);
}

Image ConvolutionTranspose::encode(CommandBuffer&, const Image&, ConvolutionTransposeGradientState&, bool) {
  api::throw_unsupported(kName, ": encode with a destination state but without a convolution gradient state argument "
                                "is not supported on the transpose (a.5.6); pass a (possibly null) ConvolutionGradientState");
}

// ---------------------------------------------------------------- state factories

ConvolutionTransposeGradientState ConvolutionTranspose::result_state(const Image& source,
                                                                     const ConvolutionGradientStateBatch& source_states,
                                                                     const Image& destination) {
  impl();
  return make_state(impl_, source, source_states, destination, false);
}

ConvolutionTransposeGradientStateBatch ConvolutionTranspose::result_state_batch(
    const ImageBatch& sources, const ConvolutionGradientStateBatch& source_states, const ImageBatch& destinations) {
  if (sources.empty()) api::throw_invalid(kName, ": empty source batch");
  const ConvolutionTransposeGradientState s = make_state(
      impl_, sources[0], source_states, destinations.empty() ? Image() : destinations[0], false);
  return ConvolutionTransposeGradientStateBatch(sources.size(), s);
}

ConvolutionTransposeGradientState ConvolutionTranspose::temporary_result_state(
    CommandBuffer& cb, const Image& source, const ConvolutionGradientStateBatch& source_states, const Image& destination) {
  api::require_same_device(impl().device, cb.device(), "the command buffer");
  return make_state(impl_, source, source_states, destination, true);
}

ConvolutionTransposeGradientStateBatch ConvolutionTranspose::temporary_result_state_batch(
    CommandBuffer& cb, const ImageBatch& sources, const ConvolutionGradientStateBatch& source_states,
    const ImageBatch& destinations) {
  if (sources.empty()) api::throw_invalid(kName, ": empty source batch");
  api::require_same_device(impl().device, cb.device(), "the command buffer");
  const ConvolutionTransposeGradientState s = make_state(
      impl_, sources[0], source_states, destinations.empty() ? Image() : destinations[0], true);
  return ConvolutionTransposeGradientStateBatch(sources.size(), s);
}

// ---------------------------------------------------------------- weights

ConvolutionWeightsAndBiasesState ConvolutionTranspose::export_weights_and_biases(CommandBuffer& cb, bool temporary) {
  Impl& k = impl();
  return api::encode_export_weights(cb, k.device, kName, k.desc, k.mu, k.weights, temporary, nullptr);
}

void ConvolutionTranspose::reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state) {
  Impl& k = impl();
  api::encode_reload_weights(cb, k.device, kName, k.desc, k.storage, k.mu, k.weights, state, nullptr);
}

void ConvolutionTranspose::reload_weights_and_biases_from_data_source() {
  Impl& k = impl();
  if (!k.data_source) api::throw_invalid(kName, ": no data source to reload from");
  auto fresh = api::finished_store(api::load_weights(*k.data_source, k.desc, k.storage, true), k.device, nullptr);
  std::lock_guard<std::mutex> lock(k.mu);
  k.weights = std::move(fresh);
}

void ConvolutionTranspose::reload_weights_and_biases_with_data_source(const std::shared_ptr<ConvolutionDataSource>&) {
  reload_weights_and_biases_from_data_source();
}

// Host reads: after a device-side reload they read the values back from the device (once per store).
std::vector<float> ConvolutionTranspose::current_weights() const {
  return api::snapshot(impl().mu, impl().weights)->host_weights();
}
std::vector<float> ConvolutionTranspose::current_biases() const {
  auto w = api::snapshot(impl().mu, impl().weights);
  return w->has_bias ? w->host_biases() : std::vector<float>{};
}

// ---------------------------------------------------------------- copy, coding, description

ConvolutionTranspose ConvolutionTranspose::copy_to(const Device& device) const {
  Impl& k = impl();
  auto c = std::make_shared<Impl>();
  c->device = device;
  c->label = k.label;
  c->data_source = k.data_source ? k.data_source->copy_to(device) : nullptr;
  c->desc = k.desc;
  c->props = k.props;
  c->storage = k.storage;
  c->uint8_weights = k.uint8_weights;
  // Its own weights (e11), resident on its own device (the copy reads them back from a device-side reload).
  c->weights = api::finished_store(*api::snapshot(k.mu, k.weights), device, nullptr);
  return ConvolutionTranspose(std::move(c));
}

void ConvolutionTranspose::encode_to(io::Encoder& e, const std::string& p) const {
  api::encode_unary_kernel(e, p, kName, impl());
}

ConvolutionTranspose ConvolutionTranspose::decode(const io::Decoder& d, const Device& device, const std::string& p) {
  api::check_class(d, kName, 1, p);
  const ConvolutionDescriptor desc = ConvolutionDescriptor::decode(d, p + "descriptor");
  ConvolutionTranspose k(device, api::decode_array_data_source(d, p, desc));
  k.impl().props = api::decode_kernel_properties(d, p + "properties");
  k.impl().label = d.get_string(p + "kernel.label");
  return k;
}

std::string ConvolutionTranspose::description() const { return api::describe_unary_kernel(kName, impl()); }

bool ConvolutionTranspose::equals(const ConvolutionTranspose& o) const {
  if (!impl_ || !o.impl_) return impl_ == o.impl_;
  return api::unary_kernels_equal(*impl_, *o.impl_);
}

}  // namespace tconv
