// cuda_stream_depthwise: depthwise transposed convolutions (groups == channels, one input and one output
// channel per group) in all three directions, every image type and precision mode. Each output element is a
// few multiply-adds over its own channel, so these layers are bound by memory bandwidth: the kernels read
// each image about once, 16 bytes (8 channels) per thread and access, channels along the warp, with the
// block's weights rounded into shared memory once.
//   fwd          gather over outputs: only the taps of the output's stride phase (stream_common.cuh)
//   bwd_data     gather over inputs: every tap that lands inside the output image
//                (16-byte aligned views of whole vectors: the tiled kernel of stream_depthwise_tiled.cu, which
//                stages each block's diff_dst region in shared memory — same additions, same order, same bits)
//   bwd_weights  block = (pixel chunk, stride phase × tap batch, channel tile): each worker walks the
//                phase's output pixels once, reading dY once and X at the phase's ≤ 4 taps, accumulating
//                4 taps × 8 channels in registers plus the bias; the block's workers are added in a fixed
//                order in shared memory, one partial row per chunk goes to workspace, and stream_reduce.cu
//                adds the rows in a fixed order. No atomics; the chunking depends on the problem only.
//                (16-byte aligned views: the tiled kernel, which stages diff_dst and the source in shared memory
//                and reads each from global memory about once instead of once per tap.)
#include <algorithm>
#include <optional>
#include <string>

#include "cuda/algorithm_run.hpp"
#include "cuda/cuda_algorithms.hpp"
#include "cuda/cuda_util.hpp"
#include "cuda/stream_common.cuh"
#include "cuda/stream_depthwise_tiled.cuh"

