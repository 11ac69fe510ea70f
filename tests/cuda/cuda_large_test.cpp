// Index arithmetic beyond 2^31 elements (GPU only): a 1×1 transposed convolution whose dst has
// 1·16400·16400·8 = 2 151 680 000 f16 elements (4.3 GB), run in all three directions by every CUDA algorithm
// that takes it. Small-integer data make every image output exact, so regions at the start, across the
// 2^31 boundary and at the very end are compared exactly with closed-form values; the weight and bias
// gradients (sums of 2.7·10^8 terms) are compared with a float64 sum within float32 rounding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda_test_util.hpp"

namespace tconv::cuda_test {
namespace {

constexpr int64_t kSide = 16400, kCout = 8;
float pattern(int64_t pixel) {
  const int64_t iy = pixel / kSide, ix = pixel % kSide;
  return static_cast<float>((iy * 7 + ix * 3) % 5 - 1);  // -1..3: sums far from 0
}
float weight(int64_t o) { return static_cast<float>(o - 3); }

// Copies dst-side elements [first, first + count) back and checks them against expect(i).
template <class F>
void check_region(const void* dev, int64_t first, int64_t count, F&& expect, const char* what) {
  std::vector<uint16_t> host(static_cast<size_t>(count));
  const core::Status s = cuda_backend::copy_d2h(0, host.data(), static_cast<const uint16_t*>(dev) + first, count * 2);
  ASSERT_TRUE(s.ok()) << s.message;
  for (int64_t k = 0; k < count; ++k) {
    const float got = core::f16_to_f32(host[static_cast<size_t>(k)]);
    const float want = expect(first + k);
    ASSERT_EQ(got, want) << what << " element " << first + k;
  }
}

TEST(CudaLarge, MoreThan2To31Elements) {
  TCONV_SKIP_WITHOUT_GPU();
  core::Problem p;
  p.g.n = 1;
  p.g.c_in = 1;
  p.g.c_out = kCout;
  p.g.h_in = p.g.w_in = p.g.h_out = p.g.w_out = kSide;
  p.act_type = DataType::float16;
  p.precision = Precision::fp16;
  const int64_t pixels = kSide * kSide, dst_elems = pixels * kCout;
  ASSERT_GT(dst_elems, int64_t{1} << 31);

  DeviceBuffer src(static_cast<size_t>(pixels) * 2), dst(static_cast<size_t>(dst_elems) * 2);
  if (!src.status().ok() || !dst.status().ok()) GTEST_SKIP() << "not enough GPU memory for a 4.3 GB tensor";
  DeviceBuffer wei(kCout * 4), diff_wei(kCout * 4), diff_bias(kCout * 4);
  {
    std::vector<uint16_t> h(static_cast<size_t>(pixels));
    for (int64_t i = 0; i < pixels; ++i) h[static_cast<size_t>(i)] = core::f32_to_f16(pattern(i));
    ASSERT_TRUE(cuda_backend::copy_h2d(0, src.get(), h.data(), src.size()).ok());
    std::vector<float> w(kCout);
    for (int64_t o = 0; o < kCout; ++o) w[static_cast<size_t>(o)] = weight(o);
    ASSERT_TRUE(cuda_backend::copy_h2d(0, wei.get(), w.data(), kCout * 4).ok());
  }
  double s2 = 0;  // Σ w², Σ_pixels v, Σ_pixels v²
  for (int64_t o = 0; o < kCout; ++o) s2 += weight(o) * weight(o);
  double sum_v = 0, sum_v2 = 0;
  for (int64_t i = 0; i < pixels; ++i) {
    sum_v += pattern(i);
    sum_v2 += static_cast<double>(pattern(i)) * pattern(i);
  }
  const core::Args a = core::dense_args(p.g, src.get(), dst.get(), static_cast<const float*>(wei.get()),
                                        nullptr, static_cast<float*>(diff_wei.get()),
                                        static_cast<float*>(diff_bias.get()));
  Stream stream;
  ASSERT_TRUE(stream.status().ok());
  registry::ExecContext ctx;
  ctx.cuda_device = 0;
  ctx.cuda_stream = stream.get();
  const int64_t edge = int64_t{1} << 31, span = int64_t{1} << 20;

  for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cuda)) {
    if (!selected(*alg)) continue;
    SCOPED_TRACE(std::string(alg->name()));
    // fwd: dst[pixel][o] = v(pixel)·w[o].
    p.dir = core::Direction::fwd;
    p.with_bias = false;
    if (!alg->decline_reason(p)) {
      DeviceBuffer ws(alg->workspace_bytes(p));
      ASSERT_TRUE(ws.status().ok());
      ASSERT_TRUE(cuda_backend::memset_device(0, dst.get(), 0xff, dst.size()).ok());
      const core::Status s = alg->run(p, a, ws.get(), ctx);
      ASSERT_TRUE(s.ok()) << s.message;
      ASSERT_TRUE(cuda_backend::stream_synchronize(0, stream.get()).ok());
      auto expect = [](int64_t i) { return pattern(i / kCout) * weight(i % kCout); };
      check_region(dst.get(), 0, span, expect, "dst");
      check_region(dst.get(), edge - span, 2 * span, expect, "dst");
      check_region(dst.get(), dst_elems - span, span, expect, "dst");
    }
    // bwd_data: diff_src[pixel] = Σ_o w[o]·(v·w[o]) = v·Σw², read from the > 2^31-element diff_dst.
    p.dir = core::Direction::bwd_data;
    if (!alg->decline_reason(p)) {
      DeviceBuffer out(src.size());
      ASSERT_TRUE(out.status().ok());
      ASSERT_TRUE(cuda_backend::memset_device(0, out.get(), 0xff, out.size()).ok());
      core::Args b = a;
      b.diff_src = core::dense_nhwc(out.get(), kSide, kSide, 1);
      DeviceBuffer ws(alg->workspace_bytes(p));
      const core::Status s = alg->run(p, b, ws.get(), ctx);
      ASSERT_TRUE(s.ok()) << s.message;
      ASSERT_TRUE(cuda_backend::stream_synchronize(0, stream.get()).ok());
      auto expect = [&](int64_t i) { return static_cast<float>(pattern(i) * s2); };
      check_region(out.get(), 0, span, expect, "diff_src");
      check_region(out.get(), pixels - span, span, expect, "diff_src");
    }
    // bwd_weights with bias: diff_wei[o] = Σ v·(v·w[o]) = w[o]·Σv² (src still holds v), diff_bias[o] = w[o]·Σv.
    p.dir = core::Direction::bwd_weights;
    p.with_bias = true;
    if (!alg->decline_reason(p)) {
      DeviceBuffer ws(alg->workspace_bytes(p));
      ASSERT_TRUE(ws.status().ok());
      const core::Status s = alg->run(p, a, ws.get(), ctx);
      ASSERT_TRUE(s.ok()) << s.message;
      ASSERT_TRUE(cuda_backend::stream_synchronize(0, stream.get()).ok());
      std::vector<float> dw(kCout), db(kCout);
      ASSERT_TRUE(cuda_backend::copy_d2h(0, dw.data(), diff_wei.get(), kCout * 4).ok());
      ASSERT_TRUE(cuda_backend::copy_d2h(0, db.data(), diff_bias.get(), kCout * 4).ok());
      for (int64_t o = 0; o < kCout; ++o) {
        const double want_w = weight(o) * sum_v2, want_b = weight(o) * sum_v;
        // Float32 sums of 16400 rows of 16400 terms: a few 1e-6 relative; one row lost would be 6e-5.
        EXPECT_NEAR(dw[static_cast<size_t>(o)], want_w, 3e-5 * std::abs(want_w)) << "diff_wei " << o;
        EXPECT_NEAR(db[static_cast<size_t>(o)], want_b, 3e-5 * std::abs(want_b)) << "diff_bias " << o;
      }
    }
  }
}

}  // namespace
}  // namespace tconv::cuda_test
