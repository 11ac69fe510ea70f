// The table of bad inputs for the C++ API (issue 7; the CLI's table is tests/cli/bad_input.py). Each row
// performs one call that must fail, with the tconv::ErrorCode and a fragment of the message (the fragment
// names the offending value wherever the API promises to). After every row the same rig — device, kernels,
// data source — runs a full training pass and must reproduce the results of a rig that never saw a bad
// input, bit for bit: a rejected call must leave the library usable and unchanged.
//
// Rows are grouped by what they break: descriptor and data source, images and buffers, devices and command
// buffers, the forward encode, the gradient encode and its states, weights states, the functional API, and
// the model-file decode path.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "io/coder.hpp"
#include "reliability/reliability_util.hpp"

namespace tconv::reliability {
namespace {

struct BadCase {
  std::string name;
  std::function<void(Rig&)> call;
  ErrorCode code;
  std::string fragment;
};

// A data source whose answers a test chooses (uint8 weights, a failing load()).
class OddDataSource : public ConvolutionDataSource {
 public:
  OddDataSource(ConvolutionDescriptor d, DataType t, bool load_ok) : d_(d), t_(t), ok_(load_ok),
      bytes_(static_cast<std::size_t>(d.weight_elements()) * size_of(t), 1) {}
  DataType data_type() const override { return t_; }
  ConvolutionDescriptor descriptor() const override { return d_; }
  const void* weights() override { return bytes_.data(); }
  const float* bias_terms() override { return nullptr; }
  bool load() override { return ok_; }
  void purge() override {}
  std::string label() const override { return "odd"; }
  std::shared_ptr<ConvolutionDataSource> copy() const override { return std::make_shared<OddDataSource>(*this); }
  const float* ranges_for_uint8_kernel() override {
    ranges_.assign(static_cast<std::size_t>(2 * d_.output_feature_channels), 1.0f);
    return ranges_.data();
  }
  WeightsQuantizationType weights_quantization_type() const override {
    return t_ == DataType::uint8 ? WeightsQuantizationType::linear : WeightsQuantizationType::none;
  }

