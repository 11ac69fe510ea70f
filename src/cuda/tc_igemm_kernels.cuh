// cuda_tc_igemm's kernels and typed launch (run_typed), included by tc_igemm_{bf16,f16,tf32}.cu — one element type
// per translation unit, so that the three compile in parallel (this was the build's long pole as one file). The
// algorithm's registration is tc_igemm.cpp, its planner tc_igemm_plan.cpp. What follows is the algorithm's design.
//
// cuda_tc_igemm: pipelined tensor-core implicit GEMM for the forward pass and the data gradient, when the images
// already have the precision's element type (bf16 images with bf16 precision, f16 with fp16, f32 with tf32) and
// the reduction channels per group allow 16-byte copies. Everything else is declined with a reason
// (cuda_igemm_mma and cuda_direct keep it); the weight gradient is not computed here.
//
// The GEMM is the one of cuda_igemm_mma (igemm_mma.cu), per group:
//   bwd_data  m = (n, iy, ix), j = c < Ig, k = (tap, o < Og) gathered from diff_dst at
//             oy = iy·sh − ph + dh·(kh − 1 − q)
//   fwd       m = (n, oy, ox) of one output stride phase (oy ≡ py mod sh, ox ≡ px mod sw), j = o < Og,
//             k = (active tap, c < Ig) gathered from src at iy = (oy + ph − dh·(kh − 1 − q)) / sh
// In both the gathered row is y = yy·S + D[q] (S = 1 and yy the phase row for fwd, S = sh and yy = iy for
// bwd_data), so one loader serves both: a per-block table holds D and the tap index of each active q (and p).
//
// Why this is fast where cuda_igemm_mma is not:
//   * a pre-pass packs the float32 weights once per call into the workspace as [group][tap][j][k] in the
//     operand type (rounded RNE as core::round_input does), so B tiles are plain 16-byte copies;
//   * A and B tiles go global → shared with cp.async (zero-fill for taps outside the image and channels past
//     the group), several stages deep, so the copies of later k-tiles overlap the multiplies of the current one;
//   * on sm_90a (H100) the multiplies are wgmma: each warpgroup multiplies a 64×BN tile straight from
//     128B-swizzled shared memory (tf32: A through registers, see below), with no ldmatrix traffic (mma.sync on
//     the H100 is held back by shared-memory bandwidth: the ldmatrix bytes per mma equal what the SM can
//     deliver); elsewhere mma.sync with ldmatrix fragments from XOR-swizzled shared memory;
//   * block tiles from 64×64 (three per SM) to 256×128 and 128×256 (one per SM, 192 KB of stages: tf32 needs
//     the depth), and split-K for problems whose tiles leave SMs idle (few pixels, long reductions: dcgan_g2's
//     data gradient has 2048 pixels and 4096 k), chosen per problem by a time model (make_plan);
//   * the epilogue stages the tile in shared memory and writes whole 16-byte vectors per output row.
// tf32: operands are float32 bits, which the tensor cores truncate; the kernels round them to nearest even
// first (wgmma: each thread loads its A fragment from shared memory, rounds it in registers and multiplies it
// from there — wg256x128, short of registers, rounds the chunks it copied in place; mma.sync: the fragments, in
// registers; weights: in the pre-pass) so that the products equal the reference's.
// Deterministic: each output element is computed by one thread with a fixed k order (taps, then channels); with
// split-K each of the S slices is such a sum over a fixed k range, written unrounded to the workspace, and a
// second kernel adds the S slices in ascending order. S and the tile depend on the problem alone (make_plan
// models a fixed 132-SM GPU), so repeated runs are bit-identical. No atomics.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"
#include "cuda/igemm_mma.cuh"
#include "cuda/tc_common.cuh"
#include "cuda/tc_igemm.hpp"
#include "cuda/tc_igemm_plan.hpp"
#include "cuda/tc_igemm_wgmma.cuh"
#include "cuda/tc_paths.hpp"

