// cuda_simt_f32, forward pass and data gradient: register-blocked SIMT implicit GEMM in true float32 (FFMA,
// no tensor cores). The formulations are those of igemm_mma.cu, per group:
//   bwd_data  m = (n, iy, ix), j = c < Ig, k = (tap, o < Og): A = diff_dst at oy = iy·sh − ph + dh·(kh − 1 − q),
//             ox likewise (zero outside the image); B[k][j] = wei[g·Og + o][tap][j] (contiguous in j)
//   fwd       m = (n, oy, ox) of one output stride phase (oy ≡ py mod sh, ox ≡ px mod sw), j = o < Og,
//             k = (tap, c < Ig): A = src at iy = (oy + ph − dh·(kh − 1 − q)) / sh; B[k][j] = the weights
//             transposed once per call into workspace as [g][tap][c][Og4] (Og rounded up to 4, zero padded), so
//             B slabs load 16 bytes along j like bwd_data's. The forward pass is split by output phase
//             (sub-pixel decomposition): within a phase the taps that reach it form a progression
//             q = q0 + i·qs (and p likewise) and every other tap would only multiply inserted zeros, so the
//             block iterates over those taps alone. Bias and the fused neuron are applied in the epilogue.
// The k loop runs over taps in order and, inside a tap, over channels in slabs of kBK (simt_f32.cuh): one
// thread computes each output with a fixed order, no atomics. When the tiles alone would leave SMs idle
// (few pixels, long k: dcgan_g2, stylegan2 groups), bwd_data cuts the slab sequence into S ranges (S from the
// problem alone): each block writes its partial tile to workspace and split_sum adds the S partials in order.
// kVec: 16-byte loads and stores (channel counts multiple of 4, 16-byte aligned views and workspace);
// otherwise scalar loads with per-element bounds. Tile shape and S: gather_plan's cost model.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cuda/cuda_util.hpp"
#include "cuda/simt_f32.cuh"

