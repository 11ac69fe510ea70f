// cpu_gemm_bwd_weights_f32: the weight gradient with the bias gradient fused into the same pass over
// diff_dst, deterministic for any thread count.
//
//   diff_wei[g·Og + o][q][p][c] (+)= Σ over (n, oy, ox) hit by tap (q,p) of diff_dst[n][oy][ox][g·Og + o] · src[n][iy][ix][g·Ig + c]
//   diff_bias[o]                (+)= Σ_n Σ_oy Σ_ox diff_dst[n][oy][ox][o]
//
// Per tap this is a GEMM Og × Ig with K = the (diff_dst pixel, src pixel) pairs the tap connects; the pairs
// are listed as row-pointer pairs (no im2col: rows are read in place, grouped layers by a channel offset).
// Two forms, both deterministic for any thread count (see RunSplit and RunShared):
//  * split-K (many pixels, small gradient): fixed pixel ranges, each walked in cache-sized sub-chunks by one
//    item into a private partial gradient, bias summed in the same walk; partials added in range order.
//  * shared (few pixels or a gradient too large for private partials): fixed pixel chunks one after another;
//    within a chunk the tiles are shared out, each owned by one item that adds the chunk's pairs in order.
// Pairs are listed from per-axis tables of the taps that connect each coordinate, so only real pairs (no
// inserted zeros, no padding) are visited.
// Micro-kernel: MR rows of o × 2 vectors of c (12×32 floats on AVX-512), one broadcast of diff_dst per row
// and two loads of src per pair. Compiled per SIMD target with Highway, chosen at run time.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/dtype.hpp"
#include "cpu/cpu_algorithms.hpp"
#include "cpu/cpu_common.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/gemm_bwd_weights.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/cache_control.h"
#include "hwy/highway.h"

// Shared by every per-target pass of this file (foreach_target re-includes it), hence the guard.
#ifndef TCONV_CPU_GEMM_BWD_WEIGHTS_JOB
#define TCONV_CPU_GEMM_BWD_WEIGHTS_JOB
namespace tconv::cpu {
// Everything the per-target code needs (float32 operands already staged/rounded).
struct WgradJob : WgradTarget {
  core::Geometry g;
  F32View x, dy;              // src, diff_dst as the multiplies read them
  int threads = 1;
  int64_t nsplit = 1;         // > 1: split-K over pixel ranges with private partials (RunSplit)
  float* partial = nullptr;   // nsplit × wgrad_partial_floats(g)
  float* apack = nullptr;     // panel form: wgrad_panel_floats(g) (packed diff_dst)
};
// Floats of one range's partial gradient (weights then bias), padded to 64 bytes.
inline int64_t wgrad_partial_floats(const core::Geometry& g) { return round_up(core::wei_elements(g) + g.c_out, 16); }
// Pixel ranges of the split-K form: one per 4096 diff_dst pixels, at most 8, and the partials may not
// take more memory than the largest tensor of the problem. 1 means the shared form (RunShared).
inline int64_t wgrad_splits(const core::Geometry& g) {
  const int64_t largest = std::max({core::src_elements(g), core::dst_elements(g), core::wei_elements(g)});
  int64_t s = std::clamp<int64_t>(g.n * g.h_out * g.w_out / 4096, 1, 8);
  while (s > 1 && s * wgrad_partial_floats(g) > largest) --s;
  return s;
}
// The panel form (RunPanels): the shared form's case of a single chunk of pixels (every tap's K is short)
// with a large gradient per tap (Og·Ig ≥ 128·128). Decided from the problem only.
inline bool wgrad_use_panels(const core::Geometry& g) {
  return wgrad_splits(g) == 1 && g.n * g.h_out * g.w_out <= 8192 && g.og() * g.ig() >= 128 * 128;
}
// Floats of the panel form's packed diff_dst: groups × pairs × Og rounded up to 12 rows (the largest MR),
// padded to 64 bytes. pairs = n × (Σ_oy taps hitting oy) × (Σ_ox taps hitting ox).
inline int64_t wgrad_panel_floats(const core::Geometry& g) {
  const auto hits = [](const Axis& ax) {
    int64_t c = 0;
    for (int64_t o = 0; o < ax.out; ++o)
      for (int64_t q = 0; q < ax.k; ++q) c += ax.src_of(o, q) >= 0 ? 1 : 0;
    return c;
  };
  return round_up(g.groups * g.n * hits(axis_h(g)) * hits(axis_w(g)) * round_up(g.og(), 12), 16);
}
}  // namespace tconv::cpu
#endif  // TCONV_CPU_GEMM_BWD_WEIGHTS_JOB

