// Shared pieces of cuda_simt_f32 (true float32 on the CUDA cores, no tensor cores): the block-tile shapes,
// the register-blocked outer-product step on a staged k slab, 16-byte/scalar operand loads and asynchronous
// copies, and the launchers of simt_f32_gather.cu (fwd, bwd_data) and simt_f32_wgrad.cu (bwd_weights + bias).
//
// The GEMM core is the classic SIMT sgemm: 256 threads (8 warps) own a BM×BN output tile; each thread keeps
// TM×TN accumulators in registers; k is staged in slabs of kBK = 16 through double-buffered shared memory
// laid out k-major (As[k][m], Bs[k][n]), so that one 16-byte shared load gives a thread 4 consecutive m (or
// n) values of one k and the FFMA loop is a pure outer product (TM + TN loaded values feed TM·TN FFMAs).
// Slabs are 16 deep rather than 8 because the work besides the FFMAs and their shared loads (the barrier,
// the slab cursor, the loop, the bounds of a slab) is paid once per slab: the 128×128 tile issues 1024
// FFMAs per thread between barriers. A slab is 4·BM (4·BN) 16-byte quads, 1 or 2 per thread and operand.
// Inside a warp the lanes form an 8 (m) × 4 (n) grid; a thread's TM rows are 1 or 2 groups of 4 consecutive
// rows 32 apart, its TN columns 1 or 2 groups of 4 consecutive columns 16 apart: each 16-byte shared load of
// a warp then touches 8 (A) or 4 (B) distinct, consecutive 16-byte words — one shared-memory wavefront.
// Rows of the slabs are padded by 4 floats (a pitch ≡ 4 mod 32 banks): the transposed stores of the gather
// kernels' A slab (4 scalar stores per 16-byte global load, simt_f32_gather.cu explains the mapping) then
// hit 32 distinct banks, and every row stays 16-byte aligned.
//
// The loads of slab s + 1 are all issued before the FFMAs of slab s, into the other shared buffer, so the
// kernels need one __syncthreads per slab. Operands that land in shared memory as they are in global
// memory (both of the weight gradient, the weights of fwd/bwd_data) are copied with cp.async; the gather
// kernels' A slab, which is transposed on the way, is staged through registers (stored after the FFMAs), and
// so is the weight gradient's A slab on the thin tiles' scalar path (kRegA in simt_f32_wgrad.cu). With 16-deep slabs register staging of every operand would need 16 registers more than the
// 128×128 tile has (64 accumulators, the FFMA operands, the loader state: it spilled); cp.async needs none
// and also saves the shared stores. Every product is an exact float32 FFMA and each output's k order is
// fixed (taps in order, channels ascending; pixels ascending in each split-K chunk), so results are
// deterministic and, for small-integer data, bit-exact.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "cuda/direct_kernels.cuh"
#include "cuda/tc_common.cuh"

namespace tconv::cuda_simt {

using cuda_direct::KGeom;
using cuda_direct::KView;

constexpr int kThreads = 256;
// k per shared-memory slab. The loader mappings of both kernels assume 16 (two 8-deep halves: 8 warps × 2
// slab rows in simt_f32_wgrad.cu, two 8-channel octets per tile row in simt_f32_gather.cu); simt_f32.cu's
// decline bound on the slab count uses it too.
constexpr int kBK = 16;
// The cost model's machine: SMs of an H100 SXM. Used only to pick tile shapes and the split-K count, which
// must depend on the problem alone (the split changes the rounding), so it is a constant, not a query.
constexpr int kModelSms = 132;

// Block tile BM×BN, thread tile TM×TN; the 8 warps tile the block as (BM / 8TM) × (BN / 4TN).
template <int BM_, int BN_, int TM_, int TN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_, TM = TM_, TN = TN_;
  static constexpr int WM = 8 * TM, WN = 4 * TN;  // warp tile
  static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
  static constexpr int PA = BM + 4, PB = BN + 4;  // padded slab row pitches (floats)
  // Register cap through __launch_bounds__: 2 blocks (≤ 128 registers) for 32 or 64 accumulators, 3 (≤ 85)
  // for 16.
  static constexpr int kMinBlocks = TM * TN <= 16 ? 3 : 2;
  static_assert(WARPS_M * WARPS_N == kThreads / 32, "8 warps per block");
  static_assert(TM == 4 || TM == 8, "TM is 4 or 8");
  static_assert(TN == 4 || TN == 8, "TN is 4 or 8");
  // 16-byte loads of a slab per thread (the A slab is BM·kBK/4 quads, the B slab kBK·BN/4): 2 for a 128-wide
  // operand, 1 for 64 (and for 32, where half the threads load B).
  static constexpr int LA = (BM * kBK / 4 + kThreads - 1) / kThreads, LB = (BN * kBK / 4 + kThreads - 1) / kThreads;
  static_assert(BM * kBK / 4 == LA * kThreads, "the A slab is an exact number of loads per thread");
  static_assert(BN * kBK / 4 == LB * kThreads || LB == 1, "the B slab is an exact number of loads per thread");
  static_assert(PA % 32 == 4, "A pitch ≡ 4 mod 32 banks: the gather kernel's transposed stores are conflict-free");
};
using T128x128 = Tile<128, 128, 8, 8>;
using T128x64 = Tile<128, 64, 8, 4>;
using T64x128 = Tile<64, 128, 4, 8>;
using T64x64 = Tile<64, 64, 4, 4>;
using T128x32 = Tile<128, 32, 4, 4>;

