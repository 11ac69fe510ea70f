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
  // 2.5 TB/s. At least 64 pixels (8 slabs) per chunk.
  const int64_t s_cap = std::max<int64_t>(
      1, std::min<int64_t>({w.pixels / 64, kMaxPartials / std::max<int64_t>(1, w.outs), 4096}));
  double best = std::numeric_limits<double>::infinity();
  for (int t = 0; t < kTileCount; ++t) {
    if (forced_tile() >= 0 && t != forced_tile()) continue;
    const TileInfo& ti = kTiles[t];
    const int64_t mt = ceil_div(w.m_rows, ti.bm), nt = ceil_div(g.ig(), ti.bn);
    const int64_t tiles = mt * nt * g.groups;
    for (int64_t s = 1; s <= s_cap; ++s) {
      const int64_t chunk = ceil_div(ceil_div(w.pixels, s), kBK) * kBK;
      if (ceil_div(w.pixels, chunk) != s) continue;  // same chunk as a smaller S
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

// Walks the source pixels (n, iy, ix) of a chunk in steps of kBK without divisions; k counts pixels from the
// chunk's start (32-bit: decline_reason bounds sizes by 2^29 and pixels by 2^33, so a chunk and n fit).
struct PixelCursor {
  int k, n, iy, ix;
  __device__ __forceinline__ void init(int64_t kb, int k0, const KGeom& g) {
    k = k0;
    const int64_t pix = kb + k0;
    ix = static_cast<int>(pix % g.w_in);
    const int64_t t = pix / g.w_in;
    iy = static_cast<int>(t % g.h_in);
    n = static_cast<int>(t / g.h_in);
  }
  __device__ __forceinline__ void advance(int w_in, int h_in) {
    k += kBK;
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

  // A loader: slab row a_kk (a pixel), tile columns a_m .. a_m + 3 (four (tap, o)); with kVec they share the
  // tap (Og is a multiple of 4), otherwise each has its own.
  constexpr int kAE = kVec ? 1 : 4;
  const bool a_act = tid < kBK * C::BM / 4;
  const int a_kk = tid / (C::BM / 4), a_m = (tid % (C::BM / 4)) * 4;
  int a_sy[kAE], a_sx[kAE], a_col[kAE];
  bool a_okm[kAE];
#pragma unroll
  for (int e = 0; e < kAE; ++e) {
    const int64_t m = m0 + a_m + e;
    a_okm[e] = a_act && m < ar.m_rows;
    const int64_t tap = m / g.og, o = m % g.og, q = tap / g.kw, pp = tap % g.kw;
    a_sy[e] = static_cast<int>(-g.ph + g.dh * (g.kh - 1 - q));
    a_sx[e] = static_cast<int>(-g.pw + g.dw * (g.kw - 1 - pp));
    a_col[e] = static_cast<int>(grp * g.og + o);
  }
  // B loader: slab row b_kk, channels b_n .. b_n + 3.
  const bool b_act = tid < kBK * C::BN / 4;
  const int b_kk = tid / (C::BN / 4), b_n = (tid % (C::BN / 4)) * 4;
  const int b_cols = b_act ? clamp4(g.ig - (c0 + b_n)) : 0;
  const int64_t b_col = grp * g.ig + c0 + b_n;
  // With BM = BN both loaders read the same slab row: one cursor serves both.
  constexpr bool kOneCursor = C::BM == C::BN;
  PixelCursor ca, cb_own;
  ca.init(kb, a_kk, g);
  if constexpr (!kOneCursor) cb_own.init(kb, b_kk, g);
  const PixelCursor& cb = kOneCursor ? ca : cb_own;

  float4 ra, rb;
  auto fetch = [&]() {
    if constexpr (kVec) {
      int valid = 0;
      int64_t off = 0;
      if (a_okm[0] && ca.k < klen) {
        const int oy = ca.iy * sh + a_sy[0], ox = ca.ix * sw + a_sx[0];
        if (oy >= 0 && oy < h_out && ox >= 0 && ox < w_out) {
          valid = 4;
          off = ca.n * ar.dd.sn + oy * ar.dd.sh + ox * ar.dd.sw + a_col[0];
        }
      }
      ra = load4<true>(ddp, off, valid);
    } else {
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        v[e] = 0.f;
        if (a_okm[e] && ca.k < klen) {
          const int oy = ca.iy * sh + a_sy[e], ox = ca.ix * sw + a_sx[e];
          if (oy >= 0 && oy < h_out && ox >= 0 && ox < w_out)
            v[e] = __ldg(ddp + ca.n * ar.dd.sn + oy * ar.dd.sh + ox * ar.dd.sw + a_col[e]);
        }
      }
      ra = make_float4(v[0], v[1], v[2], v[3]);
    }
    rb = load4<kVec>(sp, cb.n * ar.src.sn + cb.iy * ar.src.sh + cb.ix * ar.src.sw + b_col, cb.k < klen ? b_cols : 0);
    ca.advance(w_in, h_in);
    if constexpr (!kOneCursor) cb_own.advance(w_in, h_in);
  };
  auto stash = [&](int buf) {
    if (a_act) *reinterpret_cast<float4*>(&As[buf][a_kk][a_m]) = ra;
    if (b_act) *reinterpret_cast<float4*>(&Bs[buf][b_kk][b_n]) = rb;
  };

  float acc[C::TM][C::TN];
#pragma unroll
  for (int i = 0; i < C::TM; ++i)
#pragma unroll
    for (int j = 0; j < C::TN; ++j) acc[i][j] = 0.f;
  const Place<C> pl;

  if (nslabs > 0) {
    fetch();
    stash(0);
  }
  __syncthreads();
  for (int it = 0; it < nslabs; ++it) {
    const bool more = it + 1 < nslabs;
    if (more) fetch();
    fma_slab<C>(As[it & 1], Bs[it & 1], acc, pl);
    if (more) stash((it + 1) & 1);
    __syncthreads();
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
