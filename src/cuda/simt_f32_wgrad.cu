// cuda_simt_f32, weight and bias gradients: SIMT implicit GEMM in true float32 with deterministic split-K.
// Per group the weight gradient of every tap is one GEMM over the source pixels:
//   diff_wei[g·Og + o][q][p][c] = Σ_{n, iy, ix} diff_dst[n][oy][ox][g·Og + o] · src[n][iy][ix][g·Ig + c]
//   with oy = iy·sh − ph + dh·(kh − 1 − q), ox likewise (pixels whose oy/ox fall outside contribute 0).
// The taps are stacked along M: m = (tap, o) < kh·kw·Og, N = Ig, K = n·h_in·w_in. A row of the A slab for
// pixel k is then diff_dst gathered at k's output position for each tap, and one B slab (src, which does not
// depend on the tap) serves every tap of the tile: with few output channels (unet_up4: Og 64) the tile is
// still full, and src is read once per tile instead of once per tap.
// K is cut into S chunks of equal length (S and the tile shape depend on the problem alone, through a cost
// model for a fixed 132-SM machine); each block computes one tile of one (chunk, group) and writes its
// partial sums to workspace[s][e] (no atomics). The bias gradient is a column sum of diff_dst over
// n·h_out·w_out pixels: its own kernel sums S·R equal pixel ranges (R more per chunk so that enough blocks
// stream diff_dst), then R consecutive sums are added into the S bias partials. When S > 16 a first-level
// kernel adds groups of G consecutive partials in order, and the fixed pairwise tree of direct_bwd_weights.cu
// (launch_reduce_partials) adds the rest and the old values when accumulating. With S = 1 the GEMM writes (or
// adds into) diff_wei directly. Every order is fixed: the bits are the same on every run and device.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cuda/cuda_util.hpp"
#include "cuda/igemm_mma.cuh"
#include "cuda/simt_f32.cuh"