// The shapes the host-side choosers consider: index = TileId. `eff` is the tile's FFMA rate per SM relative to
// 128×128 at full occupancy (measured on the H100: 128×128 ≈ 0.14·10^12 MAC/s per SM with two blocks; the
// thinner tiles load more per FFMA and hide less latency; measured with 8-deep slabs), `occ` the blocks an SM
// holds (kMinBlocks).
enum TileId : int { kT128x128 = 0, kT128x64, kT64x128, kT64x64, kT128x32, kTileCount };
struct TileInfo {
  int bm, bn;
  double eff;
  int occ;
};
constexpr TileInfo kTiles[kTileCount] = {
    {128, 128, 1.00, 2}, {128, 64, 0.85, 2}, {64, 128, 0.85, 2}, {64, 64, 0.65, 3}, {128, 32, 0.55, 3}};

// Modelled seconds for `blocks` equal blocks of `block_macs` multiply-adds each: the busiest SM runs
// ceil(blocks / SMs) of them, `occ` at a time; a last round with a single block of 8 warps runs at 3/4 of the
// rate (little latency hiding); each round pays ~1.5 µs of prologue and epilogue.
inline double model_seconds(int tile, double blocks, double block_macs) {
  const TileInfo& t = kTiles[tile];
  constexpr double kMacPerSm = 0.14e12;
  const double per_sm = blocks <= 0 ? 0 : static_cast<double>((static_cast<long long>(blocks) + kModelSms - 1) / kModelSms);
  const double full = static_cast<double>(static_cast<long long>(per_sm) / t.occ);
  const double rem = per_sm - full * t.occ;
  const double unit = block_macs / (kMacPerSm * t.eff);
  const double rounds = full + (rem > 0 ? 1 : 0);
  return (full * t.occ + (rem == 1 && t.occ > 1 ? rem / 0.75 : rem)) * unit + rounds * 1.5e-6;
}

// TCONV_SIMT_F32_TILE=0..4 restricts the choosers to one TileId (the split is still chosen for it), so that a
// test run can check every tile shape on every shape class; unset or out of range: the cost model decides.
inline int forced_tile() {
  static const int t = [] {
    const char* e = std::getenv("TCONV_SIMT_F32_TILE");
    const int v = (e != nullptr && *e != 0) ? std::atoi(e) : -1;
    return v >= 0 && v < kTileCount ? v : -1;
  }();
  return t;
}

// TCONV_SIMT_F32_SPLIT=<S> (bwd_data: slab ranges, clamped to the planner's bound) and TCONV_SIMT_F32_WSPLIT=<S>
// (bwd_weights: pixel chunks; the nearest S that gives its own chunk length) fix the split-K count, so that
// tests reach the split paths on small shapes and a sweep can check the cost model; unset or ≤ 0: the model.
inline int64_t forced_split(const char* var) {
  const char* e = std::getenv(var);
  const long long v = (e != nullptr && *e != 0) ? std::atoll(e) : 0;
  return v > 0 ? static_cast<int64_t>(v) : 0;
}

// Calls f(Tile type) for a TileId.
template <class F>
decltype(auto) with_tile(int id, F&& f) {
  switch (id) {
    case kT128x64: return f(T128x64{});
    case kT64x128: return f(T64x128{});
    case kT64x64: return f(T64x64{});
    case kT128x32: return f(T128x32{});
    default: return f(T128x128{});
  }
}

// Thread placement inside the block tile: first row / column of the thread's 4-groups.
template <class C>
struct Place {
  int am, bn;
  __device__ __forceinline__ Place() {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int lm = lane / 4, ln = lane % 4;
    am = (warp / C::WARPS_N) * C::WM + lm * 4;
    bn = (warp % C::WARPS_N) * C::WN + ln * 4;
  }
  // Tile-relative row of accumulator row i, column of accumulator column j.
  __device__ __forceinline__ int row(int i) const { return am + (i / 4) * 32 + (i % 4); }
  __device__ __forceinline__ int col(int j) const { return bn + (j / 4) * 16 + (j % 4); }
};

