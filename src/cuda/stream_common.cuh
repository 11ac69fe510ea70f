// Shared pieces of the bandwidth-bound ("stream") CUDA algorithms: cuda_stream_depthwise (stream_depthwise.cu)
// and cuda_few_channels (stream_few*.cu). Layers with one channel per group, or only a few channels on one side,
// do a handful of multiply-adds per byte: a GEMM cannot fill its tiles, so these kernels instead walk the
// images once, keep the few channels' weights in shared memory, and organise the work by stride phase.
//
// Stride phases. An output row oy is reached from tap t (rotated index t = kh − 1 − q) of input row iy when
// oy + pad − dil·t = iy·stride. Writing oy + pad = r + stride·m (0 ≤ r < stride), exactly the taps with
// dil·t ≡ r (mod stride) reach the rows of residue r, and then iy = m + (r − dil·t)/stride. A PhaseDim holds,
// per residue, those taps and the offsets (r − dil·t)/stride, so kernels that gather over outputs (forward,
// weight gradient) loop over hitting taps only, with no divisibility tests. Every tap belongs to exactly one
// residue, which is what lets the weight-gradient kernels split their work by phase without overlap.
//
// Rounding. Activations are rounded with a compile-time mode R (core::round_input on the device); modes that
// are exact for the image type (bf16 images in bf16/tf32 precision, f16 images in f16/tf32, any image in fp32)
// collapse to R = fp32 so they cost nothing. Weights (float32) are rounded with the run-time mode while they
// are staged into shared memory.
//
// Weight gradients are deterministic two-pass reductions: pass 1 writes one partial row per pixel chunk (the
// chunk count depends on the problem only), pass 2 (stream_reduce.cu) adds the rows in a fixed order.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "core/problem.hpp"
#include "core/status.hpp"
#include "cuda/direct_kernels.cuh"

