// cuda_direct, weight and bias gradients, deterministic two-pass split-K:
//   diff_wei[o][q][p][c] = Σ_n Σ_iy Σ_ix src[n][iy][ix][g·Ig + c] · diff_dst[n][oy][ox][o]
//   diff_bias[o]         = Σ_n Σ_oy Σ_ox diff_dst[n][oy][ox][o]
// The reduction runs over n × pixels, far longer than the number of outputs for most layers, so it is split
// into S chunks of consecutive (n, row) pairs. Pass 1: one thread per (chunk, output) writes its partial sum
// (fixed order inside the chunk) to workspace[s][e]; the bias partials are extra outputs of the same launch.
// Pass 2: one thread per output adds the S partials in a fixed pairwise tree (then the old value when
// accumulating).
// S depends on the problem alone — never on the GPU or on timing — and no floating-point atomics are used,
// so the bits are the same on every run and every device.
#include <algorithm>

#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::cuda_direct {
namespace {

struct Split {
  int64_t wei_count;   // E = c_out·kh·kw·Ig
  int64_t bias_count;  // c_out with a bias gradient, else 0
  int64_t chunks;      // S
  int64_t rows_w, rows_b;    // n·h_in (weight reduction rows), n·h_out (bias reduction rows)
  int64_t chunk_w, chunk_b;  // rows per chunk
};

Split make_split(const core::Problem& p) {
  const core::Geometry& g = p.g;
  Split s{};
  s.wei_count = core::wei_elements(g);
  s.bias_count = p.with_bias ? g.c_out : 0;
  const int64_t outs = s.wei_count + s.bias_count;
  s.rows_w = g.n * g.h_in;
  s.rows_b = g.n * g.h_out;
  // About 2^20 threads in pass 1 when the outputs are few; at most 2^26 partials (256 MiB) of workspace.
  int64_t chunks = std::max<int64_t>(1, ((int64_t{1} << 20) + outs - 1) / outs);
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, (int64_t{1} << 26) / outs));
  chunks = std::min<int64_t>(chunks, std::max(s.rows_w, s.rows_b));
  s.chunks = chunks;
  s.chunk_w = (s.rows_w + chunks - 1) / chunks;
  s.chunk_b = (s.rows_b + chunks - 1) / chunks;
  return s;
}

// partial[s][e], e < E: weight gradient element e over the rows of chunk s; e ≥ E: bias of channel e − E.
template <DataType T, Precision P>
__global__ void partial_kernel(KView src, KView diff_dst, float* __restrict__ partial, KGeom g, Split sp) {
  using A = Act<T>;
  using E = typename A::type;
  const E* __restrict__ s_ = static_cast<const E*>(src.data);
  const E* __restrict__ dd = static_cast<const E*>(diff_dst.data);
  const int64_t outs = sp.wei_count + sp.bias_count;
  const int64_t count = outs * sp.chunks;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t chunk = i / outs, e = i % outs;
    float acc = 0.f;
    if (e < sp.wei_count) {
      const int64_t c = e % g.ig;
      int64_t r = e / g.ig;
      const int64_t p = r % g.kw;
      r /= g.kw;
      const int64_t q = r % g.kh;
      const int64_t o = r / g.kh;
      const int64_t ci = (o / g.og) * g.ig + c;
      // ix range whose tap p lands inside [0, w_out): ox = ix·sw + shift.
      const int64_t shift = -g.pw + g.dw * (g.kw - 1 - p);
      const int64_t ix_lo = max(int64_t{0}, floor_div(-shift + g.sw - 1, g.sw));
      const int64_t ix_hi = min(g.w_in, floor_div(g.w_out - 1 - shift, g.sw) + 1);
      const int64_t r0 = chunk * sp.chunk_w, r1 = min(sp.rows_w, r0 + sp.chunk_w);
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t n = row / g.h_in, iy = row % g.h_in;
        const int64_t oy = iy * g.sh - g.ph + g.dh * (g.kh - 1 - q);
        if (oy < 0 || oy >= g.h_out) continue;
        const int64_t sb = n * src.sn + iy * src.sh + ci;
        const int64_t db = n * diff_dst.sn + oy * diff_dst.sh + o;
        for (int64_t ix = ix_lo; ix < ix_hi; ++ix) {
          const int64_t ox = ix * g.sw + shift;
          acc += round_in<P>(A::load(s_, sb + ix * src.sw)) * round_in<P>(A::load(dd, db + ox * diff_dst.sw));
        }
      }
    } else {
      const int64_t o = e - sp.wei_count;
      const int64_t r0 = chunk * sp.chunk_b, r1 = min(sp.rows_b, r0 + sp.chunk_b);
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t n = row / g.h_out, oy = row % g.h_out;
        const int64_t db = n * diff_dst.sn + oy * diff_dst.sh + o;
        for (int64_t ox = 0; ox < g.w_out; ++ox) acc += A::load(dd, db + ox * diff_dst.sw);
      }
    }
    partial[i] = acc;
  }
}

