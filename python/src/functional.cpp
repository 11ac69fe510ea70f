// tconv Python bindings — the PyTorch-style functional API (include/tconv/functional.hpp) on DLPack arrays.
//
// Arrays arrive as nanobind ndarrays, i.e. through DLPack (PyTorch CPU tensors, NumPy arrays, anything with
// __dlpack__): the library reads and writes their memory directly, no copy. Outputs are allocated by the
// Python layer (python/tconv/_functional.py) in the caller's framework and passed in, so a call on PyTorch
// tensors returns PyTorch tensors that own the memory tconv wrote. The GIL is released while tconv runs.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <utility>

#include "bindings.hpp"
#include "tconv/error.hpp"
#include "tconv/functional.hpp"

namespace tconv::python {

namespace {

ConstArrayRef const_ref(const InArray& a, const char* role) {
  require_contiguous(a, role);
  return ConstArrayRef{a.data(), data_type_of(a, role), shape_of(a)};
}

ArrayRef out_ref(const OutArray& a, const char* role) {
  // Writability is checked by nanobind when it binds a (non-nb::ro) OutArray.
  require_contiguous(a, role);
  return ArrayRef{a.data(), data_type_of(a, role), shape_of(a)};
}

Hw hw(const std::pair<int64_t, int64_t>& p) { return Hw{p.first, p.second}; }

ConvTranspose2dOptions make_options(std::pair<int64_t, int64_t> stride, std::pair<int64_t, int64_t> padding,
                                    std::pair<int64_t, int64_t> output_padding, std::pair<int64_t, int64_t> dilation,
                                    int64_t groups, std::pair<int64_t, int64_t> output_size, const std::string& layout,
                                    const std::string& weight_layout, const std::string& precision,
                                    const std::string& algorithm, bool allow_nondeterministic) {
  ConvTranspose2dOptions o;
  o.stride = hw(stride);
  o.padding = hw(padding);
  o.output_padding = hw(output_padding);
  o.dilation = hw(dilation);
  o.groups = groups;
  o.output_size = hw(output_size);
  if (layout == "nchw") {
    o.layout = ActivationLayout::nchw;
  } else if (layout == "nhwc") {
    o.layout = ActivationLayout::nhwc;
  } else {
    throw Error(ErrorCode::invalid_argument, "layout must be 'nchw' or 'nhwc', got '" + layout + "'");
  }
  if (weight_layout == "pytorch") {
    o.weight_layout = WeightLayout::pytorch;
  } else if (weight_layout == "mps") {
    o.weight_layout = WeightLayout::mps;
  } else {
    throw Error(ErrorCode::invalid_argument,
                "weight_layout must be 'pytorch' or 'mps', got '" + weight_layout + "'");
  }
  if (!parse_precision(precision, o.precision)) {
    throw Error(ErrorCode::invalid_argument,
                "precision must be 'fp32', 'tf32', 'bf16' or 'fp16', got '" + precision + "'");
  }
  o.algorithm = algorithm;
  o.allow_nondeterministic = allow_nondeterministic;
  return o;
}

}  // namespace

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

DataType data_type_of(nb::dlpack::dtype t, const char* role) {
  if (t.lanes == 1 && t.bits == 32 && t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float))
    return DataType::float32;
  if (t.lanes == 1 && t.bits == 16 && t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float))
    return DataType::float16;
  if (t.lanes == 1 && t.bits == 16 && t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat))
    return DataType::bfloat16;
  static const char* const kinds[] = {"int", "uint", "float", "opaque", "bfloat", "complex", "bool"};
  const std::string kind = t.code < 7 ? kinds[t.code] : "code" + std::to_string(t.code) + "_";
  throw Error(ErrorCode::invalid_argument, std::string(role) + " has element type " + kind + std::to_string(t.bits) +
                                               (t.lanes != 1 ? "x" + std::to_string(t.lanes) : std::string()) +
                                               "; tconv takes float32, float16 or bfloat16");
}

void require_contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, const char* role) {
  int64_t expect = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    // A stride of a size-1 dimension does not matter (PyTorch reports arbitrary ones there).
    if (shape[i] != 1 && strides[i] != expect) {
      throw Error(ErrorCode::invalid_argument, std::string(role) + " of shape " + shape_text(shape) +
                                                   " is not dense C order (stride " + std::to_string(strides[i]) +
                                                   " on dimension " + std::to_string(i) + ")");
    }
    expect *= shape[i];
  }
}

