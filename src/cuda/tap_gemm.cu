// cuda_tap_gemm: the data and weight gradients of layers with few output channels per group (1–4) — fsrcnn's
// 56→1 9×9 output layer, dcgan's 64→3 — on the tensor cores, with the kernel taps as the GEMM's k.
//
// Why a separate algorithm. With Og output channels, the data gradient of one input pixel is
//   diff_src[pixel][c] = Σ_k A[pixel][k] · B[k][c],   k = (tq, tp, o) over kh·kw taps × Og channels,
//   A[pixel][k] = diff_dst[n][iy·sh − ph + dh·tq][ix·sw − pw + dw·tp][g·Og + o],
//   B[k][c]     = wei[g·Og + o][kh − 1 − tq][kw − 1 − tp][c]          (tq, tp: rotated tap indices)
// and the weight gradient is the same A, transposed, times the source image:
//   diff_wei[k][c] = Σ_pixel A[pixel][k] · src[pixel][c].
// cuda_tc_igemm takes the reduction per tap in 8-channel slices of Og, which for Og = 1 is 8× padding, and
// cuda_few_channels does the sums on the CUDA cores (about 7 TFLOP/s on fsrcnn_x3). Gathering the taps into k
// instead leaves K = Og·kh·kw (81 for fsrcnn, 48 for dcgan_g5) padded only to the mma's k (16, or 8 in tf32).
//
// A block owns a tile of 64 input pixels (tr rows × tc columns of one image). It stages the window of
// diff_dst that the tile's taps reach, [row][column][o], rounded to the operand type, once; an A element is
// then window[base(pixel) + off(k)] with base and off linear in the tile and tap coordinates, so the
// fragments are gathered straight from shared memory (no im2col buffer, each diff_dst value read from device
// memory once per tile). Entries with k ≥ K or pixels outside the image are masked to zero in the fragment,
// so an infinite diff_dst value never meets a padding zero. (diff_dst positions outside the image are staged as
// zeros, as the other implicit-GEMM algorithms zero-fill them: an infinite weight or source value meets them as
// 0·∞ where the reference has no term.)
//   bwd_data     grid (blocks, groups × 64-channel tiles), each block walking tiles gridDim.x apart; 4 warps ×
//                16 pixels × up to 64 channels; the weights, packed once per call into workspace as operand
//                bits in the shared-memory layout ([c][k]), copied in once per block.
//   bwd_weights  grid (pixel chunks, groups × 128-row k tiles × 64-channel tiles); the 4 warps split the
//                block's k × c tile 2 × 2 and walk the chunk's tiles, with the source tile staged as
//                [pixel][c] (ldmatrix.trans gives the B fragments); each chunk writes one float32 partial row
//                (weights, and the bias sum over a fixed share of diff_dst rows), which stream_reduce.cu adds
//                in a fixed order. The chunking depends on the problem only: deterministic.
// Precisions: bfloat16 images in bf16, float16 in fp16 (m16n8k16), float32 in tf32 (m16n8k8, rounded to nearest
// even when staged, as the reference rounds), and float32 in true fp32 on the CUDA cores (Fma32: the same tiles
// and staging, register-blocked multiply-adds in k order). The forward is declined (cuda_few_channels streams it).
// Measured (bench/results/cuda-h100-2026-11-24-s4): fsrcnn_x3 all three gradients 0.052 ms in bf16 (cuda_few_channels
// with cuda_channel_pad: 0.190), dcgan_g5 0.066 ms (0.124); after the branch-free gathers and the weight
// gradients' occupancy (bench/results/cuda-h100-2026-11-25-s11) 0.039 and 0.051 ms.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>

#include "cuda/algorithm_run.hpp"
#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"
#include "cuda/fast_div.hpp"
#include "cuda/igemm_mma.cuh"
#include "cuda/stream_common.cuh"
#include "cuda/tc_common.cuh"

