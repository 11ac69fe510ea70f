// Neuron kernels and the MSE loss kernel of the object API (include/tconv/neuron.hpp, loss.hpp): argument
// checks at encode time, then one command. On a CUDA queue with every image in its memory the command launches
// the CUDA kernels (cuda/training_backend.hpp) on the queue's main stream and returns without waiting;
// otherwise it runs the element-wise engine math of core/pointwise on host views of the images.
#include <cmath>
#include <utility>

#include "api/internal.hpp"
#include "api/training_common.hpp"
#include "core/pointwise.hpp"
#include "core/status.hpp"
#include "cuda/training_backend.hpp"
#include "tconv/loss.hpp"
#include "tconv/neuron.hpp"

namespace tconv {
namespace {

using train::invalid;

void require_known(const NeuronDescriptor& n, const char* kernel) {
  if (static_cast<uint8_t>(n.type) > static_cast<uint8_t>(NeuronType::gelu))
    invalid(kernel, ": unknown neuron type ", static_cast<int>(n.type));
}

void require_device(const CommandBuffer& cb, const Device& device, const char* kernel) {
  if (!(cb.device() == device))
    invalid(kernel, ": the command buffer belongs to ", cb.device().name(), ", the kernel to ", device.name());
}

core::ConstArray const_array(train::HostImage& h, const Image& i) { return {h.data(), i.data_type()}; }
core::MutArray mut_array(train::HostImage& h, const Image& i) { return {h.data(), i.data_type()}; }

// The queue's main stream: the one every command of a command buffer issues to, in encode order.
void* main_stream(const Device& queue) { return api::queue_streams(queue).main; }
const void* dptr(const Image& i) { return i.buffer().device_pointer(); }
void* mut_dptr(const Image& i) { return i.buffer().device_pointer(); }

}  // namespace

// ---------------------------------------------------------------- NeuronKernel

NeuronKernel::NeuronKernel(const Device& device, const NeuronDescriptor& neuron) : device_(device), neuron_(neuron) {
  require_known(neuron, "NeuronKernel");
}

void NeuronKernel::encode(CommandBuffer& cb, const Image& source, const Image& destination) const {
  constexpr const char* k = "NeuronKernel";
  require_device(cb, device_, k);
  train::require_image(source, k, "source");
  train::require_image(destination, k, "destination");
  train::require_same_shape(source, "source", destination, "destination", k);
  train::require_alias_ok(source, "source", destination, "destination", k);
  if (train::on_cuda_device(cb, {&source.buffer(), &destination.buffer()})) {
    cb.encode(k, [n = neuron_, source, destination, queue = cb.device()]() {
      core::throw_if_error(cuda_backend::training::neuron_forward(queue.ordinal(), main_stream(queue), n, dptr(source),
                                                                  source.data_type(), mut_dptr(destination),
                                                                  destination.data_type(), source.element_count()));
    });
    return;
  }
  cb.encode(k, [n = neuron_, source, destination, device = device_]() {
    train::HostImage x(source, false), y(destination, true);
    core::neuron_forward(n, const_array(x, source), mut_array(y, destination), source.element_count(),
                         device.num_threads());
    y.finish();
  });
}

Image NeuronKernel::encode(CommandBuffer& cb, const Image& source) const {
  train::require_image(source, "NeuronKernel", "source");
  Image destination(device_, source.descriptor());
  encode(cb, source, destination);
  return destination;
}

// ---------------------------------------------------------------- NeuronGradient

NeuronGradient::NeuronGradient(const Device& device, const NeuronDescriptor& neuron)
    : device_(device), neuron_(neuron) {
  require_known(neuron, "NeuronGradient");
}

void NeuronGradient::encode(CommandBuffer& cb, const Image& gy, const Image& x, const Image& gx) const {
  constexpr const char* k = "NeuronGradient";
  require_device(cb, device_, k);
  train::require_image(gy, k, "source gradient");
  train::require_image(x, k, "source");
  train::require_image(gx, k, "destination gradient");
  train::require_same_shape(gy, "source gradient", x, "source", k);
  train::require_same_shape(gy, "source gradient", gx, "destination gradient", k);
  train::require_alias_ok(gy, "source gradient", gx, "destination gradient", k);
  train::require_alias_ok(x, "source", gx, "destination gradient", k);
  if (train::on_cuda_device(cb, {&gy.buffer(), &x.buffer(), &gx.buffer()})) {
    cb.encode(k, [n = neuron_, gy, x, gx, queue = cb.device()]() {
      core::throw_if_error(cuda_backend::training::neuron_gradient(queue.ordinal(), main_stream(queue), n, dptr(gy),
                                                                   gy.data_type(), dptr(x), x.data_type(), mut_dptr(gx),
                                                                   gx.data_type(), gy.element_count()));
    });
    return;
  }
  cb.encode(k, [n = neuron_, gy, x, gx, device = device_]() {
    train::HostImage hgy(gy, false), hx(x, false), hgx(gx, true);
    core::neuron_gradient(n, const_array(hgy, gy), const_array(hx, x), mut_array(hgx, gx), gy.element_count(),
                          device.num_threads());
    hgx.finish();
  });
}

Image NeuronGradient::encode(CommandBuffer& cb, const Image& gy, const Image& x) const {
  train::require_image(gy, "NeuronGradient", "source gradient");
  Image gx(device_, gy.descriptor());
  encode(cb, gy, x, gx);
  return gx;
}

// ---------------------------------------------------------------- MSELoss

MSELoss::MSELoss(const Device& device, const MSELossDescriptor& descriptor) : device_(device), desc_(descriptor) {
  if (!std::isfinite(descriptor.weight)) invalid("MSELoss: weight must be finite, got ", descriptor.weight);
}

namespace {
void check_pair(const Image& p, const Image& t) {
  train::require_image(p, "MSELoss", "predictions");
  train::require_image(t, "MSELoss", "targets");
  train::require_same_shape(p, "predictions", t, "targets", "MSELoss");
}
}  // namespace

void MSELoss::encode_forward(CommandBuffer& cb, const Image& p, const Image& t, Buffer loss,
                             std::size_t offset) const {
  require_device(cb, device_, "MSELoss");
  check_pair(p, t);
  const train::FloatRange out = train::float_range_of(loss, offset, 1, "MSELoss: loss buffer");
  if (train::on_cuda_device(cb, {&p.buffer(), &t.buffer(), &out.buffer})) {
    // The block sums' scratch, allocated now (errors reach the caller) from the stream-ordered pool and
    // released with the command, after the queued kernels that use it (cuda/backend.hpp).
    Buffer scratch = Buffer::allocate(cb.device(), cuda_backend::training::mse_loss_workspace(p.element_count()));
    cb.encode("MSELoss forward", [p, t, out, scratch, w = static_cast<double>(desc_.weight), queue = cb.device()]() {
      float* result = reinterpret_cast<float*>(static_cast<unsigned char*>(out.buffer.device_pointer()) + out.offset);
      core::throw_if_error(cuda_backend::training::mse_loss(queue.ordinal(), main_stream(queue), dptr(p),
                                                            p.data_type(), dptr(t), t.data_type(), p.element_count(),
                                                            w, result, scratch.device_pointer()));
    });
    return;
  }
  cb.encode("MSELoss forward", [p, t, out, w = static_cast<double>(desc_.weight), device = device_]() {
    train::HostImage hp(p, false), ht(t, false);
    train::HostFloats result(out, true);
    const double value = core::mse_loss(const_array(hp, p), const_array(ht, t), p.element_count(), w,
                                        device.num_threads());
    result.data()[0] = static_cast<float>(value);
    result.finish();
  });
}

void MSELoss::encode_gradient(CommandBuffer& cb, const Image& p, const Image& t, const Image& g) const {
  require_device(cb, device_, "MSELoss");
  check_pair(p, t);
  train::require_image(g, "MSELoss", "gradient");
  train::require_same_shape(p, "predictions", g, "gradient", "MSELoss");
  train::require_alias_ok(p, "predictions", g, "gradient", "MSELoss");
  train::require_alias_ok(t, "targets", g, "gradient", "MSELoss");
  if (train::on_cuda_device(cb, {&p.buffer(), &t.buffer(), &g.buffer()})) {
    // core::mse_loss_gradient's factor, rounded once to float32 the same way.
    const float factor = static_cast<float>(2.0 * static_cast<double>(desc_.weight) /
                                            static_cast<double>(p.element_count()));
    cb.encode("MSELoss gradient", [p, t, g, factor, queue = cb.device()]() {
      core::throw_if_error(cuda_backend::training::mse_loss_gradient(queue.ordinal(), main_stream(queue), dptr(p),
                                                                     p.data_type(), dptr(t), t.data_type(), mut_dptr(g),
                                                                     g.data_type(), p.element_count(), factor));
    });
    return;
  }
  cb.encode("MSELoss gradient", [p, t, g, w = static_cast<double>(desc_.weight), device = device_]() {
    train::HostImage hp(p, false), ht(t, false), hg(g, true);
    core::mse_loss_gradient(const_array(hp, p), const_array(ht, t), mut_array(hg, g), p.element_count(), w,
                            device.num_threads());
    hg.finish();
  });
}

Image MSELoss::encode_gradient(CommandBuffer& cb, const Image& p, const Image& t) const {
  train::require_image(p, "MSELoss", "predictions");
  Image g(device_, p.descriptor());
  encode_gradient(cb, p, t, g);
  return g;
}

}  // namespace tconv
