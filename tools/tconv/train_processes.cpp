// Child processes of a data-parallel run (train_processes.hpp).
#include "train_processes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>

#include "tconv/error.hpp"

extern char** environ;

namespace tconv::cli::train {

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "ended with wait status " + std::to_string(status);
}

bool wait_status_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

ChildProcesses::~ChildProcesses() { terminate(); }

void ChildProcesses::start(const std::string& program, const std::vector<std::vector<std::string>>& argv,
                           const std::vector<std::string>& logs,
                           const std::vector<std::pair<std::string, std::string>>& env) {
  if (argv.size() != logs.size()) throw Error(ErrorCode::internal, "ChildProcesses::start: one log per child");
  // The environment is built, not set: setenv in a process with threads races with their getenv.
  std::vector<std::string> env_s;
  std::set<std::string> replaced;
  for (const auto& [k, v] : env) replaced.insert(k);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (!replaced.count(entry.substr(0, entry.find('=')))) env_s.push_back(entry);
  }
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);

  for (std::size_t i = 0; i < argv.size(); ++i) {
    std::vector<std::string> args = argv[i];
    std::vector<char*> argp;
    for (std::string& s : args) argp.push_back(s.data());
    argp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, logs[i].c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argp.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      terminate();
      throw Error(ErrorCode::io_error, "cannot start child " + std::to_string(i) + " ('" + program + "', log '" +
                                           logs[i] + "'): " + std::strerror(rc));
    }
    std::lock_guard<std::mutex> lock(mu_);
    pids_.push_back(pid);
    status_.push_back(-1);
  }
}

bool ChildProcesses::reap(std::size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_[i] != -1) return true;
  int status = 0;
  const pid_t p = waitpid(pids_[i], &status, WNOHANG);
  if (p == 0) return false;
  // An error (ECHILD: someone else reaped it) counts as a failure: its outcome is unknown.
  status_[i] = p == pids_[i] ? status : (1 << 8);
  return true;
}

void ChildProcesses::watch(FailureHandler on_failure) {
  watcher_ = std::thread([this, on_failure = std::move(on_failure)] { watch_loop(on_failure); });
}

void ChildProcesses::watch_loop(FailureHandler on_failure) {
  bool reported = false;
  for (;;) {
    bool running = false;
    for (std::size_t i = 0; i < pids_.size(); ++i) {
      int status = -1;
      {
        std::lock_guard<std::mutex> lock(mu_);
        status = status_[i];
      }
      if (status != -1) continue;
      if (!reap(i)) {
        running = true;
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        status = status_[i];
      }
      if (!wait_status_ok(status) && !expect_exit_ && !reported) {
        reported = true;
        if (on_failure) on_failure(i, status);
      }
    }
    if (!running || stop_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::vector<int> ChildProcesses::wait_all() {
  expect_exit_ = true;
  if (watcher_.joinable() && watcher_.get_id() != std::this_thread::get_id()) watcher_.join();
  for (std::size_t i = 0; i < pids_.size(); ++i)
    while (!reap(i)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void ChildProcesses::terminate(double grace_seconds) noexcept {
  stop_ = true;
  if (watcher_.joinable() && watcher_.get_id() != std::this_thread::get_id()) watcher_.join();
  for (std::size_t i = 0; i < pids_.size(); ++i)
    if (!reap(i)) kill(pids_[i], SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_seconds);
  for (std::size_t i = 0; i < pids_.size(); ++i) {
    while (!reap(i)) {
      if (std::chrono::steady_clock::now() > deadline) kill(pids_[i], SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace tconv::cli::train