namespace tconv::cuda_simt {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t kMaxPartials = int64_t{1} << 26;  // floats of split-K partials (256 MiB)
constexpr int64_t kTreeChunks = 16;                  // partials left for the pairwise tree after grouping

struct WPlan {
  int tile = kT128x128;
  int64_t m_rows = 0;       // taps·Og
  int64_t mt = 0, nt = 0;   // tiles over m_rows and Ig
  int64_t pixels = 0;       // K = n·h_in·w_in
  int64_t chunk = 0;        // pixels per split (multiple of kBK)
  int64_t splits = 1;       // S
  int64_t group = 1;        // G: partials added per first-level group (1: none)
  int64_t splits2 = 1;      // ceil(S / G)
  int64_t wei_count = 0, bias_count = 0, outs = 0;
  int64_t px_out = 0;       // bias: n·h_out·w_out pixels
  int64_t bias_sub = 1;     // R: bias ranges per split
  // Workspace layout (floats): partials [S][outs] | group sums [S2][outs] | bias sums [S·R][c_out].
  int64_t off_group = 0, off_bias = 0, ws_floats = 0;
};

// The tile and split depend on the problem alone (p.with_bias included); `bias_out` (false when the caller
// passes no diff_bias) only drops the bias from the layout, which then shrinks.
WPlan make_wplan(const core::Problem& p, bool bias_out) {
  const core::Geometry& g = p.g;
  WPlan w;
  w.m_rows = g.kh * g.kw * g.og();
  w.pixels = g.n * g.h_in * g.w_in;
  w.wei_count = core::wei_elements(g);
  w.bias_count = p.with_bias ? g.c_out : 0;
  w.outs = w.wei_count + w.bias_count;
  w.px_out = g.n * g.h_out * g.w_out;
  // The tile and S minimising model_seconds (simt_f32.cuh) plus writing and reading S·outs partials at
  // 2.5 TB/s. At least 64 pixels (4 slabs of kBK = 16; the floor is a k depth, kept from 8 slabs of 8) per
  // chunk.
  const int64_t s_cap = std::max<int64_t>(
      1, std::min<int64_t>({w.pixels / 64, kMaxPartials / std::max<int64_t>(1, w.outs), 4096}));
  double best = std::numeric_limits<double>::infinity();
  // TCONV_SIMT_F32_WSPLIT: the largest S up to the forced count that has its own chunk length.
  static const int64_t forced = forced_split("TCONV_SIMT_F32_WSPLIT");
  int64_t target = 0;
  for (int64_t s = std::min(forced, s_cap); forced > 0 && s >= 1 && target == 0; --s)
    if (ceil_div(w.pixels, ceil_div(ceil_div(w.pixels, s), kBK) * kBK) == s) target = s;
  for (int t = 0; t < kTileCount; ++t) {
    if (forced_tile() >= 0 && t != forced_tile()) continue;
    const TileInfo& ti = kTiles[t];
    const int64_t mt = ceil_div(w.m_rows, ti.bm), nt = ceil_div(g.ig(), ti.bn);
    const int64_t tiles = mt * nt * g.groups;
    for (int64_t s = 1; s <= s_cap; ++s) {
      const int64_t chunk = ceil_div(ceil_div(w.pixels, s), kBK) * kBK;
      if (ceil_div(w.pixels, chunk) != s) continue;  // same chunk as a smaller S
      if (target > 0 && s != target) continue;
      if (s * tiles > 0x7fffffff) break;             // one-dimensional grid
      double cost = model_seconds(t, static_cast<double>(s * tiles), static_cast<double>(ti.bm) * ti.bn * chunk);
      if (s > 1) cost += static_cast<double>(s * w.outs) * 8.0 / 2.5e12;
      if (cost < best * 0.999) {  // prefer the earlier (larger tile, smaller S) on near ties
        best = cost;
        w.tile = t;
        w.mt = mt;
        w.nt = nt;
        w.splits = s;
        w.chunk = chunk;
      }
    }
  }
  if (w.splits > kTreeChunks) {
    w.group = ceil_div(w.splits, kTreeChunks);
    w.splits2 = ceil_div(w.splits, w.group);
  }
  if (!bias_out) {
    w.bias_count = 0;
    w.outs = w.wei_count;
  }
  // Bias: about 4 blocks per SM of 8 warps streaming diff_dst, at least 64 pixels per range.
  if (w.bias_count > 0) {
    const int64_t ctiles = ceil_div(g.c_out, 32);
    const int64_t want = ceil_div(4 * kModelSms, w.splits * ctiles);
    w.bias_sub = std::max<int64_t>(1, std::min(want, w.px_out / (64 * w.splits)));
  }
  const int64_t part = w.splits > 1 ? w.splits * w.outs : 0;
  w.off_group = part;
  w.off_bias = part + (w.group > 1 ? w.splits2 * w.outs : 0);
  w.ws_floats = w.off_bias + (w.bias_count > 0 ? w.splits * w.bias_sub * g.c_out : 0);
  return w;
}

struct WgradArgs {
  KView src, dd;
  float* out;  // partials [S][outs], or diff_wei when S = 1
  KGeom g;
  int64_t m_rows, mt, nt, pixels, chunk, outs;
  bool direct, accumulate;
};

// Walks one slab row's source pixel (n, iy, ix) through a chunk in steps of kBK without divisions (32-bit:
// decline_reason bounds sizes by 2^29 and pixels by 2^33, so n fits).
struct PixelCursor {
  int n, iy, ix;
  __device__ __forceinline__ void init(int64_t pix, const KGeom& g) {
    ix = static_cast<int>(pix % g.w_in);
    const int64_t t = pix / g.w_in;
    iy = static_cast<int>(t % g.h_in);
    n = static_cast<int>(t / g.h_in);
  }
  __device__ __forceinline__ void advance(int w_in, int h_in) {
    ix += kBK;
    while (ix >= w_in) {
      ix -= w_in;
      if (++iy == h_in) {
        iy = 0;
        ++n;
      }
    }
  }
};

// n·sn + y·sh + x·sw for non-negative coordinates: as unsigned 32-bit factors each term is one wide
// multiply-add and one high-part multiply (no sign extension).
__device__ __forceinline__ int64_t pixel_offset(const KView& v, int n, int y, int x) {
  return static_cast<int64_t>(static_cast<uint32_t>(n)) * v.sn + static_cast<int64_t>(static_cast<uint32_t>(y)) * v.sh +
         static_cast<int64_t>(static_cast<uint32_t>(x)) * v.sw;
}

template <class C, bool kVec>
__global__ void __launch_bounds__(kThreads, C::kMinBlocks) wgrad_kernel(const WgradArgs ar) {
  const KGeom& g = ar.g;
  __shared__ __align__(16) float As[2][kBK][C::PA];  // [pixel][(tap, o)]
  __shared__ __align__(16) float Bs[2][kBK][C::PB];  // [pixel][c]

  const int tid = threadIdx.x;
  int64_t b = blockIdx.x;
  const int64_t nti = b % ar.nt;
  b /= ar.nt;
  const int64_t mti = b % ar.mt;
  b /= ar.mt;
  const int64_t grp = b % g.groups, s = b / g.groups;
  const int64_t m0 = mti * C::BM, c0 = nti * C::BN;
  const int64_t kb = s * ar.chunk;
  const int klen = static_cast<int>(min(ar.pixels - kb, ar.chunk));  // pixels of this chunk
  const int nslabs = (klen + kBK - 1) / kBK;
  const int w_in = static_cast<int>(g.w_in), h_in = static_cast<int>(g.h_in), w_out = static_cast<int>(g.w_out),
            h_out = static_cast<int>(g.h_out), sh = static_cast<int>(g.sh), sw = static_cast<int>(g.sw);
  const int64_t taps = g.kh * g.kw;
  const float* __restrict__ ddp = static_cast<const float*>(ar.dd.data);
  const float* __restrict__ sp = static_cast<const float*>(ar.src.data);

  // Loader mapping, kVec. A slab is kBK = 16 pixel rows; warp w stages rows w and w + 8 (row slot c = 0, 1), so
  // a thread needs at most two pixel cursors whatever the operand widths. An operand W wide has Q = W / 4
  // quads (16-byte loads) per row; a warp's 2·Q quads go to its lanes in order: load l of lane j takes
  // quad (32·l + j) % Q of slot (32·l + j) / Q. Q = 32 (W 128): 2 loads, slot l, quad j. Q = 16: 1 load,
  // slot j / 16. Q = 8: 1 load by lanes 0..15, slot j / 8. A thread's quad is the same in all its loads, so
  // its per-column state (Col below) is one set; 8 consecutive lanes write one row's contiguous 128 bytes
  // (conflict-free), and a warp's load reads whole rows' 32 · 16 bytes (Q = 32), or two rows' halves.
  //
  // Scalar (!kVec: Og or Ig not a multiple of 4, no 16-byte alignment along a row): one 4-byte cp.async per
  // element, lanes along the row. Thread t owns column t % W of an operand W wide and rows t / W + l·(256 / W):
  // a warp copies 32 consecutive (tap, o) columns of one pixel (A: a few neighbouring output pixels' channel
  // runs) or 32 consecutive channels (B), where one lane per 4-column quad made each of its 4 copies touch
  // every sector of the warp's span (fcn8s_up8's 21-channel weight gradient: L1 84% busy, the FMA pipe 38%).
  // A thread's column is fixed, so its tap offsets stay in 4 registers; the rows' pixel data (the offsets
  // of the pixel in diff_dst and src, and iy·sh, ix·sw for the bounds) come from a table in shared memory
  // that the first 16 threads, one pixel cursor each, fill one slab ahead (double-buffered: the table of slab
  // s + 1 is written after the fetch of slab s, one barrier before the fetch that reads it).
  static_assert(kBK == 2 * (kThreads / 32), "two slab rows per warp");
  constexpr int QA = C::BM / 4, QB = C::BN / 4, LA = C::LA, LB = C::LB;
  static_assert(32 % QA == 0 && 32 % QB == 0 && QA >= 8 && QB >= 8, "8, 16 or 32 quads per row");
  const int warp = tid / 32, lane = tid % 32;
  // Slot of load l: a_slot + l (Q = 32: a_slot = 0; Q < 32: one load, slot lane / Q).
  const int a_slot = QA == 32 ? 0 : lane / QA, b_slot = QB == 32 ? 0 : lane / QB;
  const int a_m = (lane % QA) * 4, b_n = (lane % QB) * 4;
  const bool a_act = QA >= 16 || lane < 2 * QA, b_act = QB >= 16 || lane < 2 * QB;

  // A columns (tap, o): output offsets of the tap (oy = iy·sh + sy, ox likewise), the diff_dst channel, in
  // range. kVec: a_m .. a_m + 3 share the tap (Og is a multiple of 4).
  struct Col {
    int sy, sx, col, ok;
  };
  auto column = [&](int64_t m) {
    const int64_t tap = m / g.og, o = m % g.og, q = tap / g.kw, pp = tap % g.kw;
    return Col{static_cast<int>(-g.ph + g.dh * (g.kh - 1 - q)), static_cast<int>(-g.pw + g.dw * (g.kw - 1 - pp)),
               static_cast<int>(grp * g.og + o), m < ar.m_rows};
  };
  // B channels b_n .. b_n + 3.
  const int b_cols = b_act ? clamp4(g.ig - (c0 + b_n)) : 0;
  const int64_t b_col = grp * g.ig + c0 + b_n;

  // Scalar mapping (see above): column sa_m of A (rows sa_r + l·(256 / BM)), column sb_n of B.
  constexpr int SLA = kBK * C::BM / kThreads, SLB = kBK * C::BN / kThreads;
  constexpr int SRA = kThreads / C::BM, SRB = kThreads / C::BN;
  const int sa_m = tid % C::BM, sa_r = tid / C::BM, sb_n = tid % C::BN, sb_r = tid / C::BN;
  const int64_t sb_col = grp * g.ig + c0 + sb_n;
  // The scalar path's A column: offset of (tap, o) relative to the pixel's diff_dst offset, and sy, sx.
  int64_t sa_off = 0;
  int sa_sy = 0, sa_sx = 0;
  bool sa_ok = false, sb_ok = false;
  // Per slab row: diff_dst offset of (n, iy·sh, ix·sw), src offset of (n, iy, ix), iy·sh, ix·sw; rows past
  // the chunk: src −1 and oy0 far below 0, so every A and B element of the row is zero-filled.
  struct __align__(16) RowPx {
    int64_t dd, src;
    int oy0, ox0, pad0, pad1;
  };
  __shared__ RowPx row_px[kVec ? 1 : 2][kVec ? 1 : kBK];

  Col a_c{};
  if constexpr (kVec) {
    a_c = column(m0 + a_m);
    a_c.ok = a_c.ok && a_act;
  } else {
    const Col c = column(m0 + sa_m);
    sa_ok = c.ok;
    sa_sy = c.sy;
    sa_sx = c.sx;
    sa_off = int64_t{c.sy} * ar.dd.sh + int64_t{c.sx} * ar.dd.sw + c.col;
    sb_ok = c0 + sb_n < g.ig;
  }

  // Pixel cursors. kVec: the thread's slab rows, c0r at row warp, c1r at row warp + 8; when both operands have
  // the same Q < 32 (64×64) a thread only ever uses slot lane / Q: one cursor, c0r, at that row. Scalar:
  // threads 0..15 keep c0r at row tid for the row table.
  // `left` = pixels of the chunk from the current slab's first row on (a row r is in the chunk if r < left).
  constexpr bool kOneCursor = !kVec || (QA == QB && QA < 32);
  const int row0 = !kVec ? tid % kBK : kOneCursor ? warp + 8 * a_slot : warp;
  PixelCursor c0r{}, c1r{};
  c0r.init(kb + row0, g);
  if constexpr (!kOneCursor) c1r.init(kb + row0 + 8, g);
  int left = klen;
  // The cursor and slab row of an operand's load l (a select for Q < 32 with two cursors).
  auto pixel = [&](int q, int slot_l, PixelCursor& pc) -> int {
    if (kOneCursor) {
      pc = c0r;
      return row0;
    }
    if (q == 32) {
      pc = slot_l == 0 ? c0r : c1r;  // slot_l is the unrolled l: resolved at compile time
    } else {
      pc.n = slot_l ? c1r.n : c0r.n;
      pc.iy = slot_l ? c1r.iy : c0r.iy;
      pc.ix = slot_l ? c1r.ix : c0r.ix;
    }
    return warp + 8 * slot_l;
  };
  // Scalar: row table entry of slab row tid (< kBK) at the cursor, for the slab `left` describes.
  auto fill_rows = [&](int buf) {
    if (tid < kBK) {
      RowPx r{};
      if (tid < left) {
        r.dd = pixel_offset(ar.dd, c0r.n, c0r.iy * sh, c0r.ix * sw);
        r.src = pixel_offset(ar.src, c0r.n, c0r.iy, c0r.ix);
        r.oy0 = c0r.iy * sh;
        r.ox0 = c0r.ix * sw;
      } else {
        r.dd = 0;
        r.src = -1;
        r.oy0 = r.ox0 = -(1 << 30);
      }
      row_px[buf][tid] = r;
    }
  };

  // Slab it + 1 goes straight to shared buffer `buf` with cp.async (no staging registers, no shared stores:
  // a 128×128 tile then holds its 64 accumulators, the FFMA operands and the loader state in 128 registers
  // without spills); the copies are issued before the FFMAs of slab it and waited for after them, so each
  // has a whole slab of FFMAs to arrive. Rows past the chunk and pixels whose output position falls
  // outside the image are zero-filled.
  auto fetch = [&](int buf) {
    if constexpr (kVec) {
      if (a_act) {
#pragma unroll
        for (int l = 0; l < LA; ++l) {
          PixelCursor pc;
          const int row = pixel(QA, a_slot + l, pc);
          bool ok = false;
          int64_t off = 0;
          if (a_c.ok && row < left) {
            const int oy = pc.iy * sh + a_c.sy, ox = pc.ix * sw + a_c.sx;
            ok = oy >= 0 && oy < h_out && ox >= 0 && ox < w_out;
            if (ok) off = pixel_offset(ar.dd, pc.n, oy, ox) + a_c.col;
          }
          copy4_async<true>(&As[buf][row][a_m], ddp, off, ok ? 4 : 0);
        }
      }
      if (b_act) {
#pragma unroll
        for (int l = 0; l < LB; ++l) {
          PixelCursor pc;
          const int row = pixel(QB, b_slot + l, pc);
          copy4_async<true>(&Bs[buf][row][b_n], sp, pixel_offset(ar.src, pc.n, pc.iy, pc.ix) + b_col,
                            row < left ? b_cols : 0);
        }
      }
    } else {
#pragma unroll
      for (int l = 0; l < SLA; ++l) {
        const int row = sa_r + l * SRA;
        const RowPx r = row_px[buf][row];
        const bool ok = sa_ok && static_cast<unsigned>(r.oy0 + sa_sy) < static_cast<unsigned>(h_out) &&
                        static_cast<unsigned>(r.ox0 + sa_sx) < static_cast<unsigned>(w_out);
        cp_async_ca<4>(&As[buf][row][sa_m], ok ? ddp + r.dd + sa_off : ddp, ok);
      }
#pragma unroll
      for (int l = 0; l < SLB; ++l) {
        const int row = sb_r + l * SRB;
        const int64_t so = row_px[buf][row].src;
        const bool ok = sb_ok && so >= 0;
        cp_async_ca<4>(&Bs[buf][row][sb_n], ok ? sp + so + sb_col : sp, ok);
      }
    }
    cuda_tc::cp_async_commit();
    c0r.advance(w_in, h_in);
    if constexpr (!kOneCursor) c1r.advance(w_in, h_in);
    left -= kBK;
    if constexpr (!kVec) fill_rows(buf ^ 1);  // the next slab's rows (read after the next barrier)
  };

  float acc[C::TM][C::TN];
#pragma unroll
  for (int i = 0; i < C::TM; ++i)
#pragma unroll
    for (int j = 0; j < C::TN; ++j) acc[i][j] = 0.f;
  const Place<C> pl;

  if (nslabs > 0) {
    if constexpr (!kVec) {
      fill_rows(0);
      __syncthreads();  // (block-uniform branch) slab 0's row table
    }
    fetch(0);
  }
  for (int it = 0; it < nslabs; ++it) {
    cuda_tc::cp_async_wait<0>();  // slab it has landed (this thread's copies) ...
    __syncthreads();              // ... for every thread, and every thread is done with slab it − 1's buffer
    const bool more = it + 1 < nslabs;
    if (more) fetch((it + 1) & 1);
    fma_slab<C>(As[it & 1], Bs[it & 1], acc, pl);
  }

  // Element e = ((g·Og + o)·taps + tap)·Ig + c of partial s (every (o, c) of the tile is written, zeros too).
  float* __restrict__ out = ar.direct ? ar.out : ar.out + s * ar.outs;
#pragma unroll
  for (int i = 0; i < C::TM; ++i) {
    const int64_t m = m0 + pl.row(i);
    if (m >= ar.m_rows) continue;
    const int64_t tap = m / g.og, o = m % g.og;
    const int64_t base = ((grp * g.og + o) * taps + tap) * g.ig;
#pragma unroll
    for (int j = 0; j < C::TN; ++j) {
      const int64_t c = c0 + pl.col(j);
      if (c >= g.ig) continue;
      float* dst = out + base + c;
      *dst = (ar.direct && ar.accumulate) ? *dst + acc[i][j] : acc[i][j];
    }
  }
}

// Bias sums over S·R equal ranges of the n·h_out·w_out pixels: block (range r, 32 channels); warp w sums
// the w-th eighth of the range in pixel order (4 loads in flight), then warp sums are added in warp order.
// out[r·c_out + o].
__global__ void __launch_bounds__(kThreads) bias_sums(KView dd, KGeom g, int64_t px_total, int64_t ranges,
                                                      float* __restrict__ out) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  const int64_t r = blockIdx.x, o = int64_t{blockIdx.y} * 32 + lane;
  const int64_t beg = r * px_total / ranges, end = (r + 1) * px_total / ranges;
  const int64_t per = (end - beg + kThreads / 32 - 1) / (kThreads / 32);
  const int64_t wb = min(end, beg + w * per), we = min(end, wb + per);
  const float* __restrict__ d = static_cast<const float*>(dd.data);
  float acc = 0.f;
  if (o < g.c_out && wb < we) {
    int64_t ox = wb % g.w_out;
    const int64_t t = wb / g.w_out;
    int64_t oy = t % g.h_out, n = t / g.h_out;
    int64_t row = n * dd.sn + oy * dd.sh + o;
    for (int64_t px = wb; px < we; px += 4) {
      const int cnt = static_cast<int>(min(int64_t{4}, we - px));
      int64_t off[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        off[u] = row + ox * dd.sw;
        if (u < cnt && ++ox == g.w_out) {
          ox = 0;
          if (++oy == g.h_out) {
            oy = 0;
            ++n;
          }
          row = n * dd.sn + oy * dd.sh + o;
        }
      }
      float v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) v[u] = u < cnt ? __ldg(d + off[u]) : 0.f;
#pragma unroll
      for (int u = 0; u < 4; ++u)
        if (u < cnt) acc += v[u];
    }
  }
  __shared__ float red[kThreads / 32][32];
  red[w][lane] = acc;
  __syncthreads();
  if (w == 0 && o < g.c_out) {
    float sum = red[0][lane];
    for (int k = 1; k < kThreads / 32; ++k) sum += red[k][lane];
    out[r * g.c_out + o] = sum;
  }
}

