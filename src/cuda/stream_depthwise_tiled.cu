// cuda_stream_depthwise, tiled data and weight gradients (the design and the plan: stream_depthwise_plan.hpp).
//
// Tile = ty×tx input pixels of one image × a channel tile of vpp 16-byte vectors. Both kernels copy the diff_dst
// region a tile's taps reach — rows iy0·sh − ph .. + hb, columns likewise, zero-filled outside the image — into
// shared memory as [row][column][vector] (and the weight gradient also the tile's source pixels), with one 16-byte
// cp.async per vector, then take every tap from there. bwd_data: a block per tile, one buffer (up to five blocks
// per SM). bwd_weights: a block walks a contiguous range of tiles (one wave of blocks on an H100) with two buffers:
// tile t + 1's copies are in flight while tile t is summed.
//   bwd_data: thread = (pixel, vector); dX = Σ_q Σ_p round(dY[oy(q)][ox(p)]) · w[q][p], taps in the order of
//             the untiled kernel (q, then p ascending, taps outside the output image skipped): the same
//             additions in the same order, so both kernels give the same bits.
//   bwd_weights: thread = (pixel slice, tap group of kG taps, vector); it sums x · dY over the pixels of its
//             slice of every tile of its chunk, in order; then the block adds its slices in order through shared
//             memory and writes one partial row per chunk (no atomics); stream_reduce.cu adds the rows in order.
//             The bias: each tile sums the diff_dst outputs it owns (dw_owned: the tiles partition the output
//             image), from the staged region where they lie in it.
#include "cuda/cuda_util.hpp"
#include "cuda/stream_common.cuh"
#include "cuda/stream_depthwise_plan.hpp"
#include "cuda/stream_depthwise_tiled.cuh"
#include "cuda/tc_common.cuh"

namespace tconv::cuda_stream {
namespace {

// One 16-byte global store (the compiler split a uint4 assignment through the cast pointer into four 4-byte ones).
__device__ __forceinline__ void st_global16(void* p, const uint4& u) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(p), "r"(u.x), "r"(u.y), "r"(u.z), "r"(u.w)
               : "memory");
}

// The block's tile: image n, first input pixel (iy0, ix0), first diff_dst position of the region (oy0, ox0). 32-bit
// coordinates: dw_plan declines images of 2^30 pixels or more per side.
struct TileAt {
  int64_t n;
  int ty, tx, iy0, ix0, oy0, ox0;
};
// (32-bit divisions: dw_plan keeps the tile count below 2^31; a 64-bit division is a ~70-instruction routine.)
__device__ __forceinline__ TileAt tile_at(int64_t t64, const DwPlan& d, const KGeom& g) {
  TileAt a;
  uint32_t t = static_cast<uint32_t>(t64);
  const uint32_t tx = static_cast<uint32_t>(d.tiles_x), ty = static_cast<uint32_t>(d.tiles_y);
  uint32_t q = t / tx;
  a.tx = static_cast<int>(t - q * tx);
  t = q;
  q = t / ty;
  a.ty = static_cast<int>(t - q * ty);
  a.n = q;
  a.iy0 = a.ty * d.ty;
  a.ix0 = a.tx * d.tx;
  a.oy0 = a.iy0 * static_cast<int>(g.sh) - static_cast<int>(g.ph);
  a.ox0 = a.ix0 * static_cast<int>(g.sw) - static_cast<int>(g.pw);
  return a;
}

// Walks the cells of a rows × cols grid from `first` in steps of `step` without a division per step.
struct Walk {
  int r, c, dr, dc, cols;
  __device__ __forceinline__ Walk(int first, int step, int cols_) : cols(cols_) {
    r = first / cols;
    c = first - r * cols;
    dr = step / cols;
    dc = step - dr * cols;
  }
  __device__ __forceinline__ void next() {
    r += dr;
    c += dc;
    if (c >= cols) {
      c -= cols;
      ++r;
    }
  }
};