namespace tconv::cuda_tap {
namespace {

using cuda_direct::KView;
using cuda_direct::kview;
using cuda_direct::MmaBf16;
using cuda_direct::MmaF16;
using cuda_direct::MmaTf32;

constexpr int kThreads = 128;       // 4 warps
constexpr int kTilePx = 64;         // pixels per tile
constexpr int kCTile = 64;          // channels per block: 8 n-tiles of 8
constexpr int kKRows = 128;         // weight gradient: k rows per block (8 m-tiles of 16)
constexpr int kMaxOg = 4;           // output channels per group taken
constexpr int kMinIg = 8;           // input channels per group: fewer leave the n-tiles mostly empty
constexpr int kMaxKData = 256;      // data gradient: the whole k (weights [64][k]) is staged at once
constexpr int kMaxK = 4096;         // weight gradient: k-row tiles of 128 over the grid
constexpr int kMaxWindow = 12288;   // window elements (48 KiB in tf32)
constexpr int kXPitch = 72;         // source-tile row pitch (elements): 16-bit rows 144 B, float rows ≡ 8 words
constexpr int kTargetBlocks = 512;  // blocks along x aimed at (both directions; a constant, not the GPU size)
constexpr std::size_t kMaxSmem = 100 * 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tuning hook: TCONV_TAP_GEMM_BLOCKS=<B> replaces kTargetBlocks (the weight gradient's chunk count, and so its
// summation order, then follows B instead of the constant; results stay deterministic for a fixed B).
int64_t target_blocks() {
  static const int64_t v = [] {
    const char* e = std::getenv("TCONV_TAP_GEMM_BLOCKS");
    const int64_t b = e != nullptr ? std::atoll(e) : 0;
    return b >= 1 ? std::min<int64_t>(b, 1 << 16) : int64_t{kTargetBlocks};
  }();
  return v;
}

// The staging loops divide every element index by the channel count and the window width: FastDiv
// (fast_div.hpp) does it in three instructions where the compiler's integer division takes about 20, and those
// divisions were most of the kernels' instructions.
using cuda_backend::FastDiv;

// Kernel arguments; spatial sizes fit in int (decline_reason bounds them), element offsets are 64-bit.
struct Params {
  KView img;  // bwd_data: diff_src (written); bwd_weights: src (read)
  KView dy;   // diff_dst
  const float* wei;
  const void* packed;  // bwd_data: weights packed by pack_kernel (workspace)
  float* part;
  int h_in, w_in, h_out, w_out, kh, kw, sh, sw, dh, dw, ph, pw, ig, og, c_out;
  int tr, tc, tc_shift, win_rows, win_cols, win_elems, K, Kp, wpitch, ctiles, ktiles, row_tiles, col_tiles;
  int64_t n, tiles, tiles_per_chunk, chunks, wei_count, row_len;
  int with_bias, vec;
  int rel32, dsh, dsw;  // window offsets in 32 bits (window_load), diff_dst's row and pixel strides then
  FastDiv div_og, div_win_cols, div_w_out, div_h_out;
};

struct Plan {
  Params k{};
  int64_t blocks = 0;  // bwd_data: blocks along x, each walking the tiles gridDim.x apart
  std::size_t smem = 0, workspace = 0;
  std::string why;
};

// True float32 (fp32 precision, float32 images) on the CUDA cores: the same tiles and staging, multiply-adds in
// registers instead of mma (kK = 1: k is not padded).
struct Fma32 {
  using elem = float;
  static constexpr int kK = 1;
};

// Operand staging types: 16-bit raw bits for bf16/fp16, float32 bits (rounded to tf32 for tf32) otherwise.
template <class M>
using Stage = std::conditional_t<M::kK == 16, uint16_t, uint32_t>;

template <class M>
__device__ __forceinline__ Stage<M> weight_bits(float v) {
  if constexpr (std::is_same_v<M, MmaBf16>) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  } else if constexpr (std::is_same_v<M, MmaF16>) {
    return __half_as_ushort(__float2half_rn(v));
  } else if constexpr (std::is_same_v<M, MmaTf32>) {
    return cuda_tc::tf32_rne_fast(__float_as_uint(v));
  } else {
    return __float_as_uint(v);
  }
}
// One image element as staged operand bits (the image type equals the operand type, or is float32 for tf32).
template <class M>
__device__ __forceinline__ Stage<M> image_bits(const void* base, int64_t i) {
  if constexpr (M::kK == 16) {
    return __ldg(static_cast<const unsigned short*>(base) + i);
  } else if constexpr (std::is_same_v<M, MmaTf32>) {
    return cuda_tc::tf32_rne_fast(__float_as_uint(__ldg(static_cast<const float*>(base) + i)));
  } else {
    return __float_as_uint(__ldg(static_cast<const float*>(base) + i));
  }
}
// One image element as float32, unrounded (the summands of the bias gradient are not multiply inputs).
template <class M>
__device__ __forceinline__ float image_value(const void* base, int64_t i) {
  if constexpr (std::is_same_v<M, MmaBf16>) {
    return __bfloat162float(__ldg(static_cast<const __nv_bfloat16*>(base) + i));
  } else if constexpr (std::is_same_v<M, MmaF16>) {
    return __half2float(__ldg(static_cast<const __half*>(base) + i));
  } else {
    return __ldg(static_cast<const float*>(base) + i);
  }
}
__device__ __forceinline__ uint32_t pack2(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// Where tile t sits: image, first input row and column.
struct TileAt {
  int64_t n;
  int iy0, ix0;
};
__device__ __forceinline__ TileAt tile_at(const Params& p, int64_t t) {
  const int64_t per_img = int64_t{p.row_tiles} * p.col_tiles;
  TileAt a;
  a.n = t / per_img;
  const int r = static_cast<int>(t - a.n * per_img);
  a.iy0 = (r / p.col_tiles) * p.tr;
  a.ix0 = (r % p.col_tiles) * p.tc;
  return a;
}

// Staging is split into loads into registers and stores to shared memory, and each thread issues a whole batch
// of loads before its first store: a loop that stores each value as it arrives waits one memory latency per
// element (a 972-element window took 8 round trips per tile, most of the first version's time).
constexpr int kWinBatch = 8;  // window elements per thread and round (kThreads·8 = 1024 per round)

// The diff_dst window of a tile: win[(r·win_cols + col)·og + o] = diff_dst[n][oy0 + r][ox0 + col][grp·og + o],
// zero outside the image. Round `round` covers elements [round·1024, round·1024 + 1024).
// kRel32 (Params::rel32: every element's offset from the window's origin fits 32 bits, true unless diff_dst's
// rows are over 2^31 / win_rows elements apart): the offset is r·sh + col·sw + o in 32-bit multiply-adds added to
// the origin's 64-bit offset, where the general form took three 64-bit products per element (ncu: the window
// staging was about a third of the data gradient's instructions).
template <class M, bool kRel32>
__device__ __forceinline__ void window_load(const Params& p, const TileAt& at, int grp, int round,
                                            Stage<M> (&v)[kWinBatch]) {
  const int oy0 = at.iy0 * p.sh - p.ph, ox0 = at.ix0 * p.sw - p.pw;
  const char* dyb = static_cast<const char*>(p.dy.data);
  const int64_t img_off = at.n * p.dy.sn + int64_t{grp} * p.og;
  const int64_t origin = img_off + int64_t{oy0} * p.dy.sh + int64_t{ox0} * p.dy.sw;
#pragma unroll
  for (int u = 0; u < kWinBatch; ++u) {
    const int i = (round * kWinBatch + u) * kThreads + threadIdx.x;
    const int rc = static_cast<int>(p.div_og.div(i)), o = i - rc * p.og;
    const int r = static_cast<int>(p.div_win_cols.div(rc)), col = rc - r * p.win_cols;
    const int oy = oy0 + r, ox = ox0 + col;
    v[u] = 0;
    if (i < p.win_elems && static_cast<unsigned>(oy) < static_cast<unsigned>(p.h_out) &&
        static_cast<unsigned>(ox) < static_cast<unsigned>(p.w_out)) {
      if constexpr (kRel32) {
        v[u] = image_bits<M>(dyb, origin + (r * p.dsh + col * p.dsw + o));
      } else {
        v[u] = image_bits<M>(dyb, img_off + oy * p.dy.sh + ox * p.dy.sw + o);
      }
    }
  }
}
template <class M>
__device__ __forceinline__ void window_store(const Params& p, int round, const Stage<M> (&v)[kWinBatch],
                                             Stage<M>* win) {
#pragma unroll
  for (int u = 0; u < kWinBatch; ++u) {
    const int i = (round * kWinBatch + u) * kThreads + threadIdx.x;
    if (i < p.win_elems) win[i] = v[u];
  }
}
template <class M, bool kRel32>
__device__ __forceinline__ void stage_window_rounds(const Params& p, const TileAt& at, int grp, Stage<M>* win) {
  for (int round = 0; round * kWinBatch * kThreads < p.win_elems; ++round) {
    Stage<M> v[kWinBatch];
    window_load<M, kRel32>(p, at, grp, round, v);
    window_store<M>(p, round, v, win);
  }
}
template <class M>
__device__ __forceinline__ void stage_window(const Params& p, const TileAt& at, int grp, Stage<M>* win) {
  if (p.rel32) {
    stage_window_rounds<M, true>(p, at, grp, win);
  } else {
    stage_window_rounds<M, false>(p, at, grp, win);
  }
}

// The source tile of the weight gradient: xs[m][c] = src[n][iy][ix][grp·ig + c0 + c], zero for pixels outside
// the image or c ≥ nc; 16-byte copies where the view allows (p.vec: all of them in flight at once), else
// elements in batches of 8.
template <class M>
__device__ __forceinline__ void stage_src(const Params& p, const TileAt& at, int grp, int c0, int nc, Stage<M>* xs) {
  using S = Stage<M>;
  constexpr int kVec = 16 / sizeof(S);
  const char* sb = static_cast<const char*>(p.img.data);
  const int64_t ch0 = int64_t{grp} * p.ig + c0;
  if (p.vec) {
    constexpr int kPerRow = kCTile / kVec, kPerThread = kTilePx * kPerRow / kThreads;
    uint4 v[kPerThread];
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      const int i = u * kThreads + threadIdx.x;
      const int m = i / kPerRow, cv = (i - m * kPerRow) * kVec;
      const int iy = at.iy0 + (m >> p.tc_shift), ix = at.ix0 + (m & (p.tc - 1));
      v[u] = make_uint4(0, 0, 0, 0);
      if (iy < p.h_in && ix < p.w_in && cv < nc) {
        const int64_t e = at.n * p.img.sn + int64_t{iy} * p.img.sh + int64_t{ix} * p.img.sw + ch0 + cv;
        v[u] = __ldg(reinterpret_cast<const uint4*>(sb + e * static_cast<int64_t>(sizeof(S))));
      }
    }
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      const int i = u * kThreads + threadIdx.x;
      const int m = i / kPerRow, cv = (i - m * kPerRow) * kVec;
      uint4 w = v[u];
      if constexpr (std::is_same_v<M, MmaTf32>) w = cuda_tc::tf32_rne_fast(w);
      *reinterpret_cast<uint4*>(xs + m * kXPitch + cv) = w;
    }
  } else {
    constexpr int kBatch = 8;
    for (int i0 = 0; i0 < kTilePx * kCTile; i0 += kBatch * kThreads) {
      S v[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int i = i0 + u * kThreads + threadIdx.x;
        const int m = i / kCTile, c = i - m * kCTile;
        const int iy = at.iy0 + (m >> p.tc_shift), ix = at.ix0 + (m & (p.tc - 1));
        v[u] = 0;
        if (iy < p.h_in && ix < p.w_in && c < nc)
          v[u] = image_bits<M>(sb, at.n * p.img.sn + int64_t{iy} * p.img.sh + int64_t{ix} * p.img.sw + ch0 + c);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int i = i0 + u * kThreads + threadIdx.x;
        xs[(i / kCTile) * kXPitch + i % kCTile] = v[u];
      }
    }
  }
}

// Offset of tap-channel k in the window (0 for k ≥ K; such entries are masked).
__device__ __forceinline__ int k_offset(const Params& p, int k) {
  if (k >= p.K) return 0;
  const int tap = k / p.og, o = k - tap * p.og;
  const int tq = tap / p.kw, tp = tap - tq * p.kw;
  return (p.dh * tq * p.win_cols + p.dw * tp) * p.og + o;
}
// Offset of weight row (tap-channel k of group grp) in the OHWI weights: wei[grp·og + o][kh−1−tq][kw−1−tp][·].
__device__ __forceinline__ int64_t weight_row(const Params& p, int grp, int k) {
  const int tap = k / p.og, o = k - tap * p.og;
  const int tq = tap / p.kw, tp = tap - tq * p.kw;
  return ((int64_t{grp} * p.og + o) * p.kh + (p.kh - 1 - tq)) * p.kw * p.ig + int64_t{p.kw - 1 - tp} * p.ig;
}
// Offset of tile pixel m's window origin.
__device__ __forceinline__ int px_base(const Params& p, int m) {
  const int ry = m >> p.tc_shift, rx = m & (p.tc - 1);
  return (ry * p.sh * p.win_cols + rx * p.sw) * p.og;
}

// Bias: Σ diff_dst over chunk's share of the (image, output row) rows, per output channel of the group, by the
// group's first k/c block; per-thread sums in a fixed order, then a fixed tree over the threads.
template <class M>
__device__ __forceinline__ void bias_partial(const Params& p, int grp, int64_t chunk, float* red, float* prow) {
  const int64_t rows = p.n * p.h_out, per = (rows + p.chunks - 1) / p.chunks;
  const int64_t r0 = chunk * per, r1 = min(rows, r0 + per);
  float s[kMaxOg] = {};
  const char* dyb = static_cast<const char*>(p.dy.data);
  // (row, ox) pairs of the share in order; the share is at most a few thousand pixels, so 32-bit indices.
  const int count = static_cast<int>(max(int64_t{0}, r1 - r0) * p.w_out);
  const int64_t n0 = r0 / p.h_out;
  const int oy0 = static_cast<int>(r0 - n0 * p.h_out);
  for (int i = threadIdx.x; i < count; i += kThreads) {
    const int dr = static_cast<int>(p.div_w_out.div(i)), ox = i - dr * p.w_out;
    const int dn = static_cast<int>(p.div_h_out.div(oy0 + dr));  // images past n0 (oy0 + dr < 2^31)
    const int64_t n = n0 + dn;
    const int oy = oy0 + dr - dn * p.h_out;
    const int64_t e = n * p.dy.sn + int64_t{oy} * p.dy.sh + int64_t{ox} * p.dy.sw + int64_t{grp} * p.og;
#pragma unroll
    for (int o = 0; o < kMaxOg; ++o)
      if (o < p.og) s[o] += image_value<M>(dyb, e + o);
  }
#pragma unroll
  for (int o = 0; o < kMaxOg; ++o) red[o * kThreads + threadIdx.x] = s[o];
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half)
      for (int o = 0; o < p.og; ++o) red[o * kThreads + threadIdx.x] += red[o * kThreads + threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x < p.og) prow[p.wei_count + int64_t{grp} * p.og + threadIdx.x] = red[threadIdx.x * kThreads];
}

