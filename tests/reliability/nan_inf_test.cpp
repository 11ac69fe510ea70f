// NaN and Inf in inputs are propagated, never masked (issue 7): a positive test, run through the functional
// API with every registered CPU algorithm forced in turn. One input element is made NaN (or +Inf with all
// weights positive, so no Inf − Inf can arise); the outputs that the definition (core/problem.hpp) says
// depend on it must be NaN (or +Inf), and every other output must be bit-identical to a run on clean
// inputs — so a kernel neither drops the NaN (e.g. by skipping "zero" work or clamping) nor smears it into
// outputs it does not reach.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "registry/algorithm.hpp"
#include "reliability/reliability_util.hpp"

namespace tconv::reliability {
namespace {

struct Layer {
  int64_t n = 2, h = 5, w = 5, ci = 4, co = 6, groups = 2, k = 3, s = 2, pad = 1, op = 1, dil = 1;
  int64_t ho() const { return core::Geometry::out_size(h, k, s, dil, pad, op); }
  int64_t wo() const { return core::Geometry::out_size(w, k, s, dil, pad, op); }
  int64_t ig() const { return ci / groups; }
  int64_t og() const { return co / groups; }
  // Does source row/column i reach destination row/column o through tap q (problem.hpp's index map)?
  bool tap(int64_t i, int64_t o, int64_t q) const { return i * s - pad + dil * (k - 1 - q) == o; }
  bool reaches(int64_t i, int64_t o) const {
    for (int64_t q = 0; q < k; ++q)
      if (tap(i, o, q)) return true;
    return false;
  }
  ConvTranspose2dOptions options(const std::string& algo, Precision prec) const {
    ConvTranspose2dOptions o;
    o.stride = {s, s};
    o.padding = {pad, pad};
    o.output_padding = {op, op};
    o.dilation = {dil, dil};
    o.groups = groups;
    o.layout = ActivationLayout::nhwc;
    o.weight_layout = WeightLayout::mps;
    o.precision = prec;
    o.algorithm = algo;
    return o;
  }
  core::Problem problem(core::Direction dir, Precision prec) const {
    core::Problem p;
    p.dir = dir;
    p.g = core::Geometry{n, ci, co, groups, h, w, ho(), wo(), k, k, s, s, dil, dil, pad, pad};
    p.precision = prec;
    p.with_bias = dir != core::Direction::bwd_data;
    return p;
  }
  std::vector<int64_t> xs() const { return {n, h, w, ci}; }
  std::vector<int64_t> ys() const { return {n, ho(), wo(), co}; }
  std::vector<int64_t> ws() const { return {co, k, k, ig()}; }
};

std::vector<Layer> layers() {
  Layer dense;
  Layer depthwise;
  depthwise.groups = 4;
  depthwise.co = 8;
  return {dense, depthwise};
}

std::vector<float> ramp(std::size_t count, int mod, float lo) {
  std::vector<float> v(count);
  for (std::size_t i = 0; i < count; ++i) v[i] = lo + static_cast<float>((i * 5 + 1) % static_cast<std::size_t>(mod));
  return v;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

// Which special value goes in, what must come out where it reaches.
struct Special {
  const char* name;
  float in;
  bool (*reached_ok)(float);
};
const Special kSpecials[] = {
    {"nan", std::nanf(""), [](float v) { return std::isnan(v); }},
    {"inf", INFINITY, [](float v) { return std::isinf(v) && v > 0; }},
};

class Propagation : public ::testing::TestWithParam<Precision> {};

TEST_P(Propagation, Forward) {
  const Precision prec = GetParam();
  const Device dev = Device::cpu(2);
  int runs = 0;
  for (const Layer& L : layers())
    for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cpu)) {
      if (alg->decline_reason(L.problem(core::Direction::fwd, prec))) continue;
      const ConvTranspose2dOptions o = L.options(std::string(alg->name()), prec);
      const std::vector<float> w = ramp(static_cast<std::size_t>(L.co * L.k * L.k * L.ig()), 3, 1.0f);  // 1..3
      const std::vector<float> b = ramp(static_cast<std::size_t>(L.co), 4, -1.0f);
      std::vector<float> x = ramp(static_cast<std::size_t>(L.n * L.h * L.w * L.ci), 7, -3.0f);
      std::vector<float> clean(static_cast<std::size_t>(L.n * L.ho() * L.wo() * L.co));
      conv_transpose2d(dev, {x.data(), DataType::float32, L.xs()}, {w.data(), DataType::float32, L.ws()},
                       {b.data(), DataType::float32, {L.co}}, {clean.data(), DataType::float32, L.ys()}, o);
      const int64_t n0 = 1, iy0 = 2, ix0 = 3, c0 = L.ci - 1;  // in the last group
      for (const Special& sp : kSpecials) {
        SCOPED_TRACE(std::string(alg->name()) + " " + sp.name + " groups " + std::to_string(L.groups));
        std::vector<float> xs = x;
        xs[static_cast<std::size_t>(((n0 * L.h + iy0) * L.w + ix0) * L.ci + c0)] = sp.in;
        std::vector<float> y(clean.size());
        conv_transpose2d(dev, {xs.data(), DataType::float32, L.xs()}, {w.data(), DataType::float32, L.ws()},
                         {b.data(), DataType::float32, {L.co}}, {y.data(), DataType::float32, L.ys()}, o);
        const int64_t g0 = c0 / L.ig();
        int64_t reached = 0;
        for (int64_t in = 0; in < L.n; ++in)
          for (int64_t oy = 0; oy < L.ho(); ++oy)
            for (int64_t ox = 0; ox < L.wo(); ++ox)
              for (int64_t oc = 0; oc < L.co; ++oc) {
                const std::size_t i = static_cast<std::size_t>(((in * L.ho() + oy) * L.wo() + ox) * L.co + oc);
                const bool hit = in == n0 && oc / L.og() == g0 && L.reaches(iy0, oy) && L.reaches(ix0, ox);
                if (hit) {
                  ++reached;
                  ASSERT_TRUE(sp.reached_ok(y[i])) << "y(" << in << "," << oy << "," << ox << "," << oc << ") = " << y[i];
                } else {
                  ASSERT_TRUE(same_bits(y[i], clean[i])) << "y(" << in << "," << oy << "," << ox << "," << oc
                                                         << ") = " << y[i] << ", clean run " << clean[i];
                }
              }
        EXPECT_EQ(reached, L.og() * 3 * 3);  // an interior pixel reaches 3×3 positions in each channel of its group
        ++runs;
      }
    }
  EXPECT_GE(runs, 2);
}

TEST_P(Propagation, DataGradient) {
  const Precision prec = GetParam();
  const Device dev = Device::cpu(2);
  int runs = 0;
  for (const Layer& L : layers())
    for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cpu)) {
      if (alg->decline_reason(L.problem(core::Direction::bwd_data, prec))) continue;
      const ConvTranspose2dOptions o = L.options(std::string(alg->name()), prec);
      const std::vector<float> w = ramp(static_cast<std::size_t>(L.co * L.k * L.k * L.ig()), 3, 1.0f);
      const std::vector<float> x(static_cast<std::size_t>(L.n * L.h * L.w * L.ci));  // shape only
      std::vector<float> dy = ramp(static_cast<std::size_t>(L.n * L.ho() * L.wo() * L.co), 7, -3.0f);
      std::vector<float> clean(x.size());
      ConvTranspose2dGrads gc;
      gc.dx = {clean.data(), DataType::float32, L.xs()};
      conv_transpose2d_backward(dev, {nullptr, DataType::float32, L.xs()}, {w.data(), DataType::float32, L.ws()},
                                {dy.data(), DataType::float32, L.ys()}, gc, o);
      const int64_t n0 = 0, oy0 = 4, ox0 = 5, o0 = 1;  // group 0
      for (const Special& sp : kSpecials) {
        SCOPED_TRACE(std::string(alg->name()) + " " + sp.name + " groups " + std::to_string(L.groups));
        std::vector<float> dys = dy;
        dys[static_cast<std::size_t>(((n0 * L.ho() + oy0) * L.wo() + ox0) * L.co + o0)] = sp.in;
        std::vector<float> dx(x.size());
        ConvTranspose2dGrads g;
        g.dx = {dx.data(), DataType::float32, L.xs()};
        conv_transpose2d_backward(dev, {nullptr, DataType::float32, L.xs()}, {w.data(), DataType::float32, L.ws()},
                                  {dys.data(), DataType::float32, L.ys()}, g, o);
        const int64_t g0 = o0 / L.og();
        int64_t reached = 0;
        for (int64_t in = 0; in < L.n; ++in)
          for (int64_t iy = 0; iy < L.h; ++iy)
            for (int64_t ix = 0; ix < L.w; ++ix)
              for (int64_t c = 0; c < L.ci; ++c) {
                const std::size_t i = static_cast<std::size_t>(((in * L.h + iy) * L.w + ix) * L.ci + c);
                const bool hit = in == n0 && c / L.ig() == g0 && L.reaches(iy, oy0) && L.reaches(ix, ox0);
                if (hit) {
                  ++reached;
                  ASSERT_TRUE(sp.reached_ok(dx[i])) << "dx(" << in << "," << iy << "," << ix << "," << c << ") = " << dx[i];
                } else {
                  ASSERT_TRUE(same_bits(dx[i], clean[i])) << "dx(" << in << "," << iy << "," << ix << "," << c
                                                          << ") = " << dx[i] << ", clean run " << clean[i];
                }
              }
        EXPECT_GT(reached, 0);
        ++runs;
      }
    }
  EXPECT_GE(runs, 2);
}

