// cuda_channel_pad: few-channel layers on the tensor cores by padding their channels.
//
// Layers like fcn8s_up8 (21→21), fsrcnn_x3 (56→1) and dcgan_g5 (64→3) have channel counts per group that the
// tensor-core algorithms cannot copy in 16-byte vectors (cuda_tc_igemm, cuda_tc_wgrad decline), so they ran on
// the CUDA cores (cuda_few_channels, ~5 TFLOP/s). Here the operands whose channel count is not a whole number
// of 16-byte vectors are copied into channel-padded, 16-byte aligned dense NHWC buffers in the workspace (zeros
// in the pad channels; the OHWI weights too, with their channel dimensions padded the same way), the
// tensor-core algorithm runs on that padded canonical problem through the Algorithm interface (no kernel of
// its own is duplicated here), and the result lands in the caller's views:
//   fwd          src (Ig: the reduction) and the weights padded; dst (Og: the GEMM columns) see below
//   bwd_data     diff_dst (Og: the reduction) and the weights padded; diff_src (Ig: the columns) see below
//   bwd_weights  src and diff_dst padded; diff_wei and diff_bias computed into padded workspace buffers and
//                then written (or added, accumulate) into the caller's
// The GEMM column side of fwd/bwd_data needs no padding (cuda_tc_igemm takes any count ≥ 8 and any output
// view), but its epilogue stores whole 16-byte vectors only when the column count allows. When the output is
// the smaller image (bwd_data of an upsampling layer) it goes through a vector-padded buffer and a copy (fcn8s
// tf32 dX: 0.25 ms padded vs 0.30 ms direct); when it is the larger one (fwd) the copy costs more than the
// narrower stores and the inner algorithm writes the caller's view directly (fcn8s tf32 fwd: 0.45 vs 0.53 ms).
//
// Cost rule (measured on the H100 against cuda_few_channels, 2026-11-24, same run, same binary):
//   fwd/bwd_data  cuda_tc_igemm stages each tap's reduction channels in k-tiles of 64 bytes, so Kc channels
//                 cost roundup(Kc', 64 bytes) of tensor work: taken when that is at most kMaxKTileRatio × Kc and
//                 the column side has at least 8 channels. fcn8s (Kc 21 → 24 in a 32-wide tile, 1.5×) ran
//                 3.4× faster (dX bf16 0.19 vs 0.65 ms); dcgan_g5's dX (Kc 3 → 8 in 32: 10.7×) and fsrcnn's
//                 (Kc 1) ran slower than the CUDA-core kernels, as did their forwards with 1 or 3 columns
//                 padded to 8 (fsrcnn fwd bf16 0.32 vs 0.10 ms).
//   bwd_weights   taken when the padded multiply-adds are at most kMaxRatio16 (bf16, fp16) or kMaxRatioTf32
//                 (tf32: half the tensor rate, twice the bytes) times the original: dcgan_g5 (Og 3 → 8) ran
//                 in 0.059 vs 0.121 ms (bf16), fsrcnn (Og 1 → 8) 0.113 vs 0.151 ms, but fsrcnn tf32 (Og 1 → 4,
//                 4×) 0.26 vs 0.16 ms.
//   fp32          declined: wrapping cuda_simt_f32 (its 4-channel minimum) measured slower than the CUDA-core
//                 kernels on dcgan_g5 (Og 3 → 4: fwd 0.47 vs 0.19 ms, dW 0.32 vs 0.15 ms).
//
// Results: the pad channels hold +0 in the images and 0 in the weights, so each extra product is an exact zero
// and adding it changes no partial sum (x + 0 = x in every rounding mode; a −0 sum can only become +0, which
// compares equal). The result is therefore exactly what the inner algorithm computes on the padded problem,
// element for element, and as deterministic as it (fixed reduction order; the copies are element moves).
// accumulate and the bias gradient: the inner algorithm writes fresh sums into the workspace, and
// out = accumulate ? out + sum : sum is the single add it would have done itself. The fused bias and neuron of
// fwd run inside the inner algorithm (on padded output channels with bias 0 there, then discarded).
//
// Declined: fp32 precision and image types the tensor-core algorithms do not take, depthwise-like layers
// (groups with one channel on a side), problems the inner algorithm takes unpadded, the cost rule above,
// weight gradients over more than 2^22 source pixels (accuracy: see kMaxWgradPixels),
// image rows or padded row lengths beyond the copy kernels' 32-bit indices, and padded problems the inner
// algorithm declines (its reason is quoted).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"

