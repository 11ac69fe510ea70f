// tconv Python bindings — what the binding files share: one registration function per file, and the
// conversions between DLPack/NumPy arrays (nanobind ndarray) and the library's array views.
// The bindings stay thin (design §3): convert arguments, release the GIL, call the public C++ API.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <string>
#include <vector>

#include "tconv/types.hpp"

namespace tconv::python {

namespace nb = nanobind;

// CPU arrays of any element type: inputs may be read-only, outputs must be writable. C-contiguity is
// checked (not silently fixed) here so that an output is never a hidden copy; the Python layer makes
// inputs contiguous when needed.
using InArray = nb::ndarray<nb::ro, nb::device::cpu>;
using OutArray = nb::ndarray<nb::device::cpu>;

// The element type of an array as a tconv DataType; throws tconv::Error(invalid_argument) naming `role`
// for anything but float32, float16 and bfloat16.
DataType data_type_of(nb::dlpack::dtype t, const char* role);
// Throws tconv::Error(invalid_argument) when the array is not dense C order.
void require_contiguous(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, const char* role);

template <typename Array>
std::vector<int64_t> shape_of(const Array& a) {
  std::vector<int64_t> s(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) s[i] = static_cast<int64_t>(a.shape(i));
  return s;
}
template <typename Array>
void require_contiguous(const Array& a, const char* role) {
  std::vector<int64_t> st(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) st[i] = static_cast<int64_t>(a.stride(i));
  require_contiguous(shape_of(a), st, role);
}
template <typename Array>
DataType data_type_of(const Array& a, const char* role) {
  return data_type_of(a.dtype(), role);
}
// Shape as text for messages: "[2, 3, 4]".
std::string shape_text(const std::vector<int64_t>& s);

void register_errors(nb::module_& m);
void register_functional(nb::module_& m);
void register_cuda_functional(nb::module_& m);
void register_objects(nb::module_& m);
void register_training(nb::module_& m);

}  // namespace tconv::python
