// cuda_tc_wgrad: the weight and bias gradients on the tensor cores with a multi-stage cp.async pipeline
// (tc_wgrad.cu). This header exposes the plan (how a problem is cut into blocks) and the launcher with an
// explicit plan, so that a tuning program can time other cuts of the same problem; the algorithm record
// always uses make_wgrad_plan(p) — a function of the problem alone, which keeps the results bit-identical
// from run to run, and from GPU to GPU of one kind (an sm_90a build on an H100 multiplies 16-bit types with
// wgmma, other GPUs and builds with mma.sync: same plan and summation order of the partials, but the tensor
// cores' internal order within an instruction may differ).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/problem.hpp"
#include "core/status.hpp"

namespace tconv::cuda_tc {

struct WgradPlan {
  // GEMM blocks: a 128 × 128 tile of (tap, out channel) × in channel over one pixel chunk of one group.
  int epc = 8;            // elements per 16-byte copy: 8 (bf16, fp16) or 4 (tf32)
  int bk = 32;            // pixels per pipeline stage (tf32: 16 or 32 by variant)
  int mo = 128;           // out channels per tap in the tile's 128 rows (128, 64, 32 or 16) ...
  int tm = 1;             // ... so the tile holds tm = 128 / mo taps that share the staged source pixels
  int64_t taps = 1, tg = 1, mt = 1, nt = 1;  // taps, tap groups (of tm), tiles over Og (of mo) and Ig (of 128)
  int64_t k_total = 0;    // pixels of the reduction: n·h_in·w_in
  int64_t split = 1;      // S: fixed chunks of the pixel range (split-K), each writing a partial tile
  int64_t chunk = 0;      // pixels per chunk, a multiple of bk
  int64_t gemm_blocks = 0;
  int variant = 0;        // pipeline variant (tc_wgrad.cu launch_typed): stages × pixels per stage, blocks per SM
  int stages = 6;         // pipeline depth of the variant (stages of bk pixels)
  int min_blocks = 2;     // blocks per SM the variant is built for (the split fills kPlanSms × min_blocks)
  // Bias blocks (same launch): column sums of diff_dst over fixed pixel chunks.
  bool bias = false;
  int vt = 0, rows = 0;   // channel vectors per block, pixel lanes per block (vt · rows ≤ 256)
  int64_t vb = 0, sb = 0; // channel-vector blocks, pixel chunks
  int64_t p_total = 0, chunk_b = 0;
  int64_t bias_blocks = 0;
  int64_t wei_count = 0, c_out = 0;
  // Workspace: S partial weight gradients (only when S > 1), then sb partial bias sums.
  std::size_t ws_weight_floats = 0, ws_bias_floats = 0;
  std::size_t workspace_bytes() const { return (ws_weight_floats + ws_bias_floats) * sizeof(float); }
};

// The plan the algorithm uses (split_override > 0 forces S, for tuning only).
WgradPlan make_wgrad_plan(const core::Problem& p, int64_t split_override = 0);

// Runs a problem the algorithm takes with a given plan; workspace must hold plan.workspace_bytes().
core::Status launch_tc_wgrad(const core::Problem& p, const core::Args& a, void* workspace, cudaStream_t stream,
                             const WgradPlan& plan);

}  // namespace tconv::cuda_tc
