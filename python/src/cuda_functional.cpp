// tconv Python bindings — the functional API on CUDA device memory (DLPack CUDA tensors), zero-copy.
//
// The library's public functional API (include/tconv/functional.hpp) takes host arrays and stages them
// through device buffers. For tensors that already live on the GPU that would be two PCIe round trips per
// call, so this file runs the registered CUDA algorithms on the caller's device memory directly: it builds
// the canonical problem (core/problem.hpp), plans it with the registry exactly as the library's api::bind
// does (validate → choose; an unknown algorithm name is invalid_argument, a declined problem unsupported),
// and calls Algorithm::run with the DLPack pointers.
//
// Contract with the Python layer (python/tconv/_cuda.py), which does the PyTorch-facing work:
//   * arrays are in the canonical layouts: activations dense NHWC, weights dense float32 OHWI, bias and
//     bias gradient float32 [Cout] — the Python layer relayouts NCHW / PyTorch-layout tensors on the device
//     (with PyTorch ops on the same stream), never through the host;
//   * `stream` is the cudaStream_t (as an integer; 0 = the legacy default stream) the caller's framework
//     orders its work on (PyTorch's current stream). Kernels are enqueued there and NOT waited for, so the
//     call is asynchronous exactly like a PyTorch CUDA op, and the arrays were exported with
//     __dlpack__(stream=...) naming this stream (the DLPack stream handshake);
//   * `workspace(nbytes)` returns a CUDA array of at least nbytes bytes allocated on that stream (PyTorch's
//     caching allocator), so scratch memory is stream-ordered and freed without a device synchronisation.
// Everything that can be wrong with the arguments is checked before the first kernel is enqueued; the GIL
// is released while kernels are enqueued (cuDNN's first call on a new shape also times its algorithms).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "core/problem.hpp"
#include "core/status.hpp"
#include "cuda/backend.hpp"
#include "registry/algorithm.hpp"
#include "tconv/device.hpp"
#include "tconv/error.hpp"
#include "tconv/functional.hpp"

namespace tconv::python {

namespace {

using CudaIn = nb::ndarray<nb::ro, nb::device::cuda>;
using CudaOut = nb::ndarray<nb::device::cuda>;

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::invalid_argument, m); }

// One argument as the checks see it: role, pointer, element type, shape, and where it lives.
struct Arg {
  const char* role;
  const void* data;
  DataType type;
  std::vector<int64_t> shape;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
};

template <class Array>
Arg arg_of(const Array& a, const char* role, const Device& device) {
  // Device memory of another GPU would be read through a peer mapping at best, and fault at worst.
  if (a.device_id() != device.ordinal()) {
    invalid(std::string(role) + " is on cuda:" + std::to_string(a.device_id()) + " but the tconv device is " +
            device.name() + "; put every tensor on the device the call runs on");
  }
  require_contiguous(a, role);
  Arg r{role, a.data(), data_type_of(a, role), shape_of(a)};
  // The kernels load and store whole 2- or 4-byte elements; a view at an odd byte offset would fault.
  if (reinterpret_cast<uintptr_t>(r.data) % size_of(r.type) != 0) {
    invalid(std::string(role) + " data pointer is not aligned to its element size (" +
            std::to_string(size_of(r.type)) + " bytes)");
  }
  return r;
}

void require_type(const Arg& a, DataType t) {
  if (a.type != t) {
    invalid(std::string(a.role) + " has element type " + std::string(to_string(a.type)) + ", expected " +
            std::string(to_string(t)));
  }
}

void require_shape(const Arg& a, const std::vector<int64_t>& want) {
  if (a.shape != want) invalid(std::string(a.role) + " has shape " + shape_text(a.shape) + ", expected " + shape_text(want));
}

