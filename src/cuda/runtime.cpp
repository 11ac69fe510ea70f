// The CUDA runtime facade (cuda/backend.hpp) over cudart, for builds with the CUDA backend.
//
// Every call names its device; the calling thread's current device is switched for the call and restored
// afterwards (DeviceGuard), so the object API can hold buffers on several GPUs without tracking cudaSetDevice
// itself. Failures come back as Status with the runtime's own error name and the values involved.
#include <cuda_runtime.h>

#include <sstream>
#include <string>

#include "cuda/backend.hpp"
#include "cuda/cuda_util.hpp"

namespace tconv::cuda_backend {

bool compiled_in() noexcept { return true; }

int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no GPU: clear the sticky-free error and report none
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "unknown CUDA device " + std::to_string(device);
  }
  return prop.name;
}

core::Status malloc_device(int device, std::size_t bytes, void** out) {
  *out = nullptr;
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  if (bytes == 0) return core::Status::ok_status();
  const cudaError_t e = cudaMalloc(out, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *out = nullptr;
    std::ostringstream m;
    m << "cudaMalloc of " << bytes << " bytes on cuda:" << device << " failed: " << cudaGetErrorString(e);
    return core::fail(e == cudaErrorMemoryAllocation ? ErrorCode::out_of_memory : ErrorCode::device_unavailable,
                      m.str());
  }
  return core::Status::ok_status();
}

void free_device(int device, void* p) noexcept {
  if (p == nullptr) return;
  DeviceGuard guard(device);
  cudaFree(p);
}

core::Status memset_device(int device, void* p, int value, std::size_t bytes) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaMemset(p, value, bytes), "cudaMemset");
}

core::Status copy_h2d(int device, void* dst, const void* src, std::size_t bytes) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host to device");
}

core::Status copy_d2h(int device, void* dst, const void* src, std::size_t bytes) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device to host");
}

core::Status copy_d2d(int device, void* dst, const void* src, std::size_t bytes) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device to device");
}

core::Status stream_create(int device, void** stream) {
  *stream = nullptr;
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  cudaStream_t s = nullptr;
  if (auto st = check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); !st.ok()) return st;
  *stream = s;
  return core::Status::ok_status();
}

void stream_destroy(int device, void* stream) noexcept {
  if (stream == nullptr) return;
  DeviceGuard guard(device);
  cudaStreamDestroy(static_cast<cudaStream_t>(stream));
}

core::Status stream_synchronize(int device, void* stream) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

core::Status event_create(int device, void** event) {
  *event = nullptr;
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  cudaEvent_t e = nullptr;
  if (auto st = check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate"); !st.ok()) return st;
  *event = e;
  return core::Status::ok_status();
}

void event_destroy(int device, void* event) noexcept {
  if (event == nullptr) return;
  DeviceGuard guard(device);
  cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

core::Status event_record(int device, void* event, void* stream) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
}

core::Status stream_wait_event(int device, void* stream, void* event) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0),
               "cudaStreamWaitEvent");
}

}  // namespace tconv::cuda_backend
