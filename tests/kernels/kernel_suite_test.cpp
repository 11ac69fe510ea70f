// The suite every registered CPU algorithm runs through (design §4.1–4.2). Tests are parameterised over
// registry::algorithms(DeviceKind::cpu) × direction, so an algorithm is tested the moment it is registered:
//   ExactIntegers        small-integer data (exact float32 sums) over every shape class, ZERO tolerance
//                        against cpu_ref_f64, with poisoned windowed outputs (footprint check)
//   SpecWorked1D         the spec's worked 1-D vectors (a.5.4, a.7.3) in canonical form, both axes
//   RandomWithinTolerance random data vs the reference under tests/common/tolerance.hpp
//   Deterministic        two runs bit-identical; 1 vs 2 threads bit-identical
//   AdjointIdentities    <fwd(x), dy> = <x, bwd_data(dy)> = <W, bwd_weights(x, dy)> in float64 (exact data)
// An algorithm that declines a problem is skipped on it (its decline reason must be non-empty); the
// reference must take everything.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "common/cases.hpp"
#include "core/mps_geometry.hpp"
#include "registry/algorithm.hpp"

namespace tconv::testing {
namespace {

struct Param {
  std::string algorithm;
  Direction dir;
};

void PrintTo(const Param& p, std::ostream* os) { *os << p.algorithm << " " << core::to_string(p.dir); }

std::vector<Param> all_params() {
  std::vector<Param> v;
  for (const registry::Algorithm* a : registry::algorithms(DeviceKind::cpu))
    for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights})
      v.push_back({std::string(a->name()), d});
  return v;
}

std::string param_name(const ::testing::TestParamInfo<Param>& i) {
  return i.param.algorithm + "_" + core::to_string(i.param.dir);
}

uint64_t seed_of(const std::string& s, uint64_t salt) {
  return std::hash<std::string>{}(s) ^ (salt * 0x9e3779b97f4a7c15ull);
}

// True if the algorithm takes the problem; otherwise records that its reason is non-empty.
bool takes(const registry::Algorithm& alg, const Problem& p) {
  const auto why = alg.decline_reason(p);
  if (!why) return true;
  EXPECT_FALSE(why->empty()) << alg.name() << " declines " << p.describe() << " without a reason";
  EXPECT_NE(alg.name(), "cpu_ref_f64") << "the reference must take every valid problem: " << p.describe();
  return false;
}

class KernelSuite : public ::testing::TestWithParam<Param> {
 protected:
  const registry::Algorithm& alg() const { return *registry::find(GetParam().algorithm); }
  Direction dir() const { return GetParam().dir; }
};

TEST_P(KernelSuite, ExactIntegers) {
  std::mt19937_64 rng(seed_of(GetParam().algorithm, 1 + static_cast<uint64_t>(dir())));
  GenOptions opt;
  opt.dir = dir();
  opt.neuron = true;
  opt.exact_neurons = true;
  int ran = 0;
  for (ShapeClass sc : all_shape_classes()) {
    SCOPED_TRACE(to_string(sc));
    for (int i = 0; i < 10; ++i) {
      const Problem p = random_problem(rng, sc, opt);
      if (!takes(alg(), p)) continue;
      const Case c = make_case(p, Fill::integers, /*windowed=*/i % 3 != 0, rng);
      const Outputs got = run(alg(), c, 2);
      ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
      const std::string fp = check_footprint(c, got);
      ASSERT_TRUE(fp.empty()) << p.describe() << ": " << fp;
      const std::string cmp = compare_exact(c, run(reference(), c, 1), got);
      ASSERT_TRUE(cmp.empty()) << cmp;
      ++ran;
    }
  }
  RecordProperty("cases", ran);
}

