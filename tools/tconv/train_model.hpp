// The convolutional auto-encoder of the main job (issue 6), built only from tconv's object API:
//
//   X [n][28][28][1]
//   enc1  Convolution 1→32, k4 s2 (PyTorch padding 1)   → 14×14×32, ReLU
//   enc2  Convolution 32→64, k4 s2                        →  7×7×64, ReLU
//   dec1  ConvolutionTranspose 64→32, k4 s2, sized by enc2's gradient state (auto-encoder pairing, spec
//         a.5.5 B: it undoes enc2)                         → 14×14×32, ReLU
//   dec2  ConvolutionTranspose 32→1, sized by enc1's gradient state (undoes enc1) → 28×28×1, sigmoid
//   loss  mean squared error against X
//
// A training step is the MPS wiring of spec a.9.5, on one command buffer: the forward encodes produce the
// gradient states (the transposes' training encode returns a ConvolutionTransposeGradientState), the
// gradient kernels write dX and, into the states, dW and db; one Adam optimizer per layer updates the
// layer's ConvolutionWeightsAndBiasesState in place from the state's gradients; every kernel that reads
// weights reloads them from that state on the same command buffer (GPU form; on a CUDA device a device-side
// copy, no host round trip). The data sources are brought up to the states only when the model is saved.
//
// Initialisation is PyTorch's default (U(±1/√fan_in), see train_rng.hpp), drawn in PyTorch's tensor
// order and converted to MPS OHWI with tconv/convert.hpp, so scripts/train_torch.py starts from the same
// weights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tconv/device.hpp"

namespace tconv {
class Communicator;
}

namespace tconv::cli::train {

inline constexpr int64_t kImageSide = 28;
inline constexpr int64_t kImagePixels = kImageSide * kImageSide;

// What the model file records about the run that produced it (coder scalars under "train.").
struct TrainingRecord {
  int64_t epochs = 0;
  int64_t batch = 0;
  double learning_rate = 0;
  uint64_t seed = 0;
  int64_t train_images = 0;
  int64_t test_images = 0;
  int64_t eval_batch = 0;
  double test_mse = 0;  // the final test MSE, which `tconv reconstruct` must reproduce exactly
  std::string device_kind = "cpu";  // where it was computed ("cpu" or "cuda"): results are exact per kind
};

class AutoEncoder {
 public:
  // A fresh model with PyTorch's default initialisation drawn from SplitMix64(seed).
  AutoEncoder(const Device& device, uint64_t seed, float learning_rate);
  // Decodes a model saved by save() (the kernels' decode init path). Throws Error(io_error/format_error).
  static AutoEncoder load(const std::string& path, const Device& device, TrainingRecord* record = nullptr);
  ~AutoEncoder();
  AutoEncoder(AutoEncoder&&) noexcept;
  AutoEncoder& operator=(AutoEncoder&&) noexcept;

  // One Adam step on `n` images ([n][28][28] in [0, 1]); returns the batch's MSE loss (the loss kernel's).
  // Data-parallel (train_parallel.hpp): with `comm`, each layer's weight and bias gradients are all-reduced
  // as soon as its gradient kernel is encoded — dec2's first, while the data gradients of the layers below
  // are still being computed — each rank's weighted by `share` (its part of the global batch), and so is
  // the loss; the optimizers wait for the reductions. The returned loss is then the global batch's.
  double train_step(const float* images, int64_t n, const Communicator* comm = nullptr, float share = 1.0f);
  // Forward pass only: writes the reconstructions ([n][28][28]) when `out` is non-null and returns the
  // sum of squared errors over the n·784 pixels (float64, summed in index order: reproducible).
  double reconstruct(const float* images, int64_t n, float* out);
  // Test MSE over `count` images, evaluated in batches of `batch` (fixed, so the value is reproducible).
  double evaluate(const float* images, int64_t count, int64_t batch);

  // Saves every kernel (the four forward kernels with their weights, the four gradient kernels' settings)
  // through the coder into one safetensors file, atomically.
  void save(const std::string& path, const TrainingRecord& record) const;

  // FNV-1a over the float32 bytes of every weight and bias in PyTorch's layout and parameter order;
  // scripts/train_torch.py prints the same fingerprint for its initial weights.
  std::string fingerprint() const;
  // The current weights of each layer in PyTorch's layout ("enc1.weight", "enc1.bias", ...), in order.
  std::vector<std::pair<std::string, std::vector<float>>> torch_parameters() const;

  struct Impl;

 private:
  explicit AutoEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tconv::cli::train
