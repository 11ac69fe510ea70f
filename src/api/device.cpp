// Device, Buffer and CommandBuffer (MTLDevice, MTLBuffer, MTLCommandBuffer translated; spec e2).
//
// Each Device context owns one work queue served by one worker thread, started on the first commit:
// committed command buffers run there one after another, their commands in encode order, so work encoded
// into earlier buffers is finished before later buffers start (the ordering Metal gives one queue).
// Kernels inside a command use the device's OpenMP thread budget. On CUDA the commands issue their kernels
// to the context's streams (api::CudaStreams) without waiting for them; a command buffer synchronises those
// streams once, after its last command, before it reports completion.
//
// Environment: TCONV_NUM_THREADS (CPU threads when Device::cpu(0) is asked for), TCONV_DEVICE (cpu|cuda:
// what default_device() picks).
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "api/internal.hpp"
#include "cuda/backend.hpp"

namespace tconv {

// ---------------------------------------------------------------- Device

Device::Context::~Context() {
  {
    std::lock_guard<std::mutex> lock(queue->mu);
    queue->stop = true;
  }
  queue->cv.notify_all();
  if (worker.joinable()) {
    // The last reference can be dropped by a job running on the worker itself: it cannot join itself,
    // so it detaches; the worker leaves its loop on the queue it co-owns.
    if (worker.get_id() == std::this_thread::get_id()) worker.detach();
    else worker.join();
  }
  if (cuda.main != nullptr) {
    // Work still queued on the streams completes first (cudaStreamDestroy does not cancel it).
    cuda_backend::event_destroy(ordinal, cuda.join);
    cuda_backend::event_destroy(ordinal, cuda.fork);
    cuda_backend::stream_destroy(ordinal, cuda.side);
    cuda_backend::stream_destroy(ordinal, cuda.main);
  }
}

void Device::Context::submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!worker.joinable()) {
      std::shared_ptr<WorkQueue> q = queue;
      worker = std::thread([q] {
        for (;;) {
          std::function<void()> next;
          {
            std::unique_lock<std::mutex> lock(q->mu);
            q->cv.wait(lock, [&] { return q->stop || !q->jobs.empty(); });
            if (q->jobs.empty()) return;  // stop requested and nothing left
            next = std::move(q->jobs.front());
            q->jobs.pop_front();
          }
          next();
        }
      });
    }
  }
  {
    std::lock_guard<std::mutex> lock(queue->mu);
    queue->jobs.push_back(std::move(job));
  }
  queue->cv.notify_one();
}

