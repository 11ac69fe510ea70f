// cuda_stream_depthwise's tiled plan (src/cuda/stream_depthwise_plan.hpp), checked without a GPU: which problems
// it takes, that its tiles cover the image and its regions every tap of a tile, that a block's threads and shared
// memory fit, that the weight gradient's chunks cover every tile once, and that the bias ownership ranges
// partition the output image (each bias term summed exactly once).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "core/problem.hpp"
#include "cuda/stream_depthwise_plan.hpp"

namespace tconv::cuda_stream {
namespace {

core::Problem depthwise(core::Direction dir, DataType t, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                        int64_t s, int64_t dil, int64_t pad, int64_t out_pad, bool bias = true) {
  core::Problem p;
  p.dir = dir;
  p.act_type = t;
  p.precision = t == DataType::float32 ? Precision::fp32 : (t == DataType::float16 ? Precision::fp16 : Precision::bf16);
  core::Geometry& g = p.g;
  g.n = n;
  g.c_in = g.c_out = g.groups = c;
  g.h_in = h;
  g.w_in = w;
  g.kh = g.kw = k;
  g.stride_h = g.stride_w = s;
  g.dil_h = g.dil_w = dil;
  g.pad_h = g.pad_w = pad;
  g.h_out = core::Geometry::out_size(h, k, s, dil, pad, out_pad);
  g.w_out = core::Geometry::out_size(w, k, s, dil, pad, out_pad);
  p.with_bias = bias && dir == core::Direction::bwd_weights;
  return p;
}

// Every invariant the kernels rely on, for a taken plan.
void check_plan(const core::Problem& p, const DwPlan& d) {
  const core::Geometry& g = p.g;
  SCOPED_TRACE(p.describe());
  ASSERT_TRUE(d.taken);
  const int64_t es = static_cast<int64_t>(size_of(p.act_type));
  EXPECT_EQ(d.vec * es, 16);
  EXPECT_TRUE(d.vpp == 1 || d.vpp == 2 || d.vpp == 4 || d.vpp == 8) << d.vpp;
  EXPECT_LE(d.vpp * d.vec, std::max<int64_t>(g.c_in, d.vec));       // no channel tile wider than needed
  EXPECT_GE(d.ctiles * d.vpp * d.vec, g.c_in);                       // the channel tiles cover the channels
  EXPECT_LT((d.ctiles - 1) * d.vpp * d.vec, g.c_in);                 // and none is empty
  // Tiles cover the image, none empty; the region holds every tap of every pixel of a tile.
  EXPECT_GE(d.ty, 1);
  EXPECT_GE(d.tx, 1);
  EXPECT_LE(d.ty, kDwTile);
  EXPECT_LE(d.tx, kDwTile);
  EXPECT_GE(d.tiles_y * d.ty, g.h_in);
  EXPECT_LT((d.tiles_y - 1) * d.ty, g.h_in);
  EXPECT_GE(d.tiles_x * d.tx, g.w_in);
  EXPECT_LT((d.tiles_x - 1) * d.tx, g.w_in);
  EXPECT_EQ(d.tiles, g.n * d.tiles_y * d.tiles_x);
  EXPECT_EQ(d.hb, (d.ty - 1) * g.stride_h + g.dil_h * (g.kh - 1) + 1);
  EXPECT_EQ(d.wb, (d.tx - 1) * g.stride_w + g.dil_w * (g.kw - 1) + 1);
  for (int ly = 0; ly < d.ty; ++ly)
    for (int64_t q = 0; q < g.kh; ++q) {
      const int64_t ry = ly * g.stride_h + g.dil_h * (g.kh - 1 - q);
      EXPECT_GE(ry, 0);
      EXPECT_LT(ry, d.hb);
    }
  const std::size_t region = static_cast<std::size_t>(d.hb) * d.wb * d.vpp * 16;
  EXPECT_LE(d.smem, static_cast<std::size_t>(kDwMaxSmem));
  // Both kernels: blocks walk contiguous ranges of tiles that cover every tile once.
  EXPECT_GE(d.chunks, 1);
  EXPECT_GE(d.chunks * d.per_chunk, d.tiles);
  EXPECT_LT((d.chunks - 1) * d.per_chunk, d.tiles);
  // The kernels' shared-memory layouts: bwd_data one region buffer then the weights (a block per tile);
  // bwd_weights two buffers of [region | source tile].
  if (p.dir == core::Direction::bwd_data) {
    EXPECT_EQ(d.per_chunk, 1);
    EXPECT_EQ(d.chunks, d.tiles);
    EXPECT_EQ(d.smem, region + static_cast<std::size_t>(g.kh * g.kw * d.vpp * d.vec) * sizeof(float));
    return;
  }
  // Weight gradient: tap groups cover the taps, the roles fit the block, the reduction buffers fit the shared
  // memory, the chunks cover every tile once.
  const int G = dw_taps_per_thread(d.vec);
  EXPECT_GE(int64_t{d.tg} * G, g.kh * g.kw);
  EXPECT_LT(int64_t{d.tg - 1} * G, g.kh * g.kw);
  EXPECT_GE(d.slices, 1);
  EXPECT_LE(d.slices * d.tg * d.vpp, kDwThreads);
  EXPECT_GE(d.smem, 2 * (region + static_cast<std::size_t>(d.ty * d.tx * d.vpp * 16)));
  EXPECT_GE(d.smem, static_cast<std::size_t>(kDwThreads) * (kDwAccPerThread + d.vec) * sizeof(float));
  EXPECT_EQ(d.wei_count, g.c_out * g.kh * g.kw);
  EXPECT_EQ(d.row_len, d.wei_count + (p.with_bias ? g.c_out : 0));
  EXPECT_EQ(dw_workspace_bytes(p), static_cast<std::size_t>(d.chunks * d.row_len) * sizeof(float));
}

TEST(StreamDepthwisePlan, SuiteLayerTakesEightByEightTiles) {
  // depthwise_up of the benchmark suite: 16 × 256 channels, 32×32 → 64×64, k4 s2 p1.
  for (DataType t : {DataType::float32, DataType::bfloat16, DataType::float16})
    for (core::Direction dir : {core::Direction::bwd_data, core::Direction::bwd_weights}) {
      const core::Problem p = depthwise(dir, t, 16, 256, 32, 32, 4, 2, 1, 1, 0);
      const DwPlan d = dw_plan(p);
      check_plan(p, d);
      EXPECT_EQ(d.ty, 8);
      EXPECT_EQ(d.tx, 8);
      EXPECT_EQ(d.hb, 18);
      EXPECT_EQ(d.vpp, 8);  // 128 bytes of channels per pixel
      if (dir == core::Direction::bwd_weights) {
        EXPECT_EQ(d.tg, 16 / dw_taps_per_thread(d.vec));
        // The partial rows stay small next to the images: below 1/16 of their bytes.
        const int64_t image_bytes = (core::src_elements(p.g) + core::dst_elements(p.g)) * int64_t(size_of(t));
        EXPECT_LE(d.chunks * d.row_len * 4, std::max<int64_t>(image_bytes / 16, d.row_len * 4));
      }
    }
}

TEST(StreamDepthwisePlan, DeclinesWithReasons) {
  const char* why = nullptr;
  core::Problem p = depthwise(core::Direction::fwd, DataType::float32, 2, 16, 8, 8, 3, 2, 1, 1, 0);
  EXPECT_FALSE(dw_plan(p, &why).taken);
  ASSERT_NE(why, nullptr);
  EXPECT_NE(std::string(why).find("forward"), std::string::npos) << why;
  // 12 float32 channels are whole 16-byte vectors; 12 bf16 channels are not.
  p = depthwise(core::Direction::bwd_data, DataType::float32, 2, 12, 8, 8, 3, 2, 1, 1, 0);
  EXPECT_TRUE(dw_plan(p).taken);
  p = depthwise(core::Direction::bwd_data, DataType::bfloat16, 2, 12, 8, 8, 3, 2, 1, 1, 0);
  why = nullptr;
  EXPECT_FALSE(dw_plan(p, &why).taken);
  ASSERT_NE(why, nullptr);
  EXPECT_NE(std::string(why).find("vector"), std::string::npos) << why;
  EXPECT_EQ(dw_workspace_bytes(p), 0u);
  // Not depthwise.
  p = depthwise(core::Direction::bwd_weights, DataType::float32, 2, 16, 8, 8, 3, 2, 1, 1, 0);
  p.g.groups = 8;
  EXPECT_FALSE(dw_plan(p).taken);
  EXPECT_EQ(dw_workspace_bytes(p), 0u);
  // A region too large even for one input pixel (a 32×32 kernel dilated 30 times) goes untiled.
  p = depthwise(core::Direction::bwd_data, DataType::float32, 1, 64, 4, 4, 32, 1, 30, 0, 0);
  EXPECT_FALSE(dw_plan(p).taken);
}

TEST(StreamDepthwisePlan, InvariantsOnRandomProblems) {
  std::mt19937 rng(20261125);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  int taken = 0;
  for (int i = 0; i < 3000; ++i) {
    const DataType t = i % 3 == 0 ? DataType::float32 : (i % 3 == 1 ? DataType::bfloat16 : DataType::float16);
    const int64_t vec = t == DataType::float32 ? 4 : 8;
    const int64_t c = vec * pick(1, 80);
    const int64_t k = pick(1, 9), s = pick(1, 4), dil = pick(1, 3);
    const int64_t pad = pick(-1, dil * (k - 1)), out_pad = pick(0, std::max<int64_t>(s, dil) - 1);
    const int64_t h = pick(1, 40), w = pick(1, 40);
    if (core::Geometry::out_size(h, k, s, dil, pad, out_pad) < 1 ||
        core::Geometry::out_size(w, k, s, dil, pad, out_pad) < 1)
      continue;
    const auto dir = i % 2 ? core::Direction::bwd_data : core::Direction::bwd_weights;
    const core::Problem p = depthwise(dir, t, pick(1, 5), c, h, w, k, s, dil, pad, out_pad, i % 4 != 1);
    if (!core::validate(p).ok()) continue;
    const char* why = "";
    const DwPlan d = dw_plan(p, &why);
    if (!d.taken) {  // only where even one pixel's region exceeds the shared memory
      EXPECT_NE(std::string(why).find("shared memory"), std::string::npos) << p.describe() << ": " << why;
      continue;
    }
    ++taken;
    check_plan(p, d);
    const DwPlan again = dw_plan(p);  // a function of the problem alone
    EXPECT_EQ(again.chunks, d.chunks);
    EXPECT_EQ(again.ty * 1000 + again.tx, d.ty * 1000 + d.tx);
  }
  EXPECT_GT(taken, 1500);
}

// The bias ranges of the tiles partition [0, out): contiguous, in order, covering each output once — for any
// padding (negative included), output padding and stride — and, for a tile inside the image with a kernel at least
// as long as the stride, they lie in the tile's staged region (no global reads there).
TEST(StreamDepthwisePlan, BiasOwnershipPartitionsTheOutput) {
  for (int64_t in = 1; in <= 20; ++in)
    for (int64_t tile : {1, 3, 8})
      for (int64_t s = 1; s <= 4; ++s)
        for (int64_t k = 1; k <= 5; ++k)
          for (int64_t pad = -1; pad <= k; ++pad)
            for (int64_t op = 0; op < s; ++op) {
              const int64_t out = core::Geometry::out_size(in, k, s, 1, pad, op);
              if (out < 1) continue;
              const int64_t tiles = (in + tile - 1) / tile;
              int64_t next = 0;
              for (int64_t t = 0; t < tiles; ++t) {
                const Range r = dw_owned(t, tiles, tile, s, pad, out);
                ASSERT_EQ(r.lo, next) << in << " " << tile << " " << s << " " << k << " " << pad << " " << t;
                ASSERT_LE(r.lo, r.hi);
                next = r.hi;
                const int64_t reg_lo = t * tile * s - pad, reg_hi = reg_lo + (tile - 1) * s + (k - 1) + 1;
                if (k >= s && t > 0 && t + 1 < tiles) {
                  EXPECT_GE(r.lo, reg_lo);
                  EXPECT_LE(r.hi, reg_hi);
                }
              }
              EXPECT_EQ(next, out);
            }
}

}  // namespace
}  // namespace tconv::cuda_stream
