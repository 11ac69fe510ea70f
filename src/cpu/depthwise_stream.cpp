// cpu_depthwise_stream_f32: every direction of depthwise layers (one input and one output channel per
// group: c_in = c_out = groups). Such layers do ~1 multiply per loaded element: they are bound by memory
// bandwidth, so instead of a GEMM this path streams the NHWC tensors once, vectorised across channels
// (each channel is its own group, and NHWC keeps neighbouring channels contiguous).
//   fwd       dst[n][oy][ox][c]      = neuron(bias[c] + Σ_{taps hitting (oy,ox)} src[n][iy][ix][c] · wei[c][q][p])
//   bwd_data  diff_src[n][iy][ix][c] = Σ_taps diff_dst[n][oy][ox][c] · wei[c][q][p]
//   bwd_weights diff_wei[c][q][p] (+)= Σ_pairs diff_dst[..][c] · src[..][c];  diff_bias[c] (+)= Σ diff_dst[..][c]
// Tap pairs come from tap_walk.hpp: plain address arithmetic along walker rows, bounds checks only on the
// few edge columns, and for the forward only the taps of each stride phase (no multiply on inserted zeros).
//
// fwd / bwd_data (gather): per walker row, strips of 8 output pixels × one channel vector are accumulated
// in registers over all taps (one weight vector load per tap serves the 8 pixels) and stored once. A work
// item is a block of consecutive output rows, so the partner rows they share (a tap-height window, in L2)
// are read from memory once. Every output element is computed by one strip: deterministic.
// bwd_weights: the src rows are cut into ranges fixed by the problem; an item is (range, block of channels).
// Per strip of 8 src pixels and channel vector, up to 16 taps' products are summed in registers (src vector
// loaded once per pixel, the partners from the diff_dst rows the strip spans) and then added to the range's
// private [tap][channel] partial, which stays in L1. A strip covers whole pixels (all channels) of the src
// row and of the diff_dst rows it pairs with, so memory is read in dense blocks. The bias sums of the
// diff_dst rows each src row owns are taken right after that row, while those lines are in cache. Partials are added in range order; the channel blocking
// only splits independent channels, so the result does not depend on the thread count.
#include <algorithm>
#include <vector>

#include "core/dtype.hpp"
#include "core/neuron.hpp"
#include "cpu/cpu_algorithms.hpp"
#include "cpu/cpu_common.hpp"
#include "cpu/tap_walk.hpp"

