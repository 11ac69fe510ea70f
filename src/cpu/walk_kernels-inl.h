// Per-target pieces shared by the streaming CPU kernels that walk tap pairs with tap_walk.hpp
// (depthwise_stream.cpp, few_channels.cpp): the edge/inner column split of a walker row, the gather
// kernels' row driver, a strip's accumulator set-up and store, and the fused neuron on stored outputs.
//
// Why a per-target header (Highway's -inl.h convention, re-included once per SIMD target through the
// toggle guard below) rather than plain functions: the column split and the row driver call the kernels'
// strips, which are compiled for each target; GCC inlines a strip only into code of the same target, so
// the drivers must be compiled per target too, or every strip would become an out-of-line call. The neuron
// is per target because its double arithmetic may contract into fused multiply-adds where the target has
// them: compiled once for the baseline it would round differently from the kernels it used to be part of.
#if defined(TCONV_CPU_WALK_KERNELS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TCONV_CPU_WALK_KERNELS_INL_H_
#undef TCONV_CPU_WALK_KERNELS_INL_H_
#else
#define TCONV_CPU_WALK_KERNELS_INL_H_
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/neuron.hpp"
#include "cpu/cpu_common.hpp"
#include "cpu/tap_walk.hpp"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tconv::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int Clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// The fused neuron on n stored outputs, evaluated in double as the reference does. Kept out of line so the
// strips' accumulators are never live across its library calls (which would make the compiler spill them).
inline HWY_NOINLINE void ApplyNeuron(float* o, int64_t n, const NeuronDescriptor& neuron) {
  for (int64_t j = 0; j < n; ++j) o[j] = static_cast<float>(core::neuron_apply<double>(neuron, static_cast<double>(o[j])));
}

// The accumulators of a strip of MX output pixels × NV vectors of output channels [e0, e0 + nvalid) (the
// last vector masked by ml): every pixel starts from bias[e0 ..], or from 0 when bias is null.
template <int MX, int NV, class V, class M>
HWY_INLINE void InitStrip(V (&acc)[MX][NV], const float* bias, int64_t e0, M ml) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const V init = bias == nullptr ? hn::Zero(d)
                   : v < NV - 1    ? hn::LoadU(d, bias + e0 + v * N)
                                   : hn::MaskedLoad(ml, d, bias + e0 + v * N);
#pragma GCC unroll 8
    for (int m = 0; m < MX; ++m) acc[m][v] = init;
  }
}
// Stores a strip's accumulators to its MX pixels orow + (xx0 + m)·ostride, channels [e0, e0 + nvalid).
template <int MX, int NV, class V, class M>
HWY_INLINE void StoreStrip(const V (&acc)[MX][NV], float* orow, int64_t ostride, int64_t xx0, int64_t e0, M ml) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
#pragma GCC unroll 8
  for (int m = 0; m < MX; ++m) {
    float* o = orow + (xx0 + m) * ostride + e0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      if (v < NV - 1) hn::StoreU(acc[m][v], d, o + v * N);
      else hn::BlendedStore(acc[m][v], ml, d, o + v * N);
    }
  }
}

// The grid columns [0, nx) of one walker row, given the columns [lo, hi) where every active tap's partner
// column is inside the partner image (lo ≤ hi, RowTaps): the edge columns one at a time with per-tap bounds
// checks, the inner ones in strips of MX without, the inner tail one at a time without. `strip` is a
// lambda template called as strip.template operator()<M, CHECK>(xx) for the M columns xx, xx + 1, ...
// (mark it always_inline: the strips are the kernels' hot loops).
template <int MX, class Strip>
HWY_INLINE void StripColumns(int64_t lo, int64_t hi, int64_t nx, const Strip& strip) {
  int64_t xx = 0;
  for (; xx < lo; ++xx) strip.template operator()<1, true>(xx);
  for (; xx + MX <= hi; xx += MX) strip.template operator()<MX, false>(xx);
  for (; xx < hi; ++xx) strip.template operator()<1, false>(xx);
  for (; xx < nx; ++xx) strip.template operator()<1, true>(xx);
}

// The operands of a gather pass (fwd: walker = dst by stride phase, partner = src; bwd_data: walker =
// diff_src, partner = diff_dst): the partner image and the weights of (group, tap) at
// w + group·w_group + tap·w_tap.
struct GatherOperands {
  F32View in;
  int64_t in_group = 0;  // channel offset of one group in `in`
  const float* w = nullptr;
  int64_t w_group = 0, w_tap = 0;
  int64_t groups = 1;
};

// Drives a gather pass over every walker row: items are blocks of consecutive walker image rows (all stride
// phases of a row together, so the partner rows they share stay in cache), shared among the threads; for
// each row of each segment and each group the active taps are listed in ascending order and
// row(n, Y, s, rt, grp, taps, nt) computes that row. The blocking does not change any result: every output
// element is computed by one strip of one row.
template <class RowFn>
HWY_INLINE void GatherRows(const core::Geometry& g, bool fwd, const TapWalk& walk, int nthreads,
                           const GatherOperands& op, const RowFn& row) {
  const int64_t H = fwd ? g.h_out : g.h_in, ys = walk.segs.front().ys;  // walker image rows
  const int threads = std::max(1, nthreads);
  const int64_t rows = g.n * H, rpi = std::clamp<int64_t>(rows / (8 * threads), 1, 16);
  const int64_t items = (rows + rpi - 1) / rpi;
#pragma omp parallel num_threads(threads)
  {
    RowTaps rt;
    std::vector<ActiveTap> taps;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      for (int64_t r = it * rpi; r < std::min(rows, (it + 1) * rpi); ++r) {
        const int64_t n = r / H, Y = r % H;
        for (const TapSegment& s : walk.segs) {
          if ((Y - s.y0) % ys != 0) continue;
          const int64_t yy = (Y - s.y0) / ys;
          if (yy < 0 || yy >= s.ny) continue;
          row_taps(s, yy, walk.ph, rt);
          for (int64_t grp = 0; grp < op.groups; ++grp) {
            taps.clear();
            for (const int32_t i : rt.idx) {
              const size_t ti = static_cast<size_t>(i);
              taps.push_back({op.in.at(n, s.partner_row(ti, yy), 0) + s.px[ti] * op.in.sw + grp * op.in_group,
                              op.w + grp * op.w_group + s.tap[ti] * op.w_tap, s.xlo[ti], s.xhi[ti]});
            }
            row(n, Y, s, rt, grp, taps.data(), static_cast<int64_t>(taps.size()));
          }
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tconv::cpu
HWY_AFTER_NAMESPACE();

#endif  // TCONV_CPU_WALK_KERNELS_INL_H_
