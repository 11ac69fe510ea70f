// The safetensors layout (8-byte little-endian header length, JSON header, raw little-endian data), so that
// PyTorch (`safetensors.torch.load_file`, or a few lines of Python) can read tconv's weights and models.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tconv/types.hpp"

namespace tconv::io {

struct Tensor {
  DataType dtype = DataType::float32;  // F32, F16, BF16, U8 in the file
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;           // C order, little-endian
  int64_t elements() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // the "__metadata__" string map
  std::map<std::string, Tensor> tensors;
};

std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& f);
// Checks everything before trusting it: header length within the file, valid JSON, known dtypes, shapes
// whose byte sizes match their offsets, offsets inside the data section, no overlaps. Error(format_error).
SafetensorsFile parse_safetensors(const uint8_t* bytes, std::size_t size);
// The same, with `source` (e.g. "file 'w.safetensors'") naming the input in error messages.
SafetensorsFile parse_safetensors(const uint8_t* bytes, std::size_t size, const std::string& source);
SafetensorsFile read_safetensors(const std::string& path);  // io_error or format_error
void write_safetensors(const std::string& path, const SafetensorsFile& f);  // atomic

}  // namespace tconv::io
