// cpu_ref_f64: the definition-level reference for all three directions (design §3 src/ref, §4.1).
//
// Written straight from the formulas in core/problem.hpp, never through the conv↔transpose mapping of
// core/direction.hpp, so a wrong mapping (or a wrong fast kernel) shows up against it. It is the test
// oracle and the last-resort algorithm, so it takes every problem core::validate() accepts.
//
// Numerics (the contract the tolerance table in tests/common/tolerance.hpp is written against):
//   * every multiply input (activations and weights) is loaded as float32 and rounded with
//     core::round_input(v, precision); bias and the summands of diff_bias are not multiply inputs and are
//     used as loaded;
//   * products and sums are formed in double, in a fixed order per output element (so the result does not
//     depend on the thread count), and rounded once when stored (act_type for images, float32 for weight
//     and bias gradients);
//   * fwd adds the bias and applies the fused neuron in double before that single rounding;
//   * accumulate adds the existing float32 gradient (as double) to the double sum, then rounds once.
//
// Strategy: inputs are first gathered into dense, already-rounded float32 copies (the views may be strided
// windows of larger images and of any act_type), then each output element is one loop over its valid taps.
// Valid tap ranges are computed per axis (no per-tap bounds test in the inner loops). Outputs are written
// only at view positions of the problem's extents, so a window's surroundings are never touched.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/mps_geometry.hpp"
#include "core/neuron.hpp"
#include "core/problem.hpp"
#include "registry/algorithm.hpp"

namespace tconv::registry {
namespace {

using core::Args;
using core::Geometry;
using core::Problem;
using core::TensorView;

// Dense [n][h][w][c] float32 copy of a strided view, each element rounded to the precision mode.
std::vector<float> gather_rounded(const TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, DataType t,
                                  Precision prec, int threads) {
  std::vector<float> out(static_cast<size_t>(n * h * w * c));
  const int64_t rows = n * h;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t in = r / h, iy = r % h;
    for (int64_t ix = 0; ix < w; ++ix) {
      const int64_t base = in * v.sn + iy * v.sh + ix * v.sw;
      float* dst = out.data() + ((r * w) + ix) * c;
      for (int64_t ic = 0; ic < c; ++ic) dst[ic] = core::round_input(core::load_as_f32(v.data, base + ic, t), prec);
    }
  }
  return out;
}

std::vector<float> round_weights(const float* w, int64_t count, Precision prec) {
  std::vector<float> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) out[static_cast<size_t>(i)] = core::round_input(w[i], prec);
  return out;
}

// One axis of the transposed convolution: dst position o = i·s − pad + d·(k − 1 − q).
struct Axis {
  int64_t in, out, k, s, d, pad;
  int64_t dst_of(int64_t i, int64_t q) const { return i * s - pad + d * (k - 1 - q); }
  // The source positions i in [0, in) whose tap q lands inside [0, out): [lo, hi).
  void src_range(int64_t q, int64_t& lo, int64_t& hi) const {
    const int64_t shift = -pad + d * (k - 1 - q);  // o = i·s + shift
    lo = std::max<int64_t>(0, core::mps::floor_div(-shift + s - 1, s));            // ceil(−shift/s)
    hi = std::min<int64_t>(in, core::mps::floor_div(out - 1 - shift, s) + 1);      // floor((out−1−shift)/s)+1
    if (hi < lo) hi = lo;
  }
};

// (tap, source position) pairs that reach destination position o, in increasing tap order.
struct Tap { int64_t q, i; };
std::vector<std::vector<Tap>> taps_per_dst(const Axis& a) {
  std::vector<std::vector<Tap>> t(static_cast<size_t>(a.out));
  for (int64_t q = 0; q < a.k; ++q) {
    int64_t lo, hi;
    a.src_range(q, lo, hi);
    for (int64_t i = lo; i < hi; ++i) t[static_cast<size_t>(a.dst_of(i, q))].push_back({q, i});
  }
  return t;
}
// (tap, destination position) pairs reached from source position i, in increasing tap order.
std::vector<std::vector<Tap>> taps_per_src(const Axis& a) {
  std::vector<std::vector<Tap>> t(static_cast<size_t>(a.in));
  for (int64_t q = 0; q < a.k; ++q) {
    int64_t lo, hi;
    a.src_range(q, lo, hi);
    for (int64_t i = lo; i < hi; ++i) t[static_cast<size_t>(i)].push_back({q, a.dst_of(i, q)});
  }
  return t;
}

