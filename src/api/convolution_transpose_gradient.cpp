// ConvolutionTransposeGradient (spec a.6–a.7, a.10, e3–e5, e9–e11, e14).
//
// One encode = up to two canonical problems on the same gY:
//   data gradient  (gradient_option bit 1): bwd_data, diff_dst = gY from the primary offset's image and
//                  channel, diff_src = the destination's clip region; canonical pad = h − P (a.7.5), where
//                  P = primaryOffset (+ stride × the part of the clip rectangle cut off by the image edge);
//   weight/bias gradient (bit 2): bwd_weights, src = X at the secondary offset's image and channel, diff_dst
//                  = gY; canonical pad = K + s·S + ke − 1, into the state's float32 OHWI buffers.
// The first weight-gradient encode into a state overwrites its buffers, later ones add (e4): decided at
// encode time, so the order is the command buffers' order.
// On a CUDA device with both gradients asked for, the two problems run at the same time: the data gradient
// on the queue's main stream, the weight/bias gradient on its side stream, forked after the main stream's
// earlier work and joined back before the next command (api::CudaStreams). They write disjoint outputs and
// each algorithm is deterministic, so the results do not depend on the overlap.
#include "tconv/convolution_transpose_gradient.hpp"

#include <algorithm>
#include <sstream>

#include "api/internal.hpp"
#include "core/mps_geometry.hpp"
#include "cuda/backend.hpp"
#include "io/coder.hpp"

