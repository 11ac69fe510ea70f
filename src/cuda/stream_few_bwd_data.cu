// cuda_few_channels, data gradient: diff_src[n][iy][ix][g·Ig + c] = Σ_q Σ_p Σ_o wei[g·Og + o][q][p][c] ·
// diff_dst[n][iy·sh − ph + dh·(kh−1−q)][ix·sw − pw + dw·(kw−1−p)][g·Og + o].
//
// A block owns 64 input pixels (tr rows × twc columns; each lane two of them) and up to 64 channels of one
// group (one warp per 8 channels). For each batch of kernel rows q and output channels o it stages
//   A[q][row][o][column]: the diff_dst row that kernel row q reaches from each input row, over the columns
//                         that the tile's taps reach, rounded; columns stored by stride phase so that the 32
//                         lanes (consecutive input columns) read consecutive words for every tap;
//   W[q][p][o][c]:        the weights, rounded; all lanes of a warp read the same 8 channels (broadcast).
// Then each thread adds, for every (p, o), two A words times 8 weights into 2 × 8 float32 accumulators: 16
// multiply-adds per 4 shared-memory loads, and diff_dst is read from device memory about once per kernel
// row instead of once per tap. The order of the terms is fixed (q, p, o).
//
// Layers with few input pixels (fcn8s: 16k pixels, 5376 terms each) split the kernel rows over blockIdx.z:
// each split writes float32 partial sums to workspace and a second kernel adds them in split order, then
// rounds to the image type once. The split count depends on the problem alone.
#include "cuda/cuda_util.hpp"
#include "cuda/stream_few.cuh"

