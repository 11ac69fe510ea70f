// cuda_few_channels: transposed convolutions with few channels per group on at least one side (at most 4),
// or few on both (at most 32 each) — dcgan's 64→3 output layer, fsrcnn's 56→1, fcn8s's 21→21 k16 s8, small
// grouped layers (the data and weight gradients of the ≤ 4-output-channel ones, with ≥ 8 input channels, go to
// cuda_tap_gemm, listed first, in the matching-type modes; this algorithm keeps their forward and the mixed modes).
// A GEMM has nothing to tile there (N or K of 1-21); these kernels stream the images once,
// with the weights rounded into shared memory and every output computed in float32 registers:
//   fwd          one thread per output pixel of a stride phase × up to 8 output channels (stream_few_fwd.cu)
//   bwd_data     blocks of 64 input pixels × up to 64 channels; dY rows and weights staged per kernel row,
//                split over kernel rows (with a fixed-order sum) when the layer has too few pixels
//                (stream_few_bwd_data.cu)
//   bwd_weights  blocks of (pixel chunk, stride phase × tap batch): threads own (tap, 8 outputs, 8 channels)
//                tiles, walk the phase's pixels once, and write partial rows that stream_reduce.cu adds in a
//                fixed order (stream_few_bwd_weights.cu)
// Declined: more than 32 channels per group on both sides with more than 4 on each (a GEMM algorithm is
// faster), pure depthwise layers (cuda_stream_depthwise streams them; here each group would be its own tiny
// block), fp32 layers with 16 or more channels on both sides (cuda_simt_f32 is faster there), kernels or strides
// beyond the phase tables (32), and plans that do not fit shared memory or the grid (named in the reason).
#include <optional>
#include <string>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/stream_few.cuh"

