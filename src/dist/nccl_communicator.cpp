// The communicator's NCCL backend (built when the CUDA backend is and NCCL is found; see nccl.cmake).
//
// Ordering. Each communicator owns a non-blocking stream. An all-reduce command records an event on the
// command buffer's stream (CommandBuffer::cuda_stream(): each command's GPU work, the weight gradient's
// side stream included, is joined into it before the next command starts), makes the communicator's
// stream wait for that event, enqueues the group of ncclAllReduce calls there and records `done`. It
// returns at once, so the commands after it (the data gradients of the layers below) run while the
// gradients travel. A join command makes the command buffer's stream wait for the latest `done`: the
// communicator's stream runs in order, so that covers every all-reduce encoded before the join.
//
// Caller's stream (enqueue_all_reduce, for PyTorch's tensors): the group is enqueued on the caller's stream
// itself, not on ours, so it is ordered with the caller's work exactly as one of its own kernels (NCCL
// serialises the operations of one communicator across streams in the order they were issued), and the
// memory, which the caller's allocator orders on that stream, needs no keep-alive.
//
// Lifetime. A command returns before its all-reduce has run, and device memory is freed stream-ordered on
// the legacy stream, which does not wait for a non-blocking stream. So the buffers an all-reduce uses are
// kept, with an event recorded after their group, until that event has completed: finished entries are
// dropped whenever the communicator is used again, and all of them when it is destroyed (after its stream
// is drained).
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/cuda_util.hpp"
#include "dist/communicator_impl.hpp"
#include "tconv/error.hpp"

namespace tconv::dist {
namespace {

// NVLink SHARP / multicast (NVLS) can put the GPUs of a shared host out of service; tconv never lets NCCL
// use it. NCCL reads its parameters once, at its first call, so this runs before any NCCL call of this
// process (both entry points below call it first). Done once: setenv is not safe beside other threads'
// getenv, and a second call would change nothing.
void disable_nvls_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* v = std::getenv("NCCL_NVLS_ENABLE");
    if (v == nullptr || std::strcmp(v, "0") != 0) setenv("NCCL_NVLS_ENABLE", "0", 1);
  });
}

std::string nccl_message(ncclResult_t r, ncclComm_t comm) {
  std::string m = ncclGetErrorString(r);
  if (comm != nullptr) {
    const char* last = ncclGetLastError(comm);
    if (last != nullptr && *last != '\0') m += std::string(" (") + last + ")";
  }
  return m;
}

void check_nccl(ncclResult_t r, const char* what, ncclComm_t comm, const Communicator::Impl& c) {
  if (r == ncclSuccess) return;
  // Invalid arguments or usage here are tconv's bug (every argument was checked); everything else is the
  // system, the network or a peer.
  const ErrorCode code = r == ncclInvalidArgument || r == ncclInvalidUsage ? ErrorCode::internal
                                                                             : ErrorCode::device_unavailable;
  throw Error(code, std::string(what) + " failed on rank " + std::to_string(c.rank) + " of " +
                        std::to_string(c.size) + " (" + c.device.name() + "): " + nccl_message(r, comm));
}

void check_cuda(cudaError_t e, const char* what) { core::throw_if_error(cuda_backend::check(e, what)); }

class NcclCommunicator final : public Communicator::Impl, public std::enable_shared_from_this<NcclCommunicator> {
 public:
  NcclCommunicator(const Device& d, const CommunicatorId& id, int rank_, int ranks) {
    device = d;
    rank = rank_;
    size = ranks;
    cuda_backend::DeviceGuard guard(device.ordinal());
    core::throw_if_error(guard.status());
    ncclUniqueId uid;
    static_assert(sizeof uid.internal == sizeof id.bytes, "ncclUniqueId is 128 bytes");
    std::memcpy(uid.internal, id.bytes.data(), sizeof uid.internal);
    // Blocks until every rank has joined (NCCL's bootstrap through rank 0's address in the id).
    check_nccl(ncclCommInitRank(&comm_, size, uid, rank), "ncclCommInitRank", nullptr, *this);
    try {
      check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
      check_cuda(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate");
      check_cuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
    } catch (...) {
      release();
      throw;
    }
  }

  ~NcclCommunicator() override { release(); }

  void encode_all_reduce(CommandBuffer& cb, std::vector<ResolvedSpan> spans, ReduceOp op, float scale) override {
    std::shared_ptr<NcclCommunicator> self = shared_from_this();
    void* compute = cb.cuda_stream();
    cb.encode("all-reduce (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")",
              [self, spans = std::move(spans), op, scale, compute] {
                self->all_reduce(spans, op, scale, static_cast<cudaStream_t>(compute));
              });
  }

