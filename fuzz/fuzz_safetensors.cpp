// libFuzzer target: parse_safetensors on arbitrary bytes. It must either return a file or throw
// tconv::Error(format_error); an accepted file must serialize and parse back to the same contents.
#include <cstdint>
#include <cstdlib>

#include "io/safetensors.hpp"
#include "tconv/error.hpp"

using namespace tconv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  io::SafetensorsFile f;
  try {
    f = io::parse_safetensors(data, size);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::format_error) std::abort();
    return 0;
  }
  for (const auto& [name, t] : f.tensors)
    if (t.data.size() != static_cast<std::size_t>(t.elements()) * size_of(t.dtype)) std::abort();
  const auto bytes = io::serialize_safetensors(f);
  const io::SafetensorsFile g = io::parse_safetensors(bytes.data(), bytes.size());
  if (g.metadata != f.metadata || g.tensors.size() != f.tensors.size()) std::abort();
  for (const auto& [name, t] : f.tensors) {
    const auto it = g.tensors.find(name);
    if (it == g.tensors.end() || it->second.dtype != t.dtype || it->second.shape != t.shape || it->second.data != t.data)
      std::abort();
  }
  return 0;
}
