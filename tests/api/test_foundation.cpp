// Device, Buffer, CommandBuffer and Image: ordering, errors, completion handlers, host transfers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "tconv/tconv.hpp"

using namespace tconv;

namespace {
template <class F>
void expect_error(F f, ErrorCode code, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected " << to_string(code);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Device, CpuThreadsAndName) {
  Device d = Device::cpu(3);
  EXPECT_EQ(d.kind(), DeviceKind::cpu);
  EXPECT_EQ(d.num_threads(), 3);
  EXPECT_NE(d.name().find("3 threads"), std::string::npos);
  d.set_num_threads(2);
  EXPECT_EQ(d.num_threads(), 2);
  expect_error([&] { d.set_num_threads(0); }, ErrorCode::invalid_argument, "positive");
  expect_error([] { Device::cpu(-1); }, ErrorCode::invalid_argument, "-1");
}

TEST(Device, CudaUnavailableInCpuBuild) {
  if (Device::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  expect_error([] { Device::cuda(0); }, ErrorCode::device_unavailable, "CUDA");
  ::setenv("TCONV_DEVICE", "cpu", 1);
  EXPECT_EQ(Device::default_device().kind(), DeviceKind::cpu);
  ::setenv("TCONV_DEVICE", "cuda", 1);
  expect_error([] { Device::default_device(); }, ErrorCode::device_unavailable, "CUDA");
  ::setenv("TCONV_DEVICE", "tpu", 1);
  expect_error([] { Device::default_device(); }, ErrorCode::invalid_argument, "tpu");
  ::unsetenv("TCONV_DEVICE");
  EXPECT_EQ(Device::default_device().kind(), DeviceKind::cpu);
}

TEST(Buffer, AllocateCopyBounds) {
  Device d = Device::cpu(1);
  Buffer b = Buffer::allocate(d, 16);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.length(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(static_cast<const uint8_t*>(b.contents())[i], 0);
  const float v[2] = {1.5f, -2.0f};
  b.copy_from_host(v, 8, 8);
  float back[2];
  b.copy_to_host(back, 8, 8);
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[1], -2.0f);
  EXPECT_EQ(b.device_pointer(), b.contents());
  expect_error([&] { b.copy_from_host(v, 8, 12); }, ErrorCode::invalid_argument, "outside the buffer of 16 bytes");
  Buffer c = b.copy_to(d);
  EXPECT_FALSE(c.same_memory(b));
  float cc[2];
  c.copy_to_host(cc, 8, 8);
  EXPECT_EQ(cc[1], -2.0f);
  Buffer shared = b;
  EXPECT_TRUE(shared.same_memory(b));
}

TEST(CommandBuffer, RunsInOrderAndCallsHandlers) {
  Device d = Device::cpu(1);
  std::vector<int> order;
  CommandBuffer cb(d);
  cb.label = "first";
  for (int i = 0; i < 5; ++i) cb.encode("push", [&order, i] { order.push_back(i); });
  std::atomic<int> handled{0};
  cb.add_completed_handler([&](const CommandBuffer& c) {
    EXPECT_EQ(c.status(), CommandBufferStatus::completed);
    handled++;
  });
  EXPECT_EQ(cb.status(), CommandBufferStatus::not_enqueued);
  cb.commit();
  CommandBuffer cb2(d);
  cb2.encode("after", [&order] { order.push_back(99); });
  cb2.commit();
  cb2.wait_until_completed();
  cb.wait_until_completed();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 99}));
  EXPECT_EQ(handled.load(), 1);
  EXPECT_EQ(cb.status(), CommandBufferStatus::completed);
  EXPECT_FALSE(cb.error().has_value());
  expect_error([&] { cb.encode("late", [] {}); }, ErrorCode::invalid_argument, "already committed");
  expect_error([&] { cb.commit(); }, ErrorCode::invalid_argument, "already committed");
}