// ---- packed weights (data gradient) --------------------------------------------------------------------------
// The data-gradient blocks read their weights as operand bits in the shared-memory layout, packed once per call
// into workspace by pack_kernel: per (group, channel tile), [c][wpitch] for the mma kinds (B as [c][k], rounded),
// [k][64] floats for Fma32. Staging them from the float32 OHWI weights in every block (index arithmetic per
// element) cost more than the block's multiplies.
template <class M>
__global__ void __launch_bounds__(256) pack_kernel(Params p, Stage<M>* out) {
  const int per = std::is_same_v<M, Fma32> ? p.K * kCTile : kCTile * p.wpitch;
  const int64_t total = int64_t{per} * p.ctiles * (p.c_out / p.og);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int gt = static_cast<int>(i / per), r = static_cast<int>(i - int64_t{gt} * per);
    const int grp = gt / p.ctiles, c0 = (gt % p.ctiles) * kCTile;
    int k, c;
    if constexpr (std::is_same_v<M, Fma32>) {
      k = r / kCTile;
      c = r - k * kCTile;
    } else {
      c = r / p.wpitch;
      k = r - c * p.wpitch;
    }
    float v = 0.f;
    if (k < p.K && c0 + c < p.ig) {
      const int tap = k / p.og, o = k - tap * p.og;
      const int tq = tap / p.kw, tp = tap - tq * p.kw;
      v = p.wei[((int64_t{grp} * p.og + o) * p.kh + (p.kh - 1 - tq)) * p.kw * p.ig + int64_t{p.kw - 1 - tp} * p.ig +
                c0 + c];
    }
    out[i] = weight_bits<M>(v);
  }
}
// Copies block tile `gt`'s packed weights (n16 16-byte words) into shared memory.
__device__ __forceinline__ void copy_packed(const Params& p, int gt, void* dst, int n16) {
  const uint4* src = reinterpret_cast<const uint4*>(p.packed) + int64_t{gt} * n16;
  uint4* d = static_cast<uint4*>(dst);
  constexpr int kBatch = 8;
  for (int i0 = 0; i0 < n16; i0 += kBatch * kThreads) {
    uint4 v[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = i0 + u * kThreads + threadIdx.x;
      if (i < n16) v[u] = __ldg(src + i);
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      const int i = i0 + u * kThreads + threadIdx.x;
      if (i < n16) d[i] = v[u];
    }
  }
}