namespace tconv::cuda_tc {
namespace {

using cuda_direct::MmaBf16;
using cuda_direct::MmaF16;
using cuda_direct::MmaTf32;

// Kernel-side problem. "in" is the gathered tensor (src for fwd, diff_dst for bwd_data), "out" the written one.
// Spatial sizes and tap offsets fit in int (decline_reason bounds them); element offsets are 64-bit.
struct Params {
  const void* in;
  int64_t in_sn, in_sh, in_sw;
  void* out;
  int64_t out_sn, out_sh, out_sw;
  const void* wpk;      // packed weights [groups][kh·kw][N][Kc]
  const float* bias;    // fwd only, may be null
  NeuronDescriptor nd;  // fwd only
  int64_t n;
  int in_h, in_w, out_h, out_w;
  int kh, kw, sh, sw, dh, dw, ph, pw;
  int N, Kc;            // GEMM columns and reduction channels per tap, per group
  int phases;           // fwd: sh·sw output phases per group; bwd_data: 1
  int vec_out;          // output rows allow 16-byte stores (pointer, strides and N multiples of 16 bytes)
  // Split-K (splits > 1): blockIdx.z = (group·phases + phase)·splits + s; block s multiplies the s-th of `splits`
  // equal runs of its k-tiles and writes its float32 tile to part[blockIdx.z][m][j] (part_m rows per slice);
  // splitk_reduce_kernel adds the slices in s order and writes the output. splits = 1: the block writes it.
  int splits;
  float* part;
  int64_t part_m;
};

// ---- pieces shared by both mainloops ----------------------------------------------------------------------
// Where a block sits: group, output phase, pixel rows [m0, m0 + BM) of m_total, columns [j0, j0 + BN).
struct BlockCoords {
  int grp, py, px, j0;
  int64_t rows_h, rows_w, m_total, m0, in_c0, out_c0;
};
template <bool kFwd, int BM, int BN>
__device__ __forceinline__ BlockCoords block_coords(const Params& p) {
  BlockCoords b;
  const int zz = static_cast<int>(blockIdx.z) / p.splits;
  b.grp = zz / p.phases;
  const int phase = zz % p.phases;
  b.py = kFwd ? phase / p.sw : 0;
  b.px = kFwd ? phase % p.sw : 0;
  b.rows_h = kFwd ? (p.out_h - b.py + p.sh - 1) / p.sh : p.out_h;  // pixel rows of this GEMM
  b.rows_w = kFwd ? (p.out_w - b.px + p.sw - 1) / p.sw : p.out_w;
  b.m_total = p.n * b.rows_h * b.rows_w;
  b.m0 = static_cast<int64_t>(blockIdx.x) * BM;
  b.j0 = static_cast<int>(blockIdx.y) * BN;
  b.in_c0 = static_cast<int64_t>(b.grp) * p.Kc;
  b.out_c0 = static_cast<int64_t>(b.grp) * p.N;
  return b;
}

// Per-block tables: each row's output offset and gathered-pixel position, and the active taps of this phase with
// their offsets D. The copy engine reads a row's entry only when the tap changes (every kc_tiles k-tiles), so the
// per-k-tile copy issue is a pointer add and a predicate per chunk.
// A row's gathered pixel before the tap offset: (y, x) and its element offset at channel g·Kc; the tap adds
// dy·in_sh + dx·in_sw to the offset. One 16-byte entry, read with one load. y = kNoRow past the end.
struct alignas(16) RowIn {
  int64_t off;
  int y, x;
};
constexpr int kNoRow = INT_MIN;
template <int BM>
struct Tables {
  int64_t row_out[BM];  // element offset of the row's output pixel (channel g·N), or −1 past the end
  RowIn row_in[BM];
  int dy[kMaxTaps], q[kMaxTaps], dx[kMaxTaps], p[kMaxTaps];
  int nq, np;
};
template <bool kFwd, int BM, int T>
__device__ __forceinline__ void build_tables(const Params& p, const BlockCoords& b, Tables<BM>& tb, int tid) {
  if (tid == 0) {
    int c = 0;
    for (int q = 0; q < p.kh; ++q) {
      const int s = p.dh * (p.kh - 1 - q);
      if (kFwd) {
        const int v = b.py + p.ph - s;
        if (v % p.sh != 0) continue;  // this tap never lands on this output phase
        tb.dy[c] = v / p.sh;          // exact
      } else {
        tb.dy[c] = s - p.ph;
      }
      tb.q[c++] = q;
    }
    tb.nq = c;
    c = 0;
    for (int q = 0; q < p.kw; ++q) {
      const int s = p.dw * (p.kw - 1 - q);
      if (kFwd) {
        const int v = b.px + p.pw - s;
        if (v % p.sw != 0) continue;
        tb.dx[c] = v / p.sw;
      } else {
        tb.dx[c] = s - p.pw;
      }
      tb.p[c++] = q;
    }
    tb.np = c;
  }
  for (int r = tid; r < BM; r += T) {
    const int64_t m = b.m0 + r;
    int64_t o = -1;
    RowIn ri{0, kNoRow, 0};
    if (m < b.m_total) {
      const int64_t xx = m % b.rows_w, t = m / b.rows_w, yy = t % b.rows_h, n = t / b.rows_h;
      const int64_t y = kFwd ? b.py + yy * p.sh : yy, x = kFwd ? b.px + xx * p.sw : xx;
      o = n * p.out_sn + y * p.out_sh + x * p.out_sw + b.out_c0;
      ri.y = static_cast<int>(yy) * (kFwd ? 1 : p.sh);
      ri.x = static_cast<int>(xx) * (kFwd ? 1 : p.sw);
      ri.off = n * p.in_sn + b.in_c0 + int64_t{ri.y} * p.in_sh + int64_t{ri.x} * p.in_sw;
    }
    tb.row_out[r] = o;
    tb.row_in[r] = ri;
  }
}

// Byte offset of (row, 16-byte chunk) in a k-tile of kChunks chunks per row.
//   4 chunks (64-byte rows, mma.sync): XOR with row bits 1–2, so that any 8 consecutive rows of one chunk —
//     an ldmatrix — hit all 8 bank groups (row bit 0 already selects the 64-byte half of a 128-byte line);
//   8 chunks (128-byte rows, wgmma): the hardware's 128-byte swizzle, chunk XOR (row mod 8) within 1024-byte
//     atoms (the tile base must be 1024-byte aligned).
template <int kChunks>
__device__ __forceinline__ uint32_t swz(int row, int chunk) {
  if constexpr (kChunks == 4) return static_cast<uint32_t>(row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4));
  else return static_cast<uint32_t>(row * 128 + ((chunk ^ (row & 7)) << 4));
}

// The copy engine: this thread's copy slots (chunk `chunk` of rows row0 + i·T/kChunks of A and of B) and the
// k-tile iterator (channel tile, tap column, tap row) of the next k-tile to load. When the tap changes, `retap`
// resolves each A row's source pixel (or its absence: padding, past the image) into a pointer and a bit of a_ok;
// within a tap a k-tile only adds the channel tile's offset. (Recomputing the pixel, its bounds and its 64-bit
// offset for every chunk of every k-tile was 40 instructions per 16-byte copy: on the H100 the wgmma mainloop
// issued 330 instructions per warp and k-tile for 4 tensor-core instructions, and was issue-bound.)
template <int BM, int BN, int T, int kChunks, class S, bool kFwd>
struct TileLoader {
  static constexpr int kVec = 16 / static_cast<int>(sizeof(S));  // elements per 16-byte chunk
  static constexpr int kBK = kChunks * kVec;                      // k elements per k-tile
  static constexpr int AR = BM * kChunks / T, BR = BN * kChunks / T, kRowStep = T / kChunks;
  static_assert(AR * T == BM * kChunks && BR * T == BN * kChunks, "every thread copies whole chunks");
  static_assert(AR <= 32 && BR <= 32, "one mask bit per row");
  const S* a_src[AR];  // this tap's source of row i's chunk at channel tile 0 (where bit i of a_ok is set)
  const S* b_src;      // this tap's packed-weight row j0 + row0, chunk at channel tile 0
  int64_t b_step;      // elements between this thread's B rows (kRowStep rows of Kc)
  uint32_t a_ok, b_ok;
  int chunk, row0, it_c, it_p, it_q, kc_tiles, np;

