// Resources and large-tensor index math (issue 7).
//
// Allocation failure: a host allocation that cannot succeed becomes Error(out_of_memory) — never a crash,
// never a foreign exception — and the library keeps working afterwards. Sizes are chosen to exceed any
// address space (2^62 bytes, 2^52 bytes) so the result does not depend on the machine's memory or
// overcommit policy; a child process with a lowered RLIMIT_AS checks an ordinary-sized image (1 GiB) too.
// Under AddressSanitizer an impossible allocation aborts unless allocator_may_return_null is set, so this
// binary sets it by default (the environment can still override it).
//
// Large tensors: element counts past 2^31 must be computed in 64 bits everywhere (core sizes, strides of
// the dense views the API builds, MAC counts, the functional API's output shapes). These are checked on the
// arithmetic itself — nothing of that size is allocated here.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <new>
#include <string>

#include "core/dtype.hpp"
#include "core/mps_geometry.hpp"
#include "core/problem.hpp"
#include "reliability/reliability_util.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TCONV_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TCONV_TEST_SANITIZED 1
#endif
#endif

extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
extern "C" const char* __tsan_default_options() { return "allocator_may_return_null=1"; }

namespace tconv::reliability {
namespace {

constexpr int64_t k2_31 = int64_t{1} << 31;

// ---------------------------------------------------------------- allocation failure

TEST(OutOfMemory, ImpossibleBufferIsOutOfMemoryAndLibraryKeepsWorking) {
  Rig rig;
  expect_error([&] { Buffer::allocate(rig.dev, std::size_t{1} << 62); }, ErrorCode::out_of_memory, "cannot allocate");
  EXPECT_EQ(rig.pass(), golden_pass());
}

TEST(OutOfMemory, ImageLargerThanAnyAddressSpaceIsOutOfMemory) {
  // 2^25 × 2^25 × 1 float32 = 2^52 bytes: within the Image's element limit, beyond any machine.
  Rig rig;
  expect_error([&] { Image(rig.dev, ImageDescriptor{int64_t{1} << 25, int64_t{1} << 25, 1, 1}); },
               ErrorCode::out_of_memory, "bytes of host memory");
  EXPECT_EQ(rig.pass(), golden_pass());
}

TEST(OutOfMemory, ImageWhoseByteSizeOverflowsIsRejected) {
  Rig rig;
  // 2^21 · 2^21 · 2^21 elements overflow int64 once multiplied: the size check must not wrap.
  expect_error([&] { Image(rig.dev, ImageDescriptor{int64_t{1} << 21, int64_t{1} << 21, int64_t{1} << 21, 1}); },
               ErrorCode::invalid_argument, "too large");
  expect_error([&] { Image(rig.dev, ImageDescriptor{1, 1, 1, std::numeric_limits<int64_t>::max()}); },
               ErrorCode::invalid_argument, "too large");
  EXPECT_EQ(rig.pass(), golden_pass());
}

TEST(OutOfMemory, GradientStateForHugeDescriptorIsOutOfMemory) {
  // A valid descriptor whose weights need 2^24 · 2^12 · 2^12 · 2^4 = 2^52 floats (2^54 bytes).
  Rig rig;
  ConvolutionDescriptor d(int64_t{1} << 12, int64_t{1} << 12, int64_t{1} << 4, int64_t{1} << 24);
  expect_error([&] { ConvolutionWeightsAndBiasesState(rig.dev, d); }, ErrorCode::out_of_memory, "cannot allocate");
  EXPECT_EQ(rig.pass(), golden_pass());
}

TEST(OutOfMemory, BadAllocInsideACommandBecomesTheBuffersError) {
  Rig rig;
  CommandBuffer cb(rig.dev);
  cb.encode("grow", [] { throw std::bad_alloc(); });
  cb.commit();
  cb.wait_until_completed();
  ASSERT_EQ(cb.status(), CommandBufferStatus::error);
  ASSERT_TRUE(cb.error().has_value());
  EXPECT_EQ(cb.error()->code(), ErrorCode::out_of_memory);
  EXPECT_EQ(rig.pass(), golden_pass());
}

TEST(OutOfMemory, FunctionalScratchAllocationFailureIsOutOfMemory) {
  // NCHW input of 2^46 elements (2^48 bytes): valid geometry, but the NHWC scratch copy cannot be made.
  // The call must report out_of_memory before touching the (dummy) input.
#ifdef TCONV_TEST_SANITIZED
  GTEST_SKIP() << "a sanitizer's operator new aborts on an impossible size instead of throwing std::bad_alloc";
#endif
  Rig rig;
  float dummy = 0;
  const std::vector<int64_t> xs{1, 1, int64_t{1} << 23, int64_t{1} << 23};
  const std::vector<int64_t> ws{1, 1, 1, 1};
  ConvTranspose2dOptions o;
  expect_error([&] {
    conv_transpose2d(rig.dev, {&dummy, DataType::float32, xs}, {&dummy, DataType::float32, ws}, {},
                     {&dummy, DataType::float32, conv_transpose2d_output_shape(xs, ws, o)}, o);
  }, ErrorCode::out_of_memory, "");
  EXPECT_EQ(rig.pass(), golden_pass());
}

// Current virtual size of this process in bytes (VmSize), or -1.
int64_t vm_size_bytes() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmSize:") {
      int64_t kb = 0;
      f >> kb;
      return kb * 1024;
    }
    std::string rest;
    std::getline(f, rest);
  }
  return -1;
}

