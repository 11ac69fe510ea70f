// Convolution and ConvolutionGradient (MPSCNNConvolution / MPSCNNConvolutionGradient), for the auto-encoder
// pairing of spec a.5.5 B. The plain convolution is run as canonical transposed-convolution problems through
// core/direction.hpp (conv fwd = transpose bwd_data, conv dX = transpose fwd, conv dW = transpose
// bwd_weights with the weights rotated and their channels swapped); its bias, fused neuron and bias gradient
// are applied here since the mapping leaves them out. MPS offset → PyTorch padding: pad = h − offset.
// The kernels keep their weights in the canonical (transpose) layout too, converted once per weight store
// (api::finish_store, or on the device by a reload from a device-resident state), and on a CUDA device resident
// there; the bias, neuron and bias gradient run as device
// kernels (cuda/api_kernels.cu) on the queue's streams, so no command stages an image through the host.
#include "tconv/convolution.hpp"

#include <algorithm>
#include <sstream>

#include "api/internal.hpp"
#include "core/direction.hpp"
#include "core/dtype.hpp"
#include "core/mps_geometry.hpp"
#include "core/neuron.hpp"
#include "cuda/backend.hpp"
#include "io/coder.hpp"

namespace tconv {

namespace {

constexpr const char* kConv = "Convolution";
constexpr const char* kGrad = "ConvolutionGradient";

core::ConvGeometry base_geometry(const ConvolutionDescriptor& d) {
  core::ConvGeometry c;
  c.c_in = d.input_feature_channels;
  c.c_out = d.output_feature_channels;
  c.groups = d.effective_groups();
  c.kh = d.kernel_height;
  c.kw = d.kernel_width;
  c.stride_h = d.stride_y;
  c.stride_w = d.stride_x;
  c.dil_h = d.dilation_y;
  c.dil_w = d.dilation_x;
  return c;
}

void encode_conv_forward(const std::shared_ptr<Convolution::Impl>& kp, CommandBuffer& cb, const Image& src,
                         const Image& dst) {
  Convolution::Impl& k = *kp;
  const ConvolutionDescriptor& d = k.desc;
  const KernelProperties& p = k.props;
  if (src.empty() || dst.empty()) api::throw_invalid(kConv, ": source and destination images must not be empty");
  api::require_same_device(k.device, src.device(), "the source image");
  api::require_same_device(k.device, dst.device(), "the destination image");
  api::require_same_device(k.device, cb.device(), "the command buffer");
  api::require_not_aliased(dst, src, "destination", "source");
  if (src.data_type() != dst.data_type())
    api::throw_unsupported(kConv, ": source and destination images must have one data type");
  api::require_zero_edge(p.edge_mode, kConv, "the");
  if (p.kernel_offset_x != 0 || p.kernel_offset_y != 0)
    api::throw_invalid(kConv, ": kernel offsets (", p.kernel_offset_x, ",", p.kernel_offset_y, ") must be 0 on a convolution");
  api::require_channels(src, "source", p.source_feature_channel_offset, p.source_feature_channel_max_count,
                        d.input_feature_channels);
  api::require_channels(dst, "destination", p.destination_feature_channel_offset, all_channels, d.output_feature_channels);
  const Region& c = p.clip_rect;
  const int64_t x0 = std::max<int64_t>(c.x, 0), y0 = std::max<int64_t>(c.y, 0);
  const int64_t x1 = std::min<int64_t>(c.x + c.width, dst.width()), y1 = std::min<int64_t>(c.y + c.height, dst.height());
  if (x1 <= x0 || y1 <= y0) api::throw_invalid(kConv, ": clip rectangle does not intersect the destination");
  if (c.z < 0 || c.z >= dst.number_of_images() || p.offset.z < 0 || p.offset.z >= src.number_of_images() || c.depth <= 0)
    api::throw_invalid(kConv, ": image origins clip.z ", c.z, " / offset.z ", p.offset.z, " are outside the images");
  core::ConvGeometry g = base_geometry(d);
  g.n = std::min({c.depth, dst.number_of_images() - c.z, src.number_of_images() - p.offset.z});
  g.h_in = src.height();
  g.w_in = src.width();
  g.h_out = y1 - y0;
  g.w_out = x1 - x0;
  g.pad_h = core::mps::conv_canonical_pad(p.offset.y + d.stride_y * (y0 - c.y), d.kernel_height, d.dilation_y);
  g.pad_w = core::mps::conv_canonical_pad(p.offset.x + d.stride_x * (x0 - c.x), d.kernel_width, d.dilation_x);
  const core::Problem prob = core::conv_as_transpose(g, core::ConvDirection::fwd, {src.data_type(), p.precision, false});
  // The store current at encode time; its values are read when the command runs (a reload encoded
  // earlier fills this store on the queue first, with its canonical copy).
  std::shared_ptr<WeightStore> w = api::snapshot(k.mu, k.weights);
  const core::TensorView xv = api::image_view(src, p.offset.z, 0, 0, p.source_feature_channel_offset);
  const core::TensorView yv = api::image_view(dst, c.z, y0, x0, p.destination_feature_channel_offset);
  api::BoundProblem bp = api::bind(k.device, prob, core::conv_args(core::ConvDirection::fwd, xv, yv, nullptr, nullptr),
                                   p.algorithm, p.allow_nondeterministic);
  const NeuronDescriptor neuron = d.fused_neuron;
  const bool half = p.accumulator_precision == AccumulatorPrecision::half;
  const DataType t = dst.data_type();
  Device queue = cb.device();
  std::shared_ptr<api::WorkspaceCache> ws = k.workspace;
  cb.encode(k.label.empty() ? std::string(kConv) : k.label, [bp, w, src, dst, g, yv, neuron, half, t, queue, ws] {
    api::BoundProblem b = bp;
    b.args.wei = w->run_weights();
    api::run_bound(queue, b, *ws, api::WorkspaceCache::main_stream);
    if (!w->has_bias && neuron.type == NeuronType::none && !half) return;
    if (queue.kind() == DeviceKind::cuda) {
      core::throw_if_error(cuda_backend::epilogue(queue.ordinal(), api::queue_streams(queue).main, yv, t, g.n,
                                                  g.h_out, g.w_out, g.c_out, w->has_bias ? w->run_biases() : nullptr,
                                                  neuron, half));
      return;
    }
    const float* bias = w->run_biases();  // host values on the CPU
    api::on_host(dst, yv, [&](const core::TensorView& v) {
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t y = 0; y < g.h_out; ++y)
          for (int64_t x = 0; x < g.w_out; ++x)
            for (int64_t o = 0; o < g.c_out; ++o) {
              const int64_t i = n * v.sn + y * v.sh + x * v.sw + o;
              const float val = core::load_as_f32(v.data, i, t) + (w->has_bias ? bias[o] : 0.0f);
              core::store_from_f32(v.data, i, t, core::neuron_apply(neuron, val));
            }
      if (half) api::round_view_through_f16(v, t, g.n, g.h_out, g.w_out, g.c_out);
    });
  });
}

}  // namespace