// ---- data gradient ---------------------------------------------------------------------------------------
// smem: offk[Kp] int | wsm[64][wpitch] (B as [c][k]) | win[win_elems]
template <class M>
__global__ void __launch_bounds__(kThreads) dx_kernel(Params p) {
  using S = Stage<M>;
  extern __shared__ uint4 smem4[];
  int* offk = reinterpret_cast<int*>(smem4);
  S* wsm = reinterpret_cast<S*>(offk + p.Kp);
  S* win = wsm + kCTile * p.wpitch;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int grp = blockIdx.y / p.ctiles, c0 = (blockIdx.y % p.ctiles) * kCTile;
  const int nc = min(kCTile, p.ig - c0);
  for (int k = threadIdx.x; k < p.Kp; k += kThreads) offk[k] = k_offset(p, k);
  copy_packed(p, blockIdx.y, wsm, static_cast<int>(int64_t{kCTile} * p.wpitch * sizeof(S) / 16));
  const int ma = warp * 16 + gid, mb = ma + 8;
  const int ba = px_base(p, ma), bb = px_base(p, mb);
  const int njt = (nc + 7) / 8;
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
  const TileAt at = tile_at(p, t);
  __syncthreads();  // the previous tile's window reads are done
  stage_window<M>(p, at, grp, win);
  __syncthreads();

  float acc[8][4] = {};
#pragma unroll 2
  for (int k0 = 0; k0 < p.Kp; k0 += M::kK) {
    // Entries k ≥ K (offset 0: inside the window) are loaded and masked to zero, not branched around (a
    // branch per element, see dw_kernel).
    uint32_t a[4];
    if constexpr (M::kK == 16) {
      const int k = k0 + tig * 2;
      const int o0 = offk[k], o1 = offk[k + 1], o2 = offk[k + 8], o3 = offk[k + 9];
      const uint32_t m01 = (k < p.K ? 0xffffu : 0u) | (k + 1 < p.K ? 0xffff0000u : 0u);
      const uint32_t m23 = (k + 8 < p.K ? 0xffffu : 0u) | (k + 9 < p.K ? 0xffff0000u : 0u);
      a[0] = pack2(win[ba + o0], win[ba + o1]) & m01;
      a[1] = pack2(win[bb + o0], win[bb + o1]) & m01;
      a[2] = pack2(win[ba + o2], win[ba + o3]) & m23;
      a[3] = pack2(win[bb + o2], win[bb + o3]) & m23;
    } else {
      const int k = k0 + tig;
      const int o0 = offk[k], o1 = offk[k + 4];
      const uint32_t m0 = k < p.K ? ~0u : 0u, m1 = k + 4 < p.K ? ~0u : 0u;
      a[0] = win[ba + o0] & m0;
      a[1] = win[bb + o0] & m0;
      a[2] = win[ba + o1] & m1;
      a[3] = win[bb + o1] & m1;
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (j < njt) {
        uint32_t b[2];
        const S* wr = wsm + (j * 8 + gid) * p.wpitch + k0;
        if constexpr (M::kK == 16) {
          b[0] = *reinterpret_cast<const uint32_t*>(wr + tig * 2);
          b[1] = *reinterpret_cast<const uint32_t*>(wr + tig * 2 + 8);
        } else {
          b[0] = wr[tig];
          b[1] = wr[tig + 4];
        }
        M::mma(acc[j], a, b);
      }
    }
  }

  // Epilogue: rows ma, mb; columns j·8 + 2·tig, +1 of the channel tile.
  using E = typename M::elem;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = h == 0 ? ma : mb;
    const int iy = at.iy0 + (m >> p.tc_shift), ix = at.ix0 + (m & (p.tc - 1));
    if (iy >= p.h_in || ix >= p.w_in) continue;
    E* row = static_cast<E*>(p.img.data) + at.n * p.img.sn + int64_t{iy} * p.img.sh + int64_t{ix} * p.img.sw +
             int64_t{grp} * p.ig + c0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int c = j * 8 + tig * 2;
      if (j >= njt || c >= nc) continue;
      const float v0 = acc[j][h * 2], v1 = acc[j][h * 2 + 1];
      E* dst = row + c;
      const bool pair = c + 1 < nc;
      if constexpr (std::is_same_v<E, float>) {
        if (pair && (reinterpret_cast<uintptr_t>(dst) & 7) == 0) {
          *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
        } else {
          dst[0] = v0;
          if (pair) dst[1] = v1;
        }
      } else {
        if (pair && (reinterpret_cast<uintptr_t>(dst) & 3) == 0) {
          E two[2] = {M::cvt(v0), M::cvt(v1)};
          *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(two);
        } else {
          dst[0] = M::cvt(v0);
          if (pair) dst[1] = M::cvt(v1);
        }
      }
    }
  }
  }  // tiles
}

