// core/dtype.hpp conversions: exhaustive float16 round trip, RNE against a double-based computation written
// here (independent of the bit tricks in dtype.hpp), bfloat16 and TF32 tie cases, NaN/inf/subnormal handling.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "core/dtype.hpp"

namespace tconv::core {
namespace {

// Round |a| (finite, > 0) to a binary format with `digits` significand bits (incl. the implicit one) and
// minimum normal exponent `emin`, nearest-even, in double: the value of a float is exact in double and
// so is a/quantum, so std::nearbyint (default round-to-nearest-even) does the rounding exactly.
double rne_value(double a, int digits, int emin) {
  int e;
  std::frexp(a, &e);
  e -= 1;  // a = 1.x · 2^e
  if (e < emin) e = emin;
  const double quantum = std::ldexp(1.0, e - (digits - 1));
  return std::nearbyint(a / quantum) * quantum;
}

// Expected float value of converting f to a format, with overflow to ±inf above max_finite.
double expected_rounding(float f, int digits, int emin, double max_finite) {
  const double a = std::fabs(static_cast<double>(f));
  double r = a == 0 ? 0.0 : rne_value(a, digits, emin);
  if (r > max_finite) r = std::numeric_limits<double>::infinity();
  return std::signbit(f) ? -r : r;
}

constexpr double kHalfMax = 65504.0;
const double kBf16Max = std::ldexp(2.0 - std::ldexp(1.0, -7), 127);
const double kTf32Max = std::ldexp(2.0 - std::ldexp(1.0, -10), 127);

TEST(Dtype, HalfRoundTripIsExhaustivelyExact) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = f16_to_f32(bits);
    const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    // Decode independently.
    double want;
    if (exp == 0) want = std::ldexp(static_cast<double>(mant), -24);
    else if (exp == 31) want = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    else want = std::ldexp(1.0 + mant / 1024.0, static_cast<int>(exp) - 15);
    if (h & 0x8000) want = -want;
    if (exp == 31 && mant != 0) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      const uint16_t back = f32_to_f16(f);
      ASSERT_EQ(back & 0x7c00, 0x7c00) << std::hex << h;
      ASSERT_NE(back & 0x3ff, 0) << std::hex << h;        // still a NaN
      ASSERT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;  // sign kept
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), want) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    ASSERT_EQ(f32_to_f16(f), bits) << std::hex << h;
  }
}

void check_half(float f) {
  const uint16_t h = f32_to_f16(f);
  const float got = f16_to_f32(h);
  if (std::isnan(f)) {
    ASSERT_TRUE(std::isnan(got)) << f;
    return;
  }
  const double want = expected_rounding(f, 11, -14, kHalfMax);
  ASSERT_EQ(static_cast<double>(got), want) << std::hexfloat << f;
  ASSERT_EQ(std::signbit(got), std::signbit(f)) << f;
}

TEST(Dtype, FloatToHalfRoundsToNearestEven) {
  std::mt19937_64 rng(1);
  // Random bit patterns over every exponent (NaN, inf, huge, tiny included).
  for (int i = 0; i < 300000; ++i) check_half(bits_f32(static_cast<uint32_t>(rng())));
  // Concentrated on half's range: normal, subnormal, overflow boundary.
  for (int i = 0; i < 300000; ++i) {
    const uint32_t exp = 127 - 27 + static_cast<uint32_t>(rng() % 45);  // 2^-27 .. 2^17
    const uint32_t u = (static_cast<uint32_t>(rng()) & 0x807fffffu) | (exp << 23);
    check_half(bits_f32(u));
  }
  // Exact ties and their neighbours between consecutive half values.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const double lo = f16_to_f32(static_cast<uint16_t>(h)), hi = h + 1 < 0x7c00 ? f16_to_f32(static_cast<uint16_t>(h + 1)) : 65536.0;
    const float tie = static_cast<float>((lo + hi) / 2);
    for (float f : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 1e30f)}) {
      check_half(f);
      check_half(-f);
    }
  }
  check_half(65519.99f);  // rounds to 65504
  check_half(65520.0f);   // tie at the top: rounds to inf
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie with 0: even
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 quanta: tie to even 2
}

TEST(Dtype, Bfloat16RoundsToNearestEven) {
  const float one = 1.0f;
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(one + std::ldexp(1.0f, -8))), 1.0f);  // tie: even (down)
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(one + 3 * std::ldexp(1.0f, -8))), one + std::ldexp(1.0f, -6));  // tie: even (up)
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(one + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20))), one + std::ldexp(1.0f, -7));
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // overflows to inf
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(bits_f32(0x7f800001u)))));  // signalling NaN stays NaN
  std::mt19937_64 rng(2);
  for (int i = 0; i < 300000; ++i) {
    const float f = bits_f32(static_cast<uint32_t>(rng()));
    if (std::isnan(f) || std::isinf(f)) continue;
    const double want = expected_rounding(f, 8, -126, kBf16Max);
    ASSERT_EQ(static_cast<double>(bf16_to_f32(f32_to_bf16(f))), want) << std::hexfloat << f;
    ASSERT_EQ(static_cast<double>(round_input(f, Precision::bf16)), want);
  }
}

TEST(Dtype, Tf32RoundsToNearestEven) {
  const float one = 1.0f;
  EXPECT_EQ(round_tf32(one + std::ldexp(1.0f, -11)), 1.0f);
  EXPECT_EQ(round_tf32(one + 3 * std::ldexp(1.0f, -11)), one + std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(round_tf32(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isinf(round_tf32(std::numeric_limits<float>::infinity())));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300000; ++i) {
    const float f = bits_f32(static_cast<uint32_t>(rng()));
    if (std::isnan(f) || std::isinf(f)) continue;
    const double want = expected_rounding(f, 11, -126, kTf32Max);
    ASSERT_EQ(static_cast<double>(round_tf32(f)), want) << std::hexfloat << f;
    ASSERT_EQ(static_cast<double>(round_input(f, Precision::tf32)), want);
  }
}

TEST(Dtype, LoadStoreAndRoundInput) {
  uint16_t h[2] = {};
  store_from_f32(h, 1, DataType::float16, 0.1f);
  EXPECT_EQ(h[1], f32_to_f16(0.1f));
  EXPECT_EQ(load_as_f32(h, 1, DataType::float16), f16_to_f32(f32_to_f16(0.1f)));
  store_from_f32(h, 0, DataType::bfloat16, 3.3f);
  EXPECT_EQ(load_as_f32(h, 0, DataType::bfloat16), bf16_to_f32(f32_to_bf16(3.3f)));
  float f[1];
  store_from_f32(f, 0, DataType::float32, 0.1f);
  EXPECT_EQ(load_as_f32(f, 0, DataType::float32), 0.1f);
  EXPECT_EQ(round_input(0.1f, Precision::fp32), 0.1f);
  EXPECT_EQ(round_input(0.1f, Precision::fp16), f16_to_f32(f32_to_f16(0.1f)));
}

}  // namespace
}  // namespace tconv::core
