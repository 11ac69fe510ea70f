// Build without the CUDA backend: the weight-store copies report that CUDA is absent (cuda/weights_backend.hpp).
#include "cuda/weights_backend.hpp"

namespace tconv::cuda_backend::weights {
namespace {
core::Status absent() {
  return core::fail(ErrorCode::device_unavailable, "this tconv build has no CUDA backend (built without nvcc)");
}
}  // namespace
core::Status copy_weights(int, void*, const float*, float*, int64_t, DataType, Reorder, const ConvShape&, const float*,
                          float*, int64_t) {
  return absent();
}
core::Status stream_idle(int, void*, bool*) { return absent(); }
core::Status spin(int, void*, int64_t) { return absent(); }
}  // namespace tconv::cuda_backend::weights
