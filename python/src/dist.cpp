// tconv Python bindings — the communicator (include/tconv/communicator.hpp): data-parallel training with one
// process per GPU, gradients all-reduced through NCCL. Bound with the C++ names:
//   ReduceOp (sum, mean), CommunicatorId (the rendezvous token and its hex/file/environment forms),
//   FloatSpan (a float32 range of a tconv Buffer), Communicator (join, encode_all_reduce/encode_join on
//   command buffers, abort) — and enqueue_all_reduce, which reduces caller-owned CUDA memory (DLPack arrays,
//   e.g. PyTorch's .grad tensors) in place on the caller's stream; python/tconv/distributed.py builds the
//   PyTorch-facing helpers on it.
// In a build without NCCL, Communicator.available() is False and making an id or a communicator raises
// tconv.UnsupportedError (the library's stub backend); the id's text and file forms work in every build.
// Calls that can block (joining a communicator, waiting for an id file, releasing a communicator) release
// the GIL, so other Python threads — a watchdog over the other ranks, say — keep running meanwhile.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/communicator.hpp"
#include "tconv/error.hpp"
#include "tconv/state.hpp"

namespace tconv::python {

namespace {

using CudaArray = nb::ndarray<nb::device::cuda>;

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::invalid_argument, m); }

// Whether the array's elements fill one contiguous range with no gaps and no overlaps, in any dimension
// order (C order, channels-last, a transposed view of a dense tensor): then the all-reduce may treat it as
// one flat span, since the reduction is elementwise.
bool dense_in_some_order(const CudaArray& a) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dimensions that matter
  for (size_t i = 0; i < a.ndim(); ++i) {
    const auto size = static_cast<int64_t>(a.shape(i));
    if (size == 0) return true;  // no elements: nothing to touch
    if (size > 1) dims.emplace_back(static_cast<int64_t>(a.stride(i)), size);
  }
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) return false;
    expected *= size;
  }
  return true;
}

// The arrays as spans of the communicator's GPU, checked before anything is enqueued.
std::vector<DeviceFloatSpan> spans_of(const Communicator& comm, const std::vector<CudaArray>& arrays) {
  const Device& device = comm.device();
  std::vector<DeviceFloatSpan> spans;
  spans.reserve(arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    const CudaArray& a = arrays[i];
    const std::string which = "array " + std::to_string(i);
    if (a.device_id() != device.ordinal())
      invalid(which + " is on cuda:" + std::to_string(a.device_id()) + " but the communicator runs on " +
              device.name());
    if (a.dtype() != nb::dtype<float>()) {
      invalid(which + " is not float32 (DLPack type code " + std::to_string(a.dtype().code) + ", " +
              std::to_string(a.dtype().bits) + " bits); the communicator reduces float32 values");
    }
    if (!dense_in_some_order(a))
      invalid(which + " of shape " + shape_text(shape_of(a)) +
              " has gaps or overlaps in memory (a strided view); reduce the tensor it views, or a dense copy");
    spans.push_back(DeviceFloatSpan{a.data(), a.size()});
  }
  return spans;
}

std::string id_repr(const CommunicatorId& id) {
  return "tconv.CommunicatorId('" + id.to_hex().substr(0, 16) + "...')";
}

}  // namespace

