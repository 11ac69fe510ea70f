// Build without the CUDA backend: no CUDA algorithms, and every runtime call reports that CUDA is absent.
#include "cuda/backend.hpp"
#include "cuda/training_backend.hpp"
#include "registry/algorithm.hpp"

namespace tconv::registry {
std::vector<const Algorithm*> cuda_algorithms() { return {}; }
}  // namespace tconv::registry

namespace tconv::cuda_backend {
namespace {
core::Status absent() {
  return core::fail(ErrorCode::device_unavailable, "this tconv build has no CUDA backend (built without nvcc)");
}
}  // namespace
bool compiled_in() noexcept { return false; }
int device_count() noexcept { return 0; }
std::string device_name(int) { return "none"; }
core::Status malloc_device(int, std::size_t, void**) { return absent(); }
void free_device(int, void*) noexcept {}
core::Status memset_device(int, void*, int, std::size_t) { return absent(); }
core::Status copy_h2d(int, void*, const void*, std::size_t) { return absent(); }
core::Status copy_d2h(int, void*, const void*, std::size_t) { return absent(); }
core::Status copy_d2d(int, void*, const void*, std::size_t) { return absent(); }
core::Status device_synchronize(int) { return absent(); }
core::Status stream_create(int, void**, bool) { return absent(); }
void stream_destroy(int, void*) noexcept {}
core::Status stream_synchronize(int, void*) { return absent(); }
core::Status event_create(int, void**, bool) { return absent(); }
void event_destroy(int, void*) noexcept {}
core::Status event_record(int, void*, void*) { return absent(); }
core::Status event_synchronize(int, void*) { return absent(); }
core::Status event_elapsed_ms(int, void*, void*, float*) { return absent(); }
core::Status stream_wait_event(int, void*, void*) { return absent(); }
core::Status epilogue(int, void*, const core::TensorView&, DataType, int64_t, int64_t, int64_t, int64_t, const float*,
                      const NeuronDescriptor&, bool) {
  return absent();
}
core::Status conv_weights_from_transpose(int, void*, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, float*,
                                         bool) {
  return absent();
}
std::size_t bias_gradient_workspace(int64_t, int64_t, int64_t, int64_t) { return 0; }
core::Status bias_gradient(int, void*, const core::TensorView&, DataType, int64_t, int64_t, int64_t, int64_t, float*,
                           bool, void*) {
  return absent();
}
}  // namespace tconv::cuda_backend

// The training companions' kernels (training_backend.hpp): unavailable too; the object API only calls them for
// buffers in CUDA memory, which this build cannot make.
namespace tconv::cuda_backend::training {
namespace {
core::Status absent() {
  return core::fail(ErrorCode::device_unavailable, "this tconv build has no CUDA backend (built without nvcc)");
}
}  // namespace
core::Status neuron_forward(int, void*, const NeuronDescriptor&, const void*, DataType, void*, DataType, int64_t) {
  return absent();
}
core::Status neuron_gradient(int, void*, const NeuronDescriptor&, const void*, DataType, const void*, DataType, void*,
                             DataType, int64_t) {
  return absent();
}
std::size_t mse_loss_workspace(int64_t) { return 0; }
core::Status mse_loss(int, void*, const void*, DataType, const void*, DataType, int64_t, double, float*, void*) {
  return absent();
}
core::Status mse_loss_gradient(int, void*, const void*, DataType, const void*, DataType, void*, DataType, int64_t,
                               float) {
  return absent();
}
core::Status sgd_update(int, void*, const core::OptimizerCommon&, const core::SgdParams&, const UpdateSegment*, int) {
  return absent();
}
core::Status rmsprop_update(int, void*, const core::OptimizerCommon&, const core::RmsPropParams&, const UpdateSegment*,
                            int) {
  return absent();
}
core::Status adam_update(int, void*, const core::OptimizerCommon&, const core::AdamParams&, float, const UpdateSegment*,
                         int) {
  return absent();
}
core::Status copy_h2d_async(int, void*, void*, const void*, std::size_t) { return absent(); }
}  // namespace tconv::cuda_backend::training
