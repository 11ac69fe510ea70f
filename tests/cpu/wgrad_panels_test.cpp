// cpu_gemm_bwd_weights_f32's panel form (few output pixels, at least 128×128 channels per group: every tap's
// K is one short chunk, so the work is split over output panels with diff_dst packed once) on shapes that
// take it: the registry-wide suite's problems are too small to reach it. Integer data against cpu_ref_f64 at
// zero tolerance with windowed views and a poisoned footprint, accumulation, groups, several taps per output
// pixel, bit-identical results with 1, 2 and 3 threads, and the workspace bound of the CPU backend issue.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/cases.hpp"
#include "registry/algorithm.hpp"

namespace tconv::testing {
namespace {

struct Shape {
  int64_t n, ci, co, g, h, w, k, s, pad;
};
// unet_up1 in miniature (k2 s2: one tap per output pixel), dcgan_g2-like (k4 s2 p1: four), two groups of
// 128×128, and channel counts that leave partial 12-row and 32-column panels.
const Shape kShapes[] = {
    {1, 256, 128, 1, 6, 5, 2, 2, 0},
    {2, 160, 136, 1, 4, 4, 4, 2, 1},
    {1, 256, 256, 2, 3, 4, 3, 2, 1},
    {1, 140, 130, 1, 5, 3, 3, 1, 1},
};

Problem problem_of(const Shape& l, bool accumulate) {
  Problem p;
  p.dir = Direction::bwd_weights;
  Geometry& g = p.g;
  g.n = l.n; g.c_in = l.ci; g.c_out = l.co; g.groups = l.g; g.h_in = l.h; g.w_in = l.w;
  g.kh = g.kw = l.k; g.stride_h = g.stride_w = l.s; g.pad_h = g.pad_w = l.pad;
  g.h_out = Geometry::out_size(l.h, l.k, l.s, 1, l.pad, 0);
  g.w_out = Geometry::out_size(l.w, l.k, l.s, 1, l.pad, 0);
  p.with_bias = true;
  p.accumulate = accumulate;
  return p;
}

const registry::Algorithm& gemm_wgrad() { return *registry::find("cpu_gemm_bwd_weights_f32"); }

TEST(WgradPanels, ExactIntegersAndAccumulate) {
  std::mt19937_64 rng(77);
  for (const Shape& s : kShapes)
    for (bool acc : {false, true}) {
      const Problem p = problem_of(s, acc);
      ASSERT_FALSE(gemm_wgrad().decline_reason(p).has_value()) << p.describe();
      const Case c = make_case(p, Fill::integers, /*windowed=*/true, rng);
      const Outputs got = run(gemm_wgrad(), c, 2);
      ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
      EXPECT_EQ(check_footprint(c, got), "") << p.describe();
      EXPECT_EQ(compare_exact(c, run(reference(), c, 2), got), "") << p.describe();
    }
}

TEST(WgradPanels, ThreadCountInvariance) {
  std::mt19937_64 rng(78);
  for (const Shape& s : kShapes) {
    const Problem p = problem_of(s, false);
    const Case c = make_case(p, Fill::random, /*windowed=*/true, rng);
    const Outputs one = run(gemm_wgrad(), c, 1);
    ASSERT_TRUE(one.status.ok()) << one.status.message;
    for (int threads : {2, 3}) {
      const Outputs o = run(gemm_wgrad(), c, threads);
      ASSERT_TRUE(o.status.ok()) << o.status.message;
      EXPECT_EQ(compare_exact(c, one, o), "") << p.describe() << " with " << threads << " threads vs 1";
    }
  }
}

TEST(WgradPanels, WorkspaceWithinLargestTensor) {
  for (const Shape& s : kShapes) {
    const Problem p = problem_of(s, false);
    const int64_t largest = std::max({core::src_elements(p.g), core::dst_elements(p.g), core::wei_elements(p.g)});
    EXPECT_LE(gemm_wgrad().workspace_bytes(p), static_cast<size_t>(largest) * 4 + 128) << p.describe();
  }
}

}  // namespace
}  // namespace tconv::testing
