// The auto-encoder of the main job on tconv's object API (the wiring is described in train_model.hpp).
#include "train_model.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>

#include "core/status.hpp"
#include "cuda/training_backend.hpp"
#include "io/coder.hpp"
#include "io/safetensors.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/communicator.hpp"
#include "tconv/convert.hpp"
#include "tconv/convolution.hpp"
#include "tconv/convolution_transpose.hpp"
#include "tconv/convolution_transpose_gradient.hpp"
#include "tconv/data_source.hpp"
#include "tconv/error.hpp"
#include "tconv/image.hpp"
#include "tconv/loss.hpp"
#include "tconv/neuron.hpp"
#include "tconv/optimizer.hpp"
#include "tconv/state.hpp"
#include "train_rng.hpp"

namespace tconv::cli::train {
namespace {

constexpr const char* kModelClass = "tconv.fashion_mnist_autoencoder";
constexpr int64_t kModelVersion = 1;

// One layer: its geometry, the data source the kernels were made from, the kernels, and the training
// state (weights-and-biases state updated in place by its own Adam, with zero-initialised moments).
struct Layer {
  std::string name;
  bool transpose = false;
  int64_t in = 0, out = 0;  // channels read, channels written
  std::shared_ptr<ArrayDataSource> source;
  Convolution conv;
  ConvolutionGradient conv_grad;
  ConvolutionTranspose deconv;
  ConvolutionTransposeGradient deconv_grad;
  ConvolutionWeightsAndBiasesState wb;
  Buffer m_w, m_b, v_w, v_b;
  std::optional<OptimizerAdam> adam;

  WeightShape shape() const { return WeightShape{.in_channels = in, .out_channels = out, .kernel_h = 4, .kernel_w = 4}; }
};

ConvolutionDescriptor layer_descriptor(int64_t in, int64_t out) {
  ConvolutionDescriptor d(4, 4, in, out);
  d.stride_x = d.stride_y = 2;
  return d;
}

std::vector<float> read_floats(const Buffer& b, std::size_t offset, int64_t count) {
  std::vector<float> v(static_cast<std::size_t>(count));
  b.copy_to_host(v.data(), v.size() * sizeof(float), offset);
  return v;
}

// A coder holding only the entries of `d` under "<prefix>.", with the prefix removed: how one kernel's
// record is cut back out of the model file for that kernel's decode().
io::Decoder sub_decoder(const io::Decoder& d, const std::string& prefix) {
  const std::string p = prefix + ".";
  io::Encoder e;
  bool any = false;
  for (const auto& [key, value] : d.file().metadata)
    if (key.rfind(p, 0) == 0) e.set_string(key.substr(p.size()), value), any = true;
  for (const auto& [key, t] : d.file().tensors)
    if (key.rfind(p, 0) == 0) e.set_tensor(key.substr(p.size()), t.dtype, t.shape, t.data.data(), t.data.size()), any = true;
  if (!any) throw Error(ErrorCode::format_error, "model file has no entries for kernel '" + prefix + "'");
  const std::vector<uint8_t> bytes = e.to_bytes();
  return io::Decoder::from_bytes(bytes.data(), bytes.size());
}

// Copies one kernel's coded record into the model's coder under "<prefix>.".
void merge_into(io::Encoder& model, const io::Encoder& kernel, const std::string& prefix) {
  const std::vector<uint8_t> bytes = kernel.to_bytes();
  const io::SafetensorsFile f = io::parse_safetensors(bytes.data(), bytes.size());
  for (const auto& [key, value] : f.metadata)
    if (key.rfind("tconv.", 0) != 0) model.set_string(prefix + "." + key, value);
  for (const auto& [key, t] : f.tensors) model.set_tensor(prefix + "." + key, t.dtype, t.shape, t.data.data(), t.data.size());
}

}  // namespace

struct AutoEncoder::Impl {
  Device device;
  Layer layers[4];  // enc1, enc2, dec1, dec2
  NeuronKernel relu, sigmoid;
  NeuronGradient relu_grad, sigmoid_grad;
  MSELoss mse;
  Buffer loss_value;

