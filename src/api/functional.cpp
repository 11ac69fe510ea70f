// The PyTorch-style functional API (include/tconv/functional.hpp).
//
// Each call: check shapes and types against the PyTorch geometry (messages name the values) → build the
// canonical problem (core/problem.hpp: NHWC activations, float32 OHWI weights) → core::validate →
// registry::choose → run. NCHW activations are transposed into NHWC scratch copies and the results
// transposed back; PyTorch-layout weights go through the a.13 mapping of tconv/convert.hpp (which also
// makes the canonical padding equal to PyTorch's). On a CUDA device the dense copies travel in Buffers.
// Everything that can fail is checked before the first output byte is written: shapes and types, pointer
// alignment (element size), outputs overlapping another argument, and scratch allocations (out_of_memory).
// Planning goes through api::bind, so both APIs map an unknown algorithm name to invalid_argument.
#include "tconv/functional.hpp"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <sstream>

#include "api/internal.hpp"
#include "core/dtype.hpp"
#include "core/problem.hpp"
#include "core/status.hpp"
#include "cuda/backend.hpp"
#include "registry/algorithm.hpp"
#include "tconv/buffer.hpp"
#include "tconv/convert.hpp"
#include "tconv/error.hpp"

namespace tconv {

std::string_view to_string(ActivationLayout l) noexcept { return l == ActivationLayout::nchw ? "nchw" : "nhwc"; }
std::string_view to_string(WeightLayout l) noexcept { return l == WeightLayout::pytorch ? "pytorch" : "mps"; }

namespace {

[[noreturn]] void fail_invalid(const std::string& m) { throw Error(ErrorCode::invalid_argument, m); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

bool is_float_type(DataType t) {
  return t == DataType::float32 || t == DataType::float16 || t == DataType::bfloat16;
}

void check_type(const char* role, DataType t) {
  if (!is_float_type(t)) {
    throw Error(ErrorCode::invalid_argument, std::string(role) + " has element type " + std::string(to_string(t)) +
                                                 "; expected float32, float16 or bfloat16");
  }
}

void check_shape(const char* role, const std::vector<int64_t>& got, const std::vector<int64_t>& want) {
  if (got != want) fail_invalid(std::string(role) + " has shape " + shape_str(got) + ", expected " + shape_str(want));
}

// Activation shape in the caller's layout from canonical (n, c, h, w).
std::vector<int64_t> act_shape(ActivationLayout l, int64_t n, int64_t c, int64_t h, int64_t w) {
  return l == ActivationLayout::nchw ? std::vector<int64_t>{n, c, h, w} : std::vector<int64_t>{n, h, w, c};
}

// PyTorch geometry + shapes of x and w → canonical geometry. Throws invalid_argument naming the values.
core::Geometry make_geometry(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws,
                             const ConvTranspose2dOptions& o) {
  if (xs.size() != 4) {
    fail_invalid("x must be 4-D (" + std::string(o.layout == ActivationLayout::nchw ? "N, C, H, W" : "N, H, W, C") +
                 "), got shape " + shape_str(xs));
  }
  if (ws.size() != 4) {
    fail_invalid("weights must be 4-D (" +
                 std::string(o.weight_layout == WeightLayout::pytorch ? "Cin, Cout/groups, kH, kW"
                                                                      : "Cout, kH, kW, Cin/groups") +
                 "), got shape " + shape_str(ws));
  }
  for (int64_t v : xs)
    if (v <= 0) fail_invalid("x shape " + shape_str(xs) + " has a non-positive size");
  for (int64_t v : ws)
    if (v <= 0) fail_invalid("weight shape " + shape_str(ws) + " has a non-positive size");
  std::ostringstream m;
  if (o.groups <= 0) fail_invalid("groups must be positive, got " + std::to_string(o.groups));
  auto pos = [&](const char* name, Hw v) {
    if (v.h <= 0 || v.w <= 0) {
      fail_invalid(std::string(name) + " must be positive, got " + std::to_string(v.h) + "," + std::to_string(v.w));
    }
  };
  pos("stride", o.stride);
  pos("dilation", o.dilation);
  core::Geometry g;
  g.groups = o.groups;
  g.n = xs[0];
  if (o.layout == ActivationLayout::nchw) {
    g.c_in = xs[1]; g.h_in = xs[2]; g.w_in = xs[3];
  } else {
    g.h_in = xs[1]; g.w_in = xs[2]; g.c_in = xs[3];
  }
  if (g.c_in % g.groups != 0) {
    fail_invalid("input channels (" + std::to_string(g.c_in) + ") are not divisible by groups (" +
                 std::to_string(g.groups) + ")");
  }
  if (o.weight_layout == WeightLayout::pytorch) {
    if (ws[0] != g.c_in) {
      fail_invalid("weights " + shape_str(ws) + " (PyTorch layout Cin, Cout/groups, kH, kW) have " +
                   std::to_string(ws[0]) + " input channels but x has " + std::to_string(g.c_in));
    }
    g.c_out = ws[1] * g.groups; g.kh = ws[2]; g.kw = ws[3];
  } else {
    if (ws[3] * g.groups != g.c_in) {
      fail_invalid("weights " + shape_str(ws) + " (MPS layout Cout, kH, kW, Cin/groups) with groups " +
                   std::to_string(g.groups) + " read " + std::to_string(ws[3] * g.groups) +
                   " input channels but x has " + std::to_string(g.c_in));
    }
    g.c_out = ws[0]; g.kh = ws[1]; g.kw = ws[2];
    if (g.c_out % g.groups != 0) {
      fail_invalid("output channels (" + std::to_string(g.c_out) + ") are not divisible by groups (" +
                   std::to_string(g.groups) + ")");
    }
  }
  g.stride_h = o.stride.h; g.stride_w = o.stride.w;
  g.dil_h = o.dilation.h; g.dil_w = o.dilation.w;
  g.pad_h = o.padding.h; g.pad_w = o.padding.w;
  const bool explicit_size = o.output_size.h != 0 || o.output_size.w != 0;
  if (explicit_size) {
    if (o.output_padding.h != 0 || o.output_padding.w != 0) {
      fail_invalid("output_padding (" + std::to_string(o.output_padding.h) + "," + std::to_string(o.output_padding.w) +
                   ") must be 0 when an explicit output size is given");
    }
    if (o.output_size.h <= 0 || o.output_size.w <= 0) {
      fail_invalid("output size must be positive, got " + std::to_string(o.output_size.h) + "x" +
                   std::to_string(o.output_size.w));
    }
    g.h_out = o.output_size.h; g.w_out = o.output_size.w;
  } else {
    // PyTorch: "output padding must be smaller than either stride or dilation".
    auto check_op = [&](const char* axis, int64_t op, int64_t s, int64_t d) {
      if (op < 0 || op >= std::max(s, d)) {
        fail_invalid(std::string("output_padding ") + axis + " = " + std::to_string(op) +
                     " must be >= 0 and smaller than max(stride " + std::to_string(s) + ", dilation " +
                     std::to_string(d) + ")");
      }
    };
    check_op("height", o.output_padding.h, g.stride_h, g.dil_h);
    check_op("width", o.output_padding.w, g.stride_w, g.dil_w);
    g.h_out = core::Geometry::out_size(g.h_in, g.kh, g.stride_h, g.dil_h, g.pad_h, o.output_padding.h);
    g.w_out = core::Geometry::out_size(g.w_in, g.kw, g.stride_w, g.dil_w, g.pad_w, o.output_padding.w);
    if (g.h_out <= 0 || g.w_out <= 0) {
      fail_invalid("output size " + std::to_string(g.h_out) + "x" + std::to_string(g.w_out) +
                   " is not positive for input " + std::to_string(g.h_in) + "x" + std::to_string(g.w_in) +
                   ", kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + ", stride " +
                   std::to_string(g.stride_h) + "," + std::to_string(g.stride_w) + ", padding " +
                   std::to_string(g.pad_h) + "," + std::to_string(g.pad_w) + ", dilation " +
                   std::to_string(g.dil_h) + "," + std::to_string(g.dil_w));
    }
  }
  return g;
}

// Scratch memory. A request the host cannot satisfy (a huge but valid NCHW tensor needs an NHWC copy of
// the same size) is the caller-visible Error(out_of_memory) naming the size, never a bare std::bad_alloc.
template <class T>
void alloc_scratch(std::vector<T>& v, int64_t count, const char* role) {
  bool failed = false;
  try {
    v.resize(static_cast<size_t>(count));
  } catch (const std::bad_alloc&) {
    failed = true;
  } catch (const std::length_error&) {  // more than the vector's max_size(): as impossible
    failed = true;
  }
  if (failed) {
    throw Error(ErrorCode::out_of_memory, std::string("cannot allocate ") + std::to_string(count) + " x " +
                                              std::to_string(sizeof(T)) + " bytes of scratch for " + role);
  }
}

// Every pointer handed in must be aligned to its element size: the kernels load and store whole 2- or
// 4-byte elements, and a misaligned access is undefined (and faults on some targets).
void check_aligned(const char* role, const void* data, DataType t) {
  if (data == nullptr) return;
  const size_t a = size_of(t);
  const auto addr = reinterpret_cast<uintptr_t>(data);
  if (addr % a != 0) {
    std::ostringstream m;
    m << role << " data pointer " << data << " is not aligned to " << a << " bytes (its element type "
      << to_string(t) << "); pass memory aligned to the element size";
    fail_invalid(m.str());
  }
}

// A byte range of one argument, for the aliasing check.
struct Extent {
  const char* role;
  const void* data;
  int64_t elements;
  size_t esize;
};
// Outputs are written while inputs are still read (and NHWC outputs are written in place), so an output
// that shares any byte with another argument gives garbage: refuse it before anything runs.
// `outputs` are indices into `all`.
void check_no_alias(const std::vector<Extent>& all, std::initializer_list<size_t> outputs) {
  auto range = [](const Extent& e) {
    const auto lo = reinterpret_cast<uintptr_t>(e.data);
    return std::pair<uintptr_t, uintptr_t>{lo, lo + static_cast<uintptr_t>(e.elements) * e.esize};
  };
  for (const size_t oi : outputs) {
    const Extent& o = all[oi];
    if (o.data == nullptr) continue;
    const auto [olo, ohi] = range(o);
    for (size_t i = 0; i < all.size(); ++i) {
      const Extent& e = all[i];
      if (i == oi || e.data == nullptr) continue;
      const auto [lo, hi] = range(e);
      if (olo < hi && lo < ohi) {
        fail_invalid(std::string(o.role) + " aliases " + e.role + " (their memory overlaps); outputs need memory of their own");
      }
    }
  }
}

// Dense copy between NCHW and NHWC. to_nhwc: src is NCHW. Elements move as 2- or 4-byte words, one
// image plane at a time (the channel-strided side is the one that cannot be contiguous).
template <class E>
void relayout_typed(const E* s, E* d, int64_t n, int64_t c, int64_t hw, bool to_nhwc) {
  for (int64_t in = 0; in < n; ++in) {
    const E* sp = s + in * c * hw;
    E* dp = d + in * c * hw;
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t i = 0; i < hw; ++i) {
        if (to_nhwc) dp[i * c + ic] = sp[ic * hw + i];
        else dp[ic * hw + i] = sp[i * c + ic];
      }
  }
}
void relayout(const void* src, void* dst, int64_t n, int64_t c, int64_t h, int64_t w, size_t esize, bool to_nhwc) {
  if (esize == 2) relayout_typed(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), n, c, h * w, to_nhwc);
  else relayout_typed(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), n, c, h * w, to_nhwc);
}

