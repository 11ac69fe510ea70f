// Pass 2 of the stream algorithms' weight gradients (layout in stream_common.cuh): each weight entry adds its
// `rows` chunk partials, each bias entry its rows·nph (chunk, phase) partials, then the old value when
// accumulating. A block owns 32 consecutive entries (lanes: coalesced loads) and splits their terms over its
// 16 warps: warp w adds a contiguous slice with four interleaved running sums (independent loads in flight,
// where one running sum would wait on each load in turn), and the 16 slice sums are combined pairwise.
// The order depends on the term count alone, so every run gives the same bits.
#include "cuda/cuda_util.hpp"
#include "cuda/stream_common.cuh"

namespace tconv::cuda_stream {
namespace {

constexpr int kSlices = 16;

template <class Term>
__device__ __forceinline__ float slice_sum(const Term& term, int64_t begin, int64_t end) {
  float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
  int64_t i = begin;
  for (; i + 4 <= end; i += 4) {
    a0 += term(i);
    a1 += term(i + 1);
    a2 += term(i + 2);
    a3 += term(i + 3);
  }
  if (i < end) a0 += term(i);
  if (i + 1 < end) a1 += term(i + 1);
  if (i + 2 < end) a2 += term(i + 2);
  return (a0 + a1) + (a2 + a3);
}

__global__ void __launch_bounds__(kSlices * 32) reduce_rows_kernel(const float* __restrict__ partial, int64_t rows,
                                                          int64_t row_len, int64_t wei_count, int64_t nph,
                                                          int64_t bias_count, float* __restrict__ diff_wei,
                                                          float* __restrict__ diff_bias, bool accumulate) {
  __shared__ float slice[kSlices][32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t total = wei_count + bias_count;
  for (int64_t base = blockIdx.x * int64_t{32}; base < total; base += int64_t{gridDim.x} * 32) {
    const int64_t e = base + lane;
    float s = 0.f;
    if (e < wei_count) {
      const int64_t per = (rows + kSlices - 1) / kSlices;
      const int64_t b = w * per, en = min(rows, b + per);
      s = slice_sum([&](int64_t i) { return partial[i * row_len + e]; }, b, en);
    } else if (e < total) {
      const int64_t o = e - wei_count, terms = rows * nph;
      const int64_t per = (terms + kSlices - 1) / kSlices;
      const int64_t b = w * per, en = min(terms, b + per);
      s = slice_sum([&](int64_t i) { return partial[(i / nph) * row_len + wei_count + (i % nph) * bias_count + o]; },
                    b, en);
    }
    slice[w][lane] = s;
    __syncthreads();
    if (w == 0 && e < total) {
      float v[kSlices];
#pragma unroll
      for (int i = 0; i < kSlices; ++i) v[i] = slice[i][lane];
#pragma unroll
      for (int width = kSlices / 2; width > 0; width /= 2)  // pairwise: (0+1), (2+3), ... then their sums
#pragma unroll
        for (int i = 0; i < width; ++i) v[i] = v[2 * i] + v[2 * i + 1];
      const float r = v[0];
      float* out = e < wei_count ? diff_wei + e : diff_bias + (e - wei_count);
      *out = accumulate ? *out + r : r;
    }
    __syncthreads();
  }
}

}  // namespace

core::Status launch_reduce_rows(const float* partial, int64_t rows, int64_t row_len, int64_t wei_count, int64_t nph,
                                int64_t bias_count, float* diff_wei, float* diff_bias, bool accumulate,
                                cudaStream_t stream) {
  if (diff_bias == nullptr) bias_count = 0;
  const int64_t total = wei_count + bias_count;
  const int64_t blocks = std::min<int64_t>((total + 31) / 32, int64_t{1} << 16);
  reduce_rows_kernel<<<static_cast<unsigned>(std::max<int64_t>(blocks, 1)), kSlices * 32, 0, stream>>>(
      partial, rows, row_len, wei_count, nph, bias_count, diff_wei, diff_bias, accumulate);
  return cuda_backend::check_launch("stream weight-gradient reduction");
}

}  // namespace tconv::cuda_stream
