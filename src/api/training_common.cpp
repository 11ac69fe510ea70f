// Float ranges, host staging and image checks for the training companions (see training_common.hpp).
#include "api/training_common.hpp"

#include <atomic>
#include <cstring>

namespace tconv::train {

namespace {
std::atomic<uint64_t> g_stagings{0};
}  // namespace

bool on_cuda_device(const CommandBuffer& cb, std::initializer_list<const Buffer*> buffers) {
  const Device& queue = cb.device();
  if (queue.kind() != DeviceKind::cuda) return false;
  for (const Buffer* b : buffers) {
    if (b == nullptr || !*b) continue;
    if (b->contents() != nullptr || !(b->device() == queue)) return false;
  }
  return true;
}

uint64_t host_stagings() noexcept { return g_stagings.load(std::memory_order_relaxed); }

FloatRange float_range(const Buffer& buffer, std::size_t offset, int64_t count, const std::string& role) {
  if (!buffer) invalid(role, " is a null buffer");
  if (offset % 4 != 0) invalid(role, ": byte offset ", offset, " is not a multiple of 4");
  const std::size_t length = buffer.length();
  if (offset > length) invalid(role, ": byte offset ", offset, " is past the buffer's end (", length, " bytes)");
  if (count < 0) {
    if (count != -1) invalid(role, ": length ", count, " is negative");
    count = static_cast<int64_t>((length - offset) / 4);
  }
  if (offset + static_cast<std::size_t>(count) * 4 > length)
    invalid(role, ": ", count, " float32 values from byte offset ", offset, " need ",
            offset + static_cast<std::size_t>(count) * 4, " bytes, the buffer has ", length);
  return {buffer, offset, count};
}

FloatRange float_range_of(const Buffer& buffer, std::size_t offset, int64_t expected, const std::string& role) {
  if (!buffer) invalid(role, " is a null buffer");
  const std::size_t length = buffer.length();
  if (offset % 4 != 0) invalid(role, ": byte offset ", offset, " is not a multiple of 4");
  if (offset + static_cast<std::size_t>(expected) * 4 > length)
    invalid(role, " holds ", (length > offset ? (length - offset) / 4 : 0), " float32 values from byte offset ",
            offset, ", ", expected, " are needed");
  return {buffer, offset, expected};
}

HostFloats::HostFloats(const FloatRange& range, bool write_back) : range_(range), write_back_(write_back) {
  void* host = range_.buffer.contents();
  if (host != nullptr) {
    data_ = reinterpret_cast<float*>(static_cast<unsigned char*>(host) + range_.offset);
    write_back_ = false;
  } else {
    g_stagings.fetch_add(1, std::memory_order_relaxed);
    staged_.resize(static_cast<std::size_t>(range_.count));
    range_.buffer.copy_to_host(staged_.data(), staged_.size() * 4, range_.offset);
    data_ = staged_.data();
  }
}

void HostFloats::finish() {
  if (write_back_) range_.buffer.copy_from_host(staged_.data(), staged_.size() * 4, range_.offset);
  write_back_ = false;
}

HostImage::HostImage(const Image& image, bool write_back)
    : buffer_(image.buffer()),
      bytes_(static_cast<std::size_t>(image.element_count()) * size_of(image.data_type())),
      write_back_(write_back) {
  void* host = buffer_.contents();
  if (host != nullptr) {
    data_ = host;
    write_back_ = false;
  } else {
    g_stagings.fetch_add(1, std::memory_order_relaxed);
    staged_.resize(bytes_);
    buffer_.copy_to_host(staged_.data(), bytes_, 0);
    data_ = staged_.data();
  }
}

void HostImage::finish() {
  if (write_back_) buffer_.copy_from_host(staged_.data(), bytes_, 0);
  write_back_ = false;
}

void require_image(const Image& image, const char* kernel, const char* role) {
  if (image.empty()) invalid(kernel, ": the ", role, " image is empty");
  const DataType t = image.data_type();
  if (t != DataType::float32 && t != DataType::float16 && t != DataType::bfloat16)
    invalid(kernel, ": the ", role, " image has data type ", to_string(t),
            "; float32, float16 or bfloat16 are supported");
  const std::size_t bytes = static_cast<std::size_t>(image.element_count()) * size_of(t);
  if (image.buffer().length() < bytes)
    invalid(kernel, ": the ", role, " image's buffer holds ", image.buffer().length(), " bytes, ", bytes,
            " are needed");
}

namespace {
std::string shape(const Image& i) {
  return message(i.number_of_images(), "x", i.height(), "x", i.width(), "x", i.feature_channels());
}
}  // namespace

void require_same_shape(const Image& a, const char* a_role, const Image& b, const char* b_role, const char* kernel) {
  if (a.width() != b.width() || a.height() != b.height() || a.feature_channels() != b.feature_channels() ||
      a.number_of_images() != b.number_of_images())
    invalid(kernel, ": the ", a_role, " image is ", shape(a), " (images x height x width x channels) but the ",
            b_role, " image is ", shape(b));
}

void require_alias_ok(const Image& a, const char* a_role, const Image& b, const char* b_role, const char* kernel) {
  if (a.buffer().same_memory(b.buffer()) && a.data_type() != b.data_type())
    invalid(kernel, ": the ", a_role, " image (", to_string(a.data_type()), ") and the ", b_role, " image (",
            to_string(b.data_type()), ") share memory; in-place use needs the same data type");
}

}  // namespace tconv::train
