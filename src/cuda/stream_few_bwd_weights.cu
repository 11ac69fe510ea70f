// cuda_few_channels, weight and bias gradients:
//   diff_wei[g·Og + o][q][p][c] = Σ over the (input pixel, output pixel) pairs joined by tap (q, p) of
//                                 diff_dst[n][oy][ox][g·Og + o] · src[n][iy][ix][g·Ig + c]
//   diff_bias[o]                = Σ diff_dst[n][oy][ox][o]
// Per tap this is an outer product of an Og-vector and an Ig-vector summed over pixels: a GEMM far too thin
// for tensor-core tiles. A block takes (pixel chunk, group, tap batch [× stride phase]) and walks its chunk in
// rounds of kp pixels. Each round stages, with coalesced loads, the tensor read once per pixel and the
// tensor read once per (pixel, tap) of the batch — which one is which depends on the walk:
//   phase-major (|dY| ≥ |X|): the output pixels of one stride phase; dY once, X under each of the phase's taps;
//   input-major (|dY| < |X|): the input pixels; X once, dY under each of the kernel's taps (dcgan 64→3,
//                             fsrcnn 56→1: X is the large tensor and is then read once).
// Threads own register tiles (tap, RO output channels, 8 input channels) and are split into ksd pixel streams:
// per pixel, RO + 8 shared-memory words give 8·RO multiply-adds in float32. Streams are added in a fixed
// order, and the block writes its entries of the chunk's partial row; stream_reduce.cu adds the rows in a
// fixed order. Bias partials: per (chunk, phase) from the staged dY when phase-major; per chunk from a walk
// over the chunk's share of dY pixels when input-major (each dY pixel is then staged once per tap, or never).
#include "cuda/cuda_util.hpp"
#include "cuda/stream_few.cuh"