Axis axis_h(const Geometry& g) { return {g.h_in, g.h_out, g.kh, g.stride_h, g.dil_h, g.pad_h}; }
Axis axis_w(const Geometry& g) { return {g.w_in, g.w_out, g.kw, g.stride_w, g.dil_w, g.pad_w}; }

// dst[n][oy][ox][o] = neuron(bias[o] + Σ_q Σ_p Σ_c src[n][iy][ix][g·Ig + c]·wei[o][q][p][c]).
void run_fwd(const Problem& p, const Args& a, int threads) {
  const Geometry& g = p.g;
  const int64_t Ig = g.ig(), Og = g.og();
  const std::vector<float> src = gather_rounded(a.src, g.n, g.h_in, g.w_in, g.c_in, p.act_type, p.precision, threads);
  const std::vector<float> wei = round_weights(a.wei, core::wei_elements(g), p.precision);
  const auto ty = taps_per_dst(axis_h(g));
  const auto tx = taps_per_dst(axis_w(g));
  const bool bias = p.with_bias && a.bias != nullptr;
  const int64_t rows = g.n * g.h_out;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / g.h_out, oy = r % g.h_out;
    for (int64_t ox = 0; ox < g.w_out; ++ox) {
      const int64_t out_base = n * a.dst.sn + oy * a.dst.sh + ox * a.dst.sw;
      for (int64_t o = 0; o < g.c_out; ++o) {
        const int64_t grp = o / Og;
        double acc = 0.0;
        for (const Tap& y : ty[static_cast<size_t>(oy)]) {
          for (const Tap& x : tx[static_cast<size_t>(ox)]) {
            const float* s = src.data() + ((n * g.h_in + y.i) * g.w_in + x.i) * g.c_in + grp * Ig;
            const float* w = wei.data() + ((o * g.kh + y.q) * g.kw + x.q) * Ig;
            for (int64_t c = 0; c < Ig; ++c) acc += static_cast<double>(s[c]) * static_cast<double>(w[c]);
          }
        }
        if (bias) acc += static_cast<double>(a.bias[o]);
        acc = core::neuron_apply<double>(p.neuron, acc);
        core::store_from_f32(a.dst.data, out_base + o, p.act_type, static_cast<float>(acc));
      }
    }
  }
}

// diff_src[n][iy][ix][g·Ig + c] = Σ_{o∈group g} Σ_q Σ_p wei[o][q][p][c]·diff_dst[n][oy][ox][o].
void run_bwd_data(const Problem& p, const Args& a, int threads) {
  const Geometry& g = p.g;
  const int64_t Ig = g.ig(), Og = g.og();
  const std::vector<float> dd =
      gather_rounded(a.diff_dst, g.n, g.h_out, g.w_out, g.c_out, p.act_type, p.precision, threads);
  const std::vector<float> wei = round_weights(a.wei, core::wei_elements(g), p.precision);
  const auto ty = taps_per_src(axis_h(g));
  const auto tx = taps_per_src(axis_w(g));
  const int64_t rows = g.n * g.h_in;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / g.h_in, iy = r % g.h_in;
    std::vector<double> acc(static_cast<size_t>(g.c_in));
    for (int64_t ix = 0; ix < g.w_in; ++ix) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (const Tap& y : ty[static_cast<size_t>(iy)]) {
        for (const Tap& x : tx[static_cast<size_t>(ix)]) {
          const float* d = dd.data() + ((n * g.h_out + y.i) * g.w_out + x.i) * g.c_out;
          for (int64_t o = 0; o < g.c_out; ++o) {
            const double dv = d[o];
            const float* w = wei.data() + ((o * g.kh + y.q) * g.kw + x.q) * Ig;
            double* ac = acc.data() + (o / Og) * Ig;
            for (int64_t c = 0; c < Ig; ++c) ac[c] += static_cast<double>(w[c]) * dv;
          }
        }
      }
      const int64_t out_base = n * a.diff_src.sn + iy * a.diff_src.sh + ix * a.diff_src.sw;
      for (int64_t c = 0; c < g.c_in; ++c)
        core::store_from_f32(a.diff_src.data, out_base + c, p.act_type, static_cast<float>(acc[static_cast<size_t>(c)]));
    }
  }
}

