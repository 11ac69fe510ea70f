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


// bwd_weights: deterministic split-K over pixels; workspace holds the per-chunk partial sums.
std::size_t igemm_wgrad_workspace_bytes(const core::Problem& p);
core::Status launch_igemm_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t s);
// Pass 2 shared with cuda_direct: out[e] (+)= Σ_s partial[s][e] in a fixed pairwise tree, for e < wei_count
// into diff_wei and the next bias_count into diff_bias (direct_bwd_weights.cu).
core::Status launch_reduce_partials(const float* partial, int64_t chunks, int64_t wei_count, int64_t bias_count,
                                    float* diff_wei, float* diff_bias, bool accumulate, cudaStream_t s);

}  // namespace tconv::cuda_direct