// acc += As[k][rows] ⊗ Bs[k][cols] for the kBK k of one staged slab, in order — or only its first half when
// `half` (the rest of the slab holds only zero-filled channels: see simt_f32_gather.cu). One unrolled body
// with a block-uniform exit in the middle: a second, half-length copy made the scalar 128×128 gather spill.
template <class C>
__device__ __forceinline__ void fma_slab(const float (*As)[C::PA], const float (*Bs)[C::PB], float (&acc)[C::TM][C::TN],
                                         const Place<C>& pl, bool half = false) {
#pragma unroll
  for (int k = 0; k < kBK; ++k) {
    if (k == kBK / 2 && half) break;
    float a[C::TM], b[C::TN];
#pragma unroll
    for (int g = 0; g < C::TM / 4; ++g) {
      const float4 v = *reinterpret_cast<const float4*>(&As[k][pl.am + g * 32]);
      a[4 * g] = v.x, a[4 * g + 1] = v.y, a[4 * g + 2] = v.z, a[4 * g + 3] = v.w;
    }
#pragma unroll
    for (int g = 0; g < C::TN / 4; ++g) {
      const float4 v = *reinterpret_cast<const float4*>(&Bs[k][pl.bn + g * 16]);
      b[4 * g] = v.x, b[4 * g + 1] = v.y, b[4 * g + 2] = v.z, b[4 * g + 3] = v.w;
    }
#pragma unroll
    for (int i = 0; i < C::TM; ++i)
#pragma unroll
      for (int j = 0; j < C::TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// Four consecutive floats p[off .. off + 3], of which the first `valid` (0..4) exist (the rest read as 0).
// kVec: one 16-byte load; the caller guarantees p + off is 16-byte aligned and valid is 0 or 4.
template <bool kVec>
__device__ __forceinline__ float4 load4(const float* __restrict__ p, int64_t off, int valid) {
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if constexpr (kVec) {
    if (valid > 0) v = __ldg(reinterpret_cast<const float4*>(p + off));
  } else {
    if (valid > 0) v.x = __ldg(p + off);
    if (valid > 1) v.y = __ldg(p + off + 1);
    if (valid > 2) v.z = __ldg(p + off + 2);
    if (valid > 3) v.w = __ldg(p + off + 3);
  }
  return v;
}
// Asynchronous global→shared copies of N = 4 or 16 bytes (cp.async.ca: through L1 like the __ldg loads
// they replace, so that neighbouring pixels' taps and the blocks of an SM that read the same weights share
// lines); `valid` false zero-fills the N shared bytes without reading `src` (pass a valid address anyway).
template <int N>
__device__ __forceinline__ void cp_async_ca(void* smem, const void* src, bool valid) {
  static_assert(N == 4 || N == 16, "4- or 16-byte copies");
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(cuda_tc::smem_addr(smem)), "l"(src), "n"(N),
               "r"(valid ? N : 0));
}
// The same four floats as load4, copied asynchronously to shared `dst` (no registers; missing elements
// zero-filled, `p` itself passed for them). kVec: one 16-byte copy, `dst` and p + off 16-byte aligned, valid
// 0 or 4; otherwise four 4-byte copies. Visible to the block after cuda_tc::cp_async_wait<0>() and a barrier.
template <bool kVec>
__device__ __forceinline__ void copy4_async(float* dst, const float* __restrict__ p, int64_t off, int valid) {
  if constexpr (kVec) {
    cp_async_ca<16>(dst, valid > 0 ? p + off : p, valid > 0);
  } else {
#pragma unroll
    for (int e = 0; e < 4; ++e) cp_async_ca<4>(dst + e, e < valid ? p + off + e : p, e < valid);
  }
}
__host__ __device__ __forceinline__ int clamp4(int64_t n) { return n <= 0 ? 0 : (n >= 4 ? 4 : static_cast<int>(n)); }

// 16-byte loads are legal on a view when its base is 16-byte aligned and every stride is a multiple of 4.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
inline bool view_aligned(const core::TensorView& v) {
  return aligned16(v.data) && v.sn % 4 == 0 && v.sh % 4 == 0 && v.sw % 4 == 0;
}

// ---- launchers -------------------------------------------------------------------------------------------
// fwd: workspace holds the weights transposed to [group][tap][Ig][Og rounded up to 4] (zero padded).
std::size_t gather_workspace_bytes(const core::Problem& p);
core::Status launch_gather(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t s);
// bwd_weights: split-K partial sums (and their first-level group sums) in workspace; 0 bytes when unsplit.
std::size_t wgrad_workspace_bytes(const core::Problem& p);
core::Status launch_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t s);
// The tile shape (TileId) and split-K count each pass uses; they depend on the problem alone.
struct GatherPlan {
  int tile;
  int64_t split;  // bwd_data: slabs of k cut into `split` ranges summed by a second kernel (1: none)
};
GatherPlan gather_plan(const core::Problem& p);
int wgrad_tile(const core::Problem& p);
int64_t wgrad_splits(const core::Problem& p);

}  // namespace tconv::cuda_simt
