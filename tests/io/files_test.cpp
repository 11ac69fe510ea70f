// write_file_atomic / read_file: contents, error messages, clean-up on failure, and the crash-safety claim
// itself: a writer killed in the middle of a write (SIGKILL at a random point, SIGXFSZ at an exact byte)
// leaves the previous file intact and nothing that could be taken for the target.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/files.hpp"
#include "io/io_test_util.hpp"

namespace tconv::io {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<uint8_t> pattern(std::size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(IoFiles, WriteThenReadRoundTripsBytes) {
  TempDir dir;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{65536}, std::size_t{3'000'001}}) {
    const auto bytes = pattern(n, static_cast<uint32_t>(n));
    write_file_atomic(dir.file("a.bin"), bytes);
    EXPECT_EQ(read_file(dir.file("a.bin")), bytes) << n << " bytes";
  }
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"a.bin"});
}

TEST(IoFiles, OverwriteReplacesContentAndLeavesNoTemporary) {
  TempDir dir;
  write_file_atomic(dir.file("t"), pattern(1000, 1));
  write_file_atomic(dir.file("t"), pattern(10, 2));
  EXPECT_EQ(read_file(dir.file("t")), pattern(10, 2));
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"t"});
}

TEST(IoFiles, PermissionsFollowTheUmask) {
  TempDir dir;
  const mode_t old = ::umask(022);
  write_file_atomic(dir.file("m"), pattern(3, 3));
  ::umask(old);
  struct stat st{};
  ASSERT_EQ(::stat(dir.file("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(IoFiles, RelativePathInCurrentFolder) {
  TempDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  write_file_atomic("rel.bin", pattern(7, 7));
  EXPECT_EQ(read_file("rel.bin"), pattern(7, 7));
  std::filesystem::current_path(cwd);
}

TEST(IoFiles, ErrorsNameThePathAndTheReason) {
  TempDir dir;
  const std::string missing_dir = dir.file("no-such-folder/x.bin");
  auto msg = expect_error([&] { write_file_atomic(missing_dir, pattern(4, 4)); }, ErrorCode::io_error, missing_dir);
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;

  const std::string missing = dir.file("absent.bin");
  msg = expect_error([&] { (void)read_file(missing); }, ErrorCode::io_error, missing);
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;

  msg = expect_error([&] { (void)read_file(dir.path()); }, ErrorCode::io_error, dir.path());
  EXPECT_NE(msg.find("Is a directory"), std::string::npos) << msg;

  // A path through a regular file (fails even for root, unlike permission checks).
  write_file_atomic(dir.file("plain"), pattern(2, 2));
  msg = expect_error([&] { write_file_atomic(dir.file("plain/x"), pattern(1, 1)); }, ErrorCode::io_error, dir.file("plain/x"));
  EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;

  expect_error([&] { write_file_atomic("", pattern(1, 1)); }, ErrorCode::io_error, "empty path");
  expect_error([&] { write_file_atomic(dir.path() + "/", pattern(1, 1)); }, ErrorCode::io_error, "folder");
}

TEST(IoFiles, FailedRenameRemovesTheTemporary) {
  // The target is a non-empty folder: everything succeeds up to rename(2), which fails; the temporary must
  // be gone afterwards and the folder untouched.
  TempDir dir;
  std::filesystem::create_directory(dir.file("target"));
  write_file_atomic(dir.file("target/inner"), pattern(5, 5));
  expect_error([&] { write_file_atomic(dir.file("target"), pattern(100, 6)); }, ErrorCode::io_error, dir.file("target"));
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"target"});
  EXPECT_EQ(read_file(dir.file("target/inner")), pattern(5, 5));
}

TEST(IoFiles, UnwritableFolderIsAnIoError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores folder permissions";
  TempDir dir;
  std::filesystem::create_directory(dir.file("ro"));
  ::chmod(dir.file("ro").c_str(), 0555);
  expect_error([&] { write_file_atomic(dir.file("ro/x"), pattern(1, 1)); }, ErrorCode::io_error, "Permission denied");
  ::chmod(dir.file("ro").c_str(), 0755);
}

// After a killed writer: the target still holds `old`, and every other entry is a temporary whose name
// cannot be confused with the target.
void expect_old_file_intact(const TempDir& dir, const std::vector<uint8_t>& old) {
  EXPECT_EQ(read_file(dir.file("model.bin")), old);
  for (const auto& name : entries(dir.path())) {
    if (name == "model.bin") continue;
    EXPECT_EQ(name.rfind(".model.bin.tconv-tmp.", 0), 0u) << "unexpected file " << name;
  }
}

TEST(IoFiles, WriterKilledMidWriteLeavesOldFileIntact) {
  TempDir dir;
  const auto old = pattern(4096, 11);
  write_file_atomic(dir.file("model.bin"), old);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::vector<uint8_t> big(std::size_t{384} << 20, 0x5a);
    try {
      write_file_atomic(dir.file("model.bin"), big);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  // Kill the child as soon as its temporary has some bytes in it (it is writing, not done).
  bool killed = false;
  for (int i = 0; i < 200000 && !killed; ++i) {
    for (const auto& name : entries(dir.path())) {
      if (name.rfind(".model.bin.tconv-tmp.", 0) != 0) continue;
      struct stat st{};
      if (::stat(dir.file(name).c_str(), &st) == 0 && st.st_size > 0) {
        ::kill(child, SIGKILL);
        killed = true;
      }
    }
    if (!killed) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(killed) << "the writer's temporary never appeared";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the writer finished before it could be killed; status " << status;
  expect_old_file_intact(dir, old);

  // The next write succeeds beside the stale temporary.
  write_file_atomic(dir.file("model.bin"), pattern(17, 12));
  EXPECT_EQ(read_file(dir.file("model.bin")), pattern(17, 12));
}

TEST(IoFiles, WriterKilledAtAnExactByteLeavesOldFileIntact) {
  // RLIMIT_FSIZE makes the kernel send SIGXFSZ (default action: terminate) on the write that crosses the
  // limit, so the child dies deterministically with a partial temporary of exactly `limit` bytes.
  TempDir dir;
  const auto old = pattern(1000, 21);
  write_file_atomic(dir.file("model.bin"), old);
  for (rlim_t limit : {rlim_t{1}, rlim_t{4096}, rlim_t{1} << 20}) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      struct rlimit rl{limit, limit};
      ::setrlimit(RLIMIT_FSIZE, &rl);
      ::signal(SIGXFSZ, SIG_DFL);
      try {
        write_file_atomic(dir.file("model.bin"), pattern(std::size_t{4} << 20, 22));
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ) << "limit " << limit << ", status " << status;
    expect_old_file_intact(dir, old);
    bool found_partial = false;
    for (const auto& name : entries(dir.path())) {
      if (name == "model.bin") continue;
      found_partial = true;
      EXPECT_EQ(std::filesystem::file_size(dir.file(name)), limit);
      std::filesystem::remove(dir.file(name));
    }
    EXPECT_TRUE(found_partial);
  }
}

}  // namespace
}  // namespace tconv::io
