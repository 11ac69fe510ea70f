// Shared pieces of cuda_igemm_mma (igemm_mma.cu: fwd and bwd_data; igemm_mma_wgrad.cu: bwd_weights): the
// three tensor-core operand kinds (bf16, fp16: m16n8k16; tf32: m16n8k8), fragment loads from the staged
// shared-memory slabs, and the launchers. Tiles are 64×64 per block of 4 warps; a slab row is 64 bytes of k
// (32 bf16/f16 or 16 tf32 values), padded by 16 bytes so the fragment loads hit 32 distinct banks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/direct_kernels.cuh"

namespace tconv::cuda_direct {

constexpr int kBM = 64, kBN = 64, kThreads = 128;

// The three operand kinds: staged element type, k per mma, k per shared-memory slab (64 bytes), row pitch.
struct MmaBf16 {
  using elem = __nv_bfloat16;
  static constexpr int kK = 16, kBK = 32, kPitch = 40;
  static __device__ __forceinline__ elem cvt(float v) { return __float2bfloat16_rn(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};
struct MmaF16 {
  using elem = __half;
  static constexpr int kK = 16, kBK = 32, kPitch = 40;
  static __device__ __forceinline__ elem cvt(float v) { return __float2half_rn(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};
struct MmaTf32 {
  using elem = float;
  static constexpr int kK = 8, kBK = 16, kPitch = 20;
  static __device__ __forceinline__ elem cvt(float v) { return round_in<Precision::tf32>(v); }
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
};

// A and B fragments of one k step from the staged slabs (PTX ISA fragment layouts for m16n8k16 / m16n8k8).
template <class M>
__device__ __forceinline__ void load_a(const typename M::elem (*As)[M::kPitch], int row, int k0, int gid, int tig,
                                       uint32_t (&a)[4]) {
  if constexpr (M::kK == 16) {
    a[0] = *reinterpret_cast<const uint32_t*>(&As[row + gid][k0 + tig * 2]);
    a[1] = *reinterpret_cast<const uint32_t*>(&As[row + gid + 8][k0 + tig * 2]);
    a[2] = *reinterpret_cast<const uint32_t*>(&As[row + gid][k0 + tig * 2 + 8]);
    a[3] = *reinterpret_cast<const uint32_t*>(&As[row + gid + 8][k0 + tig * 2 + 8]);
  } else {
    a[0] = __float_as_uint(As[row + gid][k0 + tig]);
    a[1] = __float_as_uint(As[row + gid + 8][k0 + tig]);
    a[2] = __float_as_uint(As[row + gid][k0 + tig + 4]);
    a[3] = __float_as_uint(As[row + gid + 8][k0 + tig + 4]);
  }
}
template <class M>
__device__ __forceinline__ void load_b(const typename M::elem (*Bs)[M::kPitch], int col, int k0, int gid, int tig,
                                       uint32_t (&b)[2]) {
  if constexpr (M::kK == 16) {
    b[0] = *reinterpret_cast<const uint32_t*>(&Bs[col + gid][k0 + tig * 2]);
    b[1] = *reinterpret_cast<const uint32_t*>(&Bs[col + gid][k0 + tig * 2 + 8]);
  } else {
    b[0] = __float_as_uint(Bs[col + gid][k0 + tig]);
    b[1] = __float_as_uint(Bs[col + gid][k0 + tig + 4]);
  }
}

// A block's 64×64 tile is 4 warps of 32×32 (warp w at rows (w / 2)·32, columns (w % 2)·32), each held as
// float acc[2][4][4]: 2×4 m16n8 fragments. The helpers below serve the gather kernel (igemm_mma.cu) and the
// weight gradient (igemm_mma_wgrad.cu).

// acc += the warp's part of As (kBM rows × kBK k) · Bs (kBN columns × kBK k)ᵀ, one staged slab, k in order.
template <class M>
__device__ __forceinline__ void mma_slab(const typename M::elem (*As)[M::kPitch], const typename M::elem (*Bs)[M::kPitch],
                                         int warp, int gid, int tig, float (&acc)[2][4][4]) {
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
#pragma unroll
  for (int ks = 0; ks < M::kBK; ks += M::kK) {
    uint32_t a[2][4], b[4][2];
#pragma unroll
    for (int i = 0; i < 2; ++i) load_a<M>(As, wm + i * 16, ks, gid, tig, a[i]);
#pragma unroll
    for (int j = 0; j < 4; ++j) load_b<M>(Bs, wn + j * 8, ks, gid, tig, b[j]);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) M::mma(acc[i][j], a[i], b[j]);
  }
}

// f(row, col, v) for each accumulator v of the warp, at row = row0 + its tile row (< kBM) and col = col0 +
// its tile column (< kBN): fragment element e holds (row gid, columns 2·tig, 2·tig + 1) for e = 0, 1 and row
// gid + 8 for e = 2, 3.
template <class R, class F>
__device__ __forceinline__ void for_each_acc(const float (&acc)[2][4][4], int warp, int gid, int tig, R row0,
                                             int64_t col0, F&& f) {
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        f(row0 + wm + i * 16 + gid + (e >= 2 ? 8 : 0), col0 + wn + j * 8 + tig * 2 + (e & 1), acc[i][j][e]);
}

// bwd_weights: deterministic split-K over pixels; workspace holds the per-chunk partial sums.
std::size_t igemm_wgrad_workspace_bytes(const core::Problem& p);
core::Status launch_igemm_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t s);
// Pass 2 shared with cuda_direct: out[e] (+)= Σ_s partial[s][e] in a fixed pairwise tree, for e < wei_count
// into diff_wei and the next bias_count into diff_bias (direct_bwd_weights.cu).
core::Status launch_reduce_partials(const float* partial, int64_t chunks, int64_t wei_count, int64_t bias_count,
                                    float* diff_wei, float* diff_bias, bool accumulate, cudaStream_t s);

}  // namespace tconv::cuda_direct