// Floor and ceiling of a / b for b > 0, any sign of a.
__device__ __forceinline__ int fdiv(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
__device__ __forceinline__ int cdiv(int a, int b) { return -fdiv(-a, b); }

// Issues the copies of a rows × cols block of pixels starting at (y0, x0) of image view `vw` (channel tile c_tile)
// into dst[(row·cols + column)·vpp + vector], zeros outside [0, h) × [0, w) and past the channels. A thread keeps
// its vector and walks the cells 256 / vpp apart without divisions.
template <class E>
__device__ __forceinline__ void stage(uint4* dst, const KView& vw, int64_t n, int64_t c_tile, int64_t channels,
                                      int y0, int x0, int rows, int cols, int h, int w, int vpp, int vec) {
  const E* __restrict__ base = static_cast<const E*>(vw.data);
  const int v = threadIdx.x % vpp, per = kDwThreads / vpp;
  const int64_t c = c_tile + int64_t{v} * vec;
  const bool vok = c < channels;
  const E* __restrict__ img = base + n * vw.sn + c;
  const int cells = rows * cols;
  Walk k(threadIdx.x / vpp, per, cols);
  for (int cell = threadIdx.x / vpp; cell < cells; cell += per, k.next()) {
    const int y = y0 + k.r, x = x0 + k.c;
    const bool ok = vok && static_cast<unsigned>(y) < static_cast<unsigned>(h) &&
                    static_cast<unsigned>(x) < static_cast<unsigned>(w);
    cuda_tc::cp_async_16(&dst[cell * vpp + v], ok ? img + y * vw.sh + x * vw.sw : base, ok);
  }
}

// Float32 images in a narrower precision (tf32, bf16, fp16 modes): the staged values are rounded once in place
// instead of at each of their uses (a diff_dst value serves every tap that reaches it). 16-bit images keep
// rounding at the use: a value rounded to the other 16-bit format need not fit back into its own.
template <DataType T, Precision R>
constexpr bool kPreRound = T == DataType::float32 && R != Precision::fp32;

template <DataType T, Precision R>
__device__ __forceinline__ void round_staged(uint4* buf, int count) {
  if constexpr (kPreRound<T, R>) {
    for (int i = threadIdx.x; i < count; i += kDwThreads) {
      uint4 u = buf[i];
      u.x = __float_as_uint(round_in<R>(__uint_as_float(u.x)));
      u.y = __float_as_uint(round_in<R>(__uint_as_float(u.y)));
      u.z = __float_as_uint(round_in<R>(__uint_as_float(u.z)));
      u.w = __float_as_uint(round_in<R>(__uint_as_float(u.w)));
      buf[i] = u;
    }
  }
}
// A staged value as used in a product: rounded here unless round_staged did it.
template <DataType T, Precision R>
__device__ __forceinline__ float use(float v) {
  if constexpr (kPreRound<T, R>) return v;
  else return round_in<R>(v);
}

// bwd_data: a block per tile (grid = tiles × channel tiles; the plan's per_chunk is 1 for it).
template <DataType T, Precision R>
__global__ void __launch_bounds__(kDwThreads) bwd_data_tiled(KView ddst, KView dsrc, const float* __restrict__ wei,
                                                             KGeom g, DwPlan d, Precision wprec) {
  using E = typename Act<T>::type;
  constexpr int VEC = 16 / sizeof(E);
  extern __shared__ uint4 smem_u4[];
  const int ct = d.vpp * VEC, kk = static_cast<int>(g.kh * g.kw), vpp = d.vpp;
  const int kh = static_cast<int>(g.kh), kw = static_cast<int>(g.kw), sh = static_cast<int>(g.sh),
            sw = static_cast<int>(g.sw), dh = static_cast<int>(g.dh), dw = static_cast<int>(g.dw);
  const int h_out = static_cast<int>(g.h_out), w_out = static_cast<int>(g.w_out);
  uint4* reg = smem_u4;
  float* wsm = reinterpret_cast<float*>(smem_u4 + d.hb * d.wb * vpp);  // [tap][channel of the tile]
  // Taps inside the output image, per tile row ly: oy(q) = ob − dh·q ∈ [0, h_out) for q in [qlo, qhi) with
  // ob = oy0 + ly·sh + dh·(kh − 1) (columns likewise) — the taps the untiled kernel keeps, in its order, without a
  // test per tap; computed once per block (two divisions each).
  __shared__ int2 qrange[kDwTile], prange[kDwTile];
  const TileAt a = tile_at(blockIdx.x, d, g);
  if (threadIdx.x < d.ty) {
    const int ob = a.oy0 + static_cast<int>(threadIdx.x) * sh + dh * (kh - 1);
    qrange[threadIdx.x] = make_int2(max(0, cdiv(ob - h_out + 1, dh)), min(kh, fdiv(ob, dh) + 1));
  } else if (threadIdx.x >= 32 && threadIdx.x < 32 + d.tx) {
    const int pb = a.ox0 + static_cast<int>(threadIdx.x - 32) * sw + dw * (kw - 1);
    prange[threadIdx.x - 32] = make_int2(max(0, cdiv(pb - w_out + 1, dw)), min(kw, fdiv(pb, dw) + 1));
  }
  const int64_t c_tile = int64_t{blockIdx.y} * ct;
  stage<E>(reg, ddst, a.n, c_tile, g.c_out, a.oy0, a.ox0, d.hb, d.wb, h_out, w_out, vpp, VEC);
  cuda_tc::cp_async_commit();
  for (int i = threadIdx.x; i < kk * ct; i += kDwThreads) {  // weights rounded once (as stage_weights does)
    const int tap = i / ct, cl = i - tap * ct;
    const int64_t c = c_tile + cl;
    wsm[i] = c < g.c_in ? round_rt(wei[c * kk + tap], wprec) : 0.f;
  }
  cuda_tc::cp_async_wait<0>();
  __syncthreads();
  round_staged<T, R>(reg, d.hb * d.wb * vpp);
  if constexpr (kPreRound<T, R>) __syncthreads();

  const int v = threadIdx.x % vpp, slots = kDwThreads / vpp;
  const int64_t c = c_tile + int64_t{v} * VEC;
  if (c >= g.c_in) return;
  E* __restrict__ ds = static_cast<E*>(dsrc.data) + a.n * dsrc.sn + c;
  const int npix = d.ty * d.tx;
  Walk k(threadIdx.x / vpp, slots, d.tx);
  for (int pi = threadIdx.x / vpp; pi < npix; pi += slots, k.next()) {
    const int ly = k.r, lx = k.c;
    const int iy = a.iy0 + ly, ix = a.ix0 + lx;
    if (iy >= g.h_in || ix >= g.w_in) continue;
    const int ob = a.oy0 + ly * sh + dh * (kh - 1), pb = a.ox0 + lx * sw + dw * (kw - 1);
    const int qlo = qrange[ly].x, qhi = qrange[ly].y, plo = prange[lx].x, phi = prange[lx].y;
    float acc[VEC] = {};
    for (int q = qlo; q < qhi; ++q) {
      // Region cell of (q, plo): row ob − dh·q − oy0, column pb − dw·plo − ox0; each next p is dw columns left.
      const uint4* rp = reg + ((ob - dh * q - a.oy0) * d.wb + (pb - dw * plo - a.ox0)) * vpp + v;
      const float* wp = wsm + (q * kw + plo) * ct + v * VEC;
#pragma unroll 4
      for (int p = plo; p < phi; ++p) {
        float y[VEC];
        unpack16<T>(*rp, y);
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[e] += use<T, R>(y[e]) * wp[e];
        rp -= dw * vpp;
        wp += ct;
      }
    }
    st_global16(ds + iy * dsrc.sh + ix * dsrc.sw, pack16<T>(acc));
  }
}

template <DataType T, Precision R>
__global__ void __launch_bounds__(kDwThreads, 2) wgrad_tiled(KView src, KView ddst, float* __restrict__ partial,
                                                             KGeom g, DwPlan d, bool with_bias) {
  using E = typename Act<T>::type;
  constexpr int VEC = 16 / sizeof(E);
  constexpr int G = dw_taps_per_thread(VEC);
  extern __shared__ uint4 smem_u4[];
  const int ct = d.vpp * VEC, kk = static_cast<int>(g.kh * g.kw), vpp = d.vpp;
  const int kh = static_cast<int>(g.kh), kw = static_cast<int>(g.kw), sh = static_cast<int>(g.sh),
            sw = static_cast<int>(g.sw);
  const int h_out = static_cast<int>(g.h_out), w_out = static_cast<int>(g.w_out), h_in = static_cast<int>(g.h_in),
            w_in = static_cast<int>(g.w_in);
  // Two buffers of [region cells | source pixels of the tile] (× vpp vectors): tile t + 1 is copied while tile t
  // is summed.
  const int rcells = d.hb * d.wb * vpp, xcells = d.ty * d.tx * vpp;
  const int64_t c_tile = int64_t{blockIdx.y} * ct;
  const int64_t t0 = int64_t{blockIdx.x} * d.per_chunk, t1 = min(d.tiles, t0 + d.per_chunk);

  // Weight roles: vector v, tap group tgi, pixel slice sl (threads past slices · pairs idle).
  const int pairs = d.tg * vpp;
  const int v = threadIdx.x % vpp, tgi = (threadIdx.x / vpp) % d.tg, sl = threadIdx.x / pairs;
  const bool wact = sl < d.slices;
  const int64_t c = c_tile + int64_t{v} * VEC;
  const bool cok = c < g.c_in;
  // The group's taps (q, p): region offsets roff = dh·(kh − 1 − q), coff = dw·(kw − 1 − p) and the cell offset
  // toff = (roff·wb + coff)·vpp; taps past kk are not used (ntap).
  int roff[G], coff[G], toff[G];
#pragma unroll
  for (int j = 0; j < G; ++j) {
    const int tap = min(tgi * G + j, kk - 1);
    const int q = tap / kw, p = tap - q * kw;
    roff[j] = static_cast<int>(g.dh) * (kh - 1 - q);
    coff[j] = static_cast<int>(g.dw) * (kw - 1 - p);
    toff[j] = (roff[j] * d.wb + coff[j]) * vpp + v;
  }
  const int ntap = min(G, kk - tgi * G);
  // Bias roles: vector v (the same), output slot bs of bslots.
  const int bslots = kDwThreads / vpp, bs = threadIdx.x / vpp;

  float acc[G][VEC] = {};
  float bacc[VEC] = {};
  const E* __restrict__ dd = static_cast<const E*>(ddst.data);
  const int npix = d.ty * d.tx;
  auto issue = [&](int64_t t, int slot) {
    const TileAt a = tile_at(t, d, g);
    uint4* r = smem_u4 + slot * (rcells + xcells);
    stage<E>(r, ddst, a.n, c_tile, g.c_out, a.oy0, a.ox0, d.hb, d.wb, h_out, w_out, vpp, VEC);
    stage<E>(r + rcells, src, a.n, c_tile, g.c_in, a.iy0, a.ix0, d.ty, d.tx, h_in, w_in, vpp, VEC);
    cuda_tc::cp_async_commit();
  };
  if (t0 < t1) issue(t0, 0);
  for (int64_t t = t0; t < t1; ++t) {
    const int slot = static_cast<int>((t - t0) & 1);
    if (t + 1 < t1) {
      issue(t + 1, slot ^ 1);  // that buffer was last read before the previous iteration's closing barrier
      cuda_tc::cp_async_wait<1>();
    } else {
      cuda_tc::cp_async_wait<0>();
    }
    __syncthreads();  // tile t's copies visible to every thread
    uint4* reg = smem_u4 + slot * (rcells + xcells);
    uint4* xs = reg + rcells;  // [pixel of the tile][vector]
    const TileAt a = tile_at(t, d, g);

    if (with_bias && cok) {  // unrounded diff_dst (before round_staged)
      const Range ry = dw_owned(a.ty, d.tiles_y, d.ty, g.sh, g.ph, g.h_out);
      const Range rx = dw_owned(a.tx, d.tiles_x, d.tx, g.sw, g.pw, g.w_out);
      const int wr = static_cast<int>(rx.hi - rx.lo), area = static_cast<int>(ry.hi - ry.lo) * wr;
      Walk wk(bs, bslots, max(wr, 1));
      for (int k = bs; k < area; k += bslots, wk.next()) {
        const int oy = static_cast<int>(ry.lo) + wk.r, ox = static_cast<int>(rx.lo) + wk.c;
        const int r = oy - a.oy0, cc = ox - a.ox0;
        float y[VEC];
        if (static_cast<unsigned>(r) < static_cast<unsigned>(d.hb) &&
            static_cast<unsigned>(cc) < static_cast<unsigned>(d.wb)) {
          unpack16<T>(reg[(r * d.wb + cc) * vpp + v], y);
        } else {  // outside the region (strides longer than the kernel's extent, image edges): from memory
          unpack16<T>(__ldg(reinterpret_cast<const uint4*>(dd + a.n * ddst.sn + oy * ddst.sh + ox * ddst.sw + c)), y);
        }
#pragma unroll
        for (int e = 0; e < VEC; ++e) bacc[e] += y[e];
      }
    }
    if constexpr (kPreRound<T, R>) {
      __syncthreads();
      round_staged<T, R>(reg, rcells + xcells);  // the region and the source tile are contiguous
      __syncthreads();
    }

    if (wact && cok) {
      Walk pk(sl, d.slices, d.tx);
      for (int pi = sl; pi < npix; pi += d.slices, pk.next()) {
        const int ly = pk.r, lx = pk.c;
        if (a.iy0 + ly >= h_in || a.ix0 + lx >= w_in) continue;
        float x[VEC];
        unpack16<T>(xs[pi * vpp + v], x);
#pragma unroll
        for (int e = 0; e < VEC; ++e) x[e] = use<T, R>(x[e]);
        // Output position of tap j: (oyp + roff[j], oxp + coff[j]); its cell: pbase + toff[j].
        const int oyp = a.oy0 + ly * sh, oxp = a.ox0 + lx * sw, pbase = (ly * sh * d.wb + lx * sw) * vpp;
#pragma unroll
        for (int j = 0; j < G; ++j) {
          if (j >= ntap) break;
          if (static_cast<unsigned>(oyp + roff[j]) >= static_cast<unsigned>(h_out) ||
              static_cast<unsigned>(oxp + coff[j]) >= static_cast<unsigned>(w_out))
            continue;
          float y[VEC];
          unpack16<T>(reg[pbase + toff[j]], y);
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[j][e] += x[e] * use<T, R>(y[e]);
        }
      }
    }
    __syncthreads();  // every thread is done with this buffer before the next iteration refills it
  }

  // The block's sums: slices in order, then bias slots in order (shared memory reused; the loop's closing barrier
  // ordered every read of it before these writes).
  __syncthreads();
  float* red = reinterpret_cast<float*>(smem_u4);          // [slice][pair][G·VEC]
  float* bred = red + kDwThreads * kDwAccPerThread;        // [slot][vector][VEC]
  if (wact) {
#pragma unroll
    for (int j = 0; j < G; ++j)
#pragma unroll
      for (int e = 0; e < VEC; ++e) red[(sl * pairs + tgi * vpp + v) * (G * VEC) + j * VEC + e] = acc[j][e];
  }
#pragma unroll
  for (int e = 0; e < VEC; ++e) bred[threadIdx.x * VEC + e] = bacc[e];  // thread = bs · vpp + v
  __syncthreads();
  float* prow = partial + int64_t{blockIdx.x} * d.row_len;
  for (int i = threadIdx.x; i < kk * ct; i += kDwThreads) {
    const int tap = i / ct, cl = i - tap * ct;
    const int64_t ch = c_tile + cl;
    if (ch >= g.c_in) continue;
    const int vv = cl / VEC, e = cl - vv * VEC, pr = (tap / G) * vpp + vv, j = tap % G;
    float s = 0.f;
    for (int k = 0; k < d.slices; ++k) s += red[(k * pairs + pr) * (G * VEC) + j * VEC + e];
    prow[ch * kk + tap] = s;
  }
  if (with_bias) {
    for (int cl = threadIdx.x; cl < ct; cl += kDwThreads) {
      const int64_t ch = c_tile + cl;
      if (ch >= g.c_out) continue;
      float s = 0.f;
      for (int k = 0; k < bslots; ++k) s += bred[k * ct + cl];  // slot k's vector cl / VEC, element cl % VEC
      prow[d.wei_count + ch] = s;
    }
  }
}

// Shared memory above 48 KiB needs the kernel's opt-in. Set on every launch that needs it (a cheap host call), not
// once per process: the attribute belongs to the current device, and a multi-GPU run launches on several.
template <class K>
core::Status allow_smem(K kernel, std::size_t bytes) {
  if (bytes <= 48 * 1024) return core::Status::ok_status();
  return cuda_backend::check(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
      "cuda_stream_depthwise shared memory opt-in");
}

}  // namespace

