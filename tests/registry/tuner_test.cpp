// The autotuner (src/registry/tuner.hpp): it times exactly the allowed algorithms that take a problem, picks
// the fastest, prunes slow ones after one run, skips failing ones, records per determinism mode, and its
// record makes choose() pick the measured algorithm — on the CPU registry, with made-up algorithms of known
// speed, and on CUDA (skipped without a GPU).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cuda/backend.hpp"
#include "registry/algorithm.hpp"
#include "registry/plan_cache.hpp"
#include "registry/tuner.hpp"

namespace tconv::registry {
namespace {

// A made-up CPU algorithm that sleeps `us` microseconds per run (or fails), counting its runs.
class Timed : public Algorithm {
 public:
  Timed(std::string name, int us, bool det = true, bool takes = true, bool fails = false)
      : name_(std::move(name)), us_(us), det_(det), takes_(takes), fails_(fails) {}
  std::string_view name() const noexcept override { return name_; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  bool deterministic() const noexcept override { return det_; }
  std::optional<std::string> decline_reason(const core::Problem&) const override {
    if (takes_) return std::nullopt;
    return "declines";
  }
  core::Status run(const core::Problem&, const core::Args&, void*, const ExecContext&) const override {
    runs_.fetch_add(1);
    if (fails_) return core::fail(ErrorCode::internal, name_ + " broke");
    std::this_thread::sleep_for(std::chrono::microseconds(us_));
    return core::Status::ok_status();
  }
  int runs() const { return runs_.load(); }

 private:
  std::string name_;
  int us_;
  bool det_, takes_, fails_;
  mutable std::atomic<int> runs_{0};
};

core::Problem problem(core::Direction dir, DataType t = DataType::float32, Precision pr = Precision::fp32) {
  core::Problem p;
  p.dir = dir;
  p.g.n = 2;
  p.g.c_in = 8;
  p.g.c_out = 6;
  p.g.h_in = p.g.w_in = 6;
  p.g.kh = p.g.kw = 4;
  p.g.stride_h = p.g.stride_w = 2;
  p.g.pad_h = p.g.pad_w = 1;
  p.g.h_out = p.g.w_out = core::Geometry::out_size(6, 4, 2, 1, 1, 0);
  p.act_type = t;
  p.precision = pr;
  p.with_bias = dir != core::Direction::bwd_data;
  return p;
}

TEST(Tuner, TimesEveryCpuAlgorithmThatTakesTheProblemAndRecordsTheFastest) {
  for (core::Direction dir : {core::Direction::fwd, core::Direction::bwd_data, core::Direction::bwd_weights}) {
    const core::Problem p = problem(dir);
    TuneOptions o;
    o.reps = 3;
    o.warmup = 1;
    TuneResult r;
    const core::Status s = tune(p, DeviceKind::cpu, o, &r);
    ASSERT_TRUE(s.ok()) << s.message;
    std::vector<const Algorithm*> expected;
    for (const Algorithm* a : algorithms(DeviceKind::cpu))
      if (a->deterministic() && !a->decline_reason(p)) expected.push_back(a);
    ASSERT_EQ(r.timings.size(), expected.size()) << p.describe();
    double min_ms = 1e30;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(r.timings[i].algorithm, expected[i]);
      EXPECT_TRUE(r.timings[i].error.empty()) << r.timings[i].error;
      EXPECT_GT(r.timings[i].ms, 0.0);
      EXPECT_GE(r.timings[i].runs, 1);
      min_ms = std::min(min_ms, r.timings[i].ms);
    }
    const AlgorithmTiming* best = r.fastest(true);
    ASSERT_NE(best, nullptr);
    EXPECT_EQ(best->ms, min_ms);
    EXPECT_EQ(r.default_choice, choose(p, DeviceKind::cpu).algorithm);
    ASSERT_NE(r.default_timing(), nullptr);

    PlanCache cache;
    const std::string dev = plan_device_label(DeviceKind::cpu);
    record(cache, p, dev, r);
    ASSERT_EQ(cache.size(), 1u);  // deterministic entry only: nondeterministic algorithms were not allowed
    const auto e = cache.find(dev, plan_problem_key(p), true);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->algorithm, best->algorithm->name());
    EXPECT_EQ(e->ms, best->ms);
    EXPECT_EQ(choose_from(algorithms(DeviceKind::cpu), &cache, dev, p, false).algorithm, best->algorithm);
  }
}

TEST(Tuner, DeterminismGatingAndModes) {
  const core::Problem p = problem(core::Direction::bwd_data);
  Timed slow_det("slow_det", 3000), fast_nd("fast_nd", 0, /*det=*/false), declines("declines", 0, true, false);
  const std::vector<const Algorithm*> cands{&declines, &fast_nd, &slow_det};
  TuneOptions o;
  o.reps = 3;
  o.warmup = 1;
  TuneResult r;
  ASSERT_TRUE(tune(p, DeviceKind::cpu, o, &r, &cands).ok());
  ASSERT_EQ(r.timings.size(), 1u);  // the nondeterministic one is not even run
  EXPECT_EQ(r.timings[0].algorithm, &slow_det);
  EXPECT_EQ(fast_nd.runs(), 0);
  EXPECT_EQ(declines.runs(), 0);
  EXPECT_EQ(r.default_choice, &slow_det);
  PlanCache cache;
  record(cache, p, "dev", r);
  EXPECT_EQ(cache.size(), 1u);

  o.allow_nondeterministic = true;
  ASSERT_TRUE(tune(p, DeviceKind::cpu, o, &r, &cands).ok());
  ASSERT_EQ(r.timings.size(), 2u);
  EXPECT_EQ(r.default_choice, &fast_nd);
  EXPECT_EQ(r.fastest(false)->algorithm, &fast_nd);
  EXPECT_EQ(r.fastest(true)->algorithm, &slow_det);
  record(cache, p, "dev", r);
  ASSERT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("dev", plan_problem_key(p), false)->algorithm, "fast_nd");
  EXPECT_EQ(cache.find("dev", plan_problem_key(p), true)->algorithm, "slow_det");
  EXPECT_EQ(choose_from(cands, &cache, "dev", p, true).algorithm, &fast_nd);
  EXPECT_EQ(choose_from(cands, &cache, "dev", p, false).algorithm, &slow_det);
}

