// Helpers shared by the kernels: image views (channel offsets, clip origins and image indices become a
// base-pointer offset; NHWC strides stay the image's), binding a canonical problem to a registered
// algorithm at encode time, running it on the queue (the device's thread budget on the CPU, the queue's
// stream on CUDA), weight stores and their one-time device upload, and the cached per-kernel workspace.
#include <algorithm>
#include <atomic>
#include <vector>

#include "api/internal.hpp"
#include "core/dtype.hpp"
#include "cuda/backend.hpp"
#include "cuda/weights_backend.hpp"
#include "registry/algorithm.hpp"

namespace tconv::api {

void* device_pointer_of(const Image& img) { return img.buffer().device_pointer(); }

core::TensorView image_view(const Image& img, int64_t n, int64_t y, int64_t x, int64_t c) {
  const int64_t H = img.height(), W = img.width(), C = img.feature_channels();
  const int64_t elem = ((n * H + y) * W + x) * C + c;
  uint8_t* base = static_cast<uint8_t*>(device_pointer_of(img)) + elem * static_cast<int64_t>(size_of(img.data_type()));
  return core::TensorView{base, H * W * C, W * C, C};
}

BoundProblem bind(const Device& device, const core::Problem& p, const core::Args& a, const std::string& forced,
                  bool allow_nondeterministic) {
  core::throw_if_error(core::validate(p));
  const registry::Choice c = registry::choose(p, device.kind(), forced, allow_nondeterministic);
  if (c.algorithm == nullptr) {
    // An unknown name is the caller's mistake (invalid_argument); a known algorithm that declines, or no
    // algorithm at all for the problem, is unsupported. The functional API plans through here too.
    throw Error(c.unknown_name ? ErrorCode::invalid_argument : ErrorCode::unsupported,
                "no algorithm on " + device.name() + " takes " + p.describe() + ": " + c.reason);
  }
  return BoundProblem{p, a, c.algorithm};
}

namespace {
std::atomic<uint64_t> g_weight_uploads{0};
std::atomic<uint64_t> g_weight_readbacks{0};

// Where a store's biases start in its device block: after the weights, on a 256-byte boundary (cudaMalloc's
// alignment), so both arrays are aligned for vector loads.
std::size_t bias_offset(int64_t n) { return (static_cast<std::size_t>(n) * sizeof(float) + 255) / 256 * 256; }
std::size_t block_bytes(int64_t n, int64_t nout) { return bias_offset(n) + static_cast<std::size_t>(nout) * sizeof(float); }

template <class T>
T* at_byte(void* base, std::size_t offset) {
  return reinterpret_cast<T*>(static_cast<uint8_t*>(base) + offset);
}

cuda_backend::weights::ConvShape conv_shape(const core::ConvGeometry& c) {
  return cuda_backend::weights::ConvShape{c.c_in, c.c_out, c.groups, c.kh, c.kw};
}
}  // namespace

uint64_t weight_uploads() noexcept { return g_weight_uploads.load(std::memory_order_relaxed); }
uint64_t weight_readbacks() noexcept { return g_weight_readbacks.load(std::memory_order_relaxed); }

bool in_device_memory(const Buffer& b, const Device& device) {
  return b && device.kind() == DeviceKind::cuda && b.contents() == nullptr && b.device().kind() == DeviceKind::cuda &&
         b.device().ordinal() == device.ordinal();
}

// ---------------------------------------------------------------- weight stores

DeviceBlock::DeviceBlock(const Device& d, std::size_t bytes) : device(d.ordinal()) {
  core::throw_if_error(cuda_backend::malloc_device(device, bytes == 0 ? 1 : bytes, &memory));
}
DeviceBlock::~DeviceBlock() { cuda_backend::free_device(device, memory); }

WeightStore::WeightStore(const WeightStore& o)
    : weights(o.host_weights()), biases(o.host_biases()), has_bias(o.has_bias) {}

WeightStore::WeightStore(WeightStore&& o) noexcept
    : weights(std::move(o.weights)),
      biases(std::move(o.biases)),
      has_bias(o.has_bias),
      canonical(std::move(o.canonical)),
      filled_(o.filled_),
      base_(std::move(o.base_)),
      host_stale_(o.host_stale_),
      block_(std::move(o.block_)),
      dev_weights_(o.dev_weights_),
      dev_biases_(o.dev_biases_),
      count_(o.count_),
      bias_count_(o.bias_count_),
      conv_(o.conv_) {}

WeightStore::~WeightStore() = default;

std::shared_ptr<WeightStore> WeightStore::pending(std::shared_ptr<const WeightStore> base, bool has_bias) {
  auto s = std::make_shared<WeightStore>();
  s->has_bias = has_bias;
  s->filled_ = false;
  s->base_ = std::move(base);
  return s;
}

// The run pointers and the host values of a pending store are its base's: taken under the lock, used after it
// (the base is kept alive by the shared pointer copied here).
const float* WeightStore::run_weights() const {
  std::shared_ptr<const WeightStore> base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (filled_) return dev_weights_ != nullptr ? dev_weights_ : canonical_host();
    base = base_;
  }
  return base ? base->run_weights() : nullptr;
}

