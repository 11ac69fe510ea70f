// Helpers for the I/O tests: a private temporary folder per test, and checks on thrown tconv::Error.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "tconv/error.hpp"

namespace tconv::io::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/tconv-io-test-XXXXXX";
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed for " + templ);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs f, expects it to throw tconv::Error with `code` whose message contains `fragment`; returns the message.
inline std::string expect_error(const std::function<void()>& f, ErrorCode code, const std::string& fragment = "") {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message \"" << e.what() << "\" should contain \"" << fragment << "\"";
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected tconv::Error, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected tconv::Error(" << to_string(code) << ") containing \"" << fragment << "\", nothing thrown";
  return {};
}

}  // namespace tconv::io::testing