namespace tconv::cuda_simt {
namespace {

struct GatherArgs {
  KView in, out;
  const float* w;     // bwd_data: OHWI weights; fwd: transposed weights [g][tap][Ig][og4]
  const float* bias;  // fwd only; may be null
  KGeom g;
  NeuronDescriptor nd;
  int64_t og4;
  int split;          // bwd_data split-K: blockIdx.z = group·split + s; 1: none
  int per_split;      // slabs per split
  float* partial;     // split > 1: [split][groups][m][Ig], summed into `out` by split_sum
};

// The taps qq < k whose offset d·(k − 1 − qq) reaches output residue `c` modulo the stride s: a progression
// first + i·step, i < count (solutions of d·qq ≡ const mod s, step s / gcd(d, s)).
__device__ __forceinline__ void phase_taps(int64_t c, int64_t d, int64_t s, int64_t k, int& first, int& step,
                                           int& count) {
  first = 0;
  step = 1;
  count = 0;
  for (int64_t qq = 0; qq < k; ++qq) {
    const int64_t r = ((c - d * (k - 1 - qq)) % s + s) % s;
    if (r != 0) continue;
    if (count == 0) first = static_cast<int>(qq);
    else if (count == 1) step = static_cast<int>(qq) - first;
    ++count;
    if (count == 2) break;  // the rest follows from first and step
  }
  if (count == 2) count = static_cast<int>((k - 1 - first) / step) + 1;
}

// Block-uniform description of a gather block's taps and slabs, in shared memory: read on every slab (the
// first three fields) and on tap changes, so that none of it occupies registers across the FFMAs (with 64
// accumulators, 8 staged A values and the FFMA operands, the 128×128 tile has no room left: kept in
// registers, these values and the rows' coordinates spilled to local memory).
struct __align__(16) TapCtx {
  int kslabs, k_last;  // slabs per tap; channels in a tap's last slab (1..kBK)
  int64_t b_kstride;   // weight distance between consecutive reduction channels
  int64_t b_tstride;   // weight distance between consecutive taps
  int64_t b_base;      // weight offset of (tap 0, channel 0, column j0)
  int q0, qs, nq, p0, ps, np;  // taps q = q0 + iq·qs (iq < nq), p = p0 + ip·ps (ip < np)
  int y0, x0, dy, dx;          // source row yi = yb + y0 + iq·dy, column xi = xb + x0 + ip·dx
};
// A tile row's source pixel: offset of its image and group (−1 past the end of the GEMM's M), and the
// per-row parts yb, xb of the source coordinates (see TapCtx).
struct __align__(16) RowIn {
  int64_t base;
  int yb, xb;
};

template <class C, bool kFwd, bool kVec>
__global__ void __launch_bounds__(kThreads, C::kMinBlocks) gather_kernel(const GatherArgs ar) {
  const KGeom& g = ar.g;
  __shared__ __align__(16) float As[2][kBK][C::PA];  // [k][pixel]
  __shared__ __align__(16) float Bs[2][kBK][C::PB];  // [k][out channel]
  __shared__ int64_t row_out[C::BM];                 // output offset of each tile row, −1 past the end
  __shared__ RowIn row_in[C::BM];                    // source of each tile row
  __shared__ TapCtx tcx;

  const int tid = threadIdx.x;
  const int64_t phases = kFwd ? g.sh * g.sw : 1;
  const int64_t zz = blockIdx.z / ar.split, sidx = blockIdx.z % ar.split;
  const int64_t grp = zz / phases, phase = zz % phases;
  const int64_t py = kFwd ? phase / g.sw : 0, px = kFwd ? phase % g.sw : 0;
  // The GEMM's pixel space: all source pixels (bwd_data) or the output pixels of this phase (fwd).
  const int64_t ph_h = kFwd ? (py < g.h_out ? (g.h_out - py + g.sh - 1) / g.sh : 0) : g.h_in;
  const int64_t ph_w = kFwd ? (px < g.w_out ? (g.w_out - px + g.sw - 1) / g.sw : 0) : g.w_in;
  const int64_t m_total = g.n * ph_h * ph_w;
  const int64_t m0 = int64_t{blockIdx.x} * C::BM;
  if (m0 >= m_total) return;  // block-uniform
  const int64_t n_total = kFwd ? g.og : g.ig;  // GEMM N: output channels per group
  const int64_t k_total = kFwd ? g.ig : g.og;  // reduction channels per tap
  const int64_t j0 = int64_t{blockIdx.y} * C::BN;
  const int64_t in_c0 = grp * k_total, out_c0 = grp * n_total;
  // Coordinates fit in 32 bits (decline_reason bounds sizes, strides, dilated kernels and padding by 2^29).
  const int in_h = static_cast<int>(kFwd ? g.h_in : g.h_out), in_w = static_cast<int>(kFwd ? g.w_in : g.w_out);
  const int64_t taps = g.kh * g.kw;
  const float* __restrict__ src = static_cast<const float*>(ar.in.data);

  // The source row of tap (iq, ip) for tile row m: yi = yb + y0 + iq·dy, xi = xb + x0 + ip·dx, with
  //   bwd_data  yi = iy·sh − ph + dh·(kh − 1 − iq):  yb = iy·sh, y0 = dh·(kh − 1) − ph, dy = −dh;
  //   fwd       yi = (oy + ph − dh·(kh − 1 − q)) / sh with oy = py + yy·sh and q = q0 + iq·qs, an exact
  //             division: py + ph − dh·(kh − 1 − q0) and dh·qs are multiples of sh (q0 and q0 + qs reach the
  //             phase), so yb = yy, y0 = (py + ph − dh·(kh − 1 − q0)) / sh, dy = dh·qs / sh;
  // no division per tap. (With a single tap dy is never used: iq stays 0.)
  for (int r = tid; r < C::BM; r += kThreads) {
    const int64_t m = m0 + r;
    int64_t off = -1;
    RowIn ri{-1, 0, 0};
    if (m < m_total) {
      const int64_t xx = m % ph_w, t = m / ph_w, yy = t % ph_h, n = t / ph_h;
      const int64_t y = kFwd ? py + yy * g.sh : yy, x = kFwd ? px + xx * g.sw : xx;
      off = n * ar.out.sn + y * ar.out.sh + x * ar.out.sw + out_c0;
      ri = RowIn{n * ar.in.sn + in_c0, static_cast<int>(kFwd ? yy : yy * g.sh), static_cast<int>(kFwd ? xx : xx * g.sw)};
    }
    row_out[r] = off;
    row_in[r] = ri;
  }
  if (tid == 0) {
    TapCtx t;
    t.q0 = 0, t.qs = 1, t.nq = static_cast<int>(g.kh), t.p0 = 0, t.ps = 1, t.np = static_cast<int>(g.kw);
    if (kFwd) {
      phase_taps(py + g.ph, g.dh, g.sh, g.kh, t.q0, t.qs, t.nq);
      phase_taps(px + g.pw, g.dw, g.sw, g.kw, t.p0, t.ps, t.np);
      t.y0 = static_cast<int>((py + g.ph - g.dh * (g.kh - 1 - t.q0)) / g.sh);
      t.x0 = static_cast<int>((px + g.pw - g.dw * (g.kw - 1 - t.p0)) / g.sw);
      t.dy = static_cast<int>(g.dh * t.qs / g.sh);
      t.dx = static_cast<int>(g.dw * t.ps / g.sw);
    } else {
      t.y0 = static_cast<int>(g.dh * (g.kh - 1) - g.ph);
      t.x0 = static_cast<int>(g.dw * (g.kw - 1) - g.pw);
      t.dy = static_cast<int>(-g.dh);
      t.dx = static_cast<int>(-g.dw);
    }
    t.kslabs = static_cast<int>((k_total + kBK - 1) / kBK);
    t.k_last = static_cast<int>(k_total - int64_t{t.kslabs - 1} * kBK);
    // Weights: [g][tap][c][og4] (fwd) or OHWI wei[g·Og + c][tap][j] (bwd_data).
    t.b_kstride = kFwd ? ar.og4 : taps * g.ig;
    t.b_tstride = kFwd ? g.ig * ar.og4 : g.ig;
    t.b_base = (kFwd ? grp * taps * g.ig * ar.og4 : grp * g.og * taps * g.ig) + j0;
    tcx = t;
  }
  __syncthreads();

  // Slabs [first, first + nslabs) of the tap-major sequence (all of them unless split).
  const int kslabs = tcx.kslabs;
  const int all_slabs = tcx.nq * tcx.np * kslabs;  // bounded by decline_reason
  const int first = static_cast<int>(sidx) * ar.per_split;
  const int nslabs = max(0, min(all_slabs - first, ar.per_split));

  // kVec A loader. The A slab is BM rows × kBK = 16 channels = BM·4 quads (16-byte loads along c); they go to
  // the thread pairs (tid / 2), each pair owning one tile row a_r and one 8-channel octet per load, the two
  // threads of the pair 4 channels apart: load l of the thread reads channels a_kq + l·8 .. + 3 of row a_r
  // (BM 128: the 128 pairs take every row and the 2 loads the 2 octets; BM 64: pairs 0..63 the first
  // octet, 64..127 the second, in 1 load). A thread keeps one row (one set of row coordinates) either way,
  // and a warp's load reads 16 rows × 32 contiguous bytes: one 32-byte sector per row.
  // Banks: the transposed store of component e goes to As[a_kq + l·8 + e][a_r]; within a warp a_r takes 16
  // consecutive values and a_kq two values 4 apart, and the pitch PA ≡ 4 (mod 32) puts 4 channels 16 banks
  // apart, so the 32 lanes hit 32 distinct banks (rows r and r + 16 never meet: 16 consecutive rows).
  //
  // Scalar A loader (!kVec: channel counts not multiples of 4, where a row's channels have no 16-byte
  // alignment). Lanes run along the channels instead: lane = 8·rr + kk copies channel kk (and kk + 8) of
  // row 4·rg + rr, rg = warp + 8·i for i < BM / 32, one 4-byte cp.async per element straight into As[k][r].
  // A warp's copy then reads 4 rows × 8 consecutive floats (1–2 sectors per row) where one lane per row and
  // channel quad read 16 rows' sectors for every 4 bytes of each (the first version: fcn8s_up8's 21-channel
  // data gradient had L1 86% busy and the FMA pipe 29%), and the stores hit 32 distinct banks (4·kk + rr
  // with PA ≡ 4 mod 32). The thread's BM / 32 rows would need as many offsets live across the FFMAs, so the
  // offsets of every row for one tap (a_tab, −1 when the tap falls outside the image or past the GEMM's M)
  // are computed once per tap into shared memory, double-buffered: the table of the next tap is filled by
  // the fetch that moves the cursor onto it, one barrier before the fetch that reads it.
  constexpr int LA = C::LA;
  static_assert(kBK == 16 && (kThreads / 2) % C::BM == 0 && LA * (kThreads / 2) == 2 * C::BM,
                "A mapping: 2 octets per tile row; with 2 loads the pairs are the rows and l the octet");
  static_assert(C::BM % 32 == 0, "scalar A mapping: 4 rows per warp and copy");
  const int a_r = (tid / 2) % C::BM, a_kq = ((tid / 2) / C::BM) * 8 + (tid % 2) * 4;
  const int s_kk = tid % 8, s_rr = (tid / 8) % 4, s_warp = tid / 32;
  __shared__ int64_t a_tab[kVec ? 1 : 2][kVec ? 1 : C::BM];
  int tab_par = 0;  // (!kVec) the table of the cursor's tap
  // B loader, kVec: slab row b_k (+ l·kBRows for load l), columns b_n .. b_n + 3. BN 128: 2 loads, rows
  // tid / 32 and + 8; BN 64: 1 load; BN 32: 1 load by the first 128 threads. 16-byte cp.async copies along j.
  // Scalar: one column b_n = tid % BN per thread, rows b_k = tid / BN + l·(256 / BN): a warp copies 32
  // consecutive weights of one row (the kVec mapping's lanes are 16 bytes apart, one 4-byte copy each).
  constexpr int QB = C::BN / 4, LB = kVec ? C::LB : kBK * C::BN / kThreads;
  constexpr int kBRows = kVec ? kThreads / QB : kThreads / C::BN;  // rows per load
  static_assert(kThreads % QB == 0 && (LB == 1 || LB * kBRows == kBK), "B mapping");
  const bool b_act = !kVec || kBK * QB >= kThreads || tid < kBK * QB;
  const int b_k = kVec ? tid / QB : tid / C::BN, b_n = kVec ? (tid % QB) * 4 : tid % C::BN;
  const int b_cols = b_act ? clamp4((kFwd ? ar.og4 : g.ig) - (j0 + b_n)) : 0;  // (scalar: > 0 = in range)

  // Slab cursor: (iq, ip) names the tap, kc the channel slab inside it; a_cur and b_cur are the offsets of
  // the thread's first A and B elements in the current slab, advanced by kBK channels per slab and
  // recomputed from tcx and row_in on a tap change (no multiplications per slab).
  int iq = 0, ip = 0, kc = 0;
  if (nslabs > 0) {  // (a phase no tap reaches has np = 0)
    iq = first / kslabs / tcx.np;
    ip = first / kslabs % tcx.np;
    kc = first % kslabs;
  }
  int64_t a_cur = 0, b_cur = 0;
  bool a_ok = false;
  // Source offset of tap (iq, ip) for tile row r at its first reduction channel; −1 when out of range.
  auto row_offset = [&](int r) -> int64_t {
    const TapCtx& t = tcx;
    const RowIn ri = row_in[r];
    const int yi = ri.yb + t.y0 + iq * t.dy, xi = ri.xb + t.x0 + ip * t.dx;
    const bool ok = ri.base >= 0 && yi >= 0 && yi < in_h && xi >= 0 && xi < in_w;
    return ok ? ri.base + yi * ar.in.sh + xi * ar.in.sw : -1;
  };
  auto set_tap = [&]() {
    const TapCtx& t = tcx;
    const int tap = (t.q0 + iq * t.qs) * static_cast<int>(g.kw) + t.p0 + ip * t.ps;
    const int64_t k0 = int64_t{kc} * kBK;
    if constexpr (kVec) {
      const int64_t o = row_offset(a_r);
      a_ok = o >= 0;
      a_cur = a_ok ? o + k0 + a_kq : 0;
    } else {
      for (int r = tid; r < C::BM; r += kThreads) a_tab[tab_par][r] = row_offset(r);
    }
    b_cur = t.b_base + b_n + tap * t.b_tstride + (k0 + b_k) * t.b_kstride;
  };
  // Slab loads into shared buffer `buf`, issued before the FFMAs of the current slab: kVec, the A quads into
  // registers (ra, transposed into As by stash_a after the FFMAs), the B quads straight into Bs with cp.async
  // (no staging registers or shared stores; waited for before the barrier); scalar, every element by cp.async.
  // Channels past k_total (the last slab of each tap when k_total % 16 ≠ 0) read as zeros, so each output's
  // k order is the taps in order and the channels ascending, with exact zero products in between.
  // half_next: the slab just fetched holds at most kBK / 2 channels (a tap's last slab when k_total % 16 is
  // 1..8), so its FFMAs stop after the first half instead of multiplying 8 zero-filled rows: 21 channels per
  // tap then cost 24 k steps, as with 8-deep slabs, rather than 32. Skipped products are exact zeros.
  float4 ra[kVec ? LA : 1];
  bool half_next = false;
  auto fetch = [&](int buf) {
    const int ks = tcx.kslabs;
    const int64_t kstride = tcx.b_kstride;
    const int krem = kc + 1 < ks ? kBK : tcx.k_last;  // channels of this slab
    half_next = krem <= kBK / 2;
    if constexpr (kVec) {
#pragma unroll
      for (int l = 0; l < LA; ++l) ra[l] = load4<true>(src, a_cur + l * 8, a_ok ? clamp4(krem - a_kq - l * 8) : 0);
    } else {
      const int k0 = kc * kBK;
#pragma unroll
      for (int i = 0; i < C::BM / 32; ++i) {
        const int r = (s_warp + 8 * i) * 4 + s_rr;
        const int64_t o = a_tab[tab_par][r];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int k = s_kk + 8 * h;
          const bool ok = o >= 0 && k < krem;
          cp_async_ca<4>(&As[buf][k][r], ok ? src + o + k0 + k : src, ok);
        }
      }
    }
    if (b_act) {
#pragma unroll
      for (int l = 0; l < LB; ++l) {
        const bool row_in_slab = b_k + l * kBRows < krem;
        if constexpr (kVec) {
          copy4_async<true>(&Bs[buf][b_k + l * kBRows][b_n], ar.w, b_cur + l * kBRows * kstride,
                            row_in_slab ? b_cols : 0);
        } else {
          const bool ok = row_in_slab && b_cols > 0;
          cp_async_ca<4>(&Bs[buf][b_k + l * kBRows][b_n], ok ? ar.w + b_cur + l * kBRows * kstride : ar.w, ok);
        }
      }
    }
    cuda_tc::cp_async_commit();
    if (++kc == ks) {
      kc = 0;
      if (++ip == tcx.np) {
        ip = 0;
        ++iq;
      }
      // (scalar: the next tap's rows go to the other table; the last reads of it were before the barrier
      // that ended the previous slab, and the next reads come after the barrier that ends this one)
      if constexpr (!kVec) tab_par ^= 1;
      if (iq < tcx.nq) set_tap();
    } else {
      a_cur += kBK;
      b_cur += kBK * kstride;
    }
  };
  auto stash_a = [&](int buf) {
    if constexpr (kVec) {
#pragma unroll
      for (int l = 0; l < LA; ++l) {
        As[buf][a_kq + l * 8 + 0][a_r] = ra[l].x;
        As[buf][a_kq + l * 8 + 1][a_r] = ra[l].y;
        As[buf][a_kq + l * 8 + 2][a_r] = ra[l].z;
        As[buf][a_kq + l * 8 + 3][a_r] = ra[l].w;
      }
    } else {
      (void)buf;
    }
  };

