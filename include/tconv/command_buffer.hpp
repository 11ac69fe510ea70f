// tconv — CommandBuffer: an ordered, asynchronous queue of work (MTLCommandBuffer, translated; spec e2).
// Kernels encode work into it; nothing runs until commit(). Committed work runs in encode order on the
// device's queue (a worker thread on the CPU, a stream on CUDA). The first failing command sets status()
// to error and error() to what it threw; the commands after it are skipped. Completion handlers run once,
// after the last command, whatever the outcome.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tconv/device.hpp"
#include "tconv/error.hpp"

namespace tconv {

enum class CommandBufferStatus : uint8_t {
  not_enqueued = 0,  // still accepting encodes
  committed = 1,     // handed to the queue, running or waiting to run
  completed = 2,     // every command ran without error
  error = 3,         // a command failed; see error()
};

class CommandBuffer {
 public:
  explicit CommandBuffer(const Device& device);

  const Device& device() const;
  CommandBufferStatus status() const;
  // The failure, once status() == error. Its code and message are those of the command that failed.
  std::optional<Error> error() const;

  // Appends a command. `work` runs on the queue after commit(); it reports failure by throwing.
  // Throws Error(invalid_argument) once the buffer is committed.
  void encode(std::string label, std::function<void()> work);
  // Registers `handler` to run once, on the queue, after the last command (whatever the outcome).
  // Contract: a handler is either accepted and then certainly runs, or refused. Once the buffer has
  // finished (status() completed or error) this throws Error(invalid_argument) and the handler is not
  // kept; finishing (setting the final status and taking the handlers) is atomic with respect to this
  // call, so a handler added concurrently with the end of the buffer is never accepted and then lost.
  // Accepted while not_enqueued or committed (the common case: add before commit()).
  void add_completed_handler(std::function<void(const CommandBuffer&)> handler);

  void commit();
  // CUDA interop: the stream (a cudaStream_t) this buffer's commands issue their GPU work to, in encode
  // order; null on a CPU device. Record events on it or launch your own kernels on it from inside a command
  // (encode()) to order them with tconv's work. The weight gradient of a gradient encode runs on a second
  // stream that is joined back into this one before the next command, so work issued here after a command
  // sees all of that command's results. Buffers of one queue (Device context) share the stream.
  void* cuda_stream() const;
  // Blocks until the buffer is completed or failed and its completion handlers ran. Does not throw; inspect
  // status()/error(). Returns at once for a buffer never committed, or when called from its own handler.
  void wait_until_completed() const;
  // Convenience: wait, then throw the error if there was one.
  void wait_and_check() const;

  std::string label;

  struct Impl;
  Impl& impl() const noexcept { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tconv
