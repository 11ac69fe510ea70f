// cpu_few_channels_f32: all three directions (+ bias) of layers with at most 4 channels per group on one
// side (min(Ig, Og) ≤ 4): image-to-few-channel layers such as fsrcnn's 56 → 1 or dcgan's 64 → 3, and the
// 1-channel ends of auto-encoders (a plain convolution 1 → 32 runs here as a transposed problem with
// Og = 1, src/core/direction.hpp). Through an indirect GEMM these have K = 1..4 per tap, so building the
// pointer tables costs as much as the multiplies; here the tap pairs come from plain address arithmetic
// along image rows (tap_walk.hpp: bounds checks on edge columns only; for the forward only the taps of each
// stride phase, so nothing multiplies an inserted zero), and the kernels vectorise along the wide channel
// side with register accumulators:
//
//   gather-broadcast (fwd with Ig ≤ 4, bwd_data with Og ≤ 4: the output channels are the wide side)
//       out[pixel][wide] = init + Σ_taps Σ_{k<K} partner[k] (broadcast) · w[tap][k][wide]
//       strips of up to 8 output pixels × up to 4 vectors of output channels in registers; per tap and k
//       the weight vectors are loaded once for the strip.
//   gather-dot (fwd with Og ≤ 4 < Ig, bwd_data with Ig ≤ 4 < Og: the reduction is the wide side)
//       out[pixel][j] = init + Σ_taps Σ_k partner[k] · w[j][tap][k], lanes along k, one horizontal sum per
//       output at the end; strips of pixels × the ≤ 4 outputs in registers.
//   correlate (bwd_weights; the walker is the side with the wide channels: src when Og ≤ 4, dst otherwise)
//       dW[j][tap][wide] += partner[j] (broadcast) · walker[wide]
//       a register tile of taps × narrow channels × wide vectors is summed over a range of walker rows
//       (walker vectors loaded once per pixel for all taps of the tile), then stored into the range's
//       private partial; partials are added in range order.
//   diff_bias: a separate pass over diff_dst in fixed row ranges, vectorised along channels, or along the
//       contiguous row when there are fewer channels than lanes.
//
// Determinism: every output element of fwd/bwd_data is computed by one strip, taps in ascending order.
// The weight-gradient row ranges depend only on the problem, each range's partial is summed in a fixed
// order (rows, then columns) and the partials are added in range order: bit-identical for any number of
// threads. Workspace: packed or rounded weights (≤ the weight tensor), the range partials (capped at the
// largest tensor) and, as everywhere in src/cpu, float32 staging of float16/bfloat16 or rounded operands.
#include <algorithm>
#include <numeric>
#include <vector>

#include "core/dtype.hpp"
#include "core/neuron.hpp"
#include "cpu/cpu_algorithms.hpp"
#include "cpu/cpu_common.hpp"
#include "cpu/tap_walk.hpp"