namespace tconv::cuda_stream::few {
namespace {

template <DataType T>
__device__ __forceinline__ float ldg1(const typename Act<T>::type* p) {
  if constexpr (T == DataType::float32) {
    return __ldg(p);
  } else if constexpr (T == DataType::float16) {
    return __half2float(__ldg(p));
  } else {
    return __bfloat162float(__ldg(p));
  }
}

struct DxArgs {
  int twc, tr, twc_shift, cg, cb, ob, qb, qps, ks, nc, ncs, ncp, rs, a_floats, w_floats;
  int64_t col_tiles, npix;
};

// grid: x = row tile × column tile, y = group × channel group, z = kernel-row split. blockDim = 32·nctb.
template <DataType T, Precision R>
__global__ void __launch_bounds__(256) dx_kernel(KView ddst, KView dsrc, float* __restrict__ part,
                                                 const float* __restrict__ wei, KGeom g, DxArgs d, Precision wprec,
                                                 bool vec_out) {
  using E = typename Act<T>::type;
  extern __shared__ float4 smem4[];
  float* A = reinterpret_cast<float*>(smem4);                        // [qb][tr][rs]
  float* W = A + d.a_floats;                                         // [qb][kw][ob][cb]
  int64_t* rbase = reinterpret_cast<int64_t*>(W + d.w_floats);      // [tr] n·ddst.sn of the tile's rows
  int64_t* riy = rbase + d.tr;                                       // [tr] iy, or −1 past the last row
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
  const int64_t rt = blockIdx.x / d.col_tiles, ctile = blockIdx.x % d.col_tiles;
  const int64_t row0 = rt * d.tr, ix0 = ctile * d.twc;
  const int64_t grp = blockIdx.y / d.cg;
  const int cb0 = static_cast<int>(blockIdx.y % d.cg) * d.cb;  // first channel (within the group) of the block
  const int cw0 = cb0 + warp * 8;                               // first channel of this warp
  const int z = blockIdx.z;
  const int64_t q_begin = int64_t{z} * d.qps, q_end = min(g.kh, q_begin + d.qps);
  const int64_t rows = g.n * g.h_in;
  if (threadIdx.x < d.tr) {
    const int64_t row = row0 + threadIdx.x;
    const int64_t n = row / g.h_in;
    rbase[threadIdx.x] = row < rows ? n * ddst.sn : 0;
    riy[threadIdx.x] = row < rows ? row - n * g.h_in : -1;
  }
  const int s0 = lane, s1 = lane + 32;
  const int r0 = s0 >> d.twc_shift, j0 = s0 & (d.twc - 1);
  const int r1 = s1 >> d.twc_shift, j1 = s1 & (d.twc - 1);
  float acc0[8] = {}, acc1[8] = {};
  const E* __restrict__ dd = static_cast<const E*>(ddst.data) + grp * g.og;
  const int64_t ox0 = ix0 * g.sw - g.pw;
  for (int64_t qs = q_begin; qs < q_end; qs += d.qb) {
    const int nq = static_cast<int>(min(int64_t{d.qb}, q_end - qs));
    for (int64_t ob0 = 0; ob0 < g.og; ob0 += d.ob) {
      const int nob = static_cast<int>(min(int64_t{d.ob}, g.og - ob0));
      __syncthreads();  // the previous batch's reads are done (and, the first time, rbase/riy are written)
      // Stage A: element (row, column) of the batch, its nob channels in groups of 8 predicated loads so that
      // each thread has several loads in flight (non-coherent loads may pass the shared-memory stores).
      const int na = nq * d.tr * d.nc;
      const int sw = static_cast<int>(g.sw);
#pragma unroll 2
      for (int i = threadIdx.x; i < na; i += blockDim.x) {
        const int arow = i / d.nc, col = i - arow * d.nc;
        const int qq = arow / d.tr, r = arow - qq * d.tr;
        const int64_t iy = riy[r];
        const int64_t oy = iy * g.sh - g.ph + g.dh * (g.kh - 1 - (qs + qq));
        const int64_t ox = ox0 + col;
        const bool valid = iy >= 0 && oy >= 0 && oy < g.h_out && ox >= 0 && ox < g.w_out;
        float* a = A + arow * d.rs + (col % sw) * d.ncs + col / sw;
        const E* yp = dd + rbase[r] + oy * ddst.sh + ox * ddst.sw + ob0;
        for (int o0 = 0; o0 < nob; o0 += 8) {
          float v[8];
#pragma unroll
          for (int u = 0; u < 8; ++u) v[u] = (valid && o0 + u < nob) ? ldg1<T>(yp + o0 + u) : 0.f;
#pragma unroll
          for (int u = 0; u < 8; ++u)
            if (o0 + u < nob) a[(o0 + u) * d.ncp] = round_in<R>(v[u]);
        }
      }
      // Stage W: one warp per (kernel row, output channel); its lanes copy the block's channels of every tap
      // column in turn (contiguous in the OHWI weights), with no index division per element.
      const int nwo = nq * nob, kwi = static_cast<int>(g.kw);
      for (int wq = warp; wq < nwo; wq += nwarps) {
        const int qq = wq / nob, o = wq - qq * nob;
        const float* wsrc = wei + ((grp * g.og + ob0 + o) * g.kh + qs + qq) * g.kw * g.ig + cb0;
        float* wdst = W + (qq * kwi * d.ob + o) * d.cb;
        const int c1 = lane + 32;
        const bool in0 = lane < d.cb && cb0 + lane < g.ig, in1 = c1 < d.cb && cb0 + c1 < g.ig;
#pragma unroll 4
        for (int p = 0; p < kwi; ++p) {
          const float w0 = in0 ? __ldg(wsrc + p * g.ig + lane) : 0.f;
          const float w1 = in1 ? __ldg(wsrc + p * g.ig + c1) : 0.f;
          if (lane < d.cb) wdst[p * d.ob * d.cb + lane] = round_rt(w0, wprec);
          if (c1 < d.cb) wdst[p * d.ob * d.cb + c1] = round_rt(w1, wprec);
        }
      }
      __syncthreads();
      // Tap column p reads staged column tx = dw·(kw − 1 − p), stored at (tx mod sw)·ncs + tx / sw. tx falls by
      // dw per tap: its quotient and remainder are stepped instead of divided, which with one or a few output
      // channels (fsrcnn's Og = 1: 16 multiply-adds per tap) was most of the loop's instructions.
      const int swi = static_cast<int>(g.sw);
      const int tx0 = static_cast<int>(g.dw) * (kwi - 1);
      const int dwq = static_cast<int>(g.dw) / swi, dwr = static_cast<int>(g.dw) % swi;
      for (int qq = 0; qq < nq; ++qq) {
        const float* a0q = A + (qq * d.tr + r0) * d.rs + j0;
        const float* a1q = A + (qq * d.tr + r1) * d.rs + j1;
        const float* wq = W + qq * kwi * d.ob * d.cb + warp * 8;
        int txq = tx0 / swi, txr = tx0 - (tx0 / swi) * swi;
        for (int p = 0; p < kwi; ++p) {
          const int aoff = txr * d.ncs + txq;
          txr -= dwr;
          txq -= dwq;
          if (txr < 0) {
            txr += swi;
            --txq;
          }
          const float* a0p = a0q + aoff;
          const float* a1p = a1q + aoff;
          const float* wp = wq + p * d.ob * d.cb;
#pragma unroll 4
          for (int o = 0; o < nob; ++o) {
            const float a0 = a0p[o * d.ncp], a1 = a1p[o * d.ncp];
            const float4 w0 = *reinterpret_cast<const float4*>(wp + o * d.cb);
            const float4 w1 = *reinterpret_cast<const float4*>(wp + o * d.cb + 4);
            const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
            for (int v = 0; v < 8; ++v) {
              acc0[v] += a0 * wv[v];
              acc1[v] += a1 * wv[v];
            }
          }
        }
      }
    }
  }
  if (cw0 >= g.ig) return;
  const int cnt = static_cast<int>(min(int64_t{8}, g.ig - cw0));
  auto emit = [&](const float (&acc)[8], int r, int j) {
    const int64_t row = row0 + r, ix = ix0 + j;
    if (row >= rows || ix >= g.w_in) return;
    if (d.ks == 1) {
      const int64_t n = row / g.h_in, iy = row - n * g.h_in;
      E* out = static_cast<E*>(dsrc.data) + n * dsrc.sn + iy * dsrc.sh + ix * dsrc.sw + grp * g.ig + cw0;
      store8<T>(out, vec_out && cnt == 8, cnt, acc);
    } else {
      float* pp = part + (int64_t{z} * d.npix + row * g.w_in + ix) * g.c_in + grp * g.ig + cw0;
#pragma unroll
      for (int v = 0; v < 8; ++v)
        if (v < cnt) pp[v] = acc[v];
    }
  };
  emit(acc0, r0, j0);
  emit(acc1, r1, j1);
}

// diff_src = Σ_z part[z] in split order, rounded once to the image type. One block per input row.
template <DataType T>
__global__ void __launch_bounds__(256) dx_finalize_kernel(const float* __restrict__ part, KView dsrc, KGeom g, int ks,
                                                          int64_t npix) {
  using E = typename Act<T>::type;
  const int64_t rows = g.n * g.h_in, per_row = g.w_in * g.c_in;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row / g.h_in, iy = row - n * g.h_in;
    E* out = static_cast<E*>(dsrc.data) + n * dsrc.sn + iy * dsrc.sh;
    for (int64_t i = threadIdx.x; i < per_row; i += blockDim.x) {
      const int64_t ix = i / g.c_in, c = i - ix * g.c_in;
      const float* pp = part + (row * g.w_in + ix) * g.c_in + c;
      float sum = 0.f;
      for (int z = 0; z < ks; ++z) sum += pp[int64_t{z} * npix * g.c_in];
      Act<T>::store(out, ix * dsrc.sw + c, sum);
    }
  }
}

}  // namespace

