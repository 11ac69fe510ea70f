// Direct (pointer-table-free) enumeration of the tap pairs of a canonical problem, shared by the streaming
// CPU algorithms (depthwise_stream.cpp, few_channels.cpp).
//
// Every term of every direction pairs one src pixel with one dst pixel through one tap t = q·kw + p:
//   oy = iy·s_h − pad_h + d_h·(kh − 1 − q),   ox = ix·s_w − pad_w + d_w·(kw − 1 − p)      (problem.hpp)
// A "walk" visits the pixels of one side (the walker: the side whose pixels a kernel writes or streams) and
// gives, for each walker pixel and tap, the partner pixel on the other side by plain address arithmetic,
// so the kernels need no per-pixel pointer tables:
//   walk_dst: walker = dst, cut into stride phases (oy mod s_h, ox mod s_w). All pixels of a phase are hit
//             by the same taps, so a phase lists only those: no term multiplies an inserted zero (the
//             sub-pixel decomposition). Partner = src at (yy + py[i], xx + px[i]).
//   walk_src: walker = src, every tap; partner = dst at (iy·s_h + py[i], ix·s_w + px[i]).
// Within a walker row a tap's partner column lies inside the partner image on one contiguous range of
// columns [xlo, xhi): kernels run the columns inside every active tap's range without bounds checks and only
// the few edge columns with them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/problem.hpp"