void register_dist(nb::module_& m) {
  nb::enum_<ReduceOp>(m, "ReduceOp", "How an all-reduce combines the ranks' values.")
      .value("sum", ReduceOp::sum, "Σ_r scale_r · x_r (scale_r: each rank's own pre-multiplier, 1 for a plain sum)")
      .value("mean", ReduceOp::mean, "(1/ranks) · Σ_r x_r");

  nb::class_<CommunicatorId>(m, "CommunicatorId",
                             "The rendezvous token of one communicator (NCCL's 128-byte unique id). Rank 0 makes "
                             "it with generate() and shares it (write_file/read_file, or the hex text in an "
                             "environment variable); it holds rank 0's bootstrap address, so every run needs a "
                             "fresh one.")
      .def(nb::init<>(), "An all-zero id (not a valid rendezvous; for tests and placeholders).")
      .def_static("generate", &CommunicatorId::generate,
                  "A new id (rank 0 only). UnsupportedError without NCCL, DeviceUnavailableError when NCCL cannot "
                  "set up its bootstrap network.")
      .def("to_hex", &CommunicatorId::to_hex, "256 lower-case hex digits.")
      .def_static("from_hex", &CommunicatorId::from_hex, nb::arg("hex"),
                  "The id of 256 hex digits (surrounding white space allowed); FormatError otherwise.")
      .def("write_file", &CommunicatorId::write_file, nb::arg("path"),
           "Writes the hex form to `path` atomically (a reader never sees a partial id).")
      .def_static("read_file", &CommunicatorId::read_file, nb::arg("path"), nb::arg("timeout") = 0.0,
                  nb::call_guard<nb::gil_scoped_release>(),
                  "Reads an id written by write_file, waiting up to `timeout` seconds for the file to appear "
                  "(0: it must exist now). FileError naming the path and the time waited; FormatError for a "
                  "malformed file.")
      .def_static("from_environment",
                  [](const std::string& variable) { return CommunicatorId::from_environment(variable.c_str()); },
                  nb::arg("variable") = "TCONV_NCCL_ID",
                  "The id in environment variable `variable` (hex). InvalidArgumentError when it is unset, "
                  "FormatError when malformed.")
      .def_prop_ro("bytes",
                   [](const CommunicatorId& id) {
                     return nb::bytes(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
                   })
      .def("__eq__", [](const CommunicatorId& a, const CommunicatorId& b) { return a == b; })
      .def("__hash__", [](const CommunicatorId& id) { return nb::hash(nb::str(id.to_hex().c_str())); })
      // Picklable, so that an id can be handed to processes started with multiprocessing.
      .def("__getstate__", &CommunicatorId::to_hex)
      .def("__setstate__",
           [](CommunicatorId& id, const std::string& hex) { new (&id) CommunicatorId(CommunicatorId::from_hex(hex)); })
      .def("__repr__", &id_repr);

  nb::class_<FloatSpan>(m, "FloatSpan",
                        "`count` float32 values of a tconv Buffer from byte `offset` (count -1: to the end). A "
                        "Buffer is accepted wherever a FloatSpan is (the whole buffer).")
      .def(
          "__init__",
          [](FloatSpan* s, Buffer buffer, size_t offset, int64_t count) {
            new (s) FloatSpan{std::move(buffer), offset, count};
          },
          nb::arg("buffer"), nb::arg("offset") = 0, nb::arg("count") = -1)
      .def("__init__", [](FloatSpan* s, Buffer buffer) { new (s) FloatSpan{std::move(buffer)}; }, nb::arg("buffer"))
      .def_rw("buffer", &FloatSpan::buffer)
      .def_rw("offset", &FloatSpan::offset)
      .def_rw("count", &FloatSpan::count);
  nb::implicitly_convertible<Buffer, FloatSpan>();

  nb::class_<Communicator>(
      m, "Communicator",
      "One rank of a data-parallel group: one process per GPU, gradients all-reduced in place through NCCL "
      "(include/tconv/communicator.hpp). Communicator(device, id, rank, ranks) blocks until all `ranks` ranks "
      "have joined; every rank must then make the same sequence of all-reduces with the same sizes.")
      .def(
          "__init__",
          [](Communicator* c, const Device& device, const CommunicatorId& id, int rank, int ranks) {
            new (c) Communicator(device, id, rank, ranks);
          },
          nb::arg("device"), nb::arg("id"), nb::arg("rank"), nb::arg("ranks"),
          nb::call_guard<nb::gil_scoped_release>(),
          "Joins communicator `id` as `rank` of `ranks` on `device` (a CUDA device, one rank per GPU); sets "
          "NCCL_NVLS_ENABLE=0 first. InvalidArgumentError for a rank outside [0, ranks) or a CPU device, "
          "UnsupportedError without NCCL, DeviceUnavailableError when NCCL fails to set up.")
      .def_static("available", &Communicator::available, "Whether this build has NCCL (the only backend).")
      .def_static("library_version", &Communicator::library_version,
                  "NCCL's version as major·10000 + minor·100 + patch of the loaded library (0 without NCCL).")
      .def_prop_ro("rank", &Communicator::rank)
      .def_prop_ro("size", &Communicator::size)
      .def_prop_ro("device", &Communicator::device, nb::rv_policy::copy)
      .def("__bool__", [](const Communicator& c) { return static_cast<bool>(c); })
      .def("encode_all_reduce",
           nb::overload_cast<CommandBuffer&, const ConvolutionGradientState&, ReduceOp, float>(
               &Communicator::encode_all_reduce, nb::const_),
           nb::arg("command_buffer"), nb::arg("gradient_state"), nb::arg("op") = ReduceOp::sum,
           nb::arg("scale") = 1.0f,
           "Encodes an in-place all-reduce of a layer's gradients (the state's gradient_for_weights and "
           "gradient_for_biases). `scale` pre-multiplies this rank's values for a sum (e.g. its share of the "
           "batch); it must be 1 for a mean. Read the results after an encode_join.")
      .def("encode_all_reduce",
           nb::overload_cast<CommandBuffer&, const std::vector<FloatSpan>&, ReduceOp, float>(
               &Communicator::encode_all_reduce, nb::const_),
           nb::arg("command_buffer"), nb::arg("spans"), nb::arg("op") = ReduceOp::sum, nb::arg("scale") = 1.0f,
           "Encodes an in-place all-reduce of every span (FloatSpans or whole Buffers; one NCCL group).")
      .def("encode_join", &Communicator::encode_join, nb::arg("command_buffer"),
           "Commands encoded after this one wait for every all-reduce encoded before it; an asynchronous NCCL "
           "failure (a peer that died) becomes the command's error.")
      .def(
          "enqueue_all_reduce",
          [](const Communicator& c, const std::vector<CudaArray>& arrays, ReduceOp op, float scale, uintptr_t stream) {
            const std::vector<DeviceFloatSpan> spans = spans_of(c, arrays);
            nb::gil_scoped_release release;
            c.enqueue_all_reduce(reinterpret_cast<void*>(stream), spans, op, scale);
          },
          nb::arg("arrays"), nb::arg("op") = ReduceOp::sum, nb::arg("scale") = 1.0f, nb::arg("stream") = 0,
          "Enqueues an in-place all-reduce of caller-owned CUDA memory on `stream` (a cudaStream_t as an int; "
          "0: the legacy default stream) and returns without waiting: work enqueued on that stream afterwards "
          "sees the results. `arrays`: DLPack CUDA float32 arrays on the communicator's GPU whose elements are "
          "one dense range (any dimension order), exported for that stream (__dlpack__(stream=...)). "
          "tconv.distributed.all_reduce does this for PyTorch tensors.")
      .def("abort", &Communicator::abort,
           "Aborts after a failure elsewhere: pending operations are dropped and release no longer waits for "
           "the peers; later calls raise.")
      .def(
          "close", [](Communicator& c) { c = Communicator(); }, nb::call_guard<nb::gil_scoped_release>(),
          "Releases this rank's communicator now (after its pending all-reduces have run) instead of when the "
          "object is collected; later calls raise InvalidArgumentError.")
      .def("__repr__", [](const Communicator& c) {
        if (!c) return std::string("tconv.Communicator(closed)");
        return "tconv.Communicator(rank " + std::to_string(c.rank()) + " of " + std::to_string(c.size()) + " on " +
               c.device().name() + ")";
      });
}

}  // namespace tconv::python
