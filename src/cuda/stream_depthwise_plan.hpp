// cuda_stream_depthwise's tiled data and weight gradients: the plan (which input-pixel tile, channel tile, tap
// groups and pixel chunks a problem runs with) as plain C++, so that it is built and unit-tested on every
// machine, GPU or not (tests/registry/stream_depthwise_plan_test.cpp); the kernels are in
// stream_depthwise_tiled.cu.
//
// Why tiles. A depthwise layer does a few multiply-adds per byte, so its gradients are worth only what their
// memory traffic costs. The untiled kernels (stream_depthwise.cu) gather every tap from global memory: with a
// kernel larger than the stride each diff_dst element is read by several input pixels (k4 s2: 4 of them) and the
// weight gradient reads each source pixel once per tap (16 times), through caches that a whole row of pixels ×
// 256 channels overflows. The tiled kernels copy a block's diff_dst region (the outputs a TY×TX tile of input
// pixels reaches, halo included) and, for the weight gradient, its source tile into shared memory once, with
// 16-byte asynchronous copies, and take every tap from there: global traffic is each tensor once plus the halo.
// A weight-gradient block walks a range of tiles with two buffers, copying tile t + 1 while it sums tile t.
//
// Vectors. A thread owns 16 bytes of channels (4 float32 or 8 16-bit values); a pixel of a channel tile is `vpp`
// vectors (at most 8: 128 bytes, so that the 8 threads of a quarter warp reading one pixel's vectors hit 32
// distinct banks). The plan depends on the problem alone (the chunking of the weight gradient fixes the order
// of its additions: deterministic on every run and device).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/problem.hpp"

#if defined(__CUDACC__)
#define TCONV_DW_HD __host__ __device__ __forceinline__
#else
#define TCONV_DW_HD inline
#endif

namespace tconv::cuda_stream {

constexpr int kDwThreads = 256;
constexpr int64_t kDwMaxSmem = 110 * 1024;  // bytes of shared memory a tiled block may use (2 blocks per SM)
constexpr int kDwTile = 8;                 // preferred tile: 8×8 input pixels

struct DwPlan {
  bool taken = false;      // false: the untiled kernels run (why: dw_plan_reason)
  int vec = 0;             // channels per 16-byte vector (4: float32, 8: 16-bit)
  int vpp = 0;             // vectors per pixel of a channel tile (1, 2, 4 or 8)
  int ty = 0, tx = 0;      // input pixels per tile
  int hb = 0, wb = 0;      // diff_dst region a tile reaches: hb rows × wb columns
  int64_t tiles_y = 0, tiles_x = 0, tiles = 0;  // tiles = n · tiles_y · tiles_x
  int64_t ctiles = 0;      // channel tiles of vpp · vec channels
  // Weight gradient: a thread sums kG taps (kG · vec = 16 accumulators); `tg` tap groups ×
  // vpp vectors are the (tap group, vector) pairs, each summed by `slices` threads over interleaved pixels.
  int tg = 0, slices = 0;
  int64_t chunks = 0, per_chunk = 0;  // blocks along x: tiles [chunk·per_chunk, +per_chunk) each (bwd_data: 1)
  int64_t row_len = 0, wei_count = 0; // partial row: weights, then the bias (c_out) when with_bias
  std::size_t smem = 0;               // dynamic shared memory of a block, bytes
};

// Accumulators of a weight-gradient thread: 16 (4 taps of 4 float32 channels, 2 of 8 16-bit ones): the kernel
// then needs about 64 registers (32: its first version, 126 registers, held 2 blocks per SM whatever the shared
// memory allowed).
constexpr int kDwAccPerThread = 16;
constexpr int dw_taps_per_thread(int vec) { return kDwAccPerThread / vec; }

// Plan of a bwd_data or bwd_weights problem (any other direction: not taken). `reason` (optional) receives why a
// problem is not taken. The run-time conditions — 16-byte aligned views — are the caller's (stream_depthwise.cu).
DwPlan dw_plan(const core::Problem& p, const char** reason = nullptr);

// Workspace of the tiled weight gradient (partial rows), bytes; 0 when not taken.
std::size_t dw_workspace_bytes(const core::Problem& p);

// TCONV_STREAM_DW_TILED=0 turns the tiled kernels off (the untiled ones run everything), for comparisons and
// for the tests that keep the untiled kernels covered.
bool dw_tiled_enabled();

// The output rows [lo, hi) whose bias terms tile row `t` of `tiles` sums (columns likewise): tile t reaches outputs
// from t·T·s − pad on, so the ranges split [0, out) at those points; the first tile also takes the rows before
// it, the last the rows after it. Together the tiles' ranges partition [0, out): each bias term once.
struct Range {
  int64_t lo, hi;
};
TCONV_DW_HD int64_t dw_clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }
TCONV_DW_HD Range dw_owned(int64_t t, int64_t tiles, int64_t tile, int64_t stride, int64_t pad, int64_t out) {
  const int64_t lo = t == 0 ? 0 : dw_clamp(t * tile * stride - pad, 0, out);
  const int64_t hi = t + 1 >= tiles ? out : dw_clamp((t + 1) * tile * stride - pad, 0, out);
  return Range{lo, hi};
}

}  // namespace tconv::cuda_stream
