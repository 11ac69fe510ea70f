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
}  // namespace

uint64_t weight_uploads() noexcept { return g_weight_uploads.load(std::memory_order_relaxed); }

void finish_store(WeightStore& s, const Device& device, const core::ConvGeometry* conv) {
  if (conv != nullptr) {
    s.canonical.resize(s.weights.size());
    core::conv_weights_to_transpose(*conv, s.weights.data(), s.canonical.data());
  } else {
    s.canonical.clear();
  }
  if (device.kind() != DeviceKind::cuda) {
    s.device_weights = Buffer();
    s.device_biases = Buffer();
    return;
  }
  // New buffers, never the ones a copied store shares: commands that snapshotted the old store may still
  // read those.
  const float* w = s.canonical_host();
  s.device_weights = Buffer::from_host(device, w, s.weights.size() * sizeof(float));
  s.device_biases = Buffer::from_host(device, s.biases.data(), s.biases.size() * sizeof(float));
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
                                                       const std::shared_ptr<WeightStore>& weights, bool temporary) {
  require_same_device(device, cb.device(), "the command buffer");
  ConvolutionWeightsAndBiasesState s(device, desc);
  s.impl().temporary = temporary;
  std::shared_ptr<WeightStore> w = snapshot(mu, weights);
  cb.encode(std::string(kernel) + " export weights", [w, s] {
    Buffer wb = s.weights(), bb = s.biases();
    wb.copy_from_host(w->weights.data(), w->weights.size() * sizeof(float), s.weights_offset());
    bb.copy_from_host(w->biases.data(), w->biases.size() * sizeof(float), s.biases_offset());
  });
  return s;
}

void encode_reload_weights(CommandBuffer& cb, const Device& device, const char* kernel, const ConvolutionDescriptor& desc,
                           DataType storage, std::mutex& mu, std::shared_ptr<WeightStore>& weights,
                           const ConvolutionWeightsAndBiasesState& state, const core::ConvGeometry* conv) {
  if (!state) throw_invalid(kernel, ": reload from a null weights-and-biases state");
  require_same_device(device, cb.device(), "the command buffer");
  const int64_t n = desc.weight_elements();
  if (state.weight_count() < n)
    throw_invalid(kernel, ": the weights state holds ", state.weight_count() * 4, " bytes from offset ",
                  state.weights_offset(), "; the kernel needs ", n * 4, " (4·Nout·kH·kW·Nin/G)");
  const bool with_biases = state.biases() && state.bias_count() >= desc.output_feature_channels;
  std::shared_ptr<WeightStore> old, fresh;
  {
    std::lock_guard<std::mutex> lock(mu);
    old = weights;
    fresh = std::make_shared<WeightStore>(*old);
    weights = fresh;
  }
  const int64_t nout = desc.output_feature_channels;
  std::optional<core::ConvGeometry> geometry;
  if (conv != nullptr) geometry = *conv;
  Device dev = device;
  cb.encode(std::string(kernel) + " reload weights", [old, fresh, state, n, nout, with_biases, storage, geometry, dev] {
    fresh->weights.resize(static_cast<std::size_t>(n));
    state.weights().copy_to_host(fresh->weights.data(), static_cast<std::size_t>(n) * 4, state.weights_offset());
    round_to_storage(fresh->weights, storage);
    if (with_biases) {
      fresh->biases.resize(static_cast<std::size_t>(nout));
      state.biases().copy_to_host(fresh->biases.data(), static_cast<std::size_t>(nout) * 4, state.biases_offset());
      fresh->has_bias = true;
    } else {
      fresh->biases = old->biases;  // as they are when this command runs
      fresh->has_bias = old->has_bias;
    }
    // The one upload of the new values; commands encoded after this reload read them on the device.
    finish_store(*fresh, dev, geometry ? &*geometry : nullptr);
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
