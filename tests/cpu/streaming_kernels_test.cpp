// cpu_few_channels_f32 and cpu_depthwise_stream_f32 on shapes that reach the code paths the registry-wide
// suite's small random problems rarely or never reach:
//   few channels  gather-broadcast with several blocks of output vectors (> 64 wide channels), gather-dot
//                 with a masked K tail, the weight gradient walking src (Og narrow) or dst phases (Ig narrow)
//                 over several fixed row ranges and several wide-vector blocks, phases without taps, groups,
//                 dilation, output padding, the bias pass's flat-row path (3 channels) and channel path
//   depthwise     more than 16 taps (two register tiles), channel tails, several row ranges, channel
//                 blocks that depend on the thread count (results must not)
// Each shape is checked with integer data against cpu_ref_f64 at zero tolerance (windowed views, poisoned
// footprint), with random data in float32/bfloat16/float16 and tf32/bf16 modes within the tolerance table,
// and for bit-identical results with 1, 2 and 3 threads; the heuristic must pick the algorithm under test.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/cases.hpp"
#include "registry/algorithm.hpp"
#include "hwy/targets.h"

namespace tconv::testing {
namespace {

struct Shape {
  const char* algorithm;
  int64_t n, ci, co, g, h, w, k, s, pad, opad, dil;
};

// PyTorch-style ConvTranspose2d geometry (pad = PyTorch padding, opad = output_padding).
const Shape kShapes[] = {
    {"cpu_few_channels_f32", 2, 64, 3, 1, 16, 15, 4, 2, 1, 0, 1},     // dcgan_g5-like: Og = 3
    {"cpu_few_channels_f32", 3, 1, 32, 1, 13, 14, 4, 2, 1, 0, 1},     // 1 → 32: Ig = 1, wgrad walks dst phases
    {"cpu_few_channels_f32", 5, 32, 1, 1, 14, 14, 4, 2, 1, 0, 1},     // the training net's 32 ↔ 1 layers
    {"cpu_few_channels_f32", 2, 2, 100, 1, 9, 11, 3, 2, 1, 1, 1},     // 100 wide: two output-vector blocks
    {"cpu_few_channels_f32", 2, 150, 4, 1, 10, 9, 3, 1, 1, 0, 1},     // K = 150: masked tail, 3 wide blocks
    {"cpu_few_channels_f32", 2, 6, 60, 3, 9, 8, 3, 2, 1, 1, 2},       // groups 3 (2 → 20), dilation 2
    {"cpu_few_channels_f32", 2, 20, 1, 1, 7, 6, 3, 4, 0, 2, 1},       // stride 4 > kernel: taps-less phases
    {"cpu_few_channels_f32", 2, 64, 2, 1, 48, 40, 4, 2, 1, 0, 1},     // several src row ranges
    {"cpu_few_channels_f32", 3, 1, 48, 1, 30, 30, 4, 2, 1, 0, 1},     // several dst-phase row ranges
    {"cpu_few_channels_f32", 1, 56, 1, 1, 21, 19, 9, 3, 4, 2, 1},     // fsrcnn-like
    {"cpu_depthwise_stream_f32", 2, 40, 40, 40, 11, 13, 5, 2, 2, 1, 1},    // 25 taps, channel tail
    {"cpu_depthwise_stream_f32", 5, 256, 256, 256, 16, 16, 4, 2, 1, 0, 1},  // 2 ranges, thread-dependent blocks
};

Problem problem_of(const Shape& l, Direction dir, bool accumulate) {
  Problem p;
  p.dir = dir;
  Geometry& g = p.g;
  g.n = l.n; g.c_in = l.ci; g.c_out = l.co; g.groups = l.g; g.h_in = l.h; g.w_in = l.w;
  g.kh = g.kw = l.k; g.stride_h = g.stride_w = l.s; g.pad_h = g.pad_w = l.pad; g.dil_h = g.dil_w = l.dil;
  g.h_out = Geometry::out_size(l.h, l.k, l.s, l.dil, l.pad, l.opad);
  g.w_out = Geometry::out_size(l.w, l.k, l.s, l.dil, l.pad, l.opad);
  p.with_bias = dir != Direction::bwd_data;
  p.accumulate = accumulate && dir == Direction::bwd_weights;
  return p;
}

std::vector<std::pair<const Shape*, Problem>> problems(Direction dir) {
  std::vector<std::pair<const Shape*, Problem>> v;
  for (const Shape& s : kShapes) {
    v.emplace_back(&s, problem_of(s, dir, false));
    if (dir == Direction::bwd_weights) v.emplace_back(&s, problem_of(s, dir, true));
  }
  return v;
}

class StreamingKernels : public ::testing::TestWithParam<Direction> {};

TEST_P(StreamingKernels, HeuristicPicksThem) {
  for (const auto& [s, p] : problems(GetParam())) {
    ASSERT_TRUE(core::validate(p).ok()) << p.describe();
    const registry::Choice c = registry::choose(p, DeviceKind::cpu);
    ASSERT_NE(c.algorithm, nullptr) << c.reason;
    EXPECT_EQ(c.algorithm->name(), s->algorithm) << p.describe();
  }
}

TEST_P(StreamingKernels, ExactIntegers) {
  std::mt19937_64 rng(404 + static_cast<int>(GetParam()));
  for (const auto& [s, p] : problems(GetParam())) {
    const registry::Algorithm& alg = *registry::find(s->algorithm);
    ASSERT_FALSE(alg.decline_reason(p).has_value()) << p.describe();
    const Case c = make_case(p, Fill::integers, /*windowed=*/true, rng);
    const Outputs got = run(alg, c, 2);
    ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
    EXPECT_EQ(check_footprint(c, got), "") << alg.name() << " " << p.describe();
    EXPECT_EQ(compare_exact(c, run(reference(), c, 2), got), "") << alg.name();
  }
}

TEST_P(StreamingKernels, RandomTypesAndPrecisions) {
  std::mt19937_64 rng(505 + static_cast<int>(GetParam()));
  struct TP { DataType t; Precision p; };
  // float32; staged bfloat16 (bias summands = the staged copy); float16 rounded to bf16 (bias summands
  // converted one by one, since the staged copy is rounded).
  const TP modes[] = {{DataType::float32, Precision::fp32}, {DataType::bfloat16, Precision::bf16},
                      {DataType::float16, Precision::bf16}};
  for (auto [s, p] : problems(GetParam())) {
    const registry::Algorithm& alg = *registry::find(s->algorithm);
    for (const TP& m : modes) {
      p.act_type = m.t;
      p.precision = m.p;
      const Case c = make_case(p, Fill::random, /*windowed=*/m.t != DataType::float32, rng);
      const Outputs got = run(alg, c, 2);
      ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
      EXPECT_EQ(check_footprint(c, got), "") << alg.name() << " " << p.describe();
      EXPECT_EQ(compare_to_reference(c, got), "") << alg.name();
    }
  }
}

TEST_P(StreamingKernels, ThreadCountInvariance) {
  std::mt19937_64 rng(606 + static_cast<int>(GetParam()));
  for (const auto& [s, p] : problems(GetParam())) {
    const registry::Algorithm& alg = *registry::find(s->algorithm);
    const Case c = make_case(p, Fill::random, /*windowed=*/true, rng);
    const Outputs one = run(alg, c, 1);
    ASSERT_TRUE(one.status.ok()) << one.status.message;
    for (int threads : {2, 3}) {
      const Outputs o = run(alg, c, threads);
      ASSERT_TRUE(o.status.ok()) << o.status.message;
      EXPECT_EQ(compare_exact(c, one, o), "") << alg.name() << " with " << threads << " threads vs 1";
    }
  }
}

// The weight gradient's workspace (partials of the fixed row ranges) never exceeds the largest tensor
// (float32 data, fp32 mode: no staging).
TEST(StreamingKernelsWorkspace, WeightGradientWithinLargestTensor) {
  for (const Shape& s : kShapes) {
    const Problem p = problem_of(s, Direction::bwd_weights, false);
    const registry::Algorithm& alg = *registry::find(s.algorithm);
    const int64_t largest = std::max({core::src_elements(p.g), core::dst_elements(p.g), core::wei_elements(p.g)});
    EXPECT_LE(alg.workspace_bytes(p), static_cast<size_t>(largest) * 4 + 128) << alg.name() << " " << p.describe();
  }
}

// The kernels are compiled for every SIMD target (Highway dynamic dispatch) but this machine runs only its
// best one; the narrower targets (AVX2: 8 lanes, 16 registers, other tile shapes; the portable fallback)
// are run here too by restricting the targets Highway may choose, with integer data at zero tolerance.
TEST(StreamingKernelsTargets, NarrowerTargetsExact) {
  const int64_t supported = hwy::SupportedTargets();
  int ran = 0;
  for (const int64_t target : {int64_t{HWY_AVX2}, int64_t{HWY_EMU128 | HWY_SCALAR}}) {
    if ((supported & target) == 0 && target == HWY_AVX2) continue;
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    std::mt19937_64 rng(707);
    for (Direction dir : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights}) {
      for (const auto& [s, p] : problems(dir)) {
        const registry::Algorithm& alg = *registry::find(s->algorithm);
        const Case c = make_case(p, Fill::integers, /*windowed=*/true, rng);
        const Outputs got = run(alg, c, 2);
        ASSERT_TRUE(got.status.ok()) << p.describe() << ": " << got.status.message;
        EXPECT_EQ(check_footprint(c, got), "") << hwy::TargetName(target) << " " << alg.name() << " " << p.describe();
        EXPECT_EQ(compare_exact(c, run(reference(), c, 2), got), "") << hwy::TargetName(target) << " " << alg.name();
        EXPECT_EQ(compare_exact(c, got, run(alg, c, 3)), "") << hwy::TargetName(target) << " 2 vs 3 threads";
      }
    }
    ++ran;
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the machine's own targets
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  EXPECT_GT(ran, 0);
}

INSTANTIATE_TEST_SUITE_P(Cpu, StreamingKernels,
                         ::testing::Values(Direction::fwd, Direction::bwd_data, Direction::bwd_weights),
                         [](const ::testing::TestParamInfo<Direction>& i) { return std::string(core::to_string(i.param)); });

}  // namespace
}  // namespace tconv::testing