TEST(Tuner, PicksTheFastestPrunesTheSlowAndSkipsTheBroken) {
  const core::Problem p = problem(core::Direction::fwd);
  Timed first("first_but_slower", 4000), broken("broken", 0, true, true, /*fails=*/true), fast("fast", 200),
      very_slow("very_slow", 150000);
  const std::vector<const Algorithm*> cands{&first, &broken, &fast, &very_slow};
  TuneOptions o;
  o.reps = 3;
  o.warmup = 2;
  o.prune_factor = 20;
  TuneResult r;
  ASSERT_TRUE(tune(p, DeviceKind::cpu, o, &r, &cands).ok());
  ASSERT_EQ(r.timings.size(), 4u);
  EXPECT_EQ(r.fastest(true)->algorithm, &fast);
  EXPECT_EQ(r.default_choice, &first);
  EXPECT_GT(r.default_timing()->ms / r.fastest(true)->ms, 1.5);  // 4 ms vs 0.2 ms (sleeps overshoot under load)
  EXPECT_EQ(first.runs(), 1 + 1 + 3);  // probe, one more warm-up, reps
  EXPECT_FALSE(r.timings[1].error.empty());
  EXPECT_NE(r.timings[1].error.find("broken broke"), std::string::npos);
  EXPECT_EQ(broken.runs(), 1);
  EXPECT_EQ(very_slow.runs(), 1);  // 150 ms > 20 × the best so far: one run only
  EXPECT_EQ(r.timings[3].runs, 1);
  EXPECT_GT(r.timings[3].ms, 140.0);

  // Nothing takes the problem; everything that takes it fails; options out of range.
  Timed no("no", 0, true, false);
  const std::vector<const Algorithm*> none{&no}, all_broken{&broken};
  core::Status s = tune(p, DeviceKind::cpu, o, &r, &none);
  EXPECT_EQ(s.code, ErrorCode::unsupported) << s.message;
  s = tune(p, DeviceKind::cpu, o, &r, &all_broken);
  EXPECT_EQ(s.code, ErrorCode::internal) << s.message;
  EXPECT_NE(s.message.find("broken broke"), std::string::npos) << s.message;
  TuneOptions bad = o;
  bad.reps = 0;
  EXPECT_EQ(tune(p, DeviceKind::cpu, bad, &r, &cands).code, ErrorCode::invalid_argument);
  core::Problem invalid = p;
  invalid.g.groups = 5;
  EXPECT_EQ(tune(invalid, DeviceKind::cpu, o, &r, &cands).code, ErrorCode::invalid_argument);
}

// On the GPU: every CUDA algorithm that takes the problem runs and is timed with events; the record makes
// choose() pick the fastest through the process-wide cache.
TEST(Tuner, Cuda) {
  if (cuda_backend::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  for (auto [t, pr] : {std::pair{DataType::float32, Precision::fp32}, std::pair{DataType::bfloat16, Precision::bf16}}) {
    for (core::Direction dir : {core::Direction::fwd, core::Direction::bwd_data, core::Direction::bwd_weights}) {
      core::Problem p = problem(dir, t, pr);
      p.g.n = 8;
      p.g.c_in = 64;
      p.g.c_out = 32;
      TuneOptions o;
      o.reps = 3;
      TuneResult r;
      const core::Status s = tune(p, DeviceKind::cuda, o, &r);
      ASSERT_TRUE(s.ok()) << p.describe() << ": " << s.message;
      std::size_t takers = 0;
      for (const Algorithm* a : algorithms(DeviceKind::cuda))
        if (a->deterministic() && !a->decline_reason(p)) ++takers;
      ASSERT_EQ(r.timings.size(), takers);
      for (const AlgorithmTiming& at : r.timings) {
        EXPECT_TRUE(at.error.empty()) << at.algorithm->name() << ": " << at.error;
        EXPECT_GT(at.ms, 0.0) << at.algorithm->name();
      }
      const AlgorithmTiming* best = r.fastest(true);
      ASSERT_NE(best, nullptr);
      EXPECT_EQ(r.default_choice, choose(p, DeviceKind::cuda).algorithm);
      PlanCache cache;
      record(cache, p, plan_device_label(DeviceKind::cuda), r);
      set_active_plan_cache(cache);
      const Choice c = choose(p, DeviceKind::cuda);
      clear_active_plan_cache();
      EXPECT_EQ(c.algorithm, best->algorithm) << c.reason;
      EXPECT_NE(c.reason.find("plan cache"), std::string::npos) << c.reason;
    }
  }
}

}  // namespace
}  // namespace tconv::registry