  float acc[C::TM][C::TN];
#pragma unroll
  for (int i = 0; i < C::TM; ++i)
#pragma unroll
    for (int j = 0; j < C::TN; ++j) acc[i][j] = 0.f;
  const Place<C> pl;

  if (nslabs > 0) {
    set_tap();
    if constexpr (!kVec) __syncthreads();  // (block-uniform branch) the first tap's row table
    fetch(0);
    stash_a(0);
  }
  cuda_tc::cp_async_wait<0>();
  __syncthreads();  // first slab and the row table (read below even when no tap reaches this phase)
  for (int s = 0; s < nslabs; ++s) {
    const bool more = s + 1 < nslabs;
    const bool half = half_next;   // of slab s (block-uniform: the slab cursor is the same in every thread)
    if (more) fetch((s + 1) & 1);  // slab s + 1 in flight during the FFMAs of slab s
    fma_slab<C>(As[s & 1], Bs[s & 1], acc, pl, half);
    if (more) stash_a((s + 1) & 1);
    cuda_tc::cp_async_wait<0>();
    __syncthreads();
  }

  float* __restrict__ dst = static_cast<float*>(ar.out.data);
  if (!kFwd && ar.split > 1) {  // partial tile, dense [s][group][m][Ig]; every in-range element, zeros too
    // (split index and group recomputed from blockIdx: nothing extra stays live across the main loop)
    const int64_t zs = blockIdx.z % ar.split, zg = blockIdx.z / ar.split;
    float* __restrict__ part = ar.partial + (zs * g.groups + zg) * m_total * n_total;
#pragma unroll
    for (int i = 0; i < C::TM; ++i) {
      if (row_out[pl.row(i)] < 0) continue;
      const int64_t ro = (m0 + pl.row(i)) * n_total;
#pragma unroll
      for (int jg = 0; jg < C::TN / 4; ++jg) {
        const int64_t col = j0 + pl.col(jg * 4);
        const int cols = clamp4(n_total - col);
        if (kVec && cols == 4) {
          *reinterpret_cast<float4*>(part + ro + col) =
              make_float4(acc[i][jg * 4], acc[i][jg * 4 + 1], acc[i][jg * 4 + 2], acc[i][jg * 4 + 3]);
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (e < cols) part[ro + col + e] = acc[i][jg * 4 + e];
        }
      }
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < C::TM; ++i) {
    const int64_t ro = row_out[pl.row(i)];
    if (ro < 0) continue;
#pragma unroll
    for (int jg = 0; jg < C::TN / 4; ++jg) {
      const int64_t col = j0 + pl.col(jg * 4);
      const int cols = clamp4(n_total - col);
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        v[e] = acc[i][jg * 4 + e];
        if (kFwd && e < cols) {
          if (ar.bias != nullptr) v[e] += ar.bias[out_c0 + col + e];
          if (ar.nd.type != NeuronType::none) v[e] = cuda_direct::neuron_dev(ar.nd.type, ar.nd.a, ar.nd.b, ar.nd.c, v[e]);
        }
      }
      if (kVec && cols == 4) {
        *reinterpret_cast<float4*>(dst + ro + col) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (e < cols) dst[ro + col + e] = v[e];
      }
    }
  }
}

// wt[g][tap][c][o] = wei[g·Og + o][tap][c] for o < Og, 0 for Og ≤ o < og4.
__global__ void transpose_weights(const float* __restrict__ wei, float* __restrict__ wt, KGeom g, int64_t og4) {
  const int64_t taps = g.kh * g.kw, total = g.groups * taps * g.ig * og4;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t o = i % og4;
    int64_t r = i / og4;
    const int64_t c = r % g.ig;
    r /= g.ig;
    const int64_t tap = r % taps, grp = r / taps;
    wt[i] = o < g.og ? wei[((grp * g.og + o) * taps + tap) * g.ig + c] : 0.f;
  }
}

