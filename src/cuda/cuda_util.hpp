// Host-side helpers shared by the CUDA backend's files: turning cudart errors into Status, and a guard
// that makes a device current for one call and restores the caller's device afterwards.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/status.hpp"

namespace tconv::cuda_backend {

// Status for a cudart result; `what` names the call. Clears the runtime's last-error slot so that a
// reported failure is not reported again by the next check.
inline core::Status check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return core::Status::ok_status();
  cudaGetLastError();
  const ErrorCode code = e == cudaErrorMemoryAllocation ? ErrorCode::out_of_memory : ErrorCode::device_unavailable;
  return core::fail(code, std::string(what) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

// After a kernel launch: a bad configuration shows up here (execution errors show at the next sync).
inline core::Status check_launch(const char* kernel) { return check(cudaGetLastError(), kernel); }

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) {
      cudaGetLastError();
      previous_ = -1;
    }
    if (device < 0) device = previous_ < 0 ? 0 : previous_;
    if (device != previous_) {
      static_cast<void>(status_ = check(cudaSetDevice(device), "cudaSetDevice"));
      if (status_.ok()) switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_ && previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  bool ok() const { return status_.ok(); }
  const core::Status& status() const { return status_; }

 private:
  int previous_ = -1;
  bool switched_ = false;
  core::Status status_;
};

}  // namespace tconv::cuda_backend
