// Engine element-wise math (src/core/pointwise): every neuron type's forward against the float64 definition and
// its gradient against central finite differences; typed (float16/bfloat16) storage; MSE loss forward and
// gradient against direct float64 computation, and their independence from the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.hpp"
#include "core/neuron.hpp"
#include "core/pointwise.hpp"

namespace tc = tconv::core;
using tconv::DataType;
using tconv::NeuronDescriptor;
using tconv::NeuronType;

namespace {

struct NeuronCase {
  NeuronDescriptor n;
  double lo, hi;  // sample range: smooth part of f, inside its domain
};

// Sample points stay away from kinks (ReLU at 0, hard sigmoid at its corners, ReLU-N at b, |x| at 0).
std::vector<NeuronCase> all_neurons() {
  return {
      {{NeuronType::none}, -2, 2},
      {{NeuronType::relu, 0.0f}, -2, 2},
      {{NeuronType::relu, 0.1f}, -2, 2},
      {{NeuronType::linear, 1.5f, -0.5f}, -2, 2},
      {{NeuronType::sigmoid}, -4, 4},
      {{NeuronType::hard_sigmoid, 0.2f, 0.5f}, -4, 4},
      {{NeuronType::tanh, 1.2f, 0.7f}, -3, 3},
      {{NeuronType::absolute}, -2, 2},
      {{NeuronType::soft_plus, 1.0f, 1.0f}, -3, 3},
      {{NeuronType::soft_sign}, -3, 3},
      {{NeuronType::elu, 1.0f}, -2, 2},
      {{NeuronType::relu_n, 0.1f, 1.0f}, -2, 2},
      {{NeuronType::power, 1.0f, 2.0f, 1.5f}, 0.1, 2},
      {{NeuronType::exponential, 0.5f, 0.1f, 2.0f}, -2, 2},
      {{NeuronType::exponential, 0.5f, 0.1f, 0.0f}, -2, 2},
      {{NeuronType::logarithm, 1.0f, 2.0f, 10.0f}, 0.1, 2},
      {{NeuronType::logarithm, 1.0f, 2.0f, 0.0f}, 0.1, 2},
      {{NeuronType::gelu}, -3, 3},
  };
}

// True when x is within h of a point where f is not differentiable.
bool near_kink(const NeuronDescriptor& n, double x, double h) {
  auto near = [&](double k) { return std::abs(x - k) < 4 * h; };
  switch (n.type) {
    case NeuronType::relu: case NeuronType::absolute: case NeuronType::elu: return near(0);
    case NeuronType::hard_sigmoid: return near(-n.b / n.a) || near((1 - n.b) / n.a);
    case NeuronType::relu_n: return near(0) || near(n.b);
    default: return false;
  }
}

std::vector<float> sample(const NeuronCase& c, int64_t count, std::mt19937& rng) {
  std::uniform_real_distribution<double> d(c.lo, c.hi);
  std::vector<float> x(static_cast<size_t>(count));
  for (auto& v : x) {
    do v = static_cast<float>(d(rng));
    while (near_kink(c.n, v, 1e-3));
  }
  return x;
}

std::string name_of(const NeuronDescriptor& n) { return std::to_string(static_cast<int>(n.type)); }

}  // namespace

TEST(Pointwise, NeuronForwardMatchesFloat64Definition) {
  std::mt19937 rng(1);
  for (const auto& c : all_neurons()) {
    SCOPED_TRACE("neuron type " + name_of(c.n));
    const auto x = sample(c, 1000, rng);
    std::vector<float> y(x.size(), -999.0f);
    tc::neuron_forward(c.n, {x.data(), DataType::float32}, {y.data(), DataType::float32}, 1000, 1);
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = tc::neuron_apply<double>(c.n, x[i]);
      ASSERT_NEAR(y[i], want, 1e-5 * (1 + std::abs(want))) << "x = " << x[i];
    }
  }
}

TEST(Pointwise, NeuronGradientMatchesFiniteDifferences) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> gd(-2.0f, 2.0f);
  const double h = 1e-5;
  for (const auto& c : all_neurons()) {
    SCOPED_TRACE("neuron type " + name_of(c.n));
    const auto x = sample(c, 500, rng);
    std::vector<float> gy(x.size()), gx(x.size(), -999.0f);
    for (auto& g : gy) g = gd(rng);
    tc::neuron_gradient(c.n, {gy.data(), DataType::float32}, {x.data(), DataType::float32},
                        {gx.data(), DataType::float32}, 500, 1);
    for (size_t i = 0; i < x.size(); ++i) {
      const double xd = x[i];
      const double fd = (tc::neuron_apply<double>(c.n, xd + h) - tc::neuron_apply<double>(c.n, xd - h)) / (2 * h);
      const double want = gy[i] * fd;
      ASSERT_NEAR(gx[i], want, 1e-4 * (1 + std::abs(want))) << "x = " << x[i];
    }
  }
}

