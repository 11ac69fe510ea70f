// tconv — ConvolutionDataSource (MPSCNNConvolutionDataSource protocol, spec a.3) and ArrayDataSource, a
// ready-made data source that owns its weights.
// Every protocol member is here: the required ones are pure virtual, the optional ones are virtual with
// the default behaviour MPS shows when a data source does not implement them. Kernels call load() before
// reading weights()/bias_terms() and purge() after, at init and at every reload from the data source.
// Data sources are shared (std::shared_ptr), like the Objective-C objects kernels retain.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tconv/descriptor.hpp"
#include "tconv/types.hpp"

namespace tconv {

class CommandBuffer;
class Device;
class ConvolutionGradientState;
class ConvolutionWeightsAndBiasesState;

// MPSCNNWeightsQuantizationType (b.155).
enum class WeightsQuantizationType : uint32_t { none = 0, linear = 1, lookup_table = 2 };
// MPSCNNConvolutionWeightsLayout (b.154): only OHWI exists.
enum class WeightsLayout : uint32_t { ohwi = 0 };

class ConvolutionDataSource {
 public:
  virtual ~ConvolutionDataSource() = default;

  // ---- required ----
  // Element type of weights(): float32 or float16 (uint8 only for inference kernels, e8).
  virtual DataType data_type() const = 0;
  virtual ConvolutionDescriptor descriptor() const = 0;
  // Nout·kH·kW·(Nin/G) elements of data_type(), OHWI (a.4); valid between load() and purge().
  virtual const void* weights() = 0;
  // Nout float32 biases, or nullptr for "no bias" (= 0).
  virtual const float* bias_terms() = 0;
  // Prepare the data; false makes kernel construction (or a reload) fail with Error(invalid_argument).
  virtual bool load() = 0;
  virtual void purge() = 0;  // balances each load()
  virtual std::string label() const = 0;  // copied to the kernel's label at init
  // NSCopying.
  virtual std::shared_ptr<ConvolutionDataSource> copy() const = 0;

  // ---- optional (defaults are MPS's behaviour when the method is absent) ----
  // Nout (min, max) pairs for linear uint8 quantisation: w = u8/255·(max − min) + min.
  virtual const float* ranges_for_uint8_kernel() { return nullptr; }
  // 256-entry table for lookup-table uint8 quantisation.
  virtual const float* lookup_table_for_uint8_kernel() { return nullptr; }
  virtual WeightsQuantizationType weights_quantization_type() const { return WeightsQuantizationType::none; }
  // GPU-style update hook (training style "GPU"): encode an update of the weights into `command_buffer`
  // and return the state holding the new weights, or a null state for "no update". The caller then
  // reloads the kernels from the returned state. Default: no update.
  virtual ConvolutionWeightsAndBiasesState update(CommandBuffer& command_buffer,
                                                  const ConvolutionGradientState& gradient_state,
                                                  const ConvolutionWeightsAndBiasesState& source_state);
  // CPU-style update hook, called after the command buffer completed: write new weights into the data
  // source's own storage and return true; the caller then reloads the kernels from the data source.
  // Default: false (no update).
  virtual bool update(const ConvolutionGradientState& gradient_state,
                      const ConvolutionWeightsAndBiasesState& source_state);
  // copy(with:device:); default falls back to copy() (NSCopying), as MPS does.
  virtual std::shared_ptr<ConvolutionDataSource> copy_to(const Device& device) const;
  virtual WeightsLayout weights_layout() const { return WeightsLayout::ohwi; }
  // Requested internal weight precision. nullopt (absent): float32 storage (e7, tconv's default);
  // float32 requires data_type() == float32; float16: weights are rounded to fp16 (RNE) at load/reload.
  virtual std::optional<DataType> kernel_weights_data_type() const { return std::nullopt; }
};

// A data source that owns its arrays: weights (float32 or float16 storage, OHWI) and optional float32
// biases. load()/purge() are counted (tests can check that kernels balance them). Thread-safe: the update
// hooks and the accessors take a lock, so several kernels may share one instance.
class ArrayDataSource : public ConvolutionDataSource {
 public:
  // weights: descriptor.weight_elements() values (validated); biases: empty or Nout values.
  // storage = float16 keeps the weights as fp16 (rounded RNE); float32 keeps them as given.
  ArrayDataSource(ConvolutionDescriptor descriptor, std::vector<float> weights, std::vector<float> biases = {},
                  DataType storage = DataType::float32, std::string label = {});

  DataType data_type() const override { return storage_; }
  ConvolutionDescriptor descriptor() const override { return descriptor_; }
  const void* weights() override;
  const float* bias_terms() override;
  bool load() override;
  void purge() override;
  std::string label() const override { return label_; }
  std::shared_ptr<ConvolutionDataSource> copy() const override;
  std::optional<DataType> kernel_weights_data_type() const override { return kernel_weights_type_; }

  // CPU-style update (plain SGD, as a data source with its own optimizer would do): with lr =
  // learning_rate(), weights ← source_state.weights − lr·gradient_for_weights and biases ← source_state.biases
  // − lr·gradient_for_biases, written into this data source's arrays (rounded to its storage type).
  // Returns true; the caller then reloads its kernels from the data source. Reads host memory, so the
  // command buffer that produced the gradients must have completed.
  bool update(const ConvolutionGradientState& gradient_state,
              const ConvolutionWeightsAndBiasesState& source_state) override;
  // GPU-style update: encodes the same SGD step into `command_buffer`, in place on `source_state`, and
  // returns source_state (turicreate's pattern, a.9.5). This data source's own arrays are not touched.
  ConvolutionWeightsAndBiasesState update(CommandBuffer& command_buffer,
                                          const ConvolutionGradientState& gradient_state,
                                          const ConvolutionWeightsAndBiasesState& source_state) override;
  float learning_rate() const { return learning_rate_; }
  void set_learning_rate(float lr) { learning_rate_ = lr; }

  // tconv helpers.
  void set_kernel_weights_data_type(std::optional<DataType> t) { kernel_weights_type_ = t; }
  // The weights as float32 (converted from the storage type) and the biases (empty if none).
  std::vector<float> weights_as_floats() const;
  std::vector<float> biases() const;
  void set_weights(const std::vector<float>& weights);  // same count; rounded to the storage type
  void set_biases(const std::vector<float>& biases);     // empty or Nout
  int load_count() const;   // load() calls not yet balanced by purge()
  int total_loads() const;  // all load() calls so far

 private:
  std::vector<float> weights_as_floats_locked() const;
  mutable std::mutex mu_;
  ConvolutionDescriptor descriptor_;
  DataType storage_;
  std::vector<uint8_t> weights_;  // raw bytes in storage_
  std::vector<float> biases_;
  std::string label_;
  std::optional<DataType> kernel_weights_type_;
  float learning_rate_ = 0.001f;  // MPSNNOptimizerDescriptor's default learning rate
  int loaded_ = 0, total_loads_ = 0;
};

}  // namespace tconv
