// Definition-level MPS formulas for the API tests, written straight from the spec (a.5.2–a.5.4, a.7.3,
// a.7.5) on dense float64 NHWC arrays, independently of core/mps_geometry and the canonical problem, so a
// wrong reduction in src/api is caught.
#pragma once

#include <cstdint>
#include <vector>

namespace tconv::test {

struct Geo1 {  // one transposed convolution layer
  int64_t nin = 1, nout = 1, groups = 1;
  int64_t kw = 1, kh = 1, sx = 1, sy = 1, rx = 1, ry = 1;
};

inline int64_t ke(int64_t k, int64_t r) { return (k - 1) * r + 1; }
inline int64_t hw(int64_t k, int64_t r) { return ke(k, r) / 2; }
inline int64_t par(int64_t k, int64_t r) { return ke(k, r) % 2 == 0 ? 1 : 0; }

// Z[n][j][i][c] of a.5.2 (0 outside).
inline double zval(const std::vector<double>& x, int64_t H, int64_t W, int64_t C, int64_t n, int64_t j, int64_t i,
                   int64_t c, int64_t sx, int64_t sy) {
  if (j < 0 || i < 0 || j % sy != 0 || i % sx != 0) return 0.0;
  const int64_t y = j / sy, xx = i / sx;
  if (y >= H || xx >= W) return 0.0;
  return x[((n * H + y) * W + xx) * C + c];
}

// a.5.4 for a whole Hout×Wout destination (clip origin 0), total offsets Tx, Ty. x: N×H×W×nin. w: OHWI.
inline std::vector<double> forward(const Geo1& g, const std::vector<double>& x, int64_t N, int64_t H, int64_t W,
                                   const std::vector<double>& w, const std::vector<double>& bias, int64_t Hout,
                                   int64_t Wout, int64_t Tx, int64_t Ty) {
  const int64_t Ig = g.nin / g.groups, Og = g.nout / g.groups;
  std::vector<double> y(static_cast<std::size_t>(N * Hout * Wout * g.nout));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t yy = 0; yy < Hout; ++yy)
      for (int64_t xx = 0; xx < Wout; ++xx)
        for (int64_t o = 0; o < g.nout; ++o) {
          double acc = bias.empty() ? 0.0 : bias[o];
          const int64_t grp = o / Og;
          for (int64_t q = 0; q < g.kh; ++q)
            for (int64_t p = 0; p < g.kw; ++p)
              for (int64_t c = 0; c < Ig; ++c)
                acc += w[((o * g.kh + q) * g.kw + p) * Ig + c] *
                       zval(x, H, W, g.nin, n, Ty + yy - hw(g.kh, g.ry) + g.ry * q, Tx + xx - hw(g.kw, g.rx) + g.rx * p,
                            grp * Ig + c, g.sx, g.sy);
          y[((n * Hout + yy) * Wout + xx) * g.nout + o] = acc;
        }
  return y;
}

// a.7.3 data gradient: gX (N×H×W×nin) from gY (N×Hg×Wg×nout).
inline std::vector<double> grad_data(const Geo1& g, const std::vector<double>& gy, int64_t N, int64_t Hg, int64_t Wg,
                                     const std::vector<double>& w, int64_t H, int64_t W, int64_t Tx, int64_t Ty) {
  const int64_t Ig = g.nin / g.groups, Og = g.nout / g.groups;
  std::vector<double> gx(static_cast<std::size_t>(N * H * W * g.nin));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t v = 0; v < H; ++v)
      for (int64_t u = 0; u < W; ++u)
        for (int64_t ci = 0; ci < g.nin; ++ci) {
          const int64_t grp = ci / Ig, c = ci % Ig;
          double acc = 0.0;
          for (int64_t o = grp * Og; o < (grp + 1) * Og; ++o)
            for (int64_t q = 0; q < g.kh; ++q)
              for (int64_t p = 0; p < g.kw; ++p) {
                const int64_t yy = g.sy * v - Ty + hw(g.kh, g.ry) - g.ry * q;
                const int64_t xx = g.sx * u - Tx + hw(g.kw, g.rx) - g.rx * p;
                if (yy < 0 || yy >= Hg || xx < 0 || xx >= Wg) continue;
                acc += w[((o * g.kh + q) * g.kw + p) * Ig + c] * gy[((n * Hg + yy) * Wg + xx) * g.nout + o];
              }
          gx[((n * H + v) * W + u) * g.nin + ci] = acc;
        }
  return gx;
}

// a.7.3 weight and bias gradients, summed over the batch.
inline void grad_weights(const Geo1& g, const std::vector<double>& gy, int64_t N, int64_t Hg, int64_t Wg,
                         const std::vector<double>& x, int64_t H, int64_t W, int64_t Tx, int64_t Ty,
                         std::vector<double>& gw, std::vector<double>& gb) {
  const int64_t Ig = g.nin / g.groups, Og = g.nout / g.groups;
  gw.assign(static_cast<std::size_t>(g.nout * g.kh * g.kw * Ig), 0.0);
  gb.assign(static_cast<std::size_t>(g.nout), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t yy = 0; yy < Hg; ++yy)
      for (int64_t xx = 0; xx < Wg; ++xx)
        for (int64_t o = 0; o < g.nout; ++o) {
          const double d = gy[((n * Hg + yy) * Wg + xx) * g.nout + o];
          gb[o] += d;
          const int64_t grp = o / Og;
          for (int64_t q = 0; q < g.kh; ++q)
            for (int64_t p = 0; p < g.kw; ++p)
              for (int64_t c = 0; c < Ig; ++c)
                gw[((o * g.kh + q) * g.kw + p) * Ig + c] +=
                    d * zval(x, H, W, g.nin, n, Ty + yy - hw(g.kh, g.ry) + g.ry * q, Tx + xx - hw(g.kw, g.rx) + g.rx * p,
                             grp * Ig + c, g.sx, g.sy);
        }
}

// Small deterministic integers in [-range, range] (exact in float32 sums of the sizes tests use).
inline std::vector<double> ints(std::size_t n, uint32_t seed, int range = 3) {
  std::vector<double> v(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& e : v) {
    s = s * 1664525u + 1013904223u;
    e = static_cast<double>(static_cast<int>((s >> 16) % static_cast<uint32_t>(2 * range + 1)) - range);
  }
  return v;
}
inline std::vector<float> to_f(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

}  // namespace tconv::test