const float* WeightStore::run_biases() const {
  std::shared_ptr<const WeightStore> base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (filled_) return dev_weights_ != nullptr ? dev_biases_ : biases.data();
    base = base_;
  }
  return base ? base->run_biases() : nullptr;
}

int64_t WeightStore::run_bias_count() const {
  std::shared_ptr<const WeightStore> base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (filled_) return bias_count_;
    base = base_;
  }
  return base ? base->run_bias_count() : 0;
}

std::vector<float> WeightStore::host_weights() const {
  std::shared_ptr<const WeightStore> base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (filled_) {
      read_back_locked();
      return weights;
    }
    base = base_;
  }
  return base ? base->host_weights() : std::vector<float>{};
}

std::vector<float> WeightStore::host_biases() const {
  std::shared_ptr<const WeightStore> base;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (filled_) {
      read_back_locked();
      return biases;
    }
    base = base_;
  }
  return base ? base->host_biases() : std::vector<float>{};
}

void WeightStore::read_back_locked() const {
  if (!host_stale_) return;
  // A synchronous copy on the legacy stream: it starts after all work queued so far on the command-buffer
  // streams (they are blocking streams), so it sees the values the reload's launch wrote.
  std::vector<float> w(static_cast<std::size_t>(count_)), b(static_cast<std::size_t>(bias_count_));
  core::throw_if_error(cuda_backend::copy_d2h(block_->device, w.data(), dev_weights_, w.size() * sizeof(float)));
  core::throw_if_error(cuda_backend::copy_d2h(block_->device, b.data(), dev_biases_, b.size() * sizeof(float)));
  // The mirror is part of the store's value, not of its identity: a const reader may fill it (under mu_; every
  // store is created non-const by make_shared, so the cast is well defined).
  WeightStore& self = const_cast<WeightStore&>(*this);
  if (conv_) {
    self.weights.resize(w.size());
    core::transpose_weights_to_conv(*conv_, w.data(), self.weights.data());
    self.canonical = std::move(w);
  } else {
    self.weights = std::move(w);
    self.canonical.clear();
  }
  self.biases = std::move(b);
  host_stale_ = false;
  g_weight_readbacks.fetch_add(1, std::memory_order_relaxed);
}

void WeightStore::mark_filled(std::shared_ptr<DeviceBlock> block, int64_t n, int64_t nout, bool host_stale,
                              const core::ConvGeometry* conv) {
  std::shared_ptr<const WeightStore> dropped;  // released after the lock: its destructor takes its own
  std::lock_guard<std::mutex> lock(mu_);
  block_ = std::move(block);
  dev_weights_ = block_ ? static_cast<const float*>(block_->memory) : nullptr;
  dev_biases_ = block_ ? at_byte<const float>(block_->memory, bias_offset(n)) : nullptr;
  count_ = n;
  bias_count_ = nout;
  host_stale_ = host_stale;
  if (conv != nullptr) conv_ = *conv;
  else conv_.reset();
  filled_ = true;
  dropped.swap(base_);
}