// ---------------------------------------------------------------- Convolution

Convolution::Convolution(const Device& device, std::shared_ptr<ConvolutionDataSource> ds) {
  if (!ds) api::throw_invalid(kConv, ": the data source is null");
  auto k = std::make_shared<Impl>();
  k->device = device;
  k->desc = ds->descriptor();
  k->desc.validate();
  if (k->desc.sub_pixel_scale_factor != 1)
    api::throw_unsupported(kConv, ": sub-pixel scale factor ", k->desc.sub_pixel_scale_factor, " is not implemented");
  api::check_data_source(*ds, kConv);
  k->storage = api::storage_type_of(*ds);
  const core::ConvGeometry base = base_geometry(k->desc);
  k->weights = api::finished_store(api::load_weights(*ds, k->desc, k->storage, true), device, &base);
  k->label = ds->label();
  k->data_source = std::move(ds);
  impl_ = std::move(k);
}

Convolution::Impl& Convolution::impl() const {
  if (!impl_) api::throw_invalid("use of a null Convolution");
  return *impl_;
}
const Device& Convolution::device() const { return impl().device; }
int64_t Convolution::input_feature_channels() const { return impl().desc.input_feature_channels; }
int64_t Convolution::output_feature_channels() const { return impl().desc.output_feature_channels; }
int64_t Convolution::groups() const { return impl().desc.effective_groups(); }
const ConvolutionDescriptor& Convolution::descriptor() const { return impl().desc; }
std::shared_ptr<ConvolutionDataSource> Convolution::data_source() const { return impl().data_source; }
KernelProperties& Convolution::properties() { return impl().props; }
const KernelProperties& Convolution::properties() const { return impl().props; }