TEST(Pointwise, NeuronOnHalfAndBfloat16StorageRoundsTheFloat32Result) {
  const NeuronDescriptor n{NeuronType::tanh, 1.0f, 1.0f};
  std::vector<float> xf{-1.5f, -0.25f, 0.0f, 0.3f, 2.0f};
  for (DataType t : {DataType::float16, DataType::bfloat16}) {
    std::vector<uint16_t> x(xf.size()), y(xf.size());
    for (size_t i = 0; i < xf.size(); ++i) tc::store_from_f32(x.data(), static_cast<int64_t>(i), t, xf[i]);
    tc::neuron_forward(n, {x.data(), t}, {y.data(), t}, static_cast<int64_t>(xf.size()), 1);
    for (size_t i = 0; i < xf.size(); ++i) {
      const float xin = tc::load_as_f32(x.data(), static_cast<int64_t>(i), t);
      std::vector<uint16_t> want(1);
      tc::store_from_f32(want.data(), 0, t, std::tanh(xin));
      EXPECT_EQ(y[i], want[0]) << "element " << i;
    }
    // In place, and float16 gradient with float32 forward input.
    std::vector<float> gyf{1, 2, 3, 4, 5};
    std::vector<uint16_t> g(xf.size());
    for (size_t i = 0; i < xf.size(); ++i) tc::store_from_f32(g.data(), static_cast<int64_t>(i), t, gyf[i]);
    tc::neuron_gradient(n, {g.data(), t}, {xf.data(), DataType::float32}, {g.data(), t}, 5, 1);
    for (size_t i = 0; i < xf.size(); ++i) {
      const double want = gyf[i] * (1 - std::pow(std::tanh(double(xf[i])), 2));
      EXPECT_NEAR(tc::load_as_f32(g.data(), static_cast<int64_t>(i), t), want, 1e-2 * std::abs(want) + 1e-3);
    }
  }
}

TEST(Pointwise, MseForwardAndGradientMatchDirectComputation) {
  const int64_t n = 3 * tc::kMseBlock + 17;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> p(n), t(n), g(n, -999.0f);
  for (int64_t i = 0; i < n; ++i) { p[i] = d(rng); t[i] = d(rng); }
  for (double weight : {1.0, 0.25}) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (double(p[i]) - t[i]) * (double(p[i]) - t[i]);
    const double loss = tc::mse_loss({p.data()}, {t.data()}, n, weight, 1);
    EXPECT_NEAR(loss, weight * sum / n, 1e-12 * sum);
    tc::mse_loss_gradient({p.data()}, {t.data()}, {g.data()}, n, weight, 1);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(g[i], weight * 2.0 * (double(p[i]) - t[i]) / n, 1e-6 * std::abs(weight * 2.0 / n) + 1e-12);
  }
}

TEST(Pointwise, MseExactOnSmallIntegers) {
  // (3−1)² + (−1−1)² + (2−2)² + (0−4)² = 4 + 4 + 0 + 16 = 24; mean 6; gradient 2(p − t)/4.
  std::vector<float> p{3, -1, 2, 0}, t{1, 1, 2, 4}, g(4);
  EXPECT_EQ(tc::mse_loss({p.data()}, {t.data()}, 4, 1.0, 1), 6.0);
  tc::mse_loss_gradient({p.data()}, {t.data()}, {g.data()}, 4, 1.0, 1);
  EXPECT_EQ(g, (std::vector<float>{1.0f, -1.0f, 0.0f, -2.0f}));
}

TEST(Pointwise, ResultsIndependentOfThreadCount) {
  const int64_t n = 200001;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  std::vector<float> p(n), t(n);
  for (int64_t i = 0; i < n; ++i) { p[i] = d(rng); t[i] = d(rng); }
  const NeuronDescriptor n_gelu{NeuronType::gelu};
  auto run = [&](int threads, double& loss) {
    std::vector<float> out(3 * n);
    tc::neuron_forward(n_gelu, {p.data()}, {out.data()}, n, threads);
    tc::neuron_gradient(n_gelu, {t.data()}, {p.data()}, {out.data() + n}, n, threads);
    tc::mse_loss_gradient({p.data()}, {t.data()}, {out.data() + 2 * n}, n, 1.0, threads);
    loss = tc::mse_loss({p.data()}, {t.data()}, n, 1.0, threads);
    return out;
  };
  double l1 = 0, lk = 0;
  const auto one = run(1, l1);
  for (int threads : {2, 5}) {
    EXPECT_EQ(run(threads, lk), one) << threads << " threads";
    EXPECT_EQ(lk, l1) << threads << " threads";
  }
}
