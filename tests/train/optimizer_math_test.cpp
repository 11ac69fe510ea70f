// Engine optimizer rules (src/core/optimizer_math) against an independent float64 re-implementation of
// spec a.9 over several steps, a hand-computed first Adam step, and bitwise determinism across thread counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/optimizer_math.hpp"

namespace tc = tconv::core;

namespace {

// ---- float64 reference, written from spec a.9 / c.18 directly ----
struct RefCommon {
  double lr = 0.001, rescale = 1.0;
  bool clip = false;
  double clip_max = 0.0, clip_min = 0.0;
  int reg = 0;  // 0 none, 1 L1, 2 L2
  double reg_scale = 0.0;
};

double ref_grad(const RefCommon& p, double g, double w) {
  if (p.clip) g = std::min(std::max(g, p.clip_min), p.clip_max);
  g *= p.rescale;
  if (p.reg == 1) g += p.reg_scale * (w > 0 ? 1.0 : (w < 0 ? -1.0 : 0.0));
  if (p.reg == 2) g += p.reg_scale * w;
  return g;
}

tc::OptimizerCommon to_engine(const RefCommon& r) {
  tc::OptimizerCommon c;
  c.learning_rate = static_cast<float>(r.lr);
  c.gradient_rescale = static_cast<float>(r.rescale);
  c.apply_gradient_clipping = r.clip;
  c.gradient_clip_max = static_cast<float>(r.clip_max);
  c.gradient_clip_min = static_cast<float>(r.clip_min);
  c.regularization = static_cast<tc::Regularization>(r.reg);
  c.regularization_scale = static_cast<float>(r.reg_scale);
  return c;
}

std::vector<float> random_vector(int64_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// Values with some exact zeros, so L1's sign(0) = 0 is exercised.
std::vector<float> weights_with_zeros(int64_t n, std::mt19937& rng) {
  auto w = random_vector(n, rng, -1.0f, 1.0f);
  for (size_t i = 0; i < w.size(); i += 7) w[i] = 0.0f;
  return w;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel, double abs_tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], abs_tol + rel * std::abs(want[i])) << what << " element " << i;
}

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

struct Case {
  const char* name;
  RefCommon common;
};

std::vector<Case> preprocessing_cases() {
  std::vector<Case> cs;
  cs.push_back({"plain", {.lr = 0.01}});
  cs.push_back({"clip", {.lr = 0.01, .clip = true, .clip_max = 0.4, .clip_min = -0.25}});
  cs.push_back({"rescale", {.lr = 0.01, .rescale = 0.5}});
  cs.push_back({"L1", {.lr = 0.01, .rescale = 2.0, .reg = 1, .reg_scale = 0.03}});
  cs.push_back({"L2", {.lr = 0.01, .clip = true, .clip_max = 0.3, .clip_min = -0.3, .reg = 2, .reg_scale = 0.1}});
  return cs;
}

constexpr int64_t kN = 1000;
constexpr int kSteps = 6;

}  // namespace

TEST(OptimizerMath, PreprocessOrderClipRescaleRegularise) {
  tc::OptimizerCommon c;
  c.apply_gradient_clipping = true;
  c.gradient_clip_max = 1.0f;
  c.gradient_clip_min = -0.5f;
  c.gradient_rescale = 3.0f;
  c.regularization = tc::Regularization::l1;
  c.regularization_scale = 0.25f;
  // Clip before rescale: 5 → 1 → 3, plus 0.25·sign(−2).
  EXPECT_EQ(tc::preprocess_gradient(c, 5.0f, -2.0f), 2.75f);
  EXPECT_EQ(tc::preprocess_gradient(c, -4.0f, 0.0f), -1.5f);  // sign(0) = 0
  EXPECT_EQ(tc::preprocess_gradient(c, 0.5f, 3.0f), 1.75f);
  c.regularization = tc::Regularization::l2;
  EXPECT_EQ(tc::preprocess_gradient(c, 0.5f, 3.0f), 1.5f + 0.75f);  // no factor 2
}

TEST(OptimizerMath, SgdMatchesFloat64Reference) {
  for (const auto& cs : preprocessing_cases()) {
    for (int mode = 0; mode < 3; ++mode) {  // 0 no momentum, 1 classic, 2 Nesterov
      SCOPED_TRACE(std::string(cs.name) + " mode " + std::to_string(mode));
      std::mt19937 rng(42 + mode);
      auto w = weights_with_zeros(kN, rng);
      std::vector<float> m(kN, 0.0f);
      std::vector<double> rw = widen(w), rm(kN, 0.0);
      const double mu = 0.9;
      tc::SgdParams sp{.momentum_scale = static_cast<float>(mu), .nesterov = mode == 2};
      for (int step = 0; step < kSteps; ++step) {
        auto g = random_vector(kN, rng, -1.0f, 1.0f);
        tc::sgd_update(to_engine(cs.common), sp, {g.data(), w.data(), w.data(), kN}, mode ? m.data() : nullptr, 1);
        for (int64_t i = 0; i < kN; ++i) {
          const double gg = ref_grad(cs.common, g[i], rw[i]);
          if (mode == 0) {
            rw[i] -= cs.common.lr * gg;
          } else if (mode == 1) {
            rm[i] = mu * rm[i] + cs.common.lr * gg;
            rw[i] -= rm[i];
          } else {
            rm[i] = mu * rm[i] + gg;
            rw[i] -= cs.common.lr * (gg + mu * rm[i]);
          }
        }
      }
      expect_close(w, rw, 1e-5, 1e-6, "weights");
      if (mode) expect_close(m, rm, 1e-5, 1e-6, "momentum");
    }
  }
}