  __device__ __forceinline__ void init(int tid) {
    chunk = tid % kChunks;
    row0 = tid / kChunks;
  }
  // tf32 (S = float): rounds the A chunks this thread copied into the stage at sA to tf32 (RNE) where they lie.
  // Only its own copies, so its own cp.async wait suffices; the caller's fence and barrier (or mbarrier
  // arrival) then publish them to the tensor cores.
  __device__ __forceinline__ void round_own_a(unsigned char* sA) const {
    asm volatile("" ::: "memory");  // the plain shared loads below must not move above the wait
#pragma unroll
    for (int i = 0; i < AR; ++i) {
      uint4* v = reinterpret_cast<uint4*>(sA + swz<kChunks>(row0 + i * kRowStep, chunk));
      *v = tf32_rne_fast(*v);
    }
  }
  // After the tables: positions the iterator at k-tile kt0 (a split block's first) of the block's nkt.
  __device__ __forceinline__ void start(const Params& p, const BlockCoords& b, const Tables<BM>& tb, int kt0,
                                        int nkt) {
    np = tb.np;
    kc_tiles = (p.Kc + kBK - 1) / kBK;
    it_c = it_p = it_q = 0;
    if (kt0 > 0) {  // (np may be 0 on a phase without taps; then kt0 = 0)
      it_c = kt0 % kc_tiles;
      const int t = kt0 / kc_tiles;
      it_p = t % np;
      it_q = t / np;
    }
    b_step = static_cast<int64_t>(kRowStep) * p.Kc;
    b_ok = 0;
#pragma unroll
    for (int i = 0; i < BR; ++i) b_ok |= static_cast<uint32_t>(b.j0 + row0 + i * kRowStep < p.N) << i;
    if (nkt > 0 && it_c != 0) retap(p, b, tb);  // load() retaps at channel tile 0
  }
  __device__ __forceinline__ void retap(const Params& p, const BlockCoords& b, const Tables<BM>& tb) {
    const S* in = static_cast<const S*>(p.in);
    const int dy = tb.dy[it_q], dx = tb.dx[it_p];
    const int64_t toff = int64_t{dy} * p.in_sh + int64_t{dx} * p.in_sw + chunk * kVec;  // the tap's, all rows
    a_ok = 0;
#pragma unroll
    for (int i = 0; i < AR; ++i) {
      const RowIn ri = tb.row_in[row0 + i * kRowStep];
      // unsigned sums: negative coordinates wrap past the bound (and kNoRow's sum is never formed as an int)
      const bool ok = ri.y != kNoRow &&
                      static_cast<unsigned>(ri.y) + static_cast<unsigned>(dy) < static_cast<unsigned>(p.in_h) &&
                      static_cast<unsigned>(ri.x) + static_cast<unsigned>(dx) < static_cast<unsigned>(p.in_w);
      a_src[i] = in + (ok ? ri.off + toff : 0);
      a_ok |= static_cast<uint32_t>(ok) << i;
    }
    const int64_t tap = static_cast<int64_t>(tb.q[it_q]) * p.kw + tb.p[it_p];
    const int64_t taps = static_cast<int64_t>(p.kh) * p.kw;
    b_src = static_cast<const S*>(p.wpk) +
            ((b.grp * taps + tap) * p.N + b.j0 + row0) * p.Kc + chunk * kVec;
  }
  // Queues the copies of the next k-tile into (sA, sB) and advances the iterator.
  __device__ __forceinline__ void load(const Params& p, const BlockCoords& b, const Tables<BM>& tb,
                                       unsigned char* sA, unsigned char* sB) {
    if (it_c == 0) retap(p, b, tb);
    const int coff = it_c * kBK;
    const bool c_ok = coff + chunk * kVec < p.Kc;  // Kc is a multiple of kVec: a chunk is all in or all out
#pragma unroll
    for (int i = 0; i < AR; ++i) {
      const bool ok = c_ok && ((a_ok >> i) & 1u);
      cp_async_16(sA + swz<kChunks>(row0 + i * kRowStep, chunk), ok ? a_src[i] + coff : static_cast<const S*>(p.in),
                  ok);
    }
#pragma unroll
    for (int i = 0; i < BR; ++i) {
      const bool ok = c_ok && ((b_ok >> i) & 1u);
      cp_async_16(sB + swz<kChunks>(row0 + i * kRowStep, chunk),
                  ok ? b_src + (i * b_step + coff) : static_cast<const S*>(p.wpk), ok);
    }
    if (++it_c == kc_tiles) {
      it_c = 0;
      if (++it_p == np) {
        it_p = 0;
        ++it_q;
      }
    }
  }
};

template <class S>
__device__ __forceinline__ void store_pair(S* p, float a, float b);
template <>
__device__ __forceinline__ void store_pair<__nv_bfloat16>(__nv_bfloat16* p, float a, float b) {
  *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}
template <>
__device__ __forceinline__ void store_pair<__half>(__half* p, float a, float b) {
  *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
}
template <>
__device__ __forceinline__ void store_pair<float>(float* p, float a, float b) {
  *reinterpret_cast<float2*>(p) = make_float2(a, b);
}

// Row pitch (elements) of the staged output tile: 8 elements of padding shift consecutive rows by 16 bytes
// (16-bit types) or 32 bytes (float), which puts the fragment stores of a warp (pairs of 16-bit values) or
// half-warp (float2) on distinct banks.
template <int BN>
constexpr int out_pitch() {
  return BN + 8;
}

// Accumulator pair (row, col..col+1 of the block tile) → bias, neuron (fwd), conversion, staged tile.
template <bool kFwd, int BN, class S>
__device__ __forceinline__ void stage_pair(const Params& p, const BlockCoords& b, S* cs, int row, int col, float v0,
                                           float v1) {
  if (kFwd) {
    const int j = b.j0 + col;
    if (p.bias != nullptr) {
      if (j < p.N) v0 += p.bias[b.out_c0 + j];
      if (j + 1 < p.N) v1 += p.bias[b.out_c0 + j + 1];
    }
    if (p.nd.type != NeuronType::none) {
      v0 = cuda_direct::neuron_dev(p.nd.type, p.nd.a, p.nd.b, p.nd.c, v0);
      v1 = cuda_direct::neuron_dev(p.nd.type, p.nd.a, p.nd.b, p.nd.c, v1);
    }
  }
  store_pair<S>(cs + row * out_pitch<BN>() + col, v0, v1);
}

// Staged tile → output rows, 16 bytes per thread and step (or element-wise where the view does not allow it).
template <int BM, int BN, int T, class S>
__device__ __forceinline__ void store_tile(const Params& p, const BlockCoords& b, const S* cs, const int64_t* row_out,
                                           int tid) {
  constexpr int kVec = 16 / static_cast<int>(sizeof(S)), kVecPerRow = BN / kVec;
  S* __restrict__ out = static_cast<S*>(p.out);
  for (int idx = tid; idx < BM * kVecPerRow; idx += T) {
    const int r = idx / kVecPerRow, cv = idx % kVecPerRow;
    const int col = b.j0 + cv * kVec;
    const int64_t o = row_out[r];
    if (o < 0 || col >= p.N) continue;
    const S* s = cs + r * out_pitch<BN>() + cv * kVec;
    S* d = out + o + col;
    if (p.vec_out) {
      *reinterpret_cast<uint4*>(d) = *reinterpret_cast<const uint4*>(s);
    } else {
#pragma unroll
      for (int e = 0; e < kVec; ++e)
        if (col + e < p.N) d[e] = s[e];
    }
  }
}

// Split-K: this block's k-tiles [kt0, kt0 + n) out of kt_total: the s-th of `splits` runs of ceil(kt_total / splits)
// (the last ones shorter or empty; an empty run still writes its zero tile, which the reduction adds).
__device__ __forceinline__ void split_range(const Params& p, int kt_total, int& kt0, int& n) {
  if (p.splits <= 1) {
    kt0 = 0;
    n = kt_total;
    return;
  }
  const int s = static_cast<int>(blockIdx.z) % p.splits;
  const int per = (kt_total + p.splits - 1) / p.splits;
  kt0 = min(kt_total, s * per);
  n = min(kt_total, kt0 + per) - kt0;
}

// Split-K epilogue: an accumulator pair (row, col..col+1 of the block tile) to the block's float32 slice, unrounded
// (bias, neuron and the conversion come after the sum). N is a multiple of 4 on this path and col is even, so
// the pair is whole and 8-byte aligned.
__device__ __forceinline__ void store_partial(const Params& p, const BlockCoords& b, int row, int col, float v0,
                                              float v1) {
  const int64_t m = b.m0 + row;
  const int j = b.j0 + col;
  if (m >= b.m_total || j >= p.N) return;
  float* d = p.part + (static_cast<int64_t>(blockIdx.z) * p.part_m + m) * p.N + j;
  *reinterpret_cast<float2*>(d) = make_float2(v0, v1);
}

// ---- mainloop 1: mma.sync (sm_80+) --------------------------------------------------------------------------
// Block tile BM × BN, WARPS_M × WARPS_N warps each owning (BM/WARPS_M) × (BN/WARPS_N); k-tiles of 64 bytes
// (32 bf16/f16, 16 tf32), 4 stages.
template <int BM_, int BN_, int WARPS_M_, int WARPS_N_>
struct MmaTile {
  static constexpr int BM = BM_, BN = BN_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
  static constexpr int kThreads = 32 * WARPS_M * WARPS_N, kChunks = 4, kStages = 4;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;
  static constexpr int MT = WM / 16, NT = WN / 8;  // m16 and n8 mma tiles per warp
  static constexpr int kStageBytes = (BM + BN) * 16 * kChunks;
  // Register cap 128 per thread (65536 / (threads · blocks)): two 8-warp blocks or four 4-warp blocks per SM.
  static constexpr int kMinBlocks = 65536 / (kThreads * 128);
  static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile must hold whole m16 tiles and pairs of n8 tiles");
  template <class S>
  static constexpr int smem_bytes() {
    const int pipe = kStages * kStageBytes, epi = BM * out_pitch<BN>() * static_cast<int>(sizeof(S));
    return pipe > epi ? pipe : epi;
  }
};
using Mma128x128 = MmaTile<128, 128, 2, 4>;  // warp tile 64×32
using Mma128x64 = MmaTile<128, 64, 4, 2>;    // 32×32
using Mma64x128 = MmaTile<64, 128, 2, 4>;    // 32×32
using Mma64x64 = MmaTile<64, 64, 2, 2>;      // 32×32, 4 warps

template <class Cfg, class M, bool kFwd>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) tc_mma_kernel(const Params p) {
  using S = typename M::elem;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, T = Cfg::kThreads, MT = Cfg::MT, NT = Cfg::NT;
  constexpr int kStages = Cfg::kStages, kChunks = Cfg::kChunks;
  constexpr bool kTf32 = sizeof(S) == 4;
  extern __shared__ __align__(128) unsigned char tc_smem[];
  __shared__ Tables<BM> tb;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const BlockCoords b = block_coords<kFwd, BM, BN>(p);
  if (b.m0 >= b.m_total) return;  // block-uniform (smaller phases)
  build_tables<kFwd, BM, T>(p, b, tb, tid);
  TileLoader<BM, BN, T, kChunks, S, kFwd> ld;
  ld.init(tid);
  __syncthreads();  // tables
  const int kt_total = tb.nq * tb.np * ((p.Kc + ld.kBK - 1) / ld.kBK);  // k-tiles: active taps × channel tiles
  int kt0 = 0, nkt = 0;
  split_range(p, kt_total, kt0, nkt);
  ld.start(p, b, tb, kt0, nkt);

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
  const int warp_m = warp / Cfg::WARPS_N, warp_n = warp % Cfg::WARPS_N;

  auto compute = [&](int stage) {
    const unsigned char* sA = tc_smem + stage * Cfg::kStageBytes;
    const unsigned char* sB = sA + BM * 16 * kChunks;
#pragma unroll
    for (int ks = 0; ks < kChunks / 2; ++ks) {  // one mma k step = 32 bytes of k = 2 chunks
      uint32_t a[MT][4], bf[NT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        // Matrices 0–3: rows 0–7 / 8–15 of chunk 2ks, then of chunk 2ks+1 (a0..a3 of the PTX layout).
        const int row = warp_m * Cfg::WM + mt * 16 + (lane & 15);
        ldmatrix_x4(a[mt], sA + swz<kChunks>(row, ks * 2 + (lane >> 4)));
        if constexpr (kTf32) {
#pragma unroll
          for (int e = 0; e < 4; ++e) a[mt][e] = tf32_rne_fast(a[mt][e]);
        }
      }
#pragma unroll
      for (int nb = 0; nb < NT / 2; ++nb) {
        // Matrices 0–3: columns 0–7 chunk 2ks, chunk 2ks+1, then columns 8–15 likewise (b0, b1 of two n8 tiles).
        const int col = warp_n * Cfg::WN + nb * 16 + (lane & 7) + ((lane >> 4) << 3);
        uint32_t r[4];
        ldmatrix_x4(r, sB + swz<kChunks>(col, ks * 2 + ((lane >> 3) & 1)));
        bf[2 * nb][0] = r[0];
        bf[2 * nb][1] = r[1];
        bf[2 * nb + 1][0] = r[2];
        bf[2 * nb + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) M::mma(acc[mt][nt], a[mt], bf[nt]);
    }
  };

  // Pipeline: kStages − 1 k-tiles in flight before the first multiply; one commit group per k-tile (empty
  // ones too, so that wait_group counts stay aligned with k-tiles).
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nkt) ld.load(p, b, tb, tc_smem + s * Cfg::kStageBytes, tc_smem + s * Cfg::kStageBytes + BM * 16 * kChunks);
    cp_async_commit();
  }
  for (int kt = 0; kt < nkt; ++kt) {  // kt counts this block's k-tiles from kt0
    cp_async_wait<kStages - 2>();  // this thread's copies of k-tile kt have landed ...
    __syncthreads();               // ... everyone's have, and everyone is done with k-tile kt − 1
    const int next = kt + kStages - 1;
    if (next < nkt) {  // refills the stage of k-tile kt − 1
      unsigned char* st = tc_smem + (next % kStages) * Cfg::kStageBytes;
      ld.load(p, b, tb, st, st + BM * 16 * kChunks);
    }
    cp_async_commit();
    compute(kt % kStages);
  }
  cp_async_wait<0>();
  const int gid = lane >> 2, tig = lane & 3;
  if (p.splits > 1) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          store_partial(p, b, warp_m * Cfg::WM + mt * 16 + gid + h * 8, warp_n * Cfg::WN + nt * 8 + tig * 2,
                        acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
    return;
  }
  __syncthreads();  // the pipeline's shared memory becomes the output tile

  S* cs = reinterpret_cast<S*>(tc_smem);
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        stage_pair<kFwd, BN, S>(p, b, cs, warp_m * Cfg::WM + mt * 16 + gid + h * 8, warp_n * Cfg::WN + nt * 8 + tig * 2,
                                acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
  __syncthreads();
  store_tile<BM, BN, T, S>(p, b, cs, tb.row_out, tid);
}

