// cuda_tc_wgrad: weight and bias gradients on the tensor cores (mma.sync on sm_80+; wgmma on sm_90a), deterministic.
//
// Per group g and tap (q, p) the weight gradient is a GEMM whose reduction runs over the source pixels:
//   diff_wei[g·Og + o][q][p][c] = Σ_{n, iy, ix} diff_dst[n][oy][ox][g·Og + o] · src[n][iy][ix][g·Ig + c]
//   oy = iy·sh − ph + dh·(kh − 1 − q), ox = ix·sw − pw + dw·(kw − 1 − p)  (outside the output: no term)
// M = (tap, o), N = c, K = pixels. Both operands are MN-major in memory (the channels of one pixel — m or n —
// are contiguous, the pixels k strided), so a pipeline stage stages bk pixels × 128 channels of each operand
// with 16-byte cp.async copies (zero-filled where the pixel is past the chunk or its tap lands outside the
// output). On sm_90a the 16-bit types are multiplied by wgmma straight from those stages (it reads 16-bit
// operands MN-major); tf32, which wgmma takes only K-major, goes through a transposing pass per stage that
// writes rounded K-major tiles (gemm_block's kWgT pipeline). Elsewhere the fragments come out of shared memory
// with ldmatrix.trans (16-bit types) or, for tf32 (no transposing ldmatrix for 32-bit elements), 16-byte loads of
// fragments laid out to be adjacent, the values rounded to tf32 once in shared memory when their stage lands.
//
// Tile: 128 rows × 128 in channels per block of 8 warps (each 64 × 32). When Og < 128 the 128 rows hold
// tm = 128 / mo taps of mo ≥ Og channels each: those taps read the same source pixels (the B slab), so the
// slab is staged once for all of them — dcgan_g4, unet_up4 (Og 64) fill the tensor cores as Og 128 does.
// Shared rows are 256 or 512 bytes; 16-byte chunks are XOR-swizzled by the row so that the 8 rows an
// ldmatrix reads (or the 16-byte tf32 loads of a quarter warp) fall in distinct banks. The pipeline keeps
// 96 KiB of stages per block with two blocks per SM (16-bit: 6 × 32 pixels; tf32: 3 × 32 pixels, or 6 × 16),
// or 192 KiB with one (launch_typed's variants). tf32 values are rounded once per stage in shared memory, with
// sm_90's one-instruction RNE conversion where it exists: the integer form took more issue slots than the mma.
//
// Determinism: when the tiles cannot fill the GPU, the pixel range is cut into S chunks — S from the
// problem alone (kPlanSms is a constant, never the device's SM count or a timing) — each block writes
// its partial tile to workspace and a second kernel adds the S partials in a fixed order. The bias gradient
// (column sums of diff_dst) runs in the same launch as extra blocks after the GEMM blocks; they too write
// fixed-chunk partials that the second kernel adds in a fixed order. No floating-point atomics anywhere.
//
// Views that are not 16-byte aligned (base or strides) take the same kernels with ordinary loads instead
// of cp.async (kVec = false): slower, same results.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/igemm_mma.cuh"
#include "cuda/tc_common.cuh"
#include "cuda/tc_igemm_wgmma.cuh"
#include "cuda/tc_paths.hpp"
#include "cuda/tc_wgrad.cuh"