HWY_BEFORE_NAMESPACE();
namespace tconv::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
constexpr int kMR = HWY_LANES(float) >= 16 ? 12 : 6;
constexpr int64_t kPrefetch = 8;  // pairs ahead

// The micro-kernel shared by both tile forms: dw[m·ldw + j] (+)= Σ_i a_i[m] · b_i[j] for m < MR, j < ncols
// (≤ 2 vectors), pairs i in list order. Rows m < nload start from dw (accumulation), the others from zero;
// rows m < nstore are written back. `Pairs` supplies pair i: Load() puts b_i in two vectors and returns the
// row of a_i (MR floats); Prefetch() may fetch ahead. One broadcast of a per row and two loads of b per pair.
template <int MR, bool kFull, class Pairs>
HWY_INLINE void TileSum(const Pairs& pairs, int64_t np, float* dw, int64_t ldw, int64_t ncols, int nload,
                        int nstore) {
  const DF d;
  const size_t N = hn::Lanes(d);
  using V = decltype(hn::Zero(d));
  const auto m0 = hn::FirstN(d, static_cast<size_t>(std::min<int64_t>(ncols, N)));
  const auto m1 = hn::FirstN(d, static_cast<size_t>(std::max<int64_t>(ncols - static_cast<int64_t>(N), 0)));
  V acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    acc0[m] = hn::Zero(d);
    acc1[m] = hn::Zero(d);
    if (m < nload) {
      float* row = dw + m * ldw;
      acc0[m] = kFull ? hn::LoadU(d, row) : hn::MaskedLoad(m0, d, row);
      acc1[m] = kFull ? hn::LoadU(d, row + N) : hn::MaskedLoad(m1, d, row + N);
    }
  }
  for (int64_t i = 0; i < np; ++i) {
    pairs.Prefetch(i, np);
    V b0, b1;
    const float* HWY_RESTRICT ar = pairs.template Load<kFull>(i, m0, m1, b0, b1);
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const V av = hn::Set(d, ar[m]);
      acc0[m] = hn::MulAdd(av, b0, acc0[m]);
      acc1[m] = hn::MulAdd(av, b1, acc1[m]);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    if (m >= nstore) break;
    float* row = dw + m * ldw;
    if (kFull) {
      hn::StoreU(acc0[m], d, row);
      hn::StoreU(acc1[m], d, row + N);
    } else {
      hn::BlendedStore(acc0[m], m0, d, row);
      hn::BlendedStore(acc1[m], m1, d, row + N);
    }
  }
}

// Pairs read in place through the pair lists (WTile): dy/x row pointers, offset to the tile's first o / c.
struct ListedPairs {
  const float* const* dyp;
  const float* const* xp;
  int64_t dy_off, x_off;
  // The pairs' rows are scattered (one image row apart or more): prefetch a few pairs ahead, as the
  // hardware prefetchers do not follow pointer lists.
  HWY_INLINE void Prefetch(int64_t i, int64_t np) const {
    if (i + kPrefetch < np) {
      hwy::Prefetch(xp[i + kPrefetch] + x_off);
      hwy::Prefetch(xp[i + kPrefetch] + x_off + hn::Lanes(DF()));
      hwy::Prefetch(dyp[i + kPrefetch] + dy_off);
    }
  }
  template <bool kFull, class M, class V>
  HWY_INLINE const float* Load(int64_t i, M m0, M m1, V& b0, V& b1) const {
    const DF d;
    const float* HWY_RESTRICT xr = xp[i] + x_off;
    b0 = kFull ? hn::LoadU(d, xr) : hn::MaskedLoad(m0, d, xr);
    b1 = kFull ? hn::LoadU(d, xr + hn::Lanes(d)) : hn::MaskedLoad(m1, d, xr + hn::Lanes(d));
    return dyp[i] + dy_off;
  }
};