#ifndef TCONV_CPU_DEPTHWISE_JOB
#define TCONV_CPU_DEPTHWISE_JOB
namespace tconv::cpu {
struct DepthwiseJob : WgradTarget {  // the WgradTarget fields: bwd_weights only
  core::Direction dir = core::Direction::fwd;
  core::Geometry g;
  F32View in;                 // fwd: src; bwd_data: diff_dst; bwd_weights: src (all rounded for the multiplies)
  F32View out;                // fwd: dst; bwd_data: diff_src
  F32View dy;                 // bwd_weights: diff_dst (rounded for the multiplies)
  F32View bsrc;               // bwd_weights: diff_dst as float32 without rounding (data null: use dy_orig)
  const float* wt = nullptr;  // [tap][c] rounded weights (fwd, bwd_data)
  const float* bias = nullptr;
  NeuronDescriptor neuron{};
  int threads = 1;
  int64_t rows_per_range = 1;  // bwd_weights: src rows per range (fixed by the problem)
  float* partial = nullptr;    // bwd_weights: ranges × depthwise_partial_floats(g)
};
// One range's partial: [kh·kw + 1][c_out] sums (taps, then the bias), 64-byte aligned.
inline int64_t depthwise_partial_floats(const core::Geometry& g) { return round_up((g.kh * g.kw + 1) * g.c_out, 16); }
// Src rows per weight-gradient range: about 1 MiB of src per range (whole images when they are that
// small), grown until the partials fit in the largest tensor. Fixed by the problem.
inline int64_t depthwise_rows_per_range(const core::Geometry& g) {
  const int64_t rows = g.n * g.h_in, row_bytes = std::max<int64_t>(1, g.w_in * g.c_in * 4);
  int64_t rpr = std::clamp<int64_t>((int64_t{1} << 20) / row_bytes, 1, rows);
  const int64_t largest = std::max({core::src_elements(g), core::dst_elements(g), core::wei_elements(g)});
  while ((rows + rpr - 1) / rpr * depthwise_partial_floats(g) > largest && rpr < rows) rpr *= 2;
  return std::min(rpr, rows);
}
inline int64_t depthwise_ranges(const core::Geometry& g) {
  const int64_t rows = g.n * g.h_in, rpr = depthwise_rows_per_range(g);
  return (rows + rpr - 1) / rpr;
}
}  // namespace tconv::cpu
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/depthwise_stream.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "cpu/walk_kernels-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tconv::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
namespace {  // file-local: other kernel files define helpers of the same names in these namespaces

constexpr int kVB = HWY_LANES(float) >= 16 ? 4 : 2;   // channel vectors per weight-gradient tile
constexpr int kWAcc = HWY_LANES(float) >= 16 ? 24 : 8;  // accumulators per weight-gradient tile
constexpr int kMX = kWAcc / kVB;  // output pixels per gather strip (× kVB channel vectors in registers)

// out[xx][c0 .. c0 + nvalid) = init + Σ_taps partner · w for the MX columns xx0.. and NVB channel vectors
// (the last one masked). (CHECK: per-column bounds on each tap, MX = 1.)
template <int MX, bool CHECK, int NVB>
HWY_INLINE void GatherBlock(const ActiveTap* taps, int64_t nt, int64_t xx0, int64_t pstride, float* orow,
                            int64_t ostride, int64_t c0, int64_t nvalid, const float* bias) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const auto ml = hn::FirstN(d, static_cast<size_t>(nvalid - (NVB - 1) * N));
  V acc[MX][NVB];
  InitStrip(acc, bias, c0, ml);
  for (int64_t t = 0; t < nt; ++t) {
    const ActiveTap& a = taps[t];
    if (CHECK && (xx0 < a.lo || xx0 >= a.hi)) continue;
    const float* pp = a.p + xx0 * pstride + c0;
    V w[NVB];
#pragma GCC unroll 4
    for (int v = 0; v < NVB; ++v) w[v] = v < NVB - 1 ? hn::LoadU(d, a.w + c0 + v * N) : hn::MaskedLoad(ml, d, a.w + c0 + v * N);
#pragma GCC unroll 8
    for (int i = 0; i < MX; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NVB; ++v) {
        const float* q = pp + i * pstride + v * N;
        acc[i][v] = hn::MulAdd(v < NVB - 1 ? hn::LoadU(d, q) : hn::MaskedLoad(ml, d, q), w[v], acc[i][v]);
      }
  }
  StoreStrip(acc, orow, ostride, xx0, c0, ml);
}

// All channels of the MX columns xx0..: blocks of kVB neighbouring channel vectors (256 contiguous bytes of
// a pixel, see WgradBlock), then the neuron on the stored values (no vector register is live across its
// library calls).
template <int MX, bool CHECK>
HWY_INLINE void GatherStrip(const ActiveTap* taps, int64_t nt, int64_t xx0, int64_t pstride, float* orow,
                            int64_t ostride, int64_t C, const float* bias, const NeuronDescriptor& neuron) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  for (int64_t c0 = 0; c0 < C; c0 += kVB * N) {
    const int64_t nvalid = std::min(kVB * N, C - c0);
    switch ((nvalid + N - 1) / N) {
      case 1: GatherBlock<MX, CHECK, 1>(taps, nt, xx0, pstride, orow, ostride, c0, nvalid, bias); break;
      case 2: GatherBlock<MX, CHECK, Clamp(2, 1, kVB)>(taps, nt, xx0, pstride, orow, ostride, c0, nvalid, bias); break;
      case 3: GatherBlock<MX, CHECK, Clamp(3, 1, kVB)>(taps, nt, xx0, pstride, orow, ostride, c0, nvalid, bias); break;
      default: GatherBlock<MX, CHECK, kVB>(taps, nt, xx0, pstride, orow, ostride, c0, nvalid, bias); break;
    }
  }
  if (neuron.type != NeuronType::none)
    for (int i = 0; i < MX; ++i) ApplyNeuron(orow + (xx0 + i) * ostride, C, neuron);
}