#ifndef TCONV_CPU_FEW_CHANNELS_JOB
#define TCONV_CPU_FEW_CHANNELS_JOB
namespace tconv::cpu {

constexpr int64_t kFewMax = 4;  // the narrow side's channel count per group must not exceed this

struct FewJob : WgradTarget {  // the WgradTarget fields: bwd_weights only
  core::Direction dir = core::Direction::fwd;
  core::Geometry g;
  int threads = 1;
  // fwd / bwd_data: the walker writes `out` (fwd: dst; bwd_data: diff_src), the partner is `in`.
  F32View in, out;
  bool dot = false;  // gather-dot (narrow outputs) rather than gather-broadcast (wide outputs)
  // Weight element for (group, narrow index a, tap t, wide index e): w[grp·wsg + a·wsa + t·wst + e].
  // Broadcast: a = input channel k, e = output channel. Dot: a = output channel j, e = input channel k.
  const float* w = nullptr;
  int64_t wsg = 0, wsa = 0, wst = 0;
  const float* bias = nullptr;  // fwd only
  NeuronDescriptor neuron{};
  // bwd_weights
  bool walker_src = true;        // walker = src (wide Ig, narrow Og) or dst (wide Og, narrow Ig)
  F32View self, partner;         // walker and partner images, rounded for the multiplies
  int64_t rows_per_range = 1;
  float* partial = nullptr;      // per range: [group][narrow·wide… in diff_wei layout] restricted to its taps
  F32View bsrc;                  // diff_dst as float32 without rounding (data null: convert dy_orig)
  int64_t bias_ranges = 1;       // diff_dst row ranges of the bias pass; 1: written straight into db
  float* bpartial = nullptr;     // bias_ranges × round_up(c_out, 16)
};

// Wide/narrow roles of a data direction: outputs per group (walker side) and inputs per group (partner side).
inline void few_data_sides(const core::Problem& p, int64_t& nout, int64_t& nin) {
  const bool fwd = p.dir == core::Direction::fwd;
  nout = fwd ? p.g.og() : p.g.ig();
  nin = fwd ? p.g.ig() : p.g.og();
}
// Gather-broadcast (lanes along the outputs) when there are at most 4 inputs per group and not fewer outputs
// than inputs; otherwise gather-dot (lanes along the inputs; the outputs are then at most 4).
inline bool few_use_dot(const core::Problem& p) {
  int64_t nout = 0, nin = 0;
  few_data_sides(p, nout, nin);
  return !(nin <= kFewMax && (nout >= nin || nout > kFewMax));
}
// Weight gradient: walker = src when Og is the narrow side.
inline bool few_walker_src(const core::Geometry& g) { return g.og() <= kFewMax && (g.ig() >= g.og() || g.ig() > kFewMax); }

// Weight-gradient row ranges: the walker rows of each segment cut into runs of about 256 KiB of walker
// data (items enough to share among threads, few partials to add), longer when the partials would not fit
// in the largest tensor. Depends on the problem only (never on the thread count).
struct FewWgradPlan {
  int64_t rows_per_range = 1;
  int64_t partial_floats = 0;  // all ranges
  int64_t bias_ranges = 1;
  int64_t bias_floats = 0;     // bias partials (0 when written straight into diff_bias)
};
inline FewWgradPlan few_wgrad_plan(const core::Problem& p) {
  const core::Geometry& g = p.g;
  const bool wsrc = few_walker_src(g);
  const TapWalk walk = wsrc ? walk_src(g) : walk_dst(g);
  const int64_t wide = wsrc ? g.ig() : g.og(), narrow = wsrc ? g.og() : g.ig();
  const int64_t row_w = wsrc ? g.w_in : (g.w_out + g.stride_w - 1) / g.stride_w;
  const int64_t row_bytes = std::max<int64_t>(1, row_w * std::min<int64_t>(wide, 64) * 4);
  const int64_t largest = std::max({core::src_elements(g), core::dst_elements(g), core::wei_elements(g)});
  FewWgradPlan plan;
  const int64_t cpad = round_up(g.c_out, 16), dy_rows = g.n * g.h_out;
  if (p.with_bias) {
    plan.bias_ranges = std::min<int64_t>(64, dy_rows);
    if (plan.bias_ranges * cpad * 2 > largest) plan.bias_ranges = 1;
    plan.bias_floats = plan.bias_ranges > 1 ? plan.bias_ranges * cpad : 0;
  }
  int64_t max_rows = 1;
  for (const TapSegment& s : walk.segs) max_rows = std::max(max_rows, g.n * s.ny);
  auto floats = [&](int64_t rpr) {
    int64_t f = 0;
    for (const TapSegment& s : walk.segs)
      f += (g.n * s.ny + rpr - 1) / rpr * g.groups * narrow * wide * static_cast<int64_t>(s.tap.size());
    return f;
  };
  int64_t rpr = std::clamp<int64_t>((int64_t{256} << 10) / row_bytes, 1, max_rows);
  while (rpr < max_rows && floats(rpr) + plan.bias_floats > largest) rpr = std::min(max_rows, rpr * 2);
  if (floats(rpr) + plan.bias_floats > largest) {  // only when the weights are the largest tensor
    plan.bias_ranges = 1;
    plan.bias_floats = 0;
  }
  plan.rows_per_range = rpr;
  plan.partial_floats = floats(rpr);
  return plan;
}

}  // namespace tconv::cpu
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/few_channels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "cpu/walk_kernels-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tconv::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
namespace {  // file-local: other kernel files define helpers of the same names in these namespaces

// Register budget: 32 vector registers with AVX-512, 16 otherwise; accumulators take up to kAcc of them.
constexpr int kAcc = HWY_LANES(float) >= 16 ? 24 : 12;
constexpr int kMaxNV = HWY_LANES(float) >= 16 ? 4 : 2;  // wide-side vectors per register tile

// ---------------------------------------------------------------------------------------------------------
// Gather-broadcast: MX pixels × NV vectors of output channels [e0, e0 + nvalid), K inputs per tap.
template <int K, int NV, int MX, bool CHECK>
HWY_INLINE void BcastStrip(const ActiveTap* taps, int64_t nt, int64_t xx0, int64_t pstride, int64_t wsa, float* orow,
                           int64_t ostride, int64_t e0, int64_t nvalid, const float* bias, const NeuronDescriptor& neuron) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const auto ml = hn::FirstN(d, static_cast<size_t>(nvalid - (NV - 1) * N));  // the last vector's lanes
  V acc[MX][NV];
  InitStrip(acc, bias, e0, ml);
  for (int64_t t = 0; t < nt; ++t) {
    const ActiveTap& a = taps[t];
    if (CHECK && (xx0 < a.lo || xx0 >= a.hi)) continue;  // MX = 1 when checking
    const float* pp = a.p + xx0 * pstride;
#pragma GCC unroll 4
    for (int k = 0; k < K; ++k) {
      V w[NV];
      const float* wk = a.w + k * wsa + e0;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) w[v] = v < NV - 1 ? hn::LoadU(d, wk + v * N) : hn::MaskedLoad(ml, d, wk + v * N);
#pragma GCC unroll 8
      for (int m = 0; m < MX; ++m) {
        const V b = hn::Set(d, pp[m * pstride + k]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[m][v] = hn::MulAdd(b, w[v], acc[m][v]);
      }
    }
  }
  StoreStrip(acc, orow, ostride, xx0, e0, ml);
  // The neuron runs on the stored values (no vector register is live across its library calls).
  if (neuron.type != NeuronType::none)
    for (int m = 0; m < MX; ++m) ApplyNeuron(orow + (xx0 + m) * ostride + e0, nvalid, neuron);
}

