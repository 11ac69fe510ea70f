// cuda_direct, data gradient: diff_src[n][iy][ix][g·Ig + c] = Σ_q Σ_p Σ_{o<Og} wei[g·Og + o][q][p][c] ·
// diff_dst[n][oy][ox][g·Og + o], oy = iy·sh − ph + dh·(kh − 1 − q). A gather with no inserted zeros: one
// thread per diff_src element, summing taps and output channels in a fixed order (q, p, o ascending) in
// float32 — deterministic, no atomics. Consecutive threads hold consecutive c, so their weight loads are
// consecutive and the diff_dst element they share is a broadcast.
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::cuda_direct {
namespace {

template <DataType T, Precision P>
__global__ void bwd_data_kernel(KView diff_dst, KView diff_src, const float* __restrict__ wei, KGeom g,
                                int64_t count) {
  using A = Act<T>;
  using E = typename A::type;
  const E* __restrict__ dd = static_cast<const E*>(diff_dst.data);
  E* __restrict__ ds = static_cast<E*>(diff_src.data);
  const int64_t tap_stride = g.kh * g.kw * g.ig;  // between wei[o][q][p][c] and wei[o + 1][q][p][c]
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t ci = i % g.c_in;
    int64_t r = i / g.c_in;
    const int64_t ix = r % g.w_in;
    r /= g.w_in;
    const int64_t iy = r % g.h_in;
    const int64_t n = r / g.h_in;
    const int64_t grp = ci / g.ig, c = ci % g.ig;
    const int64_t o0 = grp * g.og;
    float acc = 0.f;
    for (int64_t q = 0; q < g.kh; ++q) {
      const int64_t oy = iy * g.sh - g.ph + g.dh * (g.kh - 1 - q);
      if (oy < 0 || oy >= g.h_out) continue;
      for (int64_t p = 0; p < g.kw; ++p) {
        const int64_t ox = ix * g.sw - g.pw + g.dw * (g.kw - 1 - p);
        if (ox < 0 || ox >= g.w_out) continue;
        const int64_t db = n * diff_dst.sn + oy * diff_dst.sh + ox * diff_dst.sw + o0;
        const float* w = wei + ((o0 * g.kh + q) * g.kw + p) * g.ig + c;
        for (int64_t o = 0; o < g.og; ++o) acc += round_in<P>(w[o * tap_stride]) * round_in<P>(A::load(dd, db + o));
      }
    }
    A::store(ds, n * diff_src.sn + iy * diff_src.sh + ix * diff_src.sw + ci, acc);
  }
}

}  // namespace

core::Status launch_bwd_data(const core::Problem& p, const core::Args& a, cudaStream_t stream) {
  const KGeom g = kgeom(p.g);
  const int64_t count = core::src_elements(p.g);
  return dispatch_types(p.act_type, p.precision, [&](auto act_c, auto prec_c) -> core::Status {
    constexpr DataType T = decltype(act_c)::value;
    constexpr Precision P = decltype(prec_c)::value;
    bwd_data_kernel<T, P><<<grid_for(count, 256), 256, 0, stream>>>(kview(a.diff_dst), kview(a.diff_src), a.wei, g,
                                                                    count);
    return cuda_backend::check_launch("cuda_direct bwd_data");
  });
}

}  // namespace tconv::cuda_direct
