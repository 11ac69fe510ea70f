// cuda_igemm_mma, weight and bias gradients on the tensor cores, deterministic split-K.
// Per group g and tap (q, p) the weight gradient is a GEMM over the pixels of the source grid:
//   diff_wei[g·Og + o][q][p][c] = Σ_{n, iy, ix} diff_dst[n][oy][ox][g·Og + o] · src[n][iy][ix][g·Ig + c]
//   with oy = iy·sh − ph + dh·(kh − 1 − q), ox likewise (pixels whose oy/ox fall outside contribute 0).
// M = Og (A = diff_dst, staged [o][pixel]), N = Ig (B = src, staged [c][pixel]), K = n·h_in·w_in.
// K is cut into S fixed chunks (S depends on the problem alone); each block computes one 64×64 tile of one
// (group, tap, chunk) and writes it to workspace[s][e] (no atomics); the bias partials over the same S
// chunks of the n·h_out rows are written beside them; then the pairwise fixed-order reduction of
// direct_bwd_weights.cu adds the S partials (and the old values when accumulating).
#include <algorithm>

#include "cuda/cuda_util.hpp"
#include "cuda/igemm_mma.cuh"

namespace tconv::cuda_direct {
namespace {

struct WSplit {
  int64_t wei_count, bias_count, outs;
  int64_t k_total;   // n·h_in·w_in pixels
  int64_t chunk;     // pixels per chunk (a multiple of 32)
  int64_t chunks;    // S
  int64_t mt, nt;    // tiles over Og and Ig
  int64_t rows_b, chunk_b;  // bias: n·h_out rows, rows per chunk
};

WSplit make_wsplit(const core::Problem& p) {
  const core::Geometry& g = p.g;
  WSplit w{};
  w.wei_count = core::wei_elements(g);
  w.bias_count = p.with_bias ? g.c_out : 0;
  w.outs = w.wei_count + w.bias_count;
  w.k_total = g.n * g.h_in * g.w_in;
  w.mt = (g.og() + kBM - 1) / kBM;
  w.nt = (g.ig() + kBN - 1) / kBN;
  const int64_t blocks = w.mt * w.nt * g.kh * g.kw * g.groups;
  const int64_t slabs = (w.k_total + 31) / 32;
  int64_t s = std::max<int64_t>(1, (2048 + blocks - 1) / blocks);          // about 2048 blocks in flight
  s = std::min<int64_t>(s, std::max<int64_t>(1, (int64_t{1} << 26) / w.outs));  // at most 256 MiB of partials
  s = std::min<int64_t>(s, slabs);
  w.chunk = ((slabs + s - 1) / s) * 32;
  w.chunks = (w.k_total + w.chunk - 1) / w.chunk;
  w.rows_b = g.n * g.h_out;
  w.chunk_b = (w.rows_b + w.chunks - 1) / w.chunks;
  return w;
}

template <class M, DataType T>
__global__ void __launch_bounds__(kThreads) wgrad_kernel(KView src, KView dd, float* __restrict__ partial, KGeom g,
                                                         WSplit w) {
  using E = typename Act<T>::type;
  using S = typename M::elem;
  __shared__ __align__(16) S As[kBM][M::kPitch];  // [o][pixel]
  __shared__ __align__(16) S Bs[kBN][M::kPitch];  // [c][pixel]
  __shared__ int64_t pix_src[M::kBK], pix_dd[M::kBK];  // offsets of the slab's pixels, −1: no contribution

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  int64_t b = blockIdx.x;
  const int64_t s = b % w.chunks;
  b /= w.chunks;
  const int64_t tap = b % (g.kh * g.kw);
  b /= g.kh * g.kw;
  const int64_t grp = b % g.groups;
  b /= g.groups;
  const int64_t nt = b % w.nt, mt = b / w.nt;
  const int64_t q = tap / g.kw, p = tap % g.kw;
  const int64_t o0 = mt * kBM, c0 = nt * kBN;
  const int64_t sy = -g.ph + g.dh * (g.kh - 1 - q), sx = -g.pw + g.dw * (g.kw - 1 - p);
  const E* __restrict__ sp = static_cast<const E*>(src.data);
  const E* __restrict__ dp = static_cast<const E*>(dd.data);

  float acc[2][4][4] = {};

  const int64_t k_begin = s * w.chunk, k_end = std::min(w.k_total, k_begin + w.chunk);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += M::kBK) {
    __syncthreads();  // previous slab consumed
    if (tid < M::kBK) {
      const int64_t k = k0 + tid;
      int64_t so = -1, doff = -1;
      if (k < k_end) {
        const int64_t ix = k % g.w_in, t = k / g.w_in, iy = t % g.h_in, n = t / g.h_in;
        const int64_t oy = iy * g.sh + sy, ox = ix * g.sw + sx;
        if (oy >= 0 && oy < g.h_out && ox >= 0 && ox < g.w_out) {
          so = n * src.sn + iy * src.sh + ix * src.sw + grp * g.ig;
          doff = n * dd.sn + oy * dd.sh + ox * dd.sw + grp * g.og;
        }
      }
      pix_src[tid] = so;
      pix_dd[tid] = doff;
    }
    __syncthreads();
    for (int i = tid; i < kBM * M::kBK; i += kThreads) {  // consecutive threads: consecutive o
      const int o = i % kBM, kk = i / kBM;
      float v = 0.f;
      if (pix_dd[kk] >= 0 && o0 + o < g.og) v = Act<T>::load(dp, pix_dd[kk] + o0 + o);
      As[o][kk] = M::cvt(v);
    }
    for (int i = tid; i < kBN * M::kBK; i += kThreads) {  // consecutive threads: consecutive c
      const int c = i % kBN, kk = i / kBN;
      float v = 0.f;
      if (pix_src[kk] >= 0 && c0 + c < g.ig) v = Act<T>::load(sp, pix_src[kk] + c0 + c);
      Bs[c][kk] = M::cvt(v);
    }
    __syncthreads();
    mma_slab<M>(As, Bs, warp, gid, tig, acc);
  }