// ---- mainloop 2: wgmma (sm_90a) -----------------------------------------------------------------------------
// Block tile BM × BN with BM / 64 warpgroups, each multiplying its 64 rows by all BN columns; k-tiles of 128
// bytes (64 bf16/f16, 32 tf32) in the hardware's 128-byte swizzle.
template <int BM_, int BN_, int STAGES_, int MIN_BLOCKS_>
struct WgTile {
  static constexpr int BM = BM_, BN = BN_, kStages = STAGES_, kMinBlocks = MIN_BLOCKS_;
  static constexpr bool kWs = false;
  static constexpr int kWarpgroups = BM / 64, kThreads = 128 * kWarpgroups, kChunks = 8;
  static constexpr int kStageBytes = (BM + BN) * 16 * kChunks;  // a multiple of 1024: stages stay atom-aligned
  static constexpr int kAcc = BN / 2;                            // f32 accumulators per thread (m64nBN)
  template <class S>
  static constexpr int smem_bytes() {
    const int pipe = kStages * kStageBytes, epi = BM * out_pitch<BN>() * static_cast<int>(sizeof(S));
    return (pipe > epi ? pipe : epi) + 1024;  // + slack to align the base to 1024 bytes
  }
};
// Shared memory per block ≤ 96 KB + 1 KB, so two blocks share an SM (one block's epilogue and prologue overlap
// the other's multiplies).
using Wg128x128 = WgTile<128, 128, 3, 2>;
using Wg128x64 = WgTile<128, 64, 4, 2>;
using Wg64x128 = WgTile<64, 128, 4, 2>;
using Wg64x64 = WgTile<64, 64, 4, 3>;
// One block per SM with 192 KB of stages. tf32 k-tiles hold half the k of bf16 ones (32 instead of 64 per
// 128-byte row), so the two-block tiles above keep only 2 k-tiles (64 k) of copies in flight per block and wait
// on L2 latency; these keep 4 (128x128, 6 stages) or 2 twice as large (256x128: four warpgroups, 48 KB per
// k-tile, the most reuse of each staged byte).
using Wg128x128d = WgTile<128, 128, 6, 1>;
using Wg256x128 = WgTile<256, 128, 4, 1>;
// Shared-memory bandwidth, not the tensor rate, bounds the tiles above on tf32 (and nearly on bf16/f16): per
// 32 bytes of k, a warpgroup's m64nBNk wgmma reads 2 KB of A and BN·32 bytes of B from shared memory, the copies
// write (BM + BN)·32 bytes, and rounding tf32's A in place reads and writes BM·32 bytes again. Against the
// SM's 128 bytes per clock and its 1024 tf32 (2048 bf16) multiply-adds per clock, 128×128 needs 219 B/clk for
// tf32 rounded in place (156 without the rounding pass), 256×128 203 (140), and 128×256 — two warpgroups of
// m64n256, 128 accumulators per thread — 156 (125): the most multiplies per staged and per read byte for the
// layers with ≥ 256 columns. (Measured, the tiles reach about half of these bounds; tf32 now rounds A in
// registers on all but 256×128: see the mainloop.)
using Wg128x256 = WgTile<128, 256, 4, 1>;