// An activation in canonical NHWC: a pointer to the caller's memory when it is NHWC already, else a copy.
struct NhwcActivation {
  std::vector<uint8_t> scratch;
  void* data = nullptr;
};
NhwcActivation activation_in(const ConstArrayRef& a, ActivationLayout l, int64_t n, int64_t c, int64_t h, int64_t w) {
  NhwcActivation r;
  if (l == ActivationLayout::nhwc) {
    r.data = const_cast<void*>(a.data);  // read only: the problem's input role
    return r;
  }
  alloc_scratch(r.scratch, n * c * h * w * static_cast<int64_t>(size_of(a.type)), "the NHWC copy of an NCHW activation");
  relayout(a.data, r.scratch.data(), n, c, h, w, size_of(a.type), true);
  r.data = r.scratch.data();
  return r;
}

std::vector<float> to_f32(const ConstArrayRef& a, int64_t count) {
  std::vector<float> v;
  alloc_scratch(v, count, "a float32 copy of weights or bias");
  for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = core::load_as_f32(a.data, i, a.type);
  return v;
}

WeightShape weight_shape_of(const core::Geometry& g) {
  return WeightShape{.in_channels = g.c_in, .out_channels = g.c_out, .kernel_h = g.kh, .kernel_w = g.kw,
                     .groups = g.groups};
}

