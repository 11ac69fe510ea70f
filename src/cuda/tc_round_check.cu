// check_tf32_rounding (tc_round_check.hpp): every float bit pattern through tf32_rne_fast and tf32_rne_bits.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cuda/cuda_util.hpp"
#include "cuda/tc_common.cuh"
#include "cuda/tc_round_check.hpp"

namespace tconv::cuda_tc {
namespace {

// counts[0]: mismatches, counts[1]: NaNs lost; first[0..2]: input, fast, reference of one mismatch.
__global__ void round_check_kernel(unsigned long long* counts, uint32_t* first) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (uint64_t{1} << 32); i += stride) {
    const uint32_t u = static_cast<uint32_t>(i);
    const uint32_t fast = tf32_rne_fast(u), ref = tf32_rne_bits(u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN in: NaN out (the payload may change)
      if ((fast & 0x7fffffffu) <= 0x7f800000u) atomicAdd(&counts[1], 1ull);
      continue;
    }
    if ((fast & 0xffffe000u) != ref && atomicAdd(&counts[0], 1ull) == 0) {
      first[0] = u;
      first[1] = fast;
      first[2] = ref;
    }
  }
}

}  // namespace

core::Status check_tf32_rounding(int device, Tf32RoundCheck& out) {
  cuda_backend::DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  // counts[0..1], then first[0..2] in one allocation, freed on every path.
  struct Buffer {
    void* p = nullptr;
    ~Buffer() {
      if (p != nullptr) cudaFree(p);
    }
  } buf;
  constexpr std::size_t kBytes = 2 * sizeof(unsigned long long) + 4 * sizeof(uint32_t);
  if (core::Status s = cuda_backend::check(cudaMalloc(&buf.p, kBytes), "cudaMalloc"); !s.ok()) return s;
  if (core::Status s = cuda_backend::check(cudaMemset(buf.p, 0, kBytes), "cudaMemset"); !s.ok()) return s;
  auto* counts = static_cast<unsigned long long*>(buf.p);
  auto* first = reinterpret_cast<uint32_t*>(counts + 2);
  round_check_kernel<<<2048, 256>>>(counts, first);
  if (core::Status s = cuda_backend::check_launch("tf32 rounding check"); !s.ok()) return s;
  unsigned char host[kBytes];
  if (core::Status s = cuda_backend::check(cudaMemcpy(host, buf.p, kBytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
      !s.ok())
    return s;
  unsigned long long c[2];
  uint32_t f[3];
  std::memcpy(c, host, sizeof c);
  std::memcpy(f, host + sizeof c, sizeof f);
  out.mismatches = c[0];
  out.nan_lost = c[1];
  out.first_input = f[0];
  out.first_fast = f[1];
  out.first_reference = f[2];
  return core::Status::ok_status();
}

}  // namespace tconv::cuda_tc