template <class M, int N>
__device__ __forceinline__ void wgmma_op(float (&d)[N / 2], uint64_t da, uint64_t db) {
  using S = typename M::elem;
  if constexpr (N == 256) {
    if constexpr (sizeof(S) == 4) wgmma_m64n256_tf32(d, da, db);
    else if constexpr (std::is_same_v<S, __half>) wgmma_m64n256_f16(d, da, db);
    else wgmma_m64n256_bf16(d, da, db);
  } else if constexpr (N == 128) {
    if constexpr (sizeof(S) == 4) wgmma_m64n128_tf32(d, da, db);
    else if constexpr (std::is_same_v<S, __half>) wgmma_m64n128_f16(d, da, db);
    else wgmma_m64n128_bf16(d, da, db);
  } else {
    if constexpr (sizeof(S) == 4) wgmma_m64n64_tf32(d, da, db);
    else if constexpr (std::is_same_v<S, __half>) wgmma_m64n64_f16(d, da, db);
    else wgmma_m64n64_bf16(d, da, db);
  }
}

template <int N>
__device__ __forceinline__ void wgmma_tf32_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (N == 256) wgmma_m64n256_tf32_rs(d, a, db);
  else if constexpr (N == 128) wgmma_m64n128_tf32_rs(d, a, db);
  else wgmma_m64n64_tf32_rs(d, a, db);
}

template <class Cfg, class M, bool kFwd>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) tc_wgmma_kernel(const Params p) {
#if defined(TCONV_TC_WGMMA)
  using S = typename M::elem;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, T = Cfg::kThreads, kStages = Cfg::kStages, kChunks = Cfg::kChunks;
  constexpr bool kTf32 = sizeof(S) == 4;
  constexpr int kKSteps = 4;  // 128 bytes of k per tile, 32 bytes (k16 of bf16/f16, k8 of tf32) per wgmma
  extern __shared__ __align__(128) unsigned char tc_smem[];
  __shared__ Tables<BM> tb;
  unsigned char* smem = tc_smem + ((1024 - (smem_addr(tc_smem) & 1023)) & 1023);  // swizzle atoms: 1024-aligned

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp / 4;
  const BlockCoords b = block_coords<kFwd, BM, BN>(p);
  if (b.m0 >= b.m_total) return;  // block-uniform (smaller phases)
  build_tables<kFwd, BM, T>(p, b, tb, tid);
  using Loader = TileLoader<BM, BN, T, kChunks, S, kFwd>;
  Loader ld;
  ld.init(tid);
  __syncthreads();  // tables
  const int kt_total = tb.nq * tb.np * ((p.Kc + Loader::kBK - 1) / Loader::kBK);
  int kt0 = 0, nkt = 0;
  split_range(p, kt_total, kt0, nkt);
  ld.start(p, b, tb, kt0, nkt);

  float acc[Cfg::kAcc];
#pragma unroll
  for (int i = 0; i < Cfg::kAcc; ++i) acc[i] = 0.f;

  // Pipeline: kDist k-tiles of copies in flight ahead of the multiply, and (with 4 stages or more) the wgmma of
  // k-tile kt − 1 still running while k-tile kt is issued, so that the barrier and the copy issue of an
  // iteration overlap tensor-core work. A stage is refilled only when both are done with it: k-tile kt + kDist
  // goes to the stage of k-tile kt − 1 − kInFlight.
  constexpr int kInFlight = kStages >= 4 ? 1 : 0, kDist = kStages - 1 - kInFlight;
#pragma unroll
  for (int s = 0; s < kDist; ++s) {
    if (s < nkt) ld.load(p, b, tb, smem + s * Cfg::kStageBytes, smem + s * Cfg::kStageBytes + BM * 128);
    cp_async_commit();
  }
  // One k-tile: wait for this thread's copies, publish every thread's (fence for the tensor cores' reads, block
  // barrier), queue the copies of k-tile kt + kDist, multiply. bf16/f16: both operands straight from shared
  // memory. tf32: B (the weights, rounded when packed) from shared memory, A from registers — each thread loads
  // its warp's fragment of the 16 rows it multiplies, rounds it to nearest even (core::round_input's rule; the
  // tensor cores would truncate) and passes it to the wgmma. Rounding the tile in place instead cost a
  // shared-memory read and write of A per k-tile on top of the wgmma's own read: 16–21% of the data gradient on
  // few-pixel layers (bench/results/cuda-h100-2026-11-24-s7/sweeps/tf32_rounding_cost.txt), and moving that pass
  // beside the multiplies did not help (eighth session): the SM's shared-memory bandwidth, not the barrier, was
  // the limit. The fragments of k-tile kt stay in registers until its wgmmas are done (kInFlight): two sets,
  // fa[B] for B = kt % 2, with B a compile-time index so that they stay in registers. The 512-thread tile
  // (256×128, 128 registers per thread) has no room for them (88–120 bytes of spills) and rounds in place.
  constexpr bool kTf32Rs = kTf32 && T <= 256;
  [[maybe_unused]] uint32_t fa[2][kKSteps][4];
  // This thread's fragment row (and the row 8 below) in the A tile, and its byte within a 16-byte chunk.
  [[maybe_unused]] const int frow = wg * 64 + (warp % 4) * 16 + (lane >> 2), fcol = 4 * (lane & 3);
  auto step = [&](auto buf, int kt) {
    [[maybe_unused]] constexpr int B = decltype(buf)::value;
    cp_async_wait<kDist - 1>();  // this thread's copies of k-tile kt have landed
    unsigned char* sA = smem + (kt % kStages) * Cfg::kStageBytes;
    if constexpr (kTf32 && !kTf32Rs) ld.round_own_a(sA);  // in place (see above)
    fence_proxy_async();  // the copies (and roundings) are visible to the tensor cores' reads ...
    __syncthreads();      // ... of every thread's chunks; every warpgroup is done with k-tile kt − 1 − kInFlight
    const int next = kt + kDist;
    if (next < nkt) {
      unsigned char* st = smem + (next % kStages) * Cfg::kStageBytes;
      ld.load(p, b, tb, st, st + BM * 128);
    }
    cp_async_commit();
    const uint64_t db = wgmma_desc(smem_addr(sA + BM * 128));
    if constexpr (kTf32Rs) {
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks)  // k8 step ks: chunks 2ks (columns 0–3) and 2ks + 1 (4–7)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int v = 0; v < 2; ++v)
            fa[B][ks][2 * h + v] = tf32_rne_fast(
                *reinterpret_cast<const uint32_t*>(sA + swz<kChunks>(frow + 8 * v, 2 * ks + h) + fcol));
      fence_regs(acc);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) wgmma_tf32_rs<BN>(acc, fa[B][ks], db + 2 * ks);  // +32 bytes of k
    } else {
      const uint64_t da = wgmma_desc(smem_addr(sA + wg * 64 * 128));
      fence_regs(acc);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) wgmma_op<M, BN>(acc, da + 2 * ks, db + 2 * ks);  // +32 bytes of k
    }
    wgmma_commit();
    wgmma_wait<kInFlight>();
    fence_regs(acc);
  };
  int kt = 0;  // counts this block's k-tiles from kt0
  for (; kt + 1 < nkt; kt += 2) {
    step(std::integral_constant<int, 0>{}, kt);
    step(std::integral_constant<int, 1>{}, kt + 1);
  }
  if (kt < nkt) step(std::integral_constant<int, 0>{}, kt);
  wgmma_wait<0>();
  fence_regs(acc);
  cp_async_wait<0>();
  const int gid = lane >> 2, tig = lane & 3, row = wg * 64 + (warp % 4) * 16 + gid;
  if (p.splits > 1) {
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        store_partial(p, b, row + h * 8, j * 8 + tig * 2, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
    return;
  }
  __syncthreads();  // the pipeline's shared memory becomes the output tile

  S* cs = reinterpret_cast<S*>(smem);
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h)
      stage_pair<kFwd, BN, S>(p, b, cs, row + h * 8, j * 8 + tig * 2, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
  __syncthreads();
  store_tile<BM, BN, T, S>(p, b, cs, tb.row_out, tid);
#else
  (void)p;  // not sm_90a code: never launched (wgmma_usable)
#endif
}