// Spec a.5.4 / a.7.3: Win = 2, sX = 2, kW = 3, Tx = 0, Wout = 3. Canonical pad from the total offset.
TEST_P(KernelSuite, SpecWorked1D) {
  std::mt19937_64 rng(seed_of(GetParam().algorithm, 7));
  for (bool vertical : {false, true}) {
    for (bool bias : {false, true}) {
      SCOPED_TRACE(vertical ? "vertical" : "horizontal");
      Problem p;
      p.dir = dir();
      p.with_bias = bias && dir() != Direction::bwd_data;
      const int64_t pad = core::mps::fwd_pad_from_total_offset(/*T=*/0, /*k=*/3, /*r=*/1);
      ASSERT_EQ(pad, 1);
      Geometry& g = p.g;
      (vertical ? g.h_in : g.w_in) = 2;
      (vertical ? g.h_out : g.w_out) = 3;
      (vertical ? g.kh : g.kw) = 3;
      (vertical ? g.stride_h : g.stride_w) = 2;
      (vertical ? g.pad_h : g.pad_w) = pad;
      if (!takes(alg(), p)) continue;
      Case c = make_case(p, Fill::integers, /*windowed=*/true, rng);
      auto X = [&](int64_t i) { return static_cast<double>(vertical ? c.src_side.get(0, i, 0, 0) : c.src_side.get(0, 0, i, 0)); };
      auto gY = [&](int64_t i) { return static_cast<double>(vertical ? c.dst_side.get(0, i, 0, 0) : c.dst_side.get(0, 0, i, 0)); };
      auto W = [&](int64_t q) { return static_cast<double>(c.wei[static_cast<size_t>(q)]); };
      const double b = p.with_bias ? c.bias[0] : 0.0;
      const Outputs o = run(alg(), c, 2);
      ASSERT_TRUE(o.status.ok()) << o.status.message;
      EXPECT_EQ(check_footprint(c, o), "");
      std::vector<double> want;
      if (dir() == Direction::fwd) {
        want = {W(1) * X(0) + b, W(0) * X(0) + W(2) * X(1) + b, W(1) * X(1) + b};
      } else if (dir() == Direction::bwd_data) {
        want = {W(1) * gY(0) + W(0) * gY(1), W(2) * gY(1) + W(1) * gY(2)};
      } else {
        want = {gY(1) * X(0), gY(0) * X(0) + gY(2) * X(1), gY(1) * X(1)};
        const double prev_b = p.accumulate ? c.diff_bias[0] : 0.0;
        if (p.with_bias) want.push_back(prev_b + gY(0) + gY(1) + gY(2));
      }
      const std::vector<float> got = output_values(c, o);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(static_cast<double>(got[i]), want[i]) << "output " << i;
    }
  }
}

TEST_P(KernelSuite, RandomWithinTolerance) {
  std::mt19937_64 rng(seed_of(GetParam().algorithm, 11 + static_cast<uint64_t>(dir())));
  GenOptions opt;
  opt.dir = dir();
  opt.neuron = true;
  opt.exact_neurons = false;
  for (ShapeClass sc : all_shape_classes()) {
    SCOPED_TRACE(to_string(sc));
    for (int i = 0; i < 8; ++i) {
      const Problem p = random_problem(rng, sc, opt);
      if (!takes(alg(), p)) continue;
      const Case c = make_case(p, Fill::random, /*windowed=*/i % 2 == 0, rng);
      const Outputs got = run(alg(), c, 2);
      ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
      const std::string fp = check_footprint(c, got);
      ASSERT_TRUE(fp.empty()) << p.describe() << ": " << fp;
      const std::string cmp = compare_to_reference(c, got);
      ASSERT_TRUE(cmp.empty()) << cmp;
    }
  }
}