void finish_store(WeightStore& s, const Device& device, const core::ConvGeometry* conv) {
  if (conv != nullptr) {
    s.canonical.resize(s.weights.size());
    core::conv_weights_to_transpose(*conv, s.weights.data(), s.canonical.data());
  } else {
    s.canonical.clear();
  }
  const auto n = static_cast<int64_t>(s.weights.size()), nout = static_cast<int64_t>(s.biases.size());
  std::shared_ptr<DeviceBlock> block;
  if (device.kind() == DeviceKind::cuda) {
    // A new block, never one a copied store shares: commands that snapshotted another store may still read it.
    block = std::make_shared<DeviceBlock>(device, block_bytes(n, nout));
    core::throw_if_error(cuda_backend::copy_h2d(block->device, block->memory, s.canonical_host(),
                                                static_cast<std::size_t>(n) * sizeof(float)));
    core::throw_if_error(cuda_backend::copy_h2d(block->device, at_byte<float>(block->memory, bias_offset(n)),
                                                s.biases.data(), static_cast<std::size_t>(nout) * sizeof(float)));
    g_weight_uploads.fetch_add(1, std::memory_order_relaxed);
  }
  s.mark_filled(std::move(block), n, nout, false, conv);
}

void fill_on_device(WeightStore& s, std::shared_ptr<DeviceBlock> block, int64_t n, int64_t nout,
                    const core::ConvGeometry* conv) {
  s.mark_filled(std::move(block), n, nout, true, conv);
  g_weight_uploads.fetch_add(1, std::memory_order_relaxed);
}

std::shared_ptr<WeightStore> finished_store(WeightStore s, const Device& device, const core::ConvGeometry* conv) {
  auto p = std::make_shared<WeightStore>(std::move(s));
  finish_store(*p, device, conv);
  return p;
}

void* WorkspaceCache::get(const Device& queue, int slot, std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const void* ctx = &queue.context();
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_) {
    if (e.context != ctx || e.slot != slot) continue;
    // Grow by at least half again, so that a sequence of slightly larger problems does not reallocate each time.
    if (e.buffer.length() < bytes) e.buffer = Buffer::allocate(queue, std::max(bytes, e.buffer.length() * 3 / 2));
    return e.buffer.device_pointer();
  }
  entries_.push_back(Entry{ctx, slot, Buffer::allocate(queue, bytes)});
  return entries_.back().buffer.device_pointer();
}

CudaStreams& queue_streams(const Device& queue) {
  Device::Context& ctx = queue.context();
  std::lock_guard<std::mutex> lock(ctx.cuda_mu);
  if (ctx.cuda.main == nullptr) {
    const int d = queue.ordinal();
    CudaStreams s;
    core::Status st = cuda_backend::stream_create(d, &s.main, true);
    if (st.ok()) st = cuda_backend::stream_create(d, &s.side, true);
    if (st.ok()) st = cuda_backend::event_create(d, &s.fork);
    if (st.ok()) st = cuda_backend::event_create(d, &s.join);
    if (!st.ok()) {
      cuda_backend::event_destroy(d, s.join);
      cuda_backend::event_destroy(d, s.fork);
      cuda_backend::stream_destroy(d, s.side);
      cuda_backend::stream_destroy(d, s.main);
      core::throw_if_error(st);
    }
    ctx.cuda = s;
  }
  return ctx.cuda;
}

void run_bound(const Device& queue, const BoundProblem& b, WorkspaceCache& workspace, int slot, void* stream) {
  registry::ExecContext ctx;
  ctx.num_threads = queue.num_threads();
  if (queue.kind() == DeviceKind::cuda) {
    ctx.cuda_device = queue.ordinal();
    ctx.cuda_stream = stream != nullptr ? stream : queue_streams(queue).main;
  }
  void* ws = workspace.get(queue, slot, b.algorithm->workspace_bytes(b.problem));
  core::throw_if_error(b.algorithm->run(b.problem, b.args, ws, ctx));
}