// ---- mainloop 3: warp-specialized wgmma (sm_90a) ------------------------------------------------------------
// Block tile 128 × BN: two consumer warpgroups (64 rows each, all BN columns) and one producer warpgroup. The
// producer queues the cp.async copies kStages − 1 k-tiles ahead; for each k-tile it waits for its own copies,
// rounds its A chunks to tf32, fences them for the tensor cores and arrives on the stage's `full` mbarrier. The
// consumers wait on `full`, issue the k-tile's wgmmas (one group left in flight) and arrive on the previous
// stage's `empty` mbarrier once its wgmmas are done; the producer waits on `empty` before refilling a stage.
// No block-wide barrier in the loop, and the copy issue and address arithmetic run beside the multiplies. (The
// single-role mainloop above, where all warps copy, round and meet at a barrier every k-tile, was measured on
// the H100 with no eligible warp in 56% of the cycles and the tensor cores at about a quarter of their rate.)
// Opt-in (TCONV_TC_IGEMM_WS=1 lets the planner take these tiles, TCONV_TC_IGEMM_TILE=ws* forces one): tested on
// the H100 by scripts/gpu_check.sh's hooks, and measured slower than the single-role tiles on the suite's layers
// (bench/results/cuda-h100-2026-11-24-s7/sweeps/tf32_rounding_cost.txt; eighth session: 4–27% on tf32's data
// gradient), so not the default.
template <int BN_, int STAGES_>
struct WsTile {
  static constexpr int BM = 128, BN = BN_, kStages = STAGES_, kMinBlocks = 1;
  static constexpr bool kWs = true;
  static constexpr int kConsumers = 2, kThreads = 128 * (kConsumers + 1), kChunks = 8;
  static constexpr int kStageBytes = (BM + BN) * 16 * kChunks;  // a multiple of 1024
  static constexpr int kAcc = BN / 2;
  template <class S>
  static constexpr int smem_bytes() {
    const int pipe = kStages * kStageBytes, epi = BM * out_pitch<BN>() * static_cast<int>(sizeof(S));
    return (pipe > epi ? pipe : epi) + 1024;
  }
};
using Ws128x128 = WsTile<128, 6>;  // 6 × 32 KB
using Ws128x256 = WsTile<256, 4>;  // 4 × 48 KB

template <class Cfg, class M, bool kFwd>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) tc_wgmma_ws_kernel(const Params p) {
#if defined(TCONV_TC_WGMMA)
  using S = typename M::elem;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, T = Cfg::kThreads, kStages = Cfg::kStages, kChunks = Cfg::kChunks;
  constexpr int kProducers = 128, kConsumerThreads = 128 * Cfg::kConsumers;
  constexpr bool kTf32 = sizeof(S) == 4;
  constexpr int kKSteps = 4;  // 128 bytes of k per tile, 32 bytes per wgmma
  extern __shared__ __align__(128) unsigned char tc_smem[];
  __shared__ Tables<BM> tb;
  __shared__ __align__(8) uint64_t bars[2 * kStages];  // full[s], then empty[s]
  unsigned char* smem = tc_smem + ((1024 - (smem_addr(tc_smem) & 1023)) & 1023);  // swizzle atoms: 1024-aligned

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wg = warp / 4;
  const BlockCoords b = block_coords<kFwd, BM, BN>(p);
  if (b.m0 >= b.m_total) return;  // block-uniform (smaller phases)
  build_tables<kFwd, BM, T>(p, b, tb, tid);
  const uint32_t full0 = smem_addr(&bars[0]), empty0 = smem_addr(&bars[kStages]);
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full0 + 8 * s, kProducers);
      mbar_init(empty0 + 8 * s, kConsumerThreads);
    }
  }
  __syncthreads();  // tables and barriers
  using Loader = TileLoader<BM, BN, kProducers, kChunks, S, kFwd>;
  const int kc_tiles = (p.Kc + Loader::kBK - 1) / Loader::kBK;
  const int kt_total = tb.nq * tb.np * kc_tiles;
  int kt0 = 0, nkt = 0;
  split_range(p, kt_total, kt0, nkt);

  float acc[Cfg::kAcc];
#pragma unroll
  for (int i = 0; i < Cfg::kAcc; ++i) acc[i] = 0.f;

  if (wg == Cfg::kConsumers) {
    // ---- producer: copies, tf32 rounding, `full` arrivals ----
    Loader ld;
    ld.init(tid - kConsumerThreads);
    ld.start(p, b, tb, kt0, nkt);
#pragma unroll
    for (int j = 0; j < kStages - 1; ++j) {
      if (j < nkt) ld.load(p, b, tb, smem + j * Cfg::kStageBytes, smem + j * Cfg::kStageBytes + BM * 128);
      cp_async_commit();
    }
    for (int kt = 0; kt < nkt; ++kt) {
      cp_async_wait<kStages - 2>();  // this thread's copies of k-tile kt have landed
      const int s = kt % kStages;
      if constexpr (kTf32) ld.round_own_a(smem + s * Cfg::kStageBytes);
      fence_proxy_async();       // copies and roundings visible to the tensor cores ...
      mbar_arrive(full0 + 8 * s);  // ... once the consumers' wait on `full` returns
      const int j = kt + kStages - 1;  // refill the stage of k-tile kt − 1 once its wgmmas are done
      if (j < nkt) {
        const int sj = j % kStages;
        if (j >= kStages) mbar_wait(empty0 + 8 * sj, static_cast<uint32_t>((j / kStages - 1) & 1));
        ld.load(p, b, tb, smem + sj * Cfg::kStageBytes, smem + sj * Cfg::kStageBytes + BM * 128);
      }
      cp_async_commit();
    }
    cp_async_wait<0>();
  } else {
    // ---- consumers: 64 rows × BN each ----
    for (int kt = 0; kt < nkt; ++kt) {
      const int s = kt % kStages;
      mbar_wait(full0 + 8 * s, static_cast<uint32_t>((kt / kStages) & 1));
      const unsigned char* sA = smem + s * Cfg::kStageBytes;
      const uint64_t da = wgmma_desc(smem_addr(sA + wg * 64 * 128)), db = wgmma_desc(smem_addr(sA + BM * 128));
      fence_regs(acc);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) wgmma_op<M, BN>(acc, da + 2 * ks, db + 2 * ks);  // +32 bytes of k
      wgmma_commit();
      wgmma_wait<1>();  // the wgmmas of k-tile kt − 1 are done: its stage may be refilled
      fence_regs(acc);
      if (kt >= 1) mbar_arrive(empty0 + 8 * ((kt - 1) % kStages));
    }
    wgmma_wait<0>();
    fence_regs(acc);
  }

  const int gid = lane >> 2, tig = lane & 3, row = wg * 64 + (warp % 4) * 16 + gid;
  if (p.splits > 1) {
    if (wg < Cfg::kConsumers) {
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          store_partial(p, b, row + h * 8, j * 8 + tig * 2, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
    }
    return;
  }
  __syncthreads();  // every wgmma done, every copy landed: the stages become the output tile
  S* cs = reinterpret_cast<S*>(smem);
  if (wg < Cfg::kConsumers) {
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        stage_pair<kFwd, BN, S>(p, b, cs, row + h * 8, j * 8 + tig * 2, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
  }
  __syncthreads();
  store_tile<BM, BN, T, S>(p, b, cs, tb.row_out, tid);
#else
  (void)p;  // not sm_90a code: never launched (wgmma_usable)
#endif
}

// ---- weight packing (pre-pass) ------------------------------------------------------------------------------
// fwd: wpk[g][tap][j][c] = round(wei[g·Og + j][tap][c]): the same rows of Ig values, reordered. One warp per
// row, lanes along c (coalesced on both sides, no per-element index division).
template <class M>
__global__ void pack_fwd_kernel(const float* __restrict__ wei, typename M::elem* __restrict__ wpk, int64_t groups,
                                int64_t taps, int64_t og, int64_t ig) {
  const int64_t rows = groups * taps * og;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
    const int64_t j = r % og, t = (r / og) % taps, g = r / (og * taps);  // destination row (g, t, j)
    const float* s = wei + ((g * og + j) * taps + t) * ig;
    typename M::elem* d = wpk + r * ig;
    for (int64_t c = threadIdx.x % 32; c < ig; c += 32) d[c] = M::cvt(s[c]);
  }
}