namespace tconv::cuda_pad {
namespace {

constexpr double kMaxKTileRatio = 2.0;   // fwd/bwd_data: padded k-tile work over the original reduction
constexpr int64_t kKTileBytes = 64;      // cuda_tc_igemm's smallest k-tile per tap: 4 chunks of 16 bytes
constexpr int64_t kMinTcColumns = 8;     // cuda_tc_igemm declines fewer GEMM columns per group
constexpr double kMaxRatio16 = 8.0;      // bwd_weights, bf16/fp16: padded over original multiply-adds
constexpr double kMaxRatioTf32 = 2.0;    // bwd_weights, tf32
// bwd_weights: at most this many source pixels (the reduction). cuda_tc_wgrad cuts a reduction into at most
// 128 fixed chunks, each summed in one float32 accumulator; over 2^22 pixels a chunk exceeds 2^15 terms, and
// CudaLarge (1→8 channels, 16400² pixels, Ig padded 1 → 8) measured 3e-4 relative error there, against the
// few-channel kernels' finer split within 3e-5.
constexpr int64_t kMaxWgradPixels = int64_t{1} << 22;
constexpr std::size_t kAlign = 256;      // every workspace part starts on this boundary
constexpr int kThreads = 256;
constexpr int64_t kLim32 = (int64_t{1} << 31) - 1;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
std::size_t align_up(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Division by a run-time constant d ≥ 1 for dividends below 2^31 (Granlund & Montgomery, "Division by
// invariant integers using multiplication", fig. 4.1 with N = 32): q = (mulhi(n, m) + n) >> s. The add cannot
// overflow because mulhi(n, m) ≤ n < 2^31. The pad kernel divides twice per 16-byte vector; a 32-bit division
// by a variable costs ~20 instructions, more issue slots than the vector's bytes take to move.
struct FastDiv {
  uint32_t d = 1, m = 1, s = 0;
  FastDiv() = default;
  explicit FastDiv(uint32_t div) : d(div) {
    s = 0;
    while ((uint64_t{1} << s) < div) ++s;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << s) - div)) / div + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

// ---- copy kernels ------------------------------------------------------------------------------------------
// Strided view (cg channels per group) → dense padded rows (cp per group, cp a multiple of the 16-byte vector).
// (This and the unpad kernel:) one pixel row (image n, row y) per blockIdx.y step, threads along the row, each writing one 16-byte vector,
// which lies inside one group because cp is a multiple of the vector. Rows and row lengths are below 2^31 (the
// plan checks), element offsets 64-bit.
template <typename T>
__global__ void __launch_bounds__(kThreads) pad_image_kernel(const T* __restrict__ in, int64_t sn, int64_t sh,
                                                              int64_t sw, uint32_t rows, uint32_t h, uint32_t w,
                                                              uint32_t cg, uint32_t cp, uint32_t groups,
                                                              FastDiv vecs_per_pixel, FastDiv vecs_per_group,
                                                              T* __restrict__ out) {
  constexpr uint32_t kVec = 16 / sizeof(T);
  const uint32_t per_row = w * vecs_per_pixel.d;
  const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
  if (t >= per_row) return;
  const uint32_t x = vecs_per_pixel.div(t);
  const uint32_t v = t - x * vecs_per_pixel.d;              // vector within the padded pixel
  const uint32_t grp = vecs_per_group.div(v);
  const uint32_t c0 = (v - grp * vecs_per_group.d) * kVec;  // first channel of the vector within its group
  const int64_t c_pad = static_cast<int64_t>(groups) * cp;
  for (uint32_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const uint32_t n = row / h, y = row - n * h;
    const T* src = in + n * sn + y * sh + x * sw + static_cast<int64_t>(grp) * cg;
    union {
      uint4 u;
      T e[kVec];
    } pack;
#pragma unroll
    for (uint32_t j = 0; j < kVec; ++j) pack.e[j] = c0 + j < cg ? src[c0 + j] : T(0);
    *reinterpret_cast<uint4*>(out + (static_cast<int64_t>(row) * w + x) * c_pad + static_cast<int64_t>(v) * kVec) =
        pack.u;
  }
}

// Dense padded rows → strided view: one thread per element of the view's row (consecutive threads write
// consecutive channels, then pixels: coalesced on both sides for dense views).
template <typename T>
__global__ void __launch_bounds__(kThreads) unpad_image_kernel(const T* __restrict__ in, uint32_t rows, uint32_t h,
                                                                uint32_t w, FastDiv c_total, FastDiv cg, uint32_t cp,
                                                                uint32_t groups, T* __restrict__ out, int64_t sn,
                                                                int64_t sh, int64_t sw) {
  const uint32_t per_row = w * c_total.d;
  const uint32_t t = blockIdx.x * kThreads + threadIdx.x;
  if (t >= per_row) return;
  const uint32_t x = c_total.div(t);
  const uint32_t c = t - x * c_total.d;
  const uint32_t grp = cg.div(c);
  const uint32_t cpad = grp * cp + (c - grp * cg.d);
  const int64_t c_pad = static_cast<int64_t>(groups) * cp;
  for (uint32_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const uint32_t n = row / h, y = row - n * h;
    out[n * sn + y * sh + x * sw + c] = in[(static_cast<int64_t>(row) * w + x) * c_pad + cpad];
  }
}

// OHWI weights [groups·og][taps][ig] → [groups·ogp][taps][igp] with zeros in the new rows and channels, and
// (fwd with padded output channels) the bias [groups·og] → [groups·ogp] in the same launch.
__global__ void __launch_bounds__(kThreads) pad_weights_kernel(const float* __restrict__ w, float* __restrict__ wp,
                                                               const float* __restrict__ b, float* __restrict__ bp,
                                                               int64_t groups, int64_t og, int64_t ogp, int64_t taps,
                                                               int64_t ig, int64_t igp) {
  const int64_t total = groups * ogp * taps * igp;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t c = i % igp, r = i / igp;
    const int64_t tap = r % taps, r2 = r / taps;
    const int64_t o = r2 % ogp, grp = r2 / ogp;
    wp[i] = (o < og && c < ig) ? w[((grp * og + o) * taps + tap) * ig + c] : 0.0f;
    if (bp != nullptr && i < groups * ogp) {
      const int64_t bo = i % ogp, bg = i / ogp;
      bp[i] = bo < og ? b[bg * og + bo] : 0.0f;
    }
  }
}

// Padded weight (and bias) gradients → the caller's, written or added (accumulate): the same single add the
// inner algorithm does when it accumulates itself.
__global__ void __launch_bounds__(kThreads) unpad_wgrad_kernel(const float* __restrict__ dwp,
                                                               const float* __restrict__ dbp, float* __restrict__ dw,
                                                               float* __restrict__ db, int64_t groups, int64_t og,
                                                               int64_t ogp, int64_t taps, int64_t ig, int64_t igp,
                                                               bool accumulate) {
  const int64_t n_wei = groups * og * taps * ig;
  const int64_t n_bias = db != nullptr ? groups * og : 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < n_wei + n_bias;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    if (i < n_wei) {
      const int64_t c = i % ig, r = i / ig;
      const int64_t tap = r % taps, r2 = r / taps;
      const int64_t o = r2 % og, grp = r2 / og;
      const float v = dwp[((grp * ogp + o) * taps + tap) * igp + c];
      dw[i] = accumulate ? dw[i] + v : v;
    } else {
      const int64_t j = i - n_wei;
      const float v = dbp[(j / og) * ogp + j % og];
      db[j] = accumulate ? db[j] + v : v;
    }
  }
}

// ---- plan --------------------------------------------------------------------------------------------------
struct Plan {
  std::string why;  // non-empty: declined
  const registry::Algorithm* inner = nullptr;
  core::Problem padded;
  int64_t ig = 0, og = 0, igp = 0, ogp = 0;
  int elem = 0;                 // bytes per image element
  bool copy_src = false;        // the src-side image (Ig) goes through a padded buffer (read, or bwd_data's output)
  bool copy_dst = false;        // the dst-side image (Og) goes through a padded buffer (read, or fwd's output)
  bool bias_buf = false;        // the bias (fwd, padded output) or its gradient goes through a padded buffer
  // Workspace parts, offsets from the 256-byte aligned base.
  std::size_t off_wei = 0, off_bias = 0, off_src = 0, off_dst = 0, off_inner = 0, total = 0;
};

std::string ratio_text(double r) {
  const int64_t centi = static_cast<int64_t>(r * 100 + 0.5);
  return std::to_string(centi / 100) + "." + (centi % 100 < 10 ? "0" : "") + std::to_string(centi % 100);
}

Plan make_plan(const core::Problem& p) {
  Plan pl;
  const core::Geometry& g = p.g;
  pl.ig = g.ig();
  pl.og = g.og();
  const bool tc = (p.act_type == DataType::bfloat16 && p.precision == Precision::bf16) ||
                  (p.act_type == DataType::float16 && p.precision == Precision::fp16) ||
                  (p.act_type == DataType::float32 && p.precision == Precision::tf32);
  if (!tc) {
    pl.why = "images " + std::string(to_string(p.act_type)) + " with precision " + std::string(to_string(p.precision)) +
             ": pads for the tensor-core algorithms only (bfloat16/bf16, float16/fp16, float32/tf32); fp32 padded "
             "onto cuda_simt_f32 measured slower than cuda_few_channels";
    return pl;
  }
  if (g.groups > 1 && std::min(pl.ig, pl.og) == 1) {
    // Depthwise and channel-multiplier layers: every group would be its own GEMM of a few padded columns.
    pl.why = "depthwise-like: " + std::to_string(g.groups) + " groups of " + std::to_string(pl.ig) + " input and " +
             std::to_string(pl.og) + " output channels (cuda_stream_depthwise, cuda_few_channels stream those)";
    return pl;
  }
  pl.elem = p.act_type == DataType::float32 ? 4 : 2;
  const int64_t vec = 16 / pl.elem;
  const bool wgrad = p.dir == core::Direction::bwd_weights;
  pl.inner = wgrad ? registry::cuda_tc_wgrad_algorithm() : registry::cuda_tc_igemm_algorithm();
  if (!pl.inner->decline_reason(p)) {
    pl.why = std::string(pl.inner->name()) + " takes it without padding";
    return pl;
  }
  pl.igp = pl.ig;
  pl.ogp = pl.og;
  if (wgrad) {
    if (g.n * g.h_in * g.w_in > kMaxWgradPixels) {
      pl.why = "weight gradient over " + std::to_string(g.n * g.h_in * g.w_in) + " source pixels, more than " +
               std::to_string(kMaxWgradPixels) + ": cuda_tc_wgrad's float32 chunks would sum too many terms each";
      return pl;
    }
    pl.igp = round_up(pl.ig, vec);
    pl.ogp = round_up(pl.og, vec);
    const double ratio = static_cast<double>(pl.igp * pl.ogp) / static_cast<double>(pl.ig * pl.og);
    const double max_ratio = p.precision == Precision::tf32 ? kMaxRatioTf32 : kMaxRatio16;
    if (ratio > max_ratio) {
      pl.why = "padding " + std::to_string(pl.ig) + "→" + std::to_string(pl.igp) + " input and " +
               std::to_string(pl.og) + "→" + std::to_string(pl.ogp) + " output channels per group multiplies the "
               "weight gradient's work by " + ratio_text(ratio) + ", more than " + ratio_text(max_ratio);
      return pl;
    }
  } else {
    const bool fwd = p.dir == core::Direction::fwd;
    const int64_t kc = fwd ? pl.ig : pl.og, cols = fwd ? pl.og : pl.ig;
    if (cols < kMinTcColumns) {
      pl.why = std::to_string(cols) + " GEMM columns (" + (fwd ? "output" : "input") +
               " channels per group): fewer than " + std::to_string(kMinTcColumns) +
               ", a tensor-core tile would be mostly padding (cuda_few_channels streams it)";
      return pl;
    }
    const int64_t kcp = round_up(kc, vec);
    const double ratio = static_cast<double>(round_up(kcp, kKTileBytes / pl.elem)) / static_cast<double>(kc);
    if (ratio > kMaxKTileRatio) {
      pl.why = std::to_string(kc) + " reduction channels per group padded to " + std::to_string(kcp) + " fill " +
               std::to_string(kKTileBytes) + "-byte k-tiles to " + ratio_text(ratio) + "× the work, more than " +
               ratio_text(kMaxKTileRatio);
      return pl;
    }
    (fwd ? pl.igp : pl.ogp) = kcp;
    const int64_t out_elems = fwd ? core::dst_elements(g) : core::src_elements(g);
    const int64_t in_elems = fwd ? core::src_elements(g) : core::dst_elements(g);
    if (out_elems <= in_elems) (fwd ? pl.ogp : pl.igp) = round_up(cols, vec);  // see the header
  }
  if (pl.igp == pl.ig && pl.ogp == pl.og) {
    pl.why = "channels per group (" + std::to_string(pl.ig) + " in, " + std::to_string(pl.og) +
             " out) need no padding, and " + std::string(pl.inner->name()) +
             " declines for another reason: " + *pl.inner->decline_reason(p);
    return pl;
  }
  pl.padded = p;
  pl.padded.g.c_in = pl.igp * g.groups;
  pl.padded.g.c_out = pl.ogp * g.groups;
  pl.padded.accumulate = false;  // bwd_weights: fresh sums into the workspace, added to the caller's below
  if (core::Status s = core::validate(pl.padded); !s.ok()) {
    pl.why = "the padded problem is invalid: " + s.message;
    return pl;
  }
  if (auto why = pl.inner->decline_reason(pl.padded)) {
    pl.why = std::string(pl.inner->name()) + " declines the padded problem (" + std::to_string(pl.igp) + " in, " +
             std::to_string(pl.ogp) + " out channels per group): " + *why;
    return pl;
  }
  pl.copy_src = pl.igp != pl.ig;
  pl.copy_dst = pl.ogp != pl.og;
  // The copy kernels index rows and vectors or elements within a row in 32 bits.
  const int64_t cip = pl.igp * g.groups, cop = pl.ogp * g.groups;
  if ((pl.copy_src && (g.n * g.h_in > kLim32 || g.w_in * cip > kLim32)) ||
      (pl.copy_dst && (g.n * g.h_out > kLim32 || g.w_out * cop > kLim32))) {
    pl.why = "image rows (n·h " + std::to_string(g.n * std::max(g.h_in, g.h_out)) + ") or padded row length (" +
             std::to_string(std::max(g.w_in * cip, g.w_out * cop)) + " elements) beyond 2^31";
    return pl;
  }

  std::size_t off = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t at = off;
    off = align_up(off + bytes);
    return at;
  };
  // fwd/bwd_data: the padded weights (an input); bwd_weights: the padded weight gradient (an output).
  pl.off_wei = take(static_cast<std::size_t>(core::wei_elements(pl.padded.g)) * sizeof(float));
  pl.bias_buf = p.with_bias && (wgrad || (p.dir == core::Direction::fwd && pl.copy_dst));
  if (pl.bias_buf) pl.off_bias = take(static_cast<std::size_t>(cop) * sizeof(float));
  if (pl.copy_src) pl.off_src = take(static_cast<std::size_t>(core::src_elements(pl.padded.g)) * pl.elem);
  if (pl.copy_dst) pl.off_dst = take(static_cast<std::size_t>(core::dst_elements(pl.padded.g)) * pl.elem);
  pl.off_inner = take(pl.inner->workspace_bytes(pl.padded));
  pl.total = off + kAlign;  // slack to align the caller's base
  return pl;
}