namespace tconv {

namespace {

constexpr const char* kName = "ConvolutionTransposeGradient";

bool weight_shape_mismatch(const ConvolutionDescriptor& a, const ConvolutionDescriptor& b) {
  return a.output_feature_channels != b.output_feature_channels || a.input_feature_channels != b.input_feature_channels ||
         a.kernel_width != b.kernel_width || a.kernel_height != b.kernel_height ||
         a.effective_groups() != b.effective_groups();
}

// Takes the weights from the state's forward kernel's data source on first use after decoding (a.10).
std::shared_ptr<WeightStore> weights_for(ConvolutionTransposeGradient::Impl& k, const TransposeGradientStateImpl& st) {
  {
    std::lock_guard<std::mutex> lock(k.mu);
    if (k.weights) return k.weights;
  }
  if (!st.transpose || !st.transpose->data_source)
    api::throw_invalid(kName, ": a decoded gradient kernel takes its weights from the state's ConvolutionTranspose, "
                              "but that kernel has no data source");
  std::shared_ptr<ConvolutionDataSource> ds = st.transpose->data_source;
  const ConvolutionDescriptor d = ds->descriptor();
  if (weight_shape_mismatch(d, k.desc))
    api::throw_invalid(kName, ": the forward kernel's data source describes ", d.describe(), " but this kernel was ",
                       k.desc.describe());
  api::validate_for_gradient(*ds, d, kName);
  const DataType storage = api::storage_type_of(*ds);
  auto w = api::finished_store(api::load_weights(*ds, k.desc, storage, false), k.device, nullptr);
  std::lock_guard<std::mutex> lock(k.mu);
  if (!k.weights) {
    k.weights = w;
    k.storage = storage;
    k.data_source = ds;
  }
  return k.weights;
}

struct Window {
  int64_t x0, y0, x1, y1;
};
Window clip_window(const Region& c, const Image& dst) {
  Window w{std::max<int64_t>(c.x, 0), std::max<int64_t>(c.y, 0), std::min<int64_t>(c.x + c.width, dst.width()),
           std::min<int64_t>(c.y + c.height, dst.height())};
  if (w.x1 <= w.x0 || w.y1 <= w.y0)
    api::throw_invalid(kName, ": clip rectangle origin (", c.x, ",", c.y, ") size ", c.width, "x", c.height,
                       " does not intersect the ", dst.width(), "x", dst.height(), " destination gradient");
  return w;
}

void encode_gradient(const std::shared_ptr<ConvolutionTransposeGradient::Impl>& kp, CommandBuffer& cb, const Image& gy,
                     const Image& x, const ConvolutionTransposeGradientState& state, const Image& dst) {
  ConvolutionTransposeGradient::Impl& k = *kp;
  const ConvolutionDescriptor& d = k.desc;
  const BinaryKernelProperties& p = k.props;
  if (gy.empty()) api::throw_invalid(kName, ": the source gradient image is empty");
  if (x.empty()) api::throw_invalid(kName, ": the source image is empty");
  if (!state) api::throw_invalid(kName, ": the gradient state is null");
  TransposeGradientStateImpl& st = StateAccess::transpose(state);
  if (weight_shape_mismatch(st.descriptor, d))
    api::throw_invalid(kName, ": the gradient state belongs to a ", st.descriptor.describe(), " kernel; this kernel is ",
                       d.describe());
  api::require_same_device(k.device, cb.device(), "the command buffer");
  api::require_same_device(k.device, gy.device(), "the source gradient image");
  api::require_same_device(k.device, x.device(), "the source image");
  api::require_same_device(k.device, state.gradient_for_weights().device(), "the gradient state");
  api::require_zero_edge(p.primary_edge_mode, kName, "the primary");
  api::require_zero_edge(p.secondary_edge_mode, kName, "the secondary");
  if (gy.data_type() != x.data_type())
    api::throw_unsupported(kName, ": source gradient (", to_string(gy.data_type()), ") and source image (",
                           to_string(x.data_type()), ") must have one data type");
  const int64_t nin = d.input_feature_channels, nout = d.output_feature_channels;
  api::require_channels(gy, "source gradient", p.primary_source_feature_channel_offset,
                        p.primary_source_feature_channel_max_count, nout);
  api::require_channels(x, "source", p.secondary_source_feature_channel_offset,
                        p.secondary_source_feature_channel_max_count, nin);
  for (int64_t s : {p.primary_stride_x, p.primary_stride_y, p.secondary_stride_x, p.secondary_stride_y})
    if (s <= 0) api::throw_invalid(kName, ": strides must be positive, got ", s);
  if (p.primary_offset.z < 0 || p.primary_offset.z >= gy.number_of_images())
    api::throw_invalid(kName, ": primary offset z ", p.primary_offset.z, " is outside the source gradient's ",
                       gy.number_of_images(), " images");
  if (p.secondary_offset.z < 0 || p.secondary_offset.z >= x.number_of_images())
    api::throw_invalid(kName, ": secondary offset z ", p.secondary_offset.z, " is outside the source image's ",
                       x.number_of_images(), " images");
  const int64_t images = std::min(gy.number_of_images() - p.primary_offset.z, x.number_of_images() - p.secondary_offset.z);
  const bool want_data = has_data(k.option), want_weights = has_weights(k.option);
  std::shared_ptr<WeightStore> w = weights_for(k, st);

  std::optional<api::BoundProblem> data_work, weights_work;
  if (want_data) {
    if (dst.empty()) api::throw_invalid(kName, ": gradient option includes data but the destination gradient is empty");
    api::require_same_device(k.device, dst.device(), "the destination gradient image");
    api::require_not_aliased(dst, gy, "destination gradient", "source gradient");
    api::require_not_aliased(dst, x, "destination gradient", "source");
    if (dst.data_type() != gy.data_type())
      api::throw_unsupported(kName, ": destination gradient (", to_string(dst.data_type()), ") and source gradient (",
                             to_string(gy.data_type()), ") must have one data type");
    api::require_channels(dst, "destination gradient", p.destination_feature_channel_offset, all_channels, nin);
    const Region& c = p.clip_rect;
    const Window win = clip_window(c, dst);
    if (c.z < 0 || c.z >= dst.number_of_images())
      api::throw_invalid(kName, ": clip rectangle image origin ", c.z, " is outside the destination's ",
                         dst.number_of_images(), " images");
    if (c.depth <= 0) api::throw_invalid(kName, ": clip rectangle depth ", c.depth, " must be positive");
    core::Problem prob;
    prob.dir = core::Direction::bwd_data;
    core::Geometry& g = prob.g;
    g.n = std::min({images, c.depth, dst.number_of_images() - c.z});
    g.c_in = nin;
    g.c_out = nout;
    g.groups = d.effective_groups();
    g.h_in = win.y1 - win.y0;
    g.w_in = win.x1 - win.x0;
    g.h_out = gy.height();
    g.w_out = gy.width();
    g.kh = d.kernel_height;
    g.kw = d.kernel_width;
    g.stride_h = p.primary_stride_y;
    g.stride_w = p.primary_stride_x;
    g.dil_h = d.dilation_y;
    g.dil_w = d.dilation_x;
    g.pad_h = core::mps::bwd_data_pad(p.primary_offset.y + p.primary_stride_y * (win.y0 - c.y), d.kernel_height, d.dilation_y);
    g.pad_w = core::mps::bwd_data_pad(p.primary_offset.x + p.primary_stride_x * (win.x0 - c.x), d.kernel_width, d.dilation_x);
    prob.act_type = gy.data_type();
    prob.precision = p.precision;
    core::Args a;
    a.diff_dst = api::image_view(gy, p.primary_offset.z, 0, 0, p.primary_source_feature_channel_offset);
    a.diff_src = api::image_view(dst, c.z, win.y0, win.x0, p.destination_feature_channel_offset);
    data_work = api::bind(k.device, prob, a, p.algorithm, p.allow_nondeterministic);  // weights: at run time
  }
  if (want_weights) {
    core::Problem prob;
    prob.dir = core::Direction::bwd_weights;
    core::Geometry& g = prob.g;
    g.n = images;
    g.c_in = nin;
    g.c_out = nout;
    g.groups = d.effective_groups();
    g.h_in = x.height();
    g.w_in = x.width();
    g.h_out = gy.height();
    g.w_out = gy.width();
    g.kh = d.kernel_height;
    g.kw = d.kernel_width;
    g.stride_h = p.secondary_stride_y;
    g.stride_w = p.secondary_stride_x;
    g.dil_h = d.dilation_y;
    g.dil_w = d.dilation_x;
    g.pad_h = core::mps::bwd_weights_pad(p.kernel_offset_y, p.secondary_offset.y, d.kernel_height, p.secondary_stride_y,
                                         d.dilation_y);
    g.pad_w = core::mps::bwd_weights_pad(p.kernel_offset_x, p.secondary_offset.x, d.kernel_width, p.secondary_stride_x,
                                         d.dilation_x);
    prob.act_type = gy.data_type();
    prob.precision = p.precision;
    prob.with_bias = true;
    core::Args a;
    a.src = api::image_view(x, p.secondary_offset.z, 0, 0, p.secondary_source_feature_channel_offset);
    a.diff_dst = api::image_view(gy, p.primary_offset.z, 0, 0, p.primary_source_feature_channel_offset);
    a.diff_wei = static_cast<float*>(state.gradient_for_weights().device_pointer());
    a.diff_bias = static_cast<float*>(state.gradient_for_biases().device_pointer());
    {
      std::lock_guard<std::mutex> lock(st.mu);
      prob.accumulate = st.initialised;  // e4: the first encode into a fresh state writes, later ones add
      weights_work = api::bind(k.device, prob, a, p.algorithm, p.allow_nondeterministic);
      st.initialised = true;
    }
  }
  Device queue = cb.device();  // the command runs on the command buffer's queue (its streams, its workspace slots)
  std::shared_ptr<api::WorkspaceCache> ws = k.workspace;
  cb.encode(k.label.empty() ? std::string(kName) : k.label, [data_work, weights_work, w, gy, x, dst, state, queue, ws] {
    std::optional<api::BoundProblem> data = data_work;
    if (data) data->args.wei = w->run_weights();  // resident on the device there (uploaded with the store)
    if (queue.kind() != DeviceKind::cuda || !data || !weights_work) {
      if (data) api::run_bound(queue, *data, *ws, api::WorkspaceCache::main_stream);
      if (weights_work) api::run_bound(queue, *weights_work, *ws, api::WorkspaceCache::main_stream);
      return;
    }
    // Both gradients on CUDA: fork the side stream off the main stream (so it starts after the inputs'
    // producers), run dW/db there and dX on main, then make main wait for the side stream (so later commands
    // see both). Each has its own workspace slot.
    const int d = queue.ordinal();
    const api::CudaStreams& s = api::queue_streams(queue);
    core::throw_if_error(cuda_backend::event_record(d, s.fork, s.main));
    core::throw_if_error(cuda_backend::stream_wait_event(d, s.side, s.fork));
    api::run_bound(queue, *weights_work, *ws, api::WorkspaceCache::side_stream, s.side);
    api::run_bound(queue, *data, *ws, api::WorkspaceCache::main_stream, s.main);
    core::throw_if_error(cuda_backend::event_record(d, s.join, s.side));
    core::throw_if_error(cuda_backend::stream_wait_event(d, s.main, s.join));
  });
}

void check_batch(std::size_t gys, std::size_t xs, std::size_t states) {
  if (gys == 0) api::throw_invalid(kName, ": empty batch");
  if (xs != gys || states != gys)
    api::throw_invalid(kName, ": batch arrays differ in length: ", gys, " source gradients, ", xs, " source images, ",
                       states, " gradient states");
}

}  // namespace

// ---------------------------------------------------------------- construction and properties

ConvolutionTransposeGradient::ConvolutionTransposeGradient(const Device& device, std::shared_ptr<ConvolutionDataSource> ds) {
  if (!ds) api::throw_invalid(kName, ": the data source is null");
  auto k = std::make_shared<Impl>();
  k->device = device;
  k->desc = ds->descriptor();
  api::validate_for_gradient(*ds, k->desc, kName);
  k->storage = api::storage_type_of(*ds);
  k->weights = api::finished_store(api::load_weights(*ds, k->desc, k->storage, false), device, nullptr);
  k->props.primary_stride_x = k->props.secondary_stride_x = k->desc.stride_x;
  k->props.primary_stride_y = k->props.secondary_stride_y = k->desc.stride_y;
  k->label = ds->label();
  k->data_source = std::move(ds);
  impl_ = std::move(k);
}

ConvolutionTransposeGradient::Impl& ConvolutionTransposeGradient::impl() const {
  if (!impl_) api::throw_invalid("use of a null ConvolutionTransposeGradient");
  return *impl_;
}

const Device& ConvolutionTransposeGradient::device() const { return impl().device; }
std::string ConvolutionTransposeGradient::label() const { return impl().label; }
void ConvolutionTransposeGradient::set_label(std::string label) { impl().label = std::move(label); }
std::shared_ptr<ConvolutionDataSource> ConvolutionTransposeGradient::data_source() const {
  std::lock_guard<std::mutex> lock(impl().mu);
  return impl().data_source;
}
GradientOption ConvolutionTransposeGradient::gradient_option() const { return impl().option; }
void ConvolutionTransposeGradient::set_gradient_option(GradientOption o) {
  const uint32_t v = static_cast<uint32_t>(o);
  if (v < 1 || v > 3) api::throw_invalid(kName, ": gradient option ", v, " is not 1 (data), 2 (weights and bias) or 3 (all)");
  impl().option = o;
}
int64_t ConvolutionTransposeGradient::groups() const { return impl().desc.effective_groups(); }
int64_t ConvolutionTransposeGradient::source_gradient_feature_channels() const { return impl().desc.output_feature_channels; }
int64_t ConvolutionTransposeGradient::source_image_feature_channels() const { return impl().desc.input_feature_channels; }
int64_t ConvolutionTransposeGradient::kernel_width() const { return impl().desc.kernel_width; }
int64_t ConvolutionTransposeGradient::kernel_height() const { return impl().desc.kernel_height; }
int64_t ConvolutionTransposeGradient::primary_dilation_rate_x() const { return impl().desc.dilation_x; }
int64_t ConvolutionTransposeGradient::primary_dilation_rate_y() const { return impl().desc.dilation_y; }
const ConvolutionDescriptor& ConvolutionTransposeGradient::descriptor() const { return impl().desc; }
BinaryKernelProperties& ConvolutionTransposeGradient::properties() { return impl().props; }
const BinaryKernelProperties& ConvolutionTransposeGradient::properties() const { return impl().props; }

// ---------------------------------------------------------------- configuration (a.7.4)

ImageDescriptor ConvolutionTransposeGradient::destination_image_descriptor(
    const ImageBatch& sources, const ConvolutionTransposeGradientStateBatch& states) {
  Impl& k = impl();
  if (states.empty() || !states[0])
    api::throw_invalid(kName, ": configuration needs the transpose gradient state of the forward encode");
  if (sources.empty() || sources[0].empty()) api::throw_invalid(kName, ": configuration needs the source gradient image");
  const ForwardRecord& r = StateAccess::transpose(states[0]).record;
  const ConvolutionDescriptor& d = k.desc;
  const Image& gy = sources[0];
  if (r.destination_width > 0 && (gy.width() != r.destination_width || gy.height() != r.destination_height))
    api::throw_invalid(kName, ": the source gradient is ", gy.width(), "x", gy.height(), " but the forward wrote ",
                       r.destination_width, "x", r.destination_height,
                       "; gY must have exactly the forward's clip size (crop any padding first, a.7.3)");
  // e3: the parity of the dilated window.
  k.props.primary_offset.x = core::mps::auto_primary_offset(r.total_offset_x, d.kernel_width, d.dilation_x);
  k.props.primary_offset.y = core::mps::auto_primary_offset(r.total_offset_y, d.kernel_height, d.dilation_y);
  k.props.kernel_offset_x = core::mps::auto_kernel_offset(r.total_offset_x, d.kernel_width, d.dilation_x);
  k.props.kernel_offset_y = core::mps::auto_kernel_offset(r.total_offset_y, d.kernel_height, d.dilation_y);
  k.props.secondary_offset.x = 0;
  k.props.secondary_offset.y = 0;
  ImageDescriptor out;
  out.width = r.source_width;
  out.height = r.source_height;
  out.feature_channels = d.input_feature_channels;
  out.number_of_images = sources[0].number_of_images();
  out.data_type = sources[0].data_type();
  return out;
}

// ---------------------------------------------------------------- encodes

Image ConvolutionTransposeGradient::encode(CommandBuffer& cb, const Image& gy, const Image& x,
                                           const ConvolutionTransposeGradientState& state) {
  const ImageDescriptor desc = destination_image_descriptor({gy, x}, {state});
  Image dst;
  if (has_data(impl().option)) dst = Image(impl().device, desc);  // e5: weights-only returns an empty image
  encode_gradient(impl_, cb, gy, x, state, dst);
  return dst;
}

void ConvolutionTransposeGradient::encode(CommandBuffer& cb, const Image& gy, const Image& x,
                                          const ConvolutionTransposeGradientState& state, Image& destination) {
  impl();
  encode_gradient(impl_, cb, gy, x, state, destination);
}

ImageBatch ConvolutionTransposeGradient::encode_batch(CommandBuffer& cb, const ImageBatch& gys, const ImageBatch& xs,
                                                      const ConvolutionTransposeGradientStateBatch& states) {
  check_batch(gys.size(), xs.size(), states.size());
  ImageBatch out;
  for (std::size_t i = 0; i < gys.size(); ++i) out.push_back(encode(cb, gys[i], xs[i], states[i]));
  return out;
}

void ConvolutionTransposeGradient::encode_batch(CommandBuffer& cb, const ImageBatch& gys, const ImageBatch& xs,
                                                const ConvolutionTransposeGradientStateBatch& states, ImageBatch& dsts) {
  check_batch(gys.size(), xs.size(), states.size());
  if (dsts.size() != gys.size())
    api::throw_invalid(kName, ": ", gys.size(), " source gradients but ", dsts.size(), " destination gradients");
  for (std::size_t i = 0; i < gys.size(); ++i) encode(cb, gys[i], xs[i], states[i], dsts[i]);
}

// ---------------------------------------------------------------- weights (a.7.7)

void ConvolutionTransposeGradient::reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state) {
  Impl& k = impl();  // biases play no part in the gradient: the state's are not read (device-side on CUDA)
  api::encode_reload_weights(cb, k.device, kName, k.desc, k.storage, k.mu, k.weights, state, nullptr, false);
}