namespace {
int default_threads() {
  if (const char* env = std::getenv("TCONV_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const int n = omp_get_max_threads();
  return n > 0 ? n : 1;
}
}  // namespace

Device::Device() : Device(cpu()) {}

Device Device::cpu(int threads) {
  if (threads < 0) throw Error(ErrorCode::invalid_argument, "CPU thread count must be >= 0, got " + std::to_string(threads));
  auto ctx = std::make_shared<Context>();
  ctx->kind = DeviceKind::cpu;
  ctx->ordinal = 0;
  ctx->threads = threads > 0 ? threads : default_threads();
  return Device(std::move(ctx));
}

Device Device::cuda(int ordinal) {
  if (!cuda_backend::compiled_in())
    throw Error(ErrorCode::device_unavailable,
                "CUDA device " + std::to_string(ordinal) + " requested, but this tconv build has no CUDA backend");
  const int count = cuda_backend::device_count();
  if (ordinal < 0 || ordinal >= count)
    throw Error(ErrorCode::device_unavailable, "CUDA device " + std::to_string(ordinal) + " requested, but " +
                                                   std::to_string(count) + " CUDA device(s) are present");
  auto ctx = std::make_shared<Context>();
  ctx->kind = DeviceKind::cuda;
  ctx->ordinal = ordinal;
  ctx->threads = default_threads();  // host threads for host-side helpers
  return Device(std::move(ctx));
}

int Device::cuda_device_count() noexcept { return cuda_backend::compiled_in() ? cuda_backend::device_count() : 0; }

Device Device::default_device() {
  const char* env = std::getenv("TCONV_DEVICE");
  const std::string want = env ? env : "";
  if (want == "cpu") return cpu();
  if (want == "cuda" || want.rfind("cuda:", 0) == 0) {
    const int ordinal = want.size() > 5 ? std::atoi(want.c_str() + 5) : 0;
    return cuda(ordinal);  // asked for explicitly: an absent GPU is an error
  }
  if (!want.empty())
    throw Error(ErrorCode::invalid_argument, "TCONV_DEVICE must be 'cpu', 'cuda' or 'cuda:N', got '" + want + "'");
  return cuda_device_count() > 0 ? cuda(0) : cpu();
}

DeviceKind Device::kind() const noexcept { return ctx_->kind; }
int Device::ordinal() const noexcept { return ctx_->ordinal; }
// Relaxed is enough: the count is a standalone setting; a run that starts while it changes may use
// either value, and nothing else is published through it.
int Device::num_threads() const noexcept { return ctx_->threads.load(std::memory_order_relaxed); }

void Device::set_num_threads(int threads) {
  if (threads <= 0) throw Error(ErrorCode::invalid_argument, "thread count must be positive, got " + std::to_string(threads));
  ctx_->threads.store(threads, std::memory_order_relaxed);
}

std::string Device::name() const {
  if (kind() == DeviceKind::cpu) return "cpu (" + std::to_string(num_threads()) + " threads)";
  return "cuda:" + std::to_string(ordinal()) + " (" + cuda_backend::device_name(ordinal()) + ")";
}

// ---------------------------------------------------------------- Buffer

Buffer::Impl::~Impl() {
  if (device_memory != nullptr) cuda_backend::free_device(device.ordinal(), device_memory);
}

Buffer Buffer::allocate(const Device& device, std::size_t bytes) {
  auto impl = std::make_shared<Impl>();
  impl->device = device;
  impl->length = bytes;
  if (device.kind() == DeviceKind::cpu) {
    impl->host.reset(new (std::nothrow) uint8_t[bytes == 0 ? 1 : bytes]);
    if (!impl->host) throw Error(ErrorCode::out_of_memory, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    std::memset(impl->host.get(), 0, bytes);
  } else {
    core::throw_if_error(cuda_backend::malloc_device(device.ordinal(), bytes == 0 ? 1 : bytes, &impl->device_memory));
    core::throw_if_error(cuda_backend::memset_device(device.ordinal(), impl->device_memory, 0, bytes));
  }
  Buffer b;
  b.impl_ = std::move(impl);
  return b;
}

Buffer Buffer::from_host(const Device& device, const void* data, std::size_t bytes) {
  Buffer b = allocate(device, bytes);
  if (bytes > 0) b.copy_from_host(data, bytes, 0);
  return b;
}

std::size_t Buffer::length() const noexcept { return impl_ ? impl_->length : 0; }

const Device& Buffer::device() const {
  if (!impl_) throw Error(ErrorCode::invalid_argument, "device() of a null buffer");
  return impl_->device;
}

void* Buffer::contents() noexcept { return impl_ ? impl_->host.get() : nullptr; }
const void* Buffer::contents() const noexcept { return impl_ ? impl_->host.get() : nullptr; }
void* Buffer::device_pointer() const noexcept {
  if (!impl_) return nullptr;
  return impl_->device_memory != nullptr ? impl_->device_memory : impl_->host.get();
}

namespace {
void check_range(const char* what, std::size_t length, std::size_t bytes, std::size_t offset) {
  if (offset > length || bytes > length - offset)
    throw Error(ErrorCode::invalid_argument, std::string(what) + ": range [" + std::to_string(offset) + ", " +
                                                 std::to_string(offset) + " + " + std::to_string(bytes) +
                                                 ") is outside the buffer of " + std::to_string(length) + " bytes");
}
}  // namespace

void Buffer::copy_from_host(const void* src, std::size_t bytes, std::size_t offset) {
  if (!impl_) throw Error(ErrorCode::invalid_argument, "copy_from_host on a null buffer");
  check_range("copy_from_host", impl_->length, bytes, offset);
  if (bytes == 0) return;
  if (impl_->host) std::memcpy(impl_->host.get() + offset, src, bytes);
  else core::throw_if_error(cuda_backend::copy_h2d(impl_->device.ordinal(),
                                                   static_cast<uint8_t*>(impl_->device_memory) + offset, src, bytes));
}

void Buffer::copy_to_host(void* dst, std::size_t bytes, std::size_t offset) const {
  if (!impl_) throw Error(ErrorCode::invalid_argument, "copy_to_host on a null buffer");
  check_range("copy_to_host", impl_->length, bytes, offset);
  if (bytes == 0) return;
  if (impl_->host) std::memcpy(dst, impl_->host.get() + offset, bytes);
  else core::throw_if_error(cuda_backend::copy_d2h(impl_->device.ordinal(), dst,
                                                   static_cast<const uint8_t*>(impl_->device_memory) + offset, bytes));
}

Buffer Buffer::copy_to(const Device& device) const {
  if (!impl_) return Buffer();
  if (impl_->host) return from_host(device, impl_->host.get(), impl_->length);
  std::vector<uint8_t> staging(impl_->length);
  copy_to_host(staging.data(), staging.size());
  return from_host(device, staging.data(), staging.size());
}

// ---------------------------------------------------------------- CommandBuffer

CommandBuffer::CommandBuffer(const Device& device) : impl_(std::make_shared<Impl>()) { impl_->device = device; }

const Device& CommandBuffer::device() const { return impl_->device; }

void* CommandBuffer::cuda_stream() const {
  if (impl_->device.kind() != DeviceKind::cuda) return nullptr;
  return api::queue_streams(impl_->device).main;
}

CommandBufferStatus CommandBuffer::status() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->status;
}

std::optional<Error> CommandBuffer::error() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->error;
}

void CommandBuffer::encode(std::string label_, std::function<void()> work) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->status != CommandBufferStatus::not_enqueued)
    throw Error(ErrorCode::invalid_argument, "cannot encode '" + label_ + "' into command buffer '" + label +
                                                 "': it is already committed");
  impl_->commands.emplace_back(std::move(label_), std::move(work));
}

