// Helpers shared by the kernels: image views (channel offsets, clip origins and image indices become a
// base-pointer offset; NHWC strides stay the image's), binding a canonical problem to a registered
// algorithm at encode time, and running it on the queue with the device's thread budget.
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

void run_bound(const Device& device, const BoundProblem& b) {
  registry::ExecContext ctx;
  ctx.num_threads = device.num_threads();
  if (device.kind() == DeviceKind::cpu) {
    std::vector<uint8_t> workspace(b.algorithm->workspace_bytes(b.problem));
    core::throw_if_error(b.algorithm->run(b.problem, b.args, workspace.empty() ? nullptr : workspace.data(), ctx));
    return;
  }
  // CUDA: the kernels' weights and biases live in host memory (they are replaced by reloads on the host
  // side of the queue); upload them for this run, and bring a host-side weight gradient back.
  ctx.cuda_device = device.ordinal();
  const core::Geometry& g = b.problem.g;
  const std::size_t wbytes = static_cast<std::size_t>(core::wei_elements(g)) * sizeof(float);
  const std::size_t bbytes = static_cast<std::size_t>(g.c_out) * sizeof(float);
  core::Args a = b.args;
  Buffer wei, bias, dwei, dbias;
  if (a.wei != nullptr) {
    wei = Buffer::from_host(device, a.wei, wbytes);
    a.wei = static_cast<const float*>(wei.device_pointer());
  }
  if (a.bias != nullptr) {
    bias = Buffer::from_host(device, a.bias, bbytes);
    a.bias = static_cast<const float*>(bias.device_pointer());
  }
  if (b.diff_wei_on_host && a.diff_wei != nullptr) {
    dwei = Buffer::from_host(device, a.diff_wei, wbytes);
    a.diff_wei = static_cast<float*>(dwei.device_pointer());
  }
  const std::size_t ws = b.algorithm->workspace_bytes(b.problem);
  Buffer workspace = ws > 0 ? Buffer::allocate(device, ws) : Buffer();
  core::throw_if_error(b.algorithm->run(b.problem, a, workspace ? workspace.device_pointer() : nullptr, ctx));
  core::throw_if_error(cuda_backend::stream_synchronize(device.ordinal(), nullptr));
  if (dwei) dwei.copy_to_host(b.args.diff_wei, wbytes);
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
                           const ConvolutionWeightsAndBiasesState& state) {
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
  cb.encode(std::string(kernel) + " reload weights", [old, fresh, state, n, nout, with_biases, storage] {
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