// ---- weight gradient -------------------------------------------------------------------------------------
// smem: red[og][128] float (bias) | xs[64][kXPitch] (B as [pixel][c]) | win[win_elems]
// Registers: tf32 is held to four blocks per SM (128; left to itself the compiler took 168, three blocks, and the
// 512 blocks ran in 1.3 waves; the spill is in the scalar source staging only); a minimum of 0 leaves the 16-bit
// kernels as the compiler sizes them (128 registers).
template <class M>
__global__ void __launch_bounds__(kThreads, M::kK == 8 ? 4 : 0) dw_kernel(Params p) {
  using S = Stage<M>;
  extern __shared__ uint4 smem4[];
  float* red = reinterpret_cast<float*>(smem4);
  S* xs = reinterpret_cast<S*>(red + kMaxOg * kThreads);
  S* win = xs + kTilePx * kXPitch;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const int64_t chunk = blockIdx.x;
  const int per_grp = p.ktiles * p.ctiles;
  const int grp = blockIdx.y / per_grp, kt = (blockIdx.y % per_grp) / p.ctiles, ct = blockIdx.y % p.ctiles;
  const int kb = kt * kKRows, c0 = ct * kCTile;
  const int nc = min(kCTile, p.ig - c0), kn = min(kKRows, p.K - kb);
  const int wm = warp >> 1, wn = warp & 1;  // m-tiles wm, wm + 2, ...; n-tiles wn, wn + 2, ...
  // Window offsets of the thread's two A rows per m-tile (gid, gid + 8), in registers for the whole chunk.
  int ko[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    ko[i][0] = k_offset(p, kb + (wm + 2 * i) * 16 + gid);
    ko[i][1] = k_offset(p, kb + (wm + 2 * i) * 16 + gid + 8);
  }

  float acc[4][4][4] = {};
  const int64_t t_begin = chunk * p.tiles_per_chunk, t_end = min(p.tiles, t_begin + p.tiles_per_chunk);
  for (int64_t t = t_begin; t < t_end; ++t) {
    const TileAt at = tile_at(p, t);
    __syncthreads();  // the previous tile's fragments are read
    stage_window<M>(p, at, grp, win);
    stage_src<M>(p, at, grp, c0, nc, xs);
    __syncthreads();
    // Pixel validity of the tile (bit m): an outside pixel's source row is zero, and its A entries are masked
    // so that an infinite diff_dst there cannot make 0·∞.
    const int rows_in = min(p.tr, p.h_in - at.iy0), cols_in = min(p.tc, p.w_in - at.ix0);
    auto px_ok = [&](int m) { return (m >> p.tc_shift) < rows_in && (m & (p.tc - 1)) < cols_in; };
    // Not unrolled: with the gathers unconditional the compiler hoists every k step's loads and spills.
#pragma unroll 1
    for (int ks = 0; ks < kTilePx; ks += M::kK) {
      // A (rows k, columns pixels): this thread's pixel columns, their window origins and masks. Every A element
      // is loaded (a tile pixel's window origin plus any tap offset lies inside the window, whether or not the
      // pixel is in the image) and masked afterwards: a masked load per element made the compiler branch around
      // each one and recompute its address inside the branch (about 12 instructions per element).
      int bp[4];
      uint32_t mk[2];  // 16-bit: the masks of pixel pairs (0, 1) and (2, 3); tf32: of pixels 0 and 1
      if constexpr (M::kK == 16) {
        const int pc[4] = {ks + tig * 2, ks + tig * 2 + 1, ks + tig * 2 + 8, ks + tig * 2 + 9};
#pragma unroll
        for (int u = 0; u < 4; ++u) bp[u] = px_base(p, pc[u]);
        mk[0] = (px_ok(pc[0]) ? 0xffffu : 0u) | (px_ok(pc[1]) ? 0xffff0000u : 0u);
        mk[1] = (px_ok(pc[2]) ? 0xffffu : 0u) | (px_ok(pc[3]) ? 0xffff0000u : 0u);
      } else {
        const int pc[2] = {ks + tig, ks + tig + 4};
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          bp[u] = px_base(p, pc[u]);
          mk[u] = px_ok(pc[u]) ? ~0u : 0u;
        }
      }
      // B (rows pixels, columns channels) for this warp's n-tiles.
      uint32_t b[4][2];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int nj = wn + 2 * j;
        if (nj * 8 >= nc) continue;
        if constexpr (M::kK == 16) {
          cuda_tc::ldmatrix_x2_trans(b[j], xs + (ks + (lane & 15)) * kXPitch + nj * 8);
        } else {
          b[j][0] = xs[(ks + tig) * kXPitch + nj * 8 + gid];
          b[j][1] = xs[(ks + tig + 4) * kXPitch + nj * 8 + gid];
        }
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int mi = wm + 2 * i;
        if (mi * 16 >= kn) continue;
        const int oa = ko[i][0], ob = ko[i][1];
        uint32_t a[4];
        if constexpr (M::kK == 16) {
          a[0] = pack2(win[bp[0] + oa], win[bp[1] + oa]) & mk[0];
          a[1] = pack2(win[bp[0] + ob], win[bp[1] + ob]) & mk[0];
          a[2] = pack2(win[bp[2] + oa], win[bp[3] + oa]) & mk[1];
          a[3] = pack2(win[bp[2] + ob], win[bp[3] + ob]) & mk[1];
        } else {
          a[0] = win[bp[0] + oa] & mk[0];
          a[1] = win[bp[0] + ob] & mk[0];
          a[2] = win[bp[1] + oa] & mk[1];
          a[3] = win[bp[1] + ob] & mk[1];
        }
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int nj = wn + 2 * j;
          if (nj * 8 < nc) M::mma(acc[i][j], a, b[j]);
        }
      }
    }
  }

  // Partial row of this chunk: k = kb + row → wei[grp·og + o][kh−1−tq][kw−1−tp][c0 + c]; the weight row of each of
  // the thread's two rows per m-tile is found once.
  float* prow = p.part + chunk * p.row_len;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int mi = wm + 2 * i;
    if (mi * 16 >= kn) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = mi * 16 + gid + 8 * h;
      if (r >= kn) continue;
      float* w = prow + weight_row(p, grp, kb + r) + c0;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = (wn + 2 * j) * 8 + tig * 2;
        if (c < nc) w[c] = acc[i][j][2 * h];
        if (c + 1 < nc) w[c + 1] = acc[i][j][2 * h + 1];
      }
    }
  }

  if (p.with_bias && kt == 0 && ct == 0) bias_partial<M>(p, grp, chunk, red, prow);
}

// ---- true float32 on the CUDA cores -------------------------------------------------------------------------
// Data gradient. smem: offk[K] int | wsm[K][64] float (weights k-major, a thread's 8 channels are two float4) |
// win. Thread t owns pixels t/8 + 16·i (i < 4) × channels 8·(t % 8) .. +7: per k, 4 gathered window loads and
// two weight loads feed 32 multiply-adds; k runs in order, so every sum has a fixed order.
__global__ void __launch_bounds__(kThreads) dx_fma_kernel(Params p) {
  extern __shared__ uint4 smem4[];
  int* offk = reinterpret_cast<int*>(smem4);
  float* wsm = reinterpret_cast<float*>(offk + (p.K + 3) / 4 * 4);  // 16-byte aligned for the float4 loads
  uint32_t* win = reinterpret_cast<uint32_t*>(wsm + p.K * kCTile);
  const int grp = blockIdx.y / p.ctiles, c0 = (blockIdx.y % p.ctiles) * kCTile;
  const int nc = min(kCTile, p.ig - c0);
  for (int k = threadIdx.x; k < p.K; k += kThreads) offk[k] = k_offset(p, k);
  copy_packed(p, blockIdx.y, wsm, p.K * kCTile * 4 / 16);
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
  const TileAt at = tile_at(p, t);
  __syncthreads();
  stage_window<Fma32>(p, at, grp, win);
  __syncthreads();

  const int pg = threadIdx.x >> 3, cg = threadIdx.x & 7;
  int base[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) base[i] = px_base(p, pg + 16 * i);
  float acc[4][8] = {};
  const float* wc = wsm + cg * 8;
#pragma unroll 4
  for (int k = 0; k < p.K; ++k) {
    const int off = offk[k];
    float a[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = __uint_as_float(win[base[i] + off]);
    const float4 w0 = *reinterpret_cast<const float4*>(wc + k * kCTile);
    const float4 w1 = *reinterpret_cast<const float4*>(wc + k * kCTile + 4);
    const float w[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], w[j], acc[i][j]);
  }
  const int cb = cg * 8;
  if (cb >= nc) continue;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = pg + 16 * i;
    const int iy = at.iy0 + (m >> p.tc_shift), ix = at.ix0 + (m & (p.tc - 1));
    if (iy >= p.h_in || ix >= p.w_in) continue;
    float* dst = static_cast<float*>(p.img.data) + at.n * p.img.sn + int64_t{iy} * p.img.sh +
                 int64_t{ix} * p.img.sw + int64_t{grp} * p.ig + c0 + cb;
    if (cb + 8 <= nc && (reinterpret_cast<uintptr_t>(dst) & 15) == 0) {
      reinterpret_cast<float4*>(dst)[0] = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      reinterpret_cast<float4*>(dst)[1] = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)
        if (cb + j < nc) dst[j] = acc[i][j];
    }
  }
  }  // tiles
}

