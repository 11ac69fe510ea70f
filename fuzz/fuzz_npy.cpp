// libFuzzer target: parse_npy on arbitrary bytes. It must either return an array or throw
// tconv::Error(format_error); an accepted array must be self-consistent (data length = elements · item size)
// and survive serialize → parse unchanged (values and shape; the file itself may have been Fortran order).
#include <cstdint>
#include <cstdlib>

#include "io/npy.hpp"
#include "tconv/error.hpp"

using namespace tconv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  io::NpyArray a;
  try {
    a = io::parse_npy(data, size);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::format_error) std::abort();
    return 0;
  }
  const std::size_t esize = a.type == io::NpyType::f64 ? 8 : a.type == io::NpyType::f32 ? 4 : a.type == io::NpyType::f16 ? 2 : 1;
  if (a.data.size() != static_cast<std::size_t>(a.elements()) * esize) std::abort();
  if (a.to_f32().size() != static_cast<std::size_t>(a.elements())) std::abort();
  const auto bytes = io::serialize_npy(a.type, a.shape, a.data.data());
  const io::NpyArray b = io::parse_npy(bytes.data(), bytes.size());
  if (b.type != a.type || b.shape != a.shape || b.data != a.data) std::abort();
  return 0;
}
