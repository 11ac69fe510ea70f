// cuda_direct, forward: dst[n][oy][ox][o] = neuron(bias[o] + Σ_q Σ_p Σ_c src[n][iy][ix][g·Ig + c]·wei[o][q][p][c])
// with oy = iy·sh − ph + dh·(kh − 1 − q) (core/problem.hpp), written as a gather: one thread per output
// element, taps and channels summed in a fixed order (q, p, c ascending) in float32, so every run gives the
// same bits. A first pass rounds the weights to the precision mode and transposes them to
// wt[q][p][c][o] so that the 32 threads of a warp (consecutive o) read consecutive weights; the source
// element they share is one broadcast load.
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::cuda_direct {
namespace {

// wt[((q·kw + p)·Ig + c)·c_out + o] = round(wei[((o·kh + q)·kw + p)·Ig + c]); one thread per element of wt.
template <Precision P>
__global__ void prepare_weights(const float* __restrict__ wei, float* __restrict__ wt, KGeom g, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % g.c_out;
    int64_t r = i / g.c_out;
    const int64_t c = r % g.ig;
    r /= g.ig;
    const int64_t p = r % g.kw;
    const int64_t q = r / g.kw;
    wt[i] = round_in<P>(wei[((o * g.kh + q) * g.kw + p) * g.ig + c]);
  }
}

template <DataType T, Precision P>
__global__ void fwd_kernel(KView src, KView dst, const float* __restrict__ wt, const float* __restrict__ bias,
                           KGeom g, NeuronDescriptor nd, int64_t count) {
  using A = Act<T>;
  using E = typename A::type;
  const E* __restrict__ s = static_cast<const E*>(src.data);
  E* __restrict__ d = static_cast<E*>(dst.data);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % g.c_out;
    int64_t r = i / g.c_out;
    const int64_t ox = r % g.w_out;
    r /= g.w_out;
    const int64_t oy = r % g.h_out;
    const int64_t n = r / g.h_out;
    const int64_t c0 = (o / g.og) * g.ig;
    float acc = 0.f;
    for (int64_t q = 0; q < g.kh; ++q) {
      const int64_t ty = oy + g.ph - g.dh * (g.kh - 1 - q);  // = iy·sh
      if (ty < 0 || ty % g.sh != 0) continue;
      const int64_t iy = ty / g.sh;
      if (iy >= g.h_in) continue;
      for (int64_t p = 0; p < g.kw; ++p) {
        const int64_t tx = ox + g.pw - g.dw * (g.kw - 1 - p);
        if (tx < 0 || tx % g.sw != 0) continue;
        const int64_t ix = tx / g.sw;
        if (ix >= g.w_in) continue;
        const int64_t sb = n * src.sn + iy * src.sh + ix * src.sw + c0;
        const float* w = wt + (q * g.kw + p) * g.ig * g.c_out + o;
        for (int64_t c = 0; c < g.ig; ++c) acc += round_in<P>(A::load(s, sb + c)) * w[c * g.c_out];
      }
    }
    if (bias != nullptr) acc += bias[o];
    if (nd.type != NeuronType::none) acc = neuron_dev(nd.type, nd.a, nd.b, nd.c, acc);
    A::store(d, n * dst.sn + oy * dst.sh + ox * dst.sw + o, acc);
  }
}

}  // namespace

std::size_t fwd_workspace_bytes(const core::Problem& p) {
  return static_cast<std::size_t>(core::wei_elements(p.g)) * sizeof(float);
}

core::Status launch_fwd(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  const KGeom g = kgeom(p.g);
  float* wt = static_cast<float*>(workspace);
  const int64_t wcount = core::wei_elements(p.g);
  const int64_t count = core::dst_elements(p.g);
  const float* bias = p.with_bias ? a.bias : nullptr;
  return dispatch_types(p.act_type, p.precision, [&](auto act_c, auto prec_c) -> core::Status {
    constexpr DataType T = decltype(act_c)::value;
    constexpr Precision P = decltype(prec_c)::value;
    prepare_weights<P><<<grid_for(wcount, 256), 256, 0, stream>>>(a.wei, wt, g, wcount);
    if (auto st = cuda_backend::check_launch("cuda_direct fwd weight preparation"); !st.ok()) return st;
    fwd_kernel<T, P><<<grid_for(count, 256), 256, 0, stream>>>(kview(a.src), kview(a.dst), wt, bias, g, p.neuron,
                                                               count);
    return cuda_backend::check_launch("cuda_direct fwd");
  });
}

}  // namespace tconv::cuda_direct
