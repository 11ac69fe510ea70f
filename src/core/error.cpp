#include "tconv/error.hpp"

#include <cstring>

namespace tconv {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::ok: return "ok";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::out_of_memory: return "out_of_memory";
    case ErrorCode::device_unavailable: return "device_unavailable";
    case ErrorCode::io_error: return "io_error";
    case ErrorCode::format_error: return "format_error";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(std::string(to_string(code)) + ": " + message), code_(code) {}

// what() is "<code>: <message>" (constructor above); skip the prefix.
const char* Error::message() const noexcept { return what() + std::strlen(to_string(code_)) + 2; }

}  // namespace tconv