// bwd_data split-K, second pass: diff_src[n][iy][ix][g·Ig + c] = Σ_s partial[s][g][m][c] in order of s, four
// channels per thread (one 16-byte load per split with kVec).
template <bool kVec>
__global__ void split_sum(const float* __restrict__ partial, KView out, KGeom g, int split) {
  const int64_t m_total = g.n * g.h_in * g.w_in, c4 = (g.ig + 3) / 4, total = g.groups * m_total * c4;
  const int64_t plane = g.groups * m_total * g.ig;  // floats per split
  float* __restrict__ dst = static_cast<float*>(out.data);
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = (i % c4) * 4, r = i / c4, m = r % m_total, grp = r / m_total;
    const int cols = clamp4(g.ig - c);
    const float* p = partial + (grp * m_total + m) * g.ig + c;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int s = 0; s < split; ++s, p += plane) {
      const float4 v = load4<kVec>(p, 0, cols);
      acc.x += v.x, acc.y += v.y, acc.z += v.z, acc.w += v.w;
    }
    const int64_t ix = m % g.w_in, t = m / g.w_in, iy = t % g.h_in, n = t / g.h_in;
    float* o = dst + n * out.sn + iy * out.sh + ix * out.sw + grp * g.ig + c;
    if (kVec && cols == 4) {
      *reinterpret_cast<float4*>(o) = acc;
    } else {
      const float v[4] = {acc.x, acc.y, acc.z, acc.w};
      for (int e = 0; e < cols; ++e) o[e] = v[e];
    }
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Taps of output phase residue c (host twin of phase_taps): how many reach it.
int64_t phase_tap_count(int64_t c, int64_t d, int64_t s, int64_t k) {
  int64_t n = 0;
  for (int64_t qq = 0; qq < k; ++qq)
    if (((c - d * (k - 1 - qq)) % s + s) % s == 0) ++n;
  return n;
}