TEST(OptimizerMath, RmsPropMatchesFloat64Reference) {
  for (const auto& cs : preprocessing_cases()) {
    SCOPED_TRACE(cs.name);
    std::mt19937 rng(7);
    auto w = weights_with_zeros(kN, rng);
    std::vector<float> s(kN, 0.0f);
    std::vector<double> rw = widen(w), rs(kN, 0.0);
    const double decay = 0.9, eps = 1e-8;
    for (int step = 0; step < kSteps; ++step) {
      auto g = random_vector(kN, rng, -1.0f, 1.0f);
      tc::rmsprop_update(to_engine(cs.common), tc::rmsprop_params(0.9, 1e-8f), {g.data(), w.data(), w.data(), kN},
                         s.data(), 1);
      for (int64_t i = 0; i < kN; ++i) {
        const double gg = ref_grad(cs.common, g[i], rw[i]);
        rs[i] = decay * rs[i] + (1 - decay) * gg * gg;
        rw[i] -= cs.common.lr * gg / (std::sqrt(rs[i]) + eps);
      }
    }
    expect_close(w, rw, 1e-5, 1e-5, "weights");
    expect_close(s, rs, 1e-5, 1e-9, "sum of squares");
  }
}

TEST(OptimizerMath, AdamAndAmsGradMatchFloat64Reference) {
  for (const auto& cs : preprocessing_cases()) {
    for (bool ams : {false, true}) {
      SCOPED_TRACE(std::string(cs.name) + (ams ? " amsgrad" : " adam"));
      std::mt19937 rng(11);
      auto w = weights_with_zeros(kN, rng);
      std::vector<float> m(kN, 0.0f), v(kN, 0.0f), vmax(kN, 0.0f);
      std::vector<double> rw = widen(w), rm(kN, 0.0), rv(kN, 0.0), rvmax(kN, 0.0);
      const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
      const tc::AdamParams ap = tc::adam_params(0.9, 0.999, 1e-8f);
      for (int t = 1; t <= kSteps; ++t) {
        // Gradients that shrink over the steps make v fall, so AMSGrad's max differs from Adam.
        auto g = random_vector(kN, rng, -1.0f / t, 1.0f / t);
        const float step = tc::adam_step_size(to_engine(cs.common).learning_rate, 0.9, 0.999, t);
        tc::adam_update(to_engine(cs.common), ap, step, {g.data(), w.data(), w.data(), kN}, m.data(), v.data(),
                        ams ? vmax.data() : nullptr, 1);
        const double lr_t = cs.common.lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
        for (int64_t i = 0; i < kN; ++i) {
          const double gg = ref_grad(cs.common, g[i], rw[i]);
          rm[i] = b1 * rm[i] + (1 - b1) * gg;
          rv[i] = b2 * rv[i] + (1 - b2) * gg * gg;
          rvmax[i] = std::max(rvmax[i], rv[i]);
          rw[i] -= lr_t * rm[i] / (std::sqrt(ams ? rvmax[i] : rv[i]) + eps);
        }
      }
      expect_close(w, rw, 1e-5, 1e-5, "weights");
      expect_close(m, rm, 1e-4, 1e-7, "momentum");
      expect_close(v, rv, 1e-4, 1e-9, "velocity");
      if (ams) expect_close(vmax, rvmax, 1e-4, 1e-9, "max velocity");
    }
  }
}

