// tconv — Buffer: a reference-counted block of device memory (MTLBuffer, translated; spec e2).
// Copies of a Buffer share the same memory. On the CPU, contents() is the memory itself; for device-only
// memory contents() is null and data moves with copy_from_host / copy_to_host.
#pragma once

#include <cstddef>
#include <memory>

#include "tconv/device.hpp"

namespace tconv {

class Buffer {
 public:
  Buffer() = default;  // null buffer
  // Allocates `bytes` zero-filled bytes on `device`. Throws Error(out_of_memory) when that fails.
  static Buffer allocate(const Device& device, std::size_t bytes);
  // A buffer holding a copy of `bytes` bytes at `data`.
  static Buffer from_host(const Device& device, const void* data, std::size_t bytes);

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  std::size_t length() const noexcept;
  const Device& device() const;
  void* contents() noexcept;              // host-visible pointer, or nullptr for device-only memory
  const void* contents() const noexcept;
  void* device_pointer() const noexcept;  // pointer kernels use on this buffer's device

  // Bounds-checked host transfers (throw Error(invalid_argument) on a range outside the buffer).
  void copy_from_host(const void* src, std::size_t bytes, std::size_t offset = 0);
  void copy_to_host(void* dst, std::size_t bytes, std::size_t offset = 0) const;
  // A new buffer on `device` with the same bytes (deep copy).
  Buffer copy_to(const Device& device) const;

  bool same_memory(const Buffer& other) const noexcept { return impl_ == other.impl_; }

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tconv
