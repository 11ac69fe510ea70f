// Files: crash-safe writes and whole-file reads (issue 7 "nothing lost").
// Every file tconv writes goes through write_file_atomic: bytes go to a temporary file in the same folder,
// are flushed to disk, and the temporary is renamed over the target, so a reader sees either the old file
// or the complete new one, never a truncated one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tconv::io {

// Throws Error(io_error) naming the path and the OS reason.
void write_file_atomic(const std::string& path, const void* data, std::size_t bytes);
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomic(path, bytes.data(), bytes.size());
}
// Throws Error(io_error) if the file cannot be opened or read.
std::vector<uint8_t> read_file(const std::string& path);

}  // namespace tconv::io
