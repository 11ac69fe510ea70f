// tconv Python bindings — the optimizers (MPSNNOptimizer*, include/tconv/optimizer.hpp) in their
// convolution-state form: update a ConvolutionWeightsAndBiasesState from a gradient state, then reload the
// kernels from it (ConvolutionTranspose.reload_weights_and_biases). Optimizer state vectors (momentum,
// velocity, sum of squares) are Buffers the caller allocates zero-filled and keeps between steps:
// [weights] or [weights, biases].
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "tconv/optimizer.hpp"

namespace tconv::python {

void register_training(nb::module_& m) {
  nb::enum_<RegularizationType>(m, "RegularizationType")
      .value("none", RegularizationType::none)
      .value("l1", RegularizationType::l1)
      .value("l2", RegularizationType::l2);
  nb::class_<OptimizerDescriptor>(m, "OptimizerDescriptor", "MPSNNOptimizerDescriptor.")
      .def("__init__",
           [](OptimizerDescriptor* d, float lr, float rescale, bool clip, float clip_max, float clip_min,
              RegularizationType reg, float reg_scale) {
             new (d) OptimizerDescriptor{lr, rescale, clip, clip_max, clip_min, reg, reg_scale};
           },
           nb::arg("learning_rate") = 0.001f, nb::arg("gradient_rescale") = 1.0f,
           nb::arg("apply_gradient_clipping") = false,
           nb::arg("gradient_clip_max") = std::numeric_limits<float>::max(),
           nb::arg("gradient_clip_min") = std::numeric_limits<float>::lowest(),
           nb::arg("regularization_type") = RegularizationType::none, nb::arg("regularization_scale") = 0.0f)
      .def_rw("learning_rate", &OptimizerDescriptor::learning_rate)
      .def_rw("gradient_rescale", &OptimizerDescriptor::gradient_rescale)
      .def_rw("apply_gradient_clipping", &OptimizerDescriptor::apply_gradient_clipping)
      .def_rw("gradient_clip_max", &OptimizerDescriptor::gradient_clip_max)
      .def_rw("gradient_clip_min", &OptimizerDescriptor::gradient_clip_min)
      .def_rw("regularization_type", &OptimizerDescriptor::regularization_type)
      .def_rw("regularization_scale", &OptimizerDescriptor::regularization_scale);

  nb::class_<Optimizer>(m, "Optimizer", "MPSNNOptimizer: the shared parameters.")
      .def_prop_rw("learning_rate", &Optimizer::learning_rate, &Optimizer::set_learning_rate)
      .def_prop_ro("gradient_rescale", &Optimizer::gradient_rescale)
      .def_prop_ro("regularization_type", &Optimizer::regularization_type)
      .def_prop_ro("regularization_scale", &Optimizer::regularization_scale);

  nb::class_<OptimizerSGD, Optimizer>(m, "OptimizerSGD", "MPSNNOptimizerStochasticGradientDescent.")
      .def(nb::init<const Device&, float>(), nb::arg("device"), nb::arg("learning_rate"))
      .def(nb::init<const Device&, float, bool, const OptimizerDescriptor&>(), nb::arg("device"),
           nb::arg("momentum_scale"), nb::arg("use_nesterov_momentum"), nb::arg("descriptor"))
      .def_prop_ro("momentum_scale", &OptimizerSGD::momentum_scale)
      .def_prop_ro("use_nesterov_momentum", &OptimizerSGD::use_nesterov_momentum)
      .def("encode",
           nb::overload_cast<CommandBuffer&, const ConvolutionGradientState&, const ConvolutionWeightsAndBiasesState&,
                             const std::vector<Buffer>&, ConvolutionWeightsAndBiasesState&>(&OptimizerSGD::encode,
                                                                                            nb::const_),
           nb::arg("command_buffer"), nb::arg("gradient_state"), nb::arg("source_state"),
           nb::arg("input_momentum") = std::vector<Buffer>{}, nb::arg("result_state"));

  nb::class_<OptimizerRMSProp, Optimizer>(m, "OptimizerRMSProp", "MPSNNOptimizerRMSProp.")
      .def(nb::init<const Device&, float>(), nb::arg("device"), nb::arg("learning_rate"))
      .def(nb::init<const Device&, double, float, const OptimizerDescriptor&>(), nb::arg("device"), nb::arg("decay"),
           nb::arg("epsilon"), nb::arg("descriptor"))
      .def_prop_ro("decay", &OptimizerRMSProp::decay)
      .def_prop_ro("epsilon", &OptimizerRMSProp::epsilon)
      .def("encode",
           nb::overload_cast<CommandBuffer&, const ConvolutionGradientState&, const ConvolutionWeightsAndBiasesState&,
                             const std::vector<Buffer>&, ConvolutionWeightsAndBiasesState&>(
               &OptimizerRMSProp::encode, nb::const_),
           nb::arg("command_buffer"), nb::arg("gradient_state"), nb::arg("source_state"),
           nb::arg("input_sum_of_squares"), nb::arg("result_state"));

  nb::class_<AdamParameters>(m, "AdamParameters")
      .def("__init__",
           [](AdamParameters* p, double b1, double b2, float eps, bool ams, uint64_t t) {
             new (p) AdamParameters{b1, b2, eps, ams, t};
           },
           nb::arg("beta1") = 0.9, nb::arg("beta2") = 0.999, nb::arg("epsilon") = 1e-8f, nb::arg("amsgrad") = false,
           nb::arg("time_step") = 0)
      .def_rw("beta1", &AdamParameters::beta1).def_rw("beta2", &AdamParameters::beta2)
      .def_rw("epsilon", &AdamParameters::epsilon).def_rw("amsgrad", &AdamParameters::amsgrad)
      .def_rw("time_step", &AdamParameters::time_step);
  nb::class_<OptimizerAdam, Optimizer>(m, "OptimizerAdam", "MPSNNOptimizerAdam.")
      .def(nb::init<const Device&, float>(), nb::arg("device"), nb::arg("learning_rate"))
      .def(nb::init<const Device&, const AdamParameters&, const OptimizerDescriptor&>(), nb::arg("device"),
           nb::arg("parameters"), nb::arg("descriptor"))
      .def_prop_ro("beta1", &OptimizerAdam::beta1).def_prop_ro("beta2", &OptimizerAdam::beta2)
      .def_prop_ro("epsilon", &OptimizerAdam::epsilon).def_prop_ro("amsgrad", &OptimizerAdam::amsgrad)
      .def_prop_rw("time_step", &OptimizerAdam::time_step, &OptimizerAdam::set_time_step)
      .def("encode",
           nb::overload_cast<CommandBuffer&, const ConvolutionGradientState&, const ConvolutionWeightsAndBiasesState&,
                             const std::vector<Buffer>&, const std::vector<Buffer>&,
                             ConvolutionWeightsAndBiasesState&>(&OptimizerAdam::encode),
           nb::arg("command_buffer"), nb::arg("gradient_state"), nb::arg("source_state"), nb::arg("input_momentum"),
           nb::arg("input_velocity"), nb::arg("result_state"))
      .def("encode_amsgrad",
           nb::overload_cast<CommandBuffer&, const ConvolutionGradientState&, const ConvolutionWeightsAndBiasesState&,
                             const std::vector<Buffer>&, const std::vector<Buffer>&, const std::vector<Buffer>&,
                             ConvolutionWeightsAndBiasesState&>(&OptimizerAdam::encode),
           nb::arg("command_buffer"), nb::arg("gradient_state"), nb::arg("source_state"), nb::arg("input_momentum"),
           nb::arg("input_velocity"), nb::arg("maximum_velocity"), nb::arg("result_state"));
}

}  // namespace tconv::python
