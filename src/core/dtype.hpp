// Scalar conversions and the input rounding of each precision mode.
// Bit-level, round-to-nearest-even, NaN-preserving; header-only so every kernel inlines them. Compiled by nvcc
// they are __host__ __device__, so CUDA kernels convert exactly as the CPU does (cuda/training_math.hpp uses
// them rather than the CUDA intrinsics, whose NaN encodings differ).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "tconv/types.hpp"

#if defined(__CUDACC__)
#define TCONV_DTYPE_FN __host__ __device__ __forceinline__
#else
#define TCONV_DTYPE_FN inline
#endif

namespace tconv::core {

TCONV_DTYPE_FN uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
TCONV_DTYPE_FN float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN.
TCONV_DTYPE_FN uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
TCONV_DTYPE_FN float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

// float32 -> IEEE binary16 bits, round to nearest even, with subnormals, overflow to inf, NaN kept.
TCONV_DTYPE_FN uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t absu = u & 0x7fffffffu;
  if (absu > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((absu >> 13) & 0x3ffu));
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (absu < 0x38800000u) {  // result is subnormal (or zero) in half
    // value = absu as float; half subnormal unit is 2^-24.
    const float a = bits_f32(absu);
    const float scaled = a * 16777216.0f;  // exact: times 2^24
    // round to nearest even integer (rint does so in the default rounding mode, as nearbyint does)
#if defined(__CUDA_ARCH__)
    const float r = rintf(scaled);
#else
    const float r = std::nearbyint(scaled);
#endif
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
  }
  uint32_t mant = absu & 0x7fffffu;
  uint32_t exp = (absu >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h += 1;  // carries into exponent correctly
  return static_cast<uint16_t>(sign | h);
}
TCONV_DTYPE_FN float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
  return bits_f32(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

// float32 -> TF32 (10-bit mantissa kept in a float), round to nearest even as the tensor cores' cvt.rna
// would not: we use RNE so CPU emulation is exact and documented (docs/precision.md).
TCONV_DTYPE_FN float round_tf32(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) >= 0x7f800000u) return f;
  u += 0xfffu + ((u >> 13) & 1u);
  u &= 0xffffe000u;
  return bits_f32(u);
}

// The value a precision mode multiplies with, for a float32 input.
TCONV_DTYPE_FN float round_input(float v, Precision p) {
  switch (p) {
    case Precision::fp32: return v;
    case Precision::tf32: return round_tf32(v);
    case Precision::bf16: return bf16_to_f32(f32_to_bf16(v));
    case Precision::fp16: return f16_to_f32(f32_to_f16(v));
  }
  return v;
}

// Load/store one element of a tensor stored as `t` (float32, float16 or bfloat16).
TCONV_DTYPE_FN float load_as_f32(const void* base, int64_t index, DataType t) {
  switch (t) {
    case DataType::float16: return f16_to_f32(static_cast<const uint16_t*>(base)[index]);
    case DataType::bfloat16: return bf16_to_f32(static_cast<const uint16_t*>(base)[index]);
    case DataType::uint8: return static_cast<float>(static_cast<const uint8_t*>(base)[index]);
    case DataType::float32: default: return static_cast<const float*>(base)[index];
  }
}
TCONV_DTYPE_FN void store_from_f32(void* base, int64_t index, DataType t, float v) {
  switch (t) {
    case DataType::float16: static_cast<uint16_t*>(base)[index] = f32_to_f16(v); break;
    case DataType::bfloat16: static_cast<uint16_t*>(base)[index] = f32_to_bf16(v); break;
    case DataType::uint8: static_cast<uint8_t*>(base)[index] = static_cast<uint8_t>(v); break;
    case DataType::float32: default: static_cast<float*>(base)[index] = v; break;
  }
}

}  // namespace tconv::core
