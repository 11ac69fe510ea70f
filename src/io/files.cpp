// Crash-safe writes and whole-file reads (see files.hpp).
//
// write_file_atomic: the bytes go to a fresh temporary in the target's own folder (rename(2) is only atomic
// within one file system), are fsync'ed, and the temporary is renamed over the target; the folder is then
// fsync'ed so the rename itself survives a power cut. A writer killed at any point leaves the old target
// untouched; at worst a temporary named ".<name>.tconv-tmp.<pid>.<n>" stays behind, which can never be
// mistaken for the target. On any reported failure the temporary is removed.
#include "io/files.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tconv/error.hpp"

namespace tconv::io {

namespace {

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err) {
  throw Error(ErrorCode::io_error, what + " '" + path + "': " + std::strerror(err));
}

// Split "dir/name" into the folder part (with its trailing '/', or empty) and the name.
void split_path(const std::string& path, std::string& dir, std::string& name) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    dir.clear();
    name = path;
  } else {
    dir = path.substr(0, slash + 1);
    name = path.substr(slash + 1);
  }
}

// A process-wide counter makes temporary names unique between threads; the pid between processes; O_EXCL
// catches the rest (a stale temporary of a dead process with a recycled pid) and we try the next number.
std::atomic<uint64_t> g_temp_counter{0};

// Closes a descriptor and removes the temporary unless released (the error paths of write_file_atomic).
struct TempGuard {
  int fd = -1;
  std::string path;
  bool armed = true;
  ~TempGuard() {
    if (fd >= 0) ::close(fd);
    if (armed && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void write_file_atomic(const std::string& path, const void* data, std::size_t bytes) {
  if (path.empty()) throw Error(ErrorCode::io_error, "cannot write a file with an empty path");
  std::string dir, name;
  split_path(path, dir, name);
  if (name.empty()) throw Error(ErrorCode::io_error, "cannot write '" + path + "': it names a folder, not a file");

  TempGuard tmp;
  for (int attempt = 0;; ++attempt) {
    const uint64_t n = g_temp_counter.fetch_add(1, std::memory_order_relaxed);
    std::string candidate = dir + "." + name + ".tconv-tmp." + std::to_string(::getpid()) + "." + std::to_string(n);
    // 0666 before the umask: the same permissions a plain fopen(…, "w") would give the target.
    const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      tmp.fd = fd;
      tmp.path = std::move(candidate);
      break;
    }
    if (errno != EEXIST || attempt >= 100) {
      const int err = errno;
      throw_io("cannot create a temporary file beside", path, err);
    }
  }

  const auto* p = static_cast<const uint8_t*>(data);
  std::size_t left = bytes;
  while (left > 0) {
    // Large writes are split so a single call never exceeds what write(2) accepts (0x7ffff000 on Linux).
    const std::size_t chunk = left < (std::size_t{1} << 30) ? left : (std::size_t{1} << 30);
    const ssize_t w = ::write(tmp.fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw_io("cannot write", path, err);
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  if (::fsync(tmp.fd) != 0) {
    const int err = errno;
    throw_io("cannot flush to disk", path, err);
  }
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    throw_io("cannot close", path, err);
  }
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    throw_io("cannot rename the temporary file onto", path, err);
  }
  tmp.armed = false;

  // Make the rename durable. Failure here is not reported: the new file is complete and in place, and some
  // file systems do not support fsync on a folder.
  const std::string dir_path = dir.empty() ? std::string(".") : dir;
  const int dfd = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw_io("cannot open", path, err);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    throw_io("cannot stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) throw_io("cannot read", path, EISDIR);

  // The size is only a hint (pipes and /proc files report 0 or change while read): read until end of file.
  // One byte more than the reported size lets the common case end with a single short read.
  std::vector<uint8_t> out;
  if (S_ISREG(st.st_mode) && st.st_size > 0) out.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(used + std::max<std::size_t>(65536, used / 2));
    const ssize_t r = ::read(fd, out.data() + used, out.size() - used);
    if (r < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw_io("cannot read", path, err);
    }
    if (r == 0) break;
    used += static_cast<std::size_t>(r);
  }
  out.resize(used);
  return out;
}

}  // namespace tconv::io