// Outputs are written while inputs are still read: an output sharing any byte with another argument
// would give garbage, so it is refused before anything is enqueued.
void require_no_alias(const std::vector<const Arg*>& all, const std::vector<const Arg*>& outputs) {
  auto range = [](const Arg& a) {
    const auto lo = reinterpret_cast<uintptr_t>(a.data);
    return std::pair<uintptr_t, uintptr_t>{lo, lo + static_cast<uintptr_t>(a.elements()) * size_of(a.type)};
  };
  for (const Arg* o : outputs) {
    const auto [olo, ohi] = range(*o);
    for (const Arg* e : all) {
      if (e == o) continue;
      const auto [lo, hi] = range(*e);
      if (olo < hi && lo < ohi) {
        invalid(std::string(o->role) + " aliases " + e->role + " (their memory overlaps); outputs need memory of their own");
      }
    }
  }
}

void require_cuda(const Device& device) {
  if (device.kind() != DeviceKind::cuda) {
    invalid("CUDA tensors need a CUDA tconv device, got " + device.name() +
            " (pass device=None to run on the tensors' GPU, or move the tensors to the CPU)");
  }
}

// The canonical layouts are this file's contract with python/tconv/_cuda.py; anything else is a bug there.
void require_canonical(const ConvTranspose2dOptions& opt) {
  if (opt.layout != ActivationLayout::nhwc || opt.weight_layout != WeightLayout::mps) {
    throw Error(ErrorCode::internal, "the CUDA entry points take NHWC activations and MPS (OHWI) weights");
  }
}

// Canonical geometry from canonical shapes. conv_transpose2d_output_shape runs the library's own geometry
// checks (channels, groups, output_padding, positive output; messages name the values) and gives the output
// size, explicit or PyTorch's.
core::Geometry geometry_of(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws,
                           const ConvTranspose2dOptions& opt) {
  const std::vector<int64_t> ys = conv_transpose2d_output_shape(xs, ws, opt);
  core::Geometry g;
  g.n = xs[0]; g.h_in = xs[1]; g.w_in = xs[2]; g.c_in = xs[3];
  g.c_out = ws[0]; g.kh = ws[1]; g.kw = ws[2];
  g.h_out = ys[1]; g.w_out = ys[2];
  g.groups = opt.groups;
  g.stride_h = opt.stride.h; g.stride_w = opt.stride.w;
  g.dil_h = opt.dilation.h; g.dil_w = opt.dilation.w;
  g.pad_h = opt.padding.h; g.pad_w = opt.padding.w;
  return g;
}

// api::bind's planning (src/api/common.cpp): validate, then the first algorithm that takes the problem
// (or the forced one), with the same error codes.
const registry::Algorithm& plan(const Device& device, const core::Problem& p, const ConvTranspose2dOptions& opt) {
  core::throw_if_error(core::validate(p));
  const registry::Choice c = registry::choose(p, DeviceKind::cuda, opt.algorithm, opt.allow_nondeterministic);
  if (c.algorithm == nullptr) {
    throw Error(c.unknown_name ? ErrorCode::invalid_argument : ErrorCode::unsupported,
                "no algorithm on " + device.name() + " takes " + p.describe() + ": " + c.reason);
  }
  return *c.algorithm;
}

// Device scratch of `bytes` from the caller's allocator (kept alive by the returned array until the kernels
// are enqueued; the caching allocator orders its reuse after them on the same stream).
std::optional<CudaOut> workspace_for(const nb::callable& alloc, size_t bytes, const Device& device) {
  if (bytes == 0) return std::nullopt;
  CudaOut ws = nb::cast<CudaOut>(alloc(bytes));
  if (ws.device_id() != device.ordinal() || ws.nbytes() < bytes) {
    throw Error(ErrorCode::internal, "the workspace allocator returned " + std::to_string(ws.nbytes()) +
                                         " bytes on cuda:" + std::to_string(ws.device_id()) + ", asked for " +
                                         std::to_string(bytes) + " on " + device.name());
  }
  return ws;
}

registry::ExecContext exec_context(const Device& device, uintptr_t stream) {
  registry::ExecContext ctx;
  ctx.cuda_device = device.ordinal();
  ctx.cuda_stream = reinterpret_cast<void*>(stream);
  return ctx;
}