// fwd (walker = dst by stride phase, partner = src) and bwd_data (walker = diff_src, partner = diff_dst);
// the row driver is walk_kernels-inl.h's (one group: every channel is its own, and NHWC keeps them together).
void Gather(const DepthwiseJob& job) {
  const core::Geometry& g = job.g;
  const bool fwd = job.dir == core::Direction::fwd;
  const TapWalk walk = fwd ? walk_dst(g) : walk_src(g);
  const int64_t C = g.c_out;
  const int64_t pstride_w = walk.segs.front().pxs * job.in.sw;
  const float* bias = fwd ? job.bias : nullptr;
  GatherOperands op;
  op.in = job.in;
  op.w = job.wt;
  op.w_tap = C;
  GatherRows(g, fwd, walk, job.threads, op,
                   [&](int64_t n, int64_t Y, const TapSegment& s, const RowTaps& rt, int64_t, const ActiveTap* taps,
                       int64_t nt) __attribute__((always_inline)) {
                     float* orow = job.out.at(n, Y, s.x0);
                     const int64_t ostride = s.xs * job.out.sw;
                     StripColumns<kMX>(rt.lo, rt.hi, s.nx, [&]<int MX, bool CHECK>(int64_t xx) __attribute__((always_inline)) {
                       GatherStrip<MX, CHECK>(taps, nt, xx, pstride_w, orow, ostride, C, bias, job.neuron);
                     });
                   });
}

// Weight gradient of MX src columns xx0.. of one row, channels [c0, c0 + nvalid) (NVB vectors, the last one
// masked): a tile of NTT taps × NVB vectors is summed in registers over the MX pixels (src vectors loaded
// once per pixel for all taps of the tile) and then added to the range's [tap][channel] partial, which
// stays in L1. Covering NVB neighbouring vectors (256 contiguous bytes of a pixel) rather than one per pass
// matters with many channels: one vector of many pixels 1 KiB apart falls into a handful of L1 sets and is
// not what the prefetchers follow. CHECK: per-column bounds on each tap (edge columns, MX = 1).
template <int MX, bool CHECK, int NVB>
HWY_INLINE void WgradBlock(const ActiveTap* taps, const int64_t* tap_id, int64_t nt, int64_t xx0, const float* srow,
                           int64_t sstride, int64_t pstride, float* part, int64_t C, int64_t c0, int64_t nvalid) {
  constexpr int NTT = kWAcc / NVB;
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const auto ml = hn::FirstN(d, static_cast<size_t>(nvalid - (NVB - 1) * N));
  for (int64_t t0 = 0; t0 < nt; t0 += NTT) {
    const int64_t nti = std::min<int64_t>(NTT, nt - t0);
    const ActiveTap* tp = taps + t0;
    V acc[NTT][NVB];
#pragma GCC unroll 24
    for (int i = 0; i < NTT; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NVB; ++v) acc[i][v] = hn::Zero(d);
#pragma GCC unroll 8
    for (int j = 0; j < MX; ++j) {
      const int64_t xx = xx0 + j;
      const float* sp = srow + xx * sstride + c0;
      V xv[NVB];
#pragma GCC unroll 4
      for (int v = 0; v < NVB; ++v) xv[v] = v < NVB - 1 ? hn::LoadU(d, sp + v * N) : hn::MaskedLoad(ml, d, sp + v * N);
#pragma GCC unroll 24
      for (int i = 0; i < NTT; ++i) {
        if (i >= nti) break;
        if (CHECK && (xx < tp[i].lo || xx >= tp[i].hi)) continue;
        const float* pp = tp[i].p + xx * pstride + c0;
#pragma GCC unroll 4
        for (int v = 0; v < NVB; ++v)
          acc[i][v] = hn::MulAdd(xv[v], v < NVB - 1 ? hn::LoadU(d, pp + v * N) : hn::MaskedLoad(ml, d, pp + v * N), acc[i][v]);
      }
    }
#pragma GCC unroll 24
    for (int i = 0; i < NTT; ++i) {
      if (i >= nti) break;
      float* o = part + tap_id[t0 + i] * C + c0;
#pragma GCC unroll 4
      for (int v = 0; v < NVB; ++v) {
        if (v < NVB - 1) hn::StoreU(hn::Add(hn::LoadU(d, o + v * N), acc[i][v]), d, o + v * N);
        else hn::BlendedStore(hn::Add(hn::MaskedLoad(ml, d, o + v * N), acc[i][v]), ml, d, o + v * N);
      }
    }
  }
}

