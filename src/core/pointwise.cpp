// Element-wise neuron and MSE-loss math (formulas in pointwise.hpp).
// Work is cut into chunks of kChunk elements: each chunk is converted to float32 on the stack once (so the
// type switch runs per chunk, not per element), computed, and converted back. Chunks are independent, so the
// element-wise results do not depend on the thread count; the MSE sum uses fixed blocks for the same reason.
#include "core/pointwise.hpp"

#include <algorithm>
#include <vector>

#include <omp.h>

#include "core/dtype.hpp"
#include "core/neuron.hpp"

namespace tconv::core {
namespace {

constexpr int64_t kChunk = 256;
static_assert(kMseBlock % kChunk == 0, "MSE blocks are whole chunks");
constexpr int64_t kParallelThreshold = 1 << 14;

int team_size(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

void load_chunk(ConstArray a, int64_t begin, int64_t n, float* out) {
  switch (a.type) {
    case DataType::float32: std::copy_n(static_cast<const float*>(a.data) + begin, n, out); break;
    default:
      for (int64_t i = 0; i < n; ++i) out[i] = load_as_f32(a.data, begin + i, a.type);
  }
}

void store_chunk(MutArray a, int64_t begin, int64_t n, const float* in) {
  switch (a.type) {
    case DataType::float32: std::copy_n(in, n, static_cast<float*>(a.data) + begin); break;
    default:
      for (int64_t i = 0; i < n; ++i) store_from_f32(a.data, begin + i, a.type, in[i]);
  }
}

int64_t chunks_of(int64_t count, int64_t size) { return (count + size - 1) / size; }

}  // namespace

void neuron_forward(const NeuronDescriptor& neuron, ConstArray x, MutArray y, int64_t count, int threads) {
  const int64_t chunks = chunks_of(count, kChunk);
#pragma omp parallel for schedule(static) num_threads(team_size(threads)) if (count >= kParallelThreshold)
  for (int64_t c = 0; c < chunks; ++c) {
    float buf[kChunk];
    const int64_t begin = c * kChunk, n = std::min(kChunk, count - begin);
    load_chunk(x, begin, n, buf);
    for (int64_t i = 0; i < n; ++i) buf[i] = neuron_apply<float>(neuron, buf[i]);
    store_chunk(y, begin, n, buf);
  }
}

void neuron_gradient(const NeuronDescriptor& neuron, ConstArray gy, ConstArray x, MutArray gx, int64_t count,
                     int threads) {
  const int64_t chunks = chunks_of(count, kChunk);
#pragma omp parallel for schedule(static) num_threads(team_size(threads)) if (count >= kParallelThreshold)
  for (int64_t c = 0; c < chunks; ++c) {
    float g[kChunk], xv[kChunk];
    const int64_t begin = c * kChunk, n = std::min(kChunk, count - begin);
    load_chunk(gy, begin, n, g);
    load_chunk(x, begin, n, xv);
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] * neuron_derivative<float>(neuron, xv[i]);
    store_chunk(gx, begin, n, g);
  }
}

double mse_loss(ConstArray predictions, ConstArray targets, int64_t count, double weight, int threads) {
  const int64_t blocks = chunks_of(count, kMseBlock);
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) num_threads(team_size(threads)) if (count >= kParallelThreshold)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t block_begin = b * kMseBlock, block_end = std::min(count, block_begin + kMseBlock);
    double sum = 0.0;
    float p[kChunk], t[kChunk];
    for (int64_t begin = block_begin; begin < block_end; begin += kChunk) {
      const int64_t n = std::min(kChunk, block_end - begin);
      load_chunk(predictions, begin, n, p);
      load_chunk(targets, begin, n, t);
      for (int64_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(p[i]) - static_cast<double>(t[i]);
        sum += d * d;
      }
    }
    partial[static_cast<size_t>(b)] = sum;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return weight * total / static_cast<double>(count);
}

void mse_loss_gradient(ConstArray predictions, ConstArray targets, MutArray gradient, int64_t count, double weight,
                       int threads) {
  const float factor = static_cast<float>(2.0 * weight / static_cast<double>(count));
  const int64_t chunks = chunks_of(count, kChunk);
#pragma omp parallel for schedule(static) num_threads(team_size(threads)) if (count >= kParallelThreshold)
  for (int64_t c = 0; c < chunks; ++c) {
    float p[kChunk], t[kChunk];
    const int64_t begin = c * kChunk, n = std::min(kChunk, count - begin);
    load_chunk(predictions, begin, n, p);
    load_chunk(targets, begin, n, t);
    for (int64_t i = 0; i < n; ++i) p[i] = (p[i] - t[i]) * factor;
    store_chunk(gradient, begin, n, p);
  }
}

}  // namespace tconv::core
