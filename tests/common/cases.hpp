// Run-and-compare helpers shared by every test that runs registered algorithms (design §4.1–4.2).
//
// A Case holds one problem's inputs (as windows of poisoned buffers, see images.hpp) and the initial state of
// its outputs. run() executes any registered algorithm on a fresh copy of the outputs; check_footprint()
// verifies that every output element inside the views was written and nothing else was touched;
// compare_exact()/compare_to_reference() judge the values against cpu_ref_f64.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/images.hpp"
#include "common/problems.hpp"
#include "common/tolerance.hpp"
#include "core/neuron.hpp"
#include "registry/algorithm.hpp"

namespace tconv::testing {

enum class Fill {
  integers,  // values in [−3, 3]: every float32 sum in the tests is exact ⇒ zero tolerance
  random,    // uniform in [−1, 1]
};

struct Case {
  Problem p;
  Image src_side;  // src / diff_src: [n][h_in][w_in][c_in]
  Image dst_side;  // dst / diff_dst: [n][h_out][w_out][c_out]
  std::vector<float> wei, bias;
  GuardedArray diff_wei, diff_bias;  // initial contents: poison, or the previous values when accumulating

  bool output_is_src_side() const { return p.dir == Direction::bwd_data; }
  bool output_is_image() const { return p.dir != Direction::bwd_weights; }
};

inline float draw(std::mt19937_64& rng, Fill f) {
  if (f == Fill::integers) return static_cast<float>(uniform(rng, -3, 3));
  return std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
}

inline Case make_case(const Problem& p, Fill fill, bool windowed, std::mt19937_64& rng) {
  const Geometry& g = p.g;
  Case c;
  c.p = p;
  c.src_side = make_image(p.act_type, g.n, g.h_in, g.w_in, g.c_in, windowed, rng);
  c.dst_side = make_image(p.act_type, g.n, g.h_out, g.w_out, g.c_out, windowed, rng);
  auto f = [&](int64_t, int64_t, int64_t, int64_t) { return draw(rng, fill); };
  if (p.dir != Direction::bwd_data) c.src_side.fill(f);
  if (p.dir != Direction::fwd) c.dst_side.fill(f);
  c.wei.resize(static_cast<size_t>(core::wei_elements(g)));
  for (float& v : c.wei) v = draw(rng, fill);
  c.bias.resize(static_cast<size_t>(g.c_out));
  for (float& v : c.bias) v = draw(rng, fill);
  if (p.dir == Direction::bwd_weights) {
    c.diff_wei = GuardedArray(core::wei_elements(g));
    c.diff_bias = GuardedArray(g.c_out);
    if (p.accumulate) {
      for (int64_t i = 0; i < c.diff_wei.size; ++i) c.diff_wei[i] = draw(rng, fill);
      for (int64_t i = 0; i < c.diff_bias.size; ++i) c.diff_bias[i] = draw(rng, fill);
    }
  }
  return c;
}

struct Outputs {
  Image src_side, dst_side;  // copies of the case's images after the run
  GuardedArray diff_wei, diff_bias;
  core::Status status;
};

// Runs `alg` on a copy of the case's buffers with `threads` OpenMP threads.
inline Outputs run(const registry::Algorithm& alg, const Case& c, int threads) {
  Outputs o;
  o.src_side = c.src_side;
  o.dst_side = c.dst_side;
  o.diff_wei = c.diff_wei;
  o.diff_bias = c.diff_bias;
  core::Args a;
  a.src = o.src_side.view();
  a.diff_src = a.src;
  a.dst = o.dst_side.view();
  a.diff_dst = a.dst;
  a.wei = c.wei.data();
  a.bias = c.p.with_bias && c.p.dir == Direction::fwd ? c.bias.data() : nullptr;
  if (c.p.dir == Direction::bwd_weights) {
    a.wei = nullptr;
    a.diff_wei = o.diff_wei.data();
    a.diff_bias = c.p.with_bias ? o.diff_bias.data() : nullptr;
  }
  std::vector<unsigned char> ws(alg.workspace_bytes(c.p) + 64);
  registry::ExecContext ctx;
  ctx.num_threads = threads;
  o.status = alg.run(c.p, a, ws.data(), ctx);
  return o;
}

inline const registry::Algorithm& reference() {
  static const registry::Algorithm* r = registry::find("cpu_ref_f64");
  return *r;
}

// The values an algorithm produced, in a fixed order (output image window, or diff_wei then diff_bias).
inline std::vector<float> output_values(const Case& c, const Outputs& o) {
  if (c.p.dir == Direction::fwd) return o.dst_side.values();
  if (c.p.dir == Direction::bwd_data) return o.src_side.values();
  std::vector<float> v = o.diff_wei.values();
  if (c.p.with_bias) {
    const std::vector<float> b = o.diff_bias.values();
    v.insert(v.end(), b.begin(), b.end());
  }
  return v;
}

// Empty if the footprint is right: every output element inside the view written (no poison left), every
// element outside the view and every input untouched, no write past the weight-gradient arrays.
inline std::string check_footprint(const Case& c, const Outputs& o) {
  std::ostringstream m;
  auto images = [&](const Image& before, const Image& after, bool is_output, const char* name) {
    for (int64_t i = 0; i < after.elements(); ++i) {
      const bool in = after.inside(i);
      if (is_output && in) {
        if (after.raw(i) == after.poison_bits()) {
          m << name << " element " << i << " inside the view was not written; ";
          return;
        }
      } else if (after.raw(i) != before.raw(i)) {
        m << name << " element " << i << (in ? " (an input)" : " outside the view") << " was modified; ";
        return;
      }
    }
  };
  images(c.src_side, o.src_side, c.p.dir == Direction::bwd_data, "src side");
  images(c.dst_side, o.dst_side, c.p.dir == Direction::fwd, "dst side");
  if (c.p.dir == Direction::bwd_weights) {
    if (!o.diff_wei.guards_intact()) m << "write past the ends of diff_wei; ";
    if (!o.diff_bias.guards_intact()) m << "write past the ends of diff_bias; ";
    for (int64_t i = 0; i < o.diff_wei.size; ++i)
      if (core::f32_bits(o.diff_wei[i]) == kPoisonF32) { m << "diff_wei[" << i << "] not written; "; break; }
    for (int64_t i = 0; i < o.diff_bias.size; ++i) {
      const bool poisoned = core::f32_bits(o.diff_bias[i]) == kPoisonF32;
      if (c.p.with_bias && poisoned) { m << "diff_bias[" << i << "] not written; "; break; }
      if (!c.p.with_bias && core::f32_bits(o.diff_bias[i]) != core::f32_bits(c.diff_bias[i])) {
        m << "diff_bias[" << i << "] written without with_bias; "; break;
      }
    }
  }
  return m.str();
}

// Bitwise comparison of two runs' outputs; empty if identical.
inline std::string compare_exact(const Case& c, const Outputs& want, const Outputs& got) {
  const std::vector<float> a = output_values(c, want), b = output_values(c, got);
  for (size_t i = 0; i < a.size(); ++i) {
    if (core::f32_bits(a[i]) != core::f32_bits(b[i])) {
      std::ostringstream m;
      m.precision(9);
      m << c.p.describe() << ": output " << i << " of " << a.size() << " is " << b[i] << ", expected exactly " << a[i];
      return m.str();
    }
  }
  return {};
}

// A copy of the case with every input replaced by its absolute value and no neuron: the reference run on
// it gives each output's magnitude M = Σ|products| (+|bias|, +|previous| when accumulating).
inline Case magnitude_case(const Case& c) {
  Case m = c;
  m.p.neuron = {};
  auto absimg = [](Image& im) {
    Image copy = im;
    im.fill([&](int64_t n, int64_t y, int64_t x, int64_t ch) { return std::fabs(copy.get(n, y, x, ch)); });
  };
  if (c.p.dir != Direction::bwd_data) absimg(m.src_side);
  if (c.p.dir != Direction::fwd) absimg(m.dst_side);
  for (float& v : m.wei) v = std::fabs(v);
  for (float& v : m.bias) v = std::fabs(v);
  if (c.p.accumulate) {
    for (int64_t i = 0; i < m.diff_wei.size; ++i) m.diff_wei[i] = std::fabs(m.diff_wei[i]);
    for (int64_t i = 0; i < m.diff_bias.size; ++i) m.diff_bias[i] = std::fabs(m.diff_bias[i]);
  }
  return m;
}

// Terms summed into one output (upper bound), for the tolerance table.
inline int64_t reduction_length(const Problem& p) {
  const Geometry& g = p.g;
  switch (p.dir) {
    case Direction::fwd: return g.kh * g.kw * g.ig() + 1;
    case Direction::bwd_data: return g.kh * g.kw * g.og();
    case Direction::bwd_weights: return g.n * std::max(g.h_in * g.w_in, g.h_out * g.w_out) + 1;
  }
  return 1;
}

// Compares `got` with the reference under the tolerance table (tolerance.hpp). With a fused neuron the
// pre-activation bound is carried through the neuron's local slope, plus 8 float32 ulps for evaluating
// the neuron itself in float. Empty if within bounds.
inline std::string compare_to_reference(const Case& c, const Outputs& got) {
  const registry::Algorithm& ref = reference();
  const Outputs want = run(ref, c, 2);
  const Case mc = magnitude_case(c);
  const std::vector<float> mag = output_values(mc, run(ref, mc, 2));
  std::vector<float> pre;
  if (c.p.neuron.type != NeuronType::none) {
    Case pc = c;
    pc.p.neuron = {};
    pre = output_values(pc, run(ref, pc, 2));
  }
  const std::vector<float> a = output_values(c, want), b = output_values(c, got);
  const Tolerance tol = tolerance_for(c.p.precision, reduction_length(c.p));
  const DataType out_type = c.p.dir == Direction::bwd_weights ? DataType::float32 : c.p.act_type;
  for (size_t i = 0; i < a.size(); ++i) {
    double lim = 0;
    if (pre.empty()) {
      lim = bound(tol, a[i], b[i], mag[i], out_type);
    } else {
      const double bp = bound(tol, pre[i], pre[i], mag[i], DataType::float32);
      double slope = 0;
      for (double x : {pre[i] - bp, static_cast<double>(pre[i]), pre[i] + bp})
        slope = std::max(slope, std::fabs(core::neuron_derivative<double>(c.p.neuron, x)));
      const double m = std::max(std::fabs(a[i]), std::fabs(b[i]));
      lim = slope * bp + ulp_of(out_type, m) + 8 * ulp_of(DataType::float32, m);
    }
    const double err = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!(err <= lim)) {
      std::ostringstream m;
      m.precision(9);
      m << c.p.describe() << ": output " << i << " of " << a.size() << " is " << b[i] << ", reference " << a[i]
        << ", |error| " << err << " > bound " << lim << " (magnitude " << mag[i] << ")";
      return m.str();
    }
  }
  return {};
}

}  // namespace tconv::testing
