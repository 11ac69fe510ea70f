// cuda_tc_igemm's planner: which block tile and how many split-K slices a problem runs with, chosen by a time
// model of a fixed 132-SM H100. Plain C++ (tc_igemm_plan.cpp), without CUDA, so that it is built and unit-tested
// in every configuration (tests/registry/tc_igemm_plan_test.cpp), GPU or not; the kernels it names live in
// tc_igemm_kernels.cuh, which checks at compile time that each tile's entry here matches its kernel.
//
// Why a constant model and not the device's SM count: the plan — and with the split the order of every addition —
// must be a function of the problem alone (deterministic results on any GPU), and workspace_bytes must know it
// before the run.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/problem.hpp"

namespace tconv::cuda_tc {

constexpr int kMaxTaps = 64;     // per kernel dimension (the kernels' shared tap tables)
constexpr int kMinChannels = 8;  // fewer GEMM columns per group: cuda_direct is faster

// Tiles by id: wgmma ones first (sm_90a), then mma.sync.
enum TileId {
  kWg128x128,
  kWg128x64,
  kWg64x128,
  kWg64x64,
  kWg128x128d,
  kWg256x128,
  kWg128x256,
  kWs128x128,
  kWs128x256,
  kMma128x128,
  kMma128x64,
  kMma64x128,
  kMma64x64,
  kTiles
};
inline constexpr const char* kTileNames[kTiles] = {
    "wg128x128", "wg128x64",  "wg64x128",   "wg64x64",   "wg128x128d", "wg256x128", "wg128x256",
    "ws128x128", "ws128x256", "mma128x128", "mma128x64", "mma64x128",  "mma64x64"};

// What the planner knows of a tile: its size, how many blocks share an SM (shared memory and registers), and the
// fraction of the SM's tensor rate it reaches with its SM full (eff16: bf16/f16, eff32: tf32 — whose operands
// are twice the bytes per multiply, so that small tiles lose more to L2 traffic). The wg* values rank the
// tiles as the H100 sweep of 2026-11-24 did (each layer's pick within ~10% of its best tile). Eighth session:
// wg128x256 added (data gradient −9 to −17% on tf32 layers with ≥ 256 columns, within ±5% on bf16/f16, where it
// is taken only when it also saves a wave), and tf32's A fragments moved to registers on every tile but
// wg256x128, which gained wg128x128 and lost wg256x128 their eff32 ranks (wg128x128 now ahead on the 128-column
// layers, 5–10%); the ws* ones are estimates, used only with TCONV_TC_IGEMM_WS=1. tc_igemm_kernels.cuh checks
// bm, bn and wg against each tile's kernel.
struct TileInfo {
  int bm, bn, bps;
  bool wg;
  double eff16, eff32;
};
inline constexpr TileInfo kTileInfo[kTiles] = {
    {128, 128, 2, true, 0.50, 0.45},  {128, 64, 2, true, 0.42, 0.30},   {64, 128, 2, true, 0.42, 0.30},
    {64, 64, 3, true, 0.30, 0.22},    {128, 128, 1, true, 0.50, 0.48},  {256, 128, 1, true, 0.55, 0.40},
    {128, 256, 1, true, 0.57, 0.60},
    {128, 128, 1, true, 0.60, 0.55},  {128, 256, 1, true, 0.65, 0.60},
    {128, 128, 2, false, 0.30, 0.25}, {128, 64, 2, false, 0.26, 0.20},  {64, 128, 2, false, 0.26, 0.20},
    {64, 64, 4, false, 0.20, 0.15},
};

// The GEMM's extent, per group and phase: rows (pixels, the largest phase), columns, k-tiles of the largest phase.
struct GemmDims {
  int64_t max_m, n_cols, gz, taps, kc;
  int esize;
  bool fwd;
  // k-tiles: a wgmma stage holds 128 bytes of k per row, an mma.sync stage 64.
  int64_t kt(bool wg) const {
    const int64_t bk = (wg ? 128 : 64) / esize;
    return taps * ((kc + bk - 1) / bk);
  }
};
// esize: operand bytes (2: bf16/f16, 4: tf32). fwd: the largest output stride phase and its active taps.
GemmDims gemm_dims(const core::Problem& pr, int esize);

struct Plan {
  int tile = kWg64x64;
  int splits = 1;
  double est_ns = 0;
};

// What the test hooks force (the TCONV_TC_IGEMM_* variables, read once: env_hooks()); the default forces nothing.
struct PlanHooks {
  int tile = -1;          // TCONV_TC_IGEMM_TILE=<one of kTileNames>: this tile (a wgmma one only where usable)
  int splits = 0;         // TCONV_TC_IGEMM_SPLIT=<S>: S slices wherever the split path allows them (1: never split)
  int ws = -1;            // TCONV_TC_IGEMM_WS=1 / 0: consider the warp-specialized tiles or not (-1: the default)
};
const PlanHooks& env_hooks();

// Largest split the split path allows for a tile (1: none).
int max_splits(const GemmDims& d, const TileInfo& t, bool forced);
// Modelled time of one (tile, split) in ns.
double estimate_ns(const GemmDims& d, const TileInfo& t, int S);
// The (tile, split) of least modelled time among the tiles the device runs (wgmma ones where `wgmma`, else
// mma.sync ones), within what `hooks` force.
Plan make_plan(const GemmDims& d, bool wgmma, const PlanHooks& hooks);
// The plan a run takes: make_plan with env_hooks().
Plan make_plan(const core::Problem& pr, int esize, bool wgmma);

// Workspace: the packed weights, then (split-K) the float32 partial tiles, each start 16-byte aligned.
std::size_t packed_bytes(const core::Problem& pr, int esize);
std::size_t partial_bytes(const core::Problem& pr, int esize, const Plan& plan);
// Enough for either device kind's plan (the larger of the wgmma and the mma.sync one): the device is not known
// when workspace_bytes is asked.
std::size_t workspace_for(const core::Problem& pr, int esize);

}  // namespace tconv::cuda_tc