namespace tconv::cuda_stream {

using cuda_direct::Act;
using cuda_direct::floor_div;
using cuda_direct::KGeom;
using cuda_direct::kgeom;
using cuda_direct::KView;
using cuda_direct::kview;
using cuda_direct::neuron_dev;
using cuda_direct::round_in;

// Limits of the phase tables (kernel parameters must stay small): larger kernels or strides are declined.
constexpr int kMaxTaps = 32;
constexpr int kMaxStride = 32;

struct PhaseDim {
  int first[kMaxStride + 1];  // taps of residue r: entries first[r] .. first[r + 1] − 1
  int tap[kMaxTaps];          // rotated tap index t = k − 1 − q
  int64_t off[kMaxTaps];      // input coordinate = m + off for phase grid coordinate m
  int64_t mlo[kMaxStride];    // phase grid coordinate of the first output of residue r inside [0, out)
  int64_t cnt[kMaxStride];    // outputs of residue r
};

__host__ __device__ __forceinline__ int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

// Output coordinate of phase grid position j of residue r: r − pad + stride·(mlo[r] + j).
inline PhaseDim make_phase_dim(int64_t k, int64_t stride, int64_t dil, int64_t pad, int64_t out) {
  PhaseDim d{};
  int n = 0;
  for (int64_t r = 0; r < stride; ++r) {
    d.first[r] = n;
    for (int64_t t = 0; t < k; ++t) {
      if (floor_mod(dil * t - r, stride) != 0) continue;
      d.tap[n] = static_cast<int>(t);
      d.off[n] = (r - dil * t) / stride;  // exact
      ++n;
    }
    const int64_t mlo = -floor_div(r - pad, stride);               // ceil((pad − r) / stride)
    const int64_t mhi = floor_div(out - 1 + pad - r, stride);
    d.mlo[r] = mlo;
    d.cnt[r] = std::max<int64_t>(0, mhi - mlo + 1);
  }
  d.first[stride] = n;
  return d;
}

inline int max_taps_per_phase(const PhaseDim& d, int64_t stride) {
  int m = 0;
  for (int64_t r = 0; r < stride; ++r) m = std::max(m, d.first[r + 1] - d.first[r]);
  return m;
}
inline int64_t max_phase_count(const PhaseDim& d, int64_t stride) {
  int64_t m = 0;
  for (int64_t r = 0; r < stride; ++r) m = std::max(m, d.cnt[r]);
  return m;
}

// Why a problem's geometry does not fit the phase tables (empty: it fits).
inline std::string phase_limits_reason(const core::Geometry& g) {
  if (g.kh > kMaxTaps || g.kw > kMaxTaps)
    return "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " exceeds the phase tables' " +
           std::to_string(kMaxTaps) + " taps per dimension";
  if (g.stride_h > kMaxStride || g.stride_w > kMaxStride)
    return "stride " + std::to_string(g.stride_h) + "x" + std::to_string(g.stride_w) + " exceeds " +
           std::to_string(kMaxStride);
  if (g.dil_h * (g.kh - 1) >= (int64_t{1} << 30) || g.dil_w * (g.kw - 1) >= (int64_t{1} << 30))
    return "dilated kernel extent " + std::to_string(g.dil_h * (g.kh - 1) + 1) + "x" +
           std::to_string(g.dil_w * (g.kw - 1) + 1) + " exceeds 2^30";
  return {};
}

// ---- rounding ---------------------------------------------------------------------------------------------
__device__ __forceinline__ float round_rt(float v, Precision p) {
  switch (p) {
    case Precision::fp32: return v;
    case Precision::tf32: return round_in<Precision::tf32>(v);
    case Precision::bf16: return round_in<Precision::bf16>(v);
    case Precision::fp16: return round_in<Precision::fp16>(v);
  }
  return v;
}

// Calls f(type tag, rounding tag) with the activation rounding the problem needs (identity cases → fp32).
template <class F>
core::Status dispatch_act(DataType act, Precision prec, F&& f) {
  using DT = DataType;
  using PR = Precision;
  auto call = [&](auto t, auto r) { return f(t, r); };
  switch (act) {
    case DT::float32:
      switch (prec) {
        case PR::fp32: return call(std::integral_constant<DT, DT::float32>{}, std::integral_constant<PR, PR::fp32>{});
        case PR::tf32: return call(std::integral_constant<DT, DT::float32>{}, std::integral_constant<PR, PR::tf32>{});
        case PR::bf16: return call(std::integral_constant<DT, DT::float32>{}, std::integral_constant<PR, PR::bf16>{});
        case PR::fp16: return call(std::integral_constant<DT, DT::float32>{}, std::integral_constant<PR, PR::fp16>{});
      }
      break;
    case DT::float16:  // f16 values are exact in fp16 and tf32 (10-bit mantissa); bf16 rounds them
      if (prec == PR::bf16)
        return call(std::integral_constant<DT, DT::float16>{}, std::integral_constant<PR, PR::bf16>{});
      return call(std::integral_constant<DT, DT::float16>{}, std::integral_constant<PR, PR::fp32>{});
    case DT::bfloat16:  // bf16 values are exact in bf16 and tf32; fp16's narrower exponent rounds them
      if (prec == PR::fp16)
        return call(std::integral_constant<DT, DT::bfloat16>{}, std::integral_constant<PR, PR::fp16>{});
      return call(std::integral_constant<DT, DT::bfloat16>{}, std::integral_constant<PR, PR::fp32>{});
    default: break;
  }
  return core::unsupported("activation type not supported by the stream kernels");
}

// ---- 8-channel loads and stores ---------------------------------------------------------------------------
// 16 bytes of activations (4 float32 or 8 16-bit values) to floats, and back (the 16-bit halves of ld8_aligned and
// st8_aligned, and the tiled depthwise kernels' shared-memory vectors).
template <DataType T>
__device__ __forceinline__ void unpack16(const uint4& u, float (&v)[16 / sizeof(typename Act<T>::type)]) {
  if constexpr (T == DataType::float32) {
    v[0] = __uint_as_float(u.x);
    v[1] = __uint_as_float(u.y);
    v[2] = __uint_as_float(u.z);
    v[3] = __uint_as_float(u.w);
  } else {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 f;
      if constexpr (T == DataType::float16) {
        __half2 h;
        memcpy(&h, &w[i], 4);
        f = __half22float2(h);
      } else {
        __nv_bfloat162 h;
        memcpy(&h, &w[i], 4);
        f = __bfloat1622float2(h);
      }
      v[2 * i] = f.x;
      v[2 * i + 1] = f.y;
    }
  }
}
template <DataType T>
__device__ __forceinline__ uint4 pack16(const float (&v)[16 / sizeof(typename Act<T>::type)]) {
  if constexpr (T == DataType::float32) {
    return make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
  } else {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (T == DataType::float16) {
        const __half2 h = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
        memcpy(&w[i], &h, 4);
      } else {
        const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
        memcpy(&w[i], &h, 4);
      }
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
}

// Aligned forms: p is 16-byte aligned (host checks base pointer, strides and channel offsets).
template <DataType T>
__device__ __forceinline__ void ld8_aligned(const typename Act<T>::type* p, float (&v)[8]) {
  if constexpr (T == DataType::float32) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else {
    unpack16<T>(__ldg(reinterpret_cast<const uint4*>(p)), v);
  }
}

template <DataType T>
__device__ __forceinline__ void st8_aligned(typename Act<T>::type* p, const float (&v)[8]) {
  if constexpr (T == DataType::float32) {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    *reinterpret_cast<uint4*>(p) = pack16<T>(v);
  }
}

// Up to 8 consecutive channels: one vector access when `vec` (then count is 8), else `count` scalar ones
// (missing channels read as 0, are not written).
template <DataType T>
__device__ __forceinline__ void load8(const typename Act<T>::type* p, bool vec, int count, float (&v)[8]) {
  if (vec) {
    ld8_aligned<T>(p, v);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = i < count ? Act<T>::load(p, i) : 0.f;
  }
}
template <DataType T>
__device__ __forceinline__ void store8(typename Act<T>::type* p, bool vec, int count, const float (&v)[8]) {
  if (vec) {
    st8_aligned<T>(p, v);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i)
      if (i < count) Act<T>::store(p, i, v[i]);
  }
}