void CommandBuffer::add_completed_handler(std::function<void(const CommandBuffer&)> handler) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->status == CommandBufferStatus::completed || impl_->status == CommandBufferStatus::error)
    throw Error(ErrorCode::invalid_argument, "cannot add a completion handler to command buffer '" + label +
                                                 "': it has already finished");
  impl_->handlers.push_back(std::move(handler));
}

void CommandBuffer::commit() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->status != CommandBufferStatus::not_enqueued)
      throw Error(ErrorCode::invalid_argument, "command buffer '" + label + "' is already committed");
    impl_->status = CommandBufferStatus::committed;
  }
  CommandBuffer self = *this;  // the job keeps the buffer (and its captured objects) alive
  impl_->device.context().submit([self]() mutable {
    Impl& im = *self.impl_;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      im.runner = std::this_thread::get_id();
    }
    std::optional<Error> failure;
    for (auto& [name, work] : im.commands) {
      try {
        work();
      } catch (const Error& e) {
        // e.message(), not e.what(): what() already starts with the code, which the new Error adds again.
        failure = Error(e.code(), "command '" + name + "': " + std::string(e.message()));
      } catch (const std::bad_alloc&) {
        failure = Error(ErrorCode::out_of_memory, "command '" + name + "': out of memory");
      } catch (const std::exception& e) {
        failure = Error(ErrorCode::internal, "command '" + name + "': " + e.what());
      }
      if (failure) break;  // later commands are skipped
    }
    if (im.device.kind() == DeviceKind::cuda) {
      // Completion means the GPU work is done too: one synchronisation per command buffer (not per command).
      // Kernel execution errors surface here; they fail the buffer unless a command failed first.
      Device::Context& ctx = im.device.context();
      void* streams[2];
      {
        std::lock_guard<std::mutex> lock(ctx.cuda_mu);
        streams[0] = ctx.cuda.main;
        streams[1] = ctx.cuda.side;
      }
      for (void* s : streams) {
        if (s == nullptr) continue;
        const core::Status st = cuda_backend::stream_synchronize(im.device.ordinal(), s);
        if (!st.ok() && !failure) failure = Error(st.code, "command buffer '" + self.label + "': " + st.message);
      }
    }
    im.commands.clear();  // release what the commands captured
    // Setting the final status and taking the handler list happen in ONE locked section: from then on
    // add_completed_handler refuses (it checks the status under the same lock), so every handler it
    // accepted is in the list taken here. Handlers see the final status; waiters are released only after
    // the handlers ran.
    std::vector<std::function<void(const CommandBuffer&)>> handlers;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      im.error = failure;
      im.status = failure ? CommandBufferStatus::error : CommandBufferStatus::completed;
      handlers.swap(im.handlers);
    }
    for (auto& h : handlers) {
      try {
        h(self);
      } catch (...) {
        // A throwing handler must not take the queue down; the buffer's outcome is already recorded.
      }
    }
    {
      std::lock_guard<std::mutex> lock(im.mu);
      im.handlers_done = true;
    }
    im.cv.notify_all();
  });
}

void CommandBuffer::wait_until_completed() const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->status == CommandBufferStatus::not_enqueued) return;  // nothing will ever run
  if (impl_->runner == std::this_thread::get_id()) return;         // called from a completion handler
  impl_->cv.wait(lock, [&] { return impl_->handlers_done; });
}

void CommandBuffer::wait_and_check() const {
  wait_until_completed();
  if (auto e = error()) throw *e;
}

}  // namespace tconv
