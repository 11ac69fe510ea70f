// core/neuron.hpp: each derivative against a central finite difference of the function, at points away
// from kinks; plus the functions' defining values (spec a.2 / types.hpp comments).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/neuron.hpp"

namespace tconv::core {
namespace {

struct Case {
  NeuronDescriptor n;
  std::vector<double> xs;  // points where f is smooth (and defined)
};

TEST(Neuron, DerivativesMatchCentralDifferences) {
  const std::vector<double> generic = {-2.3, -0.7, -0.2, 0.3, 0.9, 1.7};
  const std::vector<Case> cases = {
      {{NeuronType::none, 0, 0, 0}, generic},
      {{NeuronType::relu, 0.0f, 0, 0}, generic},
      {{NeuronType::relu, 0.1f, 0, 0}, generic},
      {{NeuronType::linear, 1.5f, -0.5f, 0}, generic},
      {{NeuronType::sigmoid, 0, 0, 0}, generic},
      {{NeuronType::hard_sigmoid, 0.2f, 0.5f, 0}, generic},  // kinks at x = ±2.5
      {{NeuronType::tanh, 1.2f, 0.7f, 0}, generic},
      {{NeuronType::absolute, 0, 0, 0}, generic},
      {{NeuronType::soft_plus, 1.0f, 1.0f, 0}, generic},
      {{NeuronType::soft_plus, 0.5f, 2.0f, 0}, generic},
      {{NeuronType::soft_sign, 0, 0, 0}, generic},
      {{NeuronType::elu, 1.0f, 0, 0}, generic},
      {{NeuronType::elu, 0.5f, 0, 0}, generic},
      {{NeuronType::relu_n, 0.1f, 1.0f, 0}, generic},  // kinks at 0 and 1
      {{NeuronType::power, 0.5f, 3.0f, 2.5f}, generic},  // a·x + b > 0
      {{NeuronType::exponential, 0.5f, 0.2f, 2.0f}, generic},
      {{NeuronType::exponential, 0.5f, 0.2f, 0.0f}, generic},  // base e
      {{NeuronType::logarithm, 0.5f, 3.0f, 10.0f}, generic},
      {{NeuronType::logarithm, 0.5f, 3.0f, 0.0f}, generic},  // natural log
      {{NeuronType::gelu, 0, 0, 0}, generic},
  };
  for (const Case& c : cases) {
    for (double x : c.xs) {
      const double h = 1e-5;
      const double fd = (neuron_apply<double>(c.n, x + h) - neuron_apply<double>(c.n, x - h)) / (2 * h);
      const double d = neuron_derivative<double>(c.n, x);
      EXPECT_NEAR(d, fd, 1e-7 * (1 + std::fabs(fd))) << to_string(c.n.type) << " a=" << c.n.a << " b=" << c.n.b
                                                      << " c=" << c.n.c << " at x=" << x;
    }
  }
}

TEST(Neuron, DefiningValues) {
  EXPECT_EQ(neuron_apply<double>({NeuronType::relu, 0, 0, 0}, -2.0), 0.0);
  EXPECT_EQ(neuron_apply<double>({NeuronType::relu, 0.25f, 0, 0}, -2.0), -0.5);
  EXPECT_EQ(neuron_apply<double>({NeuronType::relu_n, 0, 6.0f, 0}, 9.0), 6.0);
  EXPECT_EQ(neuron_apply<double>({NeuronType::hard_sigmoid, 0.2f, 0.5f, 0}, 10.0), 1.0);
  EXPECT_DOUBLE_EQ(neuron_apply<double>({NeuronType::sigmoid, 0, 0, 0}, 0.0), 0.5);
  EXPECT_DOUBLE_EQ(neuron_apply<double>({NeuronType::exponential, 1, 0, 2.0f}, 3.0), 8.0);
  EXPECT_DOUBLE_EQ(neuron_apply<double>({NeuronType::logarithm, 1, 0, 10.0f}, 1000.0), 3.0);
  EXPECT_DOUBLE_EQ(neuron_apply<double>({NeuronType::gelu, 0, 0, 0}, 0.0), 0.0);
  EXPECT_NEAR(neuron_apply<double>({NeuronType::gelu, 0, 0, 0}, 1.0), 0.8413447460685429, 1e-15);
  // The float instantiation agrees with double to float precision.
  for (double x : {-1.3, 0.4, 2.2})
    EXPECT_NEAR(neuron_apply<float>({NeuronType::tanh, 1.0f, 1.0f, 0}, static_cast<float>(x)), std::tanh(x), 1e-6);
}

}  // namespace
}  // namespace tconv::core