TEST_P(KernelSuite, Deterministic) {
  if (!alg().deterministic()) GTEST_SKIP() << alg().name() << " declares itself nondeterministic";
  std::mt19937_64 rng(seed_of(GetParam().algorithm, 23 + static_cast<uint64_t>(dir())));
  GenOptions opt;
  opt.dir = dir();
  opt.max_macs = 200000;
  for (ShapeClass sc : {ShapeClass::batch1, ShapeClass::channels, ShapeClass::groups, ShapeClass::stride,
                        ShapeClass::half_types}) {
    SCOPED_TRACE(to_string(sc));
    for (int i = 0; i < 4; ++i) {
      const Problem p = random_problem(rng, sc, opt);
      if (!takes(alg(), p)) continue;
      const Case c = make_case(p, Fill::random, /*windowed=*/true, rng);
      const Outputs a = run(alg(), c, 2), b = run(alg(), c, 2), one = run(alg(), c, 1);
      ASSERT_TRUE(a.status.ok() && b.status.ok() && one.status.ok());
      EXPECT_EQ(compare_exact(c, a, b), "") << "two runs with 2 threads differ";
      EXPECT_EQ(compare_exact(c, a, one), "") << "1 thread and 2 threads differ";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, KernelSuite, ::testing::ValuesIn(all_params()), param_name);

// ---------------------------------------------------------------------------------------------------------
// Adjoint identities, per algorithm: they hold for the true operators whatever the reference says, so they
// catch a wrong reference (and a wrong algorithm) independently of the comparisons above.

class AdjointSuite : public ::testing::TestWithParam<std::string> {};

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

// Each pass runs on the algorithm under test when it takes it, otherwise on the reference (algorithms may
// cover one direction only); the test is skipped if the algorithm took no pass at all.
TEST_P(AdjointSuite, AdjointIdentities) {
  const registry::Algorithm& alg = *registry::find(GetParam());
  std::mt19937_64 rng(seed_of(GetParam(), 31));
  GenOptions opt;
  opt.bias = false;
  opt.accumulate = false;
  int taken = 0;
  for (ShapeClass sc : all_shape_classes()) {
    SCOPED_TRACE(to_string(sc));
    for (int i = 0; i < 6; ++i) {
      Problem p = random_problem(rng, sc, opt);
      // Integers with float32 outputs: every value below is exact, so the identities hold exactly.
      p.act_type = DataType::float32;
      Problem pd = p, pw = p;
      pd.dir = Direction::bwd_data;
      pw.dir = Direction::bwd_weights;
      const bool tf = takes(alg, p), td = takes(alg, pd), tw = takes(alg, pw);
      taken += tf + td + tw;
      const Case cf = make_case(p, Fill::integers, true, rng);  // x, W
      Case cd = make_case(pd, Fill::integers, true, rng);        // dy
      cd.wei = cf.wei;
      Case cw = make_case(pw, Fill::integers, true, rng);
      cw.src_side = cf.src_side;
      cw.dst_side = cd.dst_side;
      const Outputs y = run(tf ? alg : reference(), cf, 2), dx = run(td ? alg : reference(), cd, 2),
                    dw = run(tw ? alg : reference(), cw, 2);
      ASSERT_TRUE(y.status.ok() && dx.status.ok() && dw.status.ok());
      const double lhs = dot(output_values(cf, y), cd.dst_side.values());
      const double mid = dot(cf.src_side.values(), output_values(cd, dx));
      const double rhs = dot(cf.wei, output_values(cw, dw));
      EXPECT_EQ(lhs, mid) << p.describe() << ": <fwd(x), dy> != <x, bwd_data(dy)>";
      EXPECT_EQ(lhs, rhs) << p.describe() << ": <fwd(x), dy> != <W, bwd_weights(x, dy)>";
    }
  }
  if (taken == 0) GTEST_SKIP() << alg.name() << " took none of the generated problems";
}

std::vector<std::string> algorithm_names() {
  std::vector<std::string> v;
  for (const registry::Algorithm* a : registry::algorithms(DeviceKind::cpu)) v.emplace_back(a->name());
  return v;
}

INSTANTIATE_TEST_SUITE_P(Registry, AdjointSuite, ::testing::ValuesIn(algorithm_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(Registry, ReferenceIsRegisteredLastOnCpu) {
  const auto& cpu = registry::algorithms(DeviceKind::cpu);
  ASSERT_FALSE(cpu.empty());
  EXPECT_EQ(cpu.back()->name(), "cpu_ref_f64");
  EXPECT_EQ(registry::find("cpu_ref_f64"), cpu.back());
  EXPECT_TRUE(cpu.back()->deterministic());
}

}  // namespace
}  // namespace tconv::testing
