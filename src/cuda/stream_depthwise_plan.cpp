// The tiled depthwise gradients' plan (stream_depthwise_plan.hpp explains the design).
#include "cuda/stream_depthwise_plan.hpp"

#include <algorithm>
#include <cstdlib>

namespace tconv::cuda_stream {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The planning machine (fixed, not queried: see the blocks below): SMs and shared memory per SM of an H100.
constexpr int64_t kModelSms = 132;
constexpr int64_t kSmemPerSm = 227 * 1024;
int pow2_floor(int64_t v) {
  int p = 1;
  while (2 * int64_t{p} <= v) p *= 2;
  return p;
}

}  // namespace

DwPlan dw_plan(const core::Problem& p, const char** reason) {
  DwPlan d;
  auto no = [&](const char* why) {
    if (reason != nullptr) *reason = why;
    return DwPlan{};
  };
  const core::Geometry& g = p.g;
  if (p.dir != core::Direction::bwd_data && p.dir != core::Direction::bwd_weights)
    return no("the forward pass runs untiled");
  if (g.ig() != 1 || g.og() != 1) return no("not depthwise");
  const int64_t es = static_cast<int64_t>(size_of(p.act_type));
  if (es != 2 && es != 4) return no("activation type of neither 2 nor 4 bytes");
  d.vec = static_cast<int>(16 / es);
  if (g.c_in % d.vec != 0) return no("channels not a multiple of a 16-byte vector");
  // The kernels keep tile coordinates in 32 bits.
  constexpr int64_t kLim = int64_t{1} << 30;
  if (std::max({g.h_out, g.w_out, g.h_in * g.stride_h, g.w_in * g.stride_w}) >= kLim ||
      std::max(std::abs(g.pad_h), std::abs(g.pad_w)) >= kLim)
    return no("image sides of 2^30 or more");
  const bool wgrad = p.dir == core::Direction::bwd_weights;
  const int64_t kk = g.kh * g.kw;
  const int64_t cv = g.c_in / d.vec;
  d.vpp = pow2_floor(std::min<int64_t>(cv, 8));
  if (wgrad) {
    // (tap group, vector) pairs must fit the block: fewer vectors per pixel for kernels of many taps.
    d.tg = static_cast<int>(std::min<int64_t>(ceil_div(kk, dw_taps_per_thread(d.vec)), int64_t{kDwThreads} + 1));
    if (d.tg > kDwThreads) return no("more tap groups than threads");
    d.vpp = std::min(d.vpp, pow2_floor(kDwThreads / d.tg));
    d.slices = kDwThreads / (d.tg * d.vpp);
  }
  d.ctiles = ceil_div(cv, d.vpp);
  if (d.ctiles > 65535) return no("more than 65535 channel tiles");

  // The largest tile up to 8×8 (never larger than the image) whose region (and source tile) fits the shared
  // memory; halving the longer side keeps it near square, where the halo is smallest.
  const int64_t pix_bytes = int64_t{d.vpp} * 16;
  int64_t ty = std::min<int64_t>(kDwTile, g.h_in), tx = std::min<int64_t>(kDwTile, g.w_in);
  auto bytes = [&](int64_t y, int64_t x, int64_t* hb, int64_t* wb) {
    *hb = (y - 1) * g.stride_h + g.dil_h * (g.kh - 1) + 1;
    *wb = (x - 1) * g.stride_w + g.dil_w * (g.kw - 1) + 1;
    if (*hb > (int64_t{1} << 20) || *wb > (int64_t{1} << 20)) return kDwMaxSmem + 1;  // far too large anyway
    // The weight gradient: two buffers (tile t + 1 is copied while tile t is summed) of the region and the source
    // tile. bwd_data: one region (a block per tile, below) and the channel tile's weights (float32).
    return wgrad ? 2 * (*hb * *wb + y * x) * pix_bytes : *hb * *wb * pix_bytes + kk * d.vpp * d.vec * 4;
  };
  int64_t hb = 0, wb = 0;
  while (bytes(ty, tx, &hb, &wb) > kDwMaxSmem) {
    if (ty == 1 && tx == 1) return no("a 1x1 tile's region exceeds the shared memory");
    if (ty >= tx) ty = (ty + 1) / 2; else tx = (tx + 1) / 2;
  }
  d.ty = static_cast<int>(ty);
  d.tx = static_cast<int>(tx);
  d.hb = static_cast<int>(hb);
  d.wb = static_cast<int>(wb);
  d.tiles_y = ceil_div(g.h_in, ty);
  d.tiles_x = ceil_div(g.w_in, tx);
  d.tiles = g.n * d.tiles_y * d.tiles_x;
  if (d.tiles > 0x7fffffff) return no("more than 2^31 - 1 tiles");
  std::size_t smem = static_cast<std::size_t>(bytes(ty, tx, &hb, &wb));
  if (wgrad) smem = std::max(smem, static_cast<std::size_t>(kDwThreads) * (kDwAccPerThread + d.vec) * sizeof(float));
  // bwd_data: a block per tile, one buffer (up to 5 blocks per SM): 39.7 µs (fp32) and 35.1 µs (bf16) on
  // depthwise_up on the H100 (2026-11-25). A walking variant with two buffers was timed once, but that build
  // launched one block per tile with only the first `chunks` given work — not a valid measurement; left to try
  // again. The weight gradient, whose tiles end in a block-wide reduction, gained from walking (71.7 → 59.2 µs
  // fp32, 52.4 → 46.3 bf16): one wave of a 132-SM H100 (as many blocks as its SMs hold at this shared memory, at
  // most 8 each), each a contiguous range of tiles; a fixed machine model, because the chunks fix its order of
  // additions, which must depend on the problem alone.
  d.chunks = d.tiles;
  if (wgrad) {
    const int64_t per_sm = std::clamp<int64_t>(kSmemPerSm / (static_cast<int64_t>(smem) + 1024), 1, 8);
    d.chunks = std::max<int64_t>(1, std::min(d.tiles, ceil_div(kModelSms * per_sm, d.ctiles)));
    // After the tiles the block adds its threads' sums through shared memory (16 floats per thread, then the
    // bias's vec floats per thread; the staging buffers are reused for them — see the max above). One partial row
    // per chunk, written and read once more by the reduction: kept below 1/16 of the pass's image traffic.
    d.wei_count = core::wei_elements(g);
    d.row_len = d.wei_count + (p.with_bias ? g.c_out : 0);
    const int64_t data_bytes = (core::src_elements(g) + core::dst_elements(g)) * es;
    d.chunks = std::min(d.chunks, std::max<int64_t>(1, data_bytes / 16 / (d.row_len * 4)));
  }
  d.per_chunk = ceil_div(d.tiles, d.chunks);
  d.chunks = ceil_div(d.tiles, d.per_chunk);
  d.smem = smem;
  if (d.smem > static_cast<std::size_t>(kDwMaxSmem)) return no("shared memory above the tiled kernels' limit");
  d.taken = true;
  return d;
}

std::size_t dw_workspace_bytes(const core::Problem& p) {
  if (p.dir != core::Direction::bwd_weights) return 0;
  const DwPlan d = dw_plan(p);
  return d.taken ? static_cast<std::size_t>(d.chunks * d.row_len) * sizeof(float) : 0;
}

bool dw_tiled_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("TCONV_STREAM_DW_TILED");
    return e == nullptr || *e == 0 || std::atoi(e) != 0;
  }();
  return on;
}

}  // namespace tconv::cuda_stream