struct RowArgs {
  const ActiveTap* taps;
  int64_t nt, lo, hi, nx, pstride, wsa;
  float* orow;
  int64_t ostride;
  const float* bias;
  const NeuronDescriptor* neuron;
};

template <int K, int NV>
void BcastRow(const RowArgs& r, int64_t e0, int64_t nvalid) {
  StripColumns<Clamp(kAcc / NV, 1, 8)>(r.lo, r.hi, r.nx, [&]<int MX, bool CHECK>(int64_t xx) __attribute__((always_inline)) {
    BcastStrip<K, NV, MX, CHECK>(r.taps, r.nt, xx, r.pstride, r.wsa, r.orow, r.ostride, e0, nvalid, r.bias, *r.neuron);
  });
}

using BcastRowFn = void (*)(const RowArgs&, int64_t, int64_t);
template <int K>
BcastRowFn BcastRowFor(int64_t nv) {
  switch (nv) {
    case 1: return &BcastRow<K, 1>;
    case 2: return &BcastRow<K, 2>;
    case 3: return &BcastRow<K, Clamp(3, 1, kMaxNV)>;
    default: return &BcastRow<K, kMaxNV>;
  }
}
BcastRowFn BcastRowFor(int64_t k, int64_t nv) {
  switch (k) {
    case 1: return BcastRowFor<1>(nv);
    case 2: return BcastRowFor<2>(nv);
    case 3: return BcastRowFor<3>(nv);
    default: return BcastRowFor<4>(nv);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Gather-dot: MX pixels × NO outputs, lanes along the K inputs (the last vector masked).
template <int NO, int MX, bool CHECK>
HWY_INLINE void DotStrip(const ActiveTap* taps, int64_t nt, int64_t xx0, int64_t pstride, int64_t wsa, int64_t K,
                         float* orow, int64_t ostride, const float* bias, const NeuronDescriptor& neuron) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const int64_t kfull = K / N * N;
  const auto ml = hn::FirstN(d, static_cast<size_t>(K - kfull));
  V acc[MX][NO];
#pragma GCC unroll 8
  for (int m = 0; m < MX; ++m)
#pragma GCC unroll 4
    for (int j = 0; j < NO; ++j) acc[m][j] = hn::Zero(d);
  for (int64_t t = 0; t < nt; ++t) {
    const ActiveTap& a = taps[t];
    if (CHECK && (xx0 < a.lo || xx0 >= a.hi)) continue;
    const float* pp = a.p + xx0 * pstride;
    for (int64_t k0 = 0; k0 < kfull; k0 += N) {
      V w[NO];
#pragma GCC unroll 4
      for (int j = 0; j < NO; ++j) w[j] = hn::LoadU(d, a.w + j * wsa + k0);
#pragma GCC unroll 8
      for (int m = 0; m < MX; ++m) {
        const V x = hn::LoadU(d, pp + m * pstride + k0);
#pragma GCC unroll 4
        for (int j = 0; j < NO; ++j) acc[m][j] = hn::MulAdd(x, w[j], acc[m][j]);
      }
    }
    if (kfull < K) {
      V w[NO];
#pragma GCC unroll 4
      for (int j = 0; j < NO; ++j) w[j] = hn::MaskedLoad(ml, d, a.w + j * wsa + kfull);
#pragma GCC unroll 8
      for (int m = 0; m < MX; ++m) {
        const V x = hn::MaskedLoad(ml, d, pp + m * pstride + kfull);
#pragma GCC unroll 4
        for (int j = 0; j < NO; ++j) acc[m][j] = hn::MulAdd(x, w[j], acc[m][j]);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MX; ++m) {
    float* o = orow + (xx0 + m) * ostride;
#pragma GCC unroll 4
    for (int j = 0; j < NO; ++j) {
      const float s = hn::GetLane(hn::SumOfLanes(d, acc[m][j]));
      o[j] = bias != nullptr ? bias[j] + s : s;
    }
  }
  if (neuron.type != NeuronType::none)
    for (int m = 0; m < MX; ++m) ApplyNeuron(orow + (xx0 + m) * ostride, NO, neuron);
}

template <int NO>
void DotRow(const RowArgs& r, int64_t K) {
  StripColumns<Clamp((kAcc - NO) / NO, 1, 8)>(r.lo, r.hi, r.nx, [&]<int MX, bool CHECK>(int64_t xx) __attribute__((always_inline)) {
    DotStrip<NO, MX, CHECK>(r.taps, r.nt, xx, r.pstride, r.wsa, K, r.orow, r.ostride, r.bias, *r.neuron);
  });
}

// fwd and bwd_data, with walk_kernels-inl.h's row driver (per walker row and group).
void Gather(const FewJob& job) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const core::Geometry& g = job.g;
  const bool fwd = job.dir == core::Direction::fwd;
  const TapWalk walk = fwd ? walk_dst(g) : walk_src(g);
  const int64_t nout = fwd ? g.og() : g.ig(), nin = fwd ? g.ig() : g.og();
  const int64_t pstride = walk.segs.front().pxs * job.in.sw;
  const int64_t nvec = (nout + N - 1) / N;
  GatherOperands op;
  op.in = job.in;
  op.in_group = nin;
  op.w = job.w;
  op.w_group = job.wsg;
  op.w_tap = job.wst;
  op.groups = g.groups;
  GatherRows(g, fwd, walk, job.threads, op,
                   [&](int64_t n, int64_t Y, const TapSegment& s, const RowTaps& rt, int64_t grp, const ActiveTap* taps,
                       int64_t nt) {
                     RowArgs ra{taps, nt, rt.lo, rt.hi, s.nx, pstride, job.wsa, job.out.at(n, Y, s.x0) + grp * nout,
                                s.xs * job.out.sw, fwd && job.bias != nullptr ? job.bias + grp * nout : nullptr,
                                &job.neuron};
                     if (job.dot) {
                       switch (nout) {
                         case 1: DotRow<1>(ra, nin); break;
                         case 2: DotRow<2>(ra, nin); break;
                         case 3: DotRow<3>(ra, nin); break;
                         default: DotRow<4>(ra, nin); break;
                       }
                     } else {
                       for (int64_t v0 = 0; v0 < nvec; v0 += kMaxNV) {
                         const int64_t nv = std::min<int64_t>(kMaxNV, nvec - v0);
                         const BcastRowFn fn = BcastRowFor(nin, nv);
                         fn(ra, v0 * N, std::min(nout - v0 * N, nv * N));
                       }
                     }
                   });
}

// ---------------------------------------------------------------------------------------------------------
// Correlate (weight gradient): acc[i][j][v] += partner_i[j] · walker[e0 + v·N ..] over walker columns
// [x0, x1) of one row, for the tile's taps (on[i]; CHECK: per-column bounds).
template <int NO, int NV, int NT, bool CHECK, class V, class M>
HWY_INLINE void CorrCols(V (*acc)[NO][NV], const ActiveTap* taps, const bool* on, const float* srow,
                         int64_t sstride, int64_t pstride, int64_t x0, int64_t x1, M ml) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t xx = x0; xx < x1; ++xx) {
    V sv[NV];
    const float* sp = srow + xx * sstride;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) sv[v] = v < NV - 1 ? hn::LoadU(d, sp + v * N) : hn::MaskedLoad(ml, d, sp + v * N);
#pragma GCC unroll 24
    for (int i = 0; i < NT; ++i) {
      if (!on[i]) continue;
      if (CHECK && (xx < taps[i].lo || xx >= taps[i].hi)) continue;
      const float* pp = taps[i].p + xx * pstride;
#pragma GCC unroll 4
      for (int j = 0; j < NO; ++j) {
        const V b = hn::Set(d, pp[j]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][j][v] = hn::MulAdd(b, sv[v], acc[i][j][v]);
      }
    }
  }
}