namespace tconv::cuda_tc {
namespace {

using cuda_direct::MmaBf16;
using cuda_direct::MmaF16;
using cuda_direct::MmaTf32;

constexpr int kThreads = 256;
constexpr int kWsStagers = 128;  // staging threads of the warp-specialized variants (beside kThreads multiplying)
constexpr int kTile = 128;           // tile rows (tap, out channel) and columns (in channel)
// Blocks wanted in flight: the resident blocks (one or two per SM, WgradPlan::min_blocks) on each of the H100's
// 132 SMs. A constant, so that the split (and with it every rounding) is the same on any GPU.
constexpr int64_t kPlanSms = 132;
constexpr int64_t kBiasTargetBlocks = 264;  // bias blocks: they run after (or beside) the last GEMM wave
constexpr int64_t kMinStagesPerChunk = 16;  // a chunk shorter than this spends more on its prologue and
                                            // on writing its partial tile than on the multiply
constexpr int64_t kMaxSplit = 128;

// kBK_: pixels per stage — 32 for 16-bit types (two m16n8k16 steps); 16 or 32 for tf32 (two or four m16n8k8
// steps: 32 halves the barriers and the loader's index work per multiply, at 32 KiB per stage).
template <class M, int kBK_>
struct Cfg {
  using E = typename M::elem;
  static constexpr int kEsize = static_cast<int>(sizeof(E));
  static constexpr int kEpc = 16 / kEsize;           // elements per 16-byte chunk
  static constexpr int kBK = kBK_;                   // pixels per stage
  static constexpr int kRowBytes = kTile * kEsize;   // one staged pixel row of one operand
  static constexpr int kCpr = kTile / kEpc;          // chunks per row: 16 (16-bit) or 32 (tf32)
  static constexpr int kTileBytes = kBK * kRowBytes;  // 8 or 16 KiB
  static constexpr int kStageBytes = 2 * kTileBytes;  // A (diff_dst) then B (src)
  static constexpr int kTpr = kThreads / kBK;  // threads per staged pixel row
  static constexpr int kCpt = kCpr / kTpr;     // chunks per thread per operand and stage
  // The swizzles below flip chunk bits under kTpr only (row & 7 for 16-bit, values < 8 for tf32).
  static_assert(kCpr % kTpr == 0 && kCpt >= 2 && kTpr >= 8 && kBK % 16 == 0, "staging layout");
  // Physical chunk = logical chunk XOR swz(row), which flips bits below kTpr only. 16-bit: ldmatrix reads 8
  // consecutive rows of one chunk column → XOR row & 7 puts them in 8 distinct bank groups. tf32: a quarter
  // warp reads rows k..k+3 (k & 3 = tig) at chunks {b, b + 2} (A) or {b, b + 1} (B), b even: XOR with
  // {0, 1, 4, 5} (A) or {0, 2, 4, 6} (B) makes the eight 16-byte reads hit eight bank groups.
  static __device__ __forceinline__ int swz_a(int row) {
    return kEsize == 2 ? (row & 7) : ((row & 1) | ((row & 2) << 1));
  }
  static __device__ __forceinline__ int swz_b(int row) { return kEsize == 2 ? (row & 7) : ((row & 3) << 1); }
};

struct WParams {
  const void* x;  // src view
  int64_t xsn, xsh, xsw;
  const void* dy;  // diff_dst view
  int64_t dsn, dsh, dsw;
  float* out;        // diff_wei (direct) or the S partial weight gradients [S][wei_count]
  float* bias_part;  // [sb][c_out]
  int h_in, w_in, h_out, w_out, kw, sh, sw, dh, dw;
  int sy0, sx0;  // oy − iy·sh of tap (0, 0): −ph + dh·(kh − 1); tap (q, p) subtracts dh·q, dw·p
  int og, ig, taps, mo_shift;
  int64_t tg, mt, nt, split, chunk, k_total, wei_count;
  int add_ix, add_iy, add_n;  // the pixel cursor's step by one stage (bk pixels)
  bool direct, accumulate;
  // bias blocks
  int vt, rows;
  int64_t vb, p_total, chunk_b, c_out, bias_blocks, gemm_blocks;
  int b_add_ox, b_add_oy, b_add_n;  // the bias cursor's step by `rows` pixels
};

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// 16 bytes global → shared: cp.async when the views are aligned, else element loads and one shared store
// (zeros when !ok; src is not read then).
template <class E, bool kVec>
__device__ __forceinline__ void copy16(unsigned char* dst, const E* src, bool ok) {
  if constexpr (kVec) {
    cp_async_16(dst, src, ok);
  } else {
    uint32_t w[4] = {0u, 0u, 0u, 0u};
    if (ok) {
      if constexpr (sizeof(E) == 2) {
        const auto* s16 = reinterpret_cast<const uint16_t*>(src);
#pragma unroll
        for (int i = 0; i < 4; ++i) w[i] = uint32_t{s16[2 * i]} | (uint32_t{s16[2 * i + 1]} << 16);
      } else {
        const auto* s32 = reinterpret_cast<const uint32_t*>(src);
#pragma unroll
        for (int i = 0; i < 4; ++i) w[i] = s32[i];
      }
    }
    *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

template <class E, bool kVec>
__device__ __forceinline__ uint4 load16(const E* src, bool ok) {
  if (!ok) return make_uint4(0u, 0u, 0u, 0u);
  if constexpr (kVec) {
    return __ldg(reinterpret_cast<const uint4*>(src));
  } else {
    uint32_t w[4];
    if constexpr (sizeof(E) == 2) {
      const auto* s16 = reinterpret_cast<const uint16_t*>(src);
#pragma unroll
      for (int i = 0; i < 4; ++i) w[i] = uint32_t{s16[2 * i]} | (uint32_t{s16[2 * i + 1]} << 16);
    } else {
      const auto* s32 = reinterpret_cast<const uint32_t*>(src);
#pragma unroll
      for (int i = 0; i < 4; ++i) w[i] = s32[i];
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
}

// acc[e] += element e of the 16 bytes (exact widening of bf16/fp16 to float).
template <class E>
__device__ __forceinline__ void add16(float (&acc)[16 / sizeof(E)], uint4 v) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (std::is_same_v<E, __nv_bfloat16>) {
      acc[2 * i] += __uint_as_float(w[i] << 16);
      acc[2 * i + 1] += __uint_as_float(w[i] & 0xffff0000u);
    } else if constexpr (std::is_same_v<E, __half>) {
      acc[2 * i] += __half2float(__ushort_as_half(static_cast<unsigned short>(w[i] & 0xffffu)));
      acc[2 * i + 1] += __half2float(__ushort_as_half(static_cast<unsigned short>(w[i] >> 16)));
    } else {
      acc[i] += __uint_as_float(w[i]);
    }
  }
}

// One bias block: channel vectors vb·vt … +vt of diff_dst summed over pixel chunk sb (flat n, oy, ox
// order), `rows` pixel lanes per vector, then the lanes added in lane order: partial[sb][c].
template <class E, bool kVec>
__device__ __forceinline__ void bias_block(const WParams& P, int64_t bb, unsigned char* smem) {
  constexpr int kEpc = 16 / static_cast<int>(sizeof(E));
  constexpr int kU = 8;  // loads in flight per thread
  const int tid = threadIdx.x;
  const int64_t vbi = bb % P.vb, sbi = bb / P.vb;
  const int v = tid % P.vt, r = tid / P.vt;
  const int64_t cv = P.c_out / kEpc;
  const int64_t cvec = vbi * P.vt + v;
  float acc[kEpc];
#pragma unroll
  for (int e = 0; e < kEpc; ++e) acc[e] = 0.f;
  if (r < P.rows && cvec < cv) {
    int64_t j = sbi * P.chunk_b + r;
    const int64_t jend = min(P.p_total, sbi * P.chunk_b + P.chunk_b);
    const int64_t hw = int64_t{P.h_out} * P.w_out;
    int n = static_cast<int>(j / hw);
    const int64_t rem = j - n * hw;
    int oy = static_cast<int>(rem / P.w_out);
    int ox = static_cast<int>(rem - int64_t{oy} * P.w_out);
    const E* dp = static_cast<const E*>(P.dy) + cvec * kEpc;
    while (j < jend) {
      uint4 val[kU];
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        val[u] = load16<E, kVec>(dp + n * P.dsn + oy * P.dsh + ox * P.dsw, j < jend);
        j += P.rows;
        ox += P.b_add_ox;
        oy += P.b_add_oy;
        n += P.b_add_n;
        if (ox >= P.w_out) { ox -= P.w_out; ++oy; }
        if (oy >= P.h_out) { oy -= P.h_out; ++n; }
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) add16<E>(acc, val[u]);
    }
  }
  float* red = reinterpret_cast<float*>(smem);  // [256][kEpc]
#pragma unroll
  for (int e = 0; e < kEpc; ++e) red[tid * kEpc + e] = acc[e];
  __syncthreads();
  for (int idx = tid; idx < P.vt * kEpc; idx += kThreads) {
    const int vv = idx / kEpc, e = idx % kEpc;
    const int64_t cvv = vbi * P.vt + vv;
    if (cvv >= cv) continue;
    float sum = 0.f;
    for (int rr = 0; rr < P.rows; ++rr) sum += red[(rr * P.vt + vv) * kEpc + e];
    P.bias_part[sbi * P.c_out + cvv * kEpc + e] = sum;
  }
}

// kStages: pipeline depth (shared memory kStages · kStageBytes: 96 KiB for two blocks per SM, 192 KiB for one;
// the tf32 wgmma pipeline adds three K-major tiles of kStageBytes each).
// kWs: warp-specialized — kThreads multiplying threads plus kWsStagers staging threads (see the pipeline below);
// otherwise every thread stages and multiplies, with a block barrier per stage.
// kWg (sm_90a): the multiplies are wgmma — 16-bit types reading both operands straight from the stages as MN-major
// tiles, tf32 from K-major tiles a transposing pass writes (see the wgmma pipelines below); `smem` is then
// 1024-byte aligned.
template <class M, bool kVec, int kStages, int kBK, bool kWs, bool kWg>
__device__ __forceinline__ void gemm_block(const WParams& P, int64_t gi, unsigned char* smem) {
  using C = Cfg<M, kBK>;
  using E = typename C::E;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t tgi = gi % P.tg;
  gi /= P.tg;
  const int64_t nti = gi % P.nt;
  gi /= P.nt;
  const int64_t mti = gi % P.mt;
  gi /= P.mt;
  const int64_t s = gi % P.split, grp = gi / P.split;
  const int mo = 1 << P.mo_shift;
  const int tap0 = static_cast<int>(tgi) * (kTile >> P.mo_shift);
  const int o0 = static_cast<int>(mti) * mo;  // out channel within the group
  const int c0 = static_cast<int>(nti) * kTile;

  // ---- staging role: pixel row `row` of each stage, chunks tr + kTprS·j of both operands ----------------
  // kStagers threads stage (all of them, or the warp-specialized block's staging warps).
  constexpr int kStagers = kWs ? kWsStagers : kThreads;
  constexpr int kTprS = kStagers / C::kBK, kCptS = C::kCpr / kTprS;  // threads per pixel row, chunks per thread
  static_assert(kTprS * C::kBK == kStagers && kCptS * kTprS == C::kCpr, "staging layout");
  const int stid = kWs ? (tid >= kThreads ? tid - kThreads : 0) : tid;  // (multiplying threads never stage)
  const int row = stid / kTprS, tr = stid % kTprS;
  const int swa = C::swz_a(row), swb = C::swz_b(row);
  // Chunk tr + kTprS·j of the row lands at (tr + kTprS·j) XOR swz; where swz < kTprS (every layout but the
  // warp-specialized tf32 one) that is (tr XOR swz) + kTprS·j, a constant step.
  // kWg, 16-bit: the wgmma layout instead — each operand tile is two 64-channel halves of kBK rows × 128 bytes
  // (half j holds chunks 8j .. 8j + 7 of every pixel row), chunk c of row r at (c XOR r % 8): the hardware's
  // 128-byte swizzle of an MN-major operand. Thread tr of a row copies chunk tr of each half.
  // kWg, tf32: wgmma takes tf32 operands only K-major (pixels contiguous), so the copies land as pixel rows of
  // 512 bytes with chunk c of row r at c XOR ((r / 4) % 8), and a transposing pass (transpose_stage below) writes
  // the K-major tiles the tensor cores read; that XOR makes each of the pass's 16-byte loads — eight threads
  // reading one chunk column in rows four apart (r / 4 = 0..7) — hit eight bank groups.
  static_assert(!kWg || (C::kEsize == 2 && kTprS == 8 && kCptS == 2) || (C::kEsize == 4 && kTprS == 8 && kCptS == 4),
                "wgmma staging layout: 16-bit two halves, or tf32 pixel rows of 32 chunks");
  constexpr bool kWgT = kWg && C::kEsize == 4;  // tf32 wgmma: transposed tiles
  constexpr int kHalfBytes = C::kBK * 128;
  auto off_a = [&](int j) -> uint32_t {
    if constexpr (kWgT) return static_cast<uint32_t>(row * C::kRowBytes + (((tr ^ ((row >> 2) & 7)) + kTprS * j) << 4));
    if constexpr (kWg) return static_cast<uint32_t>(j * kHalfBytes + row * 128 + ((tr ^ (row & 7)) << 4));
    return static_cast<uint32_t>(row * C::kRowBytes + (((tr + kTprS * j) ^ swa) << 4));
  };
  auto off_b = [&](int j) -> uint32_t {
    if constexpr (kWgT) return static_cast<uint32_t>(row * C::kRowBytes + (((tr ^ ((row >> 2) & 7)) + kTprS * j) << 4));
    if constexpr (kWg) return static_cast<uint32_t>(j * kHalfBytes + row * 128 + ((tr ^ (row & 7)) << 4));
    return static_cast<uint32_t>(row * C::kRowBytes + (((tr + kTprS * j) ^ swb) << 4));
  };
  bool a_ok[kCptS], b_ok[kCptS];
  int a_sy[kCptS], a_sx[kCptS];
  // Element offset of chunk j's diff_dst source from the stage row's pixel (iy·sh, ix·sw) at channel 0: its tap's
  // (sy, sx) and its out channel, so that a copy is one add to the row's per-stage offset.
  int64_t a_off[kCptS];
  const int b_col = static_cast<int>(grp) * P.ig + c0 + tr * C::kEpc;  // chunk j: + kTprS·kEpc·j
#pragma unroll
  for (int j = 0; j < kCptS; ++j) {
    const int chunk = tr + kTprS * j;
    const int m = chunk * C::kEpc;  // tile row (A) / column (B) of the chunk's first element
    const int tap = tap0 + (m >> P.mo_shift);
    const int o = o0 + (m & (mo - 1));
    a_ok[j] = tap < P.taps && o < P.og;
    const int q = tap / P.kw, pp = tap % P.kw;
    a_sy[j] = P.sy0 - P.dh * q;
    a_sx[j] = P.sx0 - P.dw * pp;
    a_off[j] = a_sy[j] * P.dsh + a_sx[j] * P.dsw + (grp * P.og + o);
    b_ok[j] = c0 + m < P.ig;
  }
  const int64_t kbeg = s * P.chunk, kend = min(P.k_total, kbeg + P.chunk);
  // Stages of this chunk: 32-bit (decline_reason bounds the pixels to 2^34), so that the stage and slot
  // counters below are plain int arithmetic — 64-bit ones took a tenth of the wgmma loop's instructions.
  const int nst = static_cast<int>((kend - kbeg + C::kBK - 1) / C::kBK);
  int64_t kk = kbeg + row;
  const int64_t hw = int64_t{P.h_in} * P.w_in;
  int n = static_cast<int>(kk / hw);
  int iy, ix;
  {
    const int64_t rem = kk - n * hw;
    iy = static_cast<int>(rem / P.w_in);
    ix = static_cast<int>(rem - int64_t{iy} * P.w_in);
  }
  const E* __restrict__ xp = static_cast<const E*>(P.x);
  const E* __restrict__ dp = static_cast<const E*>(P.dy);

  // Stages are loaded strictly in order, so the cursor (kk; n, iy, ix) advances by bk pixels per call. The
  // row's offsets in both tensors are computed once per stage; each chunk adds its constant.
  auto load_stage = [&](int slot) {
    unsigned char* sa = smem + slot * C::kStageBytes;
    unsigned char* sbm = sa + C::kTileBytes;
    const bool in = kk < kend;
    const int64_t xoff = n * P.xsn + iy * P.xsh + ix * P.xsw;
    const int oy0 = iy * P.sh, ox0 = ix * P.sw;
    const int64_t doff = n * P.dsn + oy0 * P.dsh + ox0 * P.dsw;
#pragma unroll
    for (int j = 0; j < kCptS; ++j) {
      const int oy = oy0 + a_sy[j], ox = ox0 + a_sx[j];
      const bool oka = in && a_ok[j] && static_cast<unsigned>(oy) < static_cast<unsigned>(P.h_out) &&
                       static_cast<unsigned>(ox) < static_cast<unsigned>(P.w_out);
      copy16<E, kVec>(sa + off_a(j), oka ? dp + (doff + a_off[j]) : dp, oka);
      const bool okb = in && b_ok[j];
      copy16<E, kVec>(sbm + off_b(j), okb ? xp + xoff + b_col + j * kTprS * C::kEpc : xp, okb);
    }
    kk += C::kBK;
    ix += P.add_ix;
    iy += P.add_iy;
    n += P.add_n;
    if (ix >= P.w_in) { ix -= P.w_in; ++iy; }
    if (iy >= P.h_in) { iy -= P.h_in; ++n; }
  };

  // Tile row m of the weight gradient: its row of diff_wei (or of partial s), nullptr past the taps or out channels.
  float* const out = P.out + (P.direct ? int64_t{0} : s * P.wei_count);
  auto dst_row = [&](int m) -> float* {
    const int tap = tap0 + (m >> P.mo_shift);
    const int o = o0 + (m & (mo - 1));
    if (tap >= P.taps || o >= P.og) return nullptr;
    return out + ((grp * P.og + o) * P.taps + tap) * int64_t{P.ig};
  };
  // Columns c, c + 1 of a tile row (c even, Ig a multiple of 4: c < Ig implies c + 1 < Ig),
  // added to what is there when accumulating into diff_wei directly; 8-byte stores where `out` allows them.
  const bool pairs = (reinterpret_cast<uintptr_t>(out) & 7u) == 0;
  auto store_pair = [&](float* rowp, int c, float v0, float v1) {
    if (P.direct && P.accumulate) {
      v0 = rowp[c] + v0;
      v1 = rowp[c + 1] + v1;
    }
    if (pairs) {
      *reinterpret_cast<float2*>(rowp + c) = make_float2(v0, v1);
    } else {
      rowp[c] = v0;
      rowp[c + 1] = v1;
    }
  };
  // The wgmma accumulators of warpgroup wg: d[4j + 2h + e] is tile row 64·wg + 16·(warp % 4) + lane / 4 + 8h,
  // column 8j + 2·(lane % 4) + e (the mma.sync C layout repeated over n). Ig is a multiple of 4 (tf32) or 8:
  // pairs stay in range and aligned.
  auto wg_epilogue = [&](const float (&d)[64], int wg) {
    const int gid = lane >> 2, tig = lane & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float* rowp = dst_row(wg * 64 + (warp & 3) * 16 + gid + 8 * h);
      if (rowp == nullptr) continue;
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const int c = c0 + 8 * j + 2 * tig;
        if (c < P.ig) store_pair(rowp, c, d[4 * j + 2 * h], d[4 * j + 2 * h + 1]);
      }
    }
  };