template <int MX, bool CHECK>
HWY_INLINE void WgradStrip(const ActiveTap* taps, const int64_t* tap_id, int64_t nt, int64_t xx0, const float* srow,
                           int64_t sstride, int64_t pstride, float* part, int64_t C, int64_t cb0, int64_t cb1) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(DF()));
  for (int64_t c0 = cb0; c0 < cb1; c0 += kVB * N) {
    const int64_t nvalid = std::min(kVB * N, cb1 - c0);
    switch ((nvalid + N - 1) / N) {
      case 1: WgradBlock<MX, CHECK, 1>(taps, tap_id, nt, xx0, srow, sstride, pstride, part, C, c0, nvalid); break;
      case 2: WgradBlock<MX, CHECK, Clamp(2, 1, kVB)>(taps, tap_id, nt, xx0, srow, sstride, pstride, part, C, c0, nvalid); break;
      case 3: WgradBlock<MX, CHECK, Clamp(3, 1, kVB)>(taps, tap_id, nt, xx0, srow, sstride, pstride, part, C, c0, nvalid); break;
      default: WgradBlock<MX, CHECK, kVB>(taps, tap_id, nt, xx0, srow, sstride, pstride, part, C, c0, nvalid); break;
    }
  }
}

// bwd_weights: walker = src, partner = diff_dst through every tap. An item is (row range, channel block);
// the range's partial [T][C] (+ [C] bias sums) is summed in a fixed order: rows, then strips, then the
// pixels of a strip. Channel blocks only split independent channels among items.
void Wgrad(const DepthwiseJob& job) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const core::Geometry& g = job.g;
  const TapWalk walk = walk_src(g);
  const TapSegment& s = walk.segs.front();
  const int64_t C = g.c_out, T = g.kh * g.kw, pstride = g.stride_w * job.dy.sw, sstride = job.in.sw;
  const std::vector<RowRange> ranges = row_ranges(walk, g.n, job.rows_per_range);
  const int64_t S = static_cast<int64_t>(ranges.size()), stride = depthwise_partial_floats(g);
  const bool bias = job.db != nullptr;
  // The diff_dst row oy of each image belongs to src row clamp(⌊(oy + pad_h) / s_h⌋, 0, h_in − 1) (every
  // diff_dst row has exactly one owner, next to the src rows whose taps read it); first_owned[iy] is the
  // first diff_dst row owned by a src row ≥ iy (first_owned[h_in] = h_out).
  std::vector<int64_t> first_owned(static_cast<size_t>(g.h_in + 1), g.h_out);
  for (int64_t oy = g.h_out - 1; oy >= 0; --oy) {
    const int64_t own = std::clamp<int64_t>(floor_div(oy + g.pad_h, g.stride_h), 0, g.h_in - 1);
    for (int64_t iy = 0; iy <= own; ++iy) first_owned[static_cast<size_t>(iy)] = oy;
  }
  const int threads = std::max(1, job.threads);
  const int64_t nvec = (C + N - 1) / N;
  // Channel blocks (at least 4 vectors) only when there are too few ranges to share among the threads.
  const int64_t nblk = std::clamp<int64_t>((4 * threads + S - 1) / S, 1, std::max<int64_t>(1, nvec / 4));
  const int64_t vpb = (nvec + nblk - 1) / nblk, items = S * nblk;