 private:
  ConvolutionDescriptor d_;
  DataType t_;
  bool ok_;
  std::vector<uint8_t> bytes_;
  std::vector<float> ranges_;
};

ConvolutionDescriptor with(ConvolutionDescriptor d, const std::function<void(ConvolutionDescriptor&)>& f) {
  f(d);
  return d;
}

// The rig's forward source and a destination sized for it (explicit-destination encodes).
Image fwd_dst(Rig& r, const Image& x) { return Image(r.dev, r.fwd.destination_image_descriptor({x})); }

// A forward training encode on the rig, for gradient rows: returns X, gY and the state; the forward is
// committed and finished.
struct GradInputs {
  Image x, y, gy;
  ConvolutionTransposeGradientState st;
};
GradInputs grad_inputs(Rig& r) {
  GradInputs g;
  g.x = r.source();
  CommandBuffer cb(r.dev);
  g.y = r.fwd.encode(cb, g.x, ConvolutionGradientState{}, g.st, false);
  cb.commit();
  cb.wait_and_check();
  g.gy = int_image(r.dev, g.y.number_of_images(), g.y.height(), g.y.width(), g.y.feature_channels(), 3);
  return g;
}
Image gx_for(Rig& r, GradInputs& g) {
  return Image(r.dev, r.grad.destination_image_descriptor({g.gy, g.x}, {g.st}));
}

// Functional-API arrays: x [1][4][3][3] NCHW, PyTorch weights [4][2][3][3], y [1][2][5][5].
struct FArrays {
  std::vector<float> x = std::vector<float>(36, 1.0f), w = std::vector<float>(72, 1.0f), y = std::vector<float>(50);
  std::vector<float> dx = std::vector<float>(36), dw = std::vector<float>(72), db = std::vector<float>(2);
  ConstArrayRef X() const { return {x.data(), DataType::float32, {1, 4, 3, 3}}; }
  ConstArrayRef W() const { return {w.data(), DataType::float32, {4, 2, 3, 3}}; }
  ConstArrayRef DY() const { return {y.data(), DataType::float32, {1, 2, 5, 5}}; }
  ArrayRef Y() { return {y.data(), DataType::float32, {1, 2, 5, 5}}; }
};
void fwd_call(Rig& r, const std::function<void(FArrays&, ConvTranspose2dOptions&)>& tweak) {
  FArrays a;
  ConvTranspose2dOptions o;
  tweak(a, o);
  conv_transpose2d(r.dev, a.X(), a.W(), ConstArrayRef{}, a.Y(), o);
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("tconv-reliability-" + std::to_string(::getpid()) + "-" + name))
      .string();
}
std::vector<uint8_t> coded_transpose(Rig& r) {
  io::Encoder e;
  r.fwd.encode_to(e);
  return e.to_bytes();
}
void write_bytes_to(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

const std::vector<BadCase>& table() {
  using E = ErrorCode;
  static const std::vector<BadCase> rows = {
      // ---- descriptor and data source
      {"descriptor_zero_input_channels", [](Rig&) { ConvolutionDescriptor(3, 3, 0, 8).validate(); }, E::invalid_argument,
       "input feature channels must be positive, got 0"},
      {"descriptor_negative_kernel", [](Rig&) { ConvolutionDescriptor(-1, 3, 4, 8).validate(); }, E::invalid_argument,
       "kernel width must be positive, got -1"},
      {"descriptor_huge_kernel", [](Rig&) { ConvolutionDescriptor(int64_t{1} << 40, 3, 4, 8).validate(); },
       E::invalid_argument, "kernel width is too large"},
      {"descriptor_groups_not_dividing", [](Rig&) {
         with(ConvolutionDescriptor(3, 3, 4, 8), [](auto& d) { d.groups = 3; }).validate(); },
       E::invalid_argument, "groups (3) must divide input feature channels (4)"},
      {"data_source_wrong_weight_count", [](Rig& r) { ArrayDataSource(r.desc, std::vector<float>(5, 1.0f)); },
       E::invalid_argument, "5 weights given"},
      {"data_source_uint8_storage",
       [](Rig& r) { ArrayDataSource(r.desc, int_weights(r.desc), {}, DataType::uint8); }, E::unsupported, "uint8"},
      {"transpose_null_data_source", [](Rig& r) { ConvolutionTranspose(r.dev, nullptr); }, E::invalid_argument,
       "data source is null"},
      {"transpose_load_fails", [](Rig& r) {
         ConvolutionTranspose(r.dev, std::make_shared<OddDataSource>(r.desc, DataType::float32, false)); },
       E::invalid_argument, "load() returned false"},
      {"gradient_uint8_weights_for_training", [](Rig& r) {
         ConvolutionTransposeGradient(r.dev, std::make_shared<OddDataSource>(r.desc, DataType::uint8, true)); },
       E::invalid_argument, "uint8 weights are for inference only"},
      {"gradient_fused_neuron", [](Rig& r) {
         auto d = with(r.desc, [](auto& x) { x.fused_neuron = NeuronDescriptor{NeuronType::relu, 0, 0, 0}; });
         ConvolutionTransposeGradient(r.dev, std::make_shared<ArrayDataSource>(d, int_weights(d))); },
       E::invalid_argument, "(e10)"},
      {"gradient_depthwise", [](Rig& r) {
         auto d = with(ConvolutionDescriptor(3, 3, 4, 8), [](auto& x) { x.depthwise = true; });
         ConvolutionTransposeGradient(r.dev, std::make_shared<ArrayDataSource>(d, int_weights(d))); },
       E::invalid_argument, "depthwise"},
      {"gradient_sub_pixel", [](Rig& r) {
         auto d = with(r.desc, [](auto& x) { x.sub_pixel_scale_factor = 2; });
         ConvolutionTransposeGradient(r.dev, std::make_shared<ArrayDataSource>(d, int_weights(d))); },
       E::invalid_argument, "sub-pixel scale factor must be 1"},
      {"gradient_option_out_of_range", [](Rig& r) { r.grad.set_gradient_option(static_cast<GradientOption>(0)); },
       E::invalid_argument, "gradient option 0"},

      // ---- images and buffers
      {"image_zero_width", [](Rig& r) { Image(r.dev, ImageDescriptor{0, 4, 4, 1}); }, E::invalid_argument,
       "width 0"},
      {"image_negative_images", [](Rig& r) { Image(r.dev, ImageDescriptor{4, 4, 4, -2}); }, E::invalid_argument,
       "images -2"},
      {"image_size_overflows_64_bits", [](Rig& r) {
         Image(r.dev, ImageDescriptor{int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31, 1}); },
       E::invalid_argument, "too large"},
      {"image_uint8", [](Rig& r) { Image(r.dev, ImageDescriptor{4, 4, 4, 1, DataType::uint8}); }, E::unsupported,
       "image data type uint8"},
      {"image_read_bad_index", [](Rig& r) { r.source().read_floats(ImageLayout::hwc, 2); }, E::invalid_argument,
       "image index 2 is outside [0, 2)"},
      {"image_write_channel_range_past_end", [](Rig& r) {
         std::vector<float> v(100);
         r.source().write_floats(v.data(), ImageLayout::chw, 0, ImageChannelRange{2, 3}); },
       E::invalid_argument, "channel count 3 from offset 2"},
      {"buffer_copy_past_end", [](Rig& r) {
         std::vector<uint8_t> v(16);
         Buffer::allocate(r.dev, 8).copy_from_host(v.data(), 16); },
       E::invalid_argument, "outside the buffer of 8 bytes"},
      {"buffer_null_copy", [](Rig&) { uint8_t b[4]; Buffer().copy_to_host(b, 4); }, E::invalid_argument,
       "null buffer"},

      // ---- devices and command buffers
      {"cuda_device_unavailable", [](Rig&) { Device::cuda(1000); }, E::device_unavailable,
       "CUDA device 1000 requested"},
      {"cpu_negative_threads", [](Rig&) { Device::cpu(-2); }, E::invalid_argument, "got -2"},
      {"cpu_zero_threads_set", [](Rig& r) { r.dev.set_num_threads(0); }, E::invalid_argument,
       "thread count must be positive, got 0"},
      {"unknown_device_env", [](Rig&) {
         ::setenv("TCONV_DEVICE", "tpu", 1);
         try {
           Device::default_device();
         } catch (...) {
           ::unsetenv("TCONV_DEVICE");
           throw;
         }
         ::unsetenv("TCONV_DEVICE"); },
       E::invalid_argument, "got 'tpu'"},
      {"encode_after_commit", [](Rig& r) {
         CommandBuffer cb(r.dev);
         cb.commit();
         cb.wait_until_completed();
         r.fwd.encode(cb, r.source()); },
       E::invalid_argument, "already committed"},
      {"failing_command_reports_its_error", [](Rig& r) {
         CommandBuffer cb(r.dev);
         cb.encode("boom", [] { throw Error(ErrorCode::io_error, "disk gone"); });
         bool later_ran = false;
         cb.encode("later", [&] { later_ran = true; });
         cb.commit();
         cb.wait_until_completed();
         EXPECT_EQ(cb.status(), CommandBufferStatus::error);
         EXPECT_FALSE(later_ran) << "commands after a failed one must be skipped";
         cb.wait_and_check(); },
       E::io_error, "command 'boom': disk gone"},

      // ---- forward encode
      {"forward_source_channels_wrong", [](Rig& r) {
         CommandBuffer cb(r.dev);
         r.fwd.encode(cb, int_image(r.dev, 1, 5, 5, 3, 0)); },
       E::invalid_argument, "source image has 3 feature channels"},
      {"forward_destination_channels_short", [](Rig& r) {
         CommandBuffer cb(r.dev);
         Image x = r.source();
         Image d(r.dev, ImageDescriptor{10, 10, 5, 2});
         r.fwd.encode(cb, x, d); },
       E::invalid_argument, "destination image has 5 feature channels"},
      {"forward_destination_aliases_source", [](Rig& r) {
         CommandBuffer cb(r.dev);
         Image x = int_image(r.dev, 1, 6, 6, 6, 0);
         ConvolutionDescriptor d(3, 3, 6, 6);
         ConvolutionTranspose k(r.dev, std::make_shared<ArrayDataSource>(d, int_weights(d)));
         Image same = x;
         k.encode(cb, x, same); },
       E::invalid_argument, "aliases the source"},
      {"forward_edge_mode_clamp", [](Rig& r) {
         CommandBuffer cb(r.dev);
         r.fwd.properties().edge_mode = EdgeMode::clamp;
         r.fwd.encode(cb, r.source()); },
       E::unsupported, "edge mode clamp"},
      {"forward_mixed_data_types", [](Rig& r) {
         CommandBuffer cb(r.dev);
         Image x = r.source();
         ImageDescriptor dd = r.fwd.destination_image_descriptor({x});
         dd.data_type = DataType::float16;
         Image d(r.dev, dd);
         r.fwd.encode(cb, x, d); },
       E::unsupported, "must have one data type"},
      {"forward_negative_channel_offset", [](Rig& r) {
         CommandBuffer cb(r.dev);
         r.fwd.properties().source_feature_channel_offset = -1;
         r.fwd.encode(cb, r.source()); },
       E::invalid_argument, "offset -1 is negative"},
      {"forward_clip_outside_destination", [](Rig& r) {
         CommandBuffer cb(r.dev);
         Image x = r.source();
         Image d = fwd_dst(r, x);
         r.fwd.properties().clip_rect = Region{500, 0, 0, 4, 4, 1};
         r.fwd.encode(cb, x, d); },
       E::invalid_argument, "does not intersect"},
      {"forward_offset_z_past_images", [](Rig& r) {
         CommandBuffer cb(r.dev);
         Image x = r.source();
         Image d = fwd_dst(r, x);
         r.fwd.properties().offset.z = 5;
         r.fwd.encode(cb, x, d); },
       E::invalid_argument, "offset.z 5"},
      {"forward_unknown_algorithm", [](Rig& r) {
         CommandBuffer cb(r.dev);
         r.fwd.properties().algorithm = "cpu_magic";
         r.fwd.encode(cb, r.source()); },
       E::invalid_argument, "cpu_magic"},
      {"forward_state_without_conv_state", [](Rig& r) {
         CommandBuffer cb(r.dev);
         ConvolutionTransposeGradientState st;
         r.fwd.encode(cb, r.source(), st, false); },
       E::unsupported, "(a.5.6)"},
      {"forward_state_of_another_kernel", [](Rig& r) {
         Rig other;
         Image x = r.source();
         Image d = fwd_dst(r, x);
         ConvolutionTransposeGradientState st = other.fwd.result_state(x, {}, d);
         CommandBuffer cb(r.dev);
         r.fwd.encode_to_state(cb, x, st, d); },
       E::invalid_argument, "made by another ConvolutionTranspose"},
      {"forward_transpose_state_as_conv_state", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         r.fwd.encode(cb, g.x, ConvolutionGradientState(g.st)); },
       E::invalid_argument, "made by a ConvolutionTranspose"},
      {"forward_reload_short_weights_state", [](Rig& r) {
         CommandBuffer cb(r.dev);
         ConvolutionWeightsAndBiasesState s(Buffer::allocate(r.dev, 16), Buffer());
         r.fwd.reload_weights_and_biases(cb, s); },
       E::invalid_argument, "holds 16 bytes"},

      // ---- gradient encode and states
      {"gradient_null_state", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         Image gx(r.dev, ImageDescriptor{5, 5, 4, 2});
         r.grad.encode(cb, g.gy, g.x, ConvolutionTransposeGradientState{}, gx); },
       E::invalid_argument, "gradient state is null"},
      {"gradient_state_of_other_shape", [](Rig& r) {
         // A state made by a 4→8-channel transpose given to the rig's 4→6 gradient kernel.
         ConvolutionDescriptor d(3, 3, 4, 8);
         d.stride_x = d.stride_y = 2;
         ConvolutionTranspose other(r.dev, std::make_shared<ArrayDataSource>(d, int_weights(d)));
         Image x = r.source();
         CommandBuffer cb(r.dev);
         ConvolutionTransposeGradientState st;
         Image y = other.encode(cb, x, ConvolutionGradientState{}, st, false);
         Image gy = int_image(r.dev, 2, y.height(), y.width(), 6, 1);
         r.grad.encode(cb, gy, x, st); },
       E::invalid_argument, "the gradient state belongs to a"},
      {"gradient_source_gradient_channels_wrong", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         Image gy = int_image(r.dev, 2, g.gy.height(), g.gy.width(), 5, 1);
         r.grad.encode(cb, gy, g.x, g.st); },
       E::invalid_argument, "source gradient image has 5 feature channels"},
      {"gradient_source_image_channels_wrong", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         r.grad.encode(cb, g.gy, int_image(r.dev, 2, 5, 5, 2, 1), g.st); },
       E::invalid_argument, "source image has 2 feature channels"},
      {"gradient_mixed_data_types", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         r.grad.encode(cb, g.gy, int_image(r.dev, 2, 5, 5, 4, 1, DataType::bfloat16), g.st); },
       E::unsupported, "must have one data type"},
      {"gradient_destination_aliases_source_gradient", [](Rig& r) {
         // Nin = Nout and a stride-1, 1×1 kernel make gX and gY the same shape, so only aliasing is wrong.
         ConvolutionDescriptor d(1, 1, 4, 4);
         auto ds = std::make_shared<ArrayDataSource>(d, int_weights(d));
         ConvolutionTranspose f(r.dev, ds);
         ConvolutionTransposeGradient k(r.dev, ds);
         Image x = int_image(r.dev, 1, 4, 4, 4, 0);
         CommandBuffer cb(r.dev);
         ConvolutionTransposeGradientState st;
         Image y = f.encode(cb, x, ConvolutionGradientState{}, st, false);
         Image gx = y;
         k.encode(cb, y, x, st, gx); },
       E::invalid_argument, "aliases the source gradient"},
      {"gradient_destination_aliases_source_image", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         Image gx = g.x;
         r.grad.encode(cb, g.gy, g.x, g.st, gx); },
       E::invalid_argument, "aliases the source image"},
      {"gradient_destination_channels_short", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         Image gx(r.dev, ImageDescriptor{5, 5, 3, 2});
         r.grad.encode(cb, g.gy, g.x, g.st, gx); },
       E::invalid_argument, "destination gradient image has 3 feature channels"},
      {"gradient_data_option_empty_destination", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         Image none;
         r.grad.encode(cb, g.gy, g.x, g.st, none); },
       E::invalid_argument, "destination gradient is empty"},
      {"gradient_primary_edge_clamp", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         r.grad.properties().primary_edge_mode = EdgeMode::clamp;
         Image gx = gx_for(r, g);
         r.grad.encode(cb, g.gy, g.x, g.st, gx); },
       E::unsupported, "edge mode clamp"},
      {"gradient_zero_stride", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         Image gx = gx_for(r, g);
         r.grad.properties().secondary_stride_y = 0;
         r.grad.encode(cb, g.gy, g.x, g.st, gx); },
       E::invalid_argument, "strides must be positive, got 0"},
      {"gradient_batch_lengths_differ", [](Rig& r) {
         GradInputs g = grad_inputs(r);
         CommandBuffer cb(r.dev);
         r.grad.encode_batch(cb, {g.gy, g.gy}, {g.x}, {g.st, g.st}); },
       E::invalid_argument, "2 source gradients, 1 source images, 2 gradient states"},
      {"gradient_reload_short_weights_state", [](Rig& r) {
         CommandBuffer cb(r.dev);
         ConvolutionWeightsAndBiasesState s(Buffer::allocate(r.dev, 8), Buffer());
         r.grad.reload_weights_and_biases(cb, s); },
       E::invalid_argument, "holds 8 bytes"},

      // ---- weights-and-biases states
      {"weights_state_null_buffer", [](Rig&) { ConvolutionWeightsAndBiasesState(Buffer(), Buffer()); },
       E::invalid_argument, "weights buffer is null"},
      {"weights_state_not_float_sized", [](Rig& r) {
         ConvolutionWeightsAndBiasesState(Buffer::allocate(r.dev, 6), Buffer()); },
       E::invalid_argument, "6 bytes is not a positive multiple of 4"},
      {"weights_state_misaligned_offset", [](Rig& r) {
         ConvolutionWeightsAndBiasesState(Buffer::allocate(r.dev, 4096), 2, Buffer(), 0, r.desc); },
       E::invalid_argument, "weights offset 2 is not a multiple of 4"},
      {"weights_state_offset_past_end", [](Rig& r) {
         ConvolutionWeightsAndBiasesState(Buffer::allocate(r.dev, 4096), 4000, Buffer(), 0, r.desc); },
       E::invalid_argument, "exceeds the weights buffer of 4096 bytes"},
      {"weights_state_undersized_biases", [](Rig& r) {
         ConvolutionWeightsAndBiasesState(Buffer::allocate(r.dev, 4096), 0, Buffer::allocate(r.dev, 16), 0, r.desc); },
       E::invalid_argument, "exceeds the biases buffer of 16 bytes"},
      {"weights_state_offset_overflows", [](Rig& r) {
         ConvolutionWeightsAndBiasesState(Buffer::allocate(r.dev, 4096), std::numeric_limits<std::size_t>::max() - 3,
                                          Buffer(), 0, r.desc); },
       E::invalid_argument, "exceeds the weights buffer"},
      {"state_resource_index", [](Rig& r) { ConvolutionWeightsAndBiasesState(r.dev, r.desc).resource(5); },
       E::invalid_argument, "resource index 5"},

      // ---- functional API
      {"functional_output_padding_too_large", [](Rig& r) {
         fwd_call(r, [](FArrays&, ConvTranspose2dOptions& o) { o.output_padding = {1, 0}; }); },
       E::invalid_argument, "output_padding height = 1"},
      {"functional_output_padding_negative", [](Rig& r) {
         fwd_call(r, [](FArrays&, ConvTranspose2dOptions& o) { o.stride = {2, 2}; o.output_padding = {0, -1}; }); },
       E::invalid_argument, "output_padding width = -1"},
      {"functional_groups_not_dividing", [](Rig& r) {
         fwd_call(r, [](FArrays&, ConvTranspose2dOptions& o) { o.groups = 3; }); },
       E::invalid_argument, "not divisible by groups (3)"},
      {"functional_y_wrong_shape", [](Rig& r) {
         FArrays a;
         ArrayRef y = a.Y();
         y.shape = {1, 2, 5, 4};
         conv_transpose2d(r.dev, a.X(), a.W(), {}, y, {}); },
       E::invalid_argument, "y has shape [1, 2, 5, 4], expected [1, 2, 5, 5]"},
      {"functional_null_y", [](Rig& r) {
         FArrays a;
         ArrayRef y = a.Y();
         y.data = nullptr;
         conv_transpose2d(r.dev, a.X(), a.W(), {}, y, {}); },
       E::invalid_argument, "must have data"},
      {"functional_dw_not_float32", [](Rig& r) {
         FArrays a;
         ConvTranspose2dGrads g;
         g.dw = {a.dw.data(), DataType::float16, {4, 2, 3, 3}};
         conv_transpose2d_backward(r.dev, a.X(), a.W(), a.DY(), g, {}); },
       E::invalid_argument, "dw must be float32"},
      {"functional_sizes_overflow_64_bits", [](Rig& r) {
         // 2^24 images of 2^20 × 2^20 pixels: 2^68 elements. Rejected before any element is touched.
         float dummy = 0;
         const std::vector<int64_t> xs{int64_t{1} << 24, 4, int64_t{1} << 20, int64_t{1} << 20};
         const std::vector<int64_t> ws{4, 2, 1, 1};
         ConvTranspose2dOptions o;
         conv_transpose2d(r.dev, {&dummy, DataType::float32, xs}, {&dummy, DataType::float32, ws}, {},
                          {&dummy, DataType::float32, conv_transpose2d_output_shape(xs, ws, o)}, o); },
       E::invalid_argument, "overflow 64-bit indexing"},
      {"functional_misaligned_destination", [](Rig& r) {
         // y one byte past a float boundary: kernels would make misaligned float32 stores (undefined).
         FArrays a;
         std::vector<float> storage(51);
         ArrayRef y = a.Y();
         y.data = reinterpret_cast<char*>(storage.data()) + 1;
         conv_transpose2d(r.dev, a.X(), a.W(), {}, y, {}); },
       E::invalid_argument, "aligned"},
      {"functional_destination_aliases_source", [](Rig& r) {
         // A 1×1 stride-1 layer with as many outputs as inputs: y has x's shape, and y is x's memory.
         std::vector<float> x(64, 1.0f), w(16, 0.5f);
         ConvTranspose2dOptions o;
         o.layout = ActivationLayout::nhwc;
         o.weight_layout = WeightLayout::mps;
         conv_transpose2d(r.dev, {x.data(), DataType::float32, {1, 4, 4, 4}}, {w.data(), DataType::float32, {4, 1, 1, 4}},
                          {}, {x.data(), DataType::float32, {1, 4, 4, 4}}, o); },
       E::invalid_argument, "alias"},
      {"functional_unknown_algorithm", [](Rig& r) {
         fwd_call(r, [](FArrays&, ConvTranspose2dOptions& o) { o.algorithm = "cpu_magic"; }); },
       E::invalid_argument, "cpu_magic"},
      {"functional_unknown_precision_value", [](Rig& r) {
         fwd_call(r, [](FArrays&, ConvTranspose2dOptions& o) { o.precision = static_cast<Precision>(9); }); },
       E::invalid_argument, "precision"},

      // ---- model files through the decode path
      {"model_file_missing", [](Rig& r) {
         ConvolutionTranspose::decode(io::Decoder::from_file(temp_path("does-not-exist.tconv")), r.dev); },
       E::io_error, "does-not-exist.tconv"},
      {"model_file_is_a_folder", [](Rig& r) {
         ConvolutionTranspose::decode(io::Decoder::from_file(std::filesystem::temp_directory_path().string()), r.dev); },
       E::io_error, std::filesystem::temp_directory_path().string()},
      {"model_file_truncated", [](Rig& r) {
         std::vector<uint8_t> b = coded_transpose(r);
         b.resize(b.size() / 2);
         const std::string p = temp_path("truncated.tconv");
         write_bytes_to(p, b);
         try {
           ConvolutionTranspose::decode(io::Decoder::from_file(p), r.dev);
         } catch (...) {
           std::filesystem::remove(p);
           throw;
         }
         std::filesystem::remove(p); },
       E::format_error, "truncated.tconv"},
      {"model_file_corrupted_weight_byte", [](Rig& r) {
         std::vector<uint8_t> b = coded_transpose(r);
         b[b.size() - 3] ^= 0x40;  // inside the last tensor's bytes
         ConvolutionTranspose::decode(io::Decoder::from_bytes(b.data(), b.size()), r.dev); },
       E::format_error, "checksum mismatch"},
      {"model_file_empty", [](Rig& r) {
         ConvolutionTranspose::decode(io::Decoder::from_bytes(nullptr, 0), r.dev); },
       E::format_error, "is 0 bytes long"},
      {"model_file_of_another_class", [](Rig& r) {
         io::Encoder e;
         r.grad.encode_to(e);
         const std::vector<uint8_t> b = e.to_bytes();
         ConvolutionTranspose::decode(io::Decoder::from_bytes(b.data(), b.size()), r.dev); },
       E::format_error, "expected a 'ConvolutionTranspose'"},
  };
  return rows;
}

