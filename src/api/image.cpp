// Image (MPSImage translated, spec a.1, e2, e12): dense NHWC storage in float32, float16 or bfloat16, with
// MPS's readBytes/writeBytes host transfers (HWC or CHW, one image, a channel range). MPS restricts the
// channel range to multiples of 4 because of its texture packing; tconv stores channels densely and
// accepts any range inside the image (e12).
#include <cstring>
#include <vector>

#include "api/internal.hpp"
#include "core/dtype.hpp"

namespace tconv {

namespace {

struct Range {
  int64_t offset, count;
};

Range resolve(const ImageDescriptor& d, int64_t image_index, ImageChannelRange ch, const char* what) {
  if (image_index < 0 || image_index >= d.number_of_images)
    api::throw_invalid(what, ": image index ", image_index, " is outside [0, ", d.number_of_images, ")");
  if (ch.offset < 0 || ch.offset >= d.feature_channels)
    api::throw_invalid(what, ": channel offset ", ch.offset, " is outside [0, ", d.feature_channels, ")");
  const int64_t left = d.feature_channels - ch.offset;
  if (ch.count == all_channels) return {ch.offset, left};
  if (ch.count == 0 || ch.count > static_cast<uint64_t>(left))
    api::throw_invalid(what, ": channel count ", ch.count, " from offset ", ch.offset, " does not fit the image's ",
                       d.feature_channels, " channels");
  return {ch.offset, static_cast<int64_t>(ch.count)};
}

// Host pointer to the whole image storage; device-only memory is staged through `staging`.
uint8_t* host_bytes(const Buffer& b, std::vector<uint8_t>& staging) {
  if (const void* p = b.contents()) return static_cast<uint8_t*>(const_cast<void*>(p));
  staging.resize(b.length());
  b.copy_to_host(staging.data(), staging.size());
  return staging.data();
}

}  // namespace

Image::Image(const Device& device, const ImageDescriptor& d) : desc_(d) {
  if (d.width <= 0 || d.height <= 0 || d.feature_channels <= 0 || d.number_of_images <= 0)
    api::throw_invalid("image sizes must be positive: width ", d.width, ", height ", d.height, ", feature channels ",
                       d.feature_channels, ", images ", d.number_of_images);
  if (d.data_type != DataType::float32 && d.data_type != DataType::float16 && d.data_type != DataType::bfloat16)
    api::throw_unsupported("image data type ", to_string(d.data_type), " (images are float32, float16 or bfloat16)");
  const int64_t limit = int64_t{1} << 50;
  if (d.width > limit / d.height || d.width * d.height > limit / d.feature_channels ||
      d.width * d.height * d.feature_channels > limit / d.number_of_images)
    api::throw_invalid("image of ", d.number_of_images, "x", d.height, "x", d.width, "x", d.feature_channels,
                       " elements is too large");
  buffer_ = Buffer::allocate(device, static_cast<std::size_t>(element_count()) * size_of(d.data_type));
}

void Image::read_bytes(void* dst, ImageLayout layout, int64_t image_index, ImageChannelRange channels) const {
  if (empty()) api::throw_invalid("read_bytes on an empty image");
  const Range r = resolve(desc_, image_index, channels, "read_bytes");
  const std::size_t es = size_of(desc_.data_type);
  std::vector<uint8_t> staging;
  const uint8_t* base = host_bytes(buffer_, staging) + static_cast<std::size_t>(image_index * elements_per_image()) * es;
  uint8_t* out = static_cast<uint8_t*>(dst);
  const int64_t H = desc_.height, W = desc_.width, C = desc_.feature_channels;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      const uint8_t* px = base + static_cast<std::size_t>((y * W + x) * C + r.offset) * es;
      if (layout == ImageLayout::hwc) {
        std::memcpy(out + static_cast<std::size_t>((y * W + x) * r.count) * es, px, static_cast<std::size_t>(r.count) * es);
      } else {
        for (int64_t c = 0; c < r.count; ++c)
          std::memcpy(out + static_cast<std::size_t>((c * H + y) * W + x) * es, px + c * es, es);
      }
    }
}

void Image::write_bytes(const void* src, ImageLayout layout, int64_t image_index, ImageChannelRange channels) {
  if (empty()) api::throw_invalid("write_bytes on an empty image");
  const Range r = resolve(desc_, image_index, channels, "write_bytes");
  const std::size_t es = size_of(desc_.data_type);
  std::vector<uint8_t> staging;
  uint8_t* all = host_bytes(buffer_, staging);
  uint8_t* base = all + static_cast<std::size_t>(image_index * elements_per_image()) * es;
  const uint8_t* in = static_cast<const uint8_t*>(src);
  const int64_t H = desc_.height, W = desc_.width, C = desc_.feature_channels;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) {
      uint8_t* px = base + static_cast<std::size_t>((y * W + x) * C + r.offset) * es;
      if (layout == ImageLayout::hwc) {
        std::memcpy(px, in + static_cast<std::size_t>((y * W + x) * r.count) * es, static_cast<std::size_t>(r.count) * es);
      } else {
        for (int64_t c = 0; c < r.count; ++c)
          std::memcpy(px + c * es, in + static_cast<std::size_t>((c * H + y) * W + x) * es, es);
      }
    }
  if (!staging.empty()) buffer_.copy_from_host(staging.data(), staging.size());
}

std::vector<float> Image::read_floats(ImageLayout layout, int64_t image_index, ImageChannelRange channels) const {
  if (empty()) api::throw_invalid("read_floats on an empty image");
  const Range r = resolve(desc_, image_index, channels, "read_floats");
  const std::size_t n = static_cast<std::size_t>(desc_.height * desc_.width * r.count);
  std::vector<uint8_t> raw(n * size_of(desc_.data_type));
  read_bytes(raw.data(), layout, image_index, channels);
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = core::load_as_f32(raw.data(), static_cast<int64_t>(i), desc_.data_type);
  return out;
}

void Image::write_floats(const float* src, ImageLayout layout, int64_t image_index, ImageChannelRange channels) {
  if (empty()) api::throw_invalid("write_floats on an empty image");
  const Range r = resolve(desc_, image_index, channels, "write_floats");
  const std::size_t n = static_cast<std::size_t>(desc_.height * desc_.width * r.count);
  std::vector<uint8_t> raw(n * size_of(desc_.data_type));
  for (std::size_t i = 0; i < n; ++i) core::store_from_f32(raw.data(), static_cast<int64_t>(i), desc_.data_type, src[i]);
  write_bytes(raw.data(), layout, image_index, channels);
}

void Image::fill(float value) {
  if (empty()) api::throw_invalid("fill on an empty image");
  const int64_t n = element_count();
  std::vector<uint8_t> staging;
  uint8_t* all = host_bytes(buffer_, staging);
  for (int64_t i = 0; i < n; ++i) core::store_from_f32(all, i, desc_.data_type, value);
  if (!staging.empty()) buffer_.copy_from_host(staging.data(), staging.size());
}

}  // namespace tconv