ConvolutionWeightsAndBiasesState encode_export_weights(CommandBuffer& cb, const Device& device, const char* kernel,
                                                       const ConvolutionDescriptor& desc, std::mutex& mu,
                                                       const std::shared_ptr<WeightStore>& weights, bool temporary,
                                                       const core::ConvGeometry* conv) {
  require_same_device(device, cb.device(), "the command buffer");
  ConvolutionWeightsAndBiasesState s(device, desc);
  s.impl().temporary = temporary;
  std::shared_ptr<WeightStore> w = snapshot(mu, weights);
  const bool on_gpu = in_device_memory(s.weights(), device) && in_device_memory(s.biases(), device);
  const int64_t n = desc.weight_elements(), nout = desc.output_feature_channels;
  std::optional<core::ConvGeometry> geometry;
  if (conv != nullptr) geometry = *conv;
  Device queue = cb.device();
  const std::string name = kernel;
  cb.encode(name + " export weights", [w, s, on_gpu, n, nout, geometry, queue, name] {
    Buffer wb = s.weights(), bb = s.biases();
    if (on_gpu) {
      // Device to device on the queue's stream, back to the kernel's layout (the store keeps the canonical one).
      const float* src_w = w->run_weights();
      if (src_w == nullptr) throw_invalid(name, ": the kernel has no weights to export");
      namespace cw = cuda_backend::weights;
      core::throw_if_error(cw::copy_weights(
          queue.ordinal(), queue_streams(queue).main, src_w, at_byte<float>(wb.device_pointer(), s.weights_offset()), n,
          DataType::float32, geometry ? cw::Reorder::transpose_to_conv : cw::Reorder::none,
          geometry ? conv_shape(*geometry) : cw::ConvShape{}, w->run_biases(),
          at_byte<float>(bb.device_pointer(), s.biases_offset()), nout));
      return;
    }
    const std::vector<float> wv = w->host_weights(), bv = w->host_biases();
    wb.copy_from_host(wv.data(), wv.size() * sizeof(float), s.weights_offset());
    bb.copy_from_host(bv.data(), bv.size() * sizeof(float), s.biases_offset());
  });
  return s;
}

void encode_reload_weights(CommandBuffer& cb, const Device& device, const char* kernel, const ConvolutionDescriptor& desc,
                           DataType storage, std::mutex& mu, std::shared_ptr<WeightStore>& weights,
                           const ConvolutionWeightsAndBiasesState& state, const core::ConvGeometry* conv,
                           bool state_biases) {
  if (!state) throw_invalid(kernel, ": reload from a null weights-and-biases state");
  require_same_device(device, cb.device(), "the command buffer");
  const int64_t n = desc.weight_elements();
  if (state.weight_count() < n)
    throw_invalid(kernel, ": the weights state holds ", state.weight_count() * 4, " bytes from offset ",
                  state.weights_offset(), "; the kernel needs ", n * 4, " (4·Nout·kH·kW·Nin/G)");
  const int64_t nout = desc.output_feature_channels;
  const bool with_biases = state_biases && state.biases() && state.bias_count() >= nout;
  // The device path: the state's values are already where the kernel runs.
  const bool on_gpu = in_device_memory(state.weights(), device) && (!with_biases || in_device_memory(state.biases(), device));
  std::shared_ptr<WeightStore> old, fresh;
  {
    std::lock_guard<std::mutex> lock(mu);
    old = weights;
    fresh = WeightStore::pending(old, with_biases || (old && old->has_bias));
    weights = fresh;
  }
  std::optional<core::ConvGeometry> geometry;
  if (conv != nullptr) geometry = *conv;
  Device dev = device, queue = cb.device();
  cb.encode(std::string(kernel) + " reload weights",
            [old, fresh, state, n, nout, with_biases, on_gpu, storage, geometry, dev, queue] {
    const core::ConvGeometry* g = geometry ? &*geometry : nullptr;
    if (on_gpu) {
      // One launch on the queue's stream, after the work that wrote the state (an optimizer) and before the runs
      // encoded after this reload; the host neither copies nor waits. Without new biases in the state, the
      // biases are copied from the store this one replaces, as they are when this command runs.
      const float* src_b = with_biases ? at_byte<const float>(state.biases().device_pointer(), state.biases_offset())
                                       : (old ? old->run_biases() : nullptr);
      const int64_t bias_count = with_biases ? nout : (old ? old->run_bias_count() : 0);
      auto block = std::make_shared<DeviceBlock>(dev, block_bytes(n, bias_count));
      namespace cw = cuda_backend::weights;
      core::throw_if_error(cw::copy_weights(
          queue.ordinal(), queue_streams(queue).main,
          at_byte<const float>(state.weights().device_pointer(), state.weights_offset()),
          static_cast<float*>(block->memory), n, storage, g ? cw::Reorder::conv_to_transpose : cw::Reorder::none,
          g ? conv_shape(*g) : cw::ConvShape{}, src_b, at_byte<float>(block->memory, bias_offset(n)), bias_count));
      fill_on_device(*fresh, std::move(block), n, bias_count, g);
      return;
    }
    fresh->weights.resize(static_cast<std::size_t>(n));
    state.weights().copy_to_host(fresh->weights.data(), static_cast<std::size_t>(n) * 4, state.weights_offset());
    round_to_storage(fresh->weights, storage);
    if (with_biases) {
      fresh->biases.resize(static_cast<std::size_t>(nout));
      state.biases().copy_to_host(fresh->biases.data(), static_cast<std::size_t>(nout) * 4, state.biases_offset());
    } else if (old) {
      fresh->biases = old->host_biases();  // as they are when this command runs
    }
    // The one upload of the new values; commands encoded after this reload read them on the device.
    finish_store(*fresh, dev, g);
  });
}

