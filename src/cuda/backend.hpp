// The CUDA runtime as the rest of tconv sees it: plain C++ (no CUDA headers), so the object API can hold
// device memory and streams without #ifdef. In a build without CUDA every function reports
// device_unavailable (stub.cpp); with CUDA they wrap the runtime (runtime.cu/.cpp in this folder).
#pragma once

#include <cstddef>
#include <string>

#include "core/status.hpp"

namespace tconv::cuda_backend {

bool compiled_in() noexcept;           // built with the CUDA backend
int device_count() noexcept;           // 0 when not compiled in or no driver/GPU
std::string device_name(int device);   // e.g. "NVIDIA H100 80GB HBM3"

core::Status malloc_device(int device, std::size_t bytes, void** out);  // out_of_memory on failure
void free_device(int device, void* p) noexcept;
core::Status memset_device(int device, void* p, int value, std::size_t bytes);
core::Status copy_h2d(int device, void* dst, const void* src, std::size_t bytes);
core::Status copy_d2h(int device, void* dst, const void* src, std::size_t bytes);
core::Status copy_d2d(int device, void* dst, const void* src, std::size_t bytes);

// Streams and events are opaque handles (cudaStream_t / cudaEvent_t behind void*).
core::Status stream_create(int device, void** stream);
void stream_destroy(int device, void* stream) noexcept;
core::Status stream_synchronize(int device, void* stream);
core::Status event_create(int device, void** event);
void event_destroy(int device, void* event) noexcept;
core::Status event_record(int device, void* event, void* stream);
core::Status stream_wait_event(int device, void* stream, void* event);

}  // namespace tconv::cuda_backend
