// tconv — the property sets shared by kernels (MPSKernel, MPSCNNKernel, MPSCNNBinaryKernel,
// MPSCNNGradientKernel; spec a.6) and the record of a forward encode that gradient states keep (a.8.2).
// Kernels are reference types (like the Objective-C objects they translate): a kernel handle shares its
// properties with its copies, and `properties()` returns a mutable reference into that shared object.
// Properties are read when a command is *encoded*; changing them later does not affect encoded work.
#pragma once

#include <cstdint>
#include <string>

#include "tconv/types.hpp"

namespace tconv {

// Read-write properties of a kernel with one source image (MPSCNNKernel) plus the convolution-specific
// ones (kernelOffsetX/Y, accumulatorPrecisionOption) and tconv's extensions (precision, algorithm).
struct KernelProperties {
  Offset offset{};                                   // source position of clip_rect's origin (z: image index)
  Region clip_rect = Region::no_clip();              // destination region written (z/depth: images)
  int64_t destination_feature_channel_offset = 0;    // first destination channel written (any value, e12)
  int64_t source_feature_channel_offset = 0;         // first source channel read
  uint64_t source_feature_channel_max_count = all_channels;  // source channel slice limit
  EdgeMode edge_mode = EdgeMode::zero;               // clamp is unsupported (e9)
  PaddingMethod padding = padding::default_method;   // sizing of returned images (a.5.5 A)
  int64_t kernel_offset_x = 0, kernel_offset_y = 0;  // transpose: offset in the zero-inserted frame
  // half: the result is rounded through float16 before it is stored (tconv computes in float32 and rounds
  // once, which is the most accurate result an fp16 accumulator could give); full: float32 (default, e6).
  AccumulatorPrecision accumulator_precision = AccumulatorPrecision::full;
  Precision precision = Precision::fp32;  // tconv: inputs rounded to this format before each multiply
  std::string algorithm;                  // tconv: force a registered algorithm by name (empty: choose)
  bool allow_nondeterministic = false;    // tconv: let the chooser pick nondeterministic algorithms
  friend bool operator==(const KernelProperties&, const KernelProperties&) = default;
};

// Read-write properties of a gradient kernel (MPSCNNBinaryKernel + MPSCNNGradientKernel). For gradient
// kernels primary = source gradient gY, secondary = forward source image X (a.6.2).
struct BinaryKernelProperties {
  Offset primary_offset{};     // offset into gY (data gradient)
  Offset secondary_offset{};   // offset into X in X pixels (weight gradient)
  Region clip_rect = Region::no_clip();  // region of the destination gradient written (data gradient only)
  int64_t destination_feature_channel_offset = 0;
  int64_t primary_source_feature_channel_offset = 0;
  int64_t secondary_source_feature_channel_offset = 0;
  uint64_t primary_source_feature_channel_max_count = all_channels;
  uint64_t secondary_source_feature_channel_max_count = all_channels;
  EdgeMode primary_edge_mode = EdgeMode::zero;    // clamp unsupported (e9)
  EdgeMode secondary_edge_mode = EdgeMode::zero;
  // Read-write strides (a.6.2). The data gradient steps gY with the primary strides, the weight gradient
  // steps the zero-inserted X with the secondary strides. Both start as the descriptor's strides.
  int64_t primary_stride_x = 1, primary_stride_y = 1;
  int64_t secondary_stride_x = 1, secondary_stride_y = 1;
  PaddingMethod padding = padding::default_method;
  int64_t kernel_offset_x = 0, kernel_offset_y = 0;  // MPSCNNGradientKernel.kernelOffsetX/Y
  Precision precision = Precision::fp32;
  std::string algorithm;
  bool allow_nondeterministic = false;
  friend bool operator==(const BinaryKernelProperties&, const BinaryKernelProperties&) = default;
};

// What a forward encode records in the gradient state it produces (MPSNNGradientState: "an opaque record
// of the forward kernel's properties at encode time"; MPSImageSizeEncodingState: the source size).
struct ForwardRecord {
  int64_t kernel_width = 1, kernel_height = 1;
  int64_t stride_x = 1, stride_y = 1;
  int64_t dilation_x = 1, dilation_y = 1;
  int64_t input_feature_channels = 1, output_feature_channels = 1, groups = 1;
  Offset offset{};                            // the kernel's offset property
  int64_t kernel_offset_x = 0, kernel_offset_y = 0;
  // Transpose: total offset T = offset·s + kernelOffset (a.5.3). Plain convolution: its offset (x, y).
  int64_t total_offset_x = 0, total_offset_y = 0;
  Region clip_rect = Region::no_clip();
  EdgeMode edge_mode = EdgeMode::zero;
  int64_t source_width = 0, source_height = 0, source_feature_channels = 0;  // the forward's source image
  int64_t destination_width = 0, destination_height = 0;                    // the forward's destination
  friend bool operator==(const ForwardRecord&, const ForwardRecord&) = default;
};

}  // namespace tconv
