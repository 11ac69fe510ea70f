// `tconv forward` and `tconv grad`: one transposed convolution (or its gradients) on .npy arrays, through
// the functional API (tconv/functional.hpp).
//
// Geometry is PyTorch's ConvTranspose2d (--stride --padding --output-padding --dilation --groups) or MPS's
// (--mps-padding sizes the result by the padding policy, spec a.5.5 A; --mps-offset / --mps-kernel-offset
// give the total offset T = offset·s + kernelOffset, otherwise the policy's T is used). MPS geometry is
// reduced per axis with core/mps_geometry.hpp to the canonical padding pad = T − h + (ke − 1), which may be
// negative, and an explicit output size. The gradient uses the same reduction: with MPS's automatic
// configuration from the state (a.7.4) the data and weight gradients have the forward's canonical padding.
//
// Failure discipline: options, device, every input file and the whole computation are checked and done in
// memory first; output files are written only at the end (each atomically), so a failing command leaves
// no output file.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "core/mps_geometry.hpp"
#include "tconv/error.hpp"
#include "tconv/functional.hpp"

namespace tconv::cli {

namespace {

struct GeometryArgs {
  std::string stride = "1", padding = "0", output_padding = "0", dilation = "1";
  int64_t groups = 1;
  std::string mps_offset, mps_kernel_offset, mps_padding;
  std::string layout = "nchw", weight_layout = "pytorch", precision = "fp32", device = "cpu", algo;
  int threads = 0;
  bool allow_nondeterministic = false;
  CLI::Option* padding_opt = nullptr;
  CLI::Option* output_padding_opt = nullptr;
};

void add_geometry_options(CLI::App& app, GeometryArgs& a) {
  app.add_option("--stride", a.stride, "stride H,W or one number (default 1)");
  a.padding_opt = app.add_option("--padding", a.padding, "PyTorch padding H,W or one number (default 0)");
  a.output_padding_opt =
      app.add_option("--output-padding", a.output_padding, "PyTorch output_padding H,W (< max(stride, dilation))");
  app.add_option("--dilation", a.dilation, "dilation H,W or one number (default 1)");
  app.add_option("--groups", a.groups, "groups (default 1)");
  app.add_option("--mps-padding", a.mps_padding,
                 "MPS geometry: size the result by the padding policy valid|same|full (centred, remainder "
                 "top-left); default same when another --mps-* option is given");
  app.add_option("--mps-offset", a.mps_offset, "MPS geometry: offset X,Y (source pixels)");
  app.add_option("--mps-kernel-offset", a.mps_kernel_offset, "MPS geometry: kernelOffset X,Y (zero-inserted pixels)");
  app.add_option("--layout", a.layout, "activation layout of the .npy files: nchw (default) or nhwc");
  app.add_option("--weight-layout", a.weight_layout,
                 "weight layout: pytorch [Cin][Cout/G][kH][kW] (default) or mps [Cout][kH][kW][Cin/G]");
  app.add_option("--precision", a.precision, "multiply-input rounding: fp32 (default), tf32, bf16, fp16");
  app.add_option("--device", a.device, "cpu (default), cuda or cuda:N");
  app.add_option("--algo", a.algo, "force an algorithm by name (tconv info lists them)");
  app.add_option("--threads", a.threads, "CPU threads (default: TCONV_NUM_THREADS, OpenMP or hardware)");
  app.add_flag("--allow-nondeterministic", a.allow_nondeterministic, "let the registry pick nondeterministic algorithms");
}

// Kernel size (h, w) from the weight shape in its layout.
Hw kernel_of(const std::vector<int64_t>& ws, WeightLayout l) {
  if (ws.size() != 4) return Hw{0, 0};  // the functional API reports the wrong rank with the shape
  return l == WeightLayout::pytorch ? Hw{ws[2], ws[3]} : Hw{ws[1], ws[2]};
}
Hw spatial_of(const std::vector<int64_t>& xs, ActivationLayout l) {
  if (xs.size() != 4) return Hw{0, 0};
  return l == ActivationLayout::nchw ? Hw{xs[2], xs[3]} : Hw{xs[1], xs[2]};
}

// Options → functional-API options; shapes of x and w are needed for the MPS reduction.
ConvTranspose2dOptions make_options(const GeometryArgs& a, const std::vector<int64_t>& x_shape,
                                    const std::vector<int64_t>& w_shape) {
  ConvTranspose2dOptions o;
  o.stride = parse_hw("stride", a.stride);
  o.dilation = parse_hw("dilation", a.dilation);
  o.groups = a.groups;
  o.layout = parse_layout(a.layout);
  o.weight_layout = parse_weight_layout(a.weight_layout);
  o.precision = parse_precision_option(a.precision);
  o.algorithm = a.algo;
  o.allow_nondeterministic = a.allow_nondeterministic;
  const bool mps = !a.mps_padding.empty() || !a.mps_offset.empty() || !a.mps_kernel_offset.empty();
  if (!mps) {
    o.padding = parse_hw("padding", a.padding);
    o.output_padding = parse_hw("output-padding", a.output_padding);
    return o;
  }
  if (a.padding_opt->count() > 0 || a.output_padding_opt->count() > 0) {
    throw Error(ErrorCode::invalid_argument,
                "--padding/--output-padding (PyTorch geometry) cannot be combined with --mps-* options (MPS geometry)");
  }
  PaddingMethod method = padding::align_centered | padding::add_remainder_to_top_left;
  const std::string policy = a.mps_padding.empty() ? "same" : a.mps_padding;
  if (policy == "valid") method |= padding::size_valid_only;
  else if (policy == "same") method |= padding::size_same;
  else if (policy == "full") method |= padding::size_full;
  else throw Error(ErrorCode::invalid_argument, "unknown --mps-padding '" + policy + "' (valid, same, full)");
  // parse_hw reads "H,W"; MPS offsets are given X,Y, so swap.
  const bool explicit_offsets = !a.mps_offset.empty() || !a.mps_kernel_offset.empty();
  const Hw off_yx = a.mps_offset.empty() ? Hw{0, 0} : parse_hw("mps-offset", a.mps_offset);
  const Hw koff_yx = a.mps_kernel_offset.empty() ? Hw{0, 0} : parse_hw("mps-kernel-offset", a.mps_kernel_offset);
  const Hw k = kernel_of(w_shape, o.weight_layout);
  const Hw in = spatial_of(x_shape, o.layout);
  if (k.h <= 0 || k.w <= 0 || in.h <= 0 || in.w <= 0 || o.stride.h <= 0 || o.stride.w <= 0 || o.dilation.h <= 0 ||
      o.dilation.w <= 0) {
    return o;  // the functional API rejects these shapes and values with their names
  }
  auto axis = [&](int64_t in_sz, int64_t kk, int64_t s, int64_t r, int64_t offset, int64_t koff, bool vertical,
                  int64_t& pad, int64_t& out) {
    const core::mps::AxisSizing sz = core::mps::size_by_padding_policy(in_sz, kk, s, r, method, vertical);
    const int64_t T = explicit_offsets ? offset * s + koff : sz.total_offset;
    pad = core::mps::fwd_pad_from_total_offset(T, kk, r);
    out = sz.out_size;
  };
  // Hw from parse_hw holds (first, second) = (X, Y) here.
  axis(in.h, k.h, o.stride.h, o.dilation.h, off_yx.w, koff_yx.w, true, o.padding.h, o.output_size.h);
  axis(in.w, k.w, o.stride.w, o.dilation.w, off_yx.h, koff_yx.h, false, o.padding.w, o.output_size.w);
  if (o.output_size.h <= 0 || o.output_size.w <= 0) {
    throw Error(ErrorCode::invalid_argument,
                "--mps-padding " + policy + " gives a non-positive result size " + std::to_string(o.output_size.h) +
                    "x" + std::to_string(o.output_size.w) + " for input " + std::to_string(in.h) + "x" +
                    std::to_string(in.w) + " and kernel " + std::to_string(k.h) + "x" + std::to_string(k.w));
  }
  return o;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

}  // namespace

int cmd_forward(int argc, char** argv) {
  CLI::App app{"Forward transposed convolution y = conv_transpose2d(x, w, b) on .npy arrays "
               "(float32 or float16 inputs; y is written as float32).",
               "tconv forward"};
  GeometryArgs g;
  std::string x_path, w_path, b_path, y_path;
  app.add_option("--x", x_path, "input activations .npy (N,C,H,W or N,H,W,C)")->required();
  app.add_option("--w", w_path, "weights .npy")->required();
  app.add_option("--b", b_path, "bias .npy [Cout] (optional)");
  app.add_option("--y", y_path, "output .npy")->required();
  add_geometry_options(app, g);
  if (auto rc = parse_arguments(app, argc, argv)) return *rc;

  const Device device = make_device(g.device, g.threads);
  const HostArray x = load_array("x", x_path);
  const HostArray w = load_array("w", w_path);
  std::optional<HostArray> b;
  if (!b_path.empty()) b = load_array("b", b_path);
  const ConvTranspose2dOptions opt = make_options(g, x.shape, w.shape);

  const std::vector<int64_t> y_shape = conv_transpose2d_output_shape(x.shape, w.shape, opt);
  int64_t y_count = 1;
  for (int64_t s : y_shape) y_count *= s;
  std::vector<uint8_t> y(static_cast<size_t>(y_count) * size_of(x.type));
  const std::string algo = conv_transpose2d(device, x.ref(), w.ref(), b ? b->ref() : ConstArrayRef{},
                                            ArrayRef{y.data(), x.type, y_shape}, opt);
  PendingOutputs out;
  out.add(y_path, x.type, y_shape, y.data());
  out.write_all();
  std::printf("tconv forward: y %s -> %s (algorithm %s, %s)\n", shape_str(y_shape).c_str(), y_path.c_str(),
              algo.c_str(), device.name().c_str());
  return 0;
}

int cmd_grad(int argc, char** argv) {
  CLI::App app{"Gradients of y = conv_transpose2d(x, w, b) for a given dy: dx, dw, db on .npy arrays "
               "(float32 or float16 inputs; outputs are written as float32 in the input layouts).",
               "tconv grad"};
  GeometryArgs g;
  std::string x_path, w_path, dy_path, dx_path, dw_path, db_path, option;
  app.add_option("--x", x_path, "forward input activations .npy")->required();
  app.add_option("--w", w_path, "weights .npy")->required();
  app.add_option("--dy", dy_path, "gradient of the forward output .npy")->required();
  app.add_option("--dx", dx_path, "output: gradient w.r.t. x");
  app.add_option("--dw", dw_path, "output: gradient w.r.t. w (in --weight-layout)");
  app.add_option("--db", db_path, "output: gradient w.r.t. the bias [Cout]");
  app.add_option("--option", option,
                 "data (dx), weights (dw and db) or all; default: whatever outputs are named");
  add_geometry_options(app, g);
  if (auto rc = parse_arguments(app, argc, argv)) return *rc;

  bool want_dx = !dx_path.empty(), want_w = !dw_path.empty() || !db_path.empty();
  if (!option.empty()) {
    const GradientOption go = parse_gradient_option(option);
    if (has_data(go) && dx_path.empty()) throw Error(ErrorCode::invalid_argument, "--option " + option + " needs --dx");
    if (has_weights(go) && dw_path.empty()) throw Error(ErrorCode::invalid_argument, "--option " + option + " needs --dw");
    if (!has_data(go) && !dx_path.empty())
      throw Error(ErrorCode::invalid_argument, "--option " + option + " computes no dx, but --dx was given");
    if (!has_weights(go) && (!dw_path.empty() || !db_path.empty()))
      throw Error(ErrorCode::invalid_argument, "--option " + option + " computes no dw/db, but --dw or --db was given");
    want_dx = has_data(go);
    want_w = has_weights(go);
  }
  if (!want_dx && !want_w) throw Error(ErrorCode::invalid_argument, "no output named: give --dx, --dw and/or --db");

  const Device device = make_device(g.device, g.threads);
  HostArray x = load_array("x", x_path);
  const HostArray w = load_array("w", w_path);
  HostArray dy = load_array("dy", dy_path);
  // The problem has one activation type: float16 only when both activation files are float16.
  if (x.type != dy.type) {
    x = x.as_float32();
    dy = dy.as_float32();
  }
  const ConvTranspose2dOptions opt = make_options(g, x.shape, w.shape);

  const std::vector<int64_t>& x_shape = x.shape;
  int64_t x_count = 1;
  for (int64_t s : x_shape) x_count *= s;
  int64_t w_count = 1;
  for (int64_t s : w.shape) w_count *= s;
  // Output channel count from the geometry (validated by the call below; c_out is y's channel axis).
  const std::vector<int64_t> y_shape = conv_transpose2d_output_shape(x.shape, w.shape, opt);
  const int64_t c_out = opt.layout == ActivationLayout::nchw ? y_shape[1] : y_shape[3];

  std::vector<uint8_t> dx(want_dx ? static_cast<size_t>(x_count) * size_of(dy.type) : 0);
  std::vector<float> dw(want_w ? static_cast<size_t>(w_count) : 0);
  std::vector<float> db(!db_path.empty() ? static_cast<size_t>(c_out) : 0);
  ConvTranspose2dGrads grads;
  if (want_dx) grads.dx = ArrayRef{dx.data(), dy.type, x_shape};
  if (want_w) grads.dw = ArrayRef{dw.data(), DataType::float32, w.shape};
  if (!db_path.empty()) grads.db = ArrayRef{db.data(), DataType::float32, {c_out}};
  const ConvTranspose2dBackwardResult r = conv_transpose2d_backward(device, x.ref(), w.ref(), dy.ref(), grads, opt);

  PendingOutputs out;
  if (want_dx) out.add(dx_path, dy.type, x_shape, dx.data());
  if (!dw_path.empty()) out.add(dw_path, DataType::float32, w.shape, dw.data());
  if (!db_path.empty()) out.add(db_path, DataType::float32, {c_out}, db.data());
  out.write_all();
  std::printf("tconv grad:");
  if (want_dx) std::printf(" dx -> %s (algorithm %s)", dx_path.c_str(), r.data_algorithm.c_str());
  if (want_w) std::printf(" dw/db (algorithm %s)", r.weights_algorithm.c_str());
  std::printf(" on %s\n", device.name().c_str());
  return 0;
}

}  // namespace tconv::cli
