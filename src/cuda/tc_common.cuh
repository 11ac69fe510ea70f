// Primitives of the pipelined tensor-core kernels (cuda_tc_*): asynchronous global→shared copies
// (cp.async, sm_80+), shared→register fragment loads (ldmatrix), and the element conversions those kernels
// need. The mma instructions themselves and the operand kinds (MmaBf16, MmaF16, MmaTf32) are in
// igemm_mma.cuh, shared with cuda_igemm_mma.
//
// Why cp.async: the copy goes from L2 to shared memory without passing through registers, so a block can
// have several k-slabs in flight (a multi-stage pipeline) while its warps multiply the slab already landed.
// The zero-fill form (src-size 0) writes zeros for taps that fall outside the image, so padding costs no
// branch around the copy and the shared slab never holds stale data.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tconv::cuda_tc {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global→shared; when `valid` is false the 16 shared bytes are zero-filled and `src` is not read
// (it must still be a valid-looking address: pass the tensor's base).
__device__ __forceinline__ void cp_async_16(void* smem, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(src), "r"(bytes));
}
// 4 bytes (one float or two 16-bit values) for operands whose rows are not 16-byte aligned.
__device__ __forceinline__ void cp_async_4(void* smem, const void* src, bool valid) {
  const int bytes = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N committed groups are still in flight (N = stages − 2 in a steady-state pipeline).
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// ldmatrix: four 8×8 matrices of 16-bit elements; lane l supplies the row address of matrix l / 8, row l % 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(smem_row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(smem_row)));
}

// tf32 operands are staged as float32 bits; the reference rounds them to nearest even at bit 13
// (core::round_input), which the tensor cores do not do (they drop the low bits), so the kernels round in
// registers after the fragment load. Inf and NaN pass unchanged.
__device__ __forceinline__ uint32_t tf32_rne_bits(uint32_t u) {
  if ((u & 0x7fffffffu) >= 0x7f800000u) return u;
  u += 0xfffu + ((u >> 13) & 1u);
  return u & 0xffffe000u;
}

// The same rounding in one instruction where the hardware has it: sm_90's cvt.rn.tf32.f32 (F2FP.TF32) rounds to
// nearest even at bit 13 and keeps Inf and NaN, where tf32_rne_bits takes six integer instructions per value —
// in the tf32 mainloops that rounding, not the tensor cores, limited the issue rate. Older architectures
// keep the integer form (cvt.rna there rounds ties away from zero, which is not the reference's rule).
__device__ __forceinline__ uint32_t tf32_rne_fast(uint32_t u) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t r;
  asm("cvt.rn.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(__uint_as_float(u)));
  return r;
#else
  return tf32_rne_bits(u);
#endif
}
__device__ __forceinline__ uint4 tf32_rne_fast(uint4 v) {
  return make_uint4(tf32_rne_fast(v.x), tf32_rne_fast(v.y), tf32_rne_fast(v.z), tf32_rne_fast(v.w));
}

// mbarriers for the warp-specialized pipelines (cuda_tc_igemm's ws tiles, cuda_tc_wgrad's ws variants): init by
// one thread (then a block barrier), arrive (release), and a wait on a phase parity (acquire) — sm_90's
// try_wait, which may suspend the thread, or sm_80's test_wait in a loop.
__device__ __forceinline__ void mbar_init(uint32_t addr, uint32_t count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(addr), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t addr) {
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared.b64 st, [%0];\n}\n" ::"r"(addr) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t addr, uint32_t parity) {
  uint32_t done = 0;
  do {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(addr), "r"(parity)
                 : "memory");
#else
    asm volatile("{\n.reg .pred p;\nmbarrier.test_wait.parity.shared.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(addr), "r"(parity)
                 : "memory");
#endif
  } while (done == 0);
}

}  // namespace tconv::cuda_tc