// Weight gradient. smem as dw_kernel's. Thread t owns k rows t/8 + 16·i (i < kRows) × channels
// 8·(t % 8) .. +7 (8·kRows accumulators); per pixel of the tile, kRows gathered window loads and two float4 source
// loads feed 8·kRows multiply-adds. Pixels outside the image are skipped (the same for every thread); pixels in
// order. kRows = 4 serves K ≤ 64 (dcgan_g5's 48) and 6 K ≤ 96 (fsrcnn_x3's 81) at four blocks per SM: the 8-row
// kernel's 166 registers held three, so 512 blocks ran in 1.3 waves, and rows past K only cost registers.
template <int kRows>
__global__ void __launch_bounds__(kThreads, kRows <= 6 ? 4 : 0) dw_fma_kernel(Params p) {
  extern __shared__ uint4 smem4[];
  float* red = reinterpret_cast<float*>(smem4);
  uint32_t* xs = reinterpret_cast<uint32_t*>(red + kMaxOg * kThreads);
  uint32_t* win = xs + kTilePx * kXPitch;
  const int64_t chunk = blockIdx.x;
  const int per_grp = p.ktiles * p.ctiles;
  const int grp = blockIdx.y / per_grp, kt = (blockIdx.y % per_grp) / p.ctiles, ct = blockIdx.y % p.ctiles;
  const int kb = kt * kKRows, c0 = ct * kCTile;
  const int nc = min(kCTile, p.ig - c0), kn = min(kKRows, p.K - kb);
  const int kg = threadIdx.x >> 3, cg = threadIdx.x & 7;
  const int kg_warp = (threadIdx.x >> 5) * 4;  // smallest kg of this warp: rows it skips are skipped warp-wide
  const int nrows = min(kRows, (kn - kg_warp + 15) / 16);  // rows i with kg_warp + 16·i < kn (same in the warp)
  int off[kRows];
#pragma unroll
  for (int i = 0; i < kRows; ++i) off[i] = k_offset(p, kb + kg + 16 * i);
  float acc[kRows][8] = {};
  const int64_t t_begin = chunk * p.tiles_per_chunk, t_end = min(p.tiles, t_begin + p.tiles_per_chunk);
  for (int64_t t = t_begin; t < t_end; ++t) {
    const TileAt at = tile_at(p, t);
    __syncthreads();
    stage_window<Fma32>(p, at, grp, win);
    stage_src<Fma32>(p, at, grp, c0, nc, xs);
    __syncthreads();
    const int rows_in = min(p.tr, p.h_in - at.iy0), cols_in = min(p.tc, p.w_in - at.ix0);
    // Two pixels per step, all their loads before the multiply-adds (the shared-memory latency is hidden by the
    // other pixel's work rather than by other warps: at 3 blocks per SM there are few). A pixel outside the image
    // contributes exact zeros (its source row is zero and its window values are masked), and each accumulator
    // still adds its pixels in order.
#pragma unroll 1
    for (int m = 0; m < kTilePx; m += 2) {
      float a[2][kRows], x[2][8];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int mm = m + h;
        const bool ok = (mm >> p.tc_shift) < rows_in && (mm & (p.tc - 1)) < cols_in;
        const int base = px_base(p, mm);
        const float4 x0 = *reinterpret_cast<const float4*>(xs + mm * kXPitch + cg * 8);
        const float4 x1 = *reinterpret_cast<const float4*>(xs + mm * kXPitch + cg * 8 + 4);
        x[h][0] = x0.x; x[h][1] = x0.y; x[h][2] = x0.z; x[h][3] = x0.w;
        x[h][4] = x1.x; x[h][5] = x1.y; x[h][6] = x1.z; x[h][7] = x1.w;
        const uint32_t mask = ok ? ~0u : 0u;  // loaded unconditionally, masked (see dw_kernel)
#pragma unroll
        for (int i = 0; i < kRows; ++i) a[h][i] = __uint_as_float(win[base + off[i]] & mask);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int i = 0; i < kRows; ++i) {
          if (i >= nrows) break;
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[h][i], x[h][j], acc[i][j]);
        }
    }
  }
  float* prow = p.part + chunk * p.row_len;
#pragma unroll
  for (int i = 0; i < kRows; ++i) {
    const int r = kg + 16 * i;
    if (r >= kn) continue;
    float* w = prow + weight_row(p, grp, kb + r) + c0;
#pragma unroll
    for (int j = 0; j < 8; ++j)
      if (cg * 8 + j < nc) w[cg * 8 + j] = acc[i][j];
  }
  if (p.with_bias && kt == 0 && ct == 0) bias_partial<Fma32>(p, grp, chunk, red, prow);
}

// ---- plan and launchers ----------------------------------------------------------------------------------
template <class M>
constexpr int stage_bytes() {
  return M::kK == 16 ? 2 : 4;
}