namespace tconv::cuda_stream {
namespace {

constexpr int kThreads = 256;
constexpr int kTB = 4;  // taps per weight-gradient pass: 4 taps × 8 channels = 32 accumulators a thread

// Thread layout of all three kernels: a block owns a tile of cvb channel vectors (8 channels each); thread t
// handles vector t % cvb for pixel worker t / cvb (ppi workers). With 256 channels a warp covers one pixel.
struct Layout {
  int cvb, ppi, nct;
  int64_t kk;
};
Layout layout(const core::Geometry& g) {
  const int64_t cv = (g.c_out + 7) / 8;
  const int64_t kk = g.kh * g.kw;
  // A tile's weights (kk × cvb × 8 floats) stay within 48 KiB of shared memory.
  const int64_t cvb = std::min<int64_t>({cv, 32, std::max<int64_t>(1, 1536 / kk)});
  return Layout{static_cast<int>(cvb), static_cast<int>(kThreads / cvb), static_cast<int>((cv + cvb - 1) / cvb), kk};
}

// Round the block's channel tile of weights into shared memory as wsm[tap][channel of tile].
__device__ __forceinline__ void stage_weights(float* wsm, const float* __restrict__ wei, int64_t c_tile, int ct,
                                              int kk, int64_t channels, Precision wprec) {
  for (int i = threadIdx.x; i < kk * ct; i += blockDim.x) {
    const int tap = i / ct, cl = i - tap * ct;
    const int64_t c = c_tile + cl;
    wsm[i] = c < channels ? round_rt(wei[c * kk + tap], wprec) : 0.f;
  }
}

template <DataType T, Precision R>
__global__ void __launch_bounds__(kThreads) fwd_kernel(KView src, KView dst, const float* __restrict__ wei,
                                                       const float* __restrict__ bias, KGeom g, PhaseDim py,
                                                       PhaseDim px, NeuronDescriptor nd, Precision wprec, int cvb,
                                                       int ppi, bool vec) {
  using E = typename Act<T>::type;
  extern __shared__ float4 smem4[];
  float* wsm = reinterpret_cast<float*>(smem4);
  const int ct = cvb * 8, kk = static_cast<int>(g.kh * g.kw);
  const int64_t c_tile = int64_t{blockIdx.y} * ct;
  stage_weights(wsm, wei, c_tile, ct, kk, g.c_out, wprec);
  __syncthreads();
  const int cv = threadIdx.x % cvb, w = threadIdx.x / cvb;
  const int64_t c0 = c_tile + cv * 8;
  if (w >= ppi || c0 >= g.c_out) return;
  const int cnt = static_cast<int>(min(int64_t{8}, g.c_out - c0));
  const bool v8 = vec && cnt == 8;
  float b[8];
#pragma unroll
  for (int v = 0; v < 8; ++v) b[v] = (bias != nullptr && v < cnt) ? bias[c0 + v] : 0.f;
  const E* __restrict__ s = static_cast<const E*>(src.data) + c0;
  E* __restrict__ d = static_cast<E*>(dst.data) + c0;
  const float* wl = wsm + cv * 8;
  // Columns advance by ppi: ox + pw = rx + sw·mx moves by (ppi mod sw, ppi div sw) with a carry.
  const int64_t step_q = ppi / g.sw, step_r = ppi % g.sw;
  const int64_t rows = g.n * g.h_out;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row / g.h_out, oy = row - n * g.h_out;
    const int64_t ry = floor_mod(oy + g.ph, g.sh), my = (oy + g.ph - ry) / g.sh;
    const int ya = py.first[ry], yb = py.first[ry + 1];
    const E* srow = s + n * src.sn;
    E* drow = d + n * dst.sn + oy * dst.sh;
    int64_t rx = floor_mod(w + g.pw, g.sw), mx = (w + g.pw - rx) / g.sw;
    for (int64_t ox = w; ox < g.w_out; ox += ppi) {
      float acc[8] = {};
      const int xa = px.first[rx], xb = px.first[rx + 1];
      for (int a = ya; a < yb; ++a) {
        const int64_t iy = my + py.off[a];
        if (iy < 0 || iy >= g.h_in) continue;
        const float* wq = wl + (g.kh - 1 - py.tap[a]) * g.kw * ct;
        for (int bb = xa; bb < xb; ++bb) {
          const int64_t ix = mx + px.off[bb];
          if (ix < 0 || ix >= g.w_in) continue;
          float x[8];
          load8<T>(srow + iy * src.sh + ix * src.sw, v8, cnt, x);
          const float* wp = wq + (g.kw - 1 - px.tap[bb]) * ct;
          const float4 w0 = *reinterpret_cast<const float4*>(wp), w1 = *reinterpret_cast<const float4*>(wp + 4);
          const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
          for (int v = 0; v < 8; ++v) acc[v] += round_in<R>(x[v]) * wv[v];
        }
      }
#pragma unroll
      for (int v = 0; v < 8; ++v) {
        acc[v] += b[v];
        if (nd.type != NeuronType::none) acc[v] = neuron_dev(nd.type, nd.a, nd.b, nd.c, acc[v]);
      }
      store8<T>(drow + ox * dst.sw, v8, cnt, acc);
      rx += step_r;
      mx += step_q;
      if (rx >= g.sw) {
        rx -= g.sw;
        ++mx;
      }
    }
  }
}

template <DataType T, Precision R>
__global__ void __launch_bounds__(kThreads) bwd_data_kernel(KView ddst, KView dsrc, const float* __restrict__ wei,
                                                            KGeom g, Precision wprec, int cvb, int ppi, bool vec) {
  using E = typename Act<T>::type;
  extern __shared__ float4 smem4[];
  float* wsm = reinterpret_cast<float*>(smem4);
  const int ct = cvb * 8, kk = static_cast<int>(g.kh * g.kw);
  const int64_t c_tile = int64_t{blockIdx.y} * ct;
  stage_weights(wsm, wei, c_tile, ct, kk, g.c_in, wprec);
  __syncthreads();
  const int cv = threadIdx.x % cvb, w = threadIdx.x / cvb;
  const int64_t c0 = c_tile + cv * 8;
  if (w >= ppi || c0 >= g.c_in) return;
  const int cnt = static_cast<int>(min(int64_t{8}, g.c_in - c0));
  const bool v8 = vec && cnt == 8;
  const E* __restrict__ dd = static_cast<const E*>(ddst.data) + c0;
  E* __restrict__ ds = static_cast<E*>(dsrc.data) + c0;
  const float* wl = wsm + cv * 8;
  const int64_t rows = g.n * g.h_in;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row / g.h_in, iy = row - n * g.h_in;
    for (int64_t ix = w; ix < g.w_in; ix += ppi) {
      float acc[8] = {};
      for (int64_t q = 0; q < g.kh; ++q) {
        const int64_t oy = iy * g.sh - g.ph + g.dh * (g.kh - 1 - q);
        if (oy < 0 || oy >= g.h_out) continue;
        const E* yrow = dd + n * ddst.sn + oy * ddst.sh;
        const float* wq = wl + q * g.kw * ct;
#pragma unroll 4
        for (int64_t p = 0; p < g.kw; ++p) {
          const int64_t ox = ix * g.sw - g.pw + g.dw * (g.kw - 1 - p);
          if (ox < 0 || ox >= g.w_out) continue;
          float y[8];
          load8<T>(yrow + ox * ddst.sw, v8, cnt, y);
          const float* wp = wq + p * ct;
          const float4 w0 = *reinterpret_cast<const float4*>(wp), w1 = *reinterpret_cast<const float4*>(wp + 4);
          const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
          for (int v = 0; v < 8; ++v) acc[v] += round_in<R>(y[v]) * wv[v];
        }
      }
      store8<T>(ds + n * dsrc.sn + iy * dsrc.sh + ix * dsrc.sw, v8, cnt, acc);
    }
  }
}