// bwd_data: wpk[g][tap][j][o] = round(wei[g·Og + o][tap][j]): a transpose of o and j for each (g, tap), through
// 32×32 shared tiles so that reads run along j and writes along o.
template <class M>
__global__ void pack_bwd_kernel(const float* __restrict__ wei, typename M::elem* __restrict__ wpk, int64_t groups,
                                int64_t taps, int64_t og, int64_t ig) {
  __shared__ float tile[32][33];
  const int64_t o_tiles = (og + 31) / 32, j_tiles = (ig + 31) / 32;
  const int64_t tiles = groups * taps * o_tiles * j_tiles;
  const int tx = threadIdx.x % 32, ty = threadIdx.x / 32;  // 32 × 8 threads
  for (int64_t bi = blockIdx.x; bi < tiles; bi += gridDim.x) {
    const int64_t jt = bi % j_tiles, ot = (bi / j_tiles) % o_tiles, gt = bi / (j_tiles * o_tiles);
    const int64_t g = gt / taps, t = gt % taps, o0 = ot * 32, j0 = jt * 32;
    __syncthreads();  // the previous tile has been written out
    for (int k = ty; k < 32; k += 8) {
      const int64_t o = o0 + k, j = j0 + tx;
      if (o < og && j < ig) tile[k][tx] = wei[((g * og + o) * taps + t) * ig + j];
    }
    __syncthreads();
    for (int k = ty; k < 32; k += 8) {
      const int64_t j = j0 + k, o = o0 + tx;
      if (o < og && j < ig) wpk[((g * taps + t) * ig + j) * og + o] = M::cvt(tile[tx][k]);
    }
  }
}

// ---- split-K reduction ----------------------------------------------------------------------------------------
template <class S>
__device__ __forceinline__ S from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}

// out = Σ_s part[slice s] for each (group·phase, pixel row, 4 columns), the slices added in ascending s (a fixed
// order: the result depends on the problem alone), then bias and neuron (fwd) and the conversion, as the
// block epilogue of an unsplit tile does them.
template <class S, bool kFwd>
__global__ void __launch_bounds__(256) splitk_reduce_kernel(const Params p, int64_t gz) {
  const int nv = p.N / 4;
  const int64_t total = gz * p.part_m * nv, slice = p.part_m * p.N;
  S* __restrict__ out = static_cast<S*>(p.out);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(i % nv) * 4;
    const int64_t t = i / nv, m = t % p.part_m, zz = t / p.part_m;
    const int grp = static_cast<int>(zz / p.phases), phase = static_cast<int>(zz % p.phases);
    const int py = kFwd ? phase / p.sw : 0, px = kFwd ? phase % p.sw : 0;
    const int64_t rows_h = kFwd ? (p.out_h - py + p.sh - 1) / p.sh : p.out_h;
    const int64_t rows_w = kFwd ? (p.out_w - px + p.sw - 1) / p.sw : p.out_w;
    if (m >= p.n * rows_h * rows_w) continue;  // a smaller phase's rows past its end
    const float* src = p.part + (zz * p.splits * p.part_m + m) * p.N + j;
    float4 acc = *reinterpret_cast<const float4*>(src);
    for (int s = 1; s < p.splits; ++s) {
      const float4 v = *reinterpret_cast<const float4*>(src + s * slice);
      acc.x += v.x;
      acc.y += v.y;
      acc.z += v.z;
      acc.w += v.w;
    }
    const int64_t xx = m % rows_w, tt = m / rows_w, yy = tt % rows_h, n = tt / rows_h;
    const int64_t y = kFwd ? py + yy * p.sh : yy, x = kFwd ? px + xx * p.sw : xx;
    S* d = out + n * p.out_sn + y * p.out_sh + x * p.out_sw + static_cast<int64_t>(grp) * p.N + j;
    const float v[4] = {acc.x, acc.y, acc.z, acc.w};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float r = v[e];
      if (kFwd) {
        if (p.bias != nullptr) r += p.bias[static_cast<int64_t>(grp) * p.N + j + e];
        if (p.nd.type != NeuronType::none) r = cuda_direct::neuron_dev(p.nd.type, p.nd.a, p.nd.b, p.nd.c, r);
      }
      d[e] = from_float<S>(r);
    }
  }
}

// The block tiles as the planner knows them (tc_igemm_plan.hpp) and as the kernels are built: one table.
template <class Cfg>
constexpr bool tile_matches(int id, bool wg) {
  return kTileInfo[id].bm == Cfg::BM && kTileInfo[id].bn == Cfg::BN && kTileInfo[id].wg == wg;
}
static_assert(tile_matches<Wg128x128>(kWg128x128, true) && tile_matches<Wg128x64>(kWg128x64, true) &&
              tile_matches<Wg64x128>(kWg64x128, true) && tile_matches<Wg64x64>(kWg64x64, true) &&
              tile_matches<Wg128x128d>(kWg128x128d, true) && tile_matches<Wg256x128>(kWg256x128, true) &&
              tile_matches<Wg128x256>(kWg128x256, true) && tile_matches<Ws128x128>(kWs128x128, true) &&
              tile_matches<Ws128x256>(kWs128x256, true) && tile_matches<Mma128x128>(kMma128x128, false) &&
              tile_matches<Mma128x64>(kMma128x64, false) && tile_matches<Mma64x128>(kMma64x128, false) &&
              tile_matches<Mma64x64>(kMma64x64, false),
              "kTileInfo (tc_igemm_plan.hpp) and the tile configurations disagree");

// Whether this translation unit's wgmma kernels hold code on `device` (tc_igemm_wgmma.cuh), checked once per
// device and element type (each type's kernels are a compilation of their own).
template <class M>
bool wgmma_usable(int device) {
  static std::atomic<int> state[64];
  return wgmma_kernel_usable(reinterpret_cast<const void*>(tc_wgmma_kernel<Wg64x64, M, false>), device, state);
}

