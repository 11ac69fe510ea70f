// Weight-store copies on a CUDA device (weights_kernels.cu), as the object API sees them: plain C++, no CUDA
// headers; in a build without CUDA every function reports device_unavailable (weights_stub.cpp).
//
// They make a kernel's weight reload and export stream-ordered device work (api::encode_reload_weights,
// api::encode_export_weights): the values never pass through host memory and the host never waits.
#pragma once

#include <cstdint>

#include "core/status.hpp"
#include "tconv/types.hpp"

namespace tconv::cuda_backend::weights {

// The layout change applied while copying. A plain convolution's OHWI weights wc[o][q][p][ci] and the canonical
// transposed-convolution weights wt[g][ci][kh-1-q][kw-1-p][o_local] are one permutation apart
// (core::conv_weights_to_transpose / transpose_weights_to_conv).
enum class Reorder : int {
  none,               // dst[i] = src[i]
  conv_to_transpose,  // dst[t(i)] = src[i], i the convolution's flat index, t(i) the canonical one
  transpose_to_conv,  // dst[i] = src[t(i)]
};

// The channels, groups and kernel of a plain convolution (core::ConvGeometry's), for the reorders.
struct ConvShape {
  int64_t c_in = 0, c_out = 0, groups = 1, kh = 1, kw = 1;
};

// One launch on `stream`, no synchronisation: for i < count, the weight at i is rounded to `storage` (float32:
// unchanged; float16/bfloat16: RNE through that type, bit for bit core::f32_to_f16/f32_to_bf16 as the host's
// api::round_to_storage does) and stored at its reordered place; then dst_b[j] = src_b[j] for j < bias_count
// (nothing when src_b is null). Device pointers of `device`; src and dst must not overlap.
core::Status copy_weights(int device, void* stream, const float* src_w, float* dst_w, int64_t count, DataType storage,
                          Reorder reorder, const ConvShape& shape, const float* src_b, float* dst_b,
                          int64_t bias_count);

// ---- test support: lets tests prove that a host call did not wait for the GPU ------------------------------

// *idle = whether every command issued to `stream` so far has finished (cudaStreamQuery).
core::Status stream_idle(int device, void* stream, bool* idle);
// Keeps `stream` busy for about `microseconds` of GPU time (one thread sleeping on the global timer).
core::Status spin(int device, void* stream, int64_t microseconds);

}  // namespace tconv::cuda_backend::weights