  if constexpr (kWgT) {  // (instantiated only in sm_90a code: see tc_wgrad_kernel)
    // ---- pipeline, wgmma on tf32 (sm_90a). Per stage: the copies land as pixel rows (kStages slots, kDist =
    // kStages − 1 ahead); after the block barrier thread (cc, pg) reads the 4 × 4 block of pixels 4·pg .. + 3 and
    // tile rows (A) / columns (B) 4·cc .. + 3 of each operand, rounds it to tf32 (RNE, core::round_input's rule)
    // and writes it transposed into one of kTbufs K-major tiles — 128 rows × 128 bytes (32 pixels), chunk c of
    // row r at c XOR r % 8: the hardware's 128-byte swizzle — with one 16-byte store per row. Warpgroup wg
    // multiplies tile rows 64·wg .. + 63 by all 128 columns, m64n128k8 × 4 per stage, straight from those tiles.
    // The stage transposed in iteration it is multiplied in iteration it + 1, beside the next transposition; one
    // wgmma group stays in flight across the barrier (waited for at the end of iteration it + 2), so a K-major
    // tile is rewritten three iterations after it was written, two after its wgmmas were issued.
    constexpr int kTbufs = 3, kDist = kStages - 1;
    static_assert(kDist >= 2, "pipeline depth");
    static_assert(kThreads == 256 && C::kBK == 32, "transposing role: 32 column groups × 8 pixel groups");
    const int wg = warp >> 2;
    float d[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) d[i] = 0.f;
    unsigned char* const tbase = smem + kStages * C::kStageBytes;  // kTbufs × (A^T, B^T), 16 KiB each
    const uint32_t tbase_addr = smem_addr(tbase);
    const uint64_t da0 = wgmma_desc(tbase_addr + wg * 64 * 128), db0 = wgmma_desc(tbase_addr + C::kTileBytes);
    const int cc = tid >> 3, pg = tid & 7;  // transposing role: 4 tile rows / columns × 4 pixels
    auto transpose_stage = [&](int slot, int tb) {
      const unsigned char* st = smem + slot * C::kStageBytes;
      unsigned char* tt = tbase + tb * C::kStageBytes;
#pragma unroll
      for (int op = 0; op < 2; ++op) {
        const unsigned char* src = st + op * C::kTileBytes;
        unsigned char* dst = tt + op * C::kTileBytes;
        uint4 v[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
          v[i] = *reinterpret_cast<const uint4*>(src + (4 * pg + i) * C::kRowBytes + ((cc ^ pg) << 4));
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          auto lane_e = [e](const uint4& q) { return e == 0 ? q.x : e == 1 ? q.y : e == 2 ? q.z : q.w; };
          const uint4 w = make_uint4(tf32_rne_fast(lane_e(v[0])), tf32_rne_fast(lane_e(v[1])),
                                     tf32_rne_fast(lane_e(v[2])), tf32_rne_fast(lane_e(v[3])));
          const int r = 4 * cc + e;
          *reinterpret_cast<uint4*>(dst + r * 128 + ((pg ^ (r & 7)) << 4)) = w;
        }
      }
    };
#pragma unroll
    for (int st = 0; st < kDist; ++st) {
      if (st < nst) load_stage(st);
      cp_async_commit();
    }
    int slot = 0, next_slot = kDist % kStages, tb = 0, tb_prev = kTbufs - 1;
    for (int it = 0; it <= nst; ++it) {
      if (it < nst) {
        cp_async_wait<kDist - 1>();  // this thread's copies of stage `it` have landed
        asm volatile("" ::: "memory");
      }
      fence_proxy_async();  // this thread's K-major writes of stage it − 1 → visible to the tensor cores' reads,
      __syncthreads();      // every thread's; stage it landed everywhere; the slot of stage it − 1 was read
      if (it >= 1) {
        const uint64_t toff = static_cast<uint64_t>(tb_prev * (C::kStageBytes >> 4));
        fence_regs(d);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < C::kBK / 8; ++ks)  // 8 pixels = 32 bytes of each K-major row per wgmma
          wgmma_m64n128_tf32(d, da0 + toff + static_cast<uint64_t>(2 * ks), db0 + toff + static_cast<uint64_t>(2 * ks));
        wgmma_commit();
      }
      if (it < nst) {
        if (it + kDist < nst) load_stage(next_slot);
        cp_async_commit();
        transpose_stage(slot, tb);  // K-major tile tb was last read by the wgmmas of stage it − 3: waited for
        slot = slot + 1 == kStages ? 0 : slot + 1;
        next_slot = next_slot + 1 == kStages ? 0 : next_slot + 1;
        tb_prev = tb;
        tb = tb + 1 == kTbufs ? 0 : tb + 1;
      }
      wgmma_wait<1>();  // the wgmmas of stage it − 2 are done (before the next barrier)
      fence_regs(d);
    }
    wgmma_wait<0>();
    fence_regs(d);
    cp_async_wait<0>();
    wg_epilogue(d, wg);
    return;
  } else if constexpr (kWg) {  // (instantiated only in sm_90a code: see tc_wgrad_kernel)
    // ---- pipeline, wgmma (sm_90a): warpgroup wg multiplies tile rows 64·wg .. + 63 (A half wg) by all 128
    // columns (both B halves) with m64n128k16, two per 32-pixel stage, straight from shared memory: no
    // ldmatrix and no fragment registers (mma.sync on the H100 is held back by the shared-memory bandwidth its
    // ldmatrix loads take). kDist stages of copies in flight and one wgmma group still running while the next
    // stage is issued: a stage is refilled only when both are done with it (its group waited for, and the
    // block barrier passed by every warpgroup).
    constexpr int kDist = kStages - 2;
    static_assert(kDist >= 2, "pipeline depth");
    const int wg = warp >> 2;
    float d[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) d[i] = 0.f;
    const uint32_t smem_base = smem_addr(smem);
    // Descriptors of slot 0; a slot or a 16-pixel step adds its byte offset / 16 to the start-address field
    // (which holds shared addresses up to 256 KiB, so the sums never carry out of it).
    const uint64_t da0 = wgmma_desc(smem_base + wg * kHalfBytes, kHalfBytes);
    const uint64_t db0 = wgmma_desc(smem_base + C::kTileBytes, kHalfBytes);
#pragma unroll
    for (int st = 0; st < kDist; ++st) {
      if (st < nst) load_stage(st);
      cp_async_commit();
    }
    int slot = 0, next_slot = kDist % kStages;  // it % kStages, (it + kDist) % kStages
    for (int it = 0; it < nst; ++it) {
      cp_async_wait<kDist - 1>();  // this thread's copies of stage `it` have landed
      fence_proxy_async();         // ... visible to the tensor cores' reads,
      __syncthreads();             // for every thread's copies; stage it − 2 is free (its wgmma group waited for)
      if (it + kDist < nst) load_stage(next_slot);
      cp_async_commit();
      const uint64_t soff = static_cast<uint64_t>(slot * (C::kStageBytes >> 4));
      fence_regs(d);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < C::kBK / 16; ++ks) {  // 16 pixels = two 8-row atoms (1024 bytes each) per wgmma
        const uint64_t da = da0 + soff + static_cast<uint64_t>(ks * (2048 >> 4));
        const uint64_t db = db0 + soff + static_cast<uint64_t>(ks * (2048 >> 4));
        if constexpr (std::is_same_v<E, __nv_bfloat16>) wgmma_m64n128_bf16_mn(d, da, db);
        else wgmma_m64n128_f16_mn(d, da, db);
      }
      slot = slot + 1 == kStages ? 0 : slot + 1;
      next_slot = next_slot + 1 == kStages ? 0 : next_slot + 1;
      wgmma_commit();
      wgmma_wait<1>();
      fence_regs(d);
    }
    wgmma_wait<0>();
    fence_regs(d);
    cp_async_wait<0>();
    wg_epilogue(d, wg);
    return;
  }

  // ---- multiply role: warp tile 64 (rows) × 32 (columns) -----------------------------------------------
  const int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;
  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  const uint32_t smem_base = smem_addr(smem);
  auto compute_stage = [&](int slot) {
    const uint32_t sa = smem_base + static_cast<uint32_t>(slot * C::kStageBytes);
    const uint32_t sbm = sa + C::kTileBytes;
    if constexpr (C::kEsize == 2) {
      // ldmatrix.trans: lane l addresses row (k) l % 8 of 8×8 matrix l / 8; A matrices: (k 0–7, m 0–7),
      // (k 0–7, m 8–15), (k 8–15, m 0–7), (k 8–15, m 8–15) = a0..a3; B: (k 0–7, n 0–7), (k 8–15, n 0–7) =
      // b0, b1 of the first n8 tile, then the same for the second.
      // Chunk of row m: (wm / 8 + 2·i + (lj & 1)) XOR lr; the terms occupy disjoint bits, so the i-part is
      // an XOR with a constant on one per-lane offset (and likewise jj for B).
      const int lj = lane >> 3, lr = lane & 7;
      const uint32_t lane_a = static_cast<uint32_t>(((lj >> 1) * 8 + lr) * C::kRowBytes +
                                                    ((((wm >> 3) | (lj & 1)) ^ lr) << 4));
      const uint32_t lane_b = static_cast<uint32_t>(((lj & 1) * 8 + lr) * C::kRowBytes +
                                                    ((((wn >> 3) | (lj >> 1)) ^ lr) << 4));
#pragma unroll
      for (int ks = 0; ks < C::kBK; ks += 16) {
        uint32_t a[4][4], b[4][2];
#pragma unroll
        for (int i = 0; i < 4; ++i) ldsm_x4_trans(a[i], sa + ks * C::kRowBytes + (lane_a ^ (i * 32)));
#pragma unroll
        for (int jj = 0; jj < 2; ++jj) {
          uint32_t t[4];
          ldsm_x4_trans(t, sbm + ks * C::kRowBytes + (lane_b ^ (jj * 32)));
          b[2 * jj][0] = t[0];
          b[2 * jj][1] = t[1];
          b[2 * jj + 1][0] = t[2];
          b[2 * jj + 1][1] = t[3];
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) M::mma(acc[i][j], a[i], b[j]);
      }
    } else {
      // tf32 m16n8k8: a0 (m gid, k tig), a1 (m gid + 8, k tig), a2/a3 the same at k tig + 4; b0 (k tig, n gid),
      // b1 (k tig + 4, n gid); c0..c3 (m gid | gid + 8, n 2·tig | 2·tig + 1). The mma's m and n are labels:
      // row position r of m16 tile i is tile row wm + 8·(r % 8) + 2·i + r / 8, and column position p of n8 tile
      // j is tile column wn + 4·p + j, so each thread's fragments of one k row are 8 (A) and 4 (B) adjacent
      // floats — three 16-byte loads per row instead of twelve 4-byte ones — and its results an 8 × 8 block.
      // The values were rounded to tf32 in shared memory when the stage landed.
      (void)sa;
      const int gid = lane >> 2, tig = lane & 3;
      const unsigned char* pa = smem + slot * C::kStageBytes;
      const unsigned char* pb = pa + C::kTileBytes;
      const int ca0 = (((wm >> 2) + 2 * gid) ^ ((tig & 1) | ((tig & 2) << 1))) << 4;
      const int ca1 = (((wm >> 2) + 2 * gid + 1) ^ ((tig & 1) | ((tig & 2) << 1))) << 4;
      const int cb = (((wn >> 2) + gid) ^ (tig << 1)) << 4;
#pragma unroll
      for (int ks = 0; ks < C::kBK; ks += 8) {
        uint32_t a[4][4], b[4][2];
#pragma unroll
        for (int half = 0; half < 2; ++half) {  // k row tig, then tig + 4: a[.][h] / a[.][h + 2], b[.][0] / b[.][1]
          const int r = (ks + tig + 4 * half) * C::kRowBytes;
          const uint4 v0 = *reinterpret_cast<const uint4*>(pa + r + ca0);
          const uint4 v1 = *reinterpret_cast<const uint4*>(pa + r + ca1);
          const uint4 w = *reinterpret_cast<const uint4*>(pb + r + cb);
          a[0][2 * half] = v0.x;
          a[0][2 * half + 1] = v0.y;
          a[1][2 * half] = v0.z;
          a[1][2 * half + 1] = v0.w;
          a[2][2 * half] = v1.x;
          a[2][2 * half + 1] = v1.y;
          a[3][2 * half] = v1.z;
          a[3][2 * half + 1] = v1.w;
          b[0][half] = w.x;
          b[1][half] = w.y;
          b[2][half] = w.z;
          b[3][half] = w.w;
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) M::mma(acc[i][j], a[i], b[j]);
      }
      (void)sbm;
    }
  };

  // tf32: round this thread's own landed chunks of a stage to nearest even once (core::round_input's rule; the
  // tensor cores would drop the low bits), instead of every fragment load rounding them again.
  auto round_stage = [&](int slot) {
    if constexpr (C::kEsize == 4) {
      unsigned char* st = smem + slot * C::kStageBytes;
#pragma unroll
      for (int j = 0; j < kCptS; ++j) {
        auto* qa = reinterpret_cast<uint4*>(st + off_a(j));
        auto* qb = reinterpret_cast<uint4*>(st + C::kTileBytes + off_b(j));
        *qa = tf32_rne_fast(*qa);
        *qb = tf32_rne_fast(*qb);
      }
    } else {
      (void)slot;
    }
  };

  if constexpr (kWs) {
    // ---- pipeline, warp-specialized: the staging warps keep kStages − 1 stages of copies in flight; per stage
    // they wait for their own copies, round them (tf32) and arrive on the stage's `full` mbarrier; the multiplying
    // warps wait on `full`, multiply, and arrive on `empty`, which the staging warps wait on before refilling the
    // stage. No block barrier in the loop: copy issue, index arithmetic and rounding run beside the mma.
    uint64_t* bars = reinterpret_cast<uint64_t*>(smem + kStages * C::kStageBytes);  // full[s], then empty[s]
    const uint32_t full0 = smem_addr(bars), empty0 = smem_addr(bars + kStages);
    if (tid == 0) {
      for (int st = 0; st < kStages; ++st) {
        mbar_init(full0 + 8 * st, kWsStagers);
        mbar_init(empty0 + 8 * st, kThreads);
      }
    }
    __syncthreads();  // barriers initialised (GEMM blocks only: the whole block takes this branch)
    if (tid >= kThreads) {
#pragma unroll
      for (int st = 0; st < kStages - 1; ++st) {
        if (st < nst) load_stage(st);
        cp_async_commit();
      }
      for (int it = 0; it < nst; ++it) {
        cp_async_wait<kStages - 2>();  // this thread's copies of stage `it` have landed
        const int slot = it % kStages;
        asm volatile("" ::: "memory");
        round_stage(slot);
        mbar_arrive(full0 + 8 * static_cast<uint32_t>(slot));  // release: copies and roundings
        const int next = it + kStages - 1;  // refills the slot of stage it − 1 once it is multiplied
        if (next < nst) {
          const int ns = next % kStages;
          if (next >= kStages) mbar_wait(empty0 + 8 * static_cast<uint32_t>(ns), static_cast<uint32_t>((next / kStages - 1) & 1));
          load_stage(ns);
        }
        cp_async_commit();
      }
      cp_async_wait<0>();
      return;  // the staging warps hold no results
    }
    for (int it = 0; it < nst; ++it) {
      const int slot = it % kStages;
      mbar_wait(full0 + 8 * static_cast<uint32_t>(slot), static_cast<uint32_t>((it / kStages) & 1));
      compute_stage(slot);  // its shared loads are done once the last mma is issued
      mbar_arrive(empty0 + 8 * static_cast<uint32_t>(slot));
    }
  } else {
    // ---- pipeline: kStages − 1 stages in flight while one is multiplied ----------------------------------
#pragma unroll
    for (int st = 0; st < kStages - 1; ++st) {
      if (st < nst) load_stage(st);
      cp_async_commit();
    }
    for (int it = 0; it < nst; ++it) {
      cp_async_wait<kStages - 2>();
      round_stage(it % kStages);
      __syncthreads();  // stage `it` landed for every thread; stage it − 1 (the slot refilled next) consumed
      const int next = it + kStages - 1;
      if (next < nst) load_stage(next % kStages);
      cp_async_commit();
      compute_stage(it % kStages);
    }
    cp_async_wait<0>();
  }

  // ---- epilogue: every (row, column) of the tile this thread holds, to partial[s] or diff_wei ------------
  const int gid = lane >> 2, tig = lane & 3;
  if constexpr (C::kEsize == 2) {
    // c0, c1 at (row gid, columns 2·tig, 2·tig + 1); c2, c3 at row gid + 8.
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float* rowp = dst_row(wm + i * 16 + h * 8 + gid);
        if (rowp == nullptr) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int c = c0 + wn + j * 8 + 2 * tig;
          if (c < P.ig) store_pair(rowp, c, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        }
      }
  } else {
    // acc[i][j][2·hh + e] sits at tile row wm + 8·gid + 2·i + hh, column wn + 8·tig + 4·e + j (see the
    // fragment labels above). Ig is a multiple of 4: quads stay aligned.
    const bool quads = (reinterpret_cast<uintptr_t>(out) & 15u) == 0;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float* rowp = dst_row(wm + 8 * gid + 2 * i + hh);
        if (rowp == nullptr) continue;
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = c0 + wn + 8 * tig + 4 * e;
          if (c >= P.ig) continue;
          float v[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) v[j] = acc[i][j][2 * hh + e];
          if (P.direct && P.accumulate) {
#pragma unroll
            for (int j = 0; j < 4; ++j) v[j] = rowp[c + j] + v[j];
          }
          if (quads) {
            *reinterpret_cast<float4*>(rowp + c) = make_float4(v[0], v[1], v[2], v[3]);
          } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) rowp[c + j] = v[j];
          }
        }
      }
  }
}