// out[r·out_stride + e] (+)= Σ_{j < G} in[(r·G + j)·in_stride + e] in order of j (rows past rows_in absent).
__global__ void group_sums(const float* __restrict__ in, int64_t in_stride, int64_t rows_in, int64_t G,
                           float* __restrict__ out, int64_t out_stride, int64_t rows_out, int64_t count,
                           bool accumulate) {
  const int64_t total = rows_out * count;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / count, e = i % count;
    const int64_t j1 = min(rows_in, (r + 1) * G);
    float acc = 0.f;
#pragma unroll 4
    for (int64_t j = r * G; j < j1; ++j) acc += in[j * in_stride + e];
    float* dst = out + r * out_stride + e;
    *dst = accumulate ? *dst + acc : acc;
  }
}

template <class C, bool kVec>
core::Status launch_gemm(const WgradArgs& ar, int64_t blocks, cudaStream_t stream) {
  wgrad_kernel<C, kVec><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(ar);
  return cuda_backend::check_launch("cuda_simt_f32 bwd_weights");
}

}  // namespace

int wgrad_tile(const core::Problem& p) { return make_wplan(p, p.with_bias).tile; }
int64_t wgrad_splits(const core::Problem& p) { return make_wplan(p, p.with_bias).splits; }

std::size_t wgrad_workspace_bytes(const core::Problem& p) {
  return static_cast<std::size_t>(make_wplan(p, p.with_bias).ws_floats) * sizeof(float);
}