void register_functional(nb::module_& m) {
  nb::class_<ConvTranspose2dOptions>(m, "ConvTranspose2dOptions",
                                     "Geometry and execution options of one functional call (made by the "
                                     "Python layer from PyTorch-style arguments).")
      .def_prop_ro("stride", [](const ConvTranspose2dOptions& o) { return std::make_pair(o.stride.h, o.stride.w); })
      .def_prop_ro("padding", [](const ConvTranspose2dOptions& o) { return std::make_pair(o.padding.h, o.padding.w); })
      .def_prop_ro("output_padding",
                   [](const ConvTranspose2dOptions& o) { return std::make_pair(o.output_padding.h, o.output_padding.w); })
      .def_prop_ro("dilation",
                   [](const ConvTranspose2dOptions& o) { return std::make_pair(o.dilation.h, o.dilation.w); })
      .def_ro("groups", &ConvTranspose2dOptions::groups)
      .def_prop_ro("layout", [](const ConvTranspose2dOptions& o) { return std::string(to_string(o.layout)); })
      .def_prop_ro("weight_layout",
                   [](const ConvTranspose2dOptions& o) { return std::string(to_string(o.weight_layout)); })
      .def_prop_ro("precision", [](const ConvTranspose2dOptions& o) { return std::string(to_string(o.precision)); })
      .def_ro("algorithm", &ConvTranspose2dOptions::algorithm);

  m.def("_make_options", &make_options, nb::arg("stride"), nb::arg("padding"), nb::arg("output_padding"),
        nb::arg("dilation"), nb::arg("groups"), nb::arg("output_size"), nb::arg("layout"), nb::arg("weight_layout"),
        nb::arg("precision"), nb::arg("algorithm"), nb::arg("allow_nondeterministic"));

  // For tests: the address tconv reads for an input array (equal to the producer's own pointer when the
  // DLPack import is zero-copy, e.g. torch.Tensor.data_ptr()).
  m.def("_data_pointer", [](const InArray& a) { return reinterpret_cast<uintptr_t>(a.data()); }, nb::arg("array"));

  m.def("_output_shape", &conv_transpose2d_output_shape, nb::arg("x_shape"), nb::arg("w_shape"), nb::arg("options"));

  m.def(
      "_conv_transpose2d",
      [](const Device& device, const InArray& x, const InArray& w, std::optional<InArray> b, const OutArray& y,
         const ConvTranspose2dOptions& opt) {
        const ConstArrayRef xr = const_ref(x, "x"), wr = const_ref(w, "weight");
        const ConstArrayRef br = b ? const_ref(*b, "bias") : ConstArrayRef{};
        const ArrayRef yr = out_ref(y, "output");
        nb::gil_scoped_release release;
        return conv_transpose2d(device, xr, wr, br, yr, opt);
      },
      nb::arg("device"), nb::arg("x"), nb::arg("w"), nb::arg("b").none(), nb::arg("y"), nb::arg("options"),
      "Writes conv_transpose2d(x, w, b) into y; returns the algorithm's name.");

  m.def(
      "_conv_transpose2d_backward",
      [](const Device& device, const InArray& x, const InArray& w, const InArray& dy, std::optional<OutArray> dx,
         std::optional<OutArray> dw, std::optional<OutArray> db, const ConvTranspose2dOptions& opt) {
        // x and w always give the geometry; their data is read only where a requested gradient needs it.
        const ConstArrayRef xr = const_ref(x, "x"), wr = const_ref(w, "weight"), dyr = const_ref(dy, "grad_output");
        ConvTranspose2dGrads g;
        if (dx) g.dx = out_ref(*dx, "grad_input");
        if (dw) g.dw = out_ref(*dw, "grad_weight");
        if (db) g.db = out_ref(*db, "grad_bias");
        nb::gil_scoped_release release;
        const ConvTranspose2dBackwardResult r = conv_transpose2d_backward(device, xr, wr, dyr, g, opt);
        return std::make_pair(r.data_algorithm, r.weights_algorithm);
      },
      nb::arg("device"), nb::arg("x"), nb::arg("w"), nb::arg("dy"), nb::arg("dx").none(), nb::arg("dw").none(),
      nb::arg("db").none(), nb::arg("options"),
      "Writes the requested gradients (None: not computed); returns (data_algorithm, weights_algorithm).");
}

}  // namespace tconv::python