void ConvolutionTransposeGradient::reload_weights_and_biases_from_data_source() {
  Impl& k = impl();
  std::shared_ptr<ConvolutionDataSource> ds = data_source();
  if (!ds) api::throw_invalid(kName, ": no data source to reload from (a decoded kernel adopts one on its first encode)");
  auto fresh = api::finished_store(api::load_weights(*ds, k.desc, k.storage, false), k.device, nullptr);
  std::lock_guard<std::mutex> lock(k.mu);
  k.weights = std::move(fresh);
}

std::vector<float> ConvolutionTransposeGradient::current_weights() const {
  auto w = api::snapshot(impl().mu, impl().weights);
  return w ? w->host_weights() : std::vector<float>{};
}

// ---------------------------------------------------------------- copy, coding, description

ConvolutionTransposeGradient ConvolutionTransposeGradient::copy_to(const Device& device) const {
  Impl& k = impl();
  auto c = std::make_shared<Impl>();
  c->device = device;
  c->label = k.label;
  c->desc = k.desc;
  c->props = k.props;
  c->option = k.option;
  c->storage = k.storage;
  std::lock_guard<std::mutex> lock(k.mu);
  c->data_source = k.data_source ? k.data_source->copy_to(device) : nullptr;
  if (k.weights) c->weights = api::finished_store(*k.weights, device, nullptr);  // its own weights (e11), on its device
  return ConvolutionTransposeGradient(std::move(c));
}