TEST_P(Propagation, WeightAndBiasGradient) {
  const Precision prec = GetParam();
  const Device dev = Device::cpu(2);
  int runs = 0;
  for (const Layer& L : layers())
    for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cpu)) {
      if (alg->decline_reason(L.problem(core::Direction::bwd_weights, prec))) continue;
      const ConvTranspose2dOptions o = L.options(std::string(alg->name()), prec);
      const std::vector<float> x = ramp(static_cast<std::size_t>(L.n * L.h * L.w * L.ci), 3, 1.0f);  // 1..3
      std::vector<float> dy = ramp(static_cast<std::size_t>(L.n * L.ho() * L.wo() * L.co), 7, -3.0f);
      const std::size_t nw = static_cast<std::size_t>(L.co * L.k * L.k * L.ig());
      std::vector<float> cw(nw), cb(static_cast<std::size_t>(L.co));
      ConvTranspose2dGrads gc;
      gc.dw = {cw.data(), DataType::float32, L.ws()};
      gc.db = {cb.data(), DataType::float32, {L.co}};
      conv_transpose2d_backward(dev, {x.data(), DataType::float32, L.xs()}, {nullptr, DataType::float32, L.ws()},
                                {dy.data(), DataType::float32, L.ys()}, gc, o);
      const int64_t n0 = 1, oy0 = 3, ox0 = 6, o0 = L.co - 2;
      for (const Special& sp : kSpecials) {
        SCOPED_TRACE(std::string(alg->name()) + " " + sp.name + " groups " + std::to_string(L.groups));
        std::vector<float> dys = dy;
        dys[static_cast<std::size_t>(((n0 * L.ho() + oy0) * L.wo() + ox0) * L.co + o0)] = sp.in;
        std::vector<float> dw(nw), db(cb.size());
        ConvTranspose2dGrads g;
        g.dw = {dw.data(), DataType::float32, L.ws()};
        g.db = {db.data(), DataType::float32, {L.co}};
        conv_transpose2d_backward(dev, {x.data(), DataType::float32, L.xs()}, {nullptr, DataType::float32, L.ws()},
                                  {dys.data(), DataType::float32, L.ys()}, g, o);
        for (int64_t oc = 0; oc < L.co; ++oc) {
          const std::size_t i = static_cast<std::size_t>(oc);
          if (oc == o0) EXPECT_TRUE(sp.reached_ok(db[i])) << "db[" << oc << "] = " << db[i];
          else EXPECT_TRUE(same_bits(db[i], cb[i])) << "db[" << oc << "] = " << db[i] << ", clean run " << cb[i];
        }
        // dw[o][q][p][c] pairs dy(oy0, ox0) with x(iy, ix) where iy reaches oy0 through tap q (and x alike).
        auto some_source = [&](int64_t extent, int64_t out, int64_t q) {
          for (int64_t i = 0; i < extent; ++i)
            if (L.tap(i, out, q)) return true;
          return false;
        };
        int64_t reached = 0;
        for (int64_t oc = 0; oc < L.co; ++oc)
          for (int64_t q = 0; q < L.k; ++q)
            for (int64_t p = 0; p < L.k; ++p)
              for (int64_t c = 0; c < L.ig(); ++c) {
                const std::size_t i = static_cast<std::size_t>(((oc * L.k + q) * L.k + p) * L.ig() + c);
                const bool hit = oc == o0 && some_source(L.h, oy0, q) && some_source(L.w, ox0, p);
                if (hit) {
                  ++reached;
                  ASSERT_TRUE(sp.reached_ok(dw[i]))
                      << "dw(" << oc << "," << q << "," << p << "," << c << ") = " << dw[i];
                } else {
                  ASSERT_TRUE(same_bits(dw[i], cw[i])) << "dw(" << oc << "," << q << "," << p << "," << c << ") = "
                                                       << dw[i] << ", clean run " << cw[i];
                }
              }
        EXPECT_GT(reached, 0);
        ++runs;
      }
    }
  EXPECT_GE(runs, 2);
}

INSTANTIATE_TEST_SUITE_P(Precisions, Propagation, ::testing::Values(Precision::fp32, Precision::bf16),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace tconv::reliability