// out[e] = (accumulate ? out[e] : 0) + Σ_s partial[s][e], added pairwise in a fixed tree over s (a binary
// counter: after partial s, the sums of equal-sized neighbouring blocks are merged). A plain running sum over
// thousands of chunks loses up to S·2^-24 of the total (seen: 2e-4 at S = 16400); the tree keeps the error
// near log2(S)·2^-24 and its order depends on S alone, so the result is still the same on every run.
__global__ void reduce_kernel(const float* __restrict__ partial, float* __restrict__ diff_wei,
                              float* __restrict__ diff_bias, Split sp, bool accumulate) {
  const int64_t outs = sp.wei_count + sp.bias_count;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < outs; e += int64_t{gridDim.x} * blockDim.x) {
    float level[40];  // sums of power-of-two blocks of partials awaiting a merge, largest first (S < 2^40)
    int depth = 0;
    for (int64_t s = 0; s < sp.chunks; ++s) {
      float v = partial[s * outs + e];
      for (int64_t c = s + 1; (c & 1) == 0; c >>= 1) v = level[--depth] + v;
      level[depth++] = v;
    }
    float sum = 0.f;
    while (depth > 0) sum = level[--depth] + sum;
    float* out = e < sp.wei_count ? diff_wei + e : diff_bias + (e - sp.wei_count);
    *out = accumulate ? *out + sum : sum;
  }
}

}  // namespace

std::size_t bwd_weights_workspace_bytes(const core::Problem& p) {
  const Split s = make_split(p);
  return static_cast<std::size_t>(s.chunks * (s.wei_count + s.bias_count)) * sizeof(float);
}

core::Status launch_bwd_weights(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  const KGeom g = kgeom(p.g);
  Split sp = make_split(p);
  if (a.diff_bias == nullptr) sp.bias_count = 0;  // with_bias but no destination: nothing to write there
  float* partial = static_cast<float*>(workspace);
  const int64_t outs = sp.wei_count + sp.bias_count;
  return dispatch_types(p.act_type, p.precision, [&](auto act_c, auto prec_c) -> core::Status {
    constexpr DataType T = decltype(act_c)::value;
    constexpr Precision P = decltype(prec_c)::value;
    partial_kernel<T, P><<<grid_for(outs * sp.chunks, 256), 256, 0, stream>>>(kview(a.src), kview(a.diff_dst),
                                                                             partial, g, sp);
    if (auto st = cuda_backend::check_launch("cuda_direct bwd_weights partial sums"); !st.ok()) return st;
    reduce_kernel<<<grid_for(outs, 256), 256, 0, stream>>>(partial, a.diff_wei, a.diff_bias, sp, p.accumulate);
    return cuda_backend::check_launch("cuda_direct bwd_weights reduction");
  });
}

}  // namespace tconv::cuda_direct

namespace tconv::cuda_direct {

core::Status launch_reduce_partials(const float* partial, int64_t chunks, int64_t wei_count, int64_t bias_count,
                                    float* diff_wei, float* diff_bias, bool accumulate, cudaStream_t stream) {
  Split sp{};
  sp.wei_count = wei_count;
  sp.bias_count = bias_count;
  sp.chunks = chunks;
  reduce_kernel<<<grid_for(wei_count + bias_count, 256), 256, 0, stream>>>(partial, diff_wei, diff_bias, sp, accumulate);
  return cuda_backend::check_launch("split-K reduction");
}

}  // namespace tconv::cuda_direct