  explicit Impl(const Device& d)
      : device(d),
        relu(d, NeuronDescriptor{NeuronType::relu}),
        sigmoid(d, NeuronDescriptor{NeuronType::sigmoid}),
        relu_grad(d, NeuronDescriptor{NeuronType::relu}),
        sigmoid_grad(d, NeuronDescriptor{NeuronType::sigmoid}),
        mse(d),
        loss_value(Buffer::allocate(d, sizeof(float))) {
    const struct { const char* name; bool transpose; int64_t in, out; } geometry[4] = {
        {"enc1", false, 1, 32}, {"enc2", false, 32, 64}, {"dec1", true, 64, 32}, {"dec2", true, 32, 1}};
    for (int i = 0; i < 4; ++i) {
      layers[i].name = geometry[i].name;
      layers[i].transpose = geometry[i].transpose;
      layers[i].in = geometry[i].in;
      layers[i].out = geometry[i].out;
    }
  }

  // Builds the kernels of layer `l` from its data source (keeping transposed-convolution kernels that were
  // already decoded) and the training state from the data source's arrays.
  void build(Layer& l, float learning_rate) {
    if (!l.transpose) {
      l.conv = Convolution(device, l.source);
      l.conv_grad = ConvolutionGradient(device, l.source);
      // enc1 reads the input images: no data gradient is needed there (MPS: gradientWithWeightsAndBias).
      if (l.name == "enc1") l.conv_grad.set_gradient_option(GradientOption::weights_and_bias);
    } else {
      if (!l.deconv) l.deconv = ConvolutionTranspose(device, l.source);
      if (!l.deconv_grad) l.deconv_grad = ConvolutionTransposeGradient(device, l.source);
    }
    const std::vector<float> w = l.source->weights_as_floats(), b = l.source->biases();
    l.wb = ConvolutionWeightsAndBiasesState(Buffer::from_host(device, w.data(), w.size() * sizeof(float)),
                                            Buffer::from_host(device, b.data(), b.size() * sizeof(float)));
    l.m_w = Buffer::allocate(device, w.size() * sizeof(float));
    l.v_w = Buffer::allocate(device, w.size() * sizeof(float));
    l.m_b = Buffer::allocate(device, b.size() * sizeof(float));
    l.v_b = Buffer::allocate(device, b.size() * sizeof(float));
    l.adam.emplace(device, learning_rate);
  }

  // Every image of one batch size, kept from step to step: the kernels write into them (explicit-destination
  // encodes) instead of allocating and zero-filling fresh images every step — on a GPU each fresh image is an
  // allocation, a fill and a free on the host's critical path. Safe because each step waits for its command
  // buffer before the next one encodes. Pre-activations h*, activations a* and y, and the data gradients
  // dL/da3 (g3), dL/da2 (g2), dL/da1 (g1), each also overwritten in place by the neuron gradient after it.
  struct StepImages {
    Image h1, a1, h2, a2, h3, a3, h4, y, g3, g2, g1;
  };
  std::map<int64_t, StepImages> step_images;
  StepImages& images_for(int64_t n) {
    auto it = step_images.find(n);
    if (it != step_images.end()) return it->second;
    auto make = [&](int64_t side, int64_t channels) {
      return Image(device, ImageDescriptor{.width = side, .height = side, .feature_channels = channels,
                                           .number_of_images = n});
    };
    return step_images[n] = StepImages{make(14, 32), make(14, 32), make(7, 64), make(7, 64), make(14, 32), make(14, 32),
                                       make(kImageSide, 1), make(kImageSide, 1), make(14, 32), make(7, 64), make(14, 32)};
  }
  // The sizing a kernel's allocating encode does, checked against the kept image (the geometry is fixed, so a
  // mismatch is a wiring mistake here).
  static void check_size(const ImageDescriptor& d, const Image& img, const char* what) {
    if (d.width != img.width() || d.height != img.height() || d.feature_channels != img.feature_channels())
      throw Error(ErrorCode::internal, std::string("train: ") + what + " is sized " + std::to_string(d.width) + "x" +
                                           std::to_string(d.height) + "x" + std::to_string(d.feature_channels) +
                                           " but its kept image is " + std::to_string(img.width()) + "x" +
                                           std::to_string(img.height()) + "x" + std::to_string(img.feature_channels()));
  }

