// cuda_tc_igemm's planner (tc_igemm_plan.hpp): the tiles' measured ranks, the time model and the workspace.
#include "cuda/tc_igemm_plan.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <string>

namespace tconv::cuda_tc {

// solo: the fraction of a tile's rate left when a tile meant to share its SM (bps > 1) runs alone on one (half
// the copies in flight).
constexpr double kSoloFactor = 0.75;
// The planner's model GPU: an H100 (132 SMs; dense tensor rate per SM in multiply-adds per ns). A constant, not
// the device's count, so that the plan — and with the split the order of every addition — is a function of the
// problem alone, and workspace_bytes knows it before the run.
constexpr int kPlanSms = 132;
constexpr double kMacPerNs16 = 3746.0, kMacPerNs32 = 1873.0;
constexpr double kReduceBytesPerNs = 2500.0, kLaunchNs = 3000.0, kRoundNs = 1500.0;
constexpr int kMaxSplits = 16;
constexpr int kMinKtPerSplit = 8;                              // k-tiles per split block: the pipeline's fill
constexpr int64_t kMaxPartialFloats = int64_t{1} << 26;        // 256 MiB of partial tiles at most

const PlanHooks& env_hooks() {
  static const PlanHooks hooks = [] {
    PlanHooks h;
    if (const char* e = std::getenv("TCONV_TC_IGEMM_TILE"))
      for (int i = 0; i < kTiles; ++i)
        if (std::string(e) == kTileNames[i]) h.tile = i;
    if (const char* e = std::getenv("TCONV_TC_IGEMM_SPLIT")) {
      const int v = std::atoi(e);
      h.splits = v >= 1 ? std::min(v, 64) : 0;
    }
    if (const char* e = std::getenv("TCONV_TC_IGEMM_WS")) h.ws = std::atoi(e) != 0 ? 1 : 0;
    return h;
  }();
  return hooks;
}

namespace {
// Whether the warp-specialized tiles (ws*) are considered: the hook, else the default of the operand size (both
// off: they are estimates, not measured ranks).
constexpr bool kWsDefault16 = false, kWsDefault32 = false;
bool ws_tiles(const PlanHooks& h, int esize) { return h.ws >= 0 ? h.ws == 1 : (esize == 4 ? kWsDefault32 : kWsDefault16); }
}  // namespace

GemmDims gemm_dims(const core::Problem& pr, int esize) {
  const core::Geometry& g = pr.g;
  GemmDims d;
  d.fwd = pr.dir == core::Direction::fwd;
  d.esize = esize;
  const int64_t phases = d.fwd ? g.stride_h * g.stride_w : 1;
  d.max_m = d.fwd ? g.n * ((g.h_out + g.stride_h - 1) / g.stride_h) * ((g.w_out + g.stride_w - 1) / g.stride_w)
                  : g.n * g.h_in * g.w_in;
  d.n_cols = d.fwd ? g.og() : g.ig();
  d.kc = d.fwd ? g.ig() : g.og();
  d.gz = g.groups * phases;
  // Active taps of the largest phase (fwd: the taps whose offset lands on the phase, as build_tables counts them;
  // with dilation sharing a factor with the stride one phase can have them all).
  auto most_taps = [](int64_t k, int64_t s, int64_t dil, int64_t pad) {
    int64_t most = 0;
    for (int64_t ph = 0; ph < s; ++ph) {
      int64_t c = 0;
      for (int64_t q = 0; q < k; ++q) c += ((ph + pad - dil * (k - 1 - q)) % s == 0) ? 1 : 0;
      most = std::max(most, c);
    }
    return most;
  };
  d.taps = d.fwd ? most_taps(g.kh, g.stride_h, g.dil_h, g.pad_h) * most_taps(g.kw, g.stride_w, g.dil_w, g.pad_w)
                 : g.kh * g.kw;
  return d;
}

// Largest split the split path allows for a tile (1: none): whole float4 columns, the z grid, the partials'
// size, and (unless forced) kMinKtPerSplit k-tiles per slice.
int max_splits(const GemmDims& d, const TileInfo& t, bool forced) {
  if (d.n_cols % 4 != 0) return 1;
  const int64_t kt = d.kt(t.wg);
  int64_t s = forced ? 64 : std::min<int64_t>(kMaxSplits, kt / kMinKtPerSplit);
  s = std::min<int64_t>(s, 65535 / std::max<int64_t>(1, d.gz));
  s = std::min<int64_t>(s, kMaxPartialFloats / std::max<int64_t>(1, d.gz * d.max_m * d.n_cols));
  return static_cast<int>(std::max<int64_t>(1, s));
}

// Modelled time of one (tile, split): the busiest SM's blocks times one block's multiply-adds over the tile's rate,
// a fixed cost per round of resident blocks (pipeline fill, epilogue), and for S > 1 the partial tiles' traffic
// through the reduction plus its launch. Coarse, but it ranks what matters: idle SMs against per-block rate
// against reduction bytes.
double estimate_ns(const GemmDims& d, const TileInfo& t, int S) {
  const int64_t tiles = ((d.max_m + t.bm - 1) / t.bm) * ((d.n_cols + t.bn - 1) / t.bn) * d.gz;
  const int64_t blocks = tiles * S;
  const int64_t per_sm = (blocks + kPlanSms - 1) / kPlanSms;
  const int64_t bk = (t.wg ? 128 : 64) / d.esize;
  const int64_t kt = (d.kt(t.wg) + S - 1) / S;
  const double macs = static_cast<double>(t.bm) * t.bn * static_cast<double>(kt * bk);
  double eff = d.esize == 4 ? t.eff32 : t.eff16;
  if (t.bps > 1 && per_sm < 2) eff *= kSoloFactor;
  const double rate = (d.esize == 4 ? kMacPerNs32 : kMacPerNs16) * eff;
  double ns = static_cast<double>(per_sm) * macs / rate + static_cast<double>((per_sm + t.bps - 1) / t.bps) * kRoundNs;
  if (S > 1) ns += static_cast<double>(S + 1) * static_cast<double>(d.gz * d.max_m * d.n_cols) * 4.0 / kReduceBytesPerNs + kLaunchNs;
  return ns;
}

Plan make_plan(const GemmDims& d, bool wgmma, const PlanHooks& hooks) {
  const int ft = hooks.tile >= 0 && hooks.tile < kTiles ? hooks.tile : -1, fs = hooks.splits;
  Plan best;
  best.est_ns = std::numeric_limits<double>::max();
  for (int id = 0; id < kTiles; ++id) {
    const TileInfo& t = kTileInfo[id];
    if (ft >= 0 && !(ft == id || (kTileInfo[ft].wg && !wgmma))) continue;  // forced (wgmma ones only where usable)
    if (ft < 0 || (kTileInfo[ft].wg && !wgmma)) {
      if (t.wg != wgmma) continue;
      if ((id == kWs128x128 || id == kWs128x256) && !ws_tiles(hooks, d.esize)) continue;
    }
    const int smax = max_splits(d, t, fs > 0);
    for (int S = 1; S <= smax; ++S) {
      if (fs > 0 && S != std::min(fs, smax)) continue;
      const double ns = estimate_ns(d, t, S);
      if (ns < best.est_ns) {
        best.tile = id;
        best.splits = S;
        best.est_ns = ns;
      }
    }
  }
  return best;
}

Plan make_plan(const core::Problem& pr, int esize, bool wgmma) { return make_plan(gemm_dims(pr, esize), wgmma, env_hooks()); }

std::size_t packed_bytes(const core::Problem& pr, int esize) {
  return static_cast<std::size_t>(core::wei_elements(pr.g)) * static_cast<std::size_t>(esize) + 16;
}
std::size_t partial_bytes(const core::Problem& pr, int esize, const Plan& plan) {
  if (plan.splits <= 1) return 0;
  const GemmDims d = gemm_dims(pr, esize);
  return static_cast<std::size_t>(plan.splits * d.gz * d.max_m * d.n_cols) * sizeof(float) + 16;
}
std::size_t workspace_for(const core::Problem& pr, int esize) {
  const std::size_t part = std::max(partial_bytes(pr, esize, make_plan(pr, esize, true)),
                                    partial_bytes(pr, esize, make_plan(pr, esize, false)));
  return packed_bytes(pr, esize) + part;
}

}  // namespace tconv::cuda_tc