// dw[m·ldw + j] (+)= Σ_i dy[i][m] · x[i][j] for m < MR, j < ncols (≤ 2 vectors). dy/x: pair row pointers
// already offset to the tile's first o / c.
template <int MR, bool kFull>
HWY_NOINLINE void WTile(const float* const* dyp, const float* const* xp, int64_t np, int64_t dy_off, int64_t x_off,
                        float* dw, int64_t ldw, int64_t ncols, bool load) {
  TileSum<MR, kFull>(ListedPairs{dyp, xp, dy_off, x_off}, np, dw, ldw, ncols, load ? MR : 0, MR);
}

using WTileFn = void (*)(const float* const*, const float* const*, int64_t, int64_t, int64_t, float*, int64_t,
                         int64_t, bool);
template <int MR>
WTileFn pick(bool full) { return full ? &WTile<MR, true> : &WTile<MR, false>; }
WTileFn PickTile(int mr, bool full) {
  switch (mr) {
    case 1: return pick<1>(full);
    case 2: return pick<2>(full);
    case 3: return pick<3>(full);
    case 4: return pick<4>(full);
    case 5: return pick<5>(full);
    case 6: return pick<6>(full);
#if HWY_MAX_BYTES >= 64
    case 7: return pick<7>(full);
    case 8: return pick<8>(full);
    case 9: return pick<9>(full);
    case 10: return pick<10>(full);
    case 11: return pick<11>(full);
    case 12: return pick<12>(full);
#endif
    default: return nullptr;
  }
}

// Valid (tap coordinate, source coordinate) pairs of every destination coordinate along one axis.
using TapTable = std::vector<std::vector<std::pair<int64_t, int64_t>>>;
TapTable tap_table(const Axis& ax) {
  TapTable tab(static_cast<size_t>(ax.out));
  for (int64_t o = 0; o < ax.out; ++o)
    for (int64_t q = 0; q < ax.k; ++q)
      if (const int64_t i = ax.src_of(o, q); i >= 0) tab[static_cast<size_t>(o)].emplace_back(q, i);
  return tab;
}

// The sizes every form works with: tiles of kMR rows of o × NR = 2 vectors of c, per group and tap.
struct Dims {
  int64_t N, NR, G, Ig, Og, T, ncb, nob, P;  // P: diff_dst pixels
  explicit Dims(const core::Geometry& g)
      : N(static_cast<int64_t>(hn::Lanes(DF()))), NR(2 * N), G(g.groups), Ig(g.ig()), Og(g.og()), T(g.kh * g.kw),
        ncb((Ig + NR - 1) / NR), nob((Og + kMR - 1) / kMR), P(g.n * g.h_out * g.w_out) {}
};

// Per tap, the (diff_dst row, src row) pointer pairs of the diff_dst pixels [p0, p1) appended in pixel order
// (the order every gradient element sums in); pixel(n, oy, ox) is called for each pixel before its pairs.
using PairLists = std::vector<std::vector<const float*>>;
template <class PixelFn>
HWY_INLINE void ListPairs(const WgradJob& job, const TapTable& rows, const TapTable& cols, int64_t p0, int64_t p1,
                          PairLists& pdy, PairLists& px, const PixelFn& pixel) {
  const core::Geometry& g = job.g;
  int64_t n = p0 / (g.h_out * g.w_out), oy = (p0 / g.w_out) % g.h_out, ox = p0 % g.w_out;
  for (int64_t pix = p0; pix < p1; ++pix) {
    const float* dyrow = job.dy.at(n, oy, ox);
    pixel(n, oy, ox);
    for (const auto& [q, iy] : rows[static_cast<size_t>(oy)])
      for (const auto& [p, ix] : cols[static_cast<size_t>(ox)]) {
        const size_t t = static_cast<size_t>(q * g.kw + p);
        pdy[t].push_back(dyrow);
        px[t].push_back(job.x.at(n, iy, ix));
      }
    if (++ox == g.w_out) {
      ox = 0;
      if (++oy == g.h_out) { oy = 0; ++n; }
    }
  }
}