#pragma omp parallel num_threads(threads)
  {
    std::vector<ActiveTap> taps(static_cast<size_t>(T));
    std::vector<int64_t> tap_id(static_cast<size_t>(T));
    HWY_ALIGN float sb[HWY_LANES(float)];
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const RowRange& rr = ranges[static_cast<size_t>(it / nblk)];
      float* part = job.partial + (it / nblk) * stride;  // [T][C] tap sums, then [C] bias sums
      const int64_t cb0 = std::min(C, (it % nblk) * vpb * N), cb1 = std::min(C, cb0 + vpb * N);
      if (cb0 >= cb1) continue;
      for (int64_t t = 0; t <= T; ++t) std::fill(part + t * C + cb0, part + t * C + cb1, 0.0f);
      for (int64_t r = rr.r0; r < rr.r1; ++r) {
        const int64_t n = r / s.ny, yy = r % s.ny;
        int64_t nt = 0, lo = 0, hi = s.nx;
        for (size_t i = 0; i < s.tap.size(); ++i) {
          const int64_t py = s.partner_row(i, yy);
          if (py < 0 || py >= walk.ph || s.xlo[i] >= s.xhi[i]) continue;
          taps[static_cast<size_t>(nt)] = {job.dy.at(n, py, 0) + s.px[i] * job.dy.sw, nullptr, s.xlo[i], s.xhi[i]};
          tap_id[static_cast<size_t>(nt++)] = s.tap[i];
          lo = std::max(lo, s.xlo[i]);
          hi = std::min(hi, s.xhi[i]);
        }
        if (nt > 0) {
          hi = std::max(hi, lo);
          const float* srow = job.in.at(n, yy, 0);
          const ActiveTap* tp = taps.data();
          const int64_t* id = tap_id.data();
          StripColumns<kMX>(lo, hi, s.nx, [&]<int MX, bool CHECK>(int64_t xx) __attribute__((always_inline)) {
            WgradStrip<MX, CHECK>(tp, id, nt, xx, srow, sstride, pstride, part, C, cb0, cb1);
          });
        }
        if (!bias) continue;
        // Bias sums of the diff_dst rows this src row owns (just read by its taps, so in cache); four
        // interleaved partial sums (fixed order) hide the add latency.
        float* bpart = part + T * C;
        for (int64_t oy = first_owned[static_cast<size_t>(yy)]; oy < first_owned[static_cast<size_t>(yy + 1)]; ++oy) {
          for (int64_t c0 = cb0; c0 < cb1; c0 += N) {
            const int64_t nc = std::min(N, C - c0);
            const auto m = hn::FirstN(d, static_cast<size_t>(nc));
            V b0 = hn::Zero(d), b1 = b0, b2 = b0, b3 = b0;
            if (job.bsrc.data != nullptr) {
              const float* row = job.bsrc.at(n, oy, 0) + c0;
              const int64_t sw = job.bsrc.sw;
              int64_t ox = 0;
              if (nc == N) {
                for (; ox + 4 <= g.w_out; ox += 4) {
                  b0 = hn::Add(b0, hn::LoadU(d, row + ox * sw));
                  b1 = hn::Add(b1, hn::LoadU(d, row + (ox + 1) * sw));
                  b2 = hn::Add(b2, hn::LoadU(d, row + (ox + 2) * sw));
                  b3 = hn::Add(b3, hn::LoadU(d, row + (ox + 3) * sw));
                }
              }
              for (; ox < g.w_out; ++ox) b0 = hn::Add(b0, hn::MaskedLoad(m, d, row + ox * sw));
            } else {  // float16/bfloat16 summands that the precision mode would round: convert one by one
              const core::TensorView& o = job.dy_orig;
              std::fill(sb, sb + N, 0.0f);
              for (int64_t ox = 0; ox < g.w_out; ++ox)
                for (int64_t j = 0; j < nc; ++j)
                  sb[j] += core::load_as_f32(o.data, n * o.sn + oy * o.sh + ox * o.sw + c0 + j, job.act);
              b0 = hn::Load(d, sb);
            }
            const V bsum = hn::Add(hn::Add(b0, b1), hn::Add(b2, b3));
            hn::BlendedStore(hn::Add(hn::MaskedLoad(m, d, bpart + c0), bsum), m, d, bpart + c0);
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
        for (int64_t r = 0; r < S; ++r) acc += job.partial[r * stride + t * C + c];
        out = acc;
      }
    }
  }
}