TEST(OutOfMemory, MemoryLimitedChildGetsOutOfMemoryNotACrash) {
#ifdef TCONV_TEST_SANITIZED
  GTEST_SKIP() << "sanitizers reserve their shadow memory up front; an address-space limit breaks them";
#else
  const int64_t vm = vm_size_bytes();
  ASSERT_GT(vm, 0);
  // Computed here: the child has no worker threads of the parent's devices, so it uses a device of its own.
  const PassResult& golden = golden_pass();
  ::fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: 256 MiB of headroom, then a 1 GiB image; exit codes tell the parent what happened.
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(vm + (int64_t{256} << 20));
    if (::setrlimit(RLIMIT_AS, &lim) != 0) ::_exit(10);
    int code = 11;  // no error thrown
    try {
      Image big(Device::cpu(1), ImageDescriptor{16384, 16384, 1, 1});  // 2^28 floats = 1 GiB
    } catch (const Error& e) {
      code = e.code() == ErrorCode::out_of_memory ? 0 : 12;
    } catch (...) {
      code = 13;  // a foreign exception escaped
    }
    if (code == 0) {
      // Still working after the failure: a small image and a forward pass on the queue's worker thread.
      try {
        Rig rig(1);
        code = rig.pass() == golden ? 0 : 14;
      } catch (...) {
        code = 15;
      }
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child crashed (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  const char* what[] = {"ok", "", "", "", "", "", "", "", "", "", "setrlimit failed", "no error thrown",
                        "wrong error code", "a non-tconv exception escaped", "wrong results afterwards",
                        "the library failed afterwards"};
  const int code = WEXITSTATUS(status);
  EXPECT_EQ(code, 0) << (code < 16 ? what[code] : "unexpected exit code");
#endif
}

// ---------------------------------------------------------------- large-tensor index math

TEST(LargeTensors, CoreSizesAreSixtyFourBit) {
  core::Geometry g;
  g.n = 1;
  g.h_in = g.w_in = 70000;
  g.c_in = 1;
  g.c_out = 3;
  g.kh = g.kw = 3;
  g.stride_h = g.stride_w = 2;
  g.h_out = g.w_out = core::Geometry::out_size(70000, 3, 2, 1, 0, 1);  // (70000 − 1)·2 + 2 + 1 + 1
  EXPECT_EQ(g.h_out, 140002);
  EXPECT_EQ(core::src_elements(g), int64_t{70000} * 70000);
  EXPECT_EQ(core::dst_elements(g), int64_t{140002} * 140002 * 3);
  EXPECT_GT(core::src_elements(g), k2_31);
  EXPECT_EQ(core::wei_elements(g), 27);
  core::Problem p;
  p.g = g;
  EXPECT_TRUE(core::validate(p).ok()) << core::validate(p).message;
  // Products that overflow int64 are reported, not wrapped.
  g.n = int64_t{1} << 40;
  EXPECT_LT(core::dst_elements(g), 0);
  p.g = g;
  const core::Status s = core::validate(p);
  EXPECT_EQ(s.code, ErrorCode::invalid_argument);
  EXPECT_NE(s.message.find("overflow 64-bit indexing"), std::string::npos) << s.message;
}

TEST(LargeTensors, DenseViewStridesPastTwoToThe31) {
  // A 1×70000×70000×1 image (MPS ImageDescriptor{70000, 70000, 1, 1}) and its batch stride.
  const core::TensorView v = core::dense_nhwc(nullptr, 70000, 70000, 1);
  EXPECT_EQ(v.sn, int64_t{4900000000});
  EXPECT_EQ(v.sh, 70000);
  EXPECT_EQ(v.sw, 1);
  // dense_args: every view of a problem whose images exceed 2^31 elements.
  core::Geometry g;
  g.n = 2;
  g.c_in = 8;
  g.c_out = 16;
  g.h_in = g.w_in = 20000;
  g.h_out = g.w_out = 40000;
  const core::Args a = core::dense_args(g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  EXPECT_EQ(a.src.sn, int64_t{20000} * 20000 * 8);  // 3.2e9
  EXPECT_EQ(a.dst.sn, int64_t{40000} * 40000 * 16);  // 2.56e10
  EXPECT_EQ(a.dst.sh, int64_t{40000} * 16);
  EXPECT_EQ(a.diff_src.sn, a.src.sn);
  EXPECT_EQ(a.diff_dst.sn, a.dst.sn);
}

TEST(LargeTensors, MacsOnLargeShapes) {
  // Stride 1, no padding, full output (in + k − 1): every tap of every source pixel lands inside, so
  // macs = n · (h·kh) · (w·kw) · Ig · c_out exactly.
  core::Problem p;
  core::Geometry& g = p.g;
  g.n = 64;
  g.h_in = g.w_in = 4096;
  g.kh = g.kw = 3;
  g.h_out = g.w_out = 4096 + 2;
  g.pad_h = g.pad_w = 0;
  g.c_in = g.c_out = 512;
  const int64_t want = int64_t{64} * (4096 * 3) * (4096 * 3) * 512 * 512;  // ≈ 2.5e15
  EXPECT_EQ(p.macs(), want);
  EXPECT_DOUBLE_EQ(p.flops(), 2.0 * static_cast<double>(want));
  // Grouped: Ig = 512 / 8.
  g.groups = 8;
  EXPECT_EQ(p.macs(), want / 8);
  // A product past 2^63 saturates instead of wrapping to a negative count.
  g.groups = 1;
  g.n = int64_t{1} << 30;
  EXPECT_EQ(p.macs(), std::numeric_limits<int64_t>::max());
}

TEST(LargeTensors, FunctionalOutputShapeOfLargeImages) {
  ConvTranspose2dOptions o;
  o.stride = {2, 2};
  o.padding = {1, 1};
  o.output_padding = {1, 1};
  const std::vector<int64_t> out = conv_transpose2d_output_shape({1, 1, 70000, 70000}, {1, 2, 3, 3}, o);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[2], 140000);
  EXPECT_EQ(out[3], 140000);
  EXPECT_GT(out[0] * out[1] * out[2] * out[3], k2_31);
}

TEST(LargeTensors, MpsSizingOfLargeImages) {
  // Sizing by a padding policy is affine in the source size; a product that overflowed (or was computed in
  // 32 bits) would break that for sources past 2^31 / stride.
  for (PaddingMethod m : {padding::default_method, padding::size_valid_only, padding::size_full}) {
    for (int64_t s : {1, 2, 4}) {
      const int64_t small = 7, big = int64_t{3} << 31;
      const core::mps::AxisSizing a = core::mps::size_by_padding_policy(small, 3, s, 1, m);
      const core::mps::AxisSizing b = core::mps::size_by_padding_policy(big, 3, s, 1, m);
      EXPECT_EQ(b.out_size - a.out_size, s * (big - small)) << "policy " << m << " stride " << s;
      EXPECT_EQ(b.total_offset, a.total_offset) << "policy " << m << " stride " << s;
    }
  }
  // The same for the convolution being undone (conv-state sizing, a.5.5 B).
  const core::mps::AxisSizing a = core::mps::size_by_conv_state(9, 1, 3, 2, 1);
  const core::mps::AxisSizing b = core::mps::size_by_conv_state(9 + (int64_t{1} << 33), 1, 3, 2, 1);
  EXPECT_EQ(b.out_size - a.out_size, int64_t{1} << 33);
}

// A real run past 2^31 elements through the object API (a 46341×46341 float16 image: 2^31 + 4633 elements,
// 4 GiB, forward of a 1×1 layer on the registry's choice): the kernels' own index arithmetic, not only the
// size functions. The two images take 8 GiB and the CPU algorithms stage float16 through float32 scratch, so
// the peak is about 33 GiB (measured on the 16-core GPU machine: 44 s); it runs only when
// TCONV_LARGE_TESTS=1, not in CI.
TEST(LargeTensors, RealImagePastTwoToThe31Elements) {
  const char* env = std::getenv("TCONV_LARGE_TESTS");
  if (env == nullptr || std::string(env) != "1") GTEST_SKIP() << "set TCONV_LARGE_TESTS=1 to run (needs ~33 GiB of memory)";
  const int64_t side = 46341;
  ASSERT_GT(side * side, k2_31);
  const Device dev = Device::cpu(0);
  ConvolutionDescriptor d(1, 1, 1, 1);
  auto ds = std::make_shared<ArrayDataSource>(d, std::vector<float>{2.0f}, std::vector<float>{0.5f});
  ConvolutionTranspose k(dev, ds);
  Image x(dev, ImageDescriptor{side, side, 1, 1, DataType::float16});
  x.fill(1.5f);
  // Distinct values at elements whose offsets need more than 31 bits, and at the very last one.
  auto* xs = static_cast<uint16_t*>(x.buffer().contents());
  const int64_t marks[] = {k2_31 - 1, k2_31, k2_31 + (side * side - k2_31) / 2, side * side - 1};
  for (int64_t i = 0; i < 4; ++i) xs[marks[i]] = core::f32_to_f16(static_cast<float>(-4 + i));
  Image y(dev, ImageDescriptor{side, side, 1, 1, DataType::float16});
  y.fill(-100.0f);
  CommandBuffer cb(dev);
  k.encode(cb, x, y);
  cb.commit();
  cb.wait_and_check();
  const auto* ys = static_cast<const uint16_t*>(y.buffer().contents());
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(core::f16_to_f32(ys[marks[i]]), 2.0f * static_cast<float>(-4 + i) + 0.5f) << "element " << marks[i];
  // Every other element: 2·1.5 + 0.5, checked on a stride that visits every row and both ends of each.
  for (int64_t i = 0; i < side * side; i += side - 1) {
    bool marked = false;
    for (int64_t m : marks) marked |= m == i;
    if (!marked) ASSERT_EQ(core::f16_to_f32(ys[i]), 3.5f) << "element " << i;
  }
}

}  // namespace
}  // namespace tconv::reliability
