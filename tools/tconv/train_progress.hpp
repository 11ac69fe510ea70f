// Progress reporting for `tconv train`: a one-line progress bar redrawn in place when stderr is a terminal,
// plain log lines otherwise (CI logs, pipes), and the CSV training log.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tconv::cli::train {

class Progress {
 public:
  // `tty` < 0: decide with isatty(stderr). `log_every` steps between plain log lines.
  Progress(int64_t epochs, int64_t steps_per_epoch, int tty = -1, int64_t log_every = 50);
  // After each step: running mean train loss of the epoch and the epoch's images/s so far.
  void step(int64_t epoch, int64_t step, double loss, double images_per_s);
  // After each epoch (ends the bar's line).
  void epoch_done(int64_t epoch, double train_mse, double test_mse, double images_per_s, double seconds);
  bool is_tty() const { return tty_; }

 private:
  int64_t epochs_, steps_, log_every_;
  bool tty_;
  std::chrono::steady_clock::time_point last_draw_{};
};

// Rows: one per recorded step (test_loss empty) and one per finished epoch (step = steps in the epoch).
class CsvLog {
 public:
  explicit CsvLog(std::string path) : path_(std::move(path)) {}
  void add(int64_t epoch, int64_t step, double train_loss, double test_loss, double images_per_s);
  // Rewrites the whole file atomically, so an interrupted run leaves a complete log of what was done.
  void flush() const;

 private:
  std::string path_;
  std::vector<std::string> rows_;
};

}  // namespace tconv::cli::train