  // Forward pass. Keeps every pre-activation (the neuron gradients need the neuron's input) and the
  // gradient states. Sizes: X 28×28×1 → 14×14×32 → 7×7×64 → 14×14×32 → 28×28×1. Each encode is the
  // allocating form's steps with the kept destination: sizing (which sets the kernel's offsets), the result
  // state, the explicit-destination encode.
  struct Forward {
    Image h1, a1, h2, a2, h3, a3, h4, y;
    ConvolutionGradientState s1, s2;
    ConvolutionTransposeGradientState t1, t2;
  };
  Forward forward(CommandBuffer& cb, const Image& x) {
    Forward f;
    const StepImages& o = images_for(x.number_of_images());
    f.h1 = o.h1, f.a1 = o.a1, f.h2 = o.h2, f.a2 = o.a2, f.h3 = o.h3, f.a3 = o.a3, f.h4 = o.h4, f.y = o.y;
    Layer &e1 = layers[0], &e2 = layers[1], &d1 = layers[2], &d2 = layers[3];
    auto conv = [&](Layer& l, const Image& src, Image& dst, ConvolutionGradientState& state) {
      check_size(l.conv.destination_image_descriptor(src), dst, l.name.c_str());
      state = l.conv.result_state(src, dst);
      l.conv.encode(cb, src, dst);
    };
    // The auto-encoder pairing (a.5.5 B): each transpose is sized by the gradient state of the convolution
    // it undoes, so dec1 returns enc2's source size (14×14) and dec2 enc1's (28×28).
    auto deconv = [&](Layer& l, const Image& src, const ConvolutionGradientState& paired, Image& dst,
                      ConvolutionTransposeGradientState& state) {
      check_size(l.deconv.destination_image_descriptor({src}, {paired}), dst, l.name.c_str());
      state = l.deconv.result_state(src, {paired}, dst);
      l.deconv.encode_to_state(cb, src, state, dst);
    };
    conv(e1, x, f.h1, f.s1);
    relu.encode(cb, f.h1, f.a1);
    conv(e2, f.a1, f.h2, f.s2);
    relu.encode(cb, f.h2, f.a2);
    deconv(d1, f.a2, f.s2, f.h3, f.t1);
    relu.encode(cb, f.h3, f.a3);
    deconv(d2, f.a3, f.s1, f.h4, f.t2);
    sigmoid.encode(cb, f.h4, f.y);
    return f;
  }

  // The input images of one batch size, kept from step to step like the neuron outputs (no allocation and
  // zero fill per step). Filled by a command of the step's own command buffer (upload_input), which is safe
  // because each step waits for its command buffer before the next one encodes.
  std::map<int64_t, Image> inputs;
  Image input_image(int64_t n) {
    auto it = inputs.find(n);
    if (it != inputs.end()) return it->second;
    return inputs[n] = Image(device, ImageDescriptor{.width = kImageSide, .height = kImageSide, .feature_channels = 1,
                                                     .number_of_images = n});
  }
  // Encodes the copy of `images` into x as the buffer's first command. On CUDA it is one cudaMemcpyAsync on the
  // command buffer's stream, ordered before the forward kernels without any host synchronisation; `images`
  // must stay valid until the buffer completes (the callers wait for it before returning).
  void upload_input(CommandBuffer& cb, const Image& x, const float* images) const {
    const std::size_t bytes = static_cast<std::size_t>(x.element_count()) * sizeof(float);
    void* stream = cb.cuda_stream();  // null on the CPU; lives as long as the device context `dev` holds
    cb.encode("upload batch", [buffer = x.buffer(), images, bytes, stream, dev = device]() mutable {
      if (dev.kind() == DeviceKind::cuda)
        core::throw_if_error(
            cuda_backend::training::copy_h2d_async(dev.ordinal(), stream, buffer.device_pointer(), images, bytes));
      else
        buffer.copy_from_host(images, bytes);
    });
  }

