// tconv — Device: where kernels run and memory lives (MTLDevice, translated; spec e2).
// A Device is a cheap handle to a shared context that owns the per-device state (thread count, caches, and
// later CUDA handles). Nothing in tconv is global: two Device handles for the CPU share one context only
// when they are copies of each other.
#pragma once

#include <memory>
#include <string>

namespace tconv {

enum class DeviceKind : uint8_t { cpu = 0, cuda = 1 };

class Device {
 public:
  // A CPU device with its own context. threads = 0: use the OpenMP/hardware default (or TCONV_NUM_THREADS).
  static Device cpu(int threads = 0);
  // CUDA device `ordinal`. Throws Error(device_unavailable) in a build without CUDA or when absent.
  static Device cuda(int ordinal = 0);
  // Number of usable CUDA devices (0 in a CPU-only build).
  static int cuda_device_count() noexcept;
  // The GPU when there is one (honours TCONV_DEVICE=cpu|cuda), else the CPU.
  static Device default_device();

  DeviceKind kind() const noexcept;
  int ordinal() const noexcept;     // 0 for the CPU
  std::string name() const;         // e.g. "cpu (2 threads)" or "cuda:0 (NVIDIA H100)"
  int num_threads() const noexcept; // CPU worker threads used by kernels on this device
  void set_num_threads(int threads);

  // Same physical device (kind and ordinal); contexts may differ.
  friend bool operator==(const Device& a, const Device& b) noexcept {
    return a.kind() == b.kind() && a.ordinal() == b.ordinal();
  }

  struct Context;  // defined in src/api; opaque here
  Context& context() const noexcept { return *ctx_; }

  Device();  // == Device::cpu()

 private:
  explicit Device(std::shared_ptr<Context> ctx) : ctx_(std::move(ctx)) {}
  std::shared_ptr<Context> ctx_;
};

}  // namespace tconv