ImageDescriptor Convolution::destination_image_descriptor(const Image& src) {
  Impl& k = impl();
  if (src.empty()) api::throw_invalid(kConv, ": sizing needs a source image");
  const ConvolutionDescriptor& d = k.desc;
  const auto ax = core::mps::conv_size_by_padding_policy(src.width(), d.kernel_width, d.stride_x, d.dilation_x, k.props.padding, false);
  const auto ay = core::mps::conv_size_by_padding_policy(src.height(), d.kernel_height, d.stride_y, d.dilation_y, k.props.padding, true);
  if (ax.out_size <= 0 || ay.out_size <= 0)
    api::throw_invalid(kConv, ": a ", src.width(), "x", src.height(), " source is smaller than the ", d.kernel_width, "x",
                       d.kernel_height, " window under padding policy ", k.props.padding);
  if ((k.props.padding & padding::custom) == 0) {
    k.props.offset.x = ax.offset;
    k.props.offset.y = ay.offset;
  }
  return ImageDescriptor{ax.out_size, ay.out_size, d.output_feature_channels, src.number_of_images(), src.data_type()};
}

Image Convolution::encode(CommandBuffer& cb, const Image& src) {
  Image dst(impl().device, destination_image_descriptor(src));
  encode_conv_forward(impl_, cb, src, dst);
  return dst;
}

void Convolution::encode(CommandBuffer& cb, const Image& src, Image& dst) {
  impl();
  encode_conv_forward(impl_, cb, src, dst);
}

ConvolutionGradientState Convolution::result_state(const Image& src, const Image& dst) {
  Impl& k = impl();
  if (src.empty()) api::throw_invalid(kConv, ": result state needs the source image");
  if (k.data_source && k.data_source->data_type() == DataType::uint8)
    api::throw_invalid(kConv, ": uint8 weights are for inference only; a training state cannot be made (e8)");
  auto s = new_gradient_state_impl(k.device, k.desc, false);
  ForwardRecord& r = s->record;
  const ConvolutionDescriptor& d = k.desc;
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
  r.total_offset_x = k.props.offset.x;  // a convolution's own offset (a.5.5 B reads it)
  r.total_offset_y = k.props.offset.y;
  r.clip_rect = k.props.clip_rect;
  r.edge_mode = k.props.edge_mode;
  r.source_width = src.width();
  r.source_height = src.height();
  r.source_feature_channels = src.feature_channels();
  if (!dst.empty()) {
    r.destination_width = dst.width();
    r.destination_height = dst.height();
  }
  s->conv = impl_;
  return StateAccess::make_gradient(std::move(s));
}

Image Convolution::encode(CommandBuffer& cb, const Image& src, ConvolutionGradientState& state, bool temporary) {
  Image dst(impl().device, destination_image_descriptor(src));
  ConvolutionGradientState s = result_state(src, dst);
  StateAccess::gradient(s).temporary = temporary;
  encode_conv_forward(impl_, cb, src, dst);
  state = s;
  return dst;
}

ConvolutionWeightsAndBiasesState Convolution::export_weights_and_biases(CommandBuffer& cb, bool temporary) {
  Impl& k = impl();
  const core::ConvGeometry base = base_geometry(k.desc);
  return api::encode_export_weights(cb, k.device, kConv, k.desc, k.mu, k.weights, temporary, &base);
}

void Convolution::reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state) {
  Impl& k = impl();
  const core::ConvGeometry base = base_geometry(k.desc);
  api::encode_reload_weights(cb, k.device, kConv, k.desc, k.storage, k.mu, k.weights, state, &base);
}