// A view allows 16-byte accesses to groups of 8 channels starting at channel offsets that are multiples of 8.
inline bool view_vec8(const core::TensorView& v, DataType t) {
  const int64_t es = static_cast<int64_t>(size_of(t));
  const auto addr = reinterpret_cast<uintptr_t>(v.data);
  return addr % 16 == 0 && (v.sn * es) % 16 == 0 && (v.sh * es) % 16 == 0 && (v.sw * es) % 16 == 0;
}

// ---- weight-gradient partial rows ---------------------------------------------------------------------------
// partial[s][0 .. E): weight-gradient sums of chunk s; partial[s][E + ph·bias_count + o]: bias sums of chunk s
// over the outputs of stride phase ph (nph phases). Pass 2 adds, in a fixed order, the `rows` partials of each
// weight entry and the rows·nph partials of each bias entry, then adds the old value when accumulating.
core::Status launch_reduce_rows(const float* partial, int64_t rows, int64_t row_len, int64_t wei_count, int64_t nph,
                                int64_t bias_count, float* diff_wei, float* diff_bias, bool accumulate,
                                cudaStream_t stream);

// Chunk count for a weight gradient: about 1024 blocks in all, at least `min_pixels` phase pixels per chunk,
// and partial rows small next to the main pass (their bytes below max(data bytes / 32, MACs / 128): a few per
// cent of a bandwidth-bound pass's traffic or of a compute-bound pass's time). Depends on the problem only,
// never on the device (determinism).
inline int64_t choose_chunks(int64_t blocks_per_chunk, int64_t row_len, int64_t max_phase_pixels, int64_t min_pixels,
                             int64_t data_bytes, int64_t macs) {
  int64_t s = std::max<int64_t>(1, (1024 + blocks_per_chunk - 1) / blocks_per_chunk);
  s = std::min<int64_t>(s, std::max<int64_t>(1, max_phase_pixels / std::max<int64_t>(1, min_pixels)));
  const int64_t cap_bytes = std::max(data_bytes / 32, macs / 128);
  s = std::min<int64_t>(s, std::max<int64_t>(1, cap_bytes / (row_len * 4)));
  return s;
}

}  // namespace tconv::cuda_stream