// The plan depends on the problem only. why non-empty: declined, for that reason.
Plan make_plan(const core::Problem& p, int kk, int sbytes, bool fma) {
  Plan plan;
  const core::Geometry& g = p.g;
  Params& k = plan.k;
  k.h_in = static_cast<int>(g.h_in);
  k.w_in = static_cast<int>(g.w_in);
  k.h_out = static_cast<int>(g.h_out);
  k.w_out = static_cast<int>(g.w_out);
  k.kh = static_cast<int>(g.kh);
  k.kw = static_cast<int>(g.kw);
  k.sh = static_cast<int>(g.stride_h);
  k.sw = static_cast<int>(g.stride_w);
  k.dh = static_cast<int>(g.dil_h);
  k.dw = static_cast<int>(g.dil_w);
  k.ph = static_cast<int>(g.pad_h);
  k.pw = static_cast<int>(g.pad_w);
  k.ig = static_cast<int>(g.ig());
  k.og = static_cast<int>(g.og());
  k.c_out = static_cast<int>(g.c_out);
  k.n = g.n;
  if (g.og() * g.kh * g.kw > kMaxK) {
    plan.why = std::to_string(g.og() * g.kh * g.kw) + " taps x output channels: more than " + std::to_string(kMaxK);
    return plan;
  }
  k.K = k.og * k.kh * k.kw;
  // Pixel tile: tr × tc = 64, the shape that stages the fewest window elements over the layer (a tile's
  // tensor work is the same for every shape; columns wider than the image only add empty pixels).
  int64_t best = -1;
  for (int tc = 8; tc <= 64; tc *= 2) {
    if (tc > 8 && tc / 2 >= g.w_in) break;
    const int tr = kTilePx / tc;
    const int64_t rows = int64_t{tr - 1} * g.stride_h + g.dil_h * (g.kh - 1) + 1;
    const int64_t cols = int64_t{tc - 1} * g.stride_w + g.dil_w * (g.kw - 1) + 1;
    if (rows > kMaxWindow || cols > kMaxWindow) continue;  // (and the product below cannot overflow)
    const int64_t elems = rows * cols * g.og();
    if (elems > kMaxWindow) continue;
    const int64_t tiles = g.n * ceil_div(g.h_in, tr) * ceil_div(g.w_in, tc);
    const int64_t cost = tiles * (elems + 256);
    if (best < 0 || cost < best) {
      best = cost;
      k.tc = tc;
      k.tr = tr;
      k.win_rows = static_cast<int>(rows);
      k.win_cols = static_cast<int>(cols);
      k.win_elems = static_cast<int>(elems);
    }
  }
  if (best < 0) {
    plan.why = "the diff_dst window of a 64-pixel tile (kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) +
               ", stride " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) + ", dilation " +
               std::to_string(g.dil_h) + "x" + std::to_string(g.dil_w) + ") exceeds " + std::to_string(kMaxWindow) +
               " elements of shared memory";
    return plan;
  }
  k.div_og = FastDiv(static_cast<uint32_t>(k.og));
  k.div_win_cols = FastDiv(static_cast<uint32_t>(k.win_cols));
  k.div_w_out = FastDiv(static_cast<uint32_t>(k.w_out));
  k.div_h_out = FastDiv(static_cast<uint32_t>(k.h_out));
  k.tc_shift = 0;
  while ((1 << k.tc_shift) < k.tc) ++k.tc_shift;
  k.row_tiles = static_cast<int>(ceil_div(g.h_in, k.tr));
  k.col_tiles = static_cast<int>(ceil_div(g.w_in, k.tc));
  k.tiles = g.n * k.row_tiles * k.col_tiles;
  k.ctiles = static_cast<int>(ceil_div(k.ig, kCTile));
  const int vec = 16 / sbytes;
  if (p.dir == core::Direction::bwd_data) {
    if (k.K > kMaxKData) {
      plan.why = std::to_string(k.K) + " taps x output channels (" + std::to_string(k.og) + " x " +
                 std::to_string(g.kh) + "x" + std::to_string(g.kw) + ") exceed the " + std::to_string(kMaxKData) +
                 " the data gradient stages at once";
      return plan;
    }
    k.Kp = static_cast<int>(ceil_div(k.K, kk) * kk);
    // Row pitch ≡ 4 words (mod 32): the 8 rows × 4 columns of a B fragment load hit 32 distinct banks.
    k.wpitch = sbytes == 2 ? static_cast<int>(ceil_div(k.Kp, 64) * 64 + 8) : static_cast<int>(ceil_div(k.Kp, 32) * 32 + 4);
    plan.smem = static_cast<std::size_t>(k.Kp) * 4 + static_cast<std::size_t>(kCTile) * k.wpitch * sbytes +
                static_cast<std::size_t>(k.win_elems) * sbytes;
    if (fma)  // offk[K rounded to 4] | wsm[K][64] floats | win
      plan.smem = static_cast<std::size_t>(ceil_div(k.K, 4) * 4 + int64_t{k.K} * kCTile) * 4 +
                  static_cast<std::size_t>(k.win_elems) * 4;
    const int64_t per = fma ? int64_t{k.K} * kCTile : int64_t{kCTile} * k.wpitch;  // packed elements per tile
    plan.workspace = static_cast<std::size_t>(per * k.ctiles * g.groups * sbytes);
    plan.blocks = std::min<int64_t>(k.tiles, std::max<int64_t>(1, ceil_div(target_blocks(), g.groups * k.ctiles)));
    if (int64_t{g.groups} * k.ctiles > 65535 || k.tiles > 0x7fffffff) {
      plan.why = "grid too large (" + std::to_string(k.tiles) + " tiles, " + std::to_string(g.groups * k.ctiles) +
                 " group channel tiles)";
      return plan;
    }
  } else {
    k.ktiles = static_cast<int>(ceil_div(k.K, kKRows));
    const int64_t others = g.groups * k.ktiles * k.ctiles;
    if (others > 65535) {
      plan.why = "grid too large (" + std::to_string(others) + " group x k x channel tiles)";
      return plan;
    }
    const int64_t target = std::max<int64_t>(1, ceil_div(target_blocks(), others));
    k.tiles_per_chunk = ceil_div(k.tiles, std::min(target, k.tiles));
    k.chunks = ceil_div(k.tiles, k.tiles_per_chunk);
    if (ceil_div(g.n * g.h_out, k.chunks) * g.w_out + g.h_out >= (int64_t{1} << 31)) {
      plan.why = "weight gradient: a chunk's share of the bias sum exceeds 2^31 pixels";
      return plan;
    }
    k.wei_count = core::wei_elements(g);
    k.row_len = k.wei_count + (p.with_bias ? g.c_out : 0);
    k.with_bias = p.with_bias ? 1 : 0;
    k.vec = k.ig % vec == 0 ? 1 : 0;  // the view's alignment is checked per call (run_bwd_weights)
    plan.workspace = static_cast<std::size_t>(k.chunks * k.row_len) * sizeof(float);
    plan.smem = static_cast<std::size_t>(kMaxOg) * kThreads * 4 +
                static_cast<std::size_t>(kTilePx) * kXPitch * sbytes + static_cast<std::size_t>(k.win_elems) * sbytes;
  }
  plan.smem = (plan.smem + 15) / 16 * 16;
  if (plan.smem > kMaxSmem) {
    plan.why = "needs " + std::to_string(plan.smem) + " bytes of shared memory, more than " + std::to_string(kMaxSmem);
    return plan;
  }
  return plan;
}

template <class M>
Plan plan_of(const core::Problem& p) {
  return make_plan(p, M::kK, stage_bytes<M>(), std::is_same_v<M, Fma32>);
}

template <class Kernel>
core::Status launch(Kernel kernel, dim3 grid, const Plan& plan, cudaStream_t stream, const char* what) {
  if (plan.smem > 48 * 1024) {
    const core::Status s = cuda_backend::check(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.smem)),
        "cudaFuncSetAttribute");
    if (!s.ok()) return s;
  }
  kernel<<<grid, kThreads, plan.smem, stream>>>(plan.k);
  return cuda_backend::check_launch(what);
}

// The plan of p with the image views bound (img: diff_src or src, dy: diff_dst); why non-empty: declined.
template <class M>
Plan bound_plan(const core::Problem& p, const core::TensorView& img, const core::TensorView& dy) {
  Plan plan = plan_of<M>(p);
  plan.k.img = kview(img);
  plan.k.dy = kview(dy);
  const int64_t span = int64_t{plan.k.win_rows} * std::abs(plan.k.dy.sh) + int64_t{plan.k.win_cols} * std::abs(plan.k.dy.sw) +
                       plan.k.og;
  plan.k.rel32 = span < (int64_t{1} << 31) ? 1 : 0;
  plan.k.dsh = plan.k.rel32 ? static_cast<int>(plan.k.dy.sh) : 0;
  plan.k.dsw = plan.k.rel32 ? static_cast<int>(plan.k.dy.sw) : 0;
  return plan;
}

template <class M>
core::Status run_bwd_data(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  Plan plan = bound_plan<M>(p, a.diff_src, a.diff_dst);
  if (!plan.why.empty()) return core::unsupported("cuda_tap_gemm: " + plan.why);
  plan.k.wei = a.wei;
  plan.k.packed = workspace;
  {
    const int64_t n = static_cast<int64_t>(plan.workspace) / stage_bytes<M>();
    pack_kernel<M><<<static_cast<unsigned>(std::min<int64_t>(ceil_div(n, 256), 4096)), 256, 0, stream>>>(
        plan.k, static_cast<Stage<M>*>(workspace));
    if (const core::Status s = cuda_backend::check_launch("cuda_tap_gemm weight packing"); !s.ok()) return s;
  }
  const dim3 grid(static_cast<unsigned>(plan.blocks), static_cast<unsigned>(p.g.groups * plan.k.ctiles));
  if constexpr (std::is_same_v<M, Fma32>) {
    return launch(dx_fma_kernel, grid, plan, stream, "cuda_tap_gemm data gradient (fp32)");
  } else {
    return launch(dx_kernel<M>, grid, plan, stream, "cuda_tap_gemm data gradient");
  }
}