void Convolution::reload_weights_and_biases_from_data_source() {
  Impl& k = impl();
  if (!k.data_source) api::throw_invalid(kConv, ": no data source to reload from");
  const core::ConvGeometry base = base_geometry(k.desc);
  auto fresh = api::finished_store(api::load_weights(*k.data_source, k.desc, k.storage, true), k.device, &base);
  std::lock_guard<std::mutex> lock(k.mu);
  k.weights = std::move(fresh);
}

// Host reads: after a device-side reload they read the values back from the device (once per store).
std::vector<float> Convolution::current_weights() const {
  return api::snapshot(impl().mu, impl().weights)->host_weights();
}
std::vector<float> Convolution::current_biases() const {
  auto w = api::snapshot(impl().mu, impl().weights);
  return w->has_bias ? w->host_biases() : std::vector<float>{};
}

void Convolution::encode_to(io::Encoder& e, const std::string& p) const {
  api::encode_unary_kernel(e, p, kConv, impl());
}

Convolution Convolution::decode(const io::Decoder& d, const Device& device, const std::string& p) {
  api::check_class(d, kConv, 1, p);
  const ConvolutionDescriptor desc = ConvolutionDescriptor::decode(d, p + "descriptor");
  Convolution k(device, api::decode_array_data_source(d, p, desc));
  k.impl().props = api::decode_kernel_properties(d, p + "properties");
  k.impl().label = d.get_string(p + "kernel.label");
  return k;
}

std::string Convolution::description() const { return api::describe_unary_kernel(kConv, impl()); }

bool Convolution::equals(const Convolution& o) const {
  if (!impl_ || !o.impl_) return impl_ == o.impl_;
  return api::unary_kernels_equal(*impl_, *o.impl_);
}

// ---------------------------------------------------------------- ConvolutionGradient

ConvolutionGradient::ConvolutionGradient(const Device& device, std::shared_ptr<ConvolutionDataSource> ds) {
  if (!ds) api::throw_invalid(kGrad, ": the data source is null");
  auto k = std::make_shared<Impl>();
  k->device = device;
  k->desc = ds->descriptor();
  api::validate_for_gradient(*ds, k->desc, kGrad);
  k->storage = api::storage_type_of(*ds);
  const core::ConvGeometry base = base_geometry(k->desc);
  k->weights = api::finished_store(api::load_weights(*ds, k->desc, k->storage, false), device, &base);
  k->data_source = std::move(ds);
  impl_ = std::move(k);
}

ConvolutionGradient::Impl& ConvolutionGradient::impl() const {
  if (!impl_) api::throw_invalid("use of a null ConvolutionGradient");
  return *impl_;
}
const Device& ConvolutionGradient::device() const { return impl().device; }
GradientOption ConvolutionGradient::gradient_option() const { return impl().option; }
void ConvolutionGradient::set_gradient_option(GradientOption o) {
  const uint32_t v = static_cast<uint32_t>(o);
  if (v < 1 || v > 3) api::throw_invalid(kGrad, ": gradient option ", v, " is not 1, 2 or 3");
  impl().option = o;
}
const ConvolutionDescriptor& ConvolutionGradient::descriptor() const { return impl().desc; }

Image ConvolutionGradient::encode(CommandBuffer& cb, const Image& gy, const Image& x, const ConvolutionGradientState& state) {
  if (!state) api::throw_invalid(kGrad, ": the gradient state is null");
  Image dst;
  if (has_data(impl().option)) {
    if (gy.empty()) api::throw_invalid(kGrad, ": the source gradient image is empty");
    dst = Image(impl().device, ImageDescriptor{state.source_width(), state.source_height(),
                                               impl().desc.input_feature_channels, gy.number_of_images(), gy.data_type()});
  }
  encode(cb, gy, x, state, dst);
  return dst;
}

