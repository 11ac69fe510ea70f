// Optimizers of the object API (include/tconv/optimizer.hpp): argument checks at encode time, then one
// command per encode. On a CUDA queue with every buffer in its memory the command launches one CUDA kernel
// for all segments (cuda/training_backend.hpp, the same rules bit for bit) on the queue's main stream;
// otherwise it runs the engine rules of core/optimizer_math on host views of the buffers.
//
// An update is a list of segments (weights, and biases when they are updated); each segment names the
// gradient, the current values, the result and up to three optimizer-state arrays of the same length.
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/internal.hpp"
#include "api/training_common.hpp"
#include "core/optimizer_math.hpp"
#include "core/status.hpp"
#include "cuda/training_backend.hpp"
#include "tconv/optimizer.hpp"

namespace tconv {
namespace {

using train::FloatRange;
using train::invalid;
using train::message;

struct Segment {
  FloatRange gradient, values, result;
  std::array<std::optional<FloatRange>, 3> state;
};

// The engine rule applied to one segment: (arrays, state0, state1, state2, threads).
using Rule = std::function<void(const core::UpdateArrays&, float*, float*, float*, int)>;
// The same rule on a CUDA device, over all segments at once: (device, stream, segments, count).
using DeviceRule =
    std::function<core::Status(int, void*, const cuda_backend::training::UpdateSegment*, int)>;

float* device_floats(const FloatRange& r) {
  return reinterpret_cast<float*>(static_cast<unsigned char*>(r.buffer.device_pointer()) + r.offset);
}

void encode_update(CommandBuffer& cb, const Device& device, std::string label, std::vector<Segment> segments,
                   Rule rule, DeviceRule device_rule) {
  if (!(cb.device() == device))
    invalid(label, ": the command buffer belongs to ", cb.device().name(), ", the optimizer to ", device.name());
  bool on_gpu = cb.device().kind() == DeviceKind::cuda;
  for (const Segment& s : segments) {
    on_gpu = on_gpu && train::on_cuda_device(cb, {&s.gradient.buffer, &s.values.buffer, &s.result.buffer});
    for (const auto& st : s.state)
      if (st) on_gpu = on_gpu && train::on_cuda_device(cb, {&st->buffer});
  }
  if (on_gpu) {
    if (segments.size() > static_cast<size_t>(cuda_backend::training::kMaxUpdateSegments))
      invalid(label, ": ", segments.size(), " segments in one update; the CUDA kernel takes at most ",
              cuda_backend::training::kMaxUpdateSegments);
    std::vector<cuda_backend::training::UpdateSegment> d(segments.size());
    for (size_t i = 0; i < segments.size(); ++i) {
      const Segment& s = segments[i];
      d[i].gradient = device_floats(s.gradient);
      d[i].values = device_floats(s.values);
      d[i].result = device_floats(s.result);
      for (size_t k = 0; k < 3; ++k)
        if (s.state[k]) d[i].state[k] = device_floats(*s.state[k]);
      d[i].count = s.gradient.count;
    }
    // The segments capture their buffers: they stay alive until the command buffer releases its commands,
    // which is after the stream work that uses them.
    cb.encode(std::move(label), [segments = std::move(segments), d = std::move(d), device_rule = std::move(device_rule),
                                 queue = cb.device()]() {
      core::throw_if_error(device_rule(queue.ordinal(), api::queue_streams(queue).main, d.data(),
                                       static_cast<int>(d.size())));
    });
    return;
  }
  cb.encode(std::move(label), [segments = std::move(segments), rule = std::move(rule), device]() {
    for (const Segment& s : segments) {
      train::HostFloats g(s.gradient, false), v(s.values, false), r(s.result, true);
      std::array<std::unique_ptr<train::HostFloats>, 3> st;
      std::array<float*, 3> sp{nullptr, nullptr, nullptr};
      for (size_t k = 0; k < 3; ++k)
        if (s.state[k]) {
          st[k] = std::make_unique<train::HostFloats>(*s.state[k], true);
          sp[k] = st[k]->data();
        }
      rule({g.data(), v.data(), r.data(), s.gradient.count}, sp[0], sp[1], sp[2], device.num_threads());
      r.finish();
      for (auto& h : st)
        if (h) h->finish();
    }
  });
}

// Vector form: all arrays the length of the gradient.
Segment vector_segment(const char* opt, const FloatVector& gradient, const FloatVector& values,
                       const std::vector<std::pair<const FloatVector*, const char*>>& states,
                       const FloatVector& result) {
  Segment s;
  s.gradient = train::float_range(gradient.buffer, gradient.offset, gradient.length,
                                  message(opt, ": input gradient"));
  const int64_t n = s.gradient.count;
  auto same = [&](const FloatVector& v, const char* role) {
    FloatRange r = train::float_range(v.buffer, v.offset, v.length, message(opt, ": ", role));
    if (r.count != n)
      invalid(opt, ": ", role, " has ", r.count, " values but the input gradient has ", n);
    return r;
  };
  s.values = same(values, "input values");
  s.result = same(result, "result values");
  for (size_t k = 0; k < states.size(); ++k) s.state[k] = same(*states[k].first, states[k].second);
  return s;
}

// Convolution-state form. `lists` are the optimizer-state lists (all of one length: 0, 1 or 2).
std::vector<Segment> state_segments(const char* opt, const ConvolutionGradientState& gradient,
                                    const ConvolutionWeightsAndBiasesState& source,
                                    const ConvolutionWeightsAndBiasesState& result,
                                    const std::vector<std::pair<const std::vector<Buffer>*, const char*>>& lists,
                                    bool allow_empty) {
  if (!gradient) invalid(opt, ": the convolution gradient state is null");
  if (!source) invalid(opt, ": the source weights-and-biases state is null");
  if (!result) invalid(opt, ": the result weights-and-biases state is null");
  size_t entries = 0;
  for (size_t k = 0; k < lists.size(); ++k) {
    const size_t n = lists[k].first->size();
    if (k == 0) entries = n;
    if (n > 2 || (n == 0 && !allow_empty))
      invalid(opt, ": ", lists[k].second, " has ", n, " entries; give 1 (weights) or 2 (weights, biases)");
    if (n != entries)
      invalid(opt, ": ", lists[k].second, " has ", n, " entries but ", lists[0].second, " has ", entries);
  }
  const Buffer& gw = gradient.gradient_for_weights();
  const Buffer& gb = gradient.gradient_for_biases();
  const int64_t nw = gw ? static_cast<int64_t>(gw.length() / 4) : 0;
  const int64_t nb = gb ? static_cast<int64_t>(gb.length() / 4) : 0;

  std::vector<Segment> out;
  Segment w;
  w.gradient = train::float_range_of(gw, 0, nw, message(opt, ": gradient state's weight gradient"));
  if (source.weight_count() != nw)
    invalid(opt, ": the source state has ", source.weight_count(), " weights, the gradient state ", nw);
  if (result.weight_count() != nw)
    invalid(opt, ": the result state has ", result.weight_count(), " weights, the gradient state ", nw);
  w.values = train::float_range_of(source.weights(), source.weights_offset(), nw, message(opt, ": source weights"));
  w.result = train::float_range_of(result.weights(), result.weights_offset(), nw, message(opt, ": result weights"));
  for (size_t k = 0; k < lists.size(); ++k)
    if (entries >= 1)
      w.state[k] = train::float_range_of((*lists[k].first)[0], 0, nw, message(opt, ": ", lists[k].second, "[0]"));
  out.push_back(std::move(w));

  // Biases: with two entries always (and they must exist); with no entries when both states have them.
  const bool biases = entries == 2 || (entries == 0 && source.bias_count() > 0 && result.bias_count() > 0);
  if (biases) {
    if (source.bias_count() != nb)
      invalid(opt, ": the source state has ", source.bias_count(), " biases, the gradient state ", nb,
              " (pass one state vector to leave biases alone)");
    if (result.bias_count() != nb)
      invalid(opt, ": the result state has ", result.bias_count(), " biases, the gradient state ", nb,
              " (pass one state vector to leave biases alone)");
    Segment b;
    b.gradient = train::float_range_of(gb, 0, nb, message(opt, ": gradient state's bias gradient"));
    b.values = train::float_range_of(source.biases(), source.biases_offset(), nb, message(opt, ": source biases"));
    b.result = train::float_range_of(result.biases(), result.biases_offset(), nb, message(opt, ": result biases"));
    for (size_t k = 0; k < lists.size(); ++k)
      if (entries == 2)
        b.state[k] = train::float_range_of((*lists[k].first)[1], 0, nb, message(opt, ": ", lists[k].second, "[1]"));
    out.push_back(std::move(b));
  }
  return out;
}

core::OptimizerCommon common_of(const OptimizerDescriptor& d) {
  core::OptimizerCommon c;
  c.learning_rate = d.learning_rate;
  c.gradient_rescale = d.gradient_rescale;
  c.apply_gradient_clipping = d.apply_gradient_clipping;
  c.gradient_clip_max = d.gradient_clip_max;
  c.gradient_clip_min = d.gradient_clip_min;
  c.regularization = static_cast<core::Regularization>(d.regularization_type);
  c.regularization_scale = d.regularization_scale;
  return c;
}

void require_finite(const char* opt, const char* what, double v) {
  if (!std::isfinite(v)) invalid(opt, ": ", what, " must be finite, got ", v);
}

}  // namespace

// ---------------------------------------------------------------- Optimizer

Optimizer::Optimizer(const Device& device, const OptimizerDescriptor& d) : device_(device), desc_(d) {
  require_finite("optimizer", "learning_rate", d.learning_rate);
  require_finite("optimizer", "gradient_rescale", d.gradient_rescale);
  require_finite("optimizer", "regularization_scale", d.regularization_scale);
  const auto reg = static_cast<uint32_t>(d.regularization_type);
  if (reg > 2) invalid("optimizer: regularization_type ", reg, " is not none (0), L1 (1) or L2 (2)");
  if (std::isnan(d.gradient_clip_min) || std::isnan(d.gradient_clip_max) || d.gradient_clip_min > d.gradient_clip_max)
    invalid("optimizer: gradient_clip_min ", d.gradient_clip_min, " must not exceed gradient_clip_max ",
            d.gradient_clip_max);
}

void Optimizer::set_learning_rate(float learning_rate) {
  require_finite("optimizer", "learning_rate", learning_rate);
  desc_.learning_rate = learning_rate;
}

void Optimizer::set_apply_gradient_clipping(bool apply) { desc_.apply_gradient_clipping = apply; }

// ---------------------------------------------------------------- SGD

OptimizerSGD::OptimizerSGD(const Device& device, float learning_rate)
    : OptimizerSGD(device, 0.0f, false, OptimizerDescriptor{.learning_rate = learning_rate}) {}

OptimizerSGD::OptimizerSGD(const Device& device, float momentum_scale, bool use_nesterov_momentum,
                           const OptimizerDescriptor& descriptor)
    : Optimizer(device, descriptor), momentum_scale_(momentum_scale), nesterov_(use_nesterov_momentum) {
  require_finite("OptimizerSGD", "momentum_scale", momentum_scale);
}

namespace {
Rule sgd_rule(const OptimizerDescriptor& d, float mu, bool nesterov) {
  return [c = common_of(d), p = core::SgdParams{mu, nesterov}](const core::UpdateArrays& a, float* m, float*, float*,
                                                                 int threads) {
    core::sgd_update(c, p, a, m, threads);
  };
}
DeviceRule sgd_device_rule(const OptimizerDescriptor& d, float mu, bool nesterov) {
  return [c = common_of(d), p = core::SgdParams{mu, nesterov}](
             int dev, void* stream, const cuda_backend::training::UpdateSegment* s, int n) {
    return cuda_backend::training::sgd_update(dev, stream, c, p, s, n);
  };
}
}  // namespace

void OptimizerSGD::encode(CommandBuffer& cb, const FloatVector& gradient, const FloatVector& values,
                          const std::optional<FloatVector>& momentum, const FloatVector& result) const {
  if (!momentum && momentum_scale_ != 0.0f)
    invalid("OptimizerSGD: momentum_scale is ", momentum_scale_, " but no momentum vector was given");
  std::vector<std::pair<const FloatVector*, const char*>> states;
  if (momentum) states.emplace_back(&*momentum, "input momentum");
  encode_update(cb, device(), "OptimizerSGD", {vector_segment("OptimizerSGD", gradient, values, states, result)},
                sgd_rule(descriptor(), momentum_scale_, nesterov_),
                sgd_device_rule(descriptor(), momentum_scale_, nesterov_));
}

void OptimizerSGD::encode(CommandBuffer& cb, const ConvolutionGradientState& gradient_state,
                          const ConvolutionWeightsAndBiasesState& source, const std::vector<Buffer>& momentum,
                          ConvolutionWeightsAndBiasesState& result) const {
  if (momentum.empty() && momentum_scale_ != 0.0f)
    invalid("OptimizerSGD: momentum_scale is ", momentum_scale_, " but no momentum vectors were given");
  auto segs = state_segments("OptimizerSGD", gradient_state, source, result, {{&momentum, "input momentum"}}, true);
  // With an empty list the rule gets no momentum array (plain step).
  encode_update(cb, device(), "OptimizerSGD", std::move(segs), sgd_rule(descriptor(), momentum_scale_, nesterov_),
                sgd_device_rule(descriptor(), momentum_scale_, nesterov_));
}

// ---------------------------------------------------------------- RMSProp

OptimizerRMSProp::OptimizerRMSProp(const Device& device, float learning_rate)
    : OptimizerRMSProp(device, 0.9, 1e-8f, OptimizerDescriptor{.learning_rate = learning_rate}) {}

OptimizerRMSProp::OptimizerRMSProp(const Device& device, double decay, float epsilon,
                                   const OptimizerDescriptor& descriptor)
    : Optimizer(device, descriptor), decay_(decay), epsilon_(epsilon) {
  if (!(decay >= 0.0 && decay <= 1.0)) invalid("OptimizerRMSProp: decay ", decay, " must lie in [0, 1]");
  if (!(std::isfinite(epsilon) && epsilon >= 0.0f))
    invalid("OptimizerRMSProp: epsilon ", epsilon, " must be finite and non-negative");
}

namespace {
Rule rmsprop_rule(const OptimizerDescriptor& d, double decay, float eps) {
  return [c = common_of(d), p = core::rmsprop_params(decay, eps)](const core::UpdateArrays& a, float* s, float*,
                                                                    float*, int threads) {
    core::rmsprop_update(c, p, a, s, threads);
  };
}
DeviceRule rmsprop_device_rule(const OptimizerDescriptor& d, double decay, float eps) {
  return [c = common_of(d), p = core::rmsprop_params(decay, eps)](
             int dev, void* stream, const cuda_backend::training::UpdateSegment* s, int n) {
    return cuda_backend::training::rmsprop_update(dev, stream, c, p, s, n);
  };
}
}  // namespace

void OptimizerRMSProp::encode(CommandBuffer& cb, const FloatVector& gradient, const FloatVector& values,
                              const FloatVector& sum_of_squares, const FloatVector& result) const {
  encode_update(cb, device(), "OptimizerRMSProp",
                {vector_segment("OptimizerRMSProp", gradient, values, {{&sum_of_squares, "input sum of squares"}},
                                result)},
                rmsprop_rule(descriptor(), decay_, epsilon_),
                rmsprop_device_rule(descriptor(), decay_, epsilon_));
}

void OptimizerRMSProp::encode(CommandBuffer& cb, const ConvolutionGradientState& gradient_state,
                              const ConvolutionWeightsAndBiasesState& source,
                              const std::vector<Buffer>& sum_of_squares,
                              ConvolutionWeightsAndBiasesState& result) const {
  auto segs = state_segments("OptimizerRMSProp", gradient_state, source, result,
                             {{&sum_of_squares, "input sum of squares"}}, false);
  encode_update(cb, device(), "OptimizerRMSProp", std::move(segs), rmsprop_rule(descriptor(), decay_, epsilon_),
                rmsprop_device_rule(descriptor(), decay_, epsilon_));
}

// ---------------------------------------------------------------- Adam

OptimizerAdam::OptimizerAdam(const Device& device, float learning_rate)
    : OptimizerAdam(device, AdamParameters{}, OptimizerDescriptor{.learning_rate = learning_rate}) {}

OptimizerAdam::OptimizerAdam(const Device& device, const AdamParameters& p, const OptimizerDescriptor& descriptor)
    : Optimizer(device, descriptor), p_(p) {
  if (!(p.beta1 >= 0.0 && p.beta1 < 1.0)) invalid("OptimizerAdam: beta1 ", p.beta1, " must lie in [0, 1)");
  if (!(p.beta2 >= 0.0 && p.beta2 < 1.0)) invalid("OptimizerAdam: beta2 ", p.beta2, " must lie in [0, 1)");
  if (!(std::isfinite(p.epsilon) && p.epsilon >= 0.0f))
    invalid("OptimizerAdam: epsilon ", p.epsilon, " must be finite and non-negative");
}

namespace {
Rule adam_rule(const OptimizerDescriptor& d, const AdamParameters& p, uint64_t t) {
  const float step = core::adam_step_size(d.learning_rate, p.beta1, p.beta2, static_cast<int64_t>(t));
  return [c = common_of(d), ap = core::adam_params(p.beta1, p.beta2, p.epsilon), step](
             const core::UpdateArrays& a, float* m, float* v, float* vmax, int threads) {
    core::adam_update(c, ap, step, a, m, v, vmax, threads);
  };
}
// The same step size (float64, rounded once on the host) as adam_rule.
DeviceRule adam_device_rule(const OptimizerDescriptor& d, const AdamParameters& p, uint64_t t) {
  const float step = core::adam_step_size(d.learning_rate, p.beta1, p.beta2, static_cast<int64_t>(t));
  return [c = common_of(d), ap = core::adam_params(p.beta1, p.beta2, p.epsilon), step](
             int dev, void* stream, const cuda_backend::training::UpdateSegment* s, int n) {
    return cuda_backend::training::adam_update(dev, stream, c, ap, step, s, n);
  };
}
}  // namespace

void OptimizerAdam::encode(CommandBuffer& cb, const FloatVector& gradient, const FloatVector& values,
                           const FloatVector& momentum, const FloatVector& velocity,
                           const std::optional<FloatVector>& maximum_velocity, const FloatVector& result) {
  if (p_.amsgrad && !maximum_velocity) invalid("OptimizerAdam: amsgrad is on but no maximum velocity vector was given");
  if (!p_.amsgrad && maximum_velocity) invalid("OptimizerAdam: a maximum velocity vector was given but amsgrad is off");
  std::vector<std::pair<const FloatVector*, const char*>> states{{&momentum, "input momentum"},
                                                                 {&velocity, "input velocity"}};
  if (maximum_velocity) states.emplace_back(&*maximum_velocity, "maximum velocity");
  Segment s = vector_segment("OptimizerAdam", gradient, values, states, result);
  encode_update(cb, device(), "OptimizerAdam", {std::move(s)}, adam_rule(descriptor(), p_, p_.time_step + 1),
                adam_device_rule(descriptor(), p_, p_.time_step + 1));
  ++p_.time_step;  // only once the encode succeeded
}

void OptimizerAdam::encode(CommandBuffer& cb, const ConvolutionGradientState& gradient_state,
                           const ConvolutionWeightsAndBiasesState& source, const std::vector<Buffer>& momentum,
                           const std::vector<Buffer>& velocity, ConvolutionWeightsAndBiasesState& result) {
  if (p_.amsgrad) invalid("OptimizerAdam: amsgrad is on; use the encode that takes maximum velocity vectors");
  encode_state(cb, gradient_state, source, momentum, velocity, nullptr, result);
}

void OptimizerAdam::encode(CommandBuffer& cb, const ConvolutionGradientState& gradient_state,
                           const ConvolutionWeightsAndBiasesState& source, const std::vector<Buffer>& momentum,
                           const std::vector<Buffer>& velocity, const std::vector<Buffer>& maximum_velocity,
                           ConvolutionWeightsAndBiasesState& result) {
  if (!p_.amsgrad) invalid("OptimizerAdam: maximum velocity vectors were given but amsgrad is off");
  encode_state(cb, gradient_state, source, momentum, velocity, &maximum_velocity, result);
}

void OptimizerAdam::encode_state(CommandBuffer& cb, const ConvolutionGradientState& gradient_state,
                                 const ConvolutionWeightsAndBiasesState& source, const std::vector<Buffer>& momentum,
                                 const std::vector<Buffer>& velocity, const std::vector<Buffer>* maximum_velocity,
                                 ConvolutionWeightsAndBiasesState& result) {
  std::vector<std::pair<const std::vector<Buffer>*, const char*>> lists{{&momentum, "input momentum"},
                                                                        {&velocity, "input velocity"}};
  if (maximum_velocity) lists.emplace_back(maximum_velocity, "maximum velocity");
  auto segs = state_segments("OptimizerAdam", gradient_state, source, result, lists, false);
  encode_update(cb, device(), "OptimizerAdam", std::move(segs), adam_rule(descriptor(), p_, p_.time_step + 1),
                adam_device_rule(descriptor(), p_, p_.time_step + 1));
  ++p_.time_step;
}

}  // namespace tconv