// Partial layout of one range of segment s: [group][narrow j][segment tap ti][wide e] when the walker is
// src (diff_wei's own [o][t][c] order restricted to the segment's taps), [group][wide e][ti][narrow j] when
// the walker is dst (again diff_wei's order, with o wide and c narrow).
template <int NO, int NV>
void CorrItem(const FewJob& job, const TapWalk& walk, const TapSegment& s, const RowRange& rr, int64_t grp,
              int64_t e0, int64_t nvalid, float* part) {
  constexpr int NT = Clamp(kAcc / (NO * NV), 1, 24);
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const core::Geometry& g = job.g;
  const int64_t wide = job.walker_src ? g.ig() : g.og();
  const int64_t nts = static_cast<int64_t>(s.tap.size());
  const auto ml = hn::FirstN(d, static_cast<size_t>(nvalid - (NV - 1) * N));
  const int64_t pstride = s.pxs * job.partner.sw, sstride = s.xs * job.self.sw;
  ActiveTap taps[NT] = {};
  bool on[NT] = {};
  // The range is walked in blocks of rows holding about 32 KiB of walker data, and every tap tile runs over
  // a block while it is in L1/L2; a tile's sums wait in `saved` between blocks (stored and reloaded exactly,
  // so the additions are those of one pass over the range). The first tile no longer streams the range
  // from memory alone: the hardware prefetchers fetch the next block while all tiles compute on this one.
  const int64_t ntiles = (nts + NT - 1) / NT, tile_floats = NT * NO * NV * N;
  const int64_t rb = std::max<int64_t>(1, (int64_t{32} << 10) / std::max<int64_t>(1, s.nx * nvalid * 4));
  std::vector<float> saved(static_cast<size_t>(ntiles * tile_floats), 0.0f);
  for (int64_t b0 = rr.r0; b0 < rr.r1; b0 += rb) {
    const int64_t b1 = std::min(rr.r1, b0 + rb);
    for (int64_t tile = 0; tile < ntiles; ++tile) {
      const int64_t t0 = tile * NT;
      float* sv = saved.data() + tile * tile_floats;
      V acc[NT][NO][NV];
#pragma GCC unroll 24
      for (int i = 0; i < NT; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NO; ++j)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[i][j][v] = hn::LoadU(d, sv + ((i * NO + j) * NV + v) * N);
      for (int64_t r = b0; r < b1; ++r) {
        const int64_t n = r / s.ny, yy = r % s.ny;
        int64_t lo = 0, hi = s.nx;
        bool any = false;
        for (int i = 0; i < NT; ++i) {
          const size_t ti = static_cast<size_t>(t0 + i);
          on[i] = false;
          if (t0 + i >= nts) continue;
          const int64_t py = s.partner_row(ti, yy);
          if (py < 0 || py >= walk.ph || s.xlo[ti] >= s.xhi[ti]) continue;
          on[i] = any = true;
          taps[i] = {job.partner.at(n, py, 0) + s.px[ti] * job.partner.sw + grp * NO, nullptr, s.xlo[ti], s.xhi[ti]};
          lo = std::max(lo, s.xlo[ti]);
          hi = std::min(hi, s.xhi[ti]);
        }
        if (!any) continue;
        hi = std::max(hi, lo);
        const float* srow = job.self.at(n, s.y0 + yy * s.ys, s.x0) + grp * wide + e0;
        CorrCols<NO, NV, NT, true>(acc, taps, on, srow, sstride, pstride, 0, lo, ml);
        CorrCols<NO, NV, NT, false>(acc, taps, on, srow, sstride, pstride, lo, hi, ml);
        CorrCols<NO, NV, NT, true>(acc, taps, on, srow, sstride, pstride, hi, s.nx, ml);
      }
#pragma GCC unroll 24
      for (int i = 0; i < NT; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NO; ++j)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) hn::StoreU(acc[i][j][v], d, sv + ((i * NO + j) * NV + v) * N);
    }
  }
  // Store the range's sums into its partial, in diff_wei's layout.
  for (int64_t ti = 0; ti < nts; ++ti) {
    const float* sv = saved.data() + (ti / NT) * tile_floats + (ti % NT) * NO * NV * N;
    for (int j = 0; j < NO; ++j)
      for (int v = 0; v < NV; ++v) {
        const int64_t e = e0 + v * N;
        const float* a = sv + (j * NV + v) * N;
        if (job.walker_src) {
          float* o = part + ((grp * NO + j) * nts + ti) * wide + e;
          if (v < NV - 1) hn::StoreU(hn::LoadU(d, a), d, o);
          else hn::BlendedStore(hn::LoadU(d, a), ml, d, o);
        } else {
          const int64_t nl = std::min(N, e0 + nvalid - e);
          for (int64_t l = 0; l < nl; ++l) part[((grp * wide + e + l) * nts + ti) * NO + j] = a[l];
        }
      }
  }
}