TEST(CommandBuffer, FirstErrorStopsTheRest) {
  Device d = Device::cpu(1);
  CommandBuffer cb(d);
  bool ran_after = false;
  cb.encode("ok", [] {});
  cb.encode("bad", [] { throw Error(ErrorCode::invalid_argument, "value 7 is wrong"); });
  cb.encode("skipped", [&] { ran_after = true; });
  bool handler_saw_error = false;
  cb.add_completed_handler([&](const CommandBuffer& c) { handler_saw_error = c.status() == CommandBufferStatus::error; });
  cb.commit();
  cb.wait_until_completed();
  EXPECT_EQ(cb.status(), CommandBufferStatus::error);
  ASSERT_TRUE(cb.error().has_value());
  EXPECT_EQ(cb.error()->code(), ErrorCode::invalid_argument);
  EXPECT_NE(std::string(cb.error()->what()).find("bad"), std::string::npos);
  EXPECT_NE(std::string(cb.error()->what()).find("value 7"), std::string::npos);
  EXPECT_FALSE(ran_after);
  EXPECT_TRUE(handler_saw_error);
  expect_error([&] { cb.wait_and_check(); }, ErrorCode::invalid_argument, "value 7");
}

TEST(Image, ReadWriteLayoutsAndChannelRanges) {
  Device d = Device::cpu(1);
  Image img(d, ImageDescriptor{3, 2, 5, 2, DataType::float32});  // W=3 H=2 C=5 N=2
  std::vector<float> hwc(3 * 2 * 5);
  for (size_t i = 0; i < hwc.size(); ++i) hwc[i] = static_cast<float>(i);
  img.write_floats(hwc.data(), ImageLayout::hwc, 1);
  EXPECT_EQ(img.read_floats(ImageLayout::hwc, 1), hwc);
  EXPECT_EQ(img.read_floats(ImageLayout::hwc, 0), std::vector<float>(30, 0.0f));
  // CHW of channels 1..2: [c][h][w].
  std::vector<float> chw = img.read_floats(ImageLayout::chw, 1, ImageChannelRange{1, 2});
  ASSERT_EQ(chw.size(), 12u);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) EXPECT_EQ(chw[(c * 2 + y) * 3 + x], hwc[(y * 3 + x) * 5 + 1 + c]);
  // Writing a channel slice leaves the others alone.
  std::vector<float> ones(6, 100.0f);
  img.write_floats(ones.data(), ImageLayout::chw, 1, ImageChannelRange{4, 1});
  std::vector<float> after = img.read_floats(ImageLayout::hwc, 1);
  for (int p = 0; p < 6; ++p) {
    EXPECT_EQ(after[p * 5 + 4], 100.0f);
    EXPECT_EQ(after[p * 5 + 3], hwc[p * 5 + 3]);
  }
  expect_error([&] { img.read_floats(ImageLayout::hwc, 2); }, ErrorCode::invalid_argument, "image index 2");
  expect_error([&] { img.read_floats(ImageLayout::hwc, 0, ImageChannelRange{3, 3}); }, ErrorCode::invalid_argument,
               "channel count 3");
  expect_error([&] { Image(d, ImageDescriptor{0, 1, 1, 1}); }, ErrorCode::invalid_argument, "width 0");
  expect_error([&] { Image(d, ImageDescriptor{1, 1, 1, 1, DataType::uint8}); }, ErrorCode::unsupported, "uint8");
}

TEST(Image, HalfAndBfloatConvertOnTransfer) {
  Device d = Device::cpu(1);
  Image h(d, ImageDescriptor{1, 1, 2, 1, DataType::float16});
  const float v[2] = {1.0f + 1.0f / 4096.0f, 65504.0f};  // the first rounds to 1.0 in fp16 (RNE)
  h.write_floats(v);
  auto r = h.read_floats();
  EXPECT_EQ(r[0], 1.0f);
  EXPECT_EQ(r[1], 65504.0f);
  uint16_t raw[2];
  h.read_bytes(raw, ImageLayout::hwc);
  EXPECT_EQ(raw[0], 0x3c00);
  Image b(d, ImageDescriptor{1, 1, 1, 1, DataType::bfloat16});
  b.fill(3.0f);
  EXPECT_EQ(b.read_floats()[0], 3.0f);
}
