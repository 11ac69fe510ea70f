// The object API's private definitions: the Impl structs behind the public handles, and the helpers every
// kernel shares (weight loading from a data source, image views, running a canonical problem).
// Only src/api includes this file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/direction.hpp"
#include "core/problem.hpp"
#include "core/status.hpp"
#include "registry/algorithm.hpp"
#include "tconv/buffer.hpp"
#include "tconv/command_buffer.hpp"
#include "tconv/convolution.hpp"
#include "tconv/convolution_transpose.hpp"
#include "tconv/convolution_transpose_gradient.hpp"
#include "tconv/data_source.hpp"
#include "tconv/device.hpp"
#include "tconv/image.hpp"
#include "tconv/state.hpp"
#include "io/coder.hpp"

namespace tconv {

// ---------------------------------------------------------------- device, buffer, command buffer

// The queue a device's command buffers run on: one worker thread, jobs in commit order. Kept apart from
// the Context and shared with the worker, so that the last Context reference may be dropped on the
// worker itself (the worker then finishes its loop on the still-alive queue).
struct WorkQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs;
  bool stop = false;
};

namespace api {
// The CUDA streams of one queue (device context). Commands run on `main`; a gradient with both the data and
// the weight gradient runs the weight gradient on `side` at the same time, forked from and joined back to
// `main` with the two events. Both streams are blocking (they synchronise with the legacy default stream),
// so the synchronous host copies that images, states and host-side commands use stay ordered with them.
struct CudaStreams {
  void* main = nullptr;
  void* side = nullptr;
  void* fork = nullptr;  // recorded on main, waited for by side: side starts after main's earlier work
  void* join = nullptr;  // recorded on side, waited for by main: main's later work waits for side
};
}  // namespace api

struct Device::Context {
  DeviceKind kind = DeviceKind::cpu;
  int ordinal = 0;
  // Read by every run without a lock (Device::num_threads) while set_num_threads may change it: atomic.
  std::atomic<int> threads{1};
  std::mutex mu;  // guards the lazy start of the worker
  std::shared_ptr<WorkQueue> queue = std::make_shared<WorkQueue>();
  std::thread worker;
  std::mutex cuda_mu;        // guards the lazy creation of `cuda`
  api::CudaStreams cuda;     // CUDA only: made on first use (api::queue_streams), destroyed with the context
  ~Context();
  void submit(std::function<void()> job);
};

struct Buffer::Impl {
  Device device;
  std::size_t length = 0;
  std::unique_ptr<uint8_t[]> host;  // CPU memory
  void* device_memory = nullptr;    // CUDA memory (contents() is null then)
  ~Impl();
};

struct CommandBuffer::Impl {
  Device device;
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  CommandBufferStatus status = CommandBufferStatus::not_enqueued;
  std::optional<Error> error;
  std::vector<std::pair<std::string, std::function<void()>>> commands;
  std::vector<std::function<void(const CommandBuffer&)>> handlers;
  bool handlers_done = false;  // set after the completion handlers ran: waiters are released then
  std::thread::id runner;      // the worker running this buffer (a handler that waits must not block)
};

