// cpu_ref_f64 against a brute-force transcription of problem.hpp's scatter definition (every src pixel,
// every tap, bounds tested per term), computed in double in this file. The reference computes valid tap
// ranges instead of testing bounds and gathers per output, so this catches an off-by-one in its ranges
// or a wrong role/stride without relying on any other algorithm.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/cases.hpp"

namespace tconv::testing {
namespace {

// dst (fwd), diff_src (bwd_data) or diff_wei (+ diff_bias) by the scatter definition, in double.
std::vector<double> by_definition(const Case& c) {
  const Problem& p = c.p;
  const Geometry& g = p.g;
  const int64_t Ig = g.ig(), Og = g.og();
  auto rin = [&](float v) { return static_cast<double>(core::round_input(v, p.precision)); };
  std::vector<double> dst(static_cast<size_t>(core::dst_elements(g)), 0.0);
  std::vector<double> dsrc(static_cast<size_t>(core::src_elements(g)), 0.0);
  std::vector<double> dwei(static_cast<size_t>(core::wei_elements(g)), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t iy = 0; iy < g.h_in; ++iy)
      for (int64_t ix = 0; ix < g.w_in; ++ix)
        for (int64_t q = 0; q < g.kh; ++q)
          for (int64_t pp = 0; pp < g.kw; ++pp) {
            const int64_t oy = iy * g.stride_h - g.pad_h + g.dil_h * (g.kh - 1 - q);
            const int64_t ox = ix * g.stride_w - g.pad_w + g.dil_w * (g.kw - 1 - pp);
            if (oy < 0 || oy >= g.h_out || ox < 0 || ox >= g.w_out) continue;
            for (int64_t o = 0; o < g.c_out; ++o)
              for (int64_t ci = 0; ci < Ig; ++ci) {
                const int64_t cg = (o / Og) * Ig + ci;
                const int64_t wi = ((o * g.kh + q) * g.kw + pp) * Ig + ci;
                const double w = rin(c.wei[static_cast<size_t>(wi)]);
                const size_t di = static_cast<size_t>(((n * g.h_out + oy) * g.w_out + ox) * g.c_out + o);
                const size_t si = static_cast<size_t>(((n * g.h_in + iy) * g.w_in + ix) * g.c_in + cg);
                if (p.dir == Direction::fwd) dst[di] += rin(c.src_side.get(n, iy, ix, cg)) * w;
                if (p.dir == Direction::bwd_data) dsrc[si] += w * rin(c.dst_side.get(n, oy, ox, o));
                if (p.dir == Direction::bwd_weights)
                  dwei[static_cast<size_t>(wi)] += rin(c.src_side.get(n, iy, ix, cg)) * rin(c.dst_side.get(n, oy, ox, o));
              }
          }
  if (p.dir == Direction::fwd) {
    for (size_t i = 0; i < dst.size(); ++i) {
      if (p.with_bias) dst[i] += c.bias[i % static_cast<size_t>(g.c_out)];
      dst[i] = core::neuron_apply<double>(p.neuron, dst[i]);
    }
    return dst;
  }
  if (p.dir == Direction::bwd_data) return dsrc;
  if (p.accumulate)
    for (size_t i = 0; i < dwei.size(); ++i) dwei[i] += c.diff_wei[static_cast<int64_t>(i)];
  if (p.with_bias) {
    for (int64_t o = 0; o < g.c_out; ++o) {
      double s = p.accumulate ? c.diff_bias[o] : 0.0;
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t oy = 0; oy < g.h_out; ++oy)
          for (int64_t ox = 0; ox < g.w_out; ++ox) s += c.dst_side.get(n, oy, ox, o);
      dwei.push_back(s);
    }
  }
  return dwei;
}

TEST(ReferenceDefinition, MatchesScatterForm) {
  std::mt19937_64 rng(20261124);
  int checked = 0;
  for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights}) {
    GenOptions opt;
    opt.dir = d;
    opt.neuron = true;
    opt.exact_neurons = false;
    opt.max_macs = 20000;
    for (ShapeClass sc : all_shape_classes()) {
      SCOPED_TRACE(to_string(sc));
      for (int i = 0; i < 6; ++i) {
        const Problem p = random_problem(rng, sc, opt);
        const Case c = make_case(p, Fill::random, true, rng);
        const Outputs o = run(reference(), c, 2);
        ASSERT_TRUE(o.status.ok());
        const std::vector<float> got = output_values(c, o);
        const std::vector<double> want = by_definition(c);
        const Case mc = magnitude_case(c);
        const std::vector<double> mag = by_definition(mc);
        const DataType t = d == Direction::bwd_weights ? DataType::float32 : p.act_type;
        ASSERT_EQ(got.size(), want.size());
        for (size_t k = 0; k < want.size(); ++k) {
          // Both sums are double (order differs: ~1e-16·M); the reference then rounds once or twice.
          const double lim = 1e-12 * (mag[k] + 1.0) + ulp_of(t, std::fabs(want[k])) +
                             (t == DataType::float32 ? 0.0 : ulp_of(DataType::float32, std::fabs(want[k])));
          ASSERT_LE(std::fabs(got[k] - want[k]), lim) << p.describe() << " output " << k;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 3 * 6 * static_cast<int>(all_shape_classes().size()));
}

}  // namespace
}  // namespace tconv::testing