// acc[j] += diff_dst[n][oy][ox][c0 + j] for j < nc: the stored values (the bias gradient sums them
// unrounded, as the reference does), float16/bfloat16 converted one by one.
HWY_INLINE void AddStoredRow(const WgradJob& job, int64_t n, int64_t oy, int64_t ox, int64_t c0, int64_t nc,
                             float* acc) {
  const core::TensorView& o = job.dy_orig;
  const int64_t base = n * o.sn + oy * o.sh + ox * o.sw + c0;
  if (job.act == DataType::float32) {
    const float* row = static_cast<const float*>(o.data) + base;
    for (int64_t j = 0; j < nc; ++j) acc[j] += row[j];
  } else {
    for (int64_t j = 0; j < nc; ++j) acc[j] += core::load_as_f32(o.data, base + j, job.act);
  }
}

// Pairs packed by the panel form (RunPanels): a = [np][kMR] diff_dst values (rows past the tile's mr are
// zero), b = [np][NR] src values (columns past ncols are zero); every read is sequential.
struct PackedPairs {
  const float* a;
  const float* b;
  HWY_INLINE void Prefetch(int64_t, int64_t) const {}
  template <bool kFull, class M, class V>
  HWY_INLINE const float* Load(int64_t i, M, M, V& b0, V& b1) const {
    const DF d;
    const int64_t N = static_cast<int64_t>(hn::Lanes(d));
    b0 = hn::LoadU(d, b + i * 2 * N);
    b1 = hn::LoadU(d, b + i * 2 * N + N);
    return a + i * kMR;
  }
};

// Packed micro-kernel of the panel form: the loop runs from L1/L2 at the FMA rate instead of waiting on
// scattered rows. Pairs are added in list order, as WTile does.
template <bool kFull>
HWY_NOINLINE void WTilePacked(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t np, float* dw,
                              int64_t ldw, int mr, int64_t ncols, bool load) {
  TileSum<kMR, kFull>(PackedPairs{a, b}, np, dw, ldw, ncols, load ? mr : 0, mr);
}

// Shared form, for problems whose pixels are few or whose gradient is too large to have private partials:
// the diff_dst pixels are walked in chunks of kSharedChunk (fixed); for each chunk the pairs of every tap are
// listed, then the threads share the chunk's tiles (tap, block of MR o, block of NR c) and diff_bias slices,
// each owned by one item that adds the chunk's pairs in pixel order. Chunks follow one another (two barriers
// each), so every element receives the same additions in the same order whatever the number of threads;
// consecutive items share their src columns, which stay in cache.
constexpr int64_t kSharedChunk = 8192;
constexpr int64_t kBiasSlice = 64;  // channels of diff_bias per item

// One item of diff_bias: channels [c0, c0 + kBiasSlice) summed over the output pixels [p0, p1) in pixel order,
// starting from the current values when `load` (accumulation, or a later chunk of the shared form) else 0.
// Shared by the shared and the panel forms so that both sum the bias in the same order.
void BiasSlice(const WgradJob& job, int64_t c0, int64_t p0, int64_t p1, bool load) {
  const core::Geometry& g = job.g;
  const int64_t nc = std::min(kBiasSlice, g.c_out - c0);
  float acc[kBiasSlice];
  for (int64_t j = 0; j < nc; ++j) acc[j] = load ? job.db[c0 + j] : 0.0f;
  for (int64_t pix = p0; pix < p1; ++pix)
    AddStoredRow(job, pix / (g.h_out * g.w_out), (pix / g.w_out) % g.h_out, pix % g.w_out, c0, nc, acc);
  for (int64_t j = 0; j < nc; ++j) job.db[c0 + j] = acc[j];
}