namespace api {

// ---------------------------------------------------------------- errors

// Builds a message from streamable parts: fail_invalid("kernel width ", k, " must be positive").
template <class... T>
std::string cat(const T&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
template <class... T>
[[noreturn]] void throw_invalid(const T&... parts) {
  throw Error(ErrorCode::invalid_argument, cat(parts...));
}
template <class... T>
[[noreturn]] void throw_unsupported(const T&... parts) {
  throw Error(ErrorCode::unsupported, cat(parts...));
}

// ---------------------------------------------------------------- weights

// Device memory of one weight store: its canonical weights, then its biases. Not zero-filled (every value is
// written before a run reads it); freed stream-ordered (cuda/backend.hpp), so runs already queued finish first.
struct DeviceBlock {
  DeviceBlock(const Device& device, std::size_t bytes);  // throws Error (out_of_memory) on failure
  ~DeviceBlock();
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  int device = 0;
  void* memory = nullptr;
};

// Weights as a kernel keeps them: float32 OHWI (already rounded to the storage precision), biases Nout.
// A store never changes once filled — a reload makes a new store — so commands encoded earlier keep the store
// they snapshotted. A store is filled in one of three ways:
//  * built on the host (load_weights, a copy) and finished by finish_store (on CUDA: one upload);
//  * by a reload command from a weights state in host memory: the same, when the command runs;
//  * by a reload command from a weights state in the device's memory (CUDA): on the device, in stream order
//    (cuda/weights_backend.hpp); the host values are then a mirror read back only when someone reads them
//    (host_weights/host_biases, a copy) — never during a training step.
// Between a reload's encode and its command the store is pending: it reads as the store it replaces (the values
// a kernel has until the reload runs; also what a reload skipped by a failed command buffer leaves).
class WeightStore {
 public:
  // The host values. Written directly only while a store is built, before it is shared (load_weights,
  // finish_store); a kernel's store is read through host_weights()/host_biases(), which read the device's values
  // back when a device-side reload filled it.
  std::vector<float> weights;
  std::vector<float> biases;  // Nout values (zeros when the data source has none)
  bool has_bias = false;      // fixed when the store is made (a reload knows it at encode time)
  // The weights in the canonical transposed-convolution layout when the kernel's own layout differs (the
  // plain convolution: rotated, channels swapped, core/direction.hpp); empty when `weights` is canonical.
  std::vector<float> canonical;

  WeightStore() = default;
  // A host store with o's values (read back from the device first when needed); finish_store gives it its own
  // device copy. Copies are how a kernel copy (e11) takes its weights.
  WeightStore(const WeightStore& o);
  WeightStore(WeightStore&& o) noexcept;  // for stores being built (not shared yet)
  WeightStore& operator=(const WeightStore&) = delete;
  WeightStore& operator=(WeightStore&&) = delete;
  ~WeightStore();

  // A pending store standing for `base` (null: no values yet) until a reload command fills it.
  static std::shared_ptr<WeightStore> pending(std::shared_ptr<const WeightStore> base, bool has_bias);

  // The pointers a run takes: the device copies on a CUDA device, the host values on the CPU.
  const float* run_weights() const;
  const float* run_biases() const;
  int64_t run_bias_count() const;  // the biases run_biases() points to (Nout; 0 for a gradient store never loaded)
  // The values on the host (kernel layout; Nout biases), read back from the device once after a device fill.
  std::vector<float> host_weights() const;
  std::vector<float> host_biases() const;

  const float* canonical_host() const { return canonical.empty() ? weights.data() : canonical.data(); }

 private:
  friend void finish_store(WeightStore& s, const Device& device, const core::ConvGeometry* conv);
  friend void fill_on_device(WeightStore& s, std::shared_ptr<DeviceBlock> block, int64_t n, int64_t nout,
                             const core::ConvGeometry* conv);
  void read_back_locked() const;  // the device → host mirror refresh; mu_ held
  // Marks the store filled (values and device copy in place) and drops the store it stood for.
  void mark_filled(std::shared_ptr<DeviceBlock> block, int64_t n, int64_t nout, bool host_stale,
                   const core::ConvGeometry* conv);

  mutable std::mutex mu_;
  bool filled_ = true;                        // false while pending
  std::shared_ptr<const WeightStore> base_;   // while pending: the store this one reads as
  mutable bool host_stale_ = false;           // the host vectors must be read back from the device block
  std::shared_ptr<DeviceBlock> block_;        // CUDA: canonical weights at 0, biases at bias_offset
  const float* dev_weights_ = nullptr;
  const float* dev_biases_ = nullptr;
  int64_t count_ = 0, bias_count_ = 0;        // values in the device block
  std::optional<core::ConvGeometry> conv_;    // the plain convolution's geometry (the mirror's layout), if any
};

// Internal weight precision requested by a data source (e7): float32 (no rounding), float16 or bfloat16.
DataType storage_type_of(const ConvolutionDataSource& ds);
// Rounds float32 values to the storage type in place (no-op for float32).
void round_to_storage(std::vector<float>& w, DataType storage);
// load → copy → purge; converts float16/bfloat16/uint8 (with its quantisation) to float32, rounds to
// `storage`, and folds batch norm when `fold` is set. Throws invalid_argument when load() fails or the
// weights/biases pointers are null after load().
WeightStore load_weights(ConvolutionDataSource& ds, const ConvolutionDescriptor& desc, DataType storage, bool fold);
// Checks the data-source answers kernels depend on (layout, kernel_weights_data_type vs data_type).
void check_data_source(const ConvolutionDataSource& ds, const char* kernel_name);
// Completes a store whose host values are final: the canonical copy when `conv` (the plain convolution's
// geometry; null for the transposed kernels) and, on a CUDA device, the device copy (counted by weight_uploads()).
// Marks the store filled.
void finish_store(WeightStore& s, const Device& device, const core::ConvGeometry* conv);
std::shared_ptr<WeightStore> finished_store(WeightStore s, const Device& device, const core::ConvGeometry* conv);
// Marks a store filled on the device: `block` holds its n canonical weights and, after them, nout biases (written
// by work already queued on the device); the host values become a mirror read back on first use.
void fill_on_device(WeightStore& s, std::shared_ptr<DeviceBlock> block, int64_t n, int64_t nout,
                    const core::ConvGeometry* conv);
// Device weight copies made since the process started: each finish_store on a CUDA device and each device-side
// reload counts one. Lets tests check that encodes and runs do not make them.
uint64_t weight_uploads() noexcept;
// Device → host reads of a store's values since the process started (the lazy mirror refresh): lets tests check
// that reloads and runs on the device never read weights back.
uint64_t weight_readbacks() noexcept;
// Whether a buffer lives in the memory of CUDA device `device` (device-only memory of the same ordinal).
bool in_device_memory(const Buffer& b, const Device& device);

// ---------------------------------------------------------------- images and running

// Byte pointer to element (n, y, x, c) of an image and its NHWC strides in elements.
core::TensorView image_view(const Image& img, int64_t n, int64_t y, int64_t x, int64_t c);
void* device_pointer_of(const Image& img);

// A problem bound to its algorithm, ready to run on the queue.
struct BoundProblem {
  core::Problem problem;
  core::Args args;
  const registry::Algorithm* algorithm = nullptr;
};
// Validates the problem and chooses an algorithm now (encode time), so that errors reach the caller.
BoundProblem bind(const Device& device, const core::Problem& p, const core::Args& a, const std::string& forced,
                  bool allow_nondeterministic);

// A kernel object's workspace, kept between runs and replaced by a larger one only when a run needs more
// (never allocated per run). Slots keep apart work that may run at the same time: the two streams of a
// gradient, and commands of two queues (contexts) of one GPU. A replaced device block is freed
// stream-ordered (cuda/backend.hpp), so work still queued on it finishes first.
class WorkspaceCache {
 public:
  enum Slot : int { main_stream = 0, side_stream = 1, side_scratch = 2 };
  // At least `bytes` (null for 0) on the queue's device for `slot`; valid until the next get of that slot.
  void* get(const Device& queue, int slot, std::size_t bytes);

 private:
  struct Entry {
    const void* context;
    int slot;
    Buffer buffer;
  };
  std::mutex mu_;
  std::vector<Entry> entries_;
};

// The CUDA streams of the queue that runs `queue`'s command buffers, created on first use.
CudaStreams& queue_streams(const Device& queue);
// Runs a bound problem on the queue's device (called from the queue). CPU: with the device's thread budget.
// CUDA: on `stream` (null: the queue's main stream), without synchronising — the command buffer synchronises
// once at its end. Args pointers must already be device pointers there. Throws Error on failure.
void run_bound(const Device& queue, const BoundProblem& b, WorkspaceCache& workspace, int slot,
               void* stream = nullptr);

// export_weights_and_biases / reload_weights_and_biases of the kernels that own weights: `weights` is the
// kernel's store guarded by `mu`; `kernel` names it in messages and command labels; `conv` is the plain
// convolution's geometry (its weights are kept canonical, core/direction.hpp), null for the transposed kernels.
// Export encodes a copy of the current store into a new float32 state (kernel layout). Reload swaps in a new,
// pending store now (later encodes see it) and fills it when the command runs, rounded to `storage`; null or
// short biases in the state — or `state_biases` false (the gradient kernels, whose biases play no part) — keep
// the biases as they are then. On a CUDA device with the state in the device's memory both are one launch on
// the queue's stream (cuda/weights_backend.hpp): no host copy, no host synchronisation; otherwise the values
// pass through the host as the CPU path does.
ConvolutionWeightsAndBiasesState encode_export_weights(CommandBuffer& cb, const Device& device, const char* kernel,
                                                       const ConvolutionDescriptor& desc, std::mutex& mu,
                                                       const std::shared_ptr<WeightStore>& weights, bool temporary,
                                                       const core::ConvGeometry* conv);
void encode_reload_weights(CommandBuffer& cb, const Device& device, const char* kernel, const ConvolutionDescriptor& desc,
                           DataType storage, std::mutex& mu, std::shared_ptr<WeightStore>& weights,
                           const ConvolutionWeightsAndBiasesState& state, const core::ConvGeometry* conv,
                           bool state_biases = true);

// Runs f on a host-addressable version of view v of img (the view itself on the CPU; a staged copy of the
// image, written back afterwards, for device-only memory).
void on_host(const Image& img, const core::TensorView& v, const std::function<void(const core::TensorView&)>& f);
// Rounds every element of a view through float16 (accumulator precision half on float32 images).
void round_view_through_f16(const core::TensorView& v, DataType t, int64_t n, int64_t h, int64_t w, int64_t c);

// Common channel/size checks, all with messages naming the values.
void require_same_device(const Device& a, const Device& b, const char* what);
void require_not_aliased(const Image& a, const Image& b, const char* a_name, const char* b_name);
// Channels available in an image from `offset` with `max_count`, checked against `needed`.
void require_channels(const Image& img, const char* role, int64_t offset, uint64_t max_count, int64_t needed);
void require_zero_edge(EdgeMode m, const char* kernel, const char* which);

// ---------------------------------------------------------------- states

struct StateImplBase {
  virtual ~StateImplBase() = default;
  bool temporary = false;
  std::string label;
  std::vector<Buffer> resources;  // resource(at:) order
};

}  // namespace api

using api::WeightStore;

struct State::Impl : api::StateImplBase {};

struct WeightsStateImpl : State::Impl {
  Buffer weights, biases;
  std::size_t weights_offset = 0, biases_offset = 0;
  int64_t weight_count = 0, bias_count = 0;
};

struct GradientStateImpl : State::Impl {
  Buffer grad_weights, grad_biases;
  ConvolutionDescriptor descriptor{1, 1, 1, 1};
  ForwardRecord record;
  bool initialised = false;                 // e4: set at the encode time of the first gradient encode
  std::shared_ptr<Convolution::Impl> conv;  // producing convolution (plain conv states)
  std::mutex mu;
};

struct TransposeGradientStateImpl : GradientStateImpl {
  std::shared_ptr<ConvolutionTranspose::Impl> transpose;
  ConvolutionGradientState paired;
};

// Friend gate used by the kernels to make and open state handles.
struct StateAccess {
  static ConvolutionGradientState make_gradient(std::shared_ptr<GradientStateImpl> p) {
    return ConvolutionGradientState(std::static_pointer_cast<State::Impl>(std::move(p)));
  }
  static ConvolutionTransposeGradientState make_transpose(std::shared_ptr<TransposeGradientStateImpl> p) {
    return ConvolutionTransposeGradientState(std::static_pointer_cast<State::Impl>(std::move(p)));
  }
  static GradientStateImpl& gradient(const ConvolutionGradientState& s);
  static TransposeGradientStateImpl& transpose(const ConvolutionTransposeGradientState& s);
  static std::shared_ptr<State::Impl> ptr(const State& s);
};

// Makes a gradient state with zeroed float32 buffers shaped for `desc` (Nout·kH·kW·Nin/G and Nout).
std::shared_ptr<GradientStateImpl> new_gradient_state_impl(const Device& device, const ConvolutionDescriptor& desc,
                                                           bool temporary);
std::shared_ptr<TransposeGradientStateImpl> new_transpose_state_impl(const Device& device,
                                                                     const ConvolutionDescriptor& desc,
                                                                     bool temporary);

// ---------------------------------------------------------------- kernels

struct ConvolutionTranspose::Impl {
  Device device;
  std::string label;
  std::shared_ptr<ConvolutionDataSource> data_source;
  ConvolutionDescriptor desc{1, 1, 1, 1};
  KernelProperties props;
  DataType storage = DataType::float32;   // internal weight precision (e7)
  bool uint8_weights = false;             // inference only (e8)
  std::mutex mu;                          // guards `weights` replacement
  std::shared_ptr<WeightStore> weights;   // replaced (not mutated) by immediate reloads
  std::shared_ptr<api::WorkspaceCache> workspace = std::make_shared<api::WorkspaceCache>();
};

struct ConvolutionTransposeGradient::Impl {
  Device device;
  std::string label;
  std::shared_ptr<ConvolutionDataSource> data_source;  // null after decode until adopted (a.10)
  ConvolutionDescriptor desc{1, 1, 1, 1};
  BinaryKernelProperties props;
  GradientOption option = GradientOption::all;
  DataType storage = DataType::float32;
  std::mutex mu;
  std::shared_ptr<WeightStore> weights;  // null after decode until adopted
  std::shared_ptr<api::WorkspaceCache> workspace = std::make_shared<api::WorkspaceCache>();
};

struct Convolution::Impl {
  Device device;
  std::string label;
  std::shared_ptr<ConvolutionDataSource> data_source;
  ConvolutionDescriptor desc{1, 1, 1, 1};
  KernelProperties props;
  DataType storage = DataType::float32;
  std::mutex mu;
  std::shared_ptr<WeightStore> weights;  // canonical copy: the weights as the transpose's (rotated, swapped)
  std::shared_ptr<api::WorkspaceCache> workspace = std::make_shared<api::WorkspaceCache>();
};

struct ConvolutionGradient::Impl {
  Device device;
  std::shared_ptr<ConvolutionDataSource> data_source;
  ConvolutionDescriptor desc{1, 1, 1, 1};
  GradientOption option = GradientOption::all;
  Precision precision = Precision::fp32;
  DataType storage = DataType::float32;
  std::mutex mu;
  std::shared_ptr<WeightStore> weights;  // canonical copy: the weights as the transpose's (rotated, swapped)
  std::shared_ptr<api::WorkspaceCache> workspace = std::make_shared<api::WorkspaceCache>();
};

struct KernelAccess {
  static ConvolutionTranspose make(std::shared_ptr<ConvolutionTranspose::Impl> p) {
    return ConvolutionTranspose(std::move(p));
  }
  static Convolution make(std::shared_ptr<Convolution::Impl> p) { return Convolution(std::move(p)); }
  static std::shared_ptr<ConvolutionTranspose::Impl> ptr(const ConvolutionTranspose& k) { return k.impl_; }
  static std::shared_ptr<Convolution::Impl> ptr(const Convolution& k) { return k.impl_; }
};

namespace api {
// Validation shared by the two gradient kernels (a.7.1, e8, e10).
void validate_for_gradient(const ConvolutionDataSource& ds, const ConvolutionDescriptor& desc, const char* kernel);
// Snapshot of a kernel's weights for one encode (the queue may run after later reloads replace them).
inline std::shared_ptr<WeightStore> snapshot(std::mutex& mu, const std::shared_ptr<WeightStore>& w) {
  std::lock_guard<std::mutex> lock(mu);
  return w;
}
}  // namespace api

}  // namespace tconv