// ---- launches ----------------------------------------------------------------------------------------------
unsigned flat_grid(int64_t total) {
  return static_cast<unsigned>(std::clamp<int64_t>((total + kThreads - 1) / kThreads, 1, 65535));
}

// view (cg per group) → dense padded buffer (cp per group)
core::Status pad_image(int elem, const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t groups,
                       int64_t cg, int64_t cp, void* out, cudaStream_t stream) {
  const int64_t vec = 16 / elem;
  const int64_t vpp = groups * cp / vec, per_row = w * vpp;
  const dim3 grid(static_cast<unsigned>((per_row + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min<int64_t>(n * h, 65535)));
  const FastDiv fvpp(static_cast<uint32_t>(vpp)), fvpg(static_cast<uint32_t>(cp / vec));
  const auto rows = static_cast<uint32_t>(n * h), hh = static_cast<uint32_t>(h), ww = static_cast<uint32_t>(w);
  const auto cgu = static_cast<uint32_t>(cg), cpu = static_cast<uint32_t>(cp), gu = static_cast<uint32_t>(groups);
  if (elem == 2)
    pad_image_kernel<uint16_t><<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(v.data), v.sn, v.sh, v.sw,
                                                              rows, hh, ww, cgu, cpu, gu, fvpp, fvpg,
                                                              static_cast<uint16_t*>(out));
  else
    pad_image_kernel<uint32_t><<<grid, kThreads, 0, stream>>>(static_cast<const uint32_t*>(v.data), v.sn, v.sh, v.sw,
                                                              rows, hh, ww, cgu, cpu, gu, fvpp, fvpg,
                                                              static_cast<uint32_t*>(out));
  return cuda_backend::check_launch("cuda_channel_pad image padding");
}