void RunShared(const WgradJob& job) {
  const core::Geometry& g = job.g;
  const Dims dm(g);
  const int64_t NR = dm.NR, G = dm.G, Ig = dm.Ig, Og = dm.Og, T = dm.T, ncb = dm.ncb, nob = dm.nob;
  const int64_t witems = G * T * ncb * nob;
  const int64_t bitems = job.db != nullptr ? (g.c_out + kBiasSlice - 1) / kBiasSlice : 0;
  const int64_t P = dm.P, nchunk = (P + kSharedChunk - 1) / kSharedChunk;
  const TapTable rows = tap_table(axis_h(g)), cols = tap_table(axis_w(g));
  PairLists pdy(static_cast<size_t>(T)), px(static_cast<size_t>(T));

#pragma omp parallel num_threads(std::max(1, job.threads))
  for (int64_t chunk = 0; chunk < nchunk; ++chunk) {
    const int64_t p0 = chunk * kSharedChunk, p1 = std::min(P, p0 + kSharedChunk);
    const bool load = chunk > 0 || job.accumulate;
#pragma omp single
    {
      for (int64_t t = 0; t < T; ++t) {
        pdy[static_cast<size_t>(t)].clear();
        px[static_cast<size_t>(t)].clear();
      }
      ListPairs(job, rows, cols, p0, p1, pdy, px, [](int64_t, int64_t, int64_t) {});
    }  // implicit barrier: the pair lists are complete
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < witems + bitems; ++it) {
      if (it >= witems) {  // a slice of diff_bias: this chunk's diff_dst rows in pixel order
        BiasSlice(job, (it - witems) * kBiasSlice, p0, p1, load);
        continue;
      }
      // Item order (grp, t, cb, ob): neighbouring items read the same src columns.
      const int64_t ob = it % nob, cb = (it / nob) % ncb, t = (it / (nob * ncb)) % T, grp = it / (nob * ncb * T);
      const auto& vd = pdy[static_cast<size_t>(t)];
      if (vd.empty() && load) continue;  // nothing to add
      const int64_t o0 = ob * kMR, c0 = cb * NR;
      const int mr = static_cast<int>(std::min<int64_t>(kMR, Og - o0));
      const int64_t ncols = std::min(NR, Ig - c0);
      PickTile(mr, ncols == NR)(vd.data(), px[static_cast<size_t>(t)].data(), static_cast<int64_t>(vd.size()),
                                grp * Og + o0, grp * Ig + c0, job.dw + ((grp * Og + o0) * T + t) * Ig + c0, T * Ig,
                                ncols, load);
    }  // implicit barrier before the next chunk rewrites the pair lists
  }
}

// Panel form: the shared form's case of a single chunk (few pixels, so every tap's K is short) with a large
// Og × Ig (e.g. U-Net up1: K = 784 pairs, 512 × 1024 per tap). There the pointer-walking WTile re-reads the
// same scattered rows once per tile (43 × 32 tiles per tap) and runs at a third of the FMA rate. Instead the
// work is split over OUTPUT panels only, never over pixels: diff_dst is packed once per (group, tap, block of
// kMR o) as [K][kMR]; then each item (group, tap, block of NR c) packs its src columns as [K][NR] (once, in a
// per-thread buffer) and runs every o block over them. Each element is still written by one item that adds
// the tap's pairs in pixel order starting from 0 (or the previous gradient), exactly as the shared form does,
// so the result is the same bits for any number of threads (and the same as the shared form's).
static_assert(kSharedChunk == 8192, "wgrad_use_panels assumes the shared form's chunk of 8192 pixels");

