// tconv — errors.
// The public API throws tconv::Error; every error carries a code a program can branch on and a message a
// person can act on (it names the offending values). Internals return tconv::core::Status instead of throwing.
#pragma once

#include <stdexcept>
#include <string>

namespace tconv {

enum class ErrorCode : int {
  ok = 0,
  invalid_argument = 1,   // a value the caller passed is wrong (message names it)
  unsupported = 2,        // valid request this build/device/algorithm cannot do
  out_of_memory = 3,      // host or device allocation failed
  device_unavailable = 4, // asked for a device that is not there (e.g. CUDA in a CPU-only build)
  io_error = 5,           // a file could not be opened, read or written
  format_error = 6,       // a file or array is malformed, truncated, or fails its checksum
  internal = 7,           // a bug in tconv: please report it
};

const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }
  // The message without the "code: " prefix that what() carries (for wrapping one error in another).
  // A view into what(): no second string member, so copying an Error stays as cheap and safe as before.
  const char* message() const noexcept;

 private:
  ErrorCode code_;
};

}  // namespace tconv