// Weights as canonical float32 OHWI.
std::vector<float> weights_in(const ConstArrayRef& w, const core::Geometry& g, WeightLayout l) {
  const int64_t count = core::wei_elements(g);
  std::vector<float> f = to_f32(w, count);
  if (l == WeightLayout::mps) return f;
  std::vector<float> ohwi;
  alloc_scratch(ohwi, static_cast<int64_t>(f.size()), "the OHWI copy of the weights");
  transpose_weights_from_torch(f.data(), ohwi.data(), weight_shape_of(g));
  return ohwi;
}

// Validates a problem and picks its algorithm (forced by name or the registry's first that takes it).
// The object API's api::bind does it, so that both APIs validate and map a refused choice to the same
// error codes.
const registry::Algorithm& plan(const Device& device, const core::Problem& p, const ConvTranspose2dOptions& opt) {
  return *api::bind(device, p, core::Args{}, opt.algorithm, opt.allow_nondeterministic).algorithm;
}

// Runs a planned problem. The args point into host memory; on a CUDA device they are staged through
// device buffers (inputs copied in, outputs copied back).
std::string run_planned(const Device& device, const registry::Algorithm& algo, const core::Problem& p,
                        const core::Args& args) {
  registry::ExecContext ctx;
  ctx.num_threads = std::max(1, device.num_threads());
  const size_t ws_bytes = algo.workspace_bytes(p);

  if (device.kind() == DeviceKind::cpu) {
    std::vector<uint8_t> workspace;
    alloc_scratch(workspace, static_cast<int64_t>(ws_bytes), "the algorithm's workspace");
    core::throw_if_error(algo.run(p, args, ws_bytes ? workspace.data() : nullptr, ctx));
    return std::string(algo.name());
  }

  // CUDA: dense device copies of every tensor of this direction.
  const core::Geometry& g = p.g;
  const size_t es = size_of(p.act_type);
  const size_t src_b = static_cast<size_t>(core::src_elements(g)) * es;
  const size_t dst_b = static_cast<size_t>(core::dst_elements(g)) * es;
  const size_t wei_b = static_cast<size_t>(core::wei_elements(g)) * sizeof(float);
  const size_t bias_b = static_cast<size_t>(g.c_out) * sizeof(float);
  struct Staged { Buffer buf; void* host; size_t bytes; bool output; };
  std::vector<Staged> staged;
  auto stage = [&](const void* host, size_t bytes, bool output) -> void* {
    if (host == nullptr) return nullptr;
    Buffer b = output ? Buffer::allocate(device, bytes) : Buffer::from_host(device, host, bytes);
    if (output && p.accumulate) b.copy_from_host(host, bytes);
    staged.push_back({b, const_cast<void*>(host), bytes, output});
    return b.device_pointer();
  };
  core::Args d = args;
  switch (p.dir) {
    case core::Direction::fwd:
      d.src.data = stage(args.src.data, src_b, false);
      d.dst.data = stage(args.dst.data, dst_b, true);
      d.wei = static_cast<const float*>(stage(args.wei, wei_b, false));
      d.bias = static_cast<const float*>(stage(args.bias, bias_b, false));
      break;
    case core::Direction::bwd_data:
      d.diff_dst.data = stage(args.diff_dst.data, dst_b, false);
      d.diff_src.data = stage(args.diff_src.data, src_b, true);
      d.wei = static_cast<const float*>(stage(args.wei, wei_b, false));
      break;
    case core::Direction::bwd_weights:
      d.src.data = stage(args.src.data, src_b, false);
      d.diff_dst.data = stage(args.diff_dst.data, dst_b, false);
      d.diff_wei = static_cast<float*>(stage(args.diff_wei, wei_b, true));
      d.diff_bias = static_cast<float*>(stage(args.diff_bias, bias_b, true));
      break;
  }
  ctx.cuda_device = device.ordinal();
  Buffer workspace = ws_bytes ? Buffer::allocate(device, ws_bytes) : Buffer();
  core::throw_if_error(algo.run(p, d, ws_bytes ? workspace.device_pointer() : nullptr, ctx));
  core::throw_if_error(cuda_backend::stream_synchronize(device.ordinal(), nullptr));
  for (const Staged& s : staged)
    if (s.output) s.buf.copy_to_host(s.host, s.bytes);
  return std::string(algo.name());
}

}  // namespace