void ConvolutionGradient::encode(CommandBuffer& cb, const Image& gy, const Image& x, const ConvolutionGradientState& state,
                                 Image& dst) {
  Impl& k = impl();
  const ConvolutionDescriptor& d = k.desc;
  if (gy.empty() || x.empty()) api::throw_invalid(kGrad, ": source gradient and source images must not be empty");
  if (!state) api::throw_invalid(kGrad, ": the gradient state is null");
  GradientStateImpl& st = StateAccess::gradient(state);
  if (dynamic_cast<TransposeGradientStateImpl*>(&st) != nullptr)
    api::throw_invalid(kGrad, ": the state was made by a ConvolutionTranspose; use ConvolutionTransposeGradient");
  if (st.descriptor.weight_elements() != d.weight_elements() || st.descriptor.kernel_width != d.kernel_width ||
      st.descriptor.kernel_height != d.kernel_height || st.descriptor.output_feature_channels != d.output_feature_channels)
    api::throw_invalid(kGrad, ": the state belongs to a ", st.descriptor.describe(), " kernel; this kernel is ", d.describe());
  api::require_same_device(k.device, cb.device(), "the command buffer");
  api::require_same_device(k.device, gy.device(), "the source gradient image");
  api::require_same_device(k.device, x.device(), "the source image");
  api::require_same_device(k.device, state.gradient_for_weights().device(), "the gradient state");
  if (gy.data_type() != x.data_type()) api::throw_unsupported(kGrad, ": gY and X must have one data type");
  api::require_channels(gy, "source gradient", 0, all_channels, d.output_feature_channels);
  api::require_channels(x, "source", 0, all_channels, d.input_feature_channels);
  const ForwardRecord& r = st.record;
  core::ConvGeometry g = base_geometry(d);
  g.n = std::min(gy.number_of_images(), x.number_of_images());
  g.h_out = gy.height();
  g.w_out = gy.width();
  g.pad_h = core::mps::conv_canonical_pad(r.total_offset_y, d.kernel_height, d.dilation_y);
  g.pad_w = core::mps::conv_canonical_pad(r.total_offset_x, d.kernel_width, d.dilation_x);
  std::shared_ptr<WeightStore> w = api::snapshot(k.mu, k.weights);
  std::optional<api::BoundProblem> data_work, weights_work;
  const core::TensorView gyv = api::image_view(gy, 0, 0, 0, 0);
  if (has_data(k.option)) {
    if (dst.empty()) api::throw_invalid(kGrad, ": gradient option includes data but the destination is empty");
    api::require_not_aliased(dst, gy, "destination gradient", "source gradient");
    api::require_not_aliased(dst, x, "destination gradient", "source");
    api::require_channels(dst, "destination gradient", 0, all_channels, d.input_feature_channels);
    if (dst.data_type() != gy.data_type()) api::throw_unsupported(kGrad, ": dX and gY must have one data type");
    core::ConvGeometry gd = g;
    gd.n = std::min(g.n, dst.number_of_images());
    gd.h_in = dst.height();
    gd.w_in = dst.width();
    const core::Problem prob = core::conv_as_transpose(gd, core::ConvDirection::bwd_data, {gy.data_type(), k.precision, false});
    // The weights (the store's canonical copy) are filled in when the command runs.
    data_work = api::bind(k.device, prob,
                          core::conv_args(core::ConvDirection::bwd_data, api::image_view(dst, 0, 0, 0, 0), gyv, nullptr,
                                          nullptr),
                          {}, false);
  }
  bool accumulate = false;
  if (has_weights(k.option)) {
    core::ConvGeometry gw = g;
    gw.h_in = x.height();
    gw.w_in = x.width();
    const core::Problem prob = core::conv_as_transpose(gw, core::ConvDirection::bwd_weights, {gy.data_type(), k.precision, false});
    {
      std::lock_guard<std::mutex> lock(st.mu);
      accumulate = st.initialised;  // e4
      st.initialised = true;
    }
    // diff_wei: a canonical-layout scratch from the kernel's workspace, filled in when the command runs.
    weights_work = api::bind(k.device, prob,
                             core::conv_args(core::ConvDirection::bwd_weights, api::image_view(x, 0, 0, 0, 0), gyv,
                                             nullptr, nullptr),
                             {}, false);
  }
  const DataType t = gy.data_type();
  Device queue = cb.device();
  std::shared_ptr<api::WorkspaceCache> ws = k.workspace;
  const std::size_t wbytes = static_cast<std::size_t>(d.weight_elements()) * sizeof(float);
  cb.encode(kGrad, [data_work, weights_work, w, gy, x, dst, state, g, gyv, t, accumulate, queue, ws, wbytes] {
    const bool cuda = queue.kind() == DeviceKind::cuda;
    const int dev = queue.ordinal();
    std::optional<api::BoundProblem> data = data_work, weights = weights_work;
    if (data) data->args.wei = w->run_weights();
    void* side = nullptr;
    if (cuda && data && weights) {  // both: dW/db on the side stream beside dX (see the transpose gradient)
      const api::CudaStreams& s = api::queue_streams(queue);
      core::throw_if_error(cuda_backend::event_record(dev, s.fork, s.main));
      core::throw_if_error(cuda_backend::stream_wait_event(dev, s.side, s.fork));
      side = s.side;
    }
    if (weights) {
      // Scratch: the canonical weight gradient, then (CUDA) the bias-gradient partial sums, 256-byte aligned.
      const std::size_t wb_aligned = (wbytes + 255) / 256 * 256;
      const std::size_t bias_ws = cuda ? cuda_backend::bias_gradient_workspace(g.n, g.h_out, g.w_out, g.c_out) : 0;
      auto* scratch = static_cast<uint8_t*>(ws->get(queue, api::WorkspaceCache::side_scratch, wb_aligned + bias_ws));
      auto* dwt = reinterpret_cast<float*>(scratch);
      weights->args.diff_wei = dwt;
      const int slot = side != nullptr ? api::WorkspaceCache::side_stream : api::WorkspaceCache::main_stream;
      api::run_bound(queue, *weights, *ws, slot, side);
      auto* gw = static_cast<float*>(state.gradient_for_weights().device_pointer());
      auto* gb = static_cast<float*>(state.gradient_for_biases().device_pointer());
      if (cuda) {
        void* stream = side != nullptr ? side : api::queue_streams(queue).main;
        core::throw_if_error(cuda_backend::conv_weights_from_transpose(dev, stream, g.c_in, g.c_out, g.groups, g.kh,
                                                                       g.kw, dwt, gw, accumulate));
        core::throw_if_error(cuda_backend::bias_gradient(dev, stream, gyv, t, g.n, g.h_out, g.w_out, g.c_out, gb,
                                                         accumulate, scratch + wb_aligned));
      } else {
        std::vector<float> wc(wbytes / sizeof(float));
        core::transpose_weights_to_conv(g, dwt, wc.data());
        for (std::size_t i = 0; i < wc.size(); ++i) gw[i] = accumulate ? gw[i] + wc[i] : wc[i];
        core::conv_bias_gradient(g, gyv, t, gb, accumulate);
      }
    }
    if (data) api::run_bound(queue, *data, *ws, api::WorkspaceCache::main_stream);
    if (side != nullptr) {
      const api::CudaStreams& s = api::queue_streams(queue);
      core::throw_if_error(cuda_backend::event_record(dev, s.join, s.side));
      core::throw_if_error(cuda_backend::stream_wait_event(dev, s.main, s.join));
    }
  });
}

// MPSCNNConvolutionGradient's reloadWeightsAndBiases(with:state:): the data gradient's weights from a float32
// OHWI state, on the queue (device-side on a CUDA device with the state there); biases play no part.
void ConvolutionGradient::reload_weights_and_biases(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& state) {
  Impl& k = impl();
  const core::ConvGeometry base = base_geometry(k.desc);
  api::encode_reload_weights(cb, k.device, kGrad, k.desc, k.storage, k.mu, k.weights, state, &base, false);
}

void ConvolutionGradient::reload_weights_and_biases_from_data_source() {
  Impl& k = impl();
  const core::ConvGeometry base = base_geometry(k.desc);
  auto fresh = api::finished_store(api::load_weights(*k.data_source, k.desc, k.storage, false), k.device, &base);
  std::lock_guard<std::mutex> lock(k.mu);
  k.weights = std::move(fresh);
}

}  // namespace tconv