// grid: x = chunk, y = stride phase × tap batch (item), z = channel tile.
template <DataType T, Precision R>
__global__ void __launch_bounds__(kThreads) wgrad_kernel(KView src, KView ddst, float* __restrict__ partial, KGeom g,
                                                         PhaseDim py, PhaseDim px, int cvb, int ppi, int nb,
                                                         int64_t chunks, int64_t row_len, bool with_bias, bool vec_x,
                                                         bool vec_y) {
  using E = typename Act<T>::type;
  extern __shared__ float4 smem4[];
  float* red = reinterpret_cast<float*>(smem4);  // [ppi][kTB + 1][ct]
  const int ct = cvb * 8;
  const int64_t s = blockIdx.x;
  const int item = blockIdx.y, ph = item / nb, b = item % nb;
  const int64_t ry = ph / g.sw, rx = ph % g.sw;
  const int ya = py.first[ry], nty = py.first[ry + 1] - ya;
  const int xa = px.first[rx], ntx = px.first[rx + 1] - xa;
  const int ntaps = nty * ntx, tap0 = b * kTB;
  const int64_t my_n = py.cnt[ry], mx_n = px.cnt[rx], pixels = g.n * my_n * mx_n;
  const int64_t per = (pixels + chunks - 1) / chunks, k0 = s * per, k1 = min(pixels, k0 + per);
  const int64_t c_tile = int64_t{blockIdx.z} * ct;
  const int cv = threadIdx.x % cvb, w = threadIdx.x / cvb;
  const int64_t c0 = c_tile + cv * 8;
  const int cnt = static_cast<int>(max(int64_t{0}, min(int64_t{8}, g.c_out - c0)));
  const bool bias_here = with_bias && b == 0;

  float acc[kTB][8] = {};
  float bacc[8] = {};
  bool act[kTB];
  int offy[kTB], offx[kTB];  // |dil·(k−1)| < 2^30 (phase_limits_reason)
#pragma unroll
  for (int j = 0; j < kTB; ++j) {
    const int ti = tap0 + j;
    act[j] = ti < ntaps;
    offy[j] = act[j] ? static_cast<int>(py.off[ya + ti / ntx]) : 0;
    offx[j] = act[j] ? static_cast<int>(px.off[xa + ti % ntx]) : 0;
  }
  if (w < ppi && cnt > 0 && k0 + w < k1) {
    const E* __restrict__ xs = static_cast<const E*>(src.data) + c0;
    const E* __restrict__ dd = static_cast<const E*>(ddst.data) + c0;
    const bool vx = vec_x && cnt == 8, vy = vec_y && cnt == 8;
    int64_t k = k0 + w;
    int64_t jx = k % mx_n, jy = (k / mx_n) % my_n, ni = k / (mx_n * my_n);
    const int64_t qa = ppi / mx_n, ra = ppi % mx_n;  // the walk's step in (row, column) of the phase grid
    const int64_t myb = py.mlo[ry], mxb = px.mlo[rx];
    const int64_t oyb = ry - g.ph + g.sh * myb, oxb = rx - g.pw + g.sw * mxb;
    for (; k < k1; k += ppi) {
      float y[8];
      load8<T>(dd + ni * ddst.sn + (oyb + g.sh * jy) * ddst.sh + (oxb + g.sw * jx) * ddst.sw, vy, cnt, y);
      if (bias_here) {
#pragma unroll
        for (int v = 0; v < 8; ++v) bacc[v] += y[v];
      }
#pragma unroll
      for (int v = 0; v < 8; ++v) y[v] = round_in<R>(y[v]);
#pragma unroll
      for (int j = 0; j < kTB; ++j) {
        if (!act[j]) continue;
        const int64_t iy = myb + jy + offy[j], ix = mxb + jx + offx[j];
        if (iy < 0 || iy >= g.h_in || ix < 0 || ix >= g.w_in) continue;
        float x[8];
        load8<T>(xs + ni * src.sn + iy * src.sh + ix * src.sw, vx, cnt, x);
#pragma unroll
        for (int v = 0; v < 8; ++v) acc[j][v] += round_in<R>(x[v]) * y[v];
      }
      jx += ra;
      jy += qa;
      if (jx >= mx_n) {
        jx -= mx_n;
        ++jy;
      }
      while (jy >= my_n) {
        jy -= my_n;
        ++ni;
      }
    }
  }
  // Workers of the block are added in a fixed order (worker 0 first).
  if (w < ppi) {
#pragma unroll
    for (int j = 0; j <= kTB; ++j)
#pragma unroll
      for (int v = 0; v < 8; ++v) red[(w * (kTB + 1) + j) * ct + cv * 8 + v] = j < kTB ? acc[j][v] : bacc[v];
  }
  __syncthreads();
  const int64_t wei_count = g.c_out * g.kh * g.kw;
  float* prow = partial + s * row_len;
  for (int i = threadIdx.x; i < (kTB + 1) * ct; i += blockDim.x) {
    const int j = i / ct, cl = i - j * ct;
    const int64_t c = c_tile + cl;
    if (c >= g.c_out) continue;
    if (j < kTB ? tap0 + j >= ntaps : !bias_here) continue;
    float sum = 0.f;
    for (int ww = 0; ww < ppi; ++ww) sum += red[(ww * (kTB + 1) + j) * ct + cl];
    if (j < kTB) {
      const int ti = tap0 + j;
      const int64_t q = g.kh - 1 - py.tap[ya + ti / ntx], p = g.kw - 1 - px.tap[xa + ti % ntx];
      prow[(c * g.kh + q) * g.kw + p] = sum;
    } else {
      prow[wei_count + ph * g.c_out + c] = sum;
    }
  }
}