using CorrFn = void (*)(const FewJob&, const TapWalk&, const TapSegment&, const RowRange&, int64_t, int64_t, int64_t, float*);
template <int NO>
CorrFn CorrFor(int64_t nv) {
  constexpr int cap = Clamp(kAcc / NO, 1, kMaxNV);  // NO·NV accumulators must fit
  switch (std::min<int64_t>(nv, cap)) {
    case 1: return &CorrItem<NO, 1>;
    case 2: return &CorrItem<NO, Clamp(2, 1, cap)>;
    case 3: return &CorrItem<NO, Clamp(3, 1, cap)>;
    default: return &CorrItem<NO, cap>;
  }
}
int64_t CorrMaxNV(int64_t no) { return std::clamp<int64_t>(kAcc / no, 1, kMaxNV); }
CorrFn CorrFor(int64_t no, int64_t nv) {
  switch (no) {
    case 1: return CorrFor<1>(nv);
    case 2: return CorrFor<2>(nv);
    case 3: return CorrFor<3>(nv);
    default: return CorrFor<4>(nv);
  }
}

// diff_bias over diff_dst rows [r0, r1) (r = n·h_out + oy) into out[c_out] (out = previous + sums when add).
void BiasRows(const FewJob& job, int64_t r0, int64_t r1, float* out, bool add) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = decltype(hn::Zero(d));
  const core::Geometry& g = job.g;
  const int64_t C = g.c_out;
  std::vector<float> sum(static_cast<size_t>(C), 0.0f);
  if (job.bsrc.data == nullptr) {  // float16/bfloat16 summands that the precision mode would round
    const core::TensorView& o = job.dy_orig;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / g.h_out, oy = r % g.h_out;
      for (int64_t ox = 0; ox < g.w_out; ++ox)
        for (int64_t c = 0; c < C; ++c) sum[static_cast<size_t>(c)] += core::load_as_f32(o.data, n * o.sn + oy * o.sh + ox * o.sw + c, job.act);
    }
  } else if (job.bsrc.sw == C && C < N) {
    // Contiguous rows with fewer channels than lanes: sum the row as a flat array in blocks of P =
    // lcm(C, N) floats (P/N ≤ C vectors), where float i of a block belongs to channel i mod C.
    const int64_t P = std::lcm(C, N), nv = P / N, L = g.w_out * C;
    V acc[16];
    for (int64_t v = 0; v < nv; ++v) acc[v] = hn::Zero(d);
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = job.bsrc.at(r / g.h_out, r % g.h_out, 0);
      int64_t i = 0;
      for (; i + P <= L; i += P)
        for (int64_t v = 0; v < nv; ++v) acc[v] = hn::Add(acc[v], hn::LoadU(d, row + i + v * N));
      for (; i < L; ++i) sum[static_cast<size_t>(i % C)] += row[i];
    }
    HWY_ALIGN float tmp[HWY_LANES(float)];
    for (int64_t v = 0; v < nv; ++v) {
      hn::Store(acc[v], d, tmp);
      for (int64_t l = 0; l < N; ++l) sum[static_cast<size_t>((v * N + l) % C)] += tmp[l];
    }
  } else {
    for (int64_t c0 = 0; c0 < C; c0 += N) {
      const auto m = hn::FirstN(d, static_cast<size_t>(std::min(N, C - c0)));
      V a0 = hn::Zero(d), a1 = a0;
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = job.bsrc.at(r / g.h_out, r % g.h_out, 0) + c0;
        int64_t ox = 0;
        for (; ox + 2 <= g.w_out; ox += 2) {
          a0 = hn::Add(a0, hn::MaskedLoad(m, d, row + ox * job.bsrc.sw));
          a1 = hn::Add(a1, hn::MaskedLoad(m, d, row + (ox + 1) * job.bsrc.sw));
        }
        if (ox < g.w_out) a0 = hn::Add(a0, hn::MaskedLoad(m, d, row + ox * job.bsrc.sw));
      }
      HWY_ALIGN float tmp[HWY_LANES(float)];
      hn::Store(hn::Add(a0, a1), d, tmp);
      for (int64_t l = 0; l < std::min(N, C - c0); ++l) sum[static_cast<size_t>(c0 + l)] = tmp[l];
    }
  }
  for (int64_t c = 0; c < C; ++c) out[c] = add ? out[c] + sum[static_cast<size_t>(c)] : sum[static_cast<size_t>(c)];
}