namespace tconv::cuda_stream::few {
namespace {

struct DwArgs {
  int im, n_ot, nct8, tt, tg, tb, nt, ksd, nb, tiles_total, kp, ogs, igs, nph_bias;
  int64_t chunks, row_len, wei_count, union_bytes;
};

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

// a = q·b + r, with 32-bit division when both fit (a 64-bit division costs several times more).
__device__ __forceinline__ void divmod(int64_t a, int64_t b, int64_t& q, int64_t& r) {
  if (((a | b) >> 32) == 0) {
    const uint32_t q32 = static_cast<uint32_t>(a) / static_cast<uint32_t>(b);
    q = q32;
    r = a - int64_t{q32} * b;
  } else {
    q = a / b;
    r = a - q * b;
  }
}

// grid: x = (chunk · groups + group) · tg + tile group, y = [phase ·] nb + tap batch. blockDim = kDwThreads.
template <DataType T, Precision R, int RO>
__global__ void __launch_bounds__(kDwThreads) wgrad_kernel(KView src, KView ddst, float* __restrict__ partial, KGeom g,
                                                           PhaseDim py, PhaseDim px, DwArgs d, bool with_bias,
                                                           bool vec_x) {
  using E = typename Act<T>::type;
  extern __shared__ float4 smem4[];
  // Dynamic shared memory: a union of the staging area and the final reduction buffer, then the tap tables.
  const bool im = d.im != 0;
  const int yr = im ? d.tb : 1, xr = im ? 1 : d.tb;  // staged rows per pixel
  float* Ys = reinterpret_cast<float*>(smem4);                                     // [kp][yr][ogs] raw dY
  float* Xs = Ys + ((d.kp * yr * d.ogs + 3) & ~3);                                 // [kp][xr][igs] rounded X
  int64_t* self_base = reinterpret_cast<int64_t*>(Xs + d.kp * xr * d.igs);         // [kp] tensor read once
  int64_t* pix_n = self_base + d.kp;                                               // [kp] n · other's sn
  int64_t* pix_cy = pix_n + d.kp;                                                  // [kp] coordinates from which
  int64_t* pix_cx = pix_cy + d.kp;                                                 //      the taps' pixels follow
  int64_t* other_base = pix_cx + d.kp;                                             // [kp][tb] per (pixel, tap)
  float* red = reinterpret_cast<float*>(smem4);                                    // [256][8], after the walk
  int64_t* toff_a = reinterpret_cast<int64_t*>(reinterpret_cast<char*>(smem4) + d.union_bytes);  // [tb]
  int64_t* toff_b = toff_a + d.tb;                                                                // [tb]
  int* tw = reinterpret_cast<int*>(toff_b + d.tb);  // [tb] weight tap q·kw + p, −1 past the batch's taps
  int64_t* ybase = im ? other_base : self_base;
  int64_t* xbase = im ? self_base : other_base;

  const int64_t bx = blockIdx.x;
  const int tgi = static_cast<int>(bx % d.tg);
  const int64_t grp = (bx / d.tg) % g.groups, s = bx / d.tg / g.groups;
  const int ph = im ? 0 : static_cast<int>(blockIdx.y) / d.nb, b = static_cast<int>(blockIdx.y) % d.nb;
  const int64_t ry = ph / g.sw, rx = ph % g.sw;
  const int ya = py.first[ry], nty = py.first[ry + 1] - ya;
  const int xa = px.first[rx], ntx = px.first[rx + 1] - xa;
  const int64_t my_n = py.cnt[ry], mx_n = px.cnt[rx];
  const int64_t pixels = im ? g.n * g.h_in * g.w_in : g.n * my_n * mx_n;
  const int64_t per = (pixels + d.chunks - 1) / d.chunks, k0 = s * per, k1 = min(pixels, k0 + per);
  const int64_t myb = py.mlo[ry], mxb = px.mlo[rx];
  const int64_t oyb = ry - g.ph + g.sh * myb, oxb = rx - g.pw + g.sw * mxb;

  // The batch's taps.
  const int tid = threadIdx.x;
  for (int ti = tid; ti < d.tb; ti += blockDim.x) {
    const int tap = b * d.tb + ti;
    if (im) {
      const bool ok = tap < g.kh * g.kw;
      const int64_t q = ok ? tap / g.kw : 0, p = ok ? tap % g.kw : 0;
      toff_a[ti] = g.dh * (g.kh - 1 - q) - g.ph;  // oy = iy·sh + toff_a
      toff_b[ti] = g.dw * (g.kw - 1 - p) - g.pw;
      tw[ti] = ok ? tap : -1;
    } else {
      const bool ok = tap < nty * ntx;
      const int ay = ya + (ok ? tap / ntx : 0), ax = xa + (ok ? tap % ntx : 0);
      toff_a[ti] = ok ? py.off[ay] : 0;  // iy = my + off
      toff_b[ti] = ok ? px.off[ax] : 0;
      tw[ti] = ok ? static_cast<int>((g.kh - 1 - py.tap[ay]) * g.kw + (g.kw - 1 - px.tap[ax])) : -1;
    }
  }

  // This thread's tile and stream.
  const bool worker = tid < d.nt * d.ksd;
  const int tile = tid % d.nt, ks = tid / d.nt;
  const int gt = tgi * d.nt + tile;
  const int ti = gt / d.tt, rem = gt % d.tt, ot = rem / d.nct8, ct = rem % d.nct8;
  const bool tile_ok = worker && gt < d.tiles_total;
  const bool bias_thread = tile_ok && with_bias && !im && b == 0 && ti == 0 && ct == 0;  // phase-major bias
  const E* __restrict__ xg = static_cast<const E*>(src.data) + grp * g.ig;
  const E* __restrict__ yg = static_cast<const E*>(ddst.data) + grp * g.og;
  const int nvr = d.igs / 8;

  float acc[RO][8] = {};
  float bacc[RO] = {};
  __syncthreads();
  const bool tap_ok = tile_ok && ti < d.tb && tw[ti] >= 0;
  for (int64_t kb = k0; kb < k1; kb += d.kp) {
    const int kn = static_cast<int>(min(int64_t{d.kp}, k1 - kb));
    __syncthreads();  // the previous round's reads are done
    if (tid < kn) {
      const int64_t k = kb + tid;
      if (im) {
        int64_t r, ix, ni, iy;
        divmod(k, g.w_in, r, ix);
        divmod(r, g.h_in, ni, iy);
        self_base[tid] = ni * src.sn + iy * src.sh + ix * src.sw;
        pix_n[tid] = ni * ddst.sn;
        pix_cy[tid] = iy * g.sh;
        pix_cx[tid] = ix * g.sw;
      } else {
        int64_t r, jx, ni, jy;
        divmod(k, mx_n, r, jx);
        divmod(r, my_n, ni, jy);
        self_base[tid] = ni * ddst.sn + (oyb + g.sh * jy) * ddst.sh + (oxb + g.sw * jx) * ddst.sw;
        pix_n[tid] = ni * src.sn;
        pix_cy[tid] = myb + jy;
        pix_cx[tid] = mxb + jx;
      }
    }
    __syncthreads();
    {  // the (pixel, tap) rows
      const int64_t oh = im ? g.h_out : g.h_in, ow = im ? g.w_out : g.w_in;
      const int64_t osh = im ? ddst.sh : src.sh, osw = im ? ddst.sw : src.sw;
      for (int e = tid; e < kn * d.tb; e += blockDim.x) {
        const int k = e / d.tb, t = e - k * d.tb;
        const int64_t cy = pix_cy[k] + toff_a[t], cx = pix_cx[k] + toff_b[t];
        const bool ok = tw[t] >= 0 && cy >= 0 && cy < oh && cx >= 0 && cx < ow;
        other_base[e] = ok ? pix_n[k] + cy * osh + cx * osw : -1;
      }
    }
    __syncthreads();
    {  // dY rows, raw (the bias adds them unrounded; the products round them)
      const int nyr = kn * yr;
#pragma unroll 4
      for (int e = tid; e < nyr * d.ogs; e += blockDim.x) {
        const int r = e / d.ogs, o = e - r * d.ogs;
        const int64_t base = ybase[r];
        Ys[e] = (base >= 0 && o < g.og) ? ldg1<T>(yg + base + o) : 0.f;
      }
    }
    {  // X rows, rounded
      const int nxr = kn * xr;
      if (vec_x) {
#pragma unroll 2
        for (int e = tid; e < nxr * nvr; e += blockDim.x) {
          const int r = e / nvr, v = e - r * nvr;
          const int64_t base = xbase[r];
          float x[8];
          if (base >= 0) {
            ld8_aligned<T>(xg + base + v * 8, x);
#pragma unroll
            for (int i = 0; i < 8; ++i) x[i] = round_in<R>(x[i]);
          } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) x[i] = 0.f;
          }
          float4* dst4 = reinterpret_cast<float4*>(Xs + r * d.igs + v * 8);
          dst4[0] = make_float4(x[0], x[1], x[2], x[3]);
          dst4[1] = make_float4(x[4], x[5], x[6], x[7]);
        }
      } else {
#pragma unroll 4
        for (int e = tid; e < nxr * d.igs; e += blockDim.x) {
          const int r = e / d.igs, c = e - r * d.igs;
          const int64_t base = xbase[r];
          Xs[e] = (base >= 0 && c < g.ig) ? round_in<R>(ldg1<T>(xg + base + c)) : 0.f;
        }
      }
    }
    __syncthreads();
    if (tap_ok || bias_thread) {
      for (int k = ks; k < kn; k += d.ksd) {
        const float* yp = Ys + (k * yr + (im ? ti : 0)) * d.ogs + ot * RO;
        float y[RO];
        if constexpr (RO == 1) {
          y[0] = yp[0];
        } else {
#pragma unroll
          for (int i = 0; i < RO / 4; ++i) {
            const float4 t4 = reinterpret_cast<const float4*>(yp)[i];
            y[4 * i] = t4.x;
            y[4 * i + 1] = t4.y;
            y[4 * i + 2] = t4.z;
            y[4 * i + 3] = t4.w;
          }
        }
        if (bias_thread) {
#pragma unroll
          for (int ro = 0; ro < RO; ++ro) bacc[ro] += y[ro];
        }
        if (!tap_ok) continue;
        const float4* xp = reinterpret_cast<const float4*>(Xs + (k * xr + (im ? 0 : ti)) * d.igs + ct * 8);
        const float4 x0 = xp[0], x1 = xp[1];
        const float x[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
#pragma unroll
        for (int ro = 0; ro < RO; ++ro) {
          const float yv = round_in<R>(y[ro]);
#pragma unroll
          for (int v = 0; v < 8; ++v) acc[ro][v] += yv * x[v];
        }
      }
    }
  }
  // Add the streams in order (stream 0 first), one output row of the tiles (or the bias) per round.
  float* prow = partial + s * d.row_len;
  __syncthreads();  // the staging area becomes the reduction buffer
  // Input-major: the bias sums this chunk's share of the dY pixels (each exactly once over all chunks), the
  // whole block at once: thread t adds channel t mod ogc of every (256 / ogc)-th pixel, then the streams are
  // added in order.
  if (im && with_bias && b == 0 && tgi == 0) {
    const int64_t out_pixels = g.n * g.h_out * g.w_out;
    const int64_t pb = (out_pixels + d.chunks - 1) / d.chunks, b0 = s * pb, b1 = min(out_pixels, b0 + pb);
    for (int64_t o0 = 0; o0 < g.og; o0 += blockDim.x) {
      const int ogc = static_cast<int>(min(int64_t{blockDim.x}, g.og - o0));
      const int nst = blockDim.x / ogc, o = tid % ogc, st = tid / ogc;
      float sum = 0.f;
      if (st < nst) {
#pragma unroll 4
        for (int64_t k = b0 + st; k < b1; k += nst) {
          int64_t r, ox, ni, oy;
          divmod(k, g.w_out, r, ox);
          divmod(r, g.h_out, ni, oy);
          sum += ldg1<T>(yg + ni * ddst.sn + oy * ddst.sh + ox * ddst.sw + o0 + o);
        }
      }
      red[tid] = sum;
      __syncthreads();
      if (tid < ogc) {
        float total = 0.f;
        for (int j = 0; j < nst; ++j) total += red[j * ogc + tid];
        prow[d.wei_count + grp * g.og + o0 + tid] = total;
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int round = 0; round <= RO; ++round) {
    if (worker) {
#pragma unroll
      for (int v = 0; v < 8; ++v) red[tid * 8 + v] = round < RO ? acc[round][v] : (v < RO ? bacc[v] : 0.f);
    }
    __syncthreads();
    for (int i = tid; i < d.nt * 8; i += blockDim.x) {
      const int tl = i >> 3, v = i & 7;
      const int gtl = tgi * d.nt + tl;
      if (gtl >= d.tiles_total) continue;
      const int til = gtl / d.tt, reml = gtl % d.tt, otl = reml / d.nct8, ctl = reml % d.nct8;
      int64_t idx;
      if (round < RO) {
        const int64_t o = int64_t{otl} * RO + round, c = int64_t{ctl} * 8 + v;
        if (til >= d.tb || tw[til] < 0 || o >= g.og || c >= g.ig) continue;
        idx = ((grp * g.og + o) * g.kh * g.kw + tw[til]) * g.ig + c;
      } else {
        const int64_t o = int64_t{otl} * RO + v;
        if (im || !(with_bias && b == 0 && til == 0 && ctl == 0) || v >= RO || o >= g.og) continue;
        idx = d.wei_count + int64_t{ph} * g.c_out + grp * g.og + o;
      }
      float sum = 0.f;
      for (int k2 = 0; k2 < d.ksd; ++k2) sum += red[(k2 * d.nt + tl) * 8 + v];
      prow[idx] = sum;
    }
    __syncthreads();
  }
}

}  // namespace

core::Status launch_bwd_weights(const core::Problem& p, const core::Args& a, const DwPlan& w, void* workspace,
                                cudaStream_t stream) {
  const core::Geometry& g = p.g;
  const PhaseDim py = make_phase_dim(g.kh, g.stride_h, g.dil_h, g.pad_h, g.h_out);
  const PhaseDim px = make_phase_dim(g.kw, g.stride_w, g.dil_w, g.pad_w, g.w_out);
  DwArgs args{};
  args.im = w.input_major ? 1 : 0;
  args.n_ot = w.n_ot;
  args.nct8 = w.nct8;
  args.tt = w.tt;
  args.tg = w.tg;
  args.tb = w.tb;
  args.nt = w.nt;
  args.ksd = w.ksd;
  args.nb = w.nb;
  args.tiles_total = w.tiles_total;
  args.kp = w.kp;
  args.ogs = w.ogs;
  args.igs = w.igs;
  args.nph_bias = w.nph_bias;
  args.chunks = w.chunks;
  args.row_len = w.row_len;
  args.wei_count = w.wei_count;
  args.union_bytes = static_cast<int64_t>(w.union_bytes);
  const dim3 grid(static_cast<unsigned>(w.chunks * g.groups * w.tg), static_cast<unsigned>(w.items));
  const bool vec_x = g.ig() % 8 == 0 && view_vec8(a.src, p.act_type);
  const bool with_bias = p.with_bias && a.diff_bias != nullptr;
  float* partial = static_cast<float*>(workspace);
  const core::Status st = dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    constexpr DataType T = decltype(t)::value;
    constexpr Precision R = decltype(r)::value;
    auto go = [&](auto kernel) {
      kernel<<<grid, kDwThreads, w.smem, stream>>>(kview(a.src), kview(a.diff_dst), partial, kgeom(g), py, px, args,
                                                   with_bias, vec_x);
      return cuda_backend::check_launch("cuda_few_channels bwd_weights partial sums");
    };
    switch (w.ro) {
      case 1: return go(wgrad_kernel<T, R, 1>);
      case 4: return go(wgrad_kernel<T, R, 4>);
      default: return go(wgrad_kernel<T, R, 8>);
    }
  });
  if (!st.ok()) return st;
  return launch_reduce_rows(partial, w.chunks, w.row_len, w.wei_count, w.nph_bias, with_bias ? g.c_out : 0,
                            a.diff_wei, a.diff_bias, p.accumulate, stream);
}

}  // namespace tconv::cuda_stream::few