template <class Cfg, class M, bool kFwd, bool kWgmma>
core::Status launch_tile(const Params& prm, int64_t max_m, int64_t gz, cudaStream_t stream, int device) {
  constexpr int smem = Cfg::template smem_bytes<typename M::elem>();
  void (*kernel)(Params);
  if constexpr (kWgmma) {
    if constexpr (Cfg::kWs) kernel = &tc_wgmma_ws_kernel<Cfg, M, kFwd>;
    else kernel = &tc_wgmma_kernel<Cfg, M, kFwd>;
  } else {
    kernel = &tc_mma_kernel<Cfg, M, kFwd>;
  }
  // More than 48 KB of dynamic shared memory must be allowed once per kernel and device; remembered per device
  // (bit d of `raised`) so that a call does not pay for the driver call each time.
  static std::atomic<uint64_t> raised{0};
  const uint64_t bit = device >= 0 && device < 64 ? uint64_t{1} << device : 0;
  if (bit == 0 || (raised.load(std::memory_order_relaxed) & bit) == 0) {
    core::Status s = cuda_backend::check(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "cudaFuncSetAttribute");
    if (!s.ok()) return s;
    raised.fetch_or(bit, std::memory_order_relaxed);
  }
  const dim3 grid(static_cast<unsigned>((max_m + Cfg::BM - 1) / Cfg::BM),
                  static_cast<unsigned>((prm.N + Cfg::BN - 1) / Cfg::BN), static_cast<unsigned>(gz * prm.splits));
  kernel<<<grid, Cfg::kThreads, smem, stream>>>(prm);
  core::Status s = cuda_backend::check_launch("cuda_tc_igemm");
  if (!s.ok() || prm.splits <= 1) return s;
  const int64_t items = gz * prm.part_m * (prm.N / 4);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((items + 255) / 256, int64_t{1} << 20));
  splitk_reduce_kernel<typename M::elem, kFwd><<<blocks, 256, 0, stream>>>(prm, gz);
  return cuda_backend::check_launch("cuda_tc_igemm split-K reduction");
}

// The plan as text, for the benchmark logs (TCONV_TC_IGEMM_VERBOSE=1 prints it on each run).
bool verbose() {
  static const bool v = std::getenv("TCONV_TC_IGEMM_VERBOSE") != nullptr;
  return v;
}

template <class M>
core::Status run_typed(const core::Problem& pr, const core::Args& a, void* workspace, cudaStream_t stream, int device) {
  using S = typename M::elem;
  constexpr int kVec = 16 / static_cast<int>(sizeof(S));
  constexpr int kEsize = static_cast<int>(sizeof(S));
  const core::Geometry& g = pr.g;
  const bool fwd = pr.dir == core::Direction::fwd;
  const core::TensorView& in = fwd ? a.src : a.diff_dst;
  const core::TensorView& out = fwd ? a.dst : a.diff_src;
  const int64_t taps = g.kh * g.kw;

  // Pre-pass: weights → workspace in the operand type and the B layout (16-byte aligned start).
  auto* wpk = reinterpret_cast<S*>((reinterpret_cast<uintptr_t>(workspace) + 15) & ~uintptr_t{15});
  if (fwd) {
    const int64_t rows = g.groups * taps * g.og();
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((rows + 7) / 8, int64_t{1} << 16));
    pack_fwd_kernel<M><<<blocks, 256, 0, stream>>>(a.wei, wpk, g.groups, taps, g.og(), g.ig());
  } else {
    const int64_t tiles = g.groups * taps * ((g.og() + 31) / 32) * ((g.ig() + 31) / 32);
    const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(tiles, int64_t{1} << 16));
    pack_bwd_kernel<M><<<blocks, 256, 0, stream>>>(a.wei, wpk, g.groups, taps, g.og(), g.ig());
  }
  core::Status s = cuda_backend::check_launch("cuda_tc_igemm weight packing");
  if (!s.ok()) return s;

  const bool wgmma = wgmma_usable<M>(device);
  const Plan plan = make_plan(pr, kEsize, wgmma);
  const GemmDims dims = gemm_dims(pr, kEsize);
  if (verbose())
    std::fprintf(stderr, "cuda_tc_igemm %s esize %d: m %lld n %lld k-tiles %lld gz %lld -> %s, %d split(s), model %.1f us\n",
                 fwd ? "fwd" : "bwd_data", kEsize, static_cast<long long>(dims.max_m),
                 static_cast<long long>(dims.n_cols), static_cast<long long>(dims.kt(wgmma)),
                 static_cast<long long>(dims.gz), kTileNames[plan.tile], plan.splits, plan.est_ns * 1e-3);

  Params prm{};
  prm.in = in.data;
  prm.in_sn = in.sn;
  prm.in_sh = in.sh;
  prm.in_sw = in.sw;
  prm.out = out.data;
  prm.out_sn = out.sn;
  prm.out_sh = out.sh;
  prm.out_sw = out.sw;
  prm.wpk = wpk;
  prm.bias = fwd && pr.with_bias ? a.bias : nullptr;
  prm.nd = fwd ? pr.neuron : NeuronDescriptor{};
  prm.n = g.n;
  prm.in_h = static_cast<int>(fwd ? g.h_in : g.h_out);
  prm.in_w = static_cast<int>(fwd ? g.w_in : g.w_out);
  prm.out_h = static_cast<int>(fwd ? g.h_out : g.h_in);
  prm.out_w = static_cast<int>(fwd ? g.w_out : g.w_in);
  prm.kh = static_cast<int>(g.kh);
  prm.kw = static_cast<int>(g.kw);
  prm.sh = static_cast<int>(g.stride_h);
  prm.sw = static_cast<int>(g.stride_w);
  prm.dh = static_cast<int>(g.dil_h);
  prm.dw = static_cast<int>(g.dil_w);
  prm.ph = static_cast<int>(g.pad_h);
  prm.pw = static_cast<int>(g.pad_w);
  prm.N = static_cast<int>(fwd ? g.og() : g.ig());
  prm.Kc = static_cast<int>(fwd ? g.ig() : g.og());
  prm.phases = static_cast<int>(fwd ? g.stride_h * g.stride_w : 1);
  prm.vec_out = aligned16(out.data) && out.sn % kVec == 0 && out.sh % kVec == 0 && out.sw % kVec == 0 &&
                prm.N % kVec == 0;
  prm.splits = plan.splits;
  prm.part_m = dims.max_m;
  if (plan.splits > 1) {
    // After the packed weights, 16-byte aligned (workspace_bytes counted both, with their slack).
    const uintptr_t end = reinterpret_cast<uintptr_t>(wpk) + static_cast<uintptr_t>(core::wei_elements(g)) * kEsize;
    prm.part = reinterpret_cast<float*>((end + 15) & ~uintptr_t{15});
  }

  const int64_t max_m = dims.max_m, gz = dims.gz;
  auto go = [&](auto cfg, auto wg_c) -> core::Status {
    using Cfg = decltype(cfg);
    constexpr bool kWg = decltype(wg_c)::value;
    return fwd ? launch_tile<Cfg, M, true, kWg>(prm, max_m, gz, stream, device)
               : launch_tile<Cfg, M, false, kWg>(prm, max_m, gz, stream, device);
  };
  using Yes = std::true_type;
  using No = std::false_type;
  switch (plan.tile) {
    case kWg128x128: return go(Wg128x128{}, Yes{});
    case kWg128x64: return go(Wg128x64{}, Yes{});
    case kWg64x128: return go(Wg64x128{}, Yes{});
    case kWg64x64: return go(Wg64x64{}, Yes{});
    case kWg128x128d: return go(Wg128x128d{}, Yes{});
    case kWg256x128: return go(Wg256x128{}, Yes{});
    case kWg128x256: return go(Wg128x256{}, Yes{});
    case kWs128x128: return go(Ws128x128{}, Yes{});
    case kWs128x256: return go(Ws128x256{}, Yes{});
    case kMma128x128: return go(Mma128x128{}, No{});
    case kMma128x64: return go(Mma128x64{}, No{});
    case kMma64x128: return go(Mma64x128{}, No{});
    default: return go(Mma64x64{}, No{});
  }
}

}  // namespace
}  // namespace tconv::cuda_tc