std::string run(const registry::Algorithm& algo, const core::Problem& p, const core::Args& a, void* ws,
                const registry::ExecContext& ctx) {
  nb::gil_scoped_release release;
  core::throw_if_error(algo.run(p, a, ws, ctx));
  return std::string(algo.name());
}

std::string cuda_forward(const Device& device, const CudaIn& x, const CudaIn& w, std::optional<CudaIn> b,
                         const CudaOut& y, const ConvTranspose2dOptions& opt, uintptr_t stream,
                         const nb::callable& workspace) {
  require_cuda(device);
  require_canonical(opt);
  const Arg xa = arg_of(x, "x", device), wa = arg_of(w, "weight", device), ya = arg_of(y, "output", device);
  const core::Geometry g = geometry_of(xa.shape, wa.shape, opt);
  require_type(wa, DataType::float32);
  require_type(ya, xa.type);
  require_shape(ya, {g.n, g.h_out, g.w_out, g.c_out});
  std::optional<Arg> ba;
  if (b) {
    ba = arg_of(*b, "bias", device);
    require_type(*ba, DataType::float32);
    require_shape(*ba, {g.c_out});
  }
  std::vector<const Arg*> all{&xa, &wa, &ya};
  if (ba) all.push_back(&*ba);
  require_no_alias(all, {&ya});

  core::Problem p;
  p.dir = core::Direction::fwd;
  p.g = g;
  p.act_type = xa.type;
  p.precision = opt.precision;
  p.with_bias = ba.has_value();
  const registry::Algorithm& algo = plan(device, p, opt);
  const auto ws = workspace_for(workspace, algo.workspace_bytes(p), device);
  const core::Args a = core::dense_args(g, const_cast<void*>(xa.data), const_cast<void*>(ya.data),
                                        static_cast<const float*>(wa.data),
                                        ba ? static_cast<const float*>(ba->data) : nullptr, nullptr, nullptr);
  return run(algo, p, a, ws ? ws->data() : nullptr, exec_context(device, stream));
}

