// The indirect-GEMM engine (see igemm_f32.hpp): weight packing, the pointer tables, the register-blocked
// micro-kernel, and the OpenMP driver. Compiled once per SIMD target with Highway's foreach_target and
// chosen at run time (HWY_DYNAMIC_DISPATCH), so AVX2 and AVX-512 machines each get their own code.
//
// Micro-kernel: MR destination pixels × NR = 2 vectors of columns, accumulated in registers over all taps and
// the K dimension (12×32 floats in 24 zmm registers on AVX-512, 6×16 in 12 ymm on AVX2). Per k step it loads
// two vectors of the packed weight panel and broadcasts one float per pixel row.
// Blocking: an item is (segment, chunk of up to MR·kBlocks pixels, group); inside it every panel of NR columns
// runs over all blocks of the chunk, so a panel's weights (taps·K·NR floats) stay in L2 while the chunk's
// operand rows are reused across panels.
// Determinism: every output element is computed by exactly one micro-kernel call, summing taps in
// ascending order and k in ascending order, whatever the number of threads.
#include "cpu/igemm_f32.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/dtype.hpp"
#include "core/neuron.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/igemm_f32.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace tconv::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
// Rows per micro-tile: 12 rows × 2 vectors = 24 accumulators when 32 vector registers exist (AVX-512),
// 6 × 2 = 12 of 16 otherwise.
constexpr int kMR = HWY_LANES(float) >= 16 ? 12 : 6;
constexpr int64_t kBlocks = 12;  // most micro-tiles per chunk (a chunk is up to 144 pixels on AVX-512)
constexpr int64_t kMinItems = 8;  // fewer blocks per chunk when a problem would give fewer items

// c[m][0..nvalid) = neuron(init + Σ_t Σ_k a[t·MR + m][k] · b[t][k·NR .. k·NR + NR)), NR = 2 vectors.
// a: [ntaps][MR] row pointers (rows of K floats; a zero row stands for padding); b: [ntaps] panel slices
// [K][NR]; c: [MR] destination rows; init: NR floats.
HWY_INLINE void Tile(const float* const* a, const float* const* b, int64_t ntaps, int64_t K, float* const* c,
                     const float* init, int64_t nvalid, const NeuronDescriptor& neuron) {
  const DF d;
  const size_t N = hn::Lanes(d);
  using V = decltype(hn::Zero(d));
  const V i0 = hn::LoadU(d, init), i1 = hn::LoadU(d, init + N);
  V acc0[kMR], acc1[kMR];
#pragma GCC unroll 16
  for (int m = 0; m < kMR; ++m) { acc0[m] = i0; acc1[m] = i1; }
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* HWY_RESTRICT bt = b[t];
    const float* ap[kMR];
#pragma GCC unroll 16
    for (int m = 0; m < kMR; ++m) ap[m] = a[t * kMR + m];
    for (int64_t k = 0; k < K; ++k) {
      const V b0 = hn::LoadU(d, bt + k * 2 * N), b1 = hn::LoadU(d, bt + k * 2 * N + N);
#pragma GCC unroll 16
      for (int m = 0; m < kMR; ++m) {
        const V av = hn::Set(d, ap[m][k]);
        acc0[m] = hn::MulAdd(av, b0, acc0[m]);
        acc1[m] = hn::MulAdd(av, b1, acc1[m]);
      }
    }
  }
  if (nvalid == static_cast<int64_t>(2 * N) && neuron.type == NeuronType::none) {
#pragma GCC unroll 16
    for (int m = 0; m < kMR; ++m) {
      hn::StoreU(acc0[m], d, c[m]);
      hn::StoreU(acc1[m], d, c[m] + N);
    }
    return;
  }
  HWY_ALIGN float tmp[2 * HWY_LANES(float)];
  for (int m = 0; m < kMR; ++m) {
    hn::Store(acc0[m], d, tmp);
    hn::Store(acc1[m], d, tmp + N);
    // The neuron is evaluated in double, as the reference does: in float, forms such as exp(x) − 1
    // lose the relative accuracy of small results.
    for (int64_t j = 0; j < nvalid; ++j)
      c[m][j] = static_cast<float>(core::neuron_apply<double>(neuron, static_cast<double>(tmp[j])));
  }
}

