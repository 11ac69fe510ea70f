// The communicator's backend interface (internal to src/dist). communicator.cpp checks every argument and
// keeps the parts common to all builds; the backend — nccl_communicator.cpp, or stub.cpp in a build
// without NCCL — only moves the bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tconv/buffer.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/communicator.hpp"
#include "tconv/device.hpp"

namespace tconv {

namespace dist {
// A span resolved at encode time: the device address of its first value and its length. `owner` keeps the
// memory alive until the command that uses it has run.
struct ResolvedSpan {
  Buffer owner;
  float* data = nullptr;
  std::size_t count = 0;
};
}  // namespace dist

struct Communicator::Impl {
  Device device;
  int rank = 0;
  int size = 1;
  virtual ~Impl() = default;
  // Arguments are already checked (same device, ranges inside their buffers, scale 1 for mean).
  virtual void encode_all_reduce(CommandBuffer& cb, std::vector<dist::ResolvedSpan> spans, ReduceOp op,
                                 float scale) = 0;
  // Caller-owned memory on the caller's stream (Communicator::enqueue_all_reduce): runs the group now, on
  // `stream`; the spans have no owner. The backend checks what needs the device: that every address is
  // device memory of this GPU and the stream belongs to it.
  virtual void enqueue_all_reduce(void* stream, std::vector<dist::ResolvedSpan> spans, ReduceOp op,
                                  float scale) = 0;
  virtual void encode_join(CommandBuffer& cb) = 0;
  virtual void abort() noexcept = 0;
  virtual bool aborted() const noexcept = 0;
};

namespace dist {
bool backend_available() noexcept;
int backend_version() noexcept;
CommunicatorId backend_generate_id();
// rank ∈ [0, ranks) and a CUDA device are checked by the caller.
std::shared_ptr<Communicator::Impl> backend_create(const Device& device, const CommunicatorId& id, int rank,
                                                   int ranks);
}  // namespace dist

}  // namespace tconv
