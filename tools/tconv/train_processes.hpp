// The child processes of a data-parallel run (train_parallel.hpp): started with posix_spawn, their output
// in log files, watched from a thread so that a child that fails is noticed while the parent is blocked
// (in a collective with it, say), and never left behind — the destructor ends and reaps the ones still
// running. POSIX only; nothing here knows about NCCL or training.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tconv::cli::train {

class ChildProcesses {
 public:
  // Called on the watcher thread with the child's index and wait status, for the first child that fails
  // (exits non-zero or by a signal) before expect_exit().
  using FailureHandler = std::function<void(std::size_t index, int wait_status)>;

  ChildProcesses() = default;
  ~ChildProcesses();  // terminate()
  ChildProcesses(const ChildProcesses&) = delete;
  ChildProcesses& operator=(const ChildProcesses&) = delete;

  // Starts `program` once per entry of `argv` (argv[i][0] is the child's argv[0]) with stdin /dev/null,
  // stdout and stderr into logs[i] (created or truncated), and this process's environment with `env`
  // added (replacing variables of the same name). Throws Error(io_error) when one cannot be started; the
  // ones already started are ended first.
  void start(const std::string& program, const std::vector<std::vector<std::string>>& argv,
             const std::vector<std::string>& logs, const std::vector<std::pair<std::string, std::string>>& env);
  // Watches the children from a thread until all have exited.
  void watch(FailureHandler on_failure);
  // From now on children may exit (with any status): waits for all of them and returns their wait statuses.
  std::vector<int> wait_all();
  // Ends the children still running (SIGTERM; SIGKILL after `grace_seconds`) and reaps them. Safe from
  // the failure handler (the watcher thread) and from any other thread.
  void terminate(double grace_seconds = 5) noexcept;

  std::size_t size() const { return pids_.size(); }
  pid_t pid(std::size_t i) const { return pids_[i]; }

 private:
  void watch_loop(FailureHandler on_failure);
  bool reap(std::size_t i);  // waitpid(WNOHANG): true once child i has been reaped (status_[i] set)

  std::vector<pid_t> pids_;
  std::mutex mu_;            // guards status_ and the waitpid calls (watcher and terminate may race)
  std::vector<int> status_;  // wait status once reaped, -1 before
  std::atomic<bool> expect_exit_{false};
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

// "exited with status 3", "was killed by signal 15 (Terminated)".
std::string describe_wait_status(int wait_status);
bool wait_status_ok(int wait_status);

}  // namespace tconv::cli::train
