// cuda_igemm_mma: tensor-core implicit GEMM (mma.sync, sm_80+) for all three passes in the bf16, fp16 and
// tf32 precision modes, any image type. This file: the forward pass and the data gradient, and the algorithm
// record; igemm_mma_wgrad.cu: the weight and bias gradients (split-K). Deterministic: every output element
// of fwd/bwd_data is computed by one block with a fixed k order, and no atomics are used anywhere.
//
// Both passes are a gather GEMM  out[m][j] = Σ_tap Σ_k In[pos(m, tap)][k] · W(tap, k, j)  per group:
//   bwd_data  m = (n, iy, ix), j = c < Ig, k = o < Og, In = diff_dst at oy = iy·sh − ph + dh·(kh − 1 − q),
//             W = wei[g·Og + k][tap][j]
//   fwd       m = (n, oy, ox) of one stride phase (oy ≡ py mod sh, ox ≡ px mod sw), j = o < Og, k = c < Ig,
//             In = src at iy = (oy + ph − dh·(kh − 1 − q)) / sh, W = wei[g·Og + j][tap][k]
// The forward pass is split by output phase (sub-pixel decomposition, design §2): within a phase a tap either
// hits an input pixel for every output of the block or for none, so no multiply is spent on inserted zeros.
// Tiles: 64 pixels × 64 channels per block of 4 warps (each 32×32: 2×4 mma tiles), k staged through shared
// memory in slabs (igemm_mma.cuh). Inputs are rounded exactly as core::round_input does (RNE) when staged, so the
// products equal the reference's; accumulation is the tensor cores' float32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>

#include "cuda/algorithm_run.hpp"
#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/direct_kernels.cuh"
#include "cuda/igemm_mma.cuh"

