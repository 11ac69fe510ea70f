// tconv bench --device cuda in a build without the CUDA backend: says so.
#include "bench_cuda.hpp"
#include "tconv/error.hpp"

namespace tconv::cli {
int bench_cuda(const CudaBenchOptions&) {
  throw Error(ErrorCode::device_unavailable, "this tconv build has no CUDA backend: --device cuda cannot be benchmarked");
}
}  // namespace tconv::cli