// dense padded buffer (cp per group) → view (cg per group)
core::Status unpad_image(int elem, const void* in, int64_t n, int64_t h, int64_t w, int64_t groups, int64_t cg,
                         int64_t cp, const core::TensorView& v, cudaStream_t stream) {
  const int64_t per_row = w * groups * cg;
  const dim3 grid(static_cast<unsigned>((per_row + kThreads - 1) / kThreads),
                  static_cast<unsigned>(std::min<int64_t>(n * h, 65535)));
  const FastDiv fc(static_cast<uint32_t>(groups * cg)), fcg(static_cast<uint32_t>(cg));
  const auto rows = static_cast<uint32_t>(n * h), hh = static_cast<uint32_t>(h), ww = static_cast<uint32_t>(w);
  const auto cpu = static_cast<uint32_t>(cp), gu = static_cast<uint32_t>(groups);
  if (elem == 2)
    unpad_image_kernel<uint16_t><<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(in), rows, hh, ww, fc, fcg,
                                                                cpu, gu, static_cast<uint16_t*>(v.data), v.sn, v.sh,
                                                                v.sw);
  else
    unpad_image_kernel<uint32_t><<<grid, kThreads, 0, stream>>>(static_cast<const uint32_t*>(in), rows, hh, ww, fc, fcg,
                                                                cpu, gu, static_cast<uint32_t*>(v.data), v.sn, v.sh,
                                                                v.sw);
  return cuda_backend::check_launch("cuda_channel_pad image unpadding");
}