namespace tconv::cuda_stream::few {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

Plan make_plan(const core::Problem& p) {
  Plan plan;
  const core::Geometry& g = p.g;
  const int64_t ig = g.ig(), og = g.og();
  if (std::string why = phase_limits_reason(g); !why.empty()) {
    plan.why = why;
    return plan;
  }
  const PhaseDim py = make_phase_dim(g.kh, g.stride_h, g.dil_h, g.pad_h, g.h_out);
  const PhaseDim px = make_phase_dim(g.kw, g.stride_w, g.dil_w, g.pad_w, g.w_out);
  const int max_taps = max_taps_per_phase(py, g.stride_h) * max_taps_per_phase(px, g.stride_w);
  const int64_t nph = g.stride_h * g.stride_w;

  // ---- fwd -------------------------------------------------------------------------------------------------
  FwdPlan& f = plan.f;
  f.ro = ro_for(og);
  f.n_ot = static_cast<int>(ceil_div(og, f.ro));
  f.igp = static_cast<int>(ceil_div(ig, 8) * 8);
  f.max_taps = std::max(1, max_taps);
  f.smem = static_cast<std::size_t>(f.max_taps) * f.igp * f.ro * sizeof(float);
  if (f.smem > kFwdSmemMax) {
    plan.why = "forward: one stride phase's weights (" + std::to_string(f.max_taps) + " taps x " +
               std::to_string(f.igp) + " channels x " + std::to_string(f.ro) + " outputs) need " +
               std::to_string(f.smem) + " bytes of shared memory, more than " + std::to_string(kFwdSmemMax);
    return plan;
  }
  if (g.groups * f.n_ot > kMaxGridYZ) {
    plan.why = "forward: groups x output tiles (" + std::to_string(g.groups * f.n_ot) + ") exceed the grid limit";
    return plan;
  }

  // ---- bwd_data --------------------------------------------------------------------------------------------
  DxPlan& d = plan.d;
  d.twc = 8;
  while (d.twc < 64 && d.twc < g.w_in) d.twc *= 2;
  d.tr = 64 / d.twc;
  d.twc_shift = 0;
  while ((1 << d.twc_shift) < d.twc) ++d.twc_shift;
  const int64_t nct = ceil_div(ig, 8);
  d.nctb = static_cast<int>(std::min<int64_t>(nct, 8));
  d.cg = static_cast<int>(ceil_div(nct, d.nctb));
  d.cb = d.nctb * 8;
  d.row_tiles = ceil_div(g.n * g.h_in, d.tr);
  d.col_tiles = ceil_div(g.w_in, d.twc);
  d.npix = g.n * g.h_in * g.w_in;
  // Split the kernel rows over blockIdx.z when the layer has too few pixels to fill the GPU (about 3072 warps:
  // a constant, so the split — and the summation order — depends on the problem only).
  const int64_t warps = d.row_tiles * d.col_tiles * g.groups * d.cg * d.nctb;
  int64_t ks = std::clamp<int64_t>(ceil_div(3072, warps), 1, g.kh);
  d.qps = static_cast<int>(ceil_div(g.kh, ks));
  d.ks = static_cast<int>(ceil_div(g.kh, d.qps));
  const int64_t nc = (d.twc - 1) * g.stride_w + g.dil_w * (g.kw - 1) + 1;
  if (nc > (int64_t{1} << 16)) {
    plan.why = "data gradient: a 64-pixel tile spans " + std::to_string(nc) + " output columns (dilation " +
               std::to_string(g.dil_w) + ", stride " + std::to_string(g.stride_w) + ")";
    return plan;
  }
  d.nc = static_cast<int>(nc);
  d.ncs = static_cast<int>(ceil_div(nc, g.stride_w));
  d.ncp = static_cast<int>(g.stride_w) * d.ncs;
  auto smem_for = [&](int qb, int ob, int* rs, int* a_floats, int* w_floats) {
    // Row stride ≡ twc (mod 32) when a warp spans several rows, so the rows land on different banks.
    *rs = static_cast<int>(ceil_div(int64_t{ob} * d.ncp, 32) * 32) + (d.twc % 32);
    *a_floats = qb * d.tr * *rs;
    *w_floats = static_cast<int>(int64_t{qb} * g.kw * ob * d.cb);
    return static_cast<std::size_t>(*a_floats + *w_floats) * sizeof(float) + 2 * d.tr * sizeof(int64_t);
  };
  d.ob = static_cast<int>(std::min<int64_t>(og, 32));
  d.qb = d.qps;
  for (;;) {
    if (int64_t{d.ob} * d.ncp > (int64_t{1} << 24) || g.kw * d.ob * d.cb > (int64_t{1} << 24)) {
      d.smem = kDxSmemMax + 1;
    } else {
      d.smem = smem_for(d.qb, d.ob, &d.rs, &d.a_floats, &d.w_floats);
    }
    if (d.smem <= kDxSmemMax) break;
    if (d.qb > 1) {
      --d.qb;
    } else if (d.ob > 1) {
      d.ob = (d.ob + 1) / 2;
    } else {
      plan.why = "data gradient: one kernel row of dY columns and weights needs " + std::to_string(d.smem) +
                 " bytes of shared memory, more than " + std::to_string(kDxSmemMax);
      return plan;
    }
  }
  if (g.groups * d.cg > kMaxGridYZ) {
    plan.why = "data gradient: groups x channel tiles (" + std::to_string(g.groups * d.cg) + ") exceed the grid limit";
    return plan;
  }
  d.workspace = d.ks > 1 ? static_cast<std::size_t>(d.ks) * static_cast<std::size_t>(d.npix * g.c_in) * sizeof(float)
                         : 0;

  // ---- bwd_weights -----------------------------------------------------------------------------------------
  // Walking output pixels by phase reads dY once and X once per tap of the phase; walking input pixels reads
  // X once and dY once per tap reaching it. Both ratios are (kh/sh)·(kw/sw): read the larger tensor once.
  DwPlan& w = plan.w;
  w.input_major = core::dst_elements(g) < core::src_elements(g);
  const int taps_max = w.input_major ? static_cast<int>(g.kh * g.kw) : std::max(1, max_taps);
  w.ro = ro_for(og);
  w.n_ot = static_cast<int>(ceil_div(og, w.ro));
  w.nct8 = static_cast<int>(ceil_div(ig, 8));
  w.ogs = w.n_ot * w.ro;
  w.igs = w.nct8 * 8;
  const int64_t tt = int64_t{w.n_ot} * w.nct8;
  if (tt > (int64_t{1} << 20)) {
    plan.why = "weight gradient: " + std::to_string(tt) + " register tiles per tap";
    return plan;
  }
  w.tt = static_cast<int>(tt);
  w.tg = w.tt <= kDwThreads ? 1 : static_cast<int>(ceil_div(w.tt, kDwThreads));
  w.tb = w.tt <= kDwThreads ? std::clamp(kDwThreads / w.tt, 1, taps_max) : 1;
  // Bytes one staged pixel needs: dY rows (one, or one per tap when input-major), X rows (one per tap when
  // phase-major, else one), its four index words and one base offset per tap. At least 8 pixels a round:
  // fewer taps per batch if needed.
  auto px_bytes = [&](int tb) {
    const int64_t yr = w.input_major ? tb : 1, xr = w.input_major ? 1 : tb;
    return (yr * w.ogs + xr * w.igs) * 4 + (4 + tb) * 8;
  };
  while (w.tb > 1 && px_bytes(w.tb) * 8 > static_cast<int64_t>(kDwSmemMax)) --w.tb;
  if (px_bytes(w.tb) * 8 > static_cast<int64_t>(kDwSmemMax)) {
    plan.why = "weight gradient: one pixel's channels (" + std::to_string(ig) + " in, " + std::to_string(og) +
               " out) need more than " + std::to_string(kDwSmemMax / 8) + " bytes of shared memory";
    return plan;
  }
  w.kp = static_cast<int>(std::min<int64_t>(64, static_cast<int64_t>(kDwSmemMax) / px_bytes(w.tb)));
  {
    const int64_t yr = w.input_major ? w.tb : 1, xr = w.input_major ? 1 : w.tb;
    const int64_t ys = (w.kp * yr * w.ogs + 3) / 4 * 4;
    const int64_t stage = (ys + w.kp * xr * w.igs) * 4 + int64_t{w.kp} * (4 + w.tb) * 8;
    w.union_bytes = static_cast<std::size_t>((std::max<int64_t>(stage, kDwThreads * 8 * 4) + 15) / 16 * 16);
    w.smem = w.union_bytes + static_cast<std::size_t>(w.tb) * 20;
  }
  if (w.tg == 1) {
    w.nt = w.tb * w.tt;
    w.tiles_total = w.nt;
  } else {
    w.nt = kDwThreads;
    w.tiles_total = w.tt;
  }
  w.ksd = std::max(1, kDwThreads / w.nt);
  w.nb = std::max(1, static_cast<int>(ceil_div(taps_max, w.tb)));
  w.nph_bias = w.input_major ? 1 : static_cast<int>(nph);
  w.items = (w.input_major ? 1 : static_cast<int>(nph)) * w.nb;
  if (w.items > kMaxGridYZ) {
    plan.why = "weight gradient: " + std::to_string(w.items) + " phase x tap-batch items exceed the grid limit";
    return plan;
  }
  w.wei_count = core::wei_elements(g);
  w.row_len = w.wei_count + (p.with_bias ? int64_t{w.nph_bias} * g.c_out : 0);
  const int64_t walk = w.input_major
                           ? g.n * g.h_in * g.w_in
                           : g.n * max_phase_count(py, g.stride_h) * max_phase_count(px, g.stride_w);
  const int64_t data_bytes = (core::src_elements(g) + core::dst_elements(g)) * static_cast<int64_t>(size_of(p.act_type));
  core::Problem pw = p;
  pw.dir = core::Direction::bwd_weights;
  w.chunks = choose_chunks(int64_t{w.items} * g.groups * w.tg, w.row_len, walk, int64_t{2} * w.kp, data_bytes,
                           pw.macs());
  if (w.chunks * g.groups * w.tg > (int64_t{1} << 31) - 1) {
    plan.why = "weight gradient: grid too large (groups " + std::to_string(g.groups) + ")";
    return plan;
  }
  w.workspace = static_cast<std::size_t>(w.chunks * w.row_len) * sizeof(float);
  return plan;
}

}  // namespace tconv::cuda_stream::few