void Wgrad(const FewJob& job) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const core::Geometry& g = job.g;
  const TapWalk walk = job.walker_src ? walk_src(g) : walk_dst(g);
  const int64_t wide = job.walker_src ? g.ig() : g.og(), narrow = job.walker_src ? g.og() : g.ig();
  const int64_t T = g.kh * g.kw, G = g.groups;
  const std::vector<RowRange> ranges = row_ranges(walk, g.n, job.rows_per_range);
  const int64_t S = static_cast<int64_t>(ranges.size());
  // Partial offsets: a range holds G·narrow·wide·(its segment's taps) floats.
  std::vector<int64_t> off(static_cast<size_t>(S + 1), 0);
  for (int64_t r = 0; r < S; ++r)
    off[static_cast<size_t>(r + 1)] = off[static_cast<size_t>(r)] +
        G * narrow * wide * static_cast<int64_t>(walk.segs[static_cast<size_t>(ranges[static_cast<size_t>(r)].seg)].tap.size());
  const int64_t nvec = (wide + N - 1) / N, vmax = CorrMaxNV(narrow);
  const int64_t nblk = (nvec + vmax - 1) / vmax;
  const int64_t items = S * G * nblk;
  const bool bias = job.db != nullptr;
  const int64_t B = bias ? job.bias_ranges : 0, dy_rows = g.n * g.h_out, cpad = round_up(g.c_out, 16);
  // Where each tap lives: its segment and its index there (−1: the tap hits no walker pixel).
  std::vector<int64_t> seg_of(static_cast<size_t>(T), -1), idx_of(static_cast<size_t>(T), -1);
  for (size_t si = 0; si < walk.segs.size(); ++si)
    for (size_t i = 0; i < walk.segs[si].tap.size(); ++i) {
      seg_of[static_cast<size_t>(walk.segs[si].tap[i])] = static_cast<int64_t>(si);
      idx_of[static_cast<size_t>(walk.segs[si].tap[i])] = static_cast<int64_t>(i);
    }
  const int threads = std::max(1, job.threads);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t it = 0; it < items + B; ++it) {
      if (it >= items) {  // a diff_bias row range
        const int64_t b = it - items, r0 = b * dy_rows / B, r1 = (b + 1) * dy_rows / B;
        if (B == 1) BiasRows(job, 0, dy_rows, job.db, job.accumulate);
        else BiasRows(job, r0, r1, job.bpartial + b * cpad, false);
        continue;
      }
      const int64_t r = it / (G * nblk), grp = (it / nblk) % G, blk = it % nblk;
      const RowRange& rr = ranges[static_cast<size_t>(r)];
      const int64_t v0 = blk * vmax, nv = std::min(vmax, nvec - v0);
      const CorrFn fn = CorrFor(narrow, nv);
      fn(job, walk, walk.segs[static_cast<size_t>(rr.seg)], rr, grp, v0 * N, std::min(wide - v0 * N, nv * N),
         job.partial + off[static_cast<size_t>(r)]);
    }