namespace tconv::api {
// Coder helpers for the property sets (coding.cpp). Keys are "<prefix>.<field>".
void encode_properties(io::Encoder& e, const std::string& prefix, const KernelProperties& p);
KernelProperties decode_kernel_properties(const io::Decoder& d, const std::string& prefix);
void encode_properties(io::Encoder& e, const std::string& prefix, const BinaryKernelProperties& p);
BinaryKernelProperties decode_binary_properties(const io::Decoder& d, const std::string& prefix);
// Checks "kernel.class" and "kernel.version" (format_error naming what was found).
// `prefix` is prepended verbatim to every key a kernel writes (empty: the historical key names), so that
// several kernels can share one file ("enc1." + "kernel.class" ...).
void check_class(const io::Decoder& d, const std::string& expected_class, int64_t max_version,
                 const std::string& prefix = "");
// The data source's own weights (unfolded, at its own precision) and biases as safetensors tensors
// prefix+"weights" [Nout][kH][kW][Nin/G] and prefix+"biases" [Nout], plus its label and weight type.
void encode_data_source_weights(io::Encoder& e, const std::string& prefix, ConvolutionDataSource& ds,
                                const ConvolutionDescriptor& desc);
// The inverse: an ArrayDataSource holding the stored arrays. Throws Error(format_error) on a mismatch.
std::shared_ptr<ConvolutionDataSource> decode_array_data_source(const io::Decoder& d, const std::string& prefix,
                                                                const ConvolutionDescriptor& desc);
std::string describe_properties(const KernelProperties& p);
std::string describe_properties(const BinaryKernelProperties& p);

// Coding, description and equality shared by the two single-source kernels (Convolution and
// ConvolutionTranspose), whose Impls carry the same fields: one definition instead of two copies.
template <class KernelImpl>
void encode_unary_kernel(io::Encoder& e, const std::string& p, const char* cls, KernelImpl& k) {
  if (!k.data_source) throw_invalid(cls, ": cannot encode a kernel without a data source");
  e.set_string(p + "kernel.class", cls);
  e.set_int(p + "kernel.version", 1);
  e.set_string(p + "kernel.label", k.label);
  k.desc.encode_to(e, p + "descriptor");
  encode_properties(e, p + "properties", k.props);
  encode_data_source_weights(e, p, *k.data_source, k.desc);
}
template <class KernelImpl>
std::string describe_unary_kernel(const char* cls, const KernelImpl& k) {
  std::ostringstream os;
  os << cls << " '" << k.label << "' on " << k.device.name() << ": " << k.desc.describe() << "; "
     << describe_properties(k.props) << "; weights " << to_string(k.storage);
  return os.str();
}
template <class KernelImpl>
bool unary_kernels_equal(KernelImpl& a, KernelImpl& b) {
  if (&a == &b) return true;
  if (!(a.desc == b.desc) || !(a.props == b.props) || a.label != b.label || a.storage != b.storage) return false;
  auto wa = snapshot(a.mu, a.weights), wb = snapshot(b.mu, b.weights);
  return wa->has_bias == wb->has_bias && wa->host_weights() == wb->host_weights() &&
         wa->host_biases() == wb->host_biases();
}
}  // namespace tconv::api