constexpr int64_t kMaxSplitFloats = int64_t{1} << 26;  // bwd_data split-K partials (256 MiB)

template <class C, bool kFwd, bool kVec>
core::Status launch_typed(const core::Problem& p, const GatherArgs& ar, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  const int64_t phases = kFwd ? g.stride_h * g.stride_w : 1;
  const int64_t max_m =
      kFwd ? g.n * ceil_div(g.h_out, g.stride_h) * ceil_div(g.w_out, g.stride_w) : g.n * g.h_in * g.w_in;
  const int64_t n_total = kFwd ? g.og() : g.ig();
  const dim3 grid(static_cast<unsigned>(ceil_div(max_m, C::BM)), static_cast<unsigned>(ceil_div(n_total, C::BN)),
                  static_cast<unsigned>(g.groups * phases * ar.split));
  gather_kernel<C, kFwd, kVec><<<grid, kThreads, 0, stream>>>(ar);
  if (auto st = cuda_backend::check_launch(kFwd ? "cuda_simt_f32 fwd" : "cuda_simt_f32 bwd_data"); !st.ok()) return st;
  if (kFwd || ar.split == 1) return core::Status::ok_status();
  const int64_t quads = g.groups * max_m * ceil_div(n_total, 4);
  split_sum<kVec><<<cuda_direct::grid_for(quads, 256), 256, 0, stream>>>(ar.partial, ar.out, ar.g, ar.split);
  return cuda_backend::check_launch("cuda_simt_f32 bwd_data split sum");
}

}  // namespace

