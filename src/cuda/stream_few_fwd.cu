// cuda_few_channels, forward: dst[n][oy][ox][o] = neuron(bias[o] + Σ_taps Σ_c src[..][c]·wei[o][q][p][c]).
// A block takes the pixels of one stride phase (so only that phase's taps, the same for all its threads) and
// a tile of RO output channels of one group; the phase's weights are rounded into shared memory as
// ws[tap][c][ro], read by all lanes at the same address (broadcast). Each thread owns one output pixel: it
// reads the source pixels under its taps 8 channels at a time (16-byte loads where aligned) and accumulates
// RO outputs in float32, in a fixed order (taps, then channels).
#include "cuda/cuda_util.hpp"
#include "cuda/stream_few.cuh"

namespace tconv::cuda_stream::few {
namespace {

// grid: x = pixel blocks (grid-stride), y = stride phase, z = group × output tile.
template <DataType T, Precision R, int RO>
__global__ void __launch_bounds__(kFwdThreads) fwd_kernel(KView src, KView dst, const float* __restrict__ wei,
                                                          const float* __restrict__ bias, KGeom g, PhaseDim py,
                                                          PhaseDim px, NeuronDescriptor nd, Precision wprec, int n_ot,
                                                          int igp, bool vec_x) {
  using E = typename Act<T>::type;
  extern __shared__ float4 smem4[];
  float* ws = reinterpret_cast<float*>(smem4);
  const int ph = blockIdx.y;
  const int64_t ry = ph / g.sw, rx = ph % g.sw;
  const int ya = py.first[ry], nty = py.first[ry + 1] - ya;
  const int xa = px.first[rx], ntx = px.first[rx + 1] - xa;
  const int64_t grp = blockIdx.z / n_ot;
  const int ot = static_cast<int>(blockIdx.z % n_ot);
  const int per_tap = igp * RO;
  for (int i = threadIdx.x; i < nty * ntx * per_tap; i += blockDim.x) {
    const int ti = i / per_tap, rem = i - ti * per_tap, c = rem / RO, ro = rem - c * RO;
    const int64_t o = int64_t{ot} * RO + ro;
    const int64_t q = g.kh - 1 - py.tap[ya + ti / ntx], p = g.kw - 1 - px.tap[xa + ti % ntx];
    ws[i] = (o < g.og && c < g.ig) ? round_rt(wei[(((grp * g.og + o) * g.kh + q) * g.kw + p) * g.ig + c], wprec) : 0.f;
  }
  __syncthreads();
  const int64_t my_n = py.cnt[ry], mx_n = px.cnt[rx], pixels = g.n * my_n * mx_n;
  const E* __restrict__ s = static_cast<const E*>(src.data) + grp * g.ig;
  E* __restrict__ d = static_cast<E*>(dst.data) + grp * g.og + int64_t{ot} * RO;
  float bv[RO];
#pragma unroll
  for (int ro = 0; ro < RO; ++ro) {
    const int64_t o = int64_t{ot} * RO + ro;
    bv[ro] = (bias != nullptr && o < g.og) ? bias[grp * g.og + o] : 0.f;
  }
  for (int64_t k = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; k < pixels; k += int64_t{gridDim.x} * blockDim.x) {
    const int64_t jx = k % mx_n, r = k / mx_n, jy = r % my_n, ni = r / my_n;
    const int64_t my = py.mlo[ry] + jy, mx = px.mlo[rx] + jx;
    const int64_t oy = ry - g.ph + g.sh * my, ox = rx - g.pw + g.sw * mx;
    float acc[RO] = {};
    for (int a = 0; a < nty; ++a) {
      const int64_t iy = my + py.off[ya + a];
      if (iy < 0 || iy >= g.h_in) continue;
      for (int b = 0; b < ntx; ++b) {
        const int64_t ix = mx + px.off[xa + b];
        if (ix < 0 || ix >= g.w_in) continue;
        const E* xp = s + ni * src.sn + iy * src.sh + ix * src.sw;
        const float* wt = ws + (a * ntx + b) * per_tap;
        for (int c0 = 0; c0 < g.ig; c0 += 8) {
          float x[8];
          const int cnt = static_cast<int>(min(int64_t{8}, g.ig - c0));
          load8<T>(xp + c0, vec_x && cnt == 8, cnt, x);
          // The 8·RO weights of these channels are contiguous and 32-byte aligned: float4 loads.
          float wv[8 * RO];
          const float4* w4 = reinterpret_cast<const float4*>(wt + c0 * RO);
#pragma unroll
          for (int i = 0; i < 2 * RO; ++i) {
            const float4 t = w4[i];
            wv[4 * i] = t.x;
            wv[4 * i + 1] = t.y;
            wv[4 * i + 2] = t.z;
            wv[4 * i + 3] = t.w;
          }
#pragma unroll
          for (int v = 0; v < 8; ++v) {
            const float xv = round_in<R>(x[v]);
#pragma unroll
            for (int ro = 0; ro < RO; ++ro) acc[ro] += xv * wv[v * RO + ro];
          }
        }
      }
    }
    E* out = d + ni * dst.sn + oy * dst.sh + ox * dst.sw;
#pragma unroll
    for (int ro = 0; ro < RO; ++ro) {
      if (int64_t{ot} * RO + ro >= g.og) continue;
      float val = acc[ro] + bv[ro];
      if (nd.type != NeuronType::none) val = neuron_dev(nd.type, nd.a, nd.b, nd.c, val);
      Act<T>::store(out, ro, val);
    }
  }
}

}  // namespace

core::Status launch_fwd(const core::Problem& p, const core::Args& a, const FwdPlan& f, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  const PhaseDim py = make_phase_dim(g.kh, g.stride_h, g.dil_h, g.pad_h, g.h_out);
  const PhaseDim px = make_phase_dim(g.kw, g.stride_w, g.dil_w, g.pad_w, g.w_out);
  const int64_t max_pix = g.n * max_phase_count(py, g.stride_h) * max_phase_count(px, g.stride_w);
  const int64_t blocks = std::clamp<int64_t>((max_pix + kFwdThreads - 1) / kFwdThreads, 1, 4096);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(g.stride_h * g.stride_w),
                  static_cast<unsigned>(g.groups * f.n_ot));
  const bool vec_x = g.ig() % 8 == 0 && view_vec8(a.src, p.act_type);
  const float* bias = p.with_bias ? a.bias : nullptr;
  return dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    constexpr DataType T = decltype(t)::value;
    constexpr Precision R = decltype(r)::value;
    auto go = [&](auto kernel) {
      kernel<<<grid, kFwdThreads, f.smem, stream>>>(kview(a.src), kview(a.dst), a.wei, bias, kgeom(g), py, px,
                                                    p.neuron, p.precision, f.n_ot, f.igp, vec_x);
      return cuda_backend::check_launch("cuda_few_channels fwd");
    };
    switch (f.ro) {
      case 1: return go(fwd_kernel<T, R, 1>);
      case 4: return go(fwd_kernel<T, R, 4>);
      default: return go(fwd_kernel<T, R, 8>);
    }
  });
}

}  // namespace tconv::cuda_stream::few