template <class M>
core::Status run_bwd_weights(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  Plan plan = bound_plan<M>(p, a.src, a.diff_dst);
  if (!plan.why.empty()) return core::unsupported("cuda_tap_gemm: " + plan.why);
  plan.k.part = static_cast<float*>(workspace);
  // A bias gradient requested without a buffer for it is dropped, as the other weight-gradient algorithms do.
  const bool bias = p.with_bias && a.diff_bias != nullptr;
  if (!bias) {
    plan.k.with_bias = 0;
    plan.k.row_len = plan.k.wei_count;
  }
  // 16-byte source copies need the view itself aligned: base address and every stride.
  const int64_t vec = 16 / stage_bytes<M>();
  if (reinterpret_cast<uintptr_t>(a.src.data) % 16 != 0 || a.src.sn % vec != 0 || a.src.sh % vec != 0 ||
      a.src.sw % vec != 0)
    plan.k.vec = 0;
  const dim3 grid(static_cast<unsigned>(plan.k.chunks),
                  static_cast<unsigned>(p.g.groups * plan.k.ktiles * plan.k.ctiles));
  const core::Status s = [&] {
    if constexpr (std::is_same_v<M, Fma32>) {
      const char* what = "cuda_tap_gemm weight gradient (fp32)";
      return plan.k.K <= 64   ? launch(dw_fma_kernel<4>, grid, plan, stream, what)
             : plan.k.K <= 96 ? launch(dw_fma_kernel<6>, grid, plan, stream, what)
                              : launch(dw_fma_kernel<8>, grid, plan, stream, what);
    } else {
      return launch(dw_kernel<M>, grid, plan, stream, "cuda_tap_gemm weight gradient");
    }
  }();
  if (!s.ok()) return s;
  return cuda_stream::launch_reduce_rows(plan.k.part, plan.k.chunks, plan.k.row_len, plan.k.wei_count, 1,
                                        bias ? p.g.c_out : 0, a.diff_wei, a.diff_bias, p.accumulate, stream);
}

// The operand kind of a problem: bfloat16 images in bf16, float16 in fp16, float32 in tf32 (tensor cores),
// float32 in fp32 (CUDA cores); 0 otherwise.
int operand_kind(const core::Problem& p) {
  if (p.act_type == DataType::bfloat16 && p.precision == Precision::bf16) return 1;
  if (p.act_type == DataType::float16 && p.precision == Precision::fp16) return 2;
  if (p.act_type == DataType::float32 && p.precision == Precision::tf32) return 3;
  if (p.act_type == DataType::float32 && p.precision == Precision::fp32) return 4;
  return 0;
}

Plan plan_for(const core::Problem& p) {
  switch (operand_kind(p)) {
    case 1: return plan_of<MmaBf16>(p);
    case 2: return plan_of<MmaF16>(p);
    case 3: return plan_of<MmaTf32>(p);
    default: return plan_of<Fma32>(p);
  }
}

}  // namespace
}  // namespace tconv::cuda_tap

namespace tconv::registry {
namespace {

class CudaTapGemm final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_tap_gemm"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.dir == core::Direction::fwd)
      return "the forward is not computed here (its reduction is over input channels and taps per output pixel: "
             "cuda_few_channels streams it)";
    if (cuda_tap::operand_kind(p) == 0)
      return "activation type " + std::string(to_string(p.act_type)) + " with precision " +
             std::string(to_string(p.precision)) + ": only bfloat16+bf16, float16+fp16, float32+tf32 and float32+fp32";
    const core::Geometry& g = p.g;
    if (g.og() > cuda_tap::kMaxOg)
      return std::to_string(g.og()) + " output channels per group: more than " + std::to_string(cuda_tap::kMaxOg) +
             " (the channel-sliced tensor-core algorithms take them)";
    if (g.ig() < cuda_tap::kMinIg)
      return std::to_string(g.ig()) + " input channels per group: fewer than " + std::to_string(cuda_tap::kMinIg) +
             ", the 8-channel column tiles would be mostly empty (cuda_few_channels streams them)";
    constexpr int64_t k30 = int64_t{1} << 30, k29 = int64_t{1} << 29;
    if (g.h_in * g.stride_h > k30 || g.w_in * g.stride_w > k30 || g.h_out > k30 || g.w_out > k30 ||
        std::abs(g.pad_h) > k29 || std::abs(g.pad_w) > k29 || g.dil_h * (g.kh - 1) > k29 ||
        g.dil_w * (g.kw - 1) > k29 || g.c_in > k30 || g.c_out > k30)
      return "spatial extent or channel count too large for 32-bit coordinates";
    const cuda_tap::Plan plan = cuda_tap::plan_for(p);
    if (!plan.why.empty()) return plan.why;
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    if (p.dir == core::Direction::fwd || cuda_tap::operand_kind(p) == 0) return 0;
    const cuda_tap::Plan plan = cuda_tap::plan_for(p);
    return plan.why.empty() ? plan.workspace : 0;
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    if (auto why = decline_reason(p)) return core::unsupported("cuda_tap_gemm: " + *why);
    auto unused = [](cudaStream_t) { return core::invalid("cuda_tap_gemm: no forward"); };
    auto dx = [&](cudaStream_t s) {
      switch (cuda_tap::operand_kind(p)) {
        case 1: return cuda_tap::run_bwd_data<cuda_direct::MmaBf16>(p, a, workspace, s);
        case 2: return cuda_tap::run_bwd_data<cuda_direct::MmaF16>(p, a, workspace, s);
        case 3: return cuda_tap::run_bwd_data<cuda_direct::MmaTf32>(p, a, workspace, s);
        default: return cuda_tap::run_bwd_data<cuda_tap::Fma32>(p, a, workspace, s);
      }
    };
    auto dw = [&](cudaStream_t s) {
      switch (cuda_tap::operand_kind(p)) {
        case 1: return cuda_tap::run_bwd_weights<cuda_direct::MmaBf16>(p, a, workspace, s);
        case 2: return cuda_tap::run_bwd_weights<cuda_direct::MmaF16>(p, a, workspace, s);
        case 3: return cuda_tap::run_bwd_weights<cuda_direct::MmaTf32>(p, a, workspace, s);
        default: return cuda_tap::run_bwd_weights<cuda_tap::Fma32>(p, a, workspace, s);
      }
    };
    return cuda_backend::run_by_direction(name(), p, ctx, workspace, workspace_bytes(p), unused, dx, dw);
  }
};

}  // namespace

const Algorithm* cuda_tap_gemm_algorithm() { return cuda_backend::single_instance<CudaTapGemm>(); }

}  // namespace tconv::registry