core::Status run_plan(const Plan& pl, const core::Problem& p, const core::Args& a, void* workspace,
                      const registry::ExecContext& ctx) {
  const auto stream = static_cast<cudaStream_t>(ctx.cuda_stream);
  if (workspace == nullptr) return core::invalid("cuda_channel_pad needs device workspace for the padded operands");
  auto* base = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(workspace) + kAlign - 1) &
                                                ~static_cast<uintptr_t>(kAlign - 1));
  const core::Geometry& g = p.g;
  const core::Geometry& gp = pl.padded.g;
  const int64_t taps = g.kh * g.kw;
  auto* wbuf = reinterpret_cast<float*>(base + pl.off_wei);
  void* inner_ws = base + pl.off_inner;
  void* sbuf = pl.copy_src ? base + pl.off_src : nullptr;
  void* dbuf = pl.copy_dst ? base + pl.off_dst : nullptr;
  const bool fwd = p.dir == core::Direction::fwd, dx = p.dir == core::Direction::bwd_data;
  core::Args ia = a;
  core::Status s;
  if (pl.copy_src) {  // src read (fwd, bwd_weights) or diff_src written (bwd_data)
    if (!dx && !(s = pad_image(pl.elem, a.src, g.n, g.h_in, g.w_in, g.groups, pl.ig, pl.igp, sbuf, stream)).ok())
      return s;
    ia.src = ia.diff_src = core::dense_nhwc(sbuf, gp.h_in, gp.w_in, gp.c_in);
  }
  if (pl.copy_dst) {  // diff_dst read (bwd_data, bwd_weights) or dst written (fwd)
    if (!fwd && !(s = pad_image(pl.elem, a.diff_dst, g.n, g.h_out, g.w_out, g.groups, pl.og, pl.ogp, dbuf, stream)).ok())
      return s;
    ia.dst = ia.diff_dst = core::dense_nhwc(dbuf, gp.h_out, gp.w_out, gp.c_out);
  }
  if (p.dir != core::Direction::bwd_weights) {
    // fwd with padded output channels: a padded bias (zeros in the pad channels) when there is one.
    float* bbuf = fwd && pl.bias_buf && a.bias != nullptr ? reinterpret_cast<float*>(base + pl.off_bias) : nullptr;
    pad_weights_kernel<<<flat_grid(core::wei_elements(gp)), kThreads, 0, stream>>>(
        a.wei, wbuf, a.bias, bbuf, g.groups, pl.og, pl.ogp, taps, pl.ig, pl.igp);
    if (!(s = cuda_backend::check_launch("cuda_channel_pad weight padding")).ok()) return s;
    ia.wei = wbuf;
    if (pl.bias_buf) ia.bias = bbuf;
    if (!(s = pl.inner->run(pl.padded, ia, inner_ws, ctx)).ok()) return s;
    if (fwd && pl.copy_dst) return unpad_image(pl.elem, dbuf, g.n, g.h_out, g.w_out, g.groups, pl.og, pl.ogp, a.dst, stream);
    if (dx && pl.copy_src)
      return unpad_image(pl.elem, sbuf, g.n, g.h_in, g.w_in, g.groups, pl.ig, pl.igp, a.diff_src, stream);
    return core::Status::ok_status();
  }
  float* dbias = pl.bias_buf && a.diff_bias != nullptr ? reinterpret_cast<float*>(base + pl.off_bias) : nullptr;
  ia.diff_wei = wbuf;
  ia.diff_bias = dbias;
  if (!(s = pl.inner->run(pl.padded, ia, inner_ws, ctx)).ok()) return s;
  const int64_t total = g.groups * pl.og * taps * pl.ig + (dbias != nullptr ? g.c_out : 0);
  unpad_wgrad_kernel<<<flat_grid(total), kThreads, 0, stream>>>(wbuf, dbias, a.diff_wei,
                                                                dbias != nullptr ? a.diff_bias : nullptr, g.groups,
                                                                pl.og, pl.ogp, taps, pl.ig, pl.igp, p.accumulate);
  return cuda_backend::check_launch("cuda_channel_pad weight-gradient unpadding");
}

}  // namespace
}  // namespace tconv::cuda_pad

namespace tconv::registry {
namespace {

class CudaChannelPad final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_channel_pad"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  // As deterministic as the wrapped algorithms (both deterministic; the copies are element moves).
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    cuda_pad::Plan pl = cuda_pad::make_plan(p);
    if (!pl.why.empty()) return pl.why;
    return std::nullopt;
  }
  std::size_t workspace_bytes(const core::Problem& p) const override {
    const cuda_pad::Plan pl = cuda_pad::make_plan(p);
    return pl.why.empty() ? pl.total : 0;
  }
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    cuda_backend::DeviceGuard guard(ctx.cuda_device);
    if (!guard.ok()) return guard.status();
    const cuda_pad::Plan pl = cuda_pad::make_plan(p);
    if (!pl.why.empty()) return core::unsupported("cuda_channel_pad: " + pl.why);
    return cuda_pad::run_plan(pl, p, a, workspace, ctx);
  }
};

}  // namespace

const Algorithm* cuda_channel_pad_algorithm() {
  static const CudaChannelPad algorithm;
  return &algorithm;
}

}  // namespace tconv::registry