std::vector<int64_t> conv_transpose2d_output_shape(const std::vector<int64_t>& x_shape,
                                                   const std::vector<int64_t>& w_shape,
                                                   const ConvTranspose2dOptions& opt) {
  const core::Geometry g = make_geometry(x_shape, w_shape, opt);
  return act_shape(opt.layout, g.n, g.c_out, g.h_out, g.w_out);
}

std::string conv_transpose2d(const Device& device, const ConstArrayRef& x, const ConstArrayRef& w,
                             const ConstArrayRef& b, const ArrayRef& y, const ConvTranspose2dOptions& opt) {
  const core::Geometry g = make_geometry(x.shape, w.shape, opt);
  check_type("x", x.type);
  check_type("weights", w.type);
  if (y.type != x.type) {
    fail_invalid("y has element type " + std::string(to_string(y.type)) + " but x has " +
                 std::string(to_string(x.type)) + "; they must match");
  }
  if (x.data == nullptr || w.data == nullptr || y.data == nullptr) fail_invalid("x, weights and y must have data");
  check_shape("y", y.shape, act_shape(opt.layout, g.n, g.c_out, g.h_out, g.w_out));
  if (b.data != nullptr) {
    check_type("bias", b.type);
    check_shape("bias", b.shape, {g.c_out});
  }
  core::Problem p;
  p.dir = core::Direction::fwd;
  p.g = g;
  p.act_type = x.type;
  p.precision = opt.precision;
  p.with_bias = b.data != nullptr;
  const registry::Algorithm& algo = plan(device, p, opt);  // validates: the sizes below fit in int64
  check_aligned("x", x.data, x.type);
  check_aligned("weights", w.data, w.type);
  check_aligned("bias", b.data, b.type);
  check_aligned("y", y.data, y.type);

  NhwcActivation src = activation_in(x, opt.layout, g.n, g.c_in, g.h_in, g.w_in);
  const std::vector<float> wei = weights_in(w, g, opt.weight_layout);
  const std::vector<float> bias = p.with_bias ? to_f32(b, g.c_out) : std::vector<float>{};
  std::vector<uint8_t> dst_scratch;
  void* dst = y.data;
  if (opt.layout == ActivationLayout::nchw) {
    alloc_scratch(dst_scratch, core::dst_elements(g) * static_cast<int64_t>(size_of(y.type)), "the NHWC result");
    dst = dst_scratch.data();
  }
  {
    // After the scratch copies (a request too large for memory is out_of_memory whatever the pointers),
    // before the first output byte.
    const std::vector<Extent> all{{"x", x.data, core::src_elements(g), size_of(x.type)},
                                  {"weights", w.data, core::wei_elements(g), size_of(w.type)},
                                  {"bias", b.data, g.c_out, p.with_bias ? size_of(b.type) : 0},
                                  {"y", y.data, core::dst_elements(g), size_of(y.type)}};
    check_no_alias(all, {3});
  }
  const core::Args a =
      core::dense_args(g, src.data, dst, wei.data(), p.with_bias ? bias.data() : nullptr, nullptr, nullptr);
  std::string name = run_planned(device, algo, p, a);
  if (opt.layout == ActivationLayout::nchw) relayout(dst, y.data, g.n, g.c_out, g.h_out, g.w_out, size_of(y.type), false);
  return name;
}