void ConvolutionTransposeGradient::encode_to(io::Encoder& e, const std::string& p) const {
  Impl& k = impl();
  e.set_string(p + "kernel.class", kName);
  e.set_int(p + "kernel.version", 1);
  e.set_string(p + "kernel.label", k.label);
  k.desc.encode_to(e, p + "descriptor");
  api::encode_properties(e, p + "properties", k.props);
  e.set_int(p + "gradient_option", static_cast<int64_t>(k.option));
}

ConvolutionTransposeGradient ConvolutionTransposeGradient::decode(const io::Decoder& d, const Device& device,
                                                                  const std::string& p) {
  api::check_class(d, kName, 1, p);
  auto k = std::make_shared<Impl>();
  k->device = device;
  k->desc = ConvolutionDescriptor::decode(d, p + "descriptor");
  if (k->desc.sub_pixel_scale_factor != 1 || k->desc.depthwise || k->desc.fused_neuron.type != NeuronType::none)
    throw Error(ErrorCode::format_error, std::string(kName) + ": decoded descriptor (" + k->desc.describe() +
                                             ") is not valid for a gradient kernel");
  k->props = api::decode_binary_properties(d, p + "properties");
  const int64_t opt = d.get_int(p + "gradient_option");
  if (opt < 1 || opt > 3) throw Error(ErrorCode::format_error, "gradient_option " + std::to_string(opt) + " is out of range");
  k->option = static_cast<GradientOption>(opt);
  k->label = d.get_string(p + "kernel.label");
  return ConvolutionTransposeGradient(std::move(k));  // no data source, no weights until the first encode
}

std::string ConvolutionTransposeGradient::description() const {
  Impl& k = impl();
  std::ostringstream os;
  os << kName << " '" << k.label << "' on " << k.device.name() << ": " << k.desc.describe() << "; gradient option "
     << static_cast<uint32_t>(k.option) << "; " << api::describe_properties(k.props);
  return os.str();
}

bool ConvolutionTransposeGradient::equals(const ConvolutionTransposeGradient& o) const {
  if (!impl_ || !o.impl_) return impl_ == o.impl_;
  if (impl_ == o.impl_) return true;
  if (!(impl_->desc == o.impl_->desc) || !(impl_->props == o.impl_->props) || impl_->option != o.impl_->option ||
      impl_->label != o.impl_->label)
    return false;
  auto wa = api::snapshot(impl_->mu, impl_->weights), wb = api::snapshot(o.impl_->mu, o.impl_->weights);
  if (!wa || !wb) return !wa && !wb;
  return wa->host_weights() == wb->host_weights();
}

}  // namespace tconv
