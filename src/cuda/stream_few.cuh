// cuda_few_channels (stream_few.cu): plans and launchers of its three kernels, one file each.
//   stream_few_fwd.cu           forward, gathered by stride phase
//   stream_few_bwd_data.cu      data gradient, dY rows and weights staged in shared memory
//   stream_few_bwd_weights.cu   weight and bias gradient by stride phase, partial rows + stream_reduce.cu
// The plan depends on the problem only; make_plan() (stream_few.cu) fills it or says why it cannot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cuda/stream_common.cuh"

namespace tconv::cuda_stream::few {

constexpr int kFwdThreads = 128;
constexpr int kDwThreads = 256;
constexpr std::size_t kFwdSmemMax = 48 * 1024;
constexpr std::size_t kDxSmemMax = 48 * 1024;  // more would cost occupancy: cut the o batch instead
constexpr std::size_t kDwSmemMax = 40 * 1024;  // staging; the tap tables come on top
constexpr int64_t kMaxGridYZ = 65535;

// Register tile of outputs per thread in fwd / weight gradient: 1, 4 or 8 (one template instance each).
inline int ro_for(int64_t channels) { return channels == 1 ? 1 : (channels <= 4 ? 4 : 8); }

struct FwdPlan {
  int ro = 1, n_ot = 1, igp = 8;  // outputs per thread, output tiles per group, Ig rounded up to 8
  int max_taps = 1;
  std::size_t smem = 0;
};

struct DxPlan {
  int twc = 64, tr = 1, twc_shift = 6;  // pixel tile: tr input rows × twc columns (64 slots, 2 per lane)
  int nctb = 1, cg = 1, cb = 8;         // warps (8-channel tiles) per block, channel groups, channels per block
  int ob = 1, qb = 1;                   // output channels and kernel rows staged at once
  int ks = 1, qps = 1;                  // kernel-row splits (blockIdx.z) and rows per split
  int nc = 1, ncs = 1, ncp = 1, rs = 1;  // staged dY columns, per stride phase, padded, row stride
  int64_t row_tiles = 1, col_tiles = 1, npix = 1;
  int a_floats = 0, w_floats = 0;
  std::size_t smem = 0, workspace = 0;
};

struct DwPlan {
  bool input_major = false;                // walk input pixels (all taps) instead of output pixels by phase
  int ro = 1, n_ot = 1, nct8 = 1, tt = 1;  // outputs per thread, o tiles, 8-channel c tiles, tiles per tap
  int tg = 1, tb = 1, nt = 1, ksd = 1;     // tile groups, taps per batch, tiles per block, pixel streams
  int nb = 1, items = 1, tiles_total = 1;  // tap batches (per phase), blockIdx.y items
  int kp = 1, ogs = 8, igs = 8;            // pixels staged per round, padded channel counts in shared memory
  int nph_bias = 1;                        // bias partial slots per row (phases; 1 when input-major)
  int64_t chunks = 1, row_len = 0, wei_count = 0;
  std::size_t union_bytes = 0, smem = 0, workspace = 0;  // staging ∪ reduction area, its tap tables after
};

struct Plan {
  FwdPlan f;
  DxPlan d;
  DwPlan w;
  std::string why;  // non-empty: the problem is declined for this reason
};
Plan make_plan(const core::Problem& p);

core::Status launch_fwd(const core::Problem& p, const core::Args& a, const FwdPlan& f, cudaStream_t stream);
core::Status launch_bwd_data(const core::Problem& p, const core::Args& a, const DxPlan& d, void* workspace,
                             cudaStream_t stream);
core::Status launch_bwd_weights(const core::Problem& p, const core::Args& a, const DwPlan& w, void* workspace,
                                cudaStream_t stream);

}  // namespace tconv::cuda_stream::few