ConvTranspose2dBackwardResult conv_transpose2d_backward(const Device& device, const ConstArrayRef& x,
                                                        const ConstArrayRef& w, const ConstArrayRef& dy,
                                                        const ConvTranspose2dGrads& grads,
                                                        const ConvTranspose2dOptions& opt) {
  const core::Geometry g = make_geometry(x.shape, w.shape, opt);
  const bool want_dx = grads.dx.data != nullptr;
  const bool want_dw = grads.dw.data != nullptr;
  const bool want_db = grads.db.data != nullptr;
  if (!want_dx && !want_dw && !want_db) fail_invalid("no gradient asked for (dx, dw and db are all null)");
  check_type("dy", dy.type);
  if (dy.data == nullptr) fail_invalid("dy must have data");
  check_shape("dy", dy.shape, act_shape(opt.layout, g.n, g.c_out, g.h_out, g.w_out));
  if (want_dx) {
    check_type("weights", w.type);
    if (w.data == nullptr) fail_invalid("weights must have data to compute dx");
    if (grads.dx.type != dy.type) {
      fail_invalid("dx has element type " + std::string(to_string(grads.dx.type)) + " but dy has " +
                   std::string(to_string(dy.type)) + "; they must match");
    }
    check_shape("dx", grads.dx.shape, act_shape(opt.layout, g.n, g.c_in, g.h_in, g.w_in));
  }
  if (want_dw || want_db) {
    check_type("x", x.type);
    if (x.data == nullptr) fail_invalid("x must have data to compute dw or db");
    if (x.type != dy.type) {
      fail_invalid("x has element type " + std::string(to_string(x.type)) + " but dy has " +
                   std::string(to_string(dy.type)) + "; they must match");
    }
  }
  if (want_dw) {
    if (grads.dw.type != DataType::float32) {
      fail_invalid("dw must be float32, got " + std::string(to_string(grads.dw.type)));
    }
    check_shape("dw", grads.dw.shape, w.shape);
  }
  if (want_db) {
    if (grads.db.type != DataType::float32) {
      fail_invalid("db must be float32, got " + std::string(to_string(grads.db.type)));
    }
    check_shape("db", grads.db.shape, {g.c_out});
  }
  core::Problem pd;
  pd.dir = core::Direction::bwd_data;
  pd.g = g;
  pd.act_type = dy.type;
  pd.precision = opt.precision;
  core::Problem pw = pd;
  pw.dir = core::Direction::bwd_weights;
  pw.with_bias = want_db;
  // Plan both directions before running either, so a declined one fails before any output is written.
  const registry::Algorithm* algo_data = want_dx ? &plan(device, pd, opt) : nullptr;
  const registry::Algorithm* algo_weights = (want_dw || want_db) ? &plan(device, pw, opt) : nullptr;
  core::throw_if_error(core::validate(pd));  // the sizes below fit in int64 even when only dw/db is asked for
  const bool read_x = want_dw || want_db;
  check_aligned("dy", dy.data, dy.type);
  if (read_x) check_aligned("x", x.data, x.type);
  if (want_dx) check_aligned("weights", w.data, w.type);
  check_aligned("dx", grads.dx.data, grads.dx.type);
  check_aligned("dw", grads.dw.data, grads.dw.type);
  check_aligned("db", grads.db.data, grads.db.type);
  {  // before any scratch: unlike the forward, dx is written before the dw/db scratch is made
    const std::vector<Extent> all{
        {"x", read_x ? x.data : nullptr, core::src_elements(g), size_of(x.type)},
        {"weights", want_dx ? w.data : nullptr, core::wei_elements(g), size_of(w.type)},
        {"dy", dy.data, core::dst_elements(g), size_of(dy.type)},
        {"dx", grads.dx.data, core::src_elements(g), size_of(grads.dx.type)},
        {"dw", grads.dw.data, core::wei_elements(g), sizeof(float)},
        {"db", grads.db.data, g.c_out, sizeof(float)}};
    check_no_alias(all, {3, 4, 5});
  }

  ConvTranspose2dBackwardResult result;
  const NhwcActivation ddst = activation_in(dy, opt.layout, g.n, g.c_out, g.h_out, g.w_out);
  if (want_dx) {
    const std::vector<float> wei = weights_in(w, g, opt.weight_layout);
    std::vector<uint8_t> scratch;
    void* dsrc = grads.dx.data;
    if (opt.layout == ActivationLayout::nchw) {
      alloc_scratch(scratch, core::src_elements(g) * static_cast<int64_t>(size_of(dy.type)), "the NHWC dx");
      dsrc = scratch.data();
    }
    core::Args a = core::dense_args(g, dsrc, ddst.data, wei.data(), nullptr, nullptr, nullptr);
    result.data_algorithm = run_planned(device, *algo_data, pd, a);
    if (opt.layout == ActivationLayout::nchw)
      relayout(dsrc, grads.dx.data, g.n, g.c_in, g.h_in, g.w_in, size_of(dy.type), false);
  }
  if (want_dw || want_db) {
    const NhwcActivation src = activation_in(x, opt.layout, g.n, g.c_in, g.h_in, g.w_in);
    std::vector<float> dw, db;
    alloc_scratch(dw, core::wei_elements(g), "the weight gradient");
    alloc_scratch(db, g.c_out, "the bias gradient");
    core::Args a = core::dense_args(g, src.data, ddst.data, nullptr, nullptr, dw.data(), want_db ? db.data() : nullptr);
    result.weights_algorithm = run_planned(device, *algo_weights, pw, a);
    if (want_dw) {
      auto* out = static_cast<float*>(grads.dw.data);
      if (opt.weight_layout == WeightLayout::mps) std::copy(dw.begin(), dw.end(), out);
      else transpose_weights_to_torch(dw.data(), out, weight_shape_of(g));
    }
    if (want_db) std::copy(db.begin(), db.end(), static_cast<float*>(grads.db.data));
  }
  return result;
}

}  // namespace tconv