#pragma omp barrier
    // diff_wei[o][t][c] = (previous if accumulating) + Σ over the ranges of t's segment, in range order.
#pragma omp for schedule(static)
    for (int64_t e = 0; e < core::wei_elements(g); ++e) {
      const int64_t c = e % g.ig(), t = (e / g.ig()) % T, o = e / (g.ig() * T);
      const int64_t grp = o / g.og(), ol = o % g.og();
      float acc = job.accumulate ? job.dw[e] : 0.0f;
      const int64_t si = seg_of[static_cast<size_t>(t)];
      if (si >= 0) {
        const int64_t ti = idx_of[static_cast<size_t>(t)];
        const int64_t nts = static_cast<int64_t>(walk.segs[static_cast<size_t>(si)].tap.size());
        const int64_t j = job.walker_src ? ol : c, we = job.walker_src ? c : ol;
        const int64_t in_range = job.walker_src ? ((grp * narrow + j) * nts + ti) * wide + we
                                                : ((grp * wide + we) * nts + ti) * narrow + j;
        for (int64_t r = 0; r < S; ++r)
          if (ranges[static_cast<size_t>(r)].seg == si) acc += job.partial[off[static_cast<size_t>(r)] + in_range];
      }
      job.dw[e] = acc;
    }
    if (bias && B > 1) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < g.c_out; ++c) {
        float acc = job.accumulate ? job.db[c] : 0.0f;
        for (int64_t b = 0; b < B; ++b) acc += job.bpartial[b * cpad + c];
        job.db[c] = acc;
      }
    }
  }
}