struct WgradPlan {
  Layout l;
  int nb, items;
  int64_t chunks, row_len, wei_count;
};
WgradPlan wgrad_plan(const core::Problem& p) {
  const core::Geometry& g = p.g;
  WgradPlan w{};
  w.l = layout(g);
  const PhaseDim py = make_phase_dim(g.kh, g.stride_h, g.dil_h, g.pad_h, g.h_out);
  const PhaseDim px = make_phase_dim(g.kw, g.stride_w, g.dil_w, g.pad_w, g.w_out);
  const int max_taps = max_taps_per_phase(py, g.stride_h) * max_taps_per_phase(px, g.stride_w);
  w.nb = std::max(1, (max_taps + kTB - 1) / kTB);
  w.items = static_cast<int>(g.stride_h * g.stride_w) * w.nb;
  w.wei_count = core::wei_elements(g);
  w.row_len = w.wei_count + (p.with_bias ? g.stride_h * g.stride_w * g.c_out : 0);
  const int64_t max_pix = g.n * max_phase_count(py, g.stride_h) * max_phase_count(px, g.stride_w);
  const int64_t data_bytes =
      (core::src_elements(g) + core::dst_elements(g)) * static_cast<int64_t>(size_of(p.act_type));
  w.chunks = choose_chunks(int64_t{w.items} * w.l.nct, w.row_len, max_pix, int64_t{16} * w.l.ppi, data_bytes, p.macs());
  return w;
}

core::Status run_fwd(const core::Problem& p, const core::Args& a, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  const Layout l = layout(g);
  const PhaseDim py = make_phase_dim(g.kh, g.stride_h, g.dil_h, g.pad_h, g.h_out);
  const PhaseDim px = make_phase_dim(g.kw, g.stride_w, g.dil_w, g.pad_w, g.w_out);
  const int64_t rows = g.n * g.h_out;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(rows, std::max(1, 512 / l.nct))), l.nct);
  const size_t smem = static_cast<size_t>(l.kk) * l.cvb * 8 * sizeof(float);
  const bool vec = g.c_out % 8 == 0 && view_vec8(a.src, p.act_type) && view_vec8(a.dst, p.act_type);
  const float* bias = p.with_bias ? a.bias : nullptr;
  return dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    fwd_kernel<decltype(t)::value, decltype(r)::value><<<grid, kThreads, smem, stream>>>(
        kview(a.src), kview(a.dst), a.wei, bias, kgeom(g), py, px, p.neuron, p.precision, l.cvb, l.ppi, vec);
    return cuda_backend::check_launch("cuda_stream_depthwise fwd");
  });
}

