// tconv Python bindings — the MPS-style object API (include/tconv/*.hpp) for porting MPS code: Buffer,
// CommandBuffer, Image (to and from NumPy), ConvolutionDescriptor, ArrayDataSource, ConvolutionTranspose
// (with the training encode that returns a state), ConvolutionTransposeGradient and the states.
// Names are the C++ API's (snake_case translations of MPS's); docs/python.md maps the common MPS calls.
// Encodes only queue work: commit() and wait_until_completed() / wait_and_check() run it. The GIL is
// released while waiting, so queued commands never wait on Python.
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "bindings.hpp"
#include "tconv/tconv.hpp"

namespace tconv::python {

namespace {

// NumPy array owning a fresh copy of `bytes` bytes, of shape `shape` and element type `t`.
// bfloat16 has no NumPy type: callers convert it to float32 first.
nb::ndarray<nb::numpy> new_numpy(const std::vector<size_t>& shape, DataType t) {
  size_t count = 1;
  for (size_t s : shape) count *= s;
  const size_t bytes = count * size_of(t);
  auto* mem = new uint8_t[bytes > 0 ? bytes : 1];
  nb::capsule owner(mem, [](void* p) noexcept { delete[] static_cast<uint8_t*>(p); });
  nb::dlpack::dtype dt = nb::dtype<float>();
  if (t == DataType::float16) dt.bits = 16;  // IEEE half: code Float, 16 bits
  return nb::ndarray<nb::numpy>(mem, shape.size(), shape.data(), owner, nullptr, dt);
}

DataType parse_type(const std::string& s) {
  if (s == "float32") return DataType::float32;
  if (s == "float16") return DataType::float16;
  if (s == "bfloat16") return DataType::bfloat16;
  throw Error(ErrorCode::invalid_argument, "data type must be 'float32', 'float16' or 'bfloat16', got '" + s + "'");
}

// Float32 values of a 1-D-or-more NumPy/DLPack array with exactly `count` elements (any shape).
std::vector<float> floats_of(const nb::ndarray<nb::ro, nb::device::cpu, float, nb::c_contig>& a, const char* role,
                             int64_t count = -1) {
  if (count >= 0 && static_cast<int64_t>(a.size()) != count) {
    throw Error(ErrorCode::invalid_argument, std::string(role) + " has " + std::to_string(a.size()) +
                                                 " elements, expected " + std::to_string(count));
  }
  return std::vector<float>(a.data(), a.data() + a.size());
}
using FloatArray = nb::ndarray<nb::ro, nb::device::cpu, float, nb::c_contig>;

// An Image from an [N][H][W][C] array (or [H][W][C] for one image); element type float32 or float16 keeps
// the array's type unless `data_type` names another (values are converted).
Image image_from_array(const Device& device, const InArray& a, std::optional<std::string> data_type) {
  require_contiguous(a, "image array");
  const DataType src = data_type_of(a, "image array");
  std::vector<int64_t> s = shape_of(a);
  if (s.size() == 3) s.insert(s.begin(), 1);
  if (s.size() != 4) {
    throw Error(ErrorCode::invalid_argument,
                "image array must be [N, H, W, C] or [H, W, C], got shape " + shape_text(shape_of(a)));
  }
  ImageDescriptor d{.width = s[2], .height = s[1], .feature_channels = s[3], .number_of_images = s[0],
                    .data_type = data_type ? parse_type(*data_type) : src};
  Image img(device, d);
  const int64_t per = img.elements_per_image();
  for (int64_t n = 0; n < s[0]; ++n) {
    const auto* base = static_cast<const uint8_t*>(a.data()) + n * per * size_of(src);
    if (src == d.data_type) {
      img.write_bytes(base, ImageLayout::hwc, n);
    } else if (src == DataType::float32) {
      img.write_floats(reinterpret_cast<const float*>(base), ImageLayout::hwc, n);
    } else {
      throw Error(ErrorCode::invalid_argument, "converting an image array of type " + std::string(to_string(src)) +
                                                   " to " + std::string(to_string(d.data_type)) +
                                                   " is not supported: pass float32 values");
    }
  }
  return img;
}

// [N][H][W][C] NumPy copy of an image: its own type for float32/float16, float32 for bfloat16.
nb::ndarray<nb::numpy> image_to_numpy(const Image& img) {
  if (img.empty()) throw Error(ErrorCode::invalid_argument, "the image is empty (no data to read)");
  const DataType t = img.data_type() == DataType::bfloat16 ? DataType::float32 : img.data_type();
  auto out = new_numpy({size_t(img.number_of_images()), size_t(img.height()), size_t(img.width()),
                        size_t(img.feature_channels())},
                       t);
  auto* dst = static_cast<uint8_t*>(out.data());
  const int64_t per = img.elements_per_image();
  for (int64_t n = 0; n < img.number_of_images(); ++n) {
    if (t == img.data_type()) {
      img.read_bytes(dst + n * per * size_of(t), ImageLayout::hwc, n);
    } else {
      const std::vector<float> v = img.read_floats(ImageLayout::hwc, n);
      std::memcpy(dst + n * per * sizeof(float), v.data(), v.size() * sizeof(float));
    }
  }
  return out;
}

nb::ndarray<nb::numpy> floats_to_numpy(const std::vector<float>& v) {
  auto out = new_numpy({v.size()}, DataType::float32);
  if (!v.empty()) std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
  return out;
}

// Float32 contents of a buffer range (a copy), e.g. a state's gradients.
nb::ndarray<nb::numpy> buffer_floats(const Buffer& b, size_t offset_bytes, int64_t count) {
  if (!b) throw Error(ErrorCode::invalid_argument, "the buffer is null");
  if (count < 0) count = static_cast<int64_t>((b.length() - offset_bytes) / sizeof(float));
  auto out = new_numpy({size_t(count)}, DataType::float32);
  b.copy_to_host(out.data(), size_t(count) * sizeof(float), offset_bytes);
  return out;
}

void wait_released(const CommandBuffer& cb, bool check) {
  nb::gil_scoped_release release;
  if (check) {
    cb.wait_and_check();
  } else {
    cb.wait_until_completed();
  }
}

}  // namespace

void register_objects(nb::module_& m) {
  nb::enum_<DataType>(m, "DataType")
      .value("float32", DataType::float32)
      .value("float16", DataType::float16)
      .value("bfloat16", DataType::bfloat16)
      .value("uint8", DataType::uint8);
  nb::enum_<GradientOption>(m, "GradientOption")
      .value("data", GradientOption::data)
      .value("weights_and_bias", GradientOption::weights_and_bias)
      .value("all", GradientOption::all);
  nb::enum_<NeuronType>(m, "NeuronType")
      .value("none", NeuronType::none).value("relu", NeuronType::relu).value("linear", NeuronType::linear)
      .value("sigmoid", NeuronType::sigmoid).value("hard_sigmoid", NeuronType::hard_sigmoid)
      .value("tanh", NeuronType::tanh).value("absolute", NeuronType::absolute)
      .value("soft_plus", NeuronType::soft_plus).value("soft_sign", NeuronType::soft_sign)
      .value("elu", NeuronType::elu).value("relu_n", NeuronType::relu_n).value("power", NeuronType::power)
      .value("exponential", NeuronType::exponential).value("logarithm", NeuronType::logarithm)
      .value("gelu", NeuronType::gelu);
  nb::enum_<CommandBufferStatus>(m, "CommandBufferStatus")
      .value("not_enqueued", CommandBufferStatus::not_enqueued)
      .value("committed", CommandBufferStatus::committed)
      .value("completed", CommandBufferStatus::completed)
      .value("error", CommandBufferStatus::error);

  nb::class_<Offset>(m, "Offset")
      .def(nb::init<>())
      .def("__init__", [](Offset* o, int64_t x, int64_t y, int64_t z) { new (o) Offset{x, y, z}; },
           nb::arg("x") = 0, nb::arg("y") = 0, nb::arg("z") = 0)
      .def_rw("x", &Offset::x).def_rw("y", &Offset::y).def_rw("z", &Offset::z);
  nb::class_<Region>(m, "Region")
      .def(nb::init<>(), "No clip (MPSRectNoClip).")
      .def("__init__",
           [](Region* r, int64_t x, int64_t y, int64_t z, int64_t w, int64_t h, int64_t d) {
             new (r) Region{x, y, z, w, h, d};
           },
           nb::arg("x"), nb::arg("y"), nb::arg("z"), nb::arg("width"), nb::arg("height"), nb::arg("depth") = 1)
      .def_rw("x", &Region::x).def_rw("y", &Region::y).def_rw("z", &Region::z)
      .def_rw("width", &Region::width).def_rw("height", &Region::height).def_rw("depth", &Region::depth)
      .def_prop_ro("is_no_clip", &Region::is_no_clip);

  nb::class_<Buffer>(m, "Buffer", "Reference-counted device memory (MTLBuffer).")
      .def_static("allocate", &Buffer::allocate, nb::arg("device"), nb::arg("bytes"))
      .def_static("from_numpy",
                  [](const Device& d, const FloatArray& a) { return Buffer::from_host(d, a.data(), a.size() * 4); },
                  nb::arg("device"), nb::arg("array"), "A buffer holding a copy of a float32 array.")
      .def_prop_ro("length", &Buffer::length)
      .def("to_numpy", [](const Buffer& b) { return buffer_floats(b, 0, -1); }, "The contents as float32 (a copy).")
      .def("__bool__", [](const Buffer& b) { return static_cast<bool>(b); });

  nb::class_<CommandBuffer>(m, "CommandBuffer", "An ordered queue of work; nothing runs before commit().")
      .def(nb::init<const Device&>(), nb::arg("device"))
      .def_prop_ro("device", &CommandBuffer::device)
      .def_prop_ro("status", &CommandBuffer::status)
      .def_prop_ro("error", [](const CommandBuffer& cb) -> std::optional<std::string> {
        auto e = cb.error();
        return e ? std::optional<std::string>(e->what()) : std::nullopt;
      })
      .def_rw("label", &CommandBuffer::label)
      .def("commit", &CommandBuffer::commit)
      .def("wait_until_completed", [](const CommandBuffer& cb) { wait_released(cb, false); })
      .def("wait_and_check", [](const CommandBuffer& cb) { wait_released(cb, true); },
           "Waits, then raises the first failing command's error as a tconv exception.");

  nb::class_<ImageDescriptor>(m, "ImageDescriptor")
      .def("__init__",
           [](ImageDescriptor* d, int64_t w, int64_t h, int64_t c, int64_t n, const std::string& t) {
             new (d) ImageDescriptor{w, h, c, n, parse_type(t)};
           },
           nb::arg("width"), nb::arg("height"), nb::arg("feature_channels"), nb::arg("number_of_images") = 1,
           nb::arg("data_type") = "float32")
      .def_rw("width", &ImageDescriptor::width).def_rw("height", &ImageDescriptor::height)
      .def_rw("feature_channels", &ImageDescriptor::feature_channels)
      .def_rw("number_of_images", &ImageDescriptor::number_of_images)
      .def_rw("data_type", &ImageDescriptor::data_type);

  nb::class_<Image>(m, "Image", "A batch of feature maps, dense NHWC (MPSImage).")
      .def(nb::init<const Device&, const ImageDescriptor&>(), nb::arg("device"), nb::arg("descriptor"))
      .def_static("from_numpy", &image_from_array, nb::arg("device"), nb::arg("array"),
                  nb::arg("data_type") = nb::none(),
                  "An image from an [N, H, W, C] (or [H, W, C]) float32/float16 array (copied).")
      .def("to_numpy", &image_to_numpy, "[N, H, W, C] copy (float32 for bfloat16 images).")
      .def_prop_ro("empty", &Image::empty)
      .def_prop_ro("width", &Image::width).def_prop_ro("height", &Image::height)
      .def_prop_ro("feature_channels", &Image::feature_channels)
      .def_prop_ro("number_of_images", &Image::number_of_images)
      .def_prop_ro("data_type", &Image::data_type)
      .def_prop_ro("descriptor", &Image::descriptor)
      .def("fill", &Image::fill, nb::arg("value"))
      .def_rw("label", &Image::label);

  nb::class_<ConvolutionDescriptor>(m, "ConvolutionDescriptor", "MPSCNNConvolutionDescriptor.")
      .def(nb::init<int64_t, int64_t, int64_t, int64_t>(), nb::arg("kernel_width"), nb::arg("kernel_height"),
           nb::arg("input_feature_channels"), nb::arg("output_feature_channels"))
      .def_rw("kernel_width", &ConvolutionDescriptor::kernel_width)
      .def_rw("kernel_height", &ConvolutionDescriptor::kernel_height)
      .def_rw("input_feature_channels", &ConvolutionDescriptor::input_feature_channels)
      .def_rw("output_feature_channels", &ConvolutionDescriptor::output_feature_channels)
      .def_rw("stride_x", &ConvolutionDescriptor::stride_x).def_rw("stride_y", &ConvolutionDescriptor::stride_y)
      .def_rw("dilation_x", &ConvolutionDescriptor::dilation_x)
      .def_rw("dilation_y", &ConvolutionDescriptor::dilation_y)
      .def_rw("groups", &ConvolutionDescriptor::groups)
      .def("set_neuron_type", &ConvolutionDescriptor::set_neuron_type, nb::arg("type"), nb::arg("a") = 0.0f,
           nb::arg("b") = 0.0f)
      .def_prop_ro("neuron_type", &ConvolutionDescriptor::neuron_type)
      .def_prop_ro("weight_elements", &ConvolutionDescriptor::weight_elements)
      .def("validate", &ConvolutionDescriptor::validate)
      .def("describe", &ConvolutionDescriptor::describe)
      .def("__repr__", &ConvolutionDescriptor::describe);

  nb::class_<ConvolutionDataSource>(m, "ConvolutionDataSource", "MPSCNNConvolutionDataSource (abstract).")
      .def_prop_ro("label", &ConvolutionDataSource::label)
      .def_prop_ro("descriptor", &ConvolutionDataSource::descriptor);
  nb::class_<ArrayDataSource, ConvolutionDataSource>(m, "ArrayDataSource",
                                                     "A data source owning OHWI weights and optional biases.")
      .def("__init__",
           [](ArrayDataSource* p, const ConvolutionDescriptor& d, const FloatArray& weights,
              std::optional<FloatArray> biases, const std::string& storage, const std::string& label) {
             std::vector<float> w = floats_of(weights, "weights", d.weight_elements());
             std::vector<float> b = biases ? floats_of(*biases, "biases", d.output_feature_channels)
                                           : std::vector<float>{};
             new (p) ArrayDataSource(d, std::move(w), std::move(b), parse_type(storage), label);
           },
           nb::arg("descriptor"), nb::arg("weights"), nb::arg("biases").none() = nb::none(),
           nb::arg("storage") = "float32", nb::arg("label") = "",
           "weights: Nout·kH·kW·Nin/G float32 values, OHWI (any shape); biases: Nout values or None.")
      .def("weights", [](const ArrayDataSource& s) { return floats_to_numpy(s.weights_as_floats()); })
      .def("biases", [](const ArrayDataSource& s) { return floats_to_numpy(s.biases()); })
      .def("set_weights", [](ArrayDataSource& s, const FloatArray& a) { s.set_weights(floats_of(a, "weights")); })
      .def("set_biases", [](ArrayDataSource& s, const FloatArray& a) { s.set_biases(floats_of(a, "biases")); })
      .def_prop_rw("learning_rate", &ArrayDataSource::learning_rate, &ArrayDataSource::set_learning_rate)
      .def("update", [](ArrayDataSource& s, const ConvolutionGradientState& g,
                        const ConvolutionWeightsAndBiasesState& src) { return s.update(g, src); },
           nb::arg("gradient_state"), nb::arg("source_state"),
           "CPU-style SGD update of this data source's arrays (after the command buffer completed).");

  // ---- states ----
  nb::class_<State>(m, "State")
      .def("__bool__", [](const State& s) { return static_cast<bool>(s); })
      .def_prop_ro("is_temporary", &State::is_temporary)
      .def_prop_ro("resource_count", &State::resource_count)
      .def("resource", &State::resource, nb::arg("index"))
      .def_prop_rw("label", &State::label, &State::set_label);
  nb::class_<ConvolutionWeightsAndBiasesState, State>(m, "ConvolutionWeightsAndBiasesState")
      .def(nb::init<Buffer, Buffer>(), nb::arg("weights"), nb::arg("biases"))
      .def(nb::init<const Device&, const ConvolutionDescriptor&>(), nb::arg("device"), nb::arg("descriptor"))
      .def_prop_ro("weights", &ConvolutionWeightsAndBiasesState::weights)
      .def_prop_ro("biases", &ConvolutionWeightsAndBiasesState::biases)
      .def("weights_numpy", [](const ConvolutionWeightsAndBiasesState& s) {
        return buffer_floats(s.weights(), s.weights_offset(), s.weight_count());
      })
      .def("biases_numpy", [](const ConvolutionWeightsAndBiasesState& s) {
        return buffer_floats(s.biases(), s.biases_offset(), s.bias_count());
      });
  nb::class_<ForwardRecord>(m, "ForwardRecord", "The forward kernel's properties a gradient state recorded.")
      .def_ro("kernel_width", &ForwardRecord::kernel_width).def_ro("kernel_height", &ForwardRecord::kernel_height)
      .def_ro("stride_x", &ForwardRecord::stride_x).def_ro("stride_y", &ForwardRecord::stride_y)
      .def_ro("dilation_x", &ForwardRecord::dilation_x).def_ro("dilation_y", &ForwardRecord::dilation_y)
      .def_ro("groups", &ForwardRecord::groups)
      .def_ro("offset", &ForwardRecord::offset)
      .def_ro("kernel_offset_x", &ForwardRecord::kernel_offset_x)
      .def_ro("kernel_offset_y", &ForwardRecord::kernel_offset_y)
      .def_ro("total_offset_x", &ForwardRecord::total_offset_x)
      .def_ro("total_offset_y", &ForwardRecord::total_offset_y)
      .def_ro("source_width", &ForwardRecord::source_width).def_ro("source_height", &ForwardRecord::source_height)
      .def_ro("destination_width", &ForwardRecord::destination_width)
      .def_ro("destination_height", &ForwardRecord::destination_height);
  nb::class_<ConvolutionGradientState, State>(m, "ConvolutionGradientState")
      .def_prop_ro("forward", &ConvolutionGradientState::forward, nb::rv_policy::copy)
      .def_prop_ro("gradient_for_weights", &ConvolutionGradientState::gradient_for_weights)
      .def_prop_ro("gradient_for_biases", &ConvolutionGradientState::gradient_for_biases)
      .def("gradient_for_weights_numpy",
           [](const ConvolutionGradientState& s) { return buffer_floats(s.gradient_for_weights(), 0, -1); },
           "OHWI float32 copy (read after the command buffer completed).")
      .def("gradient_for_biases_numpy",
           [](const ConvolutionGradientState& s) { return buffer_floats(s.gradient_for_biases(), 0, -1); })
      .def_prop_ro("source_width", &ConvolutionGradientState::source_width)
      .def_prop_ro("source_height", &ConvolutionGradientState::source_height)
      .def_prop_ro("gradients_initialised", &ConvolutionGradientState::gradients_initialised);
  nb::class_<ConvolutionTransposeGradientState, ConvolutionGradientState>(m, "ConvolutionTransposeGradientState")
      .def(nb::init<>(), "A null state, filled by ConvolutionTranspose.encode_training.")
      .def("same_object", [](const ConvolutionTransposeGradientState& a, const ConvolutionTransposeGradientState& b) {
        return a.same_object(b);
      })
      .def("convolution_transpose", &ConvolutionTransposeGradientState::convolution_transpose);

  // ---- kernels ----
  nb::class_<KernelProperties>(m, "KernelProperties", "Read-write properties of a forward kernel.")
      .def_rw("offset", &KernelProperties::offset)
      .def_rw("clip_rect", &KernelProperties::clip_rect)
      .def_rw("destination_feature_channel_offset", &KernelProperties::destination_feature_channel_offset)
      .def_rw("source_feature_channel_offset", &KernelProperties::source_feature_channel_offset)
      .def_rw("source_feature_channel_max_count", &KernelProperties::source_feature_channel_max_count)
      .def_rw("padding", &KernelProperties::padding)
      .def_rw("kernel_offset_x", &KernelProperties::kernel_offset_x)
      .def_rw("kernel_offset_y", &KernelProperties::kernel_offset_y)
      .def_rw("precision", &KernelProperties::precision)
      .def_rw("algorithm", &KernelProperties::algorithm)
      .def_rw("allow_nondeterministic", &KernelProperties::allow_nondeterministic);
  nb::class_<BinaryKernelProperties>(m, "BinaryKernelProperties", "Read-write properties of a gradient kernel.")
      .def_rw("primary_offset", &BinaryKernelProperties::primary_offset)
      .def_rw("secondary_offset", &BinaryKernelProperties::secondary_offset)
      .def_rw("clip_rect", &BinaryKernelProperties::clip_rect)
      .def_rw("destination_feature_channel_offset", &BinaryKernelProperties::destination_feature_channel_offset)
      .def_rw("padding", &BinaryKernelProperties::padding)
      .def_rw("kernel_offset_x", &BinaryKernelProperties::kernel_offset_x)
      .def_rw("kernel_offset_y", &BinaryKernelProperties::kernel_offset_y)
      .def_rw("precision", &BinaryKernelProperties::precision)
      .def_rw("algorithm", &BinaryKernelProperties::algorithm)
      .def_rw("allow_nondeterministic", &BinaryKernelProperties::allow_nondeterministic);
  nb::enum_<Precision>(m, "Precision")
      .value("fp32", Precision::fp32).value("tf32", Precision::tf32)
      .value("bf16", Precision::bf16).value("fp16", Precision::fp16);

  using CT = ConvolutionTranspose;
  nb::class_<CT>(m, "ConvolutionTranspose", "MPSCNNConvolutionTranspose: the forward transposed convolution.")
      .def(nb::init<const Device&, std::shared_ptr<ConvolutionDataSource>>(), nb::arg("device"),
           nb::arg("data_source"))
      .def_prop_rw("label", &CT::label, &CT::set_label)
      .def_prop_ro("input_feature_channels", &CT::input_feature_channels)
      .def_prop_ro("output_feature_channels", &CT::output_feature_channels)
      .def_prop_ro("groups", &CT::groups)
      .def_prop_ro("kernel_width", &CT::kernel_width).def_prop_ro("kernel_height", &CT::kernel_height)
      .def_prop_ro("stride_x", &CT::stride_x).def_prop_ro("stride_y", &CT::stride_y)
      .def_prop_ro("dilation_x", &CT::dilation_x).def_prop_ro("dilation_y", &CT::dilation_y)
      .def_prop_ro("properties", nb::overload_cast<>(&CT::properties), nb::rv_policy::reference_internal,
                   "Mutable: setting a field changes the kernel (as MPS properties do).")
      .def("encode", nb::overload_cast<CommandBuffer&, const Image&>(&CT::encode), nb::arg("command_buffer"),
           nb::arg("source"), "Sized by the padding policy; returns the destination image.")
      .def("encode_into", nb::overload_cast<CommandBuffer&, const Image&, Image&>(&CT::encode),
           nb::arg("command_buffer"), nb::arg("source"), nb::arg("destination"),
           "Explicit destination: current offsets and clip rectangle, no sizing.")
      .def(
          "encode_training",
          [](CT& k, CommandBuffer& cb, const Image& src, bool temporary) {
            ConvolutionTransposeGradientState state;
            Image dst = k.encode(cb, src, ConvolutionGradientState{}, state, temporary);
            return std::make_pair(dst, state);
          },
          nb::arg("command_buffer"), nb::arg("source"), nb::arg("destination_state_is_temporary") = false,
          "Training forward: returns (destination, ConvolutionTransposeGradientState) for the gradient kernel.")
      .def(
          "encode_training_batch",
          [](CT& k, CommandBuffer& cb, const ImageBatch& sources, bool temporary) {
            ConvolutionTransposeGradientStateBatch states;
            ImageBatch dst = k.encode_batch(cb, sources, ConvolutionGradientStateBatch(sources.size()), states,
                                            temporary);
            return std::make_pair(dst, states);
          },
          nb::arg("command_buffer"), nb::arg("sources"), nb::arg("destination_states_are_temporary") = false,
          "encodeBatch for training: returns (destinations, states); the states are one shared state.")
      .def("export_weights_and_biases", &CT::export_weights_and_biases, nb::arg("command_buffer"),
           nb::arg("result_state_can_be_temporary") = false)
      .def("reload_weights_and_biases", &CT::reload_weights_and_biases, nb::arg("command_buffer"), nb::arg("state"))
      .def("reload_weights_and_biases_from_data_source", &CT::reload_weights_and_biases_from_data_source)
      .def("current_weights", [](const CT& k) { return floats_to_numpy(k.current_weights()); })
      .def("current_biases", [](const CT& k) { return floats_to_numpy(k.current_biases()); })
      .def("description", &CT::description);

  using CTG = ConvolutionTransposeGradient;
  nb::class_<CTG>(m, "ConvolutionTransposeGradient",
                  "MPSCNNConvolutionTransposeGradient: gX, gW and gB of a transposed convolution.")
      .def(nb::init<const Device&, std::shared_ptr<ConvolutionDataSource>>(), nb::arg("device"),
           nb::arg("data_source"))
      .def_prop_rw("label", &CTG::label, &CTG::set_label)
      .def_prop_rw("gradient_option", &CTG::gradient_option, &CTG::set_gradient_option)
      .def_prop_ro("groups", &CTG::groups)
      .def_prop_ro("properties", nb::overload_cast<>(&CTG::properties), nb::rv_policy::reference_internal)
      .def("encode",
           nb::overload_cast<CommandBuffer&, const Image&, const Image&, const ConvolutionTransposeGradientState&>(
               &CTG::encode),
           nb::arg("command_buffer"), nb::arg("source_gradient"), nb::arg("source_image"), nb::arg("gradient_state"),
           "Returns gX (empty without the data option); gW/gB go to the state's gradient buffers.")
      .def("encode_into",
           nb::overload_cast<CommandBuffer&, const Image&, const Image&, const ConvolutionTransposeGradientState&,
                             Image&>(&CTG::encode),
           nb::arg("command_buffer"), nb::arg("source_gradient"), nb::arg("source_image"), nb::arg("gradient_state"),
           nb::arg("destination_gradient"))
      .def("encode_batch",
           nb::overload_cast<CommandBuffer&, const ImageBatch&, const ImageBatch&,
                             const ConvolutionTransposeGradientStateBatch&>(&CTG::encode_batch),
           nb::arg("command_buffer"), nb::arg("source_gradients"), nb::arg("source_images"),
           nb::arg("gradient_states"), "encodeBatch: one gX per image; gW/gB accumulate over the batch (e4).")
      .def("reload_weights_and_biases", &CTG::reload_weights_and_biases, nb::arg("command_buffer"), nb::arg("state"))
      .def("reload_weights_and_biases_from_data_source", &CTG::reload_weights_and_biases_from_data_source)
      .def("current_weights", [](const CTG& k) { return floats_to_numpy(k.current_weights()); })
      .def("description", &CTG::description);
}

}  // namespace tconv::python
