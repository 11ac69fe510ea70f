// CPU backend checks beyond the registry-wide kernel suite (tests/kernels), whose problems are small:
// here the shapes are large enough that the optimised algorithms cut them into several chunks (igemm pixel
// chunks, several weight-gradient pixel chunks, several column panels, groups), which is where blocking and
// the deterministic reduction order could go wrong.
//   LargeShapesExact        integer data, zero tolerance vs cpu_ref_f64, windowed (strided) views, poison
//   LargeShapesRandom       random data within the tolerance table
//   ThreadCountInvariance   1, 2, 3 and 5 threads give bit-identical results
//   HeuristicPicksOptimised registry::choose picks an optimised algorithm (not the reference) per direction
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/cases.hpp"
#include "registry/algorithm.hpp"

namespace tconv::testing {
namespace {

// Scaled-down suite layers (same kernel/stride/padding/dilation/groups), big enough for several chunks.
std::vector<Problem> large_problems(Direction dir) {
  struct L { int64_t n, ci, co, g, h, w, k, s, pad, opad, dil; };
  const L ls[] = {
      {3, 40, 36, 1, 6, 5, 4, 2, 1, 0, 1},     // dcgan-like, panels with tails (36 = 32 + 4)
      {1, 33, 70, 1, 23, 21, 2, 2, 0, 0, 1},   // unet-like, 1×1 phases
      {1, 7, 5, 1, 30, 28, 16, 8, 4, 0, 1},    // fcn-like: kernel 16, stride 8
      {2, 56, 1, 1, 20, 18, 9, 3, 4, 2, 1},    // fsrcnn-like: one output channel, output padding
      {1, 64, 48, 4, 9, 11, 3, 2, 0, 0, 1},    // grouped
      {2, 48, 48, 48, 17, 15, 4, 2, 1, 0, 1},  // depthwise
      {2, 24, 20, 1, 19, 17, 3, 2, 2, 1, 2},   // dilated, output padding
  };
  std::vector<Problem> v;
  for (const L& l : ls) {
    Problem p;
    p.dir = dir;
    Geometry& g = p.g;
    g.n = l.n; g.c_in = l.ci; g.c_out = l.co; g.groups = l.g; g.h_in = l.h; g.w_in = l.w;
    g.kh = g.kw = l.k; g.stride_h = g.stride_w = l.s; g.pad_h = g.pad_w = l.pad; g.dil_h = g.dil_w = l.dil;
    g.h_out = Geometry::out_size(l.h, l.k, l.s, l.dil, l.pad, l.opad);
    g.w_out = Geometry::out_size(l.w, l.k, l.s, l.dil, l.pad, l.opad);
    p.with_bias = dir != Direction::bwd_data;
    v.push_back(p);
    if (dir == Direction::bwd_weights) {  // also accumulate into existing gradients
      p.accumulate = true;
      v.push_back(p);
    }
  }
  return v;
}

const registry::Algorithm& chosen(const Problem& p) {
  const registry::Choice c = registry::choose(p, DeviceKind::cpu);
  EXPECT_NE(c.algorithm, nullptr) << c.reason;
  return *c.algorithm;
}

class CpuLarge : public ::testing::TestWithParam<Direction> {};

TEST_P(CpuLarge, LargeShapesExact) {
  std::mt19937_64 rng(101 + static_cast<int>(GetParam()));
  for (const Problem& p : large_problems(GetParam())) {
    const registry::Algorithm& alg = chosen(p);
    const Case c = make_case(p, Fill::integers, /*windowed=*/true, rng);
    const Outputs got = run(alg, c, 2);
    ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
    EXPECT_EQ(check_footprint(c, got), "") << alg.name() << " " << p.describe();
    EXPECT_EQ(compare_exact(c, run(reference(), c, 2), got), "") << alg.name();
  }
}

TEST_P(CpuLarge, LargeShapesRandom) {
  std::mt19937_64 rng(202 + static_cast<int>(GetParam()));
  for (Problem p : large_problems(GetParam())) {
    for (DataType t : {DataType::float32, DataType::bfloat16}) {
      p.act_type = t;
      p.precision = t == DataType::float32 ? Precision::fp32 : Precision::bf16;
      const registry::Algorithm& alg = chosen(p);
      const Case c = make_case(p, Fill::random, /*windowed=*/false, rng);
      const Outputs got = run(alg, c, 2);
      ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
      EXPECT_EQ(compare_to_reference(c, got), "") << alg.name();
    }
  }
}

TEST_P(CpuLarge, ThreadCountInvariance) {
  std::mt19937_64 rng(303 + static_cast<int>(GetParam()));
  for (const Problem& p : large_problems(GetParam())) {
    const registry::Algorithm& alg = chosen(p);
    const Case c = make_case(p, Fill::random, /*windowed=*/true, rng);
    const Outputs one = run(alg, c, 1);
    ASSERT_TRUE(one.status.ok()) << one.status.message;
    for (int threads : {2, 3, 5}) {
      const Outputs o = run(alg, c, threads);
      ASSERT_TRUE(o.status.ok()) << o.status.message;
      EXPECT_EQ(compare_exact(c, one, o), "") << alg.name() << " with " << threads << " threads vs 1";
    }
  }
}

TEST_P(CpuLarge, HeuristicPicksOptimised) {
  for (const Problem& p : large_problems(GetParam()))
    EXPECT_NE(chosen(p).name(), "cpu_ref_f64") << p.describe() << " fell back to the reference";
}

INSTANTIATE_TEST_SUITE_P(Cpu, CpuLarge,
                         ::testing::Values(Direction::fwd, Direction::bwd_data, Direction::bwd_weights),
                         [](const ::testing::TestParamInfo<Direction>& i) { return std::string(core::to_string(i.param)); });

}  // namespace
}  // namespace tconv::testing