  // partial[s][e], e = (((g·Og + o)·kh + q)·kw + p)·Ig + c: every (o, c) of the tile is written, zeros too.
  float* out = partial + s * w.outs;
  for_each_acc(acc, warp, gid, tig, o0, c0, [&](int64_t o, int64_t c, float v) {
    if (o >= g.og || c >= g.ig) return;
    out[(((grp * g.og + o) * g.kh + q) * g.kw + p) * g.ig + c] = v;
  });
}

// partial[s][wei_count + o] = Σ over the rows of chunk s (n·h_out rows) and all ox of diff_dst[..][o].
template <DataType T>
__global__ void bias_partials(KView dd, float* __restrict__ partial, KGeom g, WSplit w) {
  const auto* d = static_cast<const typename Act<T>::type*>(dd.data);
  const int64_t count = w.chunks * w.bias_count;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t s = i / w.bias_count, o = i % w.bias_count;
    const int64_t r0 = s * w.chunk_b, r1 = std::min(w.rows_b, r0 + w.chunk_b);
    float acc = 0.f;
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t n = row / g.h_out, oy = row % g.h_out;
      const int64_t base = n * dd.sn + oy * dd.sh + o;
      for (int64_t ox = 0; ox < g.w_out; ++ox) acc += Act<T>::load(d, base + ox * dd.sw);
    }
    partial[s * w.outs + w.wei_count + o] = acc;
  }
}

template <class M, DataType T>
core::Status launch_typed(const core::Problem& p, const core::Args& a, float* partial, cudaStream_t stream) {
  const KGeom g = kgeom(p.g);
  WSplit w = make_wsplit(p);
  if (a.diff_bias == nullptr) {  // with_bias but nowhere to put it: the partials keep their stride without it
    w.bias_count = 0;
    w.outs = w.wei_count;
  }
  const int64_t blocks = w.mt * w.nt * g.kh * g.kw * g.groups * w.chunks;
  wgrad_kernel<M, T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(kview(a.src), kview(a.diff_dst), partial,
                                                                             g, w);
  if (auto st = cuda_backend::check_launch("cuda_igemm_mma bwd_weights"); !st.ok()) return st;
  if (w.bias_count > 0) {
    bias_partials<T><<<grid_for(w.chunks * w.bias_count, 256), 256, 0, stream>>>(kview(a.diff_dst), partial, g, w);
    if (auto st = cuda_backend::check_launch("cuda_igemm_mma bias partials"); !st.ok()) return st;
  }
  return launch_reduce_partials(partial, w.chunks, w.wei_count, w.bias_count, a.diff_wei, a.diff_bias, p.accumulate,
                                stream);
}

}  // namespace

std::size_t igemm_wgrad_workspace_bytes(const core::Problem& p) {
  const WSplit w = make_wsplit(p);
  return static_cast<std::size_t>(w.chunks * w.outs) * sizeof(float);
}

core::Status launch_igemm_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  auto* partial = static_cast<float*>(workspace);
  return dispatch_types(p.act_type, p.precision, [&](auto act_c, auto prec_c) -> core::Status {
    constexpr DataType T = decltype(act_c)::value;
    constexpr Precision P = decltype(prec_c)::value;
    if constexpr (P == Precision::bf16) return launch_typed<MmaBf16, T>(p, a, partial, stream);
    else if constexpr (P == Precision::fp16) return launch_typed<MmaF16, T>(p, a, partial, stream);
    else if constexpr (P == Precision::tf32) return launch_typed<MmaTf32, T>(p, a, partial, stream);
    else return core::unsupported("cuda_igemm_mma: fp32 precision");
  });
}

}  // namespace tconv::cuda_direct
