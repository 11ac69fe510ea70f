// tconv — Image: a batch of feature maps (MPSImage, translated; spec a.1, e2).
// Storage is dense NHWC: [number_of_images][height][width][feature_channels], in data_type(). MPS packs
// channels four to a texture slice; tconv stores them densely, so any channel offset is allowed (e12).
// Copies of an Image share its memory (MPSImage is a reference type).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tconv/buffer.hpp"
#include "tconv/types.hpp"

namespace tconv {

struct ImageDescriptor {
  int64_t width = 0;
  int64_t height = 0;
  int64_t feature_channels = 0;
  int64_t number_of_images = 1;
  DataType data_type = DataType::float32;  // float32, float16 or bfloat16
  friend bool operator==(const ImageDescriptor&, const ImageDescriptor&) = default;
};

// MPSImageReadWriteParams: which channels a host read/write touches. count = all_channels: the rest.
struct ImageChannelRange {
  int64_t offset = 0;
  uint64_t count = all_channels;
};

class Image {
 public:
  Image() = default;  // empty image (what the weights-only gradient encode returns, e5)
  // Zero-filled image. Throws Error(invalid_argument) for non-positive sizes or an unsupported type.
  Image(const Device& device, const ImageDescriptor& descriptor);

  bool empty() const noexcept { return !buffer_; }
  const ImageDescriptor& descriptor() const noexcept { return desc_; }
  int64_t width() const noexcept { return desc_.width; }
  int64_t height() const noexcept { return desc_.height; }
  int64_t feature_channels() const noexcept { return desc_.feature_channels; }
  int64_t number_of_images() const noexcept { return desc_.number_of_images; }
  DataType data_type() const noexcept { return desc_.data_type; }
  const Device& device() const { return buffer_.device(); }
  const Buffer& buffer() const noexcept { return buffer_; }
  Buffer& buffer() noexcept { return buffer_; }
  // Element counts: one image, and all of them.
  int64_t elements_per_image() const noexcept { return desc_.width * desc_.height * desc_.feature_channels; }
  int64_t element_count() const noexcept { return elements_per_image() * desc_.number_of_images; }

  // Host transfers of one image, elements in data_type() (MPSImage readBytes/writeBytes).
  // hwc: [h][w][count]; chw: [count][h][w]. Throws Error(invalid_argument) on a bad image index or range.
  void read_bytes(void* dst, ImageLayout layout, int64_t image_index = 0, ImageChannelRange channels = {}) const;
  void write_bytes(const void* src, ImageLayout layout, int64_t image_index = 0, ImageChannelRange channels = {});
  // The same with float32 on the host, converting to and from data_type() (round to nearest even).
  std::vector<float> read_floats(ImageLayout layout = ImageLayout::hwc, int64_t image_index = 0,
                                 ImageChannelRange channels = {}) const;
  void write_floats(const float* src, ImageLayout layout = ImageLayout::hwc, int64_t image_index = 0,
                    ImageChannelRange channels = {});
  // Fills every element of every image with the value (converted to data_type()).
  void fill(float value);

  std::string label;

 private:
  ImageDescriptor desc_{};
  Buffer buffer_;
};

// MPSImageBatch: a list of images, usually one image each.
using ImageBatch = std::vector<Image>;

}  // namespace tconv