// GEMM blocks first, then the bias blocks: these fill the slots the last GEMM wave leaves free. (Measured
// on the H100: interleaving them from the start kept half the GEMM blocks waiting behind the bias sums.)
// kWg kernels have a body only in sm_90a code (wgrad_wgmma_usable tells the host).
template <class M, bool kVec, int kStages, int kBK, int kMinBlocks, bool kWs, bool kWg>
__global__ void __launch_bounds__(kWs ? kThreads + kWsStagers : kThreads, kMinBlocks) tc_wgrad_kernel(const WParams P) {
#if !defined(TCONV_TC_WGMMA)
  if constexpr (kWg) {
    (void)P;
    return;
  } else
#endif
  {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    unsigned char* smem = smem_raw;
    // wgmma's swizzle atoms (1024 bytes) must start 1024-byte aligned; the launch adds the slack.
    if constexpr (kWg) smem += (1024 - (smem_addr(smem_raw) & 1023)) & 1023;
    const int64_t b = blockIdx.x;
    if (b < P.gemm_blocks) {
      gemm_block<M, kVec, kStages, kBK, kWs, kWg>(P, b, smem);
    } else {
      bias_block<typename M::elem, kVec>(P, b - P.gemm_blocks, smem);
    }
  }
}

// out[e] (+)= Σ_{s < S} part[s][e] for the 256 / L elements of block `blk`: lane r < L of each element adds
// the partials s ≡ r (mod L) in ascending s, then lane 0 adds the L lane sums in lane order. L depends on the
// problem alone (reduce_lanes), so the order is fixed; L lanes per element keep enough loads in flight when S
// is large and the elements few (the bias: a few hundred chunks of a few channels).
__device__ __forceinline__ void fixed_order_sum(const float* __restrict__ part, int64_t S, int64_t count, float* out,
                                                bool accumulate, int lanes, int64_t blk, float* red) {
  const int tid = threadIdx.x, per = kThreads / lanes;
  const int el = tid % per, r = tid / per;
  const int64_t e = blk * per + el;
  float sum = 0.f;
  if (e < count)
#pragma unroll 4
    for (int64_t s = r; s < S; s += lanes) sum += part[s * count + e];
  red[tid] = sum;
  __syncthreads();
  if (r == 0 && e < count) {
    float t = red[el];
    for (int rr = 1; rr < lanes; ++rr) t += red[rr * per + el];
    out[e] = accumulate ? out[e] + t : t;
  }
}

