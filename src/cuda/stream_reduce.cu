// Pass 2 of the stream algorithms' weight gradients (layout in stream_common.cuh): each weight entry adds its
// `rows` chunk partials, each bias entry its rows·nph (chunk, phase) partials, then the old value when
// accumulating. A block owns 32 consecutive entries (lanes: coalesced loads) and splits their terms over its
// 32 warps: warp w adds a contiguous slice with eight interleaved running sums, and the 32 slice sums are
// combined pairwise. The order depends on the term count alone, so every run gives the same bits.
//
// Why 32 warps and eight sums: the pass is a stream of 128-byte loads and nothing else, so its speed is the
// number of loads in flight. With 16 warps and four sums (the first version), ncu measured 15–19 µs for the
// 6–9 MB of partials of dcgan_g5's and fsrcnn_x3's weight gradients (warps active 25%, long-scoreboard stalls
// 10–13 per issue): about 25% of the copy bandwidth. A layer's entries fill only 100–150 blocks, one per SM,
// so the parallelism has to come from inside the block.
#include "cuda/cuda_util.hpp"
#include "cuda/stream_common.cuh"

namespace tconv::cuda_stream {
namespace {

constexpr int kSlices = 32;
constexpr int kSums = 8;  // interleaved running sums per warp: loads in flight

// Terms [begin, end) in kSums interleaved running sums (term i goes to sum i % kSums from begin), all of a
// round's loads issued before its adds; the sums are then combined pairwise.
template <class Term>
__device__ __forceinline__ float slice_sum(const Term& term, int64_t begin, int64_t end) {
  float a[kSums] = {};
  int64_t i = begin;
  for (; i + kSums <= end; i += kSums) {
    float v[kSums];
#pragma unroll
    for (int u = 0; u < kSums; ++u) v[u] = term(i + u);
#pragma unroll
    for (int u = 0; u < kSums; ++u) a[u] += v[u];
  }
#pragma unroll
  for (int u = 0; u < kSums - 1; ++u)
    if (i + u < end) a[u] += term(i + u);
#pragma unroll
  for (int width = kSums / 2; width > 0; width /= 2)
#pragma unroll
    for (int u = 0; u < width; ++u) a[u] = a[2 * u] + a[2 * u + 1];
  return a[0];
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
      // Term i is (chunk i / nph, phase i % nph). The block that holds the bias entries is the pass's last and
      // paced it while each term took a 64-bit division (a called subroutine): one phase needs none, and below
      // 2^32 terms (every plan in practice: chunks × stride phases) a 32-bit division is a few instructions.
      const float* pb = partial + wei_count + o;
      if (nph == 1) {
        s = slice_sum([&](int64_t i) { return pb[i * row_len]; }, b, en);
      } else if (terms >= (int64_t{1} << 32)) {
        s = slice_sum([&](int64_t i) { return pb[(i / nph) * row_len + (i % nph) * bias_count]; }, b, en);
      } else {
        const uint32_t np = static_cast<uint32_t>(nph);
        s = slice_sum([&](int64_t i) {
          const uint32_t q = static_cast<uint32_t>(i) / np, r = static_cast<uint32_t>(i) - q * np;
          return pb[int64_t{q} * row_len + int64_t{r} * bias_count];
        }, b, en);
      }
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