core::Status launch_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  // with_bias but nowhere to put it: the same split without the bias partials.
  const WPlan w = make_wplan(p, p.with_bias && a.diff_bias != nullptr);
  auto* ws = static_cast<float*>(workspace);
  if (w.ws_floats > 0 && ws == nullptr) return core::invalid("cuda_simt_f32 bwd_weights needs device workspace");
  const bool direct = w.splits == 1;

  WgradArgs ar{};
  ar.src = cuda_direct::kview(a.src);
  ar.dd = cuda_direct::kview(a.diff_dst);
  ar.out = direct ? a.diff_wei : ws;
  ar.g = cuda_direct::kgeom(g);
  ar.m_rows = w.m_rows;
  ar.mt = w.mt;
  ar.nt = w.nt;
  ar.pixels = w.pixels;
  ar.chunk = w.chunk;
  ar.outs = w.outs;
  ar.direct = direct;
  ar.accumulate = p.accumulate;
  // 16-byte loads of diff_dst along o (Og % 4 keeps four columns in one tap) and of src along c.
  const bool vec = g.ig() % 4 == 0 && g.og() % 4 == 0 && view_aligned(a.src) && view_aligned(a.diff_dst);
  const int64_t blocks = w.splits * w.mt * w.nt * g.groups;
  core::Status st = with_tile(w.tile, [&](auto tile) -> core::Status {
    using C = decltype(tile);
    return vec ? launch_gemm<C, true>(ar, blocks, stream) : launch_gemm<C, false>(ar, blocks, stream);
  });
  if (!st.ok()) return st;

  if (w.bias_count > 0) {
    const int64_t ranges = w.splits * w.bias_sub;
    const dim3 grid(static_cast<unsigned>(ranges), static_cast<unsigned>(ceil_div(g.c_out, 32)));
    bias_sums<<<grid, kThreads, 0, stream>>>(ar.dd, ar.g, w.px_out, ranges, ws + w.off_bias);
    if (auto s2 = cuda_backend::check_launch("cuda_simt_f32 bias sums"); !s2.ok()) return s2;
    // R consecutive range sums into bias partial s (or straight into diff_bias when unsplit).
    float* dst = direct ? a.diff_bias : ws + w.wei_count;
    const int64_t dst_stride = direct ? 0 : w.outs;
    group_sums<<<cuda_direct::grid_for(w.splits * g.c_out, 256), 256, 0, stream>>>(
        ws + w.off_bias, g.c_out, ranges, w.bias_sub, dst, dst_stride, w.splits, g.c_out, direct && p.accumulate);
    if (auto s2 = cuda_backend::check_launch("cuda_simt_f32 bias group sums"); !s2.ok()) return s2;
  }
  if (direct) return core::Status::ok_status();

  const float* partial = ws;
  int64_t chunks = w.splits;
  if (w.group > 1) {
    group_sums<<<cuda_direct::grid_for(w.splits2 * w.outs, 256), 256, 0, stream>>>(
        ws, w.outs, w.splits, w.group, ws + w.off_group, w.outs, w.splits2, w.outs, false);
    if (auto s2 = cuda_backend::check_launch("cuda_simt_f32 split-K group sums"); !s2.ok()) return s2;
    partial = ws + w.off_group;
    chunks = w.splits2;
  }
  return cuda_direct::launch_reduce_partials(partial, chunks, w.wei_count, w.bias_count, a.diff_wei, a.diff_bias,
                                             p.accumulate, stream);
}

}  // namespace tconv::cuda_simt