namespace tconv::cuda_direct {
namespace {

// kFwd: the forward pass (one stride phase per blockIdx.z / groups); else the data gradient.
template <class M, DataType T, bool kFwd>
__global__ void __launch_bounds__(kThreads) igemm_kernel(KView in, KView out, const float* __restrict__ wei,
                                                         const float* __restrict__ bias, KGeom g, NeuronDescriptor nd) {
  using E = typename Act<T>::type;
  using S = typename M::elem;
  __shared__ __align__(16) S As[kBM][M::kPitch];  // [pixel][k]
  __shared__ __align__(16) S Bs[kBN][M::kPitch];  // [out channel][k]
  __shared__ int64_t row_base[kBM];              // n·in.sn of the row's image, or −1 past the end
  __shared__ int64_t row_out[kBM];               // offset of the row's output pixel
  __shared__ int row_y[kBM], row_x[kBM];         // bwd_data: iy, ix; fwd: oy, ox

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int64_t phases = kFwd ? g.sh * g.sw : 1;
  const int64_t grp = blockIdx.z / phases, phase = blockIdx.z % phases;
  const int64_t py = phase / g.sw, px = phase % g.sw;
  // Pixel space of this block's GEMM.
  const int64_t ph_h = kFwd ? (g.h_out - py + g.sh - 1) / g.sh : g.h_in;  // rows of this phase
  const int64_t ph_w = kFwd ? (g.w_out - px + g.sw - 1) / g.sw : g.w_in;
  const int64_t m_total = g.n * ph_h * ph_w;
  const int64_t m0 = int64_t{blockIdx.x} * kBM;
  if (ph_h <= 0 || ph_w <= 0 || m0 >= m_total) return;  // block-uniform
  const int64_t n_total = kFwd ? g.og : g.ig;             // output channels per group
  const int64_t k_total = kFwd ? g.ig : g.og;             // reduction channels per tap
  const int64_t j0 = int64_t{blockIdx.y} * kBN;
  const int64_t in_c0 = grp * k_total, out_c0 = grp * n_total;
  const int64_t in_h = kFwd ? g.h_in : g.h_out, in_w = kFwd ? g.w_in : g.w_out;

  for (int r = tid; r < kBM; r += kThreads) {
    const int64_t m = m0 + r;
    if (m < m_total) {
      const int64_t xx = m % ph_w, t = m / ph_w, yy = t % ph_h, n = t / ph_h;
      const int64_t y = kFwd ? py + yy * g.sh : yy, x = kFwd ? px + xx * g.sw : xx;
      row_base[r] = n * in.sn;
      row_out[r] = n * out.sn + y * out.sh + x * out.sw + out_c0;
      row_y[r] = static_cast<int>(y);
      row_x[r] = static_cast<int>(x);
    } else {
      row_base[r] = -1;
      row_out[r] = 0;
      row_y[r] = row_x[r] = 0;
    }
  }

  __syncthreads();  // the row table is read by every thread, even when no tap reaches this phase

  float acc[2][4][4] = {};

  const E* __restrict__ src = static_cast<const E*>(in.data);
  const int64_t taps = g.kh * g.kw;
  for (int64_t tap = 0; tap < taps; ++tap) {
    const int64_t q = tap / g.kw, p = tap % g.kw;
    const int64_t sy = g.dh * (g.kh - 1 - q), sx = g.dw * (g.kw - 1 - p);
    if (kFwd) {  // does this tap reach this phase at all? (block-uniform)
      if (((py + g.ph - sy) % g.sh + g.sh) % g.sh != 0 || ((px + g.pw - sx) % g.sw + g.sw) % g.sw != 0) continue;
    }
    for (int64_t k0 = 0; k0 < k_total; k0 += M::kBK) {
      __syncthreads();  // previous slab fully consumed
      // A slab: kBM rows × kBK k values, consecutive threads on consecutive k (contiguous channels).
      for (int i = tid; i < kBM * M::kBK; i += kThreads) {
        const int r = i / M::kBK, kk = i % M::kBK;
        float v = 0.f;
        const int64_t base = row_base[r];
        if (base >= 0 && k0 + kk < k_total) {
          int64_t yi, xi;
          if (kFwd) {
            yi = (row_y[r] + g.ph - sy) / g.sh;  // exact: the phase test above
            xi = (row_x[r] + g.pw - sx) / g.sw;
            if (row_y[r] + g.ph - sy < 0) yi = -1;
            if (row_x[r] + g.pw - sx < 0) xi = -1;
          } else {
            yi = row_y[r] * g.sh - g.ph + sy;
            xi = row_x[r] * g.sw - g.pw + sx;
          }
          if (yi >= 0 && yi < in_h && xi >= 0 && xi < in_w)
            v = Act<T>::load(src, base + yi * in.sh + xi * in.sw + in_c0 + k0 + kk);
        }
        As[r][kk] = M::cvt(v);
      }
      // B slab: kBN output channels × kBK k values.
      for (int i = tid; i < kBN * M::kBK; i += kThreads) {
        int c, kk;
        if (kFwd) {  // wei[g·Og + j][tap][k]: contiguous in k
          c = i / M::kBK;
          kk = i % M::kBK;
        } else {  // wei[g·Og + k][tap][j]: contiguous in j
          c = i % kBN;
          kk = i / kBN;
        }
        float v = 0.f;
        const int64_t j = j0 + c, k = k0 + kk;
        if (j < n_total && k < k_total) {
          v = kFwd ? wei[((grp * g.og + j) * taps + tap) * g.ig + k] : wei[((grp * g.og + k) * taps + tap) * g.ig + j];
        }
        Bs[c][kk] = M::cvt(v);
      }
      __syncthreads();
      mma_slab<M>(As, Bs, warp, gid, tig, acc);
    }
  }

  // Epilogue: bias and neuron (fwd), then the store in the image type.
  E* __restrict__ dst = static_cast<E*>(out.data);
  for_each_acc(acc, warp, gid, tig, 0, j0, [&](int r, int64_t col, float v) {
    if (row_base[r] < 0 || col >= n_total) return;
    if (kFwd) {
      if (bias != nullptr) v += bias[out_c0 + col];
      if (nd.type != NeuronType::none) v = neuron_dev(nd.type, nd.a, nd.b, nd.c, v);
    }
    Act<T>::store(dst, row_out[r] + col, v);
  });
}

template <class M, DataType T>
core::Status launch(const core::Problem& p, const core::Args& a, cudaStream_t stream) {
  const KGeom g = kgeom(p.g);
  const bool fwd = p.dir == core::Direction::fwd;
  const int64_t phases = fwd ? g.sh * g.sw : 1;
  const int64_t max_m = fwd ? g.n * ((g.h_out + g.sh - 1) / g.sh) * ((g.w_out + g.sw - 1) / g.sw) : g.n * g.h_in * g.w_in;
  const int64_t n_total = fwd ? g.og : g.ig;
  const dim3 grid(static_cast<unsigned>((max_m + kBM - 1) / kBM), static_cast<unsigned>((n_total + kBN - 1) / kBN),
                  static_cast<unsigned>(g.groups * phases));
  if (fwd) {
    igemm_kernel<M, T, true><<<grid, kThreads, 0, stream>>>(kview(a.src), kview(a.dst), a.wei,
                                                           p.with_bias ? a.bias : nullptr, g, p.neuron);
  } else {
    igemm_kernel<M, T, false><<<grid, kThreads, 0, stream>>>(kview(a.diff_dst), kview(a.diff_src), a.wei, nullptr, g,
                                                            p.neuron);
  }
  return cuda_backend::check_launch("cuda_igemm_mma");
}

}  // namespace
}  // namespace tconv::cuda_direct