void RunPanels(const WgradJob& job) {
  const core::Geometry& g = job.g;
  const Dims dm(g);
  const int64_t NR = dm.NR, G = dm.G, Ig = dm.Ig, Og = dm.Og, T = dm.T, ncb = dm.ncb, nob = dm.nob, P = dm.P;
  const int64_t bitems = job.db != nullptr ? (g.c_out + kBiasSlice - 1) / kBiasSlice : 0;
  const bool load = job.accumulate;
  const TapTable rows = tap_table(axis_h(g)), cols = tap_table(axis_w(g));
  PairLists pdy(static_cast<size_t>(T)), px(static_cast<size_t>(T));
  ListPairs(job, rows, cols, 0, P, pdy, px, [](int64_t, int64_t, int64_t) {});  // every tap, in pixel order
  // Packed diff_dst: [grp][t][ob][K_t][kMR]; aoff[t] is tap t's start within a group.
  std::vector<int64_t> aoff(static_cast<size_t>(T) + 1, 0);
  for (int64_t t = 0; t < T; ++t)
    aoff[static_cast<size_t>(t) + 1] = aoff[static_cast<size_t>(t)] + static_cast<int64_t>(pdy[static_cast<size_t>(t)].size()) * nob * kMR;
  const int64_t astride = aoff[static_cast<size_t>(T)];  // G · astride ≤ wgrad_panel_floats(g)
  float* const A = job.apack;

#pragma omp parallel num_threads(std::max(1, job.threads))
  {
#pragma omp for schedule(dynamic, 4)
    for (int64_t it = 0; it < G * T * nob; ++it) {
      const int64_t ob = it % nob, t = (it / nob) % T, grp = it / (nob * T);
      const auto& vd = pdy[static_cast<size_t>(t)];
      const int64_t K = static_cast<int64_t>(vd.size()), o0 = grp * Og + ob * kMR;
      const int64_t mr = std::min<int64_t>(kMR, Og - ob * kMR);
      float* a = A + grp * astride + aoff[static_cast<size_t>(t)] + ob * K * kMR;
      for (int64_t i = 0; i < K; ++i) {
        std::memcpy(a + i * kMR, vd[static_cast<size_t>(i)] + o0, static_cast<size_t>(mr) * sizeof(float));
        std::fill(a + i * kMR + mr, a + (i + 1) * kMR, 0.0f);
      }
    }  // implicit barrier: diff_dst is packed
    std::vector<float> bpack;
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < G * T * ncb + bitems; ++it) {
      if (it >= G * T * ncb) {  // a slice of diff_bias: all diff_dst rows in pixel order
        BiasSlice(job, (it - G * T * ncb) * kBiasSlice, 0, P, load);
        continue;
      }
      const int64_t cb = it % ncb, t = (it / ncb) % T, grp = it / (ncb * T);
      const auto& vx = px[static_cast<size_t>(t)];
      const int64_t K = static_cast<int64_t>(vx.size());
      if (K == 0 && load) continue;  // nothing to add
      const int64_t c0 = cb * NR, ncols = std::min(NR, Ig - c0);
      bpack.resize(static_cast<size_t>(K * NR));
      for (int64_t i = 0; i < K; ++i) {
        float* b = bpack.data() + i * NR;
        std::memcpy(b, vx[static_cast<size_t>(i)] + grp * Ig + c0, static_cast<size_t>(ncols) * sizeof(float));
        std::fill(b + ncols, b + NR, 0.0f);
      }
      const float* a = A + grp * astride + aoff[static_cast<size_t>(t)];
      for (int64_t ob = 0; ob < nob; ++ob) {
        const int64_t o0 = ob * kMR;
        const int mr = static_cast<int>(std::min<int64_t>(kMR, Og - o0));
        float* dw = job.dw + ((grp * Og + o0) * T + t) * Ig + c0;
        if (ncols == NR) WTilePacked<true>(a + ob * K * kMR, bpack.data(), K, dw, T * Ig, mr, ncols, load);
        else WTilePacked<false>(a + ob * K * kMR, bpack.data(), K, dw, T * Ig, mr, ncols, load);
      }    }
  }
}