// A run of destination pixels that share their tap set: a phase (fwd) or the whole image (bwd_data).
struct Segment {
  int64_t py, px;          // phase (fwd); 0 for bwd_data
  int64_t ny, nx;          // pixels per column / row of this segment
  std::vector<int64_t> taps;  // t = q·kw + p, ascending; the taps that can hit this segment
  int64_t pixels, chunks;
  // Operand row of pixel (yy, xx) through taps[i]: (ay + oy[i], ax + ox[i]) with ay = yy, ax = xx (fwd:
  // exact because the tap divides the phase) or ay = yy·stride_h, ax = xx·stride_w (bwd_data).
  std::vector<int64_t> oy, ox;
};

void Run(const IgemmJob& job) {
  const DF d;
  const int64_t NR = 2 * static_cast<int64_t>(hn::Lanes(d));
  const core::Geometry& g = job.g;
  const bool fwd = job.fwd;
  const int64_t G = g.groups, Ig = g.ig(), Og = g.og();
  const int64_t K = fwd ? Ig : Og, NC = fwd ? Og : Ig;
  const int64_t T = g.kh * g.kw, npanel = (NC + NR - 1) / NR;
  const int64_t panel_sz = T * K * NR;
  float* packed = static_cast<float*>(job.packed);
  const int threads = std::max(1, job.threads);

  // Pack: packed[grp][panel][t][k][NR]; columns past NC are zero.
  const Precision prec = job.precision;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t gp = 0; gp < G * npanel; ++gp) {
    const int64_t grp = gp / npanel, panel = gp % npanel;
    const int64_t nv = std::min(NR, NC - panel * NR);
    float* out = packed + gp * panel_sz;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k, out += NR) {
        if (fwd) {  // column j is output channel o = panel·NR + j, k is the input channel
          const float* w = job.wei + ((grp * Og + panel * NR) * T + t) * Ig + k;
          for (int64_t j = 0; j < nv; ++j) out[j] = w[j * T * Ig];
        } else {    // k is the output channel, column j the input channel
          std::memcpy(out, job.wei + ((grp * Og + k) * T + t) * Ig + panel * NR, static_cast<size_t>(nv) * 4);
        }
        for (int64_t j = nv; j < NR; ++j) out[j] = 0.0f;
        if (prec != Precision::fp32)
          for (int64_t j = 0; j < nv; ++j) out[j] = core::round_input(out[j], prec);
      }
  }
  std::vector<float> init(static_cast<size_t>(G * npanel * NR), 0.0f);
  if (fwd && job.bias != nullptr)
    for (int64_t grp = 0; grp < G; ++grp)
      for (int64_t col = 0; col < NC; ++col) init[static_cast<size_t>(grp * npanel * NR + col)] = job.bias[grp * Og + col];
  const std::vector<float> zeros(static_cast<size_t>(K + NR), 0.0f);

  // Segments: the stride phases of dst (fwd), or the whole of diff_src (bwd_data).
  std::vector<Segment> segs;
  auto modp = [](int64_t x, int64_t s) { return ((x % s) + s) % s; };
  if (fwd) {
    for (int64_t py = 0; py < std::min(g.stride_h, g.h_out); ++py)
      for (int64_t px = 0; px < std::min(g.stride_w, g.w_out); ++px) {
        Segment s{py, px, (g.h_out - py + g.stride_h - 1) / g.stride_h, (g.w_out - px + g.stride_w - 1) / g.stride_w, {}, 0, 0, {}, {}};
        for (int64_t q = 0; q < g.kh; ++q) {
          if (modp(py + g.pad_h - g.dil_h * (g.kh - 1 - q), g.stride_h) != 0) continue;
          for (int64_t p = 0; p < g.kw; ++p)
            if (modp(px + g.pad_w - g.dil_w * (g.kw - 1 - p), g.stride_w) == 0) s.taps.push_back(q * g.kw + p);
        }
        for (const int64_t t : s.taps) {
          s.oy.push_back((py + g.pad_h - g.dil_h * (g.kh - 1 - t / g.kw)) / g.stride_h);
          s.ox.push_back((px + g.pad_w - g.dil_w * (g.kw - 1 - t % g.kw)) / g.stride_w);
        }
        segs.push_back(std::move(s));
      }
  } else {
    Segment s{0, 0, g.h_in, g.w_in, {}, 0, 0, {}, {}};
    for (int64_t t = 0; t < T; ++t) {
      s.taps.push_back(t);
      s.oy.push_back(-g.pad_h + g.dil_h * (g.kh - 1 - t / g.kw));
      s.ox.push_back(-g.pad_w + g.dil_w * (g.kw - 1 - t % g.kw));
    }
    segs.push_back(std::move(s));
  }
  const int64_t ah_n = fwd ? g.h_in : g.h_out, aw_n = fwd ? g.w_in : g.w_out;  // operand image extent
  // Blocks per chunk: up to kBlocks, fewer when that would leave under kMinItems items to share among the
  // threads (fixed by the problem; the result does not depend on it anyway: every output element is one
  // micro-kernel call).
  int64_t total_blocks = 0;
  for (const Segment& s : segs) total_blocks += (g.n * s.ny * s.nx + kMR - 1) / kMR;
  const int64_t cb = std::clamp<int64_t>(total_blocks * G / kMinItems, 1, kBlocks);
  const int64_t Mc = kMR * cb;
  std::vector<int64_t> first_item;  // items of segment i: [first_item[i], first_item[i+1])
  int64_t items = 0;
  size_t max_taps = 1;
  for (Segment& s : segs) {
    s.pixels = g.n * s.ny * s.nx;
    s.chunks = (s.pixels + Mc - 1) / Mc;
    first_item.push_back(items);
    items += s.chunks * G;
    max_taps = std::max(max_taps, s.taps.size());
  }
  first_item.push_back(items);