// Pass 2: diff_wei (+)= Σ_s partial[s] (blocks below w_blocks) and diff_bias (+)= Σ_s bias_part[s] (the rest), one
// launch for both.
__global__ void __launch_bounds__(kThreads) reduce_kernel(const float* __restrict__ pw, int64_t split,
                                                          int64_t wei_count, float* diff_wei, int lanes_w,
                                                          const float* __restrict__ pb, int64_t sb, int64_t c_out,
                                                          float* diff_bias, int lanes_b, bool accumulate,
                                                          int64_t w_blocks) {
  __shared__ float red[kThreads];
  if (blockIdx.x < w_blocks)
    fixed_order_sum(pw, split, wei_count, diff_wei, accumulate, lanes_w, blockIdx.x, red);
  else
    fixed_order_sum(pb, sb, c_out, diff_bias, accumulate, lanes_b, blockIdx.x - w_blocks, red);
}

// Lanes per element of the fixed-order sum of S partials: a power of two ≤ min(S, 16), more only while the
// elements alone give fewer than 2^17 threads (measured: for millions of elements, lanes only add blocks).
int reduce_lanes(int64_t S, int64_t count) {
  int l = 1;
  while (l < 16 && 2 * l <= S && count * l < (int64_t{1} << 17)) l *= 2;
  return l;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The dynamic shared-memory limit is raised once per kernel and device.
template <class M, bool kVec, int kStages, int kBK, int kMinBlocks, bool kWs, bool kWg>
core::Status allow_smem(int bytes) {
  static std::atomic<uint64_t> done{0};
  int dev = 0;
  if (auto st = cuda_backend::check(cudaGetDevice(&dev), "cudaGetDevice"); !st.ok()) return st;
  const uint64_t bit = dev < 64 ? (uint64_t{1} << dev) : 0;
  if (bit != 0 && (done.load(std::memory_order_relaxed) & bit) != 0) return core::Status::ok_status();
  if (auto st = cuda_backend::check(
          cudaFuncSetAttribute(tc_wgrad_kernel<M, kVec, kStages, kBK, kMinBlocks, kWs, kWg>,
                               cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
          "cudaFuncSetAttribute(cuda_tc_wgrad)");
      !st.ok())
    return st;
  done.fetch_or(bit, std::memory_order_relaxed);
  return core::Status::ok_status();
}

template <class M, int kStages, int kBK, int kMinBlocks, bool kWs = false, bool kWg = false>
core::Status launch_staged(const WParams& P, bool vec, int64_t blocks, cudaStream_t stream) {
  // tf32 wgmma: + three K-major tiles (gemm_block's kTbufs) of the stage's size
  constexpr int kTbufs = kWg && Cfg<M, kBK>::kEsize == 4 ? 3 : 0;
  constexpr int kStageSmem = (kStages + kTbufs) * Cfg<M, kBK>::kStageBytes;
  // + the mbarriers (kWs), + the slack that aligns the stages to 1024 bytes (kWg)
  constexpr int kSmem = kStageSmem + (kWs ? 2 * kStages * 8 : 0) + (kWg ? 1024 : 0);
  static_assert(kSmem * kMinBlocks <= 200 * 1024, "shared memory of the resident blocks");
  constexpr int kBlock = kWs ? kThreads + kWsStagers : kThreads;
  const unsigned grid = static_cast<unsigned>(blocks);
  if (vec) {
    if (auto st = allow_smem<M, true, kStages, kBK, kMinBlocks, kWs, kWg>(kSmem); !st.ok()) return st;
    tc_wgrad_kernel<M, true, kStages, kBK, kMinBlocks, kWs, kWg><<<grid, kBlock, kSmem, stream>>>(P);
  } else {
    if (auto st = allow_smem<M, false, kStages, kBK, kMinBlocks, kWs, kWg>(kSmem); !st.ok()) return st;
    tc_wgrad_kernel<M, false, kStages, kBK, kMinBlocks, kWs, kWg><<<grid, kBlock, kSmem, stream>>>(P);
  }
  return cuda_backend::check_launch("cuda_tc_wgrad");
}

// Whether this build's wgmma weight-gradient kernels hold code on `device` (tc_igemm_wgmma.cuh), checked once
// per device; wgrad_wgmma_usable() asks for the current device.
bool wgrad_wgmma_usable_on(int device) {
  static std::atomic<int> state[64];
  return wgmma_kernel_usable(reinterpret_cast<const void*>(tc_wgrad_kernel<MmaBf16, true, 6, 32, 2, false, true>),
                             device, state);
}
bool wgrad_wgmma_usable() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return wgrad_wgmma_usable_on(device);
}

// The pipeline variants (WgradPlan::variant): 16-bit types 0 = 32 pixels × 6 stages, two blocks per SM;
// 1 = 32 × 12, one per SM; 2 = variant 1 warp-specialized; 3 = variant 0 with wgmma (sm_90a; variant 0 where the
// device or the build has no wgmma — same stages and blocks per SM, so the same plan and split).
// tf32: 0 = 16 × 6, two per SM; 1 = 32 × 3, two per SM; 2 = 32 × 6, one per SM; 3 = variant 2 warp-specialized;
// 4 = 32 × 3 plus three transposed tiles, one per SM, with wgmma (sm_90a). Without wgmma variant 4 runs variant 1's
// kernel: 96 KiB fits every GPU the build targets (variant 2's 192 KiB would not fit an A100's or an Ada's
// per-block limit); the pixels per stage are the same, so variant 4's plan and split run unchanged — tuned for one
// block per SM where two are resident.
template <class M>
core::Status launch_typed(const WParams& P, bool vec, int variant, int64_t blocks, cudaStream_t stream) {
  if constexpr (sizeof(typename M::elem) == 2) {
    if (variant == 3 && wgrad_wgmma_usable()) return launch_staged<M, 6, 32, 2, false, true>(P, vec, blocks, stream);
    return variant == 2   ? launch_staged<M, 12, 32, 1, true>(P, vec, blocks, stream)
           : variant == 1 ? launch_staged<M, 12, 32, 1>(P, vec, blocks, stream)
                          : launch_staged<M, 6, 32, 2>(P, vec, blocks, stream);
  } else {
    if (variant == 4 && wgrad_wgmma_usable()) return launch_staged<M, 3, 32, 1, false, true>(P, vec, blocks, stream);
    return variant == 3   ? launch_staged<M, 6, 32, 1, true>(P, vec, blocks, stream)
           : variant == 2 ? launch_staged<M, 6, 32, 1>(P, vec, blocks, stream)
           : variant == 1 || variant == 4 ? launch_staged<M, 3, 32, 2>(P, vec, blocks, stream)
                          : launch_staged<M, 6, 16, 2>(P, vec, blocks, stream);
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Test and tuning hooks: TCONV_TC_WGRAD_VARIANT=<v> forces a pipeline variant (launch_typed), TCONV_TC_WGRAD_SPLIT=<S>
// the split (as split_override does). Unset: the defaults below.
int env_int(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr ? std::atoi(e) : -1;
}
int forced_variant() {
  static const int v = env_int("TCONV_TC_WGRAD_VARIANT");
  return v;
}
int64_t forced_split() {
  static const int64_t s = env_int("TCONV_TC_WGRAD_SPLIT");
  return s;
}
// TCONV_TC_WGRAD_WS=1 / 0: the warp-specialized variant (16-bit 2, tf32 3) or the default one. Unset: kWsDefault
// of the operand size — off: measured on the H100, slower than the defaults on the all-three time of every suite
// layer (bench/results/cuda-h100-2026-11-24-s3/ws_vs_default.md).
constexpr bool kWsDefault16 = false, kWsDefault32 = false;
bool ws_default(bool tf32) {
  static const int v = env_int("TCONV_TC_WGRAD_WS");
  return v >= 0 ? v != 0 : (tf32 ? kWsDefault32 : kWsDefault16);
}

}  // namespace

WgradPlan make_wgrad_plan(const core::Problem& p, int64_t split_override) {
  const core::Geometry& g = p.g;
  WgradPlan w;
  w.epc = p.precision == Precision::tf32 ? 4 : 8;
  const int max_variant = w.epc == 4 ? 4 : 3, ws_variant = w.epc == 4 ? 3 : 2;
  // Defaults, multiplied with wgmma where the device has it: 16-bit types 32 × 6, two per SM (variant 3; the
  // launch falls back to variant 0's mma.sync elsewhere); tf32 through transposed tiles, one per SM (variant 4;
  // variant 1's kernel elsewhere, see launch_typed). Measured on the H100 (bench/results/cuda-h100-2026-11-24-s6): variant 4's weight
  // gradient 20–36% faster than variant 1 (32 × 3, two per SM, mma.sync) on the suite's tensor-core layers.
  w.variant = w.epc == 4 ? 4 : 3;
  if (ws_default(w.epc == 4)) w.variant = ws_variant;
  if (forced_variant() >= 0 && forced_variant() <= max_variant) w.variant = forced_variant();
  const bool one_per_sm = w.epc == 4 ? w.variant >= 2 : (w.variant == 1 || w.variant == 2);
  w.bk = w.epc == 4 && w.variant == 0 ? 16 : 32;
  w.min_blocks = one_per_sm ? 1 : 2;
  // (informational; variant 4 is 3 stages plus three K-major tiles, and 3 stages in its fallback as well)
  w.stages = w.epc == 8 ? (one_per_sm ? 12 : 6) : (w.variant == 1 || w.variant == 4 ? 3 : 6);
  const int64_t target_blocks = kPlanSms * w.min_blocks;
  const int64_t og = g.og(), ig = g.ig();
  w.mo = 16;
  while (w.mo < kTile && w.mo < og) w.mo *= 2;
  w.tm = kTile / w.mo;
  w.taps = g.kh * g.kw;
  w.tg = ceil_div(w.taps, w.tm);
  w.mt = ceil_div(og, w.mo);
  w.nt = ceil_div(ig, kTile);
  const int64_t tiles = w.tg * w.mt * w.nt * g.groups;
  w.k_total = g.n * g.h_in * g.w_in;
  w.wei_count = core::wei_elements(g);
  w.c_out = g.c_out;
  const int64_t stages = ceil_div(w.k_total, w.bk);
  // As many chunks as keep the GEMM within one wave of kTargetBlocks (rounded down: measured, a few blocks
  // over a wave cost more than the chunks they add).
  int64_t s = tiles < target_blocks ? target_blocks / tiles : 1;
  s = std::min(s, std::max<int64_t>(1, stages / kMinStagesPerChunk));
  s = std::min(s, kMaxSplit);
  s = std::min(s, std::max<int64_t>(1, (int64_t{1} << 26) / w.wei_count));  // at most 256 MiB of partials
  if (split_override <= 0 && forced_split() > 0) split_override = forced_split();
  if (split_override > 0) s = split_override;
  s = std::max<int64_t>(1, std::min(s, stages));
  w.chunk = ceil_div(stages, s) * w.bk;
  w.split = ceil_div(w.k_total, w.chunk);
  w.gemm_blocks = tiles * w.split;
  w.ws_weight_floats = w.split > 1 ? static_cast<std::size_t>(w.split * w.wei_count) : 0;
  w.bias = p.with_bias;
  if (w.bias) {
    const int64_t cv = g.c_out / w.epc;
    w.vt = static_cast<int>(std::min<int64_t>(cv, 32));
    w.rows = kThreads / w.vt;
    w.vb = ceil_div(cv, w.vt);
    w.p_total = g.n * g.h_out * g.w_out;
    int64_t sb = std::min(ceil_div(w.p_total, int64_t{w.rows} * 16), ceil_div(kBiasTargetBlocks, w.vb));
    sb = std::max<int64_t>(1, sb);
    w.chunk_b = ceil_div(w.p_total, sb);
    w.sb = ceil_div(w.p_total, w.chunk_b);
    w.bias_blocks = w.sb * w.vb;
    w.ws_bias_floats = static_cast<std::size_t>(w.sb * g.c_out);
  }
  return w;
}

core::Status launch_tc_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                             const WgradPlan& plan) {
  const core::Geometry& g = p.g;
  WgradPlan w = plan;
  if (a.diff_bias == nullptr) {  // with_bias but nowhere to put it: nothing to compute
    w.bias = false;
    w.bias_blocks = 0;
  }
  if ((w.split > 1 || w.bias) && workspace == nullptr && w.workspace_bytes() > 0)
    return core::invalid("cuda_tc_wgrad needs " + std::to_string(w.workspace_bytes()) + " bytes of device workspace");
  float* ws = static_cast<float*>(workspace);
  const int64_t e = w.epc;
  const bool vec = aligned16(a.src.data) && aligned16(a.diff_dst.data) && a.src.sn % e == 0 && a.src.sh % e == 0 &&
                   a.src.sw % e == 0 && a.diff_dst.sn % e == 0 && a.diff_dst.sh % e == 0 && a.diff_dst.sw % e == 0;

  WParams P{};
  P.x = a.src.data;
  P.xsn = a.src.sn;
  P.xsh = a.src.sh;
  P.xsw = a.src.sw;
  P.dy = a.diff_dst.data;
  P.dsn = a.diff_dst.sn;
  P.dsh = a.diff_dst.sh;
  P.dsw = a.diff_dst.sw;
  P.direct = w.split == 1;
  P.out = P.direct ? a.diff_wei : ws;
  P.bias_part = ws != nullptr ? ws + w.ws_weight_floats : nullptr;
  P.h_in = static_cast<int>(g.h_in);
  P.w_in = static_cast<int>(g.w_in);
  P.h_out = static_cast<int>(g.h_out);
  P.w_out = static_cast<int>(g.w_out);
  P.kw = static_cast<int>(g.kw);
  P.sh = static_cast<int>(g.stride_h);
  P.sw = static_cast<int>(g.stride_w);
  P.dh = static_cast<int>(g.dil_h);
  P.dw = static_cast<int>(g.dil_w);
  P.sy0 = static_cast<int>(-g.pad_h + g.dil_h * (g.kh - 1));
  P.sx0 = static_cast<int>(-g.pad_w + g.dil_w * (g.kw - 1));
  P.og = static_cast<int>(g.og());
  P.ig = static_cast<int>(g.ig());
  P.taps = static_cast<int>(w.taps);
  P.mo_shift = 0;
  while ((1 << P.mo_shift) < w.mo) ++P.mo_shift;
  P.tg = w.tg;
  P.mt = w.mt;
  P.nt = w.nt;
  P.split = w.split;
  P.chunk = w.chunk;
  P.k_total = w.k_total;
  P.wei_count = w.wei_count;
  {
    const int64_t rows = w.bk / g.w_in;
    P.add_ix = static_cast<int>(w.bk % g.w_in);
    P.add_iy = static_cast<int>(rows % g.h_in);
    P.add_n = static_cast<int>(rows / g.h_in);
  }
  P.accumulate = p.accumulate;
  P.gemm_blocks = w.gemm_blocks;
  P.bias_blocks = w.bias ? w.bias_blocks : 0;
  if (w.bias) {
    P.vt = w.vt;
    P.rows = w.rows;
    P.vb = w.vb;
    P.p_total = w.p_total;
    P.chunk_b = w.chunk_b;
    P.c_out = g.c_out;
    const int64_t rows = w.rows / g.w_out;
    P.b_add_ox = static_cast<int>(w.rows % g.w_out);
    P.b_add_oy = static_cast<int>(rows % g.h_out);
    P.b_add_n = static_cast<int>(rows / g.h_out);
  } else {
    P.vt = 1;
    P.rows = 1;
    P.vb = 1;
  }
  const int64_t blocks = P.gemm_blocks + P.bias_blocks;
  const core::Status st = p.precision == Precision::bf16   ? launch_typed<MmaBf16>(P, vec, w.variant, blocks, stream)
                          : p.precision == Precision::fp16 ? launch_typed<MmaF16>(P, vec, w.variant, blocks, stream)
                          : p.precision == Precision::tf32
                              ? launch_typed<MmaTf32>(P, vec, w.variant, blocks, stream)
                              : core::unsupported("cuda_tc_wgrad: precision " + std::string(to_string(p.precision)));
  if (!st.ok()) return st;
  if (w.split > 1 || w.bias) {
    const int lanes_w = reduce_lanes(w.split, w.wei_count), lanes_b = reduce_lanes(w.bias ? w.sb : 1, g.c_out);
    const int64_t w_blocks = w.split > 1 ? ceil_div(w.wei_count, kThreads / lanes_w) : 0;
    const int64_t b_blocks = w.bias ? ceil_div(g.c_out, kThreads / lanes_b) : 0;
    if (w_blocks + b_blocks > 0x7fffffff) return core::unsupported("cuda_tc_wgrad: reduction grid too large");
    reduce_kernel<<<static_cast<unsigned>(w_blocks + b_blocks), kThreads, 0, stream>>>(
        ws, w.split, w.wei_count, a.diff_wei, lanes_w, P.bias_part, w.bias ? w.sb : 0, g.c_out, a.diff_bias, lanes_b,
        p.accumulate, w_blocks);
    return cuda_backend::check_launch("cuda_tc_wgrad reduction");
  }
  return core::Status::ok_status();
}

bool wgrad_uses_wgmma(int device) { return wgrad_wgmma_usable_on(device); }

int compute_capability(int device) {
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return 10 * major + minor;
}

}  // namespace tconv::cuda_tc

