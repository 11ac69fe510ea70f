// Helpers shared by the training companions' API files (optimizers, neurons, loss): float ranges of buffers
// resolved and checked at encode time, and host access to them at run time.
//
// Buffers on the CPU are host memory and are used in place. When every operand of a command lives in the
// memory of the command buffer's CUDA device, the command runs the CUDA kernels of cuda/training_backend.hpp
// on the queue's stream instead (on_cuda_device below): nothing goes through the host. Other device-only
// memory (contents() == nullptr: another GPU than the queue's, mixed placements) is staged through a host
// copy that is written back when the command finishes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "tconv/buffer.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/error.hpp"
#include "tconv/image.hpp"

namespace tconv::train {

template <class... T>
std::string message(const T&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
template <class... T>
[[noreturn]] void invalid(const T&... parts) {
  throw Error(ErrorCode::invalid_argument, message(parts...));
}

// `count` float32 values of `buffer` from byte `offset`.
struct FloatRange {
  Buffer buffer;
  std::size_t offset = 0;
  int64_t count = 0;
};

// Checks that [offset, offset + 4·count) lies in the buffer and offset is a multiple of 4; `role` names the
// argument in the message. count = -1: up to the end of the buffer.
FloatRange float_range(const Buffer& buffer, std::size_t offset, int64_t count, const std::string& role);
// The same, requiring exactly `expected` values.
FloatRange float_range_of(const Buffer& buffer, std::size_t offset, int64_t expected, const std::string& role);

// Whether a command of `cb` runs on the GPU: the queue is a CUDA device and every buffer given (null ones
// are skipped) is device memory of that same device.
bool on_cuda_device(const CommandBuffer& cb, std::initializer_list<const Buffer*> buffers);

// Device-memory ranges staged through the host by HostFloats/HostImage since the process started: lets tests
// check that training commands on a CUDA device stay on the device.
uint64_t host_stagings() noexcept;

// Host view of a range while a command runs.
class HostFloats {
 public:
  HostFloats(const FloatRange& range, bool write_back);
  HostFloats(const HostFloats&) = delete;
  HostFloats& operator=(const HostFloats&) = delete;
  float* data() noexcept { return data_; }
  // Writes a staged copy back (no-op for host memory or read-only use). Call once the values are final.
  void finish();

 private:
  FloatRange range_;
  bool write_back_ = false;
  std::vector<float> staged_;
  float* data_ = nullptr;
};

// Host view of a whole image's elements (any data type), staged like HostFloats for device-only memory.
class HostImage {
 public:
  HostImage(const Image& image, bool write_back);
  HostImage(const HostImage&) = delete;
  HostImage& operator=(const HostImage&) = delete;
  void* data() noexcept { return data_; }
  void finish();

 private:
  Buffer buffer_;
  std::size_t bytes_ = 0;
  bool write_back_ = false;
  std::vector<unsigned char> staged_;
  void* data_ = nullptr;
};

// Image checks shared by the neuron and loss kernels; messages name the role and the values.
void require_image(const Image& image, const char* kernel, const char* role);
void require_same_shape(const Image& a, const char* a_role, const Image& b, const char* b_role, const char* kernel);
// Two images that share memory are only allowed when they are the same elements of the same type.
void require_alias_ok(const Image& a, const char* a_role, const Image& b, const char* b_role, const char* kernel);

}  // namespace tconv::train