void Run(const FewJob& job) {
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

// Weights: the kernels read w[grp·wsg + a·wsa + t·wst + e] (see FewJob). Returns the floats of workspace
// a repacked or rounded copy needs (0 when the kernels read diff_wei's own layout).
int64_t few_weight_floats(const core::Problem& p) {
  if (p.dir == core::Direction::bwd_weights) return 0;
  const bool fwd = p.dir == core::Direction::fwd, dot = few_use_dot(p);
  const bool natural = fwd == dot;  // fwd+dot reads [o][t][c]; bwd_data+broadcast reads [o][t][c] too
  return natural && p.precision == Precision::fp32 ? 0 : core::wei_elements(p.g);
}

class FewChannels final : public registry::Algorithm {
 public:
  std::string_view name() const noexcept override { return "cpu_few_channels_f32"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    if (std::min(g.ig(), g.og()) > kFewMax)
      return "only layers with at most " + std::to_string(kFewMax) + " channels per group on one side; got " +
             std::to_string(g.ig()) + " input and " + std::to_string(g.og()) + " output channels per group";
    return std::nullopt;
  }
  std::size_t workspace_bytes(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    std::size_t b = static_cast<std::size_t>(round_up(few_weight_floats(p) * 4, 64));
    if (p.dir == core::Direction::bwd_weights) {
      const FewWgradPlan plan = few_wgrad_plan(p);
      b += static_cast<std::size_t>(round_up(plan.partial_floats * 4, 64) + round_up(plan.bias_floats * 4, 64));
    }
    if (p.dir != core::Direction::bwd_data) b += input_staging_bytes(p, g.n, g.h_in, g.w_in, g.c_in);
    if (p.dir != core::Direction::fwd) b += input_staging_bytes(p, g.n, g.h_out, g.w_out, g.c_out);
    if (p.dir == core::Direction::fwd) b += output_staging_bytes(p, g.n, g.h_out, g.w_out, g.c_out);
    if (p.dir == core::Direction::bwd_data) b += output_staging_bytes(p, g.n, g.h_in, g.w_in, g.c_in);
    return b;
  }
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const registry::ExecContext& ctx) const override {
    const core::Geometry& g = p.g;
    const int th = ctx.num_threads;
    const int64_t T = g.kh * g.kw, Ig = g.ig(), Og = g.og();
    WorkspaceCursor ws(workspace);
    FewJob job;
    job.dir = p.dir;
    job.g = g;
    job.threads = th;
    if (p.dir == core::Direction::bwd_weights) {
      const FewWgradPlan plan = few_wgrad_plan(p);
      job.walker_src = few_walker_src(g);
      job.rows_per_range = plan.rows_per_range;
      job.partial = ws.floats(plan.partial_floats);
      job.bias_ranges = plan.bias_ranges;
      job.bpartial = ws.floats(plan.bias_floats);
      const F32View x = input_f32(a.src, g.n, g.h_in, g.w_in, g.c_in, p, ws, th);
      const F32View dy = input_f32(a.diff_dst, g.n, g.h_out, g.w_out, g.c_out, p, ws, th);
      job.self = job.walker_src ? x : dy;
      job.partner = job.walker_src ? dy : x;
      job.bsrc = bias_summands(p, a.diff_dst, dy);
      job.set_wgrad_target(p, a);
      HWY_DYNAMIC_DISPATCH(Run)(job);
      return core::Status::ok_status();
    }
    const bool fwd = p.dir == core::Direction::fwd;
    job.dot = few_use_dot(p);
    // Weight layouts (see FewJob): natural diff_wei order [grp·Og + o][t][c] when the wide index is c.
    const int64_t wf = few_weight_floats(p);
    float* packed = wf > 0 ? ws.floats(wf) : nullptr;
    const Precision prec = p.precision;
    if (fwd == job.dot) {  // wide index c (contiguous): a = o
      job.wsg = Og * T * Ig;
      job.wsa = T * Ig;
      job.wst = Ig;
      if (packed != nullptr)
        for (int64_t i = 0; i < core::wei_elements(g); ++i) packed[i] = core::round_input(a.wei[i], prec);
      job.w = packed != nullptr ? packed : a.wei;
    } else {  // wide index o: packed [grp][t][c][o] (broadcast, fwd) or [grp][c][t][o] (dot, bwd_data)
      job.wsg = Ig * T * Og;
      job.wsa = fwd ? Og : T * Og;
      job.wst = fwd ? Ig * Og : Og;
      for (int64_t grp = 0; grp < g.groups; ++grp)
        for (int64_t o = 0; o < Og; ++o)
          for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < Ig; ++c)
              packed[grp * job.wsg + c * job.wsa + t * job.wst + o] =
                  core::round_input(a.wei[((grp * Og + o) * T + t) * Ig + c], prec);
      job.w = packed;
    }
    const int64_t oh = fwd ? g.h_out : g.h_in, ow = fwd ? g.w_out : g.w_in, oc = fwd ? g.c_out : g.c_in;
    job.in = fwd ? input_f32(a.src, g.n, g.h_in, g.w_in, g.c_in, p, ws, th)
                 : input_f32(a.diff_dst, g.n, g.h_out, g.w_out, g.c_out, p, ws, th);
    const StagedOutput out(fwd ? a.dst : a.diff_src, g.n, oh, ow, oc, p.act_type, ws);
    job.out = out.view();
    job.bias = fwd && p.with_bias ? a.bias : nullptr;
    job.neuron = fwd ? p.neuron : NeuronDescriptor{};
    HWY_DYNAMIC_DISPATCH(Run)(job);
    out.finish(th);
    return core::Status::ok_status();
  }
};

}  // namespace

const registry::Algorithm* few_channels() { return single_instance<FewChannels>(); }

}  // namespace tconv::cpu
#endif
