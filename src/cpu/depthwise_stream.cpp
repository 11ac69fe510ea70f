// cpu_depthwise_stream_f32: every direction of depthwise layers (one input and one output channel per
// group: c_in = c_out = groups). Such layers do ~1 multiply per loaded element: they are bound by memory
// bandwidth, so instead of a GEMM this path streams the NHWC tensors once, vectorised across channels
// (each channel is its own group, and NHWC keeps neighbouring channels contiguous).
//   fwd       dst[n][oy][ox][c]      = neuron(bias[c] + Σ_{taps hitting (oy,ox)} src[n][iy][ix][c] · wei[c][q][p])
//   bwd_data  diff_src[n][iy][ix][c] = Σ_taps diff_dst[n][oy][ox][c] · wei[c][q][p]
//   bwd_weights diff_wei[c][q][p] (+)= Σ_pairs diff_dst[..][c] · src[..][c];  diff_bias[c] (+)= Σ diff_dst[..][c]
// The forward only visits the taps that hit each output pixel (Axis::src_of), so no multiply touches an
// inserted zero. Weights are repacked tap-major ([tap][channel], a few KiB) so one vector load serves N
// channels. Determinism: fwd/bwd_data outputs are each written by one thread with taps in ascending order;
// the weight gradient splits the pixels into ranges fixed by the problem, each summed in pixel order into a
// private partial, and adds the partials in range order, so results do not depend on the thread count. The
// bias gradient is summed in the same pass over diff_dst.
#include <algorithm>
#include <vector>

#include "core/dtype.hpp"
#include "core/neuron.hpp"
#include "cpu/cpu_algorithms.hpp"
#include "cpu/cpu_common.hpp"

#ifndef TCONV_CPU_DEPTHWISE_JOB
#define TCONV_CPU_DEPTHWISE_JOB
namespace tconv::cpu {
struct DepthwiseJob {
  core::Direction dir = core::Direction::fwd;
  core::Geometry g;
  F32View in;                 // fwd: src; bwd_data: diff_dst; bwd_weights: src
  F32View out;                // fwd: dst; bwd_data: diff_src
  F32View dy;                 // bwd_weights: diff_dst (rounded for the multiplies)
  core::TensorView dy_orig;   // bwd_weights: diff_dst as stored (bias-gradient summands are not rounded)
  DataType act = DataType::float32;
  const float* wt = nullptr;  // [tap][c] rounded weights (fwd, bwd_data)
  const float* bias = nullptr;
  NeuronDescriptor neuron{};
  float* dw = nullptr;        // [c][kh][kw]
  float* db = nullptr;
  bool accumulate = false;
  int threads = 1;
  int64_t nsplit = 1;         // bwd_weights: pixel ranges, each with a private partial
  float* partial = nullptr;   // nsplit × depthwise_partial_floats(g)
};
// One range's partial: [kh·kw + 1][c_out] sums, plus one vector of slack so full-width stores of a channel
// tail stay inside the buffer.
inline int64_t depthwise_partial_floats(const core::Geometry& g) { return round_up((g.kh * g.kw + 1) * g.c_out + 16, 16); }
// Pixel ranges of the weight gradient: one per 1024 diff_dst pixels, at most 8 (fixed by the problem).
inline int64_t depthwise_splits(const core::Geometry& g) {
  return std::clamp<int64_t>(g.n * g.h_out * g.w_out / 1024, 1, 8);
}
}  // namespace tconv::cpu
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/depthwise_stream.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tconv::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// fwd / bwd_data: one output pixel row per work item; per pixel the list of (tap, input row) pairs is built
// once and reused for every channel vector.
void Gather(const DepthwiseJob& job) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const core::Geometry& g = job.g;
  const Axis ah = axis_h(g), aw = axis_w(g);
  const bool fwd = job.dir == core::Direction::fwd;
  const int64_t C = g.c_out, T = g.kh * g.kw;
  const int64_t oh = fwd ? g.h_out : g.h_in, ow = fwd ? g.w_out : g.w_in;
  const int64_t ih = fwd ? g.h_in : g.h_out, iw = fwd ? g.w_in : g.w_out;
