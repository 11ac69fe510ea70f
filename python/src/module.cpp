// tconv._core — the extension module behind the `tconv` Python package (python/tconv/__init__.py re-exports
// it). This file registers the error translation and the small shared types; the functional API, the
// MPS-style objects and the training objects are registered by their own files.
//
// Errors: every tconv::Error becomes an instance of a Python class chosen by its code, all subclasses of
// tconv.Error (itself a RuntimeError), and of the matching built-in class where one exists, so that
// `except ValueError` catches bad arguments as Python programmers expect:
//   invalid_argument → InvalidArgumentError(Error, ValueError)     unsupported → UnsupportedError(Error, NotImplementedError)
//   out_of_memory    → OutOfMemoryError(Error, MemoryError)        device_unavailable → DeviceUnavailableError(Error)
//   io_error         → FileError(Error, OSError)   format_error → FormatError(Error, ValueError)
//   internal         → InternalError(Error)
// The instance carries `.code` (the code's name, e.g. "invalid_argument") and the library's message.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <array>

#include "bindings.hpp"
#include "registry/algorithm.hpp"
#include "tconv/device.hpp"
#include "tconv/error.hpp"

namespace tconv::python {

namespace {

// Indexed by ErrorCode; filled once at import (module objects live as long as the interpreter).
std::array<PyObject*, 8> g_error_classes{};

PyObject* new_class(nb::module_& m, const char* name, PyObject* bases, const char* doc) {
  const std::string qualified = std::string("tconv.") + name;
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (!cls) throw nb::python_error();
  m.attr(name) = nb::handle(cls);
  return cls;
}

void raise(const Error& e) {
  const int code = static_cast<int>(e.code());
  PyObject* cls = (code >= 1 && code < static_cast<int>(g_error_classes.size())) ? g_error_classes[code]
                                                                                  : g_error_classes[0];
  nb::object instance = nb::steal(PyObject_CallFunction(cls, "s", e.what()));
  if (!instance.is_valid()) return;  // the call set its own Python error
  PyObject_SetAttrString(instance.ptr(), "code", nb::str(to_string(e.code())).ptr());
  PyErr_SetObject(cls, instance.ptr());
}

}  // namespace

void register_errors(nb::module_& m) {
  auto tuple = [](PyObject* a, PyObject* b) { return PyTuple_Pack(2, a, b); };
  PyObject* base = new_class(m, "Error", PyExc_RuntimeError,
                             "Base class of every tconv error; .code names the library's error code.");
  g_error_classes[0] = base;
  g_error_classes[1] = new_class(m, "InvalidArgumentError", tuple(base, PyExc_ValueError),
                                 "A value passed to tconv is wrong (the message names it).");
  g_error_classes[2] = new_class(m, "UnsupportedError", tuple(base, PyExc_NotImplementedError),
                                 "A valid request this build, device or algorithm cannot do.");
  g_error_classes[3] = new_class(m, "OutOfMemoryError", tuple(base, PyExc_MemoryError),
                                 "A host or device allocation failed.");
  g_error_classes[4] = new_class(m, "DeviceUnavailableError", base,
                                 "The requested device is not there (e.g. CUDA in a CPU-only build).");
  g_error_classes[5] = new_class(m, "FileError", tuple(base, PyExc_OSError),
                                 "A file could not be opened, read or written.");
  g_error_classes[6] = new_class(m, "FormatError", tuple(base, PyExc_ValueError),
                                 "A file or array is malformed, truncated, or fails its checksum.");
  g_error_classes[7] = new_class(m, "InternalError", base, "A bug in tconv: please report it.");
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      raise(e);
    }
  });
}

void register_dist(nb::module_& m);  // python/src/dist.cpp (after the objects: it takes their types)

}  // namespace tconv::python

namespace {

std::vector<std::string> algorithm_names(const std::string& backend) {
  using tconv::DeviceKind;
  DeviceKind kind;
  if (backend == "cpu") {
    kind = DeviceKind::cpu;
  } else if (backend == "cuda") {
    kind = DeviceKind::cuda;
  } else {
    throw tconv::Error(tconv::ErrorCode::invalid_argument, "backend must be 'cpu' or 'cuda', got '" + backend + "'");
  }
  std::vector<std::string> names;
  for (const auto* a : tconv::registry::algorithms(kind)) names.emplace_back(a->name());
  return names;
}

}  // namespace

NB_MODULE(_core, m) {
  namespace nb = nanobind;
  using namespace tconv;
  m.doc() = "tconv: training passes of 2-D transposed convolution (MPS semantics) — native module";
  python::register_errors(m);

  nb::enum_<DeviceKind>(m, "DeviceKind").value("cpu", DeviceKind::cpu).value("cuda", DeviceKind::cuda);
  nb::class_<Device>(m, "Device", "Where kernels run and memory lives (MTLDevice, translated).")
      .def_static("cpu", &Device::cpu, nb::arg("threads") = 0, "A CPU device; threads = 0: the default.")
      .def_static("cuda", &Device::cuda, nb::arg("ordinal") = 0)
      .def_static("cuda_device_count", &Device::cuda_device_count)
      .def_static("default_device", &Device::default_device)
      .def_prop_ro("kind", &Device::kind)
      .def_prop_ro("ordinal", &Device::ordinal)
      .def_prop_ro("name", &Device::name)
      .def_prop_rw("num_threads", &Device::num_threads, &Device::set_num_threads)
      .def("__eq__", [](const Device& a, const Device& b) { return a == b; })
      .def("__repr__", [](const Device& d) { return "tconv.Device(" + d.name() + ")"; });

  m.def("algorithms", &algorithm_names, nb::arg("backend") = "cpu",
        "Names of the registered algorithms of a backend, in preference order (for algorithm=...).");

  python::register_functional(m);
  python::register_cuda_functional(m);
  python::register_objects(m);
  python::register_training(m);
  python::register_dist(m);  // python/src/dist.cpp: ReduceOp, CommunicatorId, FloatSpan, Communicator
}