std::pair<std::string, std::string> cuda_backward(const Device& device, const std::vector<int64_t>& x_shape,
                                                  const std::vector<int64_t>& w_shape, std::optional<CudaIn> x,
                                                  std::optional<CudaIn> w, const CudaIn& dy,
                                                  std::optional<CudaOut> dx, std::optional<CudaOut> dw,
                                                  std::optional<CudaOut> db, const ConvTranspose2dOptions& opt,
                                                  uintptr_t stream, const nb::callable& workspace) {
  require_cuda(device);
  require_canonical(opt);
  const core::Geometry g = geometry_of(x_shape, w_shape, opt);
  const bool want_dx = dx.has_value(), want_w = dw.has_value() || db.has_value();
  if (!want_dx && !want_w) invalid("no gradient asked for (dx, dw and db are all None)");
  // The weight pass always writes diff_wei (the bias gradient is a by-product of it), so the Python layer
  // passes a scratch dw when only db is wanted.
  if (db && !dw) throw Error(ErrorCode::internal, "db without a dw array to write the weight gradient into");
  if (want_dx && !w) invalid("weights must have data to compute dx");
  if (want_w && !x) invalid("x must have data to compute dw or db");

  const Arg dya = arg_of(dy, "grad_output", device);
  require_shape(dya, {g.n, g.h_out, g.w_out, g.c_out});
  std::vector<const Arg*> all{&dya}, outs;
  std::optional<Arg> xa, wa, dxa, dwa, dba;
  if (x) {
    xa = arg_of(*x, "x", device);
    require_shape(*xa, x_shape);
    require_type(*xa, dya.type);  // the weight pass reads x and dy as one image type
    all.push_back(&*xa);
  }
  if (w) {
    wa = arg_of(*w, "weight", device);
    require_shape(*wa, w_shape);
    require_type(*wa, DataType::float32);
    all.push_back(&*wa);
  }
  if (dx) {
    dxa = arg_of(*dx, "grad_input", device);
    require_shape(*dxa, x_shape);
    require_type(*dxa, dya.type);
    outs.push_back(&*dxa);
  }
  if (dw) {
    dwa = arg_of(*dw, "grad_weight", device);
    require_shape(*dwa, w_shape);
    require_type(*dwa, DataType::float32);
    outs.push_back(&*dwa);
  }
  if (db) {
    dba = arg_of(*db, "grad_bias", device);
    require_shape(*dba, {g.c_out});
    require_type(*dba, DataType::float32);
    outs.push_back(&*dba);
  }
  all.insert(all.end(), outs.begin(), outs.end());
  require_no_alias(all, outs);

  core::Problem pd;
  pd.dir = core::Direction::bwd_data;
  pd.g = g;
  pd.act_type = dya.type;
  pd.precision = opt.precision;
  core::Problem pw = pd;
  pw.dir = core::Direction::bwd_weights;
  pw.with_bias = db.has_value();
  // Plan both passes before enqueuing either, so that a declined one fails before any output is written.
  const registry::Algorithm* algo_d = want_dx ? &plan(device, pd, opt) : nullptr;
  const registry::Algorithm* algo_w = want_w ? &plan(device, pw, opt) : nullptr;
  // One workspace for both passes: they run one after the other on the same stream.
  size_t ws_bytes = 0;
  if (algo_d) ws_bytes = algo_d->workspace_bytes(pd);
  if (algo_w) ws_bytes = std::max(ws_bytes, algo_w->workspace_bytes(pw));
  const auto ws = workspace_for(workspace, ws_bytes, device);
  void* wsp = ws ? ws->data() : nullptr;
  const registry::ExecContext ctx = exec_context(device, stream);

  std::pair<std::string, std::string> names;
  if (algo_d) {
    const core::Args a = core::dense_args(g, const_cast<void*>(dxa->data), const_cast<void*>(dya.data),
                                          static_cast<const float*>(wa->data), nullptr, nullptr, nullptr);
    names.first = run(*algo_d, pd, a, wsp, ctx);
  }
  if (algo_w) {
    const core::Args a =
        core::dense_args(g, const_cast<void*>(xa->data), const_cast<void*>(dya.data), nullptr, nullptr,
                         static_cast<float*>(const_cast<void*>(dwa->data)),
                         dba ? static_cast<float*>(const_cast<void*>(dba->data)) : nullptr);
    names.second = run(*algo_w, pw, a, wsp, ctx);
  }
  return names;
}

}  // namespace

void register_cuda_functional(nb::module_& m) {
  m.def("_cuda_compiled_in", &cuda_backend::compiled_in, "Whether this build has the CUDA backend.");

  // For tests: the device address tconv reads for a CUDA array (equal to the producer's own pointer, e.g.
  // torch.Tensor.data_ptr(), when the DLPack import is zero-copy).
  m.def("_cuda_data_pointer", [](const CudaIn& a) { return reinterpret_cast<uintptr_t>(a.data()); },
        nb::arg("array"));

  m.def("_cuda_conv_transpose2d", &cuda_forward, nb::arg("device"), nb::arg("x"), nb::arg("w"), nb::arg("b").none(),
        nb::arg("y"), nb::arg("options"), nb::arg("stream"), nb::arg("workspace"),
        "Enqueues y = conv_transpose2d(x, w, b) on `stream` (canonical layouts, device memory); returns the "
        "algorithm's name.");

  m.def("_cuda_conv_transpose2d_backward", &cuda_backward, nb::arg("device"), nb::arg("x_shape"),
        nb::arg("w_shape"), nb::arg("x").none(), nb::arg("w").none(), nb::arg("dy"), nb::arg("dx").none(),
        nb::arg("dw").none(), nb::arg("db").none(), nb::arg("options"), nb::arg("stream"), nb::arg("workspace"),
        "Enqueues the requested gradients on `stream` (None: not computed); returns (data_algorithm, "
        "weights_algorithm).");
}

}  // namespace tconv::python
