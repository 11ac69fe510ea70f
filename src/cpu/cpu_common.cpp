// Staging and conversion helpers of the CPU backend (see cpu_common.hpp for why they exist).
#include "cpu/cpu_common.hpp"

#include "core/dtype.hpp"

namespace tconv::cpu {

bool rounding_is_identity(DataType t, Precision p) {
  if (p == Precision::fp32) return true;
  if (t == DataType::float16) return p == Precision::fp16;
  // bfloat16 values (8-bit significand, float32 range) are representable in bf16 and tf32.
  if (t == DataType::bfloat16) return p == Precision::bf16 || p == Precision::tf32;
  return false;
}

std::size_t f32_bytes(int64_t n, int64_t h, int64_t w, int64_t c) {
  return static_cast<std::size_t>(round_up(n * h * w * c * 4, 64));
}

F32View stage_input(const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, DataType t,
                    Precision p, float* out, int threads) {
  const int64_t rows = n * h;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t in = r / h, ih = r % h;
    for (int64_t iw = 0; iw < w; ++iw) {
      const int64_t base = in * v.sn + ih * v.sh + iw * v.sw;
      float* o = out + (r * w + iw) * c;
      for (int64_t ic = 0; ic < c; ++ic) o[ic] = core::round_input(core::load_as_f32(v.data, base + ic, t), p);
    }
  }
  return F32View{out, h * w * c, w * c, c};
}

void unstage_output(const float* in, const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c,
                    DataType t, int threads) {
  const int64_t rows = n * h;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t img = r / h, ih = r % h;
    for (int64_t iw = 0; iw < w; ++iw) {
      const int64_t base = img * v.sn + ih * v.sh + iw * v.sw;
      const float* s = in + (r * w + iw) * c;
      for (int64_t ic = 0; ic < c; ++ic) core::store_from_f32(v.data, base + ic, t, s[ic]);
    }
  }
}

F32View input_f32(const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, const core::Problem& p,
                  WorkspaceCursor& ws, int threads) {
  if (!input_needs_staging(p.act_type, p.precision)) return as_f32(v);
  auto* out = static_cast<float*>(ws.bytes(static_cast<int64_t>(f32_bytes(n, h, w, c))));
  return stage_input(v, n, h, w, c, p.act_type, p.precision, out, threads);
}

StagedOutput::StagedOutput(const core::TensorView& v, int64_t n, int64_t h, int64_t w, int64_t c, DataType t,
                           WorkspaceCursor& ws)
    : v_(v), n_(n), h_(h), w_(w), c_(c), t_(t) {
  if (t == DataType::float32) f32_ = as_f32(v);
  else f32_ = F32View{static_cast<float*>(ws.bytes(static_cast<int64_t>(f32_bytes(n, h, w, c)))), h * w * c, w * c, c};
}

void StagedOutput::finish(int threads) const {
  if (t_ != DataType::float32) unstage_output(f32_.data, v_, n_, h_, w_, c_, t_, threads);
}

}  // namespace tconv::cpu