namespace tconv::registry {
namespace {

class CudaFewChannels final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_few_channels"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  // This algorithm takes all three directions of a layer or none, so a training step never lacks one pass.
  // (The planner still chooses per direction: cuda_channel_pad, listed before it, may take a layer's weight
  // gradient on the tensor cores while this takes its forward and data gradient — each pass is deterministic
  // on its own, so mixing changes nothing but speed.)
  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.act_type != DataType::float32 && p.act_type != DataType::float16 && p.act_type != DataType::bfloat16)
      return "activation type " + std::string(to_string(p.act_type)) + " is not float32, float16 or bfloat16";
    const int64_t ig = p.g.ig(), og = p.g.og();
    if (ig == 1 && og == 1 && p.g.groups > 1)
      return "depthwise (one channel per group on both sides): cuda_stream_depthwise's kernels";
    if (std::min(ig, og) > 4 && std::max(ig, og) > 32)
      return std::to_string(ig) + " input and " + std::to_string(og) +
             " output channels per group: more than 4 on both sides and more than 32 on one; a GEMM algorithm is "
             "faster";
    // True fp32 with 16+ channels a side: cuda_simt_f32's 32-wide channel tiles are at least half full there and
    // it outruns these kernels (fcn8s_up8, 21→21, on the H100: dX 0.38 vs 0.62 ms, dW+db 0.44 vs 0.84 ms, fwd
    // equal), so the planner should reach it.
    if (p.precision == Precision::fp32 && std::min(ig, og) >= 16 && !cuda_simt_f32_algorithm()->decline_reason(p))
      return "fp32 precision with " + std::to_string(ig) + " input and " + std::to_string(og) +
             " output channels per group (16 or more on both sides): cuda_simt_f32 is faster";
    const cuda_stream::few::Plan plan = cuda_stream::few::make_plan(p);
    if (!plan.why.empty()) return plan.why;
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    const cuda_stream::few::Plan plan = cuda_stream::few::make_plan(p);
    if (!plan.why.empty()) return 0;
    switch (p.dir) {
      case core::Direction::fwd: return 0;
      case core::Direction::bwd_data: return plan.d.workspace;
      case core::Direction::bwd_weights: return plan.w.workspace;
    }
    return 0;
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    cuda_backend::DeviceGuard guard(ctx.cuda_device);
    if (!guard.ok()) return guard.status();
    const auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
    const cuda_stream::few::Plan plan = cuda_stream::few::make_plan(p);
    if (!plan.why.empty()) return core::unsupported("cuda_few_channels: " + plan.why);
    const std::size_t ws = workspace_bytes(p);
    if (workspace == nullptr && ws != 0)
      return core::invalid("cuda_few_channels needs " + std::to_string(ws) + " bytes of device workspace");
    switch (p.dir) {
      case core::Direction::fwd: return cuda_stream::few::launch_fwd(p, a, plan.f, stream);
      case core::Direction::bwd_data: return cuda_stream::few::launch_bwd_data(p, a, plan.d, workspace, stream);
      case core::Direction::bwd_weights:
        return cuda_stream::few::launch_bwd_weights(p, a, plan.w, workspace, stream);
    }
    return core::invalid("unknown direction");
  }
};

}  // namespace

const Algorithm* cuda_few_channels_algorithm() {
  static const CudaFewChannels algorithm;
  return &algorithm;
}

}  // namespace tconv::registry