TEST(OptimizerMath, AdamFirstStepByHand) {
  // Parameters exact in binary, so every intermediate is exact and the result can be worked by hand:
  // t = 1, lr = 0.5, β1 = 7/8, β2 = 63/64, ε = 2^-10, g = 0.5, w = 1, m = v = 0.
  //   lr_1 = 0.5·sqrt(1/64)/(1/8) = 0.5
  //   m = (1/8)·0.5 = 1/16, v = (1/64)·0.25 = 1/256, sqrt(v) = 1/16
  //   w = 1 − 0.5·(1/16)/(1/16 + 1/1024) = 1 − 0.5·64/65 = 33/65
  tc::OptimizerCommon c;
  c.learning_rate = 0.5f;
  const tc::AdamParams ap = tc::adam_params(0.875, 0.984375, 0.0009765625f);
  const float step = tc::adam_step_size(c.learning_rate, 0.875, 0.984375, 1);
  EXPECT_EQ(step, 0.5f);
  float g = 0.5f, w = 1.0f, m = 0.0f, v = 0.0f;
  tc::adam_update(c, ap, step, {&g, &w, &w, 1}, &m, &v, nullptr, 1);
  EXPECT_EQ(m, 0.0625f);
  EXPECT_EQ(v, 0.00390625f);
  EXPECT_NEAR(w, 33.0 / 65.0, 6e-8);
  // Second step with g = 0: m = 7/128, v = 63/16384; lr_2 = 0.5·sqrt(1 − (63/64)²)/(1 − (7/8)²).
  g = 0.0f;
  const double lr2 = 0.5 * std::sqrt(1.0 - std::pow(63.0 / 64, 2)) / (1.0 - std::pow(7.0 / 8, 2));
  EXPECT_NEAR(tc::adam_step_size(c.learning_rate, 0.875, 0.984375, 2), lr2, 1e-7);
  const float step2 = tc::adam_step_size(c.learning_rate, 0.875, 0.984375, 2);
  tc::adam_update(c, ap, step2, {&g, &w, &w, 1}, &m, &v, nullptr, 1);
  EXPECT_EQ(m, 7.0f / 128.0f);
  EXPECT_EQ(v, 63.0f / 16384.0f);
  EXPECT_NEAR(w, 33.0 / 65.0 - lr2 * (7.0 / 128) / (std::sqrt(63.0 / 16384) + 1.0 / 1024), 1e-7);
}

TEST(OptimizerMath, AdamFirstStepWithDefaultsMovesByTheLearningRate) {
  // With the defaults the first step is lr_1·0.1g/(sqrt(0.001)|g| + ε) = lr·g/(|g| + ε/sqrt(0.001)),
  // which is lr·sign(g) to within 1e-6.
  tc::OptimizerCommon c;
  const tc::AdamParams ap = tc::adam_params(0.9, 0.999, 1e-8f);
  const float step1 = tc::adam_step_size(c.learning_rate, 0.9, 0.999, 1);
  EXPECT_NEAR(step1, 3.16227766e-4, 1e-10);  // 0.001·sqrt(0.001)/0.1
  float g = 0.5f, w = 1.0f, m = 0.0f, v = 0.0f;
  tc::adam_update(c, ap, step1, {&g, &w, &w, 1}, &m, &v, nullptr, 1);
  EXPECT_NEAR(w, 0.999, 1e-6);
  g = -0.25f;
  float w2 = 1.0f, m2 = 0.0f, v2 = 0.0f;
  tc::adam_update(c, ap, step1, {&g, &w2, &w2, 1}, &m2, &v2, nullptr, 1);
  EXPECT_NEAR(w2, 1.001, 1e-6);
}

TEST(OptimizerMath, ResultsIndependentOfThreadCount) {
  const int64_t n = 100003;  // above the parallel threshold, not a multiple of anything
  std::mt19937 rng(3);
  const auto g = random_vector(n, rng, -2.0f, 2.0f);
  const auto w0 = weights_with_zeros(n, rng);
  tc::OptimizerCommon c;
  c.apply_gradient_clipping = true;
  c.gradient_clip_max = 1.5f;
  c.gradient_clip_min = -1.5f;
  c.regularization = tc::Regularization::l2;
  c.regularization_scale = 0.01f;
  auto run = [&](int threads) {
    std::vector<float> w = w0, m(n, 0.1f), v(n, 0.2f), vm(n, 0.3f), out(n);
    std::vector<float> all;
    tc::sgd_update(c, {.momentum_scale = 0.5f, .nesterov = true}, {g.data(), w.data(), out.data(), n}, m.data(),
                   threads);
    all.insert(all.end(), out.begin(), out.end());
    tc::rmsprop_update(c, tc::rmsprop_params(0.9, 1e-8f), {g.data(), w.data(), out.data(), n}, v.data(), threads);
    all.insert(all.end(), out.begin(), out.end());
    tc::adam_update(c, tc::adam_params(0.9, 0.999, 1e-8f), tc::adam_step_size(c.learning_rate, 0.9, 0.999, 3),
                    {g.data(), w.data(), out.data(), n}, m.data(), v.data(), vm.data(), threads);
    all.insert(all.end(), out.begin(), out.end());
    all.insert(all.end(), vm.begin(), vm.end());
    return all;
  };
  const auto one = run(1);
  for (int threads : {2, 3, 8}) {
    const auto other = run(threads);
    ASSERT_EQ(0, std::memcmp(one.data(), other.data(), one.size() * sizeof(float))) << threads << " threads";
  }
}

TEST(OptimizerMath, OutOfPlaceLeavesValuesUntouched) {
  std::vector<float> g{1.0f, -2.0f}, w{0.5f, 0.25f}, out{9.0f, 9.0f};
  tc::OptimizerCommon c;
  c.learning_rate = 0.5f;
  tc::sgd_update(c, {}, {g.data(), w.data(), out.data(), 2}, nullptr, 1);
  EXPECT_EQ(w, (std::vector<float>{0.5f, 0.25f}));
  EXPECT_EQ(out, (std::vector<float>{0.0f, 1.25f}));
}