void Run(const DepthwiseJob& job) {
  if (job.dir == core::Direction::bwd_weights) Wgrad(job);
  else Gather(job);
}

}  // namespace
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
    if (p.dir == core::Direction::bwd_weights) b = static_cast<std::size_t>(depthwise_ranges(g) * depthwise_partial_floats(g) * 4);
    b += input_staging_bytes(p, g.n, g.h_in, g.w_in, g.c_in) + input_staging_bytes(p, g.n, g.h_out, g.w_out, g.c_out);
    return b + output_staging_bytes(p, g.n, std::max(g.h_in, g.h_out), std::max(g.w_in, g.w_out), g.c_in);
  }
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const registry::ExecContext& ctx) const override {
    const core::Geometry& g = p.g;
    const int th = ctx.num_threads;
    const int64_t T = g.kh * g.kw, C = g.c_out;
    WorkspaceCursor ws(workspace);
    DepthwiseJob job;
    job.dir = p.dir;
    job.g = g;
    job.threads = th;
    if (p.dir == core::Direction::bwd_weights) {
      job.rows_per_range = depthwise_rows_per_range(g);
      job.partial = ws.floats(depthwise_ranges(g) * depthwise_partial_floats(g));
      job.in = input_f32(a.src, g.n, g.h_in, g.w_in, C, p, ws, th);
      job.dy = input_f32(a.diff_dst, g.n, g.h_out, g.w_out, C, p, ws, th);
      job.bsrc = bias_summands(p, a.diff_dst, job.dy);
      job.set_wgrad_target(p, a);
      HWY_DYNAMIC_DISPATCH(Run)(job);
      return core::Status::ok_status();
    }
    float* wt = ws.floats(T * C);  // [tap][c]
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) wt[t * C + c] = core::round_input(a.wei[c * T + t], p.precision);
    job.wt = wt;
    const bool fwd = p.dir == core::Direction::fwd;
    const int64_t oh = fwd ? g.h_out : g.h_in, ow = fwd ? g.w_out : g.w_in;
    job.in = fwd ? input_f32(a.src, g.n, g.h_in, g.w_in, C, p, ws, th) : input_f32(a.diff_dst, g.n, g.h_out, g.w_out, C, p, ws, th);
    const StagedOutput out(fwd ? a.dst : a.diff_src, g.n, oh, ow, C, p.act_type, ws);
    job.out = out.view();
    job.bias = fwd && p.with_bias ? a.bias : nullptr;
    job.neuron = p.neuron;
    HWY_DYNAMIC_DISPATCH(Run)(job);
    out.finish(th);
    return core::Status::ok_status();
  }
};

}  // namespace

const registry::Algorithm* depthwise_stream() { return single_instance<DepthwiseStream>(); }

}  // namespace tconv::cpu
#endif