// The tile and split minimising model_seconds (simt_f32.cuh). Blocks of the forward pass differ by phase (taps
// per phase); their average is used. bwd_data may split the k slabs into S ranges (S ≤ 16, at least 8 slabs
// of kBK = 16, i.e. 128 k, each) when the tiles alone leave SMs idle; the partials cost a write and two reads
// at 2.5 TB/s. The floor is a k depth, the same 128 k as with the former 16 slabs of 8: it keeps a block's
// fixed costs (the unhidden first slab load, the partial tile's write) small against its FFMAs, and those
// costs depend on the time per block, not on how many barriers the k range is cut into.
GatherPlan gather_plan(const core::Problem& p) {
  const core::Geometry& g = p.g;
  const bool fwd = p.dir == core::Direction::fwd;
  const int64_t n_total = fwd ? g.og() : g.ig(), k_total = fwd ? g.ig() : g.og();
  const int64_t kslabs = ceil_div(k_total, kBK);
  GatherPlan best{kT128x128, 1};
  double best_cost = std::numeric_limits<double>::infinity();
  for (int t = 0; t < kTileCount; ++t) {
    const TileInfo& ti = kTiles[t];
    if (forced_tile() >= 0 && t != forced_tile()) continue;
    if (ceil_div(n_total, ti.bn) > 65535) continue;
    double blocks = 0, slabs = 0;  // slabs: Σ over blocks
    const int64_t phases = fwd ? g.stride_h * g.stride_w : 1;
    for (int64_t ph = 0; ph < phases; ++ph) {
      int64_t m, ntaps;
      if (fwd) {
        const int64_t py = ph / g.stride_w, px = ph % g.stride_w;
        const int64_t hh = py < g.h_out ? ceil_div(g.h_out - py, g.stride_h) : 0;
        const int64_t ww = px < g.w_out ? ceil_div(g.w_out - px, g.stride_w) : 0;
        m = g.n * hh * ww;
        ntaps = phase_tap_count(py + g.pad_h, g.dil_h, g.stride_h, g.kh) *
                phase_tap_count(px + g.pad_w, g.dil_w, g.stride_w, g.kw);
      } else {
        m = g.n * g.h_in * g.w_in;
        ntaps = g.kh * g.kw;
      }
      const double b = static_cast<double>(ceil_div(m, ti.bm) * ceil_div(n_total, ti.bn) * g.groups);
      blocks += b;
      slabs += b * static_cast<double>(ntaps * kslabs);
    }
    if (blocks <= 0) continue;
    const double avg_slabs = slabs / blocks;
    const int64_t max_split =
        fwd ? 1
            : std::max<int64_t>(1, std::min<int64_t>({16, static_cast<int64_t>(avg_slabs) / (128 / kBK),
                                                     kMaxSplitFloats / std::max<int64_t>(1, g.groups * g.n * g.h_in *
                                                                                                g.w_in * g.ig())}));
    static const int64_t forced = forced_split("TCONV_SIMT_F32_SPLIT");
    for (int64_t sp = 1; sp <= max_split; ++sp) {
      if (forced > 0 && sp != std::min(forced, max_split)) continue;
      const double per = std::ceil(avg_slabs / static_cast<double>(sp));
      double cost = model_seconds(t, blocks * sp, per * kBK * ti.bm * ti.bn);
      if (sp > 1)
        cost += static_cast<double>(sp * 2 + 1) * static_cast<double>(g.groups * g.n * g.h_in * g.w_in * g.ig()) *
                4.0 / 2.5e12;
      if (cost < best_cost * 0.999) {  // near ties: the earlier (larger tile, no split)
        best_cost = cost;
        best = GatherPlan{t, sp};
      }
    }
  }
  return best;
}

