// tconv — conversions between MPS conventions and PyTorch's (spec a.13, e13).
//
// Weights. MPS (and tconv) store every convolution weight OHWI [Nout][kH][kW][Nin/G], input channel
// fastest, and the transposed convolution applies it unrotated (spec a.4). PyTorch stores
//   ConvTranspose2d: [Nin][Nout/G][kH][kW], applied rotated:
//       Wpt[g·Ig + c][o − g·Og][kH−1−q][kW−1−p] = W[o][q][p][c]    (g = o / Og, Ig = Nin/G, Og = Nout/G)
//   Conv2d:          [Nout][Nin/G][kH][kW], same orientation as MPS (both are cross-correlations):
//       Wpt[o][c][q][p] = W[o][q][p][c]
// (for a transpose "Nin" is the channel count of its source X, "Nout" that of its result Y).
//
// Geometry. A ConvTranspose2d's padding P relates to MPS's total offset T = offset·s + kernelOffset by
//   T = P + h − (ke − 1),  ke = (k − 1)·d + 1,  h = floor(ke / 2)
// and MPS splits T as offset = floor(T/s), kernelOffset = mod(T, s). PyTorch's output size is
//   out = (in − 1)·s − 2·P + d·(k − 1) + output_padding + 1.
//
// Every function checks its sizes and throws tconv::Error(invalid_argument) naming the offending values.
#pragma once

#include <cstdint>
#include <vector>

namespace tconv {

// Channel and kernel sizes of a weight tensor, named from the layer's point of view.
struct WeightShape {
  int64_t in_channels = 1;   // Nin: channels the layer reads
  int64_t out_channels = 1;  // Nout: channels the layer writes
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t groups = 1;
  int64_t elements() const;  // Nout·kH·kW·Nin/G (the same count in every layout)
};

// ConvTranspose2d: PyTorch [Nin][Nout/G][kH][kW] (rotated) <-> MPS OHWI [Nout][kH][kW][Nin/G].
std::vector<float> transpose_weights_from_torch(const std::vector<float>& torch_weights, const WeightShape& s);
std::vector<float> transpose_weights_to_torch(const std::vector<float>& mps_weights, const WeightShape& s);
void transpose_weights_from_torch(const float* torch_weights, float* mps_weights, const WeightShape& s);
void transpose_weights_to_torch(const float* mps_weights, float* torch_weights, const WeightShape& s);

// Conv2d: PyTorch [Nout][Nin/G][kH][kW] <-> MPS OHWI [Nout][kH][kW][Nin/G].
std::vector<float> conv_weights_from_torch(const std::vector<float>& torch_weights, const WeightShape& s);
std::vector<float> conv_weights_to_torch(const std::vector<float>& mps_weights, const WeightShape& s);
void conv_weights_from_torch(const float* torch_weights, float* mps_weights, const WeightShape& s);
void conv_weights_to_torch(const float* mps_weights, float* torch_weights, const WeightShape& s);

// PyTorch ConvTranspose2d geometry.
struct TorchTransposeGeometry {
  struct HW {
    int64_t h = 0, w = 0;
    friend bool operator==(const HW&, const HW&) = default;
  };
  HW stride{1, 1};
  HW padding{0, 0};
  HW output_padding{0, 0};
  HW dilation{1, 1};
  int64_t groups = 1;
  friend bool operator==(const TorchTransposeGeometry&, const TorchTransposeGeometry&) = default;
};

// MPS's per-axis split of the total offset: offset (source pixels) and kernelOffset (in [0, s)).
struct MpsTransposeOffsets {
  int64_t offset_x = 0, offset_y = 0;
  int64_t kernel_offset_x = 0, kernel_offset_y = 0;
  friend bool operator==(const MpsTransposeOffsets&, const MpsTransposeOffsets&) = default;
};

// One axis: PyTorch padding -> MPS total offset T, and back.
int64_t mps_total_offset_from_torch_padding(int64_t padding, int64_t kernel, int64_t dilation);
int64_t torch_padding_from_mps_total_offset(int64_t total_offset, int64_t kernel, int64_t dilation);

// The MPS offsets reproducing a ConvTranspose2d (output_padding only changes the size, not the offsets).
MpsTransposeOffsets mps_offsets_from_torch(const TorchTransposeGeometry& t, int64_t kernel_h, int64_t kernel_w);

// The ConvTranspose2d reproducing an MPS transpose with these offsets, sizes and parameters. Throws when
// PyTorch cannot express it: padding < 0 (pad the source first) or output_padding outside
// [0, max(stride, dilation)) on an axis.
TorchTransposeGeometry torch_from_mps(const MpsTransposeOffsets& o, int64_t kernel_h, int64_t kernel_w,
                                      TorchTransposeGeometry::HW stride, TorchTransposeGeometry::HW dilation,
                                      int64_t groups, TorchTransposeGeometry::HW in_size,
                                      TorchTransposeGeometry::HW out_size);

// PyTorch's ConvTranspose2d output size on one axis; throws when it is not positive.
int64_t torch_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t padding,
                                    int64_t output_padding);
// PyTorch's Conv2d output size on one axis: floor((in + 2·P − d·(k − 1) − 1)/s) + 1; throws when ≤ 0.
int64_t torch_conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t padding);

}  // namespace tconv
