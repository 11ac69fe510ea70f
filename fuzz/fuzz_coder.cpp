// libFuzzer target: Decoder::from_bytes on arbitrary bytes, then every typed getter on every key. Errors
// must be tconv::Error(format_error); nothing may crash. (Inputs that pass the CRC are rare for random
// bytes; the seed corpus holds valid files so mutations near them reach the getters.)
#include <cstdint>
#include <cstdlib>
#include <string>

#include "io/coder.hpp"
#include "tconv/error.hpp"

using namespace tconv;

namespace {
template <class F>
void expect_ok_or_format_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::format_error) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  io::Decoder d;
  try {
    d = io::Decoder::from_bytes(data, size);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::format_error) std::abort();
    return 0;
  }
  if (d.version() < 1) std::abort();
  for (const auto& entry : d.file().metadata) {
    const std::string& key = entry.first;  // (clang 14 cannot capture structured bindings)
    expect_ok_or_format_error([&] { (void)d.get_int(key); });
    expect_ok_or_format_error([&] { (void)d.get_double(key); });
    expect_ok_or_format_error([&] { (void)d.get_bool(key); });
    expect_ok_or_format_error([&] { (void)d.get_string(key); });
    expect_ok_or_format_error([&] { (void)d.get_tensor(key); });
    expect_ok_or_format_error([&] { (void)d.get_int_or(key, 0); });
  }
  for (const auto& entry : d.file().tensors) {
    const std::string& key = entry.first;
    if (!d.has(key) || &d.get_tensor(key) != &entry.second) std::abort();
    expect_ok_or_format_error([&] { (void)d.get_int(key); });
  }
  return 0;
}
