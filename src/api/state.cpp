// States (spec a.8, e2, e4): MPSState's resource container, the weights/biases state with its sub-range
// checks, and the gradient states (buffers + the forward's record). Temporary states are ordinary shared
// objects here (see include/tconv/state.hpp).
#include "tconv/state.hpp"

#include "api/internal.hpp"
#include "tconv/convolution.hpp"
#include "tconv/convolution_transpose.hpp"

namespace tconv {

// ---------------------------------------------------------------- State

State::Impl& State::impl() const {
  if (!impl_) api::throw_invalid("use of a null state");
  return *impl_;
}
bool State::is_temporary() const { return impl().temporary; }
std::string State::label() const { return impl().label; }
void State::set_label(std::string label) { impl().label = std::move(label); }
int64_t State::resource_count() const { return static_cast<int64_t>(impl().resources.size()); }
Buffer State::resource(int64_t index) const {
  if (index < 0 || index >= resource_count())
    api::throw_invalid("state resource index ", index, " is outside [0, ", resource_count(), ")");
  return impl().resources[static_cast<std::size_t>(index)];
}
std::size_t State::buffer_size(int64_t index) const { return resource(index).length(); }
std::size_t State::resource_size() const {
  std::size_t total = 0;
  for (const Buffer& b : impl().resources) total += b.length();
  return total;
}
void State::synchronize(CommandBuffer& cb) const {
  std::shared_ptr<Impl> keep = impl_;
  impl();
  cb.encode("state synchronize", [keep] {});  // host memory is coherent: ordering only
}

GradientStateImpl& StateAccess::gradient(const ConvolutionGradientState& s) {
  auto* p = dynamic_cast<GradientStateImpl*>(&s.impl());
  if (p == nullptr) api::throw_invalid("state is not a convolution gradient state");
  return *p;
}
TransposeGradientStateImpl& StateAccess::transpose(const ConvolutionTransposeGradientState& s) {
  auto* p = dynamic_cast<TransposeGradientStateImpl*>(&s.impl());
  if (p == nullptr) api::throw_invalid("state is not a convolution transpose gradient state");
  return *p;
}
std::shared_ptr<State::Impl> StateAccess::ptr(const State& s) { return s.impl_; }

// ---------------------------------------------------------------- weights and biases

namespace {
WeightsStateImpl& wimpl(const State& s) {
  auto* p = dynamic_cast<WeightsStateImpl*>(&s.impl());
  if (p == nullptr) api::throw_invalid("state is not a weights-and-biases state");
  return *p;
}
std::shared_ptr<WeightsStateImpl> make_weights_impl(Buffer w, std::size_t wo, int64_t wc, Buffer b, std::size_t bo,
                                                    int64_t bc) {
  auto p = std::make_shared<WeightsStateImpl>();
  p->weights = std::move(w);
  p->weights_offset = wo;
  p->weight_count = wc;
  p->biases = std::move(b);
  p->biases_offset = bo;
  p->bias_count = bc;
  p->resources.push_back(p->weights);
  if (p->biases) p->resources.push_back(p->biases);
  return p;
}
}  // namespace

ConvolutionWeightsAndBiasesState::ConvolutionWeightsAndBiasesState(Buffer weights, Buffer biases) {
  if (!weights) api::throw_invalid("weights-and-biases state: the weights buffer is null");
  if (weights.length() % 4 != 0 || weights.length() == 0)
    api::throw_invalid("weights-and-biases state: weights buffer of ", weights.length(),
                       " bytes is not a positive multiple of 4 (float32)");
  if (biases && biases.length() % 4 != 0)
    api::throw_invalid("weights-and-biases state: biases buffer of ", biases.length(), " bytes is not a multiple of 4");
  if (biases && !(biases.device() == weights.device()))
    api::throw_invalid("weights-and-biases state: weights and biases live on different devices");
  const int64_t wc = static_cast<int64_t>(weights.length() / 4);
  const int64_t bc = biases ? static_cast<int64_t>(biases.length() / 4) : 0;
  impl_ = make_weights_impl(std::move(weights), 0, wc, std::move(biases), 0, bc);
}

ConvolutionWeightsAndBiasesState::ConvolutionWeightsAndBiasesState(const Device& device, const ConvolutionDescriptor& d) {
  d.validate();
  const int64_t wc = d.weight_elements(), bc = d.output_feature_channels;
  impl_ = make_weights_impl(Buffer::allocate(device, static_cast<std::size_t>(wc) * 4), 0, wc,
                            Buffer::allocate(device, static_cast<std::size_t>(bc) * 4), 0, bc);
}

ConvolutionWeightsAndBiasesState::ConvolutionWeightsAndBiasesState(Buffer weights, std::size_t wo, Buffer biases,
                                                                   std::size_t bo, const ConvolutionDescriptor& d) {
  d.validate();
  if (!weights) api::throw_invalid("weights-and-biases state: the weights buffer is null");
  const int64_t wc = d.weight_elements(), bc = d.output_feature_channels;
  const std::size_t wbytes = static_cast<std::size_t>(wc) * 4, bbytes = static_cast<std::size_t>(bc) * 4;
  if (wo % 4 != 0) api::throw_invalid("weights offset ", wo, " is not a multiple of 4");
  if (wo > weights.length() || wbytes > weights.length() - wo)
    api::throw_invalid("weights offset ", wo, " + ", wbytes, " bytes (Nout·kH·kW·Nin/G·4) exceeds the weights buffer of ",
                       weights.length(), " bytes");
  if (biases) {
    if (bo % 4 != 0) api::throw_invalid("biases offset ", bo, " is not a multiple of 4");
    if (bo > biases.length() || bbytes > biases.length() - bo)
      api::throw_invalid("biases offset ", bo, " + ", bbytes, " bytes (Nout·4) exceeds the biases buffer of ",
                         biases.length(), " bytes");
    if (!(biases.device() == weights.device()))
      api::throw_invalid("weights-and-biases state: weights and biases live on different devices");
  }
  const bool has_b = static_cast<bool>(biases);
  impl_ = make_weights_impl(std::move(weights), wo, wc, std::move(biases), bo, has_b ? bc : 0);
}

ConvolutionWeightsAndBiasesState ConvolutionWeightsAndBiasesState::temporary(const CommandBuffer& cb,
                                                                             const ConvolutionDescriptor& d) {
  ConvolutionWeightsAndBiasesState s(cb.device(), d);
  s.impl().temporary = true;
  return s;
}

const Buffer& ConvolutionWeightsAndBiasesState::weights() const { return wimpl(*this).weights; }
const Buffer& ConvolutionWeightsAndBiasesState::biases() const { return wimpl(*this).biases; }
std::size_t ConvolutionWeightsAndBiasesState::weights_offset() const { return wimpl(*this).weights_offset; }
std::size_t ConvolutionWeightsAndBiasesState::biases_offset() const { return wimpl(*this).biases_offset; }
int64_t ConvolutionWeightsAndBiasesState::weight_count() const { return wimpl(*this).weight_count; }
int64_t ConvolutionWeightsAndBiasesState::bias_count() const { return wimpl(*this).bias_count; }
float* ConvolutionWeightsAndBiasesState::weight_data() const {
  WeightsStateImpl& w = wimpl(*this);
  void* p = const_cast<void*>(w.weights.contents());
  return p ? reinterpret_cast<float*>(static_cast<uint8_t*>(p) + w.weights_offset) : nullptr;
}
float* ConvolutionWeightsAndBiasesState::bias_data() const {
  WeightsStateImpl& w = wimpl(*this);
  if (!w.biases) return nullptr;
  void* p = const_cast<void*>(w.biases.contents());
  return p ? reinterpret_cast<float*>(static_cast<uint8_t*>(p) + w.biases_offset) : nullptr;
}

// ---------------------------------------------------------------- gradient states

namespace {
template <class T>
std::shared_ptr<T> new_grad_impl(const Device& device, const ConvolutionDescriptor& d, bool temporary) {
  auto p = std::make_shared<T>();
  p->descriptor = d;
  p->temporary = temporary;
  p->grad_weights = Buffer::allocate(device, static_cast<std::size_t>(d.weight_elements()) * 4);
  p->grad_biases = Buffer::allocate(device, static_cast<std::size_t>(d.output_feature_channels) * 4);
  p->resources = {p->grad_weights, p->grad_biases};
  return p;
}
}  // namespace

std::shared_ptr<GradientStateImpl> new_gradient_state_impl(const Device& device, const ConvolutionDescriptor& d,
                                                           bool temporary) {
  return new_grad_impl<GradientStateImpl>(device, d, temporary);
}
std::shared_ptr<TransposeGradientStateImpl> new_transpose_state_impl(const Device& device, const ConvolutionDescriptor& d,
                                                                     bool temporary) {
  return new_grad_impl<TransposeGradientStateImpl>(device, d, temporary);
}

const Buffer& ConvolutionGradientState::gradient_for_weights() const { return StateAccess::gradient(*this).grad_weights; }
const Buffer& ConvolutionGradientState::gradient_for_biases() const { return StateAccess::gradient(*this).grad_biases; }
int64_t ConvolutionGradientState::source_width() const { return StateAccess::gradient(*this).record.source_width; }
int64_t ConvolutionGradientState::source_height() const { return StateAccess::gradient(*this).record.source_height; }
const ForwardRecord& ConvolutionGradientState::forward() const { return StateAccess::gradient(*this).record; }
ConvolutionDescriptor ConvolutionGradientState::descriptor() const { return StateAccess::gradient(*this).descriptor; }
bool ConvolutionGradientState::gradients_initialised() const {
  GradientStateImpl& g = StateAccess::gradient(*this);
  std::lock_guard<std::mutex> lock(g.mu);
  return g.initialised;
}

Convolution ConvolutionGradientState::convolution() const {
  GradientStateImpl& g = StateAccess::gradient(*this);
  if (auto* t = dynamic_cast<TransposeGradientStateImpl*>(&g)) {
    if (!t->paired)
      api::throw_invalid("convolution() of a transpose gradient state made without a paired convolution gradient "
                         "state: there is no convolution (use convolution_transpose())");
    return t->paired.convolution();
  }
  if (!g.conv) api::throw_invalid("convolution gradient state has no producing convolution");
  return KernelAccess::make(g.conv);
}

ConvolutionTranspose ConvolutionTransposeGradientState::convolution_transpose() const {
  TransposeGradientStateImpl& t = StateAccess::transpose(*this);
  if (!t.transpose) api::throw_invalid("transpose gradient state has no producing transpose kernel");
  return KernelAccess::make(t.transpose);
}

ConvolutionGradientState ConvolutionTransposeGradientState::paired_convolution_state() const {
  return StateAccess::transpose(*this).paired;
}

}  // namespace tconv
