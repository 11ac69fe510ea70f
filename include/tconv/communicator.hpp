// tconv — Communicator: data-parallel training across processes, one GPU each (NCCL underneath).
//
// Every process (rank) trains a replica of the same model on its share of each batch; after the backward
// pass the replicas' weight and bias gradients are all-reduced in place, so every replica applies the same
// update and the weights stay identical. A communicator is made by every rank from one CommunicatorId
// (NCCL's unique id), which rank 0 generates and shares with the others through a file or an environment
// variable — both work across nodes as well as on one. The process that generated an id hosts its
// bootstrap root: it must stay alive until every rank has joined (generate it in rank 0, or in a launcher
// that outlives the join), and an id serves one communicator only.
//
// The all-reduce is encoded into a command buffer like any kernel: it runs on its own stream once the
// device work encoded before it is done, so it overlaps the commands that follow (the data-gradient
// kernels of the layers below), and encode_join() makes the commands after the join (the optimizers) wait
// for it. Results are deterministic for a fixed number of ranks: NCCL reduces in a fixed order, and every
// rank receives the same bits.
//
// This header needs neither CUDA nor NCCL. In a build without NCCL, available() is false and making a
// communicator or an id throws Error(unsupported).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tconv/buffer.hpp"
#include "tconv/device.hpp"

namespace tconv {

class CommandBuffer;
class ConvolutionGradientState;

enum class ReduceOp : uint8_t {
  sum = 0,   // Σ_r scale_r · x_r  (scale_r: each rank's own pre-multiplier, 1 for a plain sum)
  mean = 1,  // (1/ranks) · Σ_r x_r
};

// The rendezvous token of one communicator: 128 opaque bytes (ncclUniqueId). It holds rank 0's bootstrap
// address, so a fresh one is needed for every run. Text form: 256 lower-case hex digits.
struct CommunicatorId {
  std::array<uint8_t, 128> bytes{};

  // A new id (rank 0 only). Throws Error(unsupported) without NCCL, Error(device_unavailable) when NCCL
  // cannot set up its bootstrap network.
  static CommunicatorId generate();

  std::string to_hex() const;
  // Throws Error(format_error) unless `hex` is exactly 256 hex digits (surrounding white space allowed).
  static CommunicatorId from_hex(const std::string& hex);

  // Writes the hex form to `path` atomically (a reader never sees a partial id).
  void write_file(const std::string& path) const;
  // Reads an id written by write_file, waiting up to `timeout_seconds` for the file to appear (0: it must
  // exist now). Throws Error(io_error) naming the path and the time waited, Error(format_error) for a
  // malformed file.
  static CommunicatorId read_file(const std::string& path, double timeout_seconds = 0);
  // Reads the hex id from environment variable `variable`. Throws Error(invalid_argument) when unset.
  static CommunicatorId from_environment(const char* variable = "TCONV_NCCL_ID");

  friend bool operator==(const CommunicatorId& a, const CommunicatorId& b) noexcept { return a.bytes == b.bytes; }
};

// `count` float32 values of `buffer` from byte `offset` (count -1: to the end of the buffer).
struct FloatSpan {
  Buffer buffer;
  std::size_t offset = 0;
  int64_t count = -1;
};

// `count` float32 values at device address `data` on the communicator's GPU, in memory the caller owns and
// orders on its own CUDA stream (a PyTorch tensor, a cudaMalloc'ed array) — see enqueue_all_reduce.
struct DeviceFloatSpan {
  void* data = nullptr;
  std::size_t count = 0;
};

class Communicator {
 public:
  // Whether this build has NCCL (the communicator's only backend).
  static bool available() noexcept;
  // NCCL's version as major·10000 + minor·100 + patch of the library loaded at run time (0 without NCCL).
  static int library_version() noexcept;

  Communicator() = default;  // null handle
  // Joins communicator `id` as `rank` of `ranks` on `device` (a CUDA device; one rank per GPU). Blocks
  // until all `ranks` ranks have joined. Sets NCCL_NVLS_ENABLE=0 in this process's environment first:
  // NVLink multicast can put shared GPUs out of service, so tconv never lets NCCL use it.
  // Throws Error(invalid_argument) for rank ∉ [0, ranks) or a CPU device, Error(unsupported) without
  // NCCL, Error(device_unavailable) when NCCL fails to set up.
  Communicator(const Device& device, const CommunicatorId& id, int rank, int ranks);

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  int rank() const;
  int size() const;
  const Device& device() const;

  // Encodes an in-place all-reduce of every span (one NCCL group; each span's values are replaced by the
  // reduction over ranks). It starts when the device work encoded before it is done and runs beside the
  // commands encoded after it; read the results only after an encode_join. `scale` pre-multiplies this
  // rank's values for ReduceOp::sum (e.g. the rank's share of a batch); it must be 1 for mean. Every rank
  // must encode the same sequence of all-reduces with the same span sizes. Spans are checked now
  // (Error(invalid_argument): null buffer, another device, offset not a multiple of 4, range outside).
  void encode_all_reduce(CommandBuffer& command_buffer, const std::vector<FloatSpan>& spans, ReduceOp op,
                         float scale = 1.0f) const;
  // A layer's gradients: the state's gradient_for_weights and gradient_for_biases.
  void encode_all_reduce(CommandBuffer& command_buffer, const ConvolutionGradientState& state, ReduceOp op,
                         float scale = 1.0f) const;
  // CUDA interop, for frameworks that own the memory and the stream (PyTorch's tensors and current stream):
  // enqueues an in-place all-reduce of every span (one NCCL group) on `cuda_stream` (a cudaStream_t;
  // nullptr: the legacy default stream) and returns without waiting for it. It runs after the work enqueued
  // on that stream before the call, and work enqueued there after it sees the results, so it needs no join;
  // the caller keeps the memory alive until then (a stream-ordered allocator, such as PyTorch's caching
  // allocator on that stream, does). `op` and `scale` as for encode_all_reduce, and every rank must make the
  // same sequence of all-reduces, of both kinds, with the same span sizes. Spans are checked now
  // (Error(invalid_argument): a null address with values, an address not 4-byte aligned, memory that is not
  // device memory of this communicator's GPU, and — with CUDA runtime 12.8 or later — a stream of another
  // GPU); an NCCL failure is Error(device_unavailable). A peer that died is not always noticed: on one node
  // NCCL's kernels may wait for it for ever, so a launcher must watch its ranks and call abort() on failure.
  void enqueue_all_reduce(void* cuda_stream, const std::vector<DeviceFloatSpan>& spans, ReduceOp op,
                          float scale = 1.0f) const;

  // Commands encoded after this one wait until every all-reduce encoded before it has finished; it also
  // reports an asynchronous NCCL failure (a peer that died) as the command's error.
  void encode_join(CommandBuffer& command_buffer) const;

  // Aborts the communicator after a failure elsewhere: pending operations are dropped and destruction no
  // longer waits for the peers. Later encodes throw Error(invalid_argument).
  void abort() noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with the commands that use it
};

}  // namespace tconv
