// Data-parallel `tconv train` without GPUs: the shards of a batch (train_parallel.hpp) and the child
// processes (train_processes.hpp) — started, logged, watched, ended — with /bin/sh children. The NCCL side
// is tested in communicator_test.cpp and, end to end, by the train_gpus CLI test on a GPU machine.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tconv/error.hpp"
#include "train_parallel.hpp"
#include "train_processes.hpp"

using namespace tconv::cli::train;

namespace {

std::filesystem::path temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("tconv_procs_" + name + "_" + std::to_string(getpid()) + "_" +
                  std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(p);
  return p;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> sh(const std::string& script, const std::string& arg0 = "child") {
  return {"/bin/sh", "-c", script, arg0};
}

}  // namespace

TEST(TrainShards, CoverTheBatchContiguouslyWithWeightsSummingToOne) {
  for (int ranks : {1, 2, 3, 4, 7, 8}) {
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{96}, int64_t{127}, int64_t{128}, int64_t{1000}}) {
      int64_t next = 0;
      double weight_sum = 0;
      for (int r = 0; r < ranks; ++r) {
        const Shard s = shard_of(n, r, ranks);
        EXPECT_EQ(s.offset, next) << "n " << n << " rank " << r << "/" << ranks;
        EXPECT_TRUE(s.count == n / ranks || s.count == n / ranks + 1) << s.count;
        EXPECT_FLOAT_EQ(s.weight, static_cast<float>(static_cast<double>(s.count) / n));
        next += s.count;
        weight_sum += s.weight;
      }
      EXPECT_EQ(next, n) << "ranks " << ranks;
      EXPECT_NEAR(weight_sum, 1.0, 1e-6) << "n " << n << " ranks " << ranks;
    }
  }
  // One rank: the whole batch with weight exactly 1 (the all-reduce is then an identity, bit for bit).
  const Shard one = shard_of(96, 0, 1);
  EXPECT_EQ(one.offset, 0);
  EXPECT_EQ(one.count, 96);
  EXPECT_EQ(one.weight, 1.0f);
  // Equal shards of a power-of-two rank count: exactly 1/ranks.
  EXPECT_EQ(shard_of(128, 3, 4).weight, 0.25f);
  // Fewer images than ranks: the last ranks get none (and weight 0: they take part with a zero gradient).
  EXPECT_EQ(shard_of(3, 3, 4).count, 0);
  EXPECT_EQ(shard_of(3, 3, 4).weight, 0.0f);
  EXPECT_THROW(shard_of(10, 4, 4), tconv::Error);
}

TEST(TrainProcesses, ChildrenRunWithTheirArgumentsEnvironmentAndLogs) {
  const auto dir = temp_dir("ok");
  ChildProcesses c;
  std::vector<std::vector<std::string>> argv;
  std::vector<std::string> logs;
  for (int r = 1; r <= 3; ++r) {
    argv.push_back(sh("echo rank $0 sees $TCONV_TEST_VALUE; echo to-stderr >&2", "r" + std::to_string(r)));
    logs.push_back((dir / ("rank" + std::to_string(r) + ".log")).string());
  }
  c.start("/bin/sh", argv, logs, {{"TCONV_TEST_VALUE", "forty-two"}});
  ASSERT_EQ(c.size(), 3u);
  std::atomic<int> failures{0};
  c.watch([&](std::size_t, int) { ++failures; });
  const std::vector<int> st = c.wait_all();
  ASSERT_EQ(st.size(), 3u);
  for (int s : st) EXPECT_TRUE(wait_status_ok(s)) << describe_wait_status(s);
  EXPECT_EQ(failures, 0);
  for (int r = 1; r <= 3; ++r)
    EXPECT_EQ(slurp(logs[r - 1]), "rank r" + std::to_string(r) + " sees forty-two\nto-stderr\n");
  std::filesystem::remove_all(dir);
}

TEST(TrainProcesses, AFailingChildIsReportedAndTheOthersAreEnded) {
  const auto dir = temp_dir("fail");
  ChildProcesses c;
  c.start("/bin/sh", {sh("sleep 60"), sh("sleep 0.2; echo dying; exit 3"), sh("sleep 60")},
          {(dir / "a").string(), (dir / "b").string(), (dir / "c").string()}, {});
  std::atomic<int> failed_index{-1}, failed_status{0};
  std::atomic<bool> reported{false};
  const auto t0 = std::chrono::steady_clock::now();
  c.watch([&](std::size_t i, int status) {
    failed_index = static_cast<int>(i);
    failed_status = status;
    c.terminate(1);  // what rank 0 does (before its _exit)
    reported = true;
  });
  while (!reported && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(reported) << "the failure was not reported";
  EXPECT_EQ(failed_index, 1);
  EXPECT_EQ(describe_wait_status(failed_status), "exited with status 3");
  const std::vector<int> st = c.wait_all();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0)
      << "the sleeping children were not ended";
  EXPECT_TRUE(WIFSIGNALED(st[0]) && WTERMSIG(st[0]) == SIGTERM) << describe_wait_status(st[0]);
  EXPECT_TRUE(WIFSIGNALED(st[2]) && WTERMSIG(st[2]) == SIGTERM) << describe_wait_status(st[2]);
  EXPECT_EQ(slurp(dir / "b"), "dying\n");
  std::filesystem::remove_all(dir);
}

TEST(TrainProcesses, ExitsAfterWaitAllBeginsAreNotFailuresAndTheDestructorEndsStragglers) {
  const auto dir = temp_dir("late");
  std::atomic<int> failures{0};
  {
    ChildProcesses c;
    c.start("/bin/sh", {sh("exit 0"), sh("sleep 0.3; exit 5")}, {(dir / "a").string(), (dir / "b").string()}, {});
    c.watch([&](std::size_t, int) { ++failures; });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::vector<int> st = c.wait_all();  // rank 0 is done: a failure now is returned, not reported
    EXPECT_TRUE(wait_status_ok(st[0]));
    EXPECT_EQ(describe_wait_status(st[1]), "exited with status 5");
  }
  EXPECT_EQ(failures, 0);
  pid_t straggler = -1;
  const auto t0 = std::chrono::steady_clock::now();
  {
    ChildProcesses c;
    c.start("/bin/sh", {sh("sleep 60")}, {(dir / "s").string()}, {});
    straggler = c.pid(0);
  }  // ended and reaped here
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_EQ(kill(straggler, 0), -1) << "the child is still there";
  std::filesystem::remove_all(dir);
}

TEST(TrainProcesses, AProgramThatCannotStartIsAnIoError) {
  const auto dir = temp_dir("nostart");
  ChildProcesses c;
  try {
    c.start("/nonexistent/tconv", {{"tconv"}}, {(dir / "x").string()}, {});
    // posix_spawn may report the failed exec as a child that exits 127 instead of an error.
    const std::vector<int> st = c.wait_all();
    EXPECT_FALSE(wait_status_ok(st[0]));
  } catch (const tconv::Error& e) {
    EXPECT_EQ(e.code(), tconv::ErrorCode::io_error);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tconv"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}
