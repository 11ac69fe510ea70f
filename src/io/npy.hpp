// NumPy .npy arrays (format versions 1.0–3.0), for the CLI (issue 2 §4).
// Reading accepts little-endian float32 and float16 ('<f4', '<f2'; '|u1' and '<f8' are read too so the
// caller can give a precise error), C order or Fortran order (converted to C order). Writing produces
// version 1.0, C order. Any malformed input gives Error(format_error) naming what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tconv/types.hpp"

namespace tconv::io {

enum class NpyType : uint8_t { f32, f16, f64, u8 };

struct NpyArray {
  NpyType type = NpyType::f32;
  std::vector<int64_t> shape;   // C order after reading
  std::vector<uint8_t> data;    // element bytes, C order, little-endian
  int64_t elements() const;
  // The data as float32 (f16/f64/u8 converted exactly or rounded to nearest).
  std::vector<float> to_f32() const;
};

NpyArray parse_npy(const uint8_t* bytes, std::size_t size);  // throws Error(format_error)
// The same, with `source` (e.g. "file 'x.npy'") naming the input in error messages.
NpyArray parse_npy(const uint8_t* bytes, std::size_t size, const std::string& source);
NpyArray read_npy(const std::string& path);                  // io_error or format_error
std::vector<uint8_t> serialize_npy(NpyType type, const std::vector<int64_t>& shape, const void* data);
void write_npy(const std::string& path, NpyType type, const std::vector<int64_t>& shape, const void* data);
inline void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  write_npy(path, NpyType::f32, shape, data);
}

}  // namespace tconv::io
