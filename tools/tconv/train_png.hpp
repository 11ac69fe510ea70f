// The pictures `tconv train` and `tconv reconstruct` write: a grid of test images above their
// reconstructions, and the loss curve. Both are drawn here in C++ (stb_image_write for the PNG encoding,
// stb_easy_font for the labels) so the main job needs no Python.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tconv::cli::train {

// An RGB picture, row-major, 3 bytes per pixel.
struct Canvas {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  Canvas(int w, int h, uint8_t grey = 255) : width(w), height(h), rgb(static_cast<std::size_t>(w) * h * 3, grey) {}
  void set(int x, int y, uint8_t r, uint8_t g, uint8_t b);
  void fill_rect(int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b);  // [x0,x1)×[y0,y1)
  void line(double x0, double y0, double x1, double y1, int thickness, uint8_t r, uint8_t g, uint8_t b);
  // Text with its top-left corner at (x, y); `scale` enlarges stb_easy_font's ~7-pixel-high glyphs.
  void text(int x, int y, const std::string& s, int scale, uint8_t r, uint8_t g, uint8_t b);
  static int text_width(const std::string& s, int scale);
};

// Encodes the canvas as PNG and writes it atomically. Throws Error(io_error) on failure.
void write_png(const std::string& path, const Canvas& c);

// `count` images of height×width greys in [0, 1] (originals and reconstructions, each [count][h][w]), drawn
// as two rows, each image enlarged `scale` times, separated by a thin gap.
Canvas reconstruction_grid(const float* originals, const float* reconstructions, int count, int height, int width,
                           int scale = 4);

// The loss curve: train and test MSE per epoch (points joined by lines), with the per-step train loss
// behind them as a light line. x in epochs (step losses at fractional epochs), linear y axis with ticks.
struct LossHistory {
  std::vector<double> step_epoch;  // x of each recorded step loss (epochs, e.g. 0.5 = half-way through 1st)
  std::vector<double> step_loss;
  std::vector<double> epoch_train;  // mean train MSE of epoch e+1
  std::vector<double> epoch_test;   // test MSE after epoch e+1
};
Canvas loss_curve(const LossHistory& h, const std::string& title);

}  // namespace tconv::cli::train