  double train_step(const float* images, int64_t n, const Communicator* comm, float share) {
    CommandBuffer cb(device);
    cb.label = "train step";
    const Image x = input_image(n);
    upload_input(cb, x, images);
    Forward f = forward(cb, x);
    const StepImages& o = images_for(n);
    Layer &e1 = layers[0], &e2 = layers[1], &d1 = layers[2], &d2 = layers[3];
    // The data gradient of a transposed convolution into a kept image (configuration as its allocating form).
    auto deconv_grad = [&](Layer& l, const Image& gy, const Image& src, const ConvolutionTransposeGradientState& st,
                           const Image& dst) {
      check_size(l.deconv_grad.destination_image_descriptor({gy, src}, {st}), dst, l.name.c_str());
      Image out = dst;
      l.deconv_grad.encode(cb, gy, src, st, out);
      return out;
    };

    // Backwards. The element-wise gradients are written in place (the API allows it for equal types): the
    // loss gradient over y (read by the loss value first, in queue order), each neuron gradient over its gY.
    mse.encode_forward(cb, f.y, x, loss_value);
    Image g = f.y;
    mse.encode_gradient(cb, f.y, x, g);                     // dL/dy
    sigmoid_grad.encode(cb, g, f.h4, g);                    // dL/dh4
    g = deconv_grad(d2, g, f.a3, f.t2, o.g3);                // dL/da3; dW, db of dec2 into t2
    // Data-parallel: sum Σ_r share_r·grad_r of this layer (and the loss) across ranks, in place, while the
    // commands below compute the next layers' gradients.
    if (comm) comm->encode_all_reduce(cb, {FloatSpan{f.t2.gradient_for_weights()}, FloatSpan{f.t2.gradient_for_biases()},
                                           FloatSpan{loss_value}}, ReduceOp::sum, share);
    relu_grad.encode(cb, g, f.h3, g);                       // dL/dh3
    g = deconv_grad(d1, g, f.a2, f.t1, o.g2);                // dL/da2; dec1's into t1
    if (comm) comm->encode_all_reduce(cb, f.t1, ReduceOp::sum, share);
    relu_grad.encode(cb, g, f.h2, g);                       // dL/dh2
    {
      Image g1 = o.g1;
      e2.conv_grad.encode(cb, g, f.a1, f.s2, g1);             // dL/da1; enc2's into s2
      g = g1;
    }
    if (comm) comm->encode_all_reduce(cb, f.s2, ReduceOp::sum, share);
    relu_grad.encode(cb, g, f.h1, g);                       // dL/dh1
    e1.conv_grad.encode(cb, g, x, f.s1);                    // enc1: weights and bias only
    if (comm) {
      comm->encode_all_reduce(cb, f.s1, ReduceOp::sum, share);
      comm->encode_join(cb);  // the optimizers read the reduced gradients
    }

    // Adam on each layer's weights-and-biases state, in place (a.9.5), from that layer's gradient state.
    const ConvolutionGradientState* grads[4] = {&f.s1, &f.s2, &f.t1, &f.t2};
    for (int i = 0; i < 4; ++i) {
      Layer& l = layers[i];
      l.adam->encode(cb, *grads[i], l.wb, {l.m_w, l.m_b}, {l.v_w, l.v_b}, l.wb);
    }
    // Every kernel reloads from its updated state on the queue (the GPU form of a.7.7): on a CUDA device each
    // reload is one launch, with no host copy and no wait. A gradient kernel without the data gradient (enc1's)
    // never reads its weights: it is not reloaded.
    for (Layer* l : {&e1, &e2}) {
      l->conv.reload_weights_and_biases(cb, l->wb);
      if (has_data(l->conv_grad.gradient_option())) l->conv_grad.reload_weights_and_biases(cb, l->wb);
    }
    for (Layer* l : {&d1, &d2}) {
      l->deconv.reload_weights_and_biases(cb, l->wb);
      l->deconv_grad.reload_weights_and_biases(cb, l->wb);
    }
    // The loss is read by the buffer's last command: on a GPU that copy is the wait for the step's work, so the
    // buffer's completion needs no second round trip. `loss` outlives the buffer (waited for below).
    float loss = 0;
    cb.encode("read loss", [value = loss_value, &loss] { value.copy_to_host(&loss, sizeof loss); });
    cb.commit();
    cb.wait_and_check();
    return loss;
  }

  double reconstruct(const float* images, int64_t n, float* out) {
    CommandBuffer cb(device);
    cb.label = "reconstruct";
    const Image x = input_image(n);
    upload_input(cb, x, images);
    Forward f = forward(cb, x);
    cb.commit();
    cb.wait_and_check();
    std::vector<float> y(static_cast<std::size_t>(n * kImagePixels));
    f.y.buffer().copy_to_host(y.data(), y.size() * sizeof(float));
    if (out) std::memcpy(out, y.data(), y.size() * sizeof(float));
    double sse = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const double d = static_cast<double>(y[i]) - static_cast<double>(images[i]);
      sse += d * d;
    }
    return sse;
  }

  // The data sources are not touched by the GPU-form update: bring every data source up to the weights the
  // kernels use (the state), so the coder saves the trained weights.
  void sync_sources() {
    for (Layer& l : layers) {
      l.source->set_weights(read_floats(l.wb.weights(), l.wb.weights_offset(), l.wb.weight_count()));
      l.source->set_biases(read_floats(l.wb.biases(), l.wb.biases_offset(), l.wb.bias_count()));
    }
  }
};