namespace tconv::registry {
namespace {

class CudaIgemmMma final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_igemm_mma"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.precision == Precision::fp32) return "fp32 precision has no tensor-core form (tf32, bf16, fp16 do)";
    if (auto why = cuda_backend::unsupported_activation(p.act_type)) return why;
    const core::Geometry& g = p.g;
    // A 64×64 tile over 1–3 channels per group wastes most of the tensor cores: measured on the H100 (suite,
    // bf16), depthwise_up ran 30–60× and fsrcnn_x3 / dcgan_g5 (Og 1, 3) 2–10× slower here than cuda_direct.
    if (g.ig() < 4 || g.og() < 4)
      return "fewer than 4 channels per group (" + std::to_string(g.ig()) + " in, " + std::to_string(g.og()) +
             " out): cuda_direct is faster";
    const int64_t phases = p.dir == core::Direction::fwd ? g.stride_h * g.stride_w : 1;
    const int64_t m = p.dir == core::Direction::fwd ? g.n * g.h_out * g.w_out : g.n * g.h_in * g.w_in;
    const int64_t grid_x = (m + cuda_direct::kBM - 1) / cuda_direct::kBM;
    if (p.dir == core::Direction::bwd_weights) {
      const int64_t tiles = ((g.og() + 63) / 64) * ((g.ig() + 63) / 64) * g.kh * g.kw * g.groups;
      if (tiles > 0x7fffffff / 2048) return "too many weight-gradient tiles for one grid (" + std::to_string(tiles) + ")";
      return std::nullopt;
    }
    if (grid_x > 0x7fffffff || g.groups * phases > 65535 || (std::max(g.og(), g.ig()) + 63) / 64 > 65535 ||
        std::max({g.h_in, g.w_in, g.h_out, g.w_out}) > 0x3fffffff)
      return "grid too large for this kernel (pixels " + std::to_string(m) + ", groups×phases " +
             std::to_string(g.groups * phases) + ")";
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    return p.dir == core::Direction::bwd_weights ? cuda_direct::igemm_wgrad_workspace_bytes(p) : 0;
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    // fwd and bwd_data: one gather kernel (igemm_kernel<kFwd>); bwd_weights: igemm_mma_wgrad.cu.
    const auto gather = [&](cudaStream_t stream) {
      return cuda_direct::dispatch_types(p.act_type, p.precision, [&](auto act_c, auto prec_c) -> core::Status {
        constexpr DataType T = decltype(act_c)::value;
        constexpr Precision P = decltype(prec_c)::value;
        if constexpr (P == Precision::bf16) return cuda_direct::launch<cuda_direct::MmaBf16, T>(p, a, stream);
        else if constexpr (P == Precision::fp16) return cuda_direct::launch<cuda_direct::MmaF16, T>(p, a, stream);
        else if constexpr (P == Precision::tf32) return cuda_direct::launch<cuda_direct::MmaTf32, T>(p, a, stream);
        else return core::unsupported("cuda_igemm_mma: fp32 precision");
      });
    };
    return cuda_backend::run_by_direction(
        name(), p, ctx, workspace, workspace_bytes(p), gather, gather,
        [&](cudaStream_t s) { return cuda_direct::launch_igemm_wgrad(p, a, workspace, s); });
  }
};

}  // namespace

const Algorithm* cuda_igemm_mma_algorithm() { return cuda_backend::single_instance<CudaIgemmMma>(); }

}  // namespace tconv::registry
