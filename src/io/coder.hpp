// The coder (NSSecureCoding, translated; spec a.10, e15): a versioned, self-checking file for kernels,
// descriptors and data sources.
//
// A coded object is a safetensors file (so PyTorch can load the weights) whose "__metadata__" holds:
//   "tconv.format"  = "tconv-coder"
//   "tconv.version" = "1"          (readers refuse newer major versions with a clear error)
//   "tconv.crc32"   = CRC-32 (hex) of every other metadata entry and every tensor's name, dtype, shape and
//                     bytes, in key order; a reader checks it before trusting anything
//   and one entry per scalar value set by the object: "<key>" = text form (integers and doubles exact:
//   doubles as hexadecimal floating point "%a", so a round trip is bit-exact).
// Keys are dotted paths chosen by the object, e.g. "kernel.class", "descriptor.kernel_width",
// "weights" (tensor).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "tconv/types.hpp"

namespace tconv::io {

class Encoder {
 public:
  void set_int(const std::string& key, int64_t v);
  void set_double(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_tensor(const std::string& key, DataType dtype, std::vector<int64_t> shape, const void* data,
                  std::size_t bytes);
  std::vector<uint8_t> to_bytes() const;          // computes and stores the checksum
  void write_file(const std::string& path) const;  // atomic (io/files.hpp)

 private:
  SafetensorsFile file_;
};

class Decoder {
 public:
  // Parse and verify format, version and checksum. Error(format_error) on any mismatch, naming it.
  static Decoder from_bytes(const uint8_t* bytes, std::size_t size);
  static Decoder from_file(const std::string& path);  // io_error or format_error

  bool has(const std::string& key) const;  // scalar or tensor
  // Typed getters: Error(format_error) naming the key when it is missing or not of that type.
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  const Tensor& get_tensor(const std::string& key) const;
  // With defaults for optional keys.
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  int version() const { return version_; }
  const SafetensorsFile& file() const { return file_; }

 private:
  SafetensorsFile file_;
  int version_ = 0;
};

uint32_t crc32(const void* data, std::size_t bytes, uint32_t seed = 0);

}  // namespace tconv::io