  void enqueue_all_reduce(void* stream, std::vector<ResolvedSpan> spans, ReduceOp op, float scale) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) throw Error(ErrorCode::invalid_argument, "Communicator::enqueue_all_reduce: the communicator was aborted");
    cuda_backend::DeviceGuard guard(device.ordinal());
    core::throw_if_error(guard.status());
    const auto s = static_cast<cudaStream_t>(stream);
    check_caller_memory(spans, s);
    // A peer that failed since the last call: report it now rather than enqueue a collective it never joins.
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError", comm_, *this);
    check_nccl(async, "an earlier all-reduce", comm_, *this);
    drop_finished();
    if (spans.empty()) return;
    launch_group(spans, op, scale, s);
  }

  void encode_join(CommandBuffer& cb) override {
    std::shared_ptr<NcclCommunicator> self = shared_from_this();
    void* compute = cb.cuda_stream();
    cb.encode("all-reduce join (rank " + std::to_string(rank) + ")",
              [self, compute] { self->join(static_cast<cudaStream_t>(compute)); });
  }

  // May be called from any thread, also while another thread is inside an NCCL call (that is what
  // ncclCommAbort is for), so it takes no lock.
  void abort() noexcept override {
    if (aborted_.exchange(true)) return;
    if (comm_ != nullptr) ncclCommAbort(comm_);
  }
  bool aborted() const noexcept override { return aborted_.load(); }

 private:
  struct Pending {
    cudaEvent_t event = nullptr;  // recorded on stream_ after the group
    std::vector<ResolvedSpan> spans;
  };

  void all_reduce(const std::vector<ResolvedSpan>& spans, ReduceOp op, float scale, cudaStream_t compute) {
    std::lock_guard<std::mutex> lock(mu_);  // one NCCL call sequence at a time (several queues may share us)
    if (aborted_) throw Error(ErrorCode::device_unavailable, "all-reduce on an aborted communicator");
    cuda_backend::DeviceGuard guard(device.ordinal());
    core::throw_if_error(guard.status());
    drop_finished();
    if (spans.empty()) return;
    check_cuda(cudaEventRecord(ready_, compute), "cudaEventRecord (gradients ready)");
    check_cuda(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent (communicator stream)");
    launch_group(spans, op, scale, stream_);
    check_cuda(cudaEventRecord(done_, stream_), "cudaEventRecord (all-reduce done)");
    Pending p;
    check_cuda(cudaEventCreateWithFlags(&p.event, cudaEventDisableTiming), "cudaEventCreate");
    p.spans = spans;
    if (const cudaError_t e = cudaEventRecord(p.event, stream_); e != cudaSuccess) {
      cudaEventDestroy(p.event);
      check_cuda(e, "cudaEventRecord (keep-alive)");
    }
    pending_.push_back(std::move(p));
  }

  // One NCCL group of in-place all-reduces on `stream` (the caller holds mu_ and the device guard).
  void launch_group(const std::vector<ResolvedSpan>& spans, ReduceOp op, float scale, cudaStream_t stream) {
    ncclRedOp_t red = op == ReduceOp::mean ? ncclAvg : ncclSum;
    bool custom = false;
    // With several ranks every rank takes the pre-multiplied form, also at scale 1: ranks whose scales differ
    // (a rank with no images of a batch has weight 0, another weight 1) must not call one collective with two
    // different operations. ×1 is exact, so a plain sum's result is unchanged; one rank keeps ncclSum.
    if (op == ReduceOp::sum && (scale != 1.0f || size > 1)) {
      // Σ_r scale_r·x_r in one pass: NCCL multiplies each rank's input by its own scalar as it reads it.
      float s = scale;
      check_nccl(ncclRedOpCreatePreMulSum(&red, &s, ncclFloat, ncclScalarHostImmediate, comm_),
                 "ncclRedOpCreatePreMulSum", comm_, *this);
      custom = true;
    }
    ncclResult_t r = ncclGroupStart();
    if (r == ncclSuccess) {
      for (const ResolvedSpan& s : spans) {
        r = ncclAllReduce(s.data, s.data, s.count, ncclFloat, red, comm_, stream);
        if (r != ncclSuccess) break;
      }
      const ncclResult_t end = ncclGroupEnd();  // always closes the group, also after a failed call
      if (r == ncclSuccess) r = end;
    }
    if (custom) ncclRedOpDestroy(red, comm_);  // allowed once the calls that use it have returned
    check_nccl(r, "ncclAllReduce", comm_, *this);
  }

  // Caller-owned memory is checked with the driver before NCCL sees it: an address NCCL cannot use (host
  // memory, another GPU's) would fault inside its kernel or hang the peers, instead of failing here.
  void check_caller_memory(const std::vector<ResolvedSpan>& spans, cudaStream_t stream) const {
#if CUDART_VERSION >= 12080
    if (stream != nullptr) {
      int stream_device = -1;
      check_cuda(cudaStreamGetDevice(stream, &stream_device), "cudaStreamGetDevice");
      if (stream_device != device.ordinal())
        throw Error(ErrorCode::invalid_argument, "the stream belongs to cuda:" + std::to_string(stream_device) +
                                                     " but the communicator runs on " + device.name());
    }
#else
    (void)stream;
#endif
    for (std::size_t i = 0; i < spans.size(); ++i) {
      cudaPointerAttributes a{};
      check_cuda(cudaPointerGetAttributes(&a, spans[i].data), "cudaPointerGetAttributes");
      // Managed memory is device-accessible too; plain or registered host memory is not what a gradient is.
      const bool on_device = a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
      if (!on_device || a.device != device.ordinal())
        throw Error(ErrorCode::invalid_argument,
                    "span " + std::to_string(i) + " (" + std::to_string(spans[i].count) + " floats) is " +
                        (on_device ? "memory of cuda:" + std::to_string(a.device) : std::string("not device memory")) +
                        ", but the communicator runs on " + device.name());
    }
  }

  void join(cudaStream_t compute) {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) throw Error(ErrorCode::device_unavailable, "join on an aborted communicator");
    cuda_backend::DeviceGuard guard(device.ordinal());
    core::throw_if_error(guard.status());
    ncclResult_t async = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError", comm_, *this);
    check_nccl(async, "an all-reduce", comm_, *this);
    check_cuda(cudaStreamWaitEvent(compute, done_, 0), "cudaStreamWaitEvent (join)");
    drop_finished();
  }

  // Releases the buffers of all-reduces that have finished (in order: the stream completes them in order).
  void drop_finished() {
    while (!pending_.empty()) {
      const cudaError_t e = cudaEventQuery(pending_.front().event);
      if (e == cudaErrorNotReady) {
        cudaGetLastError();  // not an error: clear the slot
        return;
      }
      cudaEventDestroy(pending_.front().event);
      pending_.pop_front();
      if (e != cudaSuccess) check_cuda(e, "cudaEventQuery (all-reduce)");
    }
  }

  void release() noexcept {
    cuda_backend::DeviceGuard guard(device.ordinal());
    if (stream_ != nullptr && !aborted_) cudaStreamSynchronize(stream_);
    for (Pending& p : pending_) cudaEventDestroy(p.event);
    pending_.clear();
    if (comm_ != nullptr) {
      if (aborted_) {
        // ncclCommAbort already freed it.
      } else if (ncclCommDestroy(comm_) != ncclSuccess) {
        ncclCommAbort(comm_);
      }
      comm_ = nullptr;
    }
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (done_ != nullptr) cudaEventDestroy(done_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    ready_ = done_ = nullptr;
    stream_ = nullptr;
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;  // the all-reduces run here
  cudaEvent_t ready_ = nullptr;    // compute stream → comm stream
  cudaEvent_t done_ = nullptr;     // comm stream → compute stream (join)
  std::atomic<bool> aborted_{false};
  std::mutex mu_;
  std::deque<Pending> pending_;
};

}  // namespace

bool backend_available() noexcept { return true; }

int backend_version() noexcept {
  int v = 0;
  return ncclGetVersion(&v) == ncclSuccess ? v : 0;
}

CommunicatorId backend_generate_id() {
  disable_nvls_once();
  ncclUniqueId uid;
  const ncclResult_t r = ncclGetUniqueId(&uid);
  if (r != ncclSuccess)
    throw Error(ErrorCode::device_unavailable, std::string("ncclGetUniqueId failed: ") + ncclGetErrorString(r));
  CommunicatorId id;
  std::memcpy(id.bytes.data(), uid.internal, id.bytes.size());
  return id;
}

std::shared_ptr<Communicator::Impl> backend_create(const Device& device, const CommunicatorId& id, int rank, int ranks) {
  disable_nvls_once();
  return std::make_shared<NcclCommunicator>(device, id, rank, ranks);
}

}  // namespace tconv::dist