namespace tconv::registry {
namespace {

class CudaTcWgrad final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_tc_wgrad"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.dir != core::Direction::bwd_weights)
      return std::string("only the weight gradient (bwd_weights), not ") + core::to_string(p.dir);
    const bool types_ok = (p.act_type == DataType::bfloat16 && p.precision == Precision::bf16) ||
                          (p.act_type == DataType::float16 && p.precision == Precision::fp16) ||
                          (p.act_type == DataType::float32 && p.precision == Precision::tf32);
    if (!types_ok)
      return "images " + std::string(to_string(p.act_type)) + " with precision " + std::string(to_string(p.precision)) +
             ": takes bfloat16/bf16, float16/fp16 and float32/tf32 (operands staged as stored)";
    const core::Geometry& g = p.g;
    const int64_t epc = p.precision == Precision::tf32 ? 4 : 8;
    if (g.ig() % epc != 0 || g.og() % epc != 0)
      return "channels per group (" + std::to_string(g.ig()) + " in, " + std::to_string(g.og()) +
             " out) are not multiples of " + std::to_string(epc) + " (16-byte copies of whole channel runs)";
    constexpr int64_t kLim = int64_t{1} << 30;  // pixel coordinates are 32-bit in the kernels
    if (g.h_in * g.stride_h + std::abs(g.pad_h) + g.dil_h * g.kh >= kLim ||
        g.w_in * g.stride_w + std::abs(g.pad_w) + g.dil_w * g.kw >= kLim || g.h_out >= kLim || g.w_out >= kLim ||
        g.n >= kLim || g.og() >= kLim || g.ig() >= kLim || g.kh * g.kw >= kLim)
      return "sizes beyond the kernels' 32-bit coordinates (h_in " + std::to_string(g.h_in) + ", w_in " +
             std::to_string(g.w_in) + ", n " + std::to_string(g.n) + ")";
    // (each factor is below 2^30 here, so h_in·w_in does not overflow)
    if (g.n > 0 && g.h_in * g.w_in > (int64_t{1} << 34) / g.n)
      return "more than 2^34 source pixels (the kernels count a chunk's 16- or 32-pixel stages in 32 bits)";
    const cuda_tc::WgradPlan w = cuda_tc::make_wgrad_plan(p);
    if (w.gemm_blocks + w.bias_blocks > 0x7fffffff)
      return "too many blocks for one grid (" + std::to_string(w.gemm_blocks + w.bias_blocks) + ")";
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    if (decline_reason(p)) return 0;
    return cuda_tc::make_wgrad_plan(p).workspace_bytes();
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    cuda_backend::DeviceGuard guard(ctx.cuda_device);
    if (!guard.ok()) return guard.status();
    return cuda_tc::launch_tc_wgrad(p, a, workspace, static_cast<cudaStream_t>(ctx.cuda_stream),
                                    cuda_tc::make_wgrad_plan(p));
  }
};

}  // namespace

const Algorithm* cuda_tc_wgrad_algorithm() {
  static const CudaTcWgrad algorithm;
  return &algorithm;
}

}  // namespace tconv::registry