AutoEncoder::AutoEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AutoEncoder::~AutoEncoder() = default;
AutoEncoder::AutoEncoder(AutoEncoder&&) noexcept = default;
AutoEncoder& AutoEncoder::operator=(AutoEncoder&&) noexcept = default;

AutoEncoder::AutoEncoder(const Device& device, uint64_t seed, float learning_rate)
    : impl_(std::make_unique<Impl>(device)) {
  // PyTorch's order: each layer's weight, then its bias; values in PyTorch's layout, then converted.
  SplitMix64 rng(seed);
  for (Layer& l : impl_->layers) {
    const WeightShape s = l.shape();
    // fan_in = weight.size(1)·kH·kW of the PyTorch tensor: Conv2d [out][in][k][k] → in·16,
    // ConvTranspose2d [in][out][k][k] → out·16.
    const double bound = default_init_bound((l.transpose ? l.out : l.in) * 16);
    std::vector<float> w_torch(static_cast<std::size_t>(s.elements())), b(static_cast<std::size_t>(l.out));
    for (float& v : w_torch) v = rng.uniform_symmetric(bound);
    for (float& v : b) v = rng.uniform_symmetric(bound);
    std::vector<float> w = l.transpose ? transpose_weights_from_torch(w_torch, s) : conv_weights_from_torch(w_torch, s);
    l.source = std::make_shared<ArrayDataSource>(layer_descriptor(l.in, l.out), std::move(w), std::move(b),
                                                 DataType::float32, l.name);
    impl_->build(l, learning_rate);
  }
}

double AutoEncoder::train_step(const float* images, int64_t n, const Communicator* comm, float share) {
  return impl_->train_step(images, n, comm, share);
}

double AutoEncoder::reconstruct(const float* images, int64_t n, float* out) {
  return impl_->reconstruct(images, n, out);
}

double AutoEncoder::evaluate(const float* images, int64_t count, int64_t batch) {
  double sse = 0;
  for (int64_t i = 0; i < count; i += batch) {
    const int64_t n = std::min(batch, count - i);
    sse += impl_->reconstruct(images + i * kImagePixels, n, nullptr);
  }
  return sse / static_cast<double>(count * kImagePixels);
}

std::vector<std::pair<std::string, std::vector<float>>> AutoEncoder::torch_parameters() const {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const Layer& l : impl_->layers) {
    const std::vector<float> w = read_floats(l.wb.weights(), l.wb.weights_offset(), l.wb.weight_count());
    out.emplace_back(l.name + ".weight", l.transpose ? transpose_weights_to_torch(w, l.shape())
                                                     : conv_weights_to_torch(w, l.shape()));
    out.emplace_back(l.name + ".bias", read_floats(l.wb.biases(), l.wb.biases_offset(), l.wb.bias_count()));
  }
  return out;
}

std::string AutoEncoder::fingerprint() const {
  uint64_t h = 0xCBF29CE484222325ull;
  for (const auto& [name, values] : torch_parameters()) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(values.data());  // little-endian float32
    for (std::size_t i = 0; i < values.size() * sizeof(float); ++i) h = (h ^ bytes[i]) * 0x100000001B3ull;
  }
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(h));
  return s;
}

void AutoEncoder::save(const std::string& path, const TrainingRecord& r) const {
  impl_->sync_sources();
  io::Encoder model;
  model.set_string("model.class", kModelClass);
  model.set_int("model.version", kModelVersion);
  model.set_string("model.layers", "enc1,enc2,dec1,dec2");
  model.set_string("model.activations", "relu,relu,relu,sigmoid");
  model.set_int("train.epochs", r.epochs);
  model.set_int("train.batch", r.batch);
  model.set_double("train.learning_rate", r.learning_rate);
  model.set_string("train.seed", std::to_string(r.seed));
  model.set_int("train.train_images", r.train_images);
  model.set_int("train.test_images", r.test_images);
  model.set_int("train.eval_batch", r.eval_batch);
  model.set_double("train.test_mse", r.test_mse);
  model.set_string("train.device_kind", r.device_kind);
  for (const Layer& l : impl_->layers) {
    if (l.transpose) {
      io::Encoder k, g;
      l.deconv.encode_to(k);
      merge_into(model, k, l.name);
      l.deconv_grad.encode_to(g);
      merge_into(model, g, l.name + "_grad");
    } else {
      // The convolution has no coder of its own: its descriptor, properties and arrays, in the same form.
      model.set_string(l.name + ".kernel.class", "Convolution");
      l.source->descriptor().encode_to(model, l.name + ".descriptor");
      model.set_int(l.name + ".padding", l.conv.properties().padding);
      const std::vector<float> w = l.source->weights_as_floats(), b = l.source->biases();
      model.set_tensor(l.name + ".weights", DataType::float32, {l.out, 4, 4, l.in}, w.data(), w.size() * sizeof(float));
      model.set_tensor(l.name + ".biases", DataType::float32, {l.out}, b.data(), b.size() * sizeof(float));
      model.set_int(l.name + "_grad.gradient_option", static_cast<int64_t>(l.conv_grad.gradient_option()));
    }
  }
  model.write_file(path);
}