void on_host(const Image& img, const core::TensorView& v, const std::function<void(const core::TensorView&)>& f) {
  if (img.buffer().contents() != nullptr) {
    f(v);
    return;
  }
  std::vector<uint8_t> staging(img.buffer().length());
  img.buffer().copy_to_host(staging.data(), staging.size());
  core::TensorView h = v;
  h.data = staging.data() + (static_cast<uint8_t*>(v.data) - static_cast<uint8_t*>(img.buffer().device_pointer()));
  f(h);
  Buffer b = img.buffer();
  b.copy_from_host(staging.data(), staging.size());
}

void round_view_through_f16(const core::TensorView& v, DataType t, int64_t n, int64_t h, int64_t w, int64_t c) {
  if (t != DataType::float32) return;  // fp16/bf16 images are already at most fp16-precise when stored
  for (int64_t in = 0; in < n; ++in)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        float* px = static_cast<float*>(v.data) + in * v.sn + y * v.sh + x * v.sw;
        for (int64_t k = 0; k < c; ++k) px[k] = core::f16_to_f32(core::f32_to_f16(px[k]));
      }
}

void require_same_device(const Device& a, const Device& b, const char* what) {
  if (!(a == b)) throw_invalid(what, " lives on ", b.name(), " but the kernel runs on ", a.name());
}

void require_not_aliased(const Image& a, const Image& b, const char* a_name, const char* b_name) {
  if (!a.empty() && !b.empty() && a.buffer().same_memory(b.buffer()))
    throw_invalid("the ", a_name, " image aliases the ", b_name, " image (same memory); use a separate image");
}

void require_channels(const Image& img, const char* role, int64_t offset, uint64_t max_count, int64_t needed) {
  if (offset < 0) throw_invalid(role, " feature channel offset ", offset, " is negative");
  const int64_t left = img.feature_channels() - offset;
  const int64_t avail = max_count == all_channels ? left : std::min<int64_t>(left, static_cast<int64_t>(std::min<uint64_t>(max_count, INT64_MAX)));
  if (avail < needed)
    throw_invalid(role, " image has ", img.feature_channels(), " feature channels; from channel offset ", offset,
                  (max_count == all_channels ? std::string() : cat(" with max count ", max_count)), " only ",
                  std::max<int64_t>(avail, 0), " are available but ", needed, " are needed");
}

void require_zero_edge(EdgeMode m, const char* kernel, const char* which) {
  if (m != EdgeMode::zero)
    throw_unsupported(kernel, ": ", which, " edge mode clamp is not supported (e9); only zero is");
}

}  // namespace tconv::api
