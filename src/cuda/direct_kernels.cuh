// Shared device code of the direct kernel family (cuda_direct): element access for each activation type,
// the input rounding of each precision mode, the kernel-side geometry and the per-direction launchers.
//
// The rounding functions reproduce core/dtype.hpp bit for bit (round to nearest even, as the float64
// reference does), so that a kernel and the reference multiply exactly the same values: the only difference
// left between them is float32 against float64 accumulation and the final rounding.
// All index arithmetic is 64-bit: tensors may have more than 2^31 elements.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "core/problem.hpp"
#include "core/status.hpp"

namespace tconv::cuda_direct {

// ---- element access -------------------------------------------------------------------------------------
template <DataType T> struct Act;
template <> struct Act<DataType::float32> {
  using type = float;
  static __device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
  static __device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
};
template <> struct Act<DataType::float16> {
  using type = __half;
  static __device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }
  static __device__ __forceinline__ void store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
};
template <> struct Act<DataType::bfloat16> {
  using type = __nv_bfloat16;
  static __device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
  static __device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
};

// ---- input rounding (core::round_input on the device) ---------------------------------------------------
template <Precision P>
__device__ __forceinline__ float round_in(float v) {
  if constexpr (P == Precision::fp32) {
    return v;
  } else if constexpr (P == Precision::tf32) {
    uint32_t u = __float_as_uint(v);
    if ((u & 0x7fffffffu) >= 0x7f800000u) return v;  // inf / NaN unchanged
    u += 0xfffu + ((u >> 13) & 1u);                   // round to nearest even at bit 13
    return __uint_as_float(u & 0xffffe000u);
  } else if constexpr (P == Precision::bf16) {
    return __bfloat162float(__float2bfloat16_rn(v));
  } else {
    return __half2float(__float2half_rn(v));
  }
}

// The fused neuron of core/neuron.hpp in float32 on the device (that header's template is host-only).
__device__ __forceinline__ float neuron_dev(NeuronType t, float a, float b, float c, float x) {
  switch (t) {
    case NeuronType::none: return x;
    case NeuronType::relu: return x >= 0.f ? x : a * x;
    case NeuronType::linear: return a * x + b;
    case NeuronType::sigmoid: return 1.f / (1.f + expf(-x));
    case NeuronType::hard_sigmoid: { float y = a * x + b; return y < 0.f ? 0.f : (y > 1.f ? 1.f : y); }
    case NeuronType::tanh: return a * tanhf(b * x);
    case NeuronType::absolute: return fabsf(x);
    case NeuronType::soft_plus: return a * log1pf(expf(b * x));
    case NeuronType::soft_sign: return x / (1.f + fabsf(x));
    case NeuronType::elu: return x >= 0.f ? x : a * (expf(x) - 1.f);
    case NeuronType::relu_n: { float y = x >= 0.f ? x : a * x; return y < b ? y : b; }
    case NeuronType::power: return powf(a * x + b, c);
    case NeuronType::exponential: return c > 0.f ? powf(c, a * x + b) : expf(a * x + b);
    case NeuronType::logarithm: return c > 0.f ? logf(a * x + b) / logf(c) : logf(a * x + b);
    case NeuronType::gelu: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
  }
  return x;
}

// ---- geometry as the kernels see it ---------------------------------------------------------------------
struct KGeom {
  int64_t n, c_in, c_out, groups, ig, og;
  int64_t h_in, w_in, h_out, w_out, kh, kw, sh, sw, dh, dw, ph, pw;
};
inline KGeom kgeom(const core::Geometry& g) {
  return KGeom{g.n,    g.c_in, g.c_out, g.groups, g.ig(),    g.og(),     g.h_in,  g.w_in,   g.h_out,
               g.w_out, g.kh,  g.kw,    g.stride_h, g.stride_w, g.dil_h, g.dil_w, g.pad_h, g.pad_w};
}
struct KView {
  void* data;
  int64_t sn, sh, sw;
};
inline KView kview(const core::TensorView& v) { return KView{v.data, v.sn, v.sh, v.sw}; }

// Floor division for possibly negative numerators (positive divisor).
__host__ __device__ __forceinline__ int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Blocks for a 1-D grid-stride launch over `count` items (capped; the kernels loop over the rest).
inline unsigned grid_for(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  const int64_t cap = int64_t{1} << 20;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Calls f(Act tag, Precision tag) with compile-time constants for the problem's types.
template <class F>
core::Status dispatch_types(DataType act, Precision prec, F&& f) {
  auto with_prec = [&](auto act_c) -> core::Status {
    switch (prec) {
      case Precision::fp32: return f(act_c, std::integral_constant<Precision, Precision::fp32>{});
      case Precision::tf32: return f(act_c, std::integral_constant<Precision, Precision::tf32>{});
      case Precision::bf16: return f(act_c, std::integral_constant<Precision, Precision::bf16>{});
      case Precision::fp16: return f(act_c, std::integral_constant<Precision, Precision::fp16>{});
    }
    return core::unsupported("unknown precision mode");
  };
  switch (act) {
    case DataType::float32: return with_prec(std::integral_constant<DataType, DataType::float32>{});
    case DataType::float16: return with_prec(std::integral_constant<DataType, DataType::float16>{});
    case DataType::bfloat16: return with_prec(std::integral_constant<DataType, DataType::bfloat16>{});
    default: break;
  }
  return core::unsupported("activation type not supported by cuda_direct");
}

// ---- launchers (one file each) --------------------------------------------------------------------------
// fwd: workspace holds the weights rounded and transposed to [kh][kw][Ig][c_out] (wei_elements floats).
std::size_t fwd_workspace_bytes(const core::Problem& p);
core::Status launch_fwd(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t s);
core::Status launch_bwd_data(const core::Problem& p, const core::Args& a, cudaStream_t s);
// bwd_weights: two-pass split-K; workspace holds the per-chunk partial sums.
std::size_t bwd_weights_workspace_bytes(const core::Problem& p);
core::Status launch_bwd_weights(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t s);

}  // namespace tconv::cuda_direct