#pragma omp parallel num_threads(std::max(1, job.threads))
  {
    std::vector<const float*> rows(static_cast<size_t>(T)), wts(static_cast<size_t>(T));
    HWY_ALIGN float tmp[HWY_LANES(float)];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < g.n * oh; ++r) {
      const int64_t n = r / oh, y = r % oh;
      for (int64_t x = 0; x < ow; ++x) {
        int64_t nt = 0;
        for (int64_t q = 0; q < g.kh; ++q) {
          const int64_t sy = fwd ? ah.src_of(y, q) : ah.dst_of(y, q);
          if (sy < 0 || sy >= ih) continue;
          for (int64_t p = 0; p < g.kw; ++p) {
            const int64_t sx = fwd ? aw.src_of(x, p) : aw.dst_of(x, p);
            if (sx < 0 || sx >= iw) continue;
            rows[static_cast<size_t>(nt)] = job.in.at(n, sy, sx);
            wts[static_cast<size_t>(nt++)] = job.wt + (q * g.kw + p) * C;
          }
        }
        float* o = job.out.at(n, y, x);
        for (int64_t c0 = 0; c0 < C; c0 += N) {
          const int64_t nc = std::min(N, C - c0);
          const auto m = hn::FirstN(d, static_cast<size_t>(nc));
          const bool full = nc == N;
          auto acc = hn::Zero(d);
          if (fwd && job.bias != nullptr) acc = full ? hn::LoadU(d, job.bias + c0) : hn::MaskedLoad(m, d, job.bias + c0);
          for (int64_t t = 0; t < nt; ++t) {
            const float* a = rows[static_cast<size_t>(t)] + c0;
            const float* w = wts[static_cast<size_t>(t)] + c0;
            acc = full ? hn::MulAdd(hn::LoadU(d, a), hn::LoadU(d, w), acc)
                       : hn::MulAdd(hn::MaskedLoad(m, d, a), hn::MaskedLoad(m, d, w), acc);
          }
          if (job.neuron.type == NeuronType::none) {
            if (full) hn::StoreU(acc, d, o + c0);
            else hn::BlendedStore(acc, m, d, o + c0);
          } else {  // evaluated in double, as the reference does
            hn::Store(acc, d, tmp);
            for (int64_t j = 0; j < nc; ++j)
              o[c0 + j] = static_cast<float>(core::neuron_apply<double>(job.neuron, static_cast<double>(tmp[j])));
          }
        }
      }
    }
  }
}

// bwd_weights: split-K over pixels. The diff_dst pixels are cut into job.nsplit ranges (fixed by the problem);
// an item streams its range in memory order and keeps [tap][channel] sums plus the bias sums in its private
// partial (a few KiB, cache-resident); the partials are then added in range order.
void Wgrad(const DepthwiseJob& job) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const core::Geometry& g = job.g;
  const Axis ah = axis_h(g), aw = axis_w(g);
  const int64_t C = g.c_out, T = g.kh * g.kw;
  const int64_t P = g.n * g.h_out * g.w_out, stride = depthwise_partial_floats(g);
  const bool bias = job.db != nullptr;
#pragma omp parallel num_threads(std::max(1, job.threads))
  {
    std::vector<const float*> xrow(static_cast<size_t>(T));
    std::vector<int64_t> xtap(static_cast<size_t>(T));
#pragma omp for schedule(dynamic, 1)
    for (int64_t s = 0; s < job.nsplit; ++s) {
      float* part = job.partial + s * stride;  // [T][C] tap sums, then [C] bias sums
      float* bpart = part + T * C;
      std::fill(part, part + (T + 1) * C, 0.0f);
      const int64_t p0 = s * P / job.nsplit, p1 = (s + 1) * P / job.nsplit;
      for (int64_t pix = p0; pix < p1; ++pix) {
        const int64_t n = pix / (g.h_out * g.w_out), oy = (pix / g.w_out) % g.h_out, ox = pix % g.w_out;
        int64_t nt = 0;
        for (int64_t q = 0; q < g.kh; ++q) {
          const int64_t iy = ah.src_of(oy, q);
          if (iy < 0) continue;
          for (int64_t p = 0; p < g.kw; ++p) {
            const int64_t ix = aw.src_of(ox, p);
            if (ix < 0) continue;
            xrow[static_cast<size_t>(nt)] = job.in.at(n, iy, ix);
            xtap[static_cast<size_t>(nt++)] = q * g.kw + p;
          }
        }
        const float* dyp = job.dy.at(n, oy, ox);
        const int64_t obase = n * job.dy_orig.sn + oy * job.dy_orig.sh + ox * job.dy_orig.sw;
        for (int64_t c0 = 0; c0 < C; c0 += N) {
          const int64_t nc = std::min(N, C - c0);
          const auto m = hn::FirstN(d, static_cast<size_t>(nc));
          const bool full = nc == N;
          const auto dv = full ? hn::LoadU(d, dyp + c0) : hn::MaskedLoad(m, d, dyp + c0);
          if (bias) {
            if (job.act == DataType::float32) {
              const float* o = static_cast<const float*>(job.dy_orig.data) + obase + c0;
              const auto ov = full ? hn::LoadU(d, o) : hn::MaskedLoad(m, d, o);
              hn::StoreU(hn::Add(hn::LoadU(d, bpart + c0), ov), d, bpart + c0);
            } else {
              for (int64_t j = 0; j < nc; ++j) bpart[c0 + j] += core::load_as_f32(job.dy_orig.data, obase + c0 + j, job.act);
            }
          }
          for (int64_t i = 0; i < nt; ++i) {
            const float* xp = xrow[static_cast<size_t>(i)] + c0;
            const auto xv = full ? hn::LoadU(d, xp) : hn::MaskedLoad(m, d, xp);
            float* a = part + xtap[static_cast<size_t>(i)] * C + c0;
            hn::StoreU(hn::MulAdd(dv, xv, hn::LoadU(d, a)), d, a);  // part is padded: full stores stay inside
          }
        }
      }
    }
    // diff_wei[c][t] = (previous if accumulating) + Σ_ranges part[t][c], ranges in order; likewise diff_bias.
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t t = 0; t <= T; ++t) {
        if (t == T && !bias) break;
        float& out = t < T ? job.dw[c * T + t] : job.db[c];
        float acc = job.accumulate ? out : 0.0f;
        for (int64_t s = 0; s < job.nsplit; ++s) acc += job.partial[s * stride + t * C + c];
        out = acc;
      }
    }
  }
}