#pragma omp parallel num_threads(threads)
  {
    // Per-thread tables for one chunk: operand row pointers [block][active tap][MR], destination rows
    // [block][MR], active tap ids [block][tap]; scratch destination rows for pixels past the end.
    std::vector<const float*> aptr(static_cast<size_t>(kBlocks) * max_taps * kMR);
    std::vector<float*> cptr(static_cast<size_t>(kBlocks * kMR));
    std::vector<int64_t> tap_id(static_cast<size_t>(kBlocks) * max_taps), ntaps(kBlocks);
    std::vector<float> scratch(static_cast<size_t>(kMR * npanel * NR));
    std::vector<const float*> bptr(max_taps);
    float* crow[kMR];
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const size_t si = static_cast<size_t>(std::upper_bound(first_item.begin(), first_item.end(), it) - first_item.begin() - 1);
      const Segment& s = segs[si];
      const int64_t local = it - first_item[si];
      const int64_t chunk = local / G, grp = local % G;
      const int64_t p0 = chunk * Mc;
      const int64_t nblk = std::min(cb, (s.pixels - p0 + kMR - 1) / kMR);
      for (int64_t b = 0; b < nblk; ++b) {
        int64_t nt = 0;
        const float** ab = aptr.data() + b * max_taps * kMR;
        // Decode each pixel of the block once: its destination row, operand image base and coordinates.
        const float* abase[kMR];
        int64_t ay[kMR], ax[kMR];
        for (int m = 0; m < kMR; ++m) {
          const int64_t P = p0 + b * kMR + m;
          float*& cp = cptr[static_cast<size_t>(b * kMR + m)];
          cp = scratch.data() + m * npanel * NR;
          abase[m] = nullptr;
          ay[m] = ax[m] = 0;
          if (P >= s.pixels) continue;
          const int64_t n = P / (s.ny * s.nx), r = P % (s.ny * s.nx), yy = r / s.nx, xx = r % s.nx;
          cp = fwd ? job.c.at(n, s.py + yy * g.stride_h, s.px + xx * g.stride_w) + grp * Og
                   : job.c.at(n, yy, xx) + grp * Ig;
          abase[m] = job.a.data + n * job.a.sn + grp * K;
          ay[m] = fwd ? yy : yy * g.stride_h;
          ax[m] = fwd ? xx : xx * g.stride_w;
        }
        for (size_t i = 0; i < s.taps.size(); ++i) {
          bool any = false;
          const float** row = ab + nt * kMR;
          for (int m = 0; m < kMR; ++m) {
            const int64_t y = ay[m] + s.oy[i], x = ax[m] + s.ox[i];
            const bool ok = abase[m] != nullptr && y >= 0 && y < ah_n && x >= 0 && x < aw_n;
            row[m] = ok ? abase[m] + y * job.a.sh + x * job.a.sw : zeros.data();
            any |= ok;
          }
          if (any) tap_id[static_cast<size_t>(b * max_taps + nt++)] = s.taps[i];
        }
        ntaps[static_cast<size_t>(b)] = nt;
      }
      for (int64_t panel = 0; panel < npanel; ++panel) {
        const float* bpanel = packed + (grp * npanel + panel) * panel_sz;
        const int64_t nvalid = std::min(NR, NC - panel * NR);
        const float* ini = init.data() + (grp * npanel + panel) * NR;
        for (int64_t b = 0; b < nblk; ++b) {
          const int64_t nt = ntaps[static_cast<size_t>(b)];
          for (int64_t i = 0; i < nt; ++i) bptr[static_cast<size_t>(i)] = bpanel + tap_id[static_cast<size_t>(b * max_taps + i)] * K * NR;
          for (int m = 0; m < kMR; ++m) crow[m] = cptr[static_cast<size_t>(b * kMR + m)] + panel * NR;
          Tile(aptr.data() + b * max_taps * kMR, bptr.data(), nt, K, crow, ini, nvalid, job.neuron);
        }
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace tconv::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace tconv::cpu {
HWY_EXPORT(Run);

std::size_t igemm_packed_bytes(const core::Geometry& g, bool fwd) {
  const int64_t K = fwd ? g.ig() : g.og(), NC = fwd ? g.og() : g.ig();
  // The widest compiled target's panel: 2 vectors of 16 floats (AVX-512). (HWY_MAX_BYTES here would be the
  // static baseline's, not the widest target's.)
  constexpr int64_t nr_max = 32;
  return static_cast<std::size_t>(g.groups * g.kh * g.kw * K * round_up(NC, nr_max) * 4);
}

void igemm_run(const IgemmJob& job) { HWY_DYNAMIC_DISPATCH(Run)(job); }

std::optional<std::string> IgemmAlgorithm::decline_reason(const core::Problem& p) const {
  if (p.dir != dir_) return "computes the " + std::string(computes_) + " only, not " + core::to_string(p.dir);
  return std::nullopt;
}

std::size_t IgemmAlgorithm::workspace_bytes(const core::Problem& p) const {
  const core::Geometry& g = p.g;
  const bool fwd = p.dir == core::Direction::fwd;
  const int64_t ah = fwd ? g.h_in : g.h_out, aw = fwd ? g.w_in : g.w_out, ac = fwd ? g.c_in : g.c_out;  // operand
  const int64_t ch = fwd ? g.h_out : g.h_in, cw = fwd ? g.w_out : g.w_in, cc = fwd ? g.c_out : g.c_in;  // output
  return static_cast<std::size_t>(round_up(static_cast<int64_t>(igemm_packed_bytes(g, fwd)), 64)) +
         input_staging_bytes(p, g.n, ah, aw, ac) + output_staging_bytes(p, g.n, ch, cw, cc);
}

core::Status IgemmAlgorithm::run(const core::Problem& p, const core::Args& a, void* workspace,
                                 const registry::ExecContext& ctx) const {
  const core::Geometry& g = p.g;
  const int threads = ctx.num_threads;
  const bool fwd = p.dir == core::Direction::fwd;
  const int64_t ah = fwd ? g.h_in : g.h_out, aw = fwd ? g.w_in : g.w_out, ac = fwd ? g.c_in : g.c_out;
  const int64_t ch = fwd ? g.h_out : g.h_in, cw = fwd ? g.w_out : g.w_in, cc = fwd ? g.c_out : g.c_in;
  WorkspaceCursor ws(workspace);
  IgemmJob job;
  job.fwd = fwd;
  job.g = g;
  job.threads = threads;
  job.packed = ws.bytes(static_cast<int64_t>(igemm_packed_bytes(g, fwd)));
  job.a = input_f32(fwd ? a.src : a.diff_dst, g.n, ah, aw, ac, p, ws, threads);
  const StagedOutput out(fwd ? a.dst : a.diff_src, g.n, ch, cw, cc, p.act_type, ws);
  job.c = out.view();
  job.wei = a.wei;
  job.precision = p.precision;
  job.bias = fwd && p.with_bias ? a.bias : nullptr;
  if (fwd) job.neuron = p.neuron;
  igemm_run(job);
  out.finish(threads);
  return core::Status::ok_status();
}
}  // namespace tconv::cpu
#endif
