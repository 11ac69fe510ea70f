// Fashion-MNIST for `tconv train`: the IDX files (idx3 images, idx1 labels), gzip-compressed or not.
// Debian's dataset-fashion-mnist installs them in /usr/share/datasets/fashion-mnist; `--data DIR` points
// elsewhere. Images become float32 in [0, 1] (byte / 255), one 28×28 single-channel image after another,
// which is both NHWC and NCHW for one channel, so the same array feeds tconv and the PyTorch peer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tconv::cli::train {

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  int64_t count = 0;
  int64_t height = 0;
  int64_t width = 0;
  std::vector<float> pixels;    // [count][height][width], values byte/255
  std::vector<uint8_t> labels;  // [count] (0..9); empty when the label file was not read
  const float* image(int64_t i) const { return pixels.data() + i * height * width; }
  int64_t pixels_per_image() const { return height * width; }
};

// Reads "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels (split = "train" or "t10k").
// `limit` > 0 keeps only the first `limit` images. Throws Error(io_error) when a file is missing (the message
// says where it looked and how to install the data) and Error(format_error) when a file is corrupt
// (bad gzip stream, wrong magic number, truncated, or image and label counts that disagree).
Dataset load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit = 0);

// The raw bytes of a file, inflated when it is gzip-compressed (detected by its magic bytes, so a file
// that was gunzipped in place still reads). Throws like load_fashion_mnist.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

// Parses an IDX buffer. `expected_dims` 3 for images, 1 for labels. Throws Error(format_error) naming
// `what` (the file) and the offending value.
void parse_idx(const std::vector<uint8_t>& bytes, int expected_dims, const std::string& what,
               std::vector<int64_t>& dims, const uint8_t*& payload);

}  // namespace tconv::cli::train