void Run(const DepthwiseJob& job) {
  if (job.dir == core::Direction::bwd_weights) Wgrad(job);
  else Gather(job);
}

}  // namespace HWY_NAMESPACE
}  // namespace tconv::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tconv::cpu {
HWY_EXPORT(Run);
namespace {

class DepthwiseStream final : public registry::Algorithm {
 public:
  std::string_view name() const noexcept override { return "cpu_depthwise_stream_f32"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    if (g.groups != g.c_in || g.groups != g.c_out)
      return "only depthwise layers (groups = c_in = c_out); got groups " + std::to_string(g.groups) + ", c_in " +
             std::to_string(g.c_in) + ", c_out " + std::to_string(g.c_out);
    return std::nullopt;
  }
  std::size_t workspace_bytes(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    std::size_t b = static_cast<std::size_t>(round_up(g.kh * g.kw * g.c_out * 4, 64));
    if (p.dir == core::Direction::bwd_weights) b = static_cast<std::size_t>(depthwise_splits(g) * depthwise_partial_floats(g) * 4);
    if (input_needs_staging(p.act_type, p.precision)) b += f32_bytes(g.n, g.h_in, g.w_in, g.c_in) + f32_bytes(g.n, g.h_out, g.w_out, g.c_out);
    if (p.act_type != DataType::float32) b += f32_bytes(g.n, std::max(g.h_in, g.h_out), std::max(g.w_in, g.w_out), g.c_in);
    return b;
  }
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const registry::ExecContext& ctx) const override {
    const core::Geometry& g = p.g;
    const int th = ctx.num_threads;
    const int64_t T = g.kh * g.kw, C = g.c_out;
    char* w = static_cast<char*>(workspace);
    DepthwiseJob job;
    job.dir = p.dir;
    job.g = g;
    job.threads = th;
    job.act = p.act_type;
    const bool stage = input_needs_staging(p.act_type, p.precision);
    auto stage_or_view = [&](const core::TensorView& v, int64_t h, int64_t wd) {
      if (!stage) return as_f32(v);
      F32View s = stage_input(v, g.n, h, wd, C, p.act_type, p.precision, reinterpret_cast<float*>(w), th);
      w += f32_bytes(g.n, h, wd, C);
      return s;
    };
    if (p.dir == core::Direction::bwd_weights) {
      job.nsplit = depthwise_splits(g);
      job.partial = reinterpret_cast<float*>(w);
      w += job.nsplit * depthwise_partial_floats(g) * 4;
      job.in = stage_or_view(a.src, g.h_in, g.w_in);
      job.dy = stage_or_view(a.diff_dst, g.h_out, g.w_out);
      job.dy_orig = a.diff_dst;
      job.dw = a.diff_wei;
      job.db = p.with_bias ? a.diff_bias : nullptr;
      job.accumulate = p.accumulate;
      HWY_DYNAMIC_DISPATCH(Run)(job);
      return core::Status::ok_status();
    }
    float* wt = reinterpret_cast<float*>(w);  // [tap][c]
    w += round_up(T * C * 4, 64);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) wt[t * C + c] = core::round_input(a.wei[c * T + t], p.precision);
    job.wt = wt;
    const bool fwd = p.dir == core::Direction::fwd;
    const int64_t oh = fwd ? g.h_out : g.h_in, ow = fwd ? g.w_out : g.w_in;
    job.in = fwd ? stage_or_view(a.src, g.h_in, g.w_in) : stage_or_view(a.diff_dst, g.h_out, g.w_out);
    const core::TensorView& out = fwd ? a.dst : a.diff_src;
    const bool stage_out = p.act_type != DataType::float32;
    job.out = stage_out ? F32View{reinterpret_cast<float*>(w), oh * ow * C, ow * C, C} : as_f32(out);
    job.bias = fwd && p.with_bias ? a.bias : nullptr;
    job.neuron = p.neuron;
    HWY_DYNAMIC_DISPATCH(Run)(job);
    if (stage_out) unstage_output(job.out.data, out, g.n, oh, ow, C, p.act_type, th);
    return core::Status::ok_status();
  }
};

}  // namespace

const registry::Algorithm* depthwise_stream() {
  static const DepthwiseStream a;
  return &a;
}

}  // namespace tconv::cpu
#endif
