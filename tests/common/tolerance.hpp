// The per-precision tolerance table for comparing an algorithm with cpu_ref_f64 on random data
// (design §4.1; the same table with its reasoning is in docs/tolerances.md — keep the two in step).
//
// Contract it relies on (core/dtype.hpp, core/problem.hpp): every algorithm rounds its multiply inputs with
// core::round_input (RNE) exactly as the reference does, so the only differences are
//   (1) how the K products of one output are rounded and summed in float32 (any order, blocking, FMA), and
//   (2) the final rounding of the result to the output type.
// (1) is bounded rigorously (Higham, γ_K) relative to the magnitude M = Σ|products| of that output, which
// the tests obtain by running the reference on the absolute values of all inputs:
//     |got − ref| ≤ rel·M + out_ulps·ulp_act(max(|got|, |ref|))
// A missing, doubled or misplaced tap changes an output by about M/K or more, well above rel·M for the
// reduction lengths the tests use (K ≤ a few thousand); the exact small-integer tests catch those with zero
// tolerance anyway.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/dtype.hpp"
#include "tconv/types.hpp"

namespace tconv::testing {

struct Tolerance {
  double rel = 0;       // bound on |got − ref| / M
  double out_ulps = 1;  // ulps of the output type at the result
};

// K = the number of terms summed into one output (an upper bound is fine).
inline Tolerance tolerance_for(Precision p, int64_t K) {
  const double u = std::ldexp(1.0, -24);  // float32 unit roundoff
  const double k = static_cast<double>(std::max<int64_t>(K, 1));
  switch (p) {
    // fp32: each product a·b of two float32 values is rounded once (u) unless fused, and K − 1 additions
    // each add at most u of the running magnitude: γ_{K+1} ≈ (K + 1)·u.
    case Precision::fp32: return {(k + 1) * u * 1.01, 1};
    // tf32: 11-bit significands, the product needs 22 bits: exact in float32. Only the additions err: K·u.
    case Precision::tf32: return {k * u * 1.01, 1};
    // bf16: 8-bit significands, 16-bit products: exact in float32. Only the additions err: K·u.
    case Precision::bf16: return {k * u * 1.01, 1};
    // fp16: 11-bit significands, 22-bit products (subnormal inputs: fewer bits): exact in float32. K·u.
    case Precision::fp16: return {k * u * 1.01, 1};
  }
  return {(k + 1) * u, 1};
}

// One unit in the last place of `t` at magnitude |v| (the spacing just above |v|; subnormal spacing
// near 0). A result and the reference may round to neighbouring values of the output type.
inline double ulp_of(DataType t, double v) {
  const double a = std::fabs(v);
  int mant_bits = 24, min_exp = -126;
  if (t == DataType::float16) { mant_bits = 11; min_exp = -14; }
  if (t == DataType::bfloat16) { mant_bits = 8; min_exp = -126; }
  int e = 0;
  if (a > 0) { std::frexp(a, &e); e -= 1; }  // a = 1.x · 2^e
  e = std::max(e, min_exp);
  return std::ldexp(1.0, e - (mant_bits - 1));
}

// The bound for one output element: ref and got as stored, M its magnitude, t the output type. For 16-bit
// outputs the reference rounds twice (double → float32 → t), hence the extra float32 ulp.
inline double bound(const Tolerance& tol, double ref, double got, double magnitude, DataType t) {
  const double m = std::max(std::fabs(ref), std::fabs(got));
  return tol.rel * magnitude + tol.out_ulps * ulp_of(t, m) + (t == DataType::float32 ? 0.0 : ulp_of(DataType::float32, m));
}

}  // namespace tconv::testing