core::Status launch_bwd_data(const core::Problem& p, const core::Args& a, const DxPlan& d, void* workspace,
                             cudaStream_t stream) {
  const core::Geometry& g = p.g;
  const DxArgs args{d.twc, d.tr, d.twc_shift, d.cg, d.cb,  d.ob, d.qb, d.qps, d.ks, d.nc, d.ncs, d.ncp, d.rs,
                    d.a_floats, d.w_floats, d.col_tiles, d.npix};
  const dim3 grid(static_cast<unsigned>(d.row_tiles * d.col_tiles), static_cast<unsigned>(g.groups * d.cg),
                  static_cast<unsigned>(d.ks));
  const bool vec_out = g.ig() % 8 == 0 && view_vec8(a.diff_src, p.act_type);
  float* part = static_cast<float*>(workspace);
  return dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    constexpr DataType T = decltype(t)::value;
    constexpr Precision R = decltype(r)::value;
    if (d.smem > 48 * 1024) {
      if (auto st = cuda_backend::check(
              cudaFuncSetAttribute(dx_kernel<T, R>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(d.smem)),
              "cuda_few_channels bwd_data shared-memory limit");
          !st.ok())
        return st;
    }
    dx_kernel<T, R><<<grid, 32 * d.nctb, d.smem, stream>>>(kview(a.diff_dst), kview(a.diff_src), part, a.wei, kgeom(g),
                                                          args, p.precision, vec_out);
    if (auto st = cuda_backend::check_launch("cuda_few_channels bwd_data"); !st.ok()) return st;
    if (d.ks == 1) return core::Status::ok_status();
    const int64_t rows = g.n * g.h_in;
    dx_finalize_kernel<T><<<static_cast<unsigned>(std::min<int64_t>(rows, 4096)), 256, 0, stream>>>(
        part, kview(a.diff_src), kgeom(g), d.ks, d.npix);
    return cuda_backend::check_launch("cuda_few_channels bwd_data split sum");
  });
}

}  // namespace tconv::cuda_stream::few