std::size_t gather_workspace_bytes(const core::Problem& p) {
  const core::Geometry& g = p.g;
  if (p.dir == core::Direction::fwd) {
    const int64_t og4 = ceil_div(g.og(), 4) * 4;
    return static_cast<std::size_t>(g.groups * g.kh * g.kw * g.ig() * og4) * sizeof(float);
  }
  const GatherPlan plan = gather_plan(p);
  if (plan.split == 1) return 0;
  return static_cast<std::size_t>(plan.split * g.groups * g.n * g.h_in * g.w_in * g.ig()) * sizeof(float);
}

core::Status launch_gather(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  const bool fwd = p.dir == core::Direction::fwd;
  const GatherPlan plan = gather_plan(p);
  GatherArgs ar{};
  ar.g = cuda_direct::kgeom(g);
  ar.nd = p.neuron;
  ar.og4 = ceil_div(g.og(), 4) * 4;
  ar.split = 1;
  ar.per_split = 0x7fffffff;
  bool vec;
  if (fwd) {
    if (workspace == nullptr) return core::invalid("cuda_simt_f32 fwd needs device workspace for the weights");
    ar.in = cuda_direct::kview(a.src);
    ar.out = cuda_direct::kview(a.dst);
    ar.bias = p.with_bias ? a.bias : nullptr;
    auto* wt = static_cast<float*>(workspace);
    const int64_t count = g.groups * g.kh * g.kw * g.ig() * ar.og4;
    transpose_weights<<<cuda_direct::grid_for(count, 256), 256, 0, stream>>>(a.wei, wt, ar.g, ar.og4);
    if (auto st = cuda_backend::check_launch("cuda_simt_f32 weight transpose"); !st.ok()) return st;
    ar.w = wt;
    // 16-byte loads of src along c, stores of dst along o, loads of the transposed weights along o.
    vec = g.ig() % 4 == 0 && g.og() % 4 == 0 && view_aligned(a.src) && view_aligned(a.dst) && aligned16(wt);
  } else {
    ar.in = cuda_direct::kview(a.diff_dst);
    ar.out = cuda_direct::kview(a.diff_src);
    ar.bias = nullptr;
    ar.w = a.wei;
    if (plan.split > 1) {
      if (workspace == nullptr) return core::invalid("cuda_simt_f32 bwd_data needs device workspace for split-K");
      ar.split = static_cast<int>(plan.split);
      ar.per_split = static_cast<int>(ceil_div(g.kh * g.kw * ceil_div(g.og(), kBK), plan.split));
      ar.partial = static_cast<float*>(workspace);
    }
    // 16-byte loads of diff_dst along o and of the weights along c, stores of diff_src (or partials) along c.
    vec = g.ig() % 4 == 0 && g.og() % 4 == 0 && view_aligned(a.diff_dst) && view_aligned(a.diff_src) &&
          aligned16(a.wei) && (plan.split == 1 || aligned16(workspace));
  }
  return with_tile(plan.tile, [&](auto tile) -> core::Status {
    using C = decltype(tile);
    if (fwd) return vec ? launch_typed<C, true, true>(p, ar, stream) : launch_typed<C, true, false>(p, ar, stream);
    return vec ? launch_typed<C, false, true>(p, ar, stream) : launch_typed<C, false, false>(p, ar, stream);
  });
}

}  // namespace tconv::cuda_simt