// Split-K form for problems with many pixels: the diff_dst pixels are cut into job.nsplit equal ranges (a
// number fixed by the problem); one item per range walks its pixels in sub-chunks of kc that stay in cache,
// and adds every tap's pairs into that range's private partial gradient (all tiles, so the sub-chunk's rows
// are reused from cache by every tile), summing diff_bias in the same walk. The partials are then added into
// the gradient in range order. Deterministic: range boundaries, sub-chunks and the final order depend only on
// the problem.
void RunSplit(const WgradJob& job) {
  const core::Geometry& g = job.g;
  const Dims dm(g);
  const int64_t NR = dm.NR, G = dm.G, Ig = dm.Ig, Og = dm.Og, T = dm.T, ncb = dm.ncb, nob = dm.nob, P = dm.P;
  const int64_t kc = std::clamp<int64_t>(256 * g.stride_h * g.stride_w, 256, 16384);
  const int64_t wn = core::wei_elements(g), stride = wgrad_partial_floats(g);
  const TapTable rows = tap_table(axis_h(g)), cols = tap_table(axis_w(g));
  const int threads = std::max(1, job.threads);
  const bool bias = job.db != nullptr;

#pragma omp parallel num_threads(threads)
  {
    PairLists pdy(static_cast<size_t>(T)), px(static_cast<size_t>(T));
#pragma omp for schedule(dynamic, 1)
    for (int64_t s = 0; s < job.nsplit; ++s) {
      float* dws = job.partial + s * stride;  // [wn] weight partial, then [c_out] bias partial
      float* dbs = dws + wn;
      std::fill(dws, dws + wn + g.c_out, 0.0f);
      const int64_t p0 = s * P / job.nsplit, p1 = (s + 1) * P / job.nsplit;
      for (int64_t c = p0; c < p1; c += kc) {
        ListPairs(job, rows, cols, c, std::min(p1, c + kc), pdy, px, [&](int64_t n, int64_t oy, int64_t ox) {
          if (bias) AddStoredRow(job, n, oy, ox, 0, g.c_out, dbs);
        });
        for (int64_t t = 0; t < T; ++t) {
          auto& vd = pdy[static_cast<size_t>(t)];
          auto& vx = px[static_cast<size_t>(t)];
          if (vd.empty()) continue;
          for (int64_t grp = 0; grp < G; ++grp)
            for (int64_t ob = 0; ob < nob; ++ob) {
              const int64_t o0 = ob * kMR;
              const int mr = static_cast<int>(std::min<int64_t>(kMR, Og - o0));
              for (int64_t cb = 0; cb < ncb; ++cb) {
                const int64_t c0 = cb * NR, ncols = std::min(NR, Ig - c0);
                PickTile(mr, ncols == NR)(vd.data(), vx.data(), static_cast<int64_t>(vd.size()), grp * Og + o0,
                                          grp * Ig + c0, dws + ((grp * Og + o0) * T + t) * Ig + c0, T * Ig, ncols, true);
              }
            }
          vd.clear();
          vx.clear();
        }
      }
    }
    // gradient = (previous if accumulating) + partial_0 + partial_1 + ... in range order.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < wn + (bias ? g.c_out : 0); ++i) {
      float& out = i < wn ? job.dw[i] : job.db[i - wn];
      float acc = job.accumulate ? out : 0.0f;
      for (int64_t s = 0; s < job.nsplit; ++s) acc += job.partial[s * stride + i];
      out = acc;
    }
  }
}

void Run(const WgradJob& job) {
  if (job.nsplit > 1) RunSplit(job);
  else if (wgrad_use_panels(job.g)) RunPanels(job);
  else RunShared(job);
}

}  // namespace HWY_NAMESPACE
}  // namespace tconv::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tconv::cpu {
HWY_EXPORT(Run);
namespace {

class GemmBwdWeights final : public registry::Algorithm {
 public:
  std::string_view name() const noexcept override { return "cpu_gemm_bwd_weights_f32"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.dir != core::Direction::bwd_weights)
      return std::string("computes the weight gradient (bwd_weights) only, not ") + core::to_string(p.dir);
    return std::nullopt;
  }
  std::size_t workspace_bytes(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    const int64_t splits = wgrad_splits(g);
    std::size_t b = splits > 1 ? static_cast<std::size_t>(splits * wgrad_partial_floats(g) * 4) : 0;
    if (wgrad_use_panels(g)) b = static_cast<std::size_t>(wgrad_panel_floats(g) * 4);  // splits == 1 here
    return b + input_staging_bytes(p, g.n, g.h_in, g.w_in, g.c_in) + input_staging_bytes(p, g.n, g.h_out, g.w_out, g.c_out);
  }
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const registry::ExecContext& ctx) const override {
    const core::Geometry& g = p.g;
    WgradJob job;
    job.g = g;
    job.threads = ctx.num_threads;
    WorkspaceCursor ws(workspace);  // the partials or the packed panels (never both), then any staging
    job.nsplit = wgrad_splits(g);
    if (job.nsplit > 1) job.partial = ws.floats(job.nsplit * wgrad_partial_floats(g));
    if (wgrad_use_panels(g)) job.apack = ws.floats(wgrad_panel_floats(g));
    job.x = input_f32(a.src, g.n, g.h_in, g.w_in, g.c_in, p, ws, ctx.num_threads);
    job.dy = input_f32(a.diff_dst, g.n, g.h_out, g.w_out, g.c_out, p, ws, ctx.num_threads);
    job.set_wgrad_target(p, a);
    HWY_DYNAMIC_DISPATCH(Run)(job);
    return core::Status::ok_status();
  }
};

}  // namespace

const registry::Algorithm* gemm_bwd_weights() { return single_instance<GemmBwdWeights>(); }

}  // namespace tconv::cpu
#endif