// diff_wei[o][q][p][c] = Σ_n Σ_iy Σ_ix src[n][iy][ix][g·Ig + c]·diff_dst[n][oy][ox][o];
// diff_bias[o] = Σ_n Σ_oy Σ_ox diff_dst[n][oy][ox][o].
void run_bwd_weights(const Problem& p, const Args& a, int threads) {
  const Geometry& g = p.g;
  const int64_t Ig = g.ig(), Og = g.og();
  const std::vector<float> src = gather_rounded(a.src, g.n, g.h_in, g.w_in, g.c_in, p.act_type, p.precision, threads);
  const std::vector<float> dd =
      gather_rounded(a.diff_dst, g.n, g.h_out, g.w_out, g.c_out, p.act_type, p.precision, threads);
  const Axis ah = axis_h(g), aw = axis_w(g);
  const int64_t units = g.c_out * g.kh;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t o = u / g.kh, q = u % g.kh, grp = o / Og;
    int64_t ylo, yhi;
    ah.src_range(q, ylo, yhi);
    std::vector<double> acc(static_cast<size_t>(Ig));
    for (int64_t pp = 0; pp < g.kw; ++pp) {
      int64_t xlo, xhi;
      aw.src_range(pp, xlo, xhi);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < g.n; ++n) {
        for (int64_t iy = ylo; iy < yhi; ++iy) {
          const int64_t oy = ah.dst_of(iy, q);
          for (int64_t ix = xlo; ix < xhi; ++ix) {
            const int64_t ox = aw.dst_of(ix, pp);
            const double dv = dd[static_cast<size_t>(((n * g.h_out + oy) * g.w_out + ox) * g.c_out + o)];
            const float* s = src.data() + ((n * g.h_in + iy) * g.w_in + ix) * g.c_in + grp * Ig;
            for (int64_t c = 0; c < Ig; ++c) acc[static_cast<size_t>(c)] += static_cast<double>(s[c]) * dv;
          }
        }
      }
      float* w = a.diff_wei + ((o * g.kh + q) * g.kw + pp) * Ig;
      for (int64_t c = 0; c < Ig; ++c) {
        const double prev = p.accumulate ? static_cast<double>(w[c]) : 0.0;
        w[c] = static_cast<float>(prev + acc[static_cast<size_t>(c)]);
      }
    }
  }
  if (p.with_bias && a.diff_bias != nullptr) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < g.c_out; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < g.n; ++n)
        for (int64_t oy = 0; oy < g.h_out; ++oy)
          for (int64_t ox = 0; ox < g.w_out; ++ox)
            acc += static_cast<double>(core::load_as_f32(
                a.diff_dst.data, n * a.diff_dst.sn + oy * a.diff_dst.sh + ox * a.diff_dst.sw + o, p.act_type));
      const double prev = p.accumulate ? static_cast<double>(a.diff_bias[o]) : 0.0;
      a.diff_bias[o] = static_cast<float>(prev + acc);
    }
  }
}

constexpr int64_t kSerialBelowMacs = int64_t{1} << 15;

class CpuRefF64 final : public Algorithm {
 public:
  std::string_view name() const noexcept override { return "cpu_ref_f64"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  std::optional<std::string> decline_reason(const core::Problem&) const override { return std::nullopt; }
  core::Status run(const core::Problem& p, const core::Args& a, void*, const ExecContext& ctx) const override {
    // Small problems run on one thread: a parallel region costs more than they do, and on a loaded machine
    // waiting OpenMP threads dominate. Results do not depend on the thread count either way.
    const int threads = p.macs() < kSerialBelowMacs ? 1 : std::max(1, ctx.num_threads);
    switch (p.dir) {
      case core::Direction::fwd: run_fwd(p, a, threads); break;
      case core::Direction::bwd_data: run_bwd_data(p, a, threads); break;
      case core::Direction::bwd_weights: run_bwd_weights(p, a, threads); break;
    }
    return core::Status::ok_status();
  }
};

}  // namespace

std::vector<const Algorithm*> reference_algorithms() {
  static const CpuRefF64 ref;
  return {&ref};
}

}  // namespace tconv::registry