core::Status run_bwd_data_tiled(const core::Problem& p, const core::Args& a, const DwPlan& d, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(d.tiles), static_cast<unsigned>(d.ctiles));
  return dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    auto* k = bwd_data_tiled<decltype(t)::value, decltype(r)::value>;
    if (auto s = allow_smem(k, d.smem); !s.ok()) return s;
    k<<<grid, kDwThreads, d.smem, stream>>>(kview(a.diff_dst), kview(a.diff_src), a.wei, kgeom(p.g), d, p.precision);
    return cuda_backend::check_launch("cuda_stream_depthwise bwd_data (tiled)");
  });
}

core::Status run_bwd_weights_tiled(const core::Problem& p, const core::Args& a, const DwPlan& d, void* workspace,
                                   cudaStream_t stream) {
  const bool with_bias = p.with_bias && a.diff_bias != nullptr;
  auto* partial = static_cast<float*>(workspace);
  const dim3 grid(static_cast<unsigned>(d.chunks), static_cast<unsigned>(d.ctiles));
  const core::Status st = dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    auto* k = wgrad_tiled<decltype(t)::value, decltype(r)::value>;
    if (auto s = allow_smem(k, d.smem); !s.ok()) return s;
    k<<<grid, kDwThreads, d.smem, stream>>>(kview(a.src), kview(a.diff_dst), partial, kgeom(p.g), d, with_bias);
    return cuda_backend::check_launch("cuda_stream_depthwise bwd_weights (tiled) partial sums");
  });
  if (!st.ok()) return st;
  return launch_reduce_rows(partial, d.chunks, d.row_len, d.wei_count, 1, with_bias ? p.g.c_out : 0, a.diff_wei,
                            a.diff_bias, p.accumulate, stream);
}

}  // namespace tconv::cuda_stream