AutoEncoder AutoEncoder::load(const std::string& path, const Device& device, TrainingRecord* record) {
  const io::Decoder d = io::Decoder::from_file(path);
  if (!d.has("model.class") || d.get_string("model.class") != kModelClass)
    throw Error(ErrorCode::format_error, "'" + path + "' is not a tconv auto-encoder model (model.class is '" +
                                             (d.has("model.class") ? d.get_string("model.class") : "") +
                                             "', expected '" + kModelClass + "')");
  if (d.get_int("model.version") > kModelVersion)
    throw Error(ErrorCode::format_error, "'" + path + "' has model.version " +
                                             std::to_string(d.get_int("model.version")) + "; this build reads up to " +
                                             std::to_string(kModelVersion));
  auto impl = std::make_unique<Impl>(device);
  for (Layer& l : impl->layers) {
    if (l.transpose) {
      // The decode init path: the forward kernel restores its weights from the coded data source, the
      // gradient kernel its settings (it adopts the forward's weights on first use, a.10).
      l.deconv = ConvolutionTranspose::decode(sub_decoder(d, l.name), device);
      l.deconv_grad = ConvolutionTransposeGradient::decode(sub_decoder(d, l.name + "_grad"), device);
      l.source = std::dynamic_pointer_cast<ArrayDataSource>(l.deconv.data_source());
      if (!l.source) throw Error(ErrorCode::internal, "decoded kernel '" + l.name + "' has no array data source");
    } else {
      const ConvolutionDescriptor desc = ConvolutionDescriptor::decode(d, l.name + ".descriptor");
      const io::Tensor& w = d.get_tensor(l.name + ".weights");
      const io::Tensor& b = d.get_tensor(l.name + ".biases");
      if (w.dtype != DataType::float32 || b.dtype != DataType::float32 || w.elements() != desc.weight_elements() ||
          b.elements() != desc.output_feature_channels)
        throw Error(ErrorCode::format_error, "'" + path + "': arrays of kernel '" + l.name +
                                                 "' do not match its descriptor (" + desc.describe() + ")");
      std::vector<float> wv(static_cast<std::size_t>(w.elements())), bv(static_cast<std::size_t>(b.elements()));
      std::memcpy(wv.data(), w.data.data(), wv.size() * sizeof(float));
      std::memcpy(bv.data(), b.data.data(), bv.size() * sizeof(float));
      l.source = std::make_shared<ArrayDataSource>(desc, std::move(wv), std::move(bv), DataType::float32, l.name);
    }
    impl->build(l, static_cast<float>(d.has("train.learning_rate") ? d.get_double("train.learning_rate") : 1e-3));
    if (!l.transpose) {
      l.conv.properties().padding = static_cast<PaddingMethod>(d.get_int(l.name + ".padding"));
      l.conv_grad.set_gradient_option(static_cast<GradientOption>(d.get_int(l.name + "_grad.gradient_option")));
    }
  }
  if (record) {
    record->epochs = d.get_int("train.epochs");
    record->batch = d.get_int("train.batch");
    record->learning_rate = d.get_double("train.learning_rate");
    record->seed = std::stoull(d.get_string("train.seed"));
    record->train_images = d.get_int("train.train_images");
    record->test_images = d.get_int("train.test_images");
    record->eval_batch = d.get_int("train.eval_batch");
    record->test_mse = d.get_double("train.test_mse");
    record->device_kind = d.get_string("train.device_kind");
  }
  return AutoEncoder(std::move(impl));
}

}  // namespace tconv::cli::train
