// Internal status: the engine never throws; it returns a Status whose message names the values involved.
// Only src/api turns a failed Status into tconv::Error (design §4.6).
#pragma once

#include <string>
#include <utility>

#include "tconv/error.hpp"

namespace tconv::core {

struct [[nodiscard]] Status {
  ErrorCode code = ErrorCode::ok;
  std::string message;

  static Status ok_status() { return {}; }
  bool ok() const noexcept { return code == ErrorCode::ok; }
  explicit operator bool() const noexcept { return ok(); }
};

inline Status fail(ErrorCode code, std::string message) { return Status{code, std::move(message)}; }
inline Status invalid(std::string message) { return fail(ErrorCode::invalid_argument, std::move(message)); }
inline Status unsupported(std::string message) { return fail(ErrorCode::unsupported, std::move(message)); }

// Throws tconv::Error for a failed status (used at the API boundary only).
inline void throw_if_error(const Status& s) {
  if (!s.ok()) throw Error(s.code, s.message);
}

}  // namespace tconv::core
