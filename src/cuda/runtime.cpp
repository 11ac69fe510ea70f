// The CUDA runtime facade (cuda/backend.hpp) over cudart, for builds with the CUDA backend.
//
// Every call names its device; the calling thread's current device is switched for the call and restored
// afterwards (DeviceGuard), so the object API can hold buffers on several GPUs without tracking cudaSetDevice
// itself. Failures come back as Status with the runtime's own error name and the values involved.
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
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

namespace {

// Whether a device allocates stream-ordered (memory pools), decided once per device: 0 unknown, 1 yes, 2 no.
// The first use also lets the device's default pool keep up to a quarter of the device's memory between
// synchronisations (the default keeps nothing, which would hand every buffer back to the driver at each
// command buffer's end and take it again at the next encode).
constexpr int kMaxDevices = 64;
std::array<std::atomic<int>, kMaxDevices> g_pools{};

bool uses_pools(int device) {
  if (device < 0 || device >= kMaxDevices) return false;
  int state = g_pools[static_cast<std::size_t>(device)].load(std::memory_order_acquire);
  if (state != 0) return state == 1;
  int supported = 0;
  if (cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) {
    cudaGetLastError();
    supported = 0;
  }
  if (supported) {
    cudaMemPool_t pool = nullptr;
    std::size_t free_b = 0, total_b = 0;
    if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      uint64_t keep = total_b / 4;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    cudaGetLastError();
  }
  g_pools[static_cast<std::size_t>(device)].store(supported ? 1 : 2, std::memory_order_release);
  return supported != 0;
}

}  // namespace

core::Status malloc_device(int device, std::size_t bytes, void** out) {
  *out = nullptr;
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  if (bytes == 0) return core::Status::ok_status();
  const bool pools = uses_pools(device);
  cudaError_t e = pools ? cudaMallocAsync(out, bytes, nullptr) : cudaMalloc(out, bytes);
  if (e == cudaErrorMemoryAllocation && pools) {
    // Memory the pool keeps from earlier frees counts as used for other allocators: give it back, retry.
    cudaGetLastError();
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceSynchronize() == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess)
      cudaMemPoolTrimTo(pool, 0);
    cudaGetLastError();
    e = cudaMallocAsync(out, bytes, nullptr);
  }
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
  // Stream-ordered on the legacy stream: after everything issued so far to the blocking streams.
  if (uses_pools(device)) cudaFreeAsync(p, nullptr);
  else cudaFree(p);
  cudaGetLastError();
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

core::Status device_synchronize(int device) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

core::Status stream_create(int device, void** stream, bool blocking) {
  *stream = nullptr;
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  cudaStream_t s = nullptr;
  if (auto st = check(cudaStreamCreateWithFlags(&s, blocking ? cudaStreamDefault : cudaStreamNonBlocking),
                      "cudaStreamCreate");
      !st.ok())
    return st;
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

core::Status event_create(int device, void** event, bool timing) {
  *event = nullptr;
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  cudaEvent_t e = nullptr;
  if (auto st = check(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming),
                      "cudaEventCreate");
      !st.ok())
    return st;
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

core::Status event_synchronize(int device, void* event) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaEventSynchronize(static_cast<cudaEvent_t>(event)), "cudaEventSynchronize");
}

core::Status event_elapsed_ms(int device, void* start, void* end, float* ms) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaEventElapsedTime(ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)),
               "cudaEventElapsedTime");
}

core::Status stream_wait_event(int device, void* stream, void* event) {
  DeviceGuard guard(device);
  if (!guard.ok()) return guard.status();
  return check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0),
               "cudaStreamWaitEvent");
}

}  // namespace tconv::cuda_backend