core::Status run_bwd_data(const core::Problem& p, const core::Args& a, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  if (dw_tiled_enabled() && view_vec8(a.diff_dst, p.act_type) && view_vec8(a.diff_src, p.act_type))
    if (const DwPlan d = dw_plan(p); d.taken) return run_bwd_data_tiled(p, a, d, stream);
  const Layout l = layout(g);
  const int64_t rows = g.n * g.h_in;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(rows, std::max(1, 512 / l.nct))), l.nct);
  const size_t smem = static_cast<size_t>(l.kk) * l.cvb * 8 * sizeof(float);
  const bool vec = g.c_in % 8 == 0 && view_vec8(a.diff_dst, p.act_type) && view_vec8(a.diff_src, p.act_type);
  return dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    bwd_data_kernel<decltype(t)::value, decltype(r)::value><<<grid, kThreads, smem, stream>>>(
        kview(a.diff_dst), kview(a.diff_src), a.wei, kgeom(g), p.precision, l.cvb, l.ppi, vec);
    return cuda_backend::check_launch("cuda_stream_depthwise bwd_data");
  });
}

core::Status run_bwd_weights(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream) {
  const core::Geometry& g = p.g;
  if (dw_tiled_enabled() && view_vec8(a.src, p.act_type) && view_vec8(a.diff_dst, p.act_type))
    if (const DwPlan d = dw_plan(p); d.taken) return run_bwd_weights_tiled(p, a, d, workspace, stream);
  const WgradPlan w = wgrad_plan(p);
  const PhaseDim py = make_phase_dim(g.kh, g.stride_h, g.dil_h, g.pad_h, g.h_out);
  const PhaseDim px = make_phase_dim(g.kw, g.stride_w, g.dil_w, g.pad_w, g.w_out);
  const dim3 grid(static_cast<unsigned>(w.chunks), static_cast<unsigned>(w.items), static_cast<unsigned>(w.l.nct));
  const size_t smem = static_cast<size_t>(w.l.ppi) * (kTB + 1) * w.l.cvb * 8 * sizeof(float);
  const bool vec_x = g.c_in % 8 == 0 && view_vec8(a.src, p.act_type);
  const bool vec_y = g.c_out % 8 == 0 && view_vec8(a.diff_dst, p.act_type);
  const bool with_bias = p.with_bias && a.diff_bias != nullptr;
  float* partial = static_cast<float*>(workspace);
  const core::Status st = dispatch_act(p.act_type, p.precision, [&](auto t, auto r) -> core::Status {
    wgrad_kernel<decltype(t)::value, decltype(r)::value><<<grid, kThreads, smem, stream>>>(
        kview(a.src), kview(a.diff_dst), partial, kgeom(g), py, px, w.l.cvb, w.l.ppi, w.nb, w.chunks, w.row_len,
        with_bias, vec_x, vec_y);
    return cuda_backend::check_launch("cuda_stream_depthwise bwd_weights partial sums");
  });
  if (!st.ok()) return st;
  return launch_reduce_rows(partial, w.chunks, w.row_len, w.wei_count, g.stride_h * g.stride_w,
                            with_bias ? g.c_out : 0, a.diff_wei, a.diff_bias, p.accumulate, stream);
}

}  // namespace
}  // namespace tconv::cuda_stream

namespace tconv::registry {
namespace {

class CudaStreamDepthwise final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cuda_stream_depthwise"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cuda; }
  bool deterministic() const noexcept override { return true; }

  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (auto why = cuda_backend::unsupported_activation(p.act_type)) return why;
    if (p.g.ig() != 1 || p.g.og() != 1)
      return "not depthwise: " + std::to_string(p.g.ig()) + " input and " + std::to_string(p.g.og()) +
             " output channels per group (needs 1 and 1)";
    if (std::string why = cuda_stream::phase_limits_reason(p.g); !why.empty()) return why;
    return std::nullopt;
  }

  std::size_t workspace_bytes(const core::Problem& p) const override {
    if (p.dir != core::Direction::bwd_weights) return 0;
    // Either kernel may run (the tiled one needs 16-byte aligned views, known only at run time): room for both.
    const auto w = cuda_stream::wgrad_plan(p);
    return std::max(static_cast<std::size_t>(w.chunks * w.row_len) * sizeof(float),
                    cuda_stream::dw_tiled_enabled() ? cuda_stream::dw_workspace_bytes(p) : std::size_t{0});
  }

  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const ExecContext& ctx) const override {
    return cuda_backend::run_by_direction(
        name(), p, ctx, workspace, workspace_bytes(p), [&](cudaStream_t s) { return cuda_stream::run_fwd(p, a, s); },
        [&](cudaStream_t s) { return cuda_stream::run_bwd_data(p, a, s); },
        [&](cudaStream_t s) { return cuda_stream::run_bwd_weights(p, a, workspace, s); });
  }
};

}  // namespace

const Algorithm* cuda_stream_depthwise_algorithm() { return cuda_backend::single_instance<CudaStreamDepthwise>(); }

}  // namespace tconv::registry