namespace tconv::cpu {

// Floor division for a possibly negative numerator and positive divisor.
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

struct TapSegment {
  int64_t y0 = 0, x0 = 0;    // walker image coordinate of grid point (yy, xx) is (y0 + yy·ys, x0 + xx·xs)
  int64_t ys = 1, xs = 1;
  int64_t ny = 0, nx = 0;    // grid extent
  int64_t pys = 1, pxs = 1;  // partner coordinate of tap i: (yy·pys + py[i], xx·pxs + px[i])
  std::vector<int64_t> tap, py, px;  // tap ids t = q·kw + p, ascending, and their partner offsets
  std::vector<int64_t> xlo, xhi;     // grid columns [xlo, xhi) whose partner column of tap i is inside
  int64_t partner_row(size_t i, int64_t yy) const { return yy * pys + py[i]; }
};

struct TapWalk {
  std::vector<TapSegment> segs;
  int64_t ph = 0, pw = 0;  // partner image extent
  int64_t rows(int64_t n) const {
    int64_t r = 0;
    for (const TapSegment& s : segs) r += n * s.ny;
    return r;
  }
};

namespace detail {
inline void finish_segment(TapSegment& s, int64_t pw) {
  s.xlo.resize(s.tap.size());
  s.xhi.resize(s.tap.size());
  for (size_t i = 0; i < s.tap.size(); ++i) {
    // 0 ≤ xx·pxs + px < pw  ⇔  ceil(−px / pxs) ≤ xx ≤ floor((pw − 1 − px) / pxs)
    s.xlo[i] = std::clamp<int64_t>(-floor_div(s.px[i], s.pxs), 0, s.nx);
    s.xhi[i] = std::clamp<int64_t>(floor_div(pw - 1 - s.px[i], s.pxs) + 1, s.xlo[i], s.nx);
  }
}
}  // namespace detail

// Walker = dst, one segment per stride phase (phases with no tap are kept: their pixels get the bias only).
inline TapWalk walk_dst(const core::Geometry& g) {
  TapWalk w;
  w.ph = g.h_in;
  w.pw = g.w_in;
  auto mod = [](int64_t a, int64_t s) { return ((a % s) + s) % s; };
  for (int64_t py = 0; py < std::min(g.stride_h, g.h_out); ++py)
    for (int64_t px = 0; px < std::min(g.stride_w, g.w_out); ++px) {
      TapSegment s;
      s.y0 = py;
      s.x0 = px;
      s.ys = g.stride_h;
      s.xs = g.stride_w;
      s.ny = (g.h_out - py + g.stride_h - 1) / g.stride_h;
      s.nx = (g.w_out - px + g.stride_w - 1) / g.stride_w;
      for (int64_t q = 0; q < g.kh; ++q) {
        const int64_t ty = py + g.pad_h - g.dil_h * (g.kh - 1 - q);  // = iy·s_h − yy·s_h for a hit
        if (mod(ty, g.stride_h) != 0) continue;
        for (int64_t p = 0; p < g.kw; ++p) {
          const int64_t tx = px + g.pad_w - g.dil_w * (g.kw - 1 - p);
          if (mod(tx, g.stride_w) != 0) continue;
          s.tap.push_back(q * g.kw + p);
          s.py.push_back(ty / g.stride_h);  // exact divisions
          s.px.push_back(tx / g.stride_w);
        }
      }
      detail::finish_segment(s, w.pw);
      w.segs.push_back(std::move(s));
    }
  return w;
}

// Walker = src, one segment, every tap.
inline TapWalk walk_src(const core::Geometry& g) {
  TapWalk w;
  w.ph = g.h_out;
  w.pw = g.w_out;
  TapSegment s;
  s.ny = g.h_in;
  s.nx = g.w_in;
  s.pys = g.stride_h;
  s.pxs = g.stride_w;
  for (int64_t q = 0; q < g.kh; ++q)
    for (int64_t p = 0; p < g.kw; ++p) {
      s.tap.push_back(q * g.kw + p);
      s.py.push_back(-g.pad_h + g.dil_h * (g.kh - 1 - q));
      s.px.push_back(-g.pad_w + g.dil_w * (g.kw - 1 - p));
    }
  detail::finish_segment(s, w.pw);
  w.segs.push_back(std::move(s));
  return w;
}

// A run of consecutive walker rows (n, yy) of one segment: the unit of work and of the weight gradient's
// fixed chunking.
struct RowRange {
  int64_t seg, r0, r1;  // rows r = n·ny + yy in [r0, r1) of segment seg
};

// Cuts every segment's rows into runs of at most `rows_per_range` rows (fixed by the caller's choice).
inline std::vector<RowRange> row_ranges(const TapWalk& w, int64_t n, int64_t rows_per_range) {
  std::vector<RowRange> v;
  rows_per_range = std::max<int64_t>(1, rows_per_range);
  for (size_t s = 0; s < w.segs.size(); ++s) {
    const int64_t rows = n * w.segs[s].ny;
    for (int64_t r = 0; r < rows; r += rows_per_range)
      v.push_back({static_cast<int64_t>(s), r, std::min(rows, r + rows_per_range)});
  }
  return v;
}

// Active taps of a walker row (those whose partner row lies inside the partner image), in ascending order,
// and the grid columns [lo, hi) where every active tap's partner column lies inside too.
struct RowTaps {
  std::vector<int32_t> idx;  // indices into the segment's tap list
  int64_t lo = 0, hi = 0;
};
inline void row_taps(const TapSegment& s, int64_t yy, int64_t ph, RowTaps& out) {
  out.idx.clear();
  out.lo = 0;
  out.hi = s.nx;
  for (size_t i = 0; i < s.tap.size(); ++i) {
    const int64_t y = s.partner_row(i, yy);
    if (y < 0 || y >= ph) continue;
    out.idx.push_back(static_cast<int32_t>(i));
    out.lo = std::max(out.lo, s.xlo[i]);
    out.hi = std::min(out.hi, s.xhi[i]);
  }
  if (out.hi < out.lo) out.hi = out.lo;
}

// One active tap of a walker row, as the kernels use it: the partner pointer at grid column 0 (channel offsets
// included), the weight pointer of the tap (if the kernel has one), and the grid columns [lo, hi) where the
// tap's partner column is inside the partner image.
struct ActiveTap {
  const float* p;
  const float* w;
  int64_t lo, hi;
};

}  // namespace tconv::cpu
