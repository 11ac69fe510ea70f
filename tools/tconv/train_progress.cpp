// Progress bar / log lines and the CSV log of `tconv train`.
#include "train_progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/files.hpp"

namespace tconv::cli::train {

Progress::Progress(int64_t epochs, int64_t steps_per_epoch, int tty, int64_t log_every)
    : epochs_(epochs), steps_(steps_per_epoch), log_every_(log_every > 0 ? log_every : 50),
      tty_(tty < 0 ? isatty(fileno(stderr)) != 0 : tty != 0) {}

void Progress::step(int64_t epoch, int64_t step, double loss, double images_per_s) {
  if (tty_) {
    // Redraw at most ~10 times a second (and always on the last step) so the terminal is not the bottleneck.
    const auto now = std::chrono::steady_clock::now();
    if (step != steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30;
    const int filled = static_cast<int>(width * step / std::max<int64_t>(1, steps_));
    char bar[width + 1];
    for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    std::fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld  loss %.5f  %.0f img/s ", static_cast<long long>(epoch),
                 static_cast<long long>(epochs_), bar, static_cast<long long>(step), static_cast<long long>(steps_),
                 loss, images_per_s);
    std::fflush(stderr);
  } else if (step % log_every_ == 0 || step == steps_) {
    std::fprintf(stderr, "epoch %lld/%lld step %lld/%lld loss %.6f %.0f img/s\n", static_cast<long long>(epoch),
                 static_cast<long long>(epochs_), static_cast<long long>(step), static_cast<long long>(steps_), loss,
                 images_per_s);
  }
}

void Progress::epoch_done(int64_t epoch, double train_mse, double test_mse, double images_per_s, double seconds) {
  if (tty_) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "epoch %lld/%lld done: train MSE %.6f  test MSE %.6f  %.0f img/s  %.1f s\n",
               static_cast<long long>(epoch), static_cast<long long>(epochs_), train_mse, test_mse, images_per_s,
               seconds);
  std::fflush(stderr);
}

void CsvLog::add(int64_t epoch, int64_t step, double train_loss, double test_loss, double images_per_s) {
  char row[160];
  if (std::isnan(test_loss))
    std::snprintf(row, sizeof row, "%lld,%lld,%.9g,,%.1f", static_cast<long long>(epoch), static_cast<long long>(step),
                  train_loss, images_per_s);
  else
    std::snprintf(row, sizeof row, "%lld,%lld,%.9g,%.9g,%.1f", static_cast<long long>(epoch),
                  static_cast<long long>(step), train_loss, test_loss, images_per_s);
  rows_.emplace_back(row);
}

void CsvLog::flush() const {
  std::string text = "epoch,step,train_loss,test_loss,images_per_s\n";
  for (const std::string& r : rows_) text += r + "\n";
  io::write_file_atomic(path_, text.data(), text.size());
}

}  // namespace tconv::cli::train
