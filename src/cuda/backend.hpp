// The CUDA runtime as the rest of tconv sees it: plain C++ (no CUDA headers), so the object API can hold
// device memory and streams without #ifdef. In a build without CUDA every function reports
// device_unavailable (stub.cpp); with CUDA they wrap the runtime (runtime.cpp, api_kernels.cu).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/problem.hpp"
#include "core/status.hpp"

namespace tconv::cuda_backend {

bool compiled_in() noexcept;           // built with the CUDA backend
int device_count() noexcept;           // 0 when not compiled in or no driver/GPU
std::string device_name(int device);   // e.g. "NVIDIA H100 80GB HBM3"

// Device memory is stream-ordered on the legacy default stream (cudaMallocAsync/cudaFreeAsync where the
// device has memory pools, cudaMalloc/cudaFree otherwise): a free waits, on the GPU, for all work issued
// before it to the blocking streams below, without blocking the host — so dropping the last handle of a
// buffer that queued kernels still use is safe and costs no device synchronisation.
core::Status malloc_device(int device, std::size_t bytes, void** out);  // out_of_memory on failure
void free_device(int device, void* p) noexcept;
core::Status memset_device(int device, void* p, int value, std::size_t bytes);
core::Status copy_h2d(int device, void* dst, const void* src, std::size_t bytes);
core::Status copy_d2h(int device, void* dst, const void* src, std::size_t bytes);
core::Status copy_d2d(int device, void* dst, const void* src, std::size_t bytes);
core::Status device_synchronize(int device);

// Streams and events are opaque handles (cudaStream_t / cudaEvent_t behind void*).
// blocking = true: the stream synchronises with the legacy default stream (cudaStreamDefault), so the
// synchronous copies above are ordered with the work queued on it. The object API's command-buffer streams
// are blocking for that reason; non-blocking streams are for code that orders everything itself.
core::Status stream_create(int device, void** stream, bool blocking = false);
void stream_destroy(int device, void* stream) noexcept;
core::Status stream_synchronize(int device, void* stream);
// timing = true: usable with event_elapsed_ms (timing costs a little; off by default).
core::Status event_create(int device, void** event, bool timing = false);
void event_destroy(int device, void* event) noexcept;
core::Status event_record(int device, void* event, void* stream);
core::Status event_synchronize(int device, void* event);
core::Status event_elapsed_ms(int device, void* start, void* end, float* ms);
core::Status stream_wait_event(int device, void* stream, void* event);

// ---- small kernels the object API runs around the canonical problem (api_kernels.cu) ----------------------
// All launch on `stream` and do not synchronise; pointers are device pointers; index math is 64-bit.

// Epilogue of a forward result written by an algorithm without bias/neuron: for every element (n, y, x, o) of
// the view (extents n × h × w × c, channel stride 1, elements of type t): v = neuron(v + bias[o]) (bias may be
// null, neuron none), then, when round_f16 and t is float32, v = float32(float16(v)) (the half accumulator
// of MPS). Stores round to t with round-to-nearest-even, as core::store_from_f32 does.
core::Status epilogue(int device, void* stream, const core::TensorView& v, DataType t, int64_t n, int64_t h,
                      int64_t w, int64_t c, const float* bias, const NeuronDescriptor& neuron, bool round_f16);

// Weight layout of a plain convolution: wc[o][q][p][ci] (OHWI of the convolution, c_out = Nout_c) from the
// canonical transposed-convolution weights wt (core::transpose_weights_to_conv on the device); accumulate:
// wc += instead of wc =. Shapes are those of core::ConvGeometry's channels, groups and kernel.
core::Status conv_weights_from_transpose(int device, void* stream, int64_t c_in, int64_t c_out, int64_t groups,
                                         int64_t kh, int64_t kw, const float* wt, float* wc, bool accumulate);

// db[o] (+)= Σ over n, y, x of v[n][y][x][o] (elements of type t), summed in double in a fixed order that
// depends on the extents only (deterministic), stored as float32. workspace: bias_gradient_workspace() bytes.
std::size_t bias_gradient_workspace(int64_t n, int64_t h, int64_t w, int64_t c);
core::Status bias_gradient(int device, void* stream, const core::TensorView& v, DataType t, int64_t n, int64_t h,
                           int64_t w, int64_t c, float* db, bool accumulate, void* workspace);

}  // namespace tconv::cuda_backend