// gtest prints a failing parameter with this (the row's name, not its bytes).
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadInput, FailsCleanlyAndLeavesTheLibraryUsable) {
  const BadCase& row = GetParam();
  Rig rig;
  expect_error([&] { row.call(rig); }, row.code, row.fragment);
  // The same rig (its kernels and device) still computes exactly what an untouched one does.
  EXPECT_EQ(rig.pass(), golden_pass()) << "a good pass after the bad call gave different results";
}

INSTANTIATE_TEST_SUITE_P(Table, BadInput, ::testing::ValuesIn(table()),
                         [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(BadInputTable, HasAtLeastFortyRows) { EXPECT_GE(table().size(), 40u); }

// parse_precision is the one entry point for precision names (the CLI and Python call it); an unknown name
// is reported by its false result and leaves the output untouched.
TEST(BadInputTable, UnknownPrecisionNameIsRejected) {
  Precision p = Precision::bf16;
  for (const char* bad : {"fp8", "", "FP32x", "float"}) {
    EXPECT_FALSE(parse_precision(bad, p)) << bad;
    EXPECT_EQ(p, Precision::bf16) << bad;
  }
  EXPECT_TRUE(parse_precision("tf32", p));
  EXPECT_EQ(p, Precision::tf32);
}

}  // namespace
}  // namespace tconv::reliability
