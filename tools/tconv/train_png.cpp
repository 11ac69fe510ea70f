// Drawing for the main job: reconstruction grid and loss curve, encoded with stb_image_write.
// This file holds the one stb_image_write implementation of the program.
#include "train_png.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "io/files.hpp"
#include "tconv/error.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // PNGs go to memory, then through the atomic file writer
#include <stb/stb_image_write.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

namespace tconv::cli::train {

void Canvas::set(int x, int y, uint8_t r, uint8_t g, uint8_t b) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  uint8_t* p = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
  p[0] = r, p[1] = g, p[2] = b;
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, uint8_t r, uint8_t g, uint8_t b) {
  for (int y = std::max(0, y0); y < std::min(height, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(width, x1); ++x) set(x, y, r, g, b);
}

void Canvas::line(double x0, double y0, double x1, double y1, int thickness, uint8_t r, uint8_t g, uint8_t b) {
  // Samples the segment every half pixel and stamps a thickness×thickness square: simple, gap-free.
  const double len = std::hypot(x1 - x0, y1 - y0);
  const int steps = std::max(1, static_cast<int>(std::ceil(len * 2)));
  const int h = thickness / 2;
  for (int i = 0; i <= steps; ++i) {
    const double t = static_cast<double>(i) / steps;
    const int x = static_cast<int>(std::lround(x0 + t * (x1 - x0))), y = static_cast<int>(std::lround(y0 + t * (y1 - y0)));
    fill_rect(x - h, y - h, x - h + thickness, y - h + thickness, r, g, b);
  }
}

void Canvas::text(int x, int y, const std::string& s, int scale, uint8_t r, uint8_t g, uint8_t b) {
  // stb_easy_font describes glyphs as axis-aligned quads (4 vertices of 16 bytes each); fill each one.
  std::vector<char> buf(s.size() * 1024 + 64);  // up to 16 quads of 64 bytes per glyph
  std::vector<char> str(s.begin(), s.end());
  str.push_back('\0');
  const int quads = stb_easy_font_print(0, 0, str.data(), nullptr, buf.data(), static_cast<int>(buf.size()));
  for (int q = 0; q < quads; ++q) {
    float v[4][4];
    std::memcpy(v, buf.data() + q * 64, sizeof v);
    const float qx0 = std::min({v[0][0], v[1][0], v[2][0], v[3][0]}), qx1 = std::max({v[0][0], v[1][0], v[2][0], v[3][0]});
    const float qy0 = std::min({v[0][1], v[1][1], v[2][1], v[3][1]}), qy1 = std::max({v[0][1], v[1][1], v[2][1], v[3][1]});
    fill_rect(x + static_cast<int>(qx0 * scale), y + static_cast<int>(qy0 * scale), x + static_cast<int>(qx1 * scale),
              y + static_cast<int>(qy1 * scale), r, g, b);
  }
}

int Canvas::text_width(const std::string& s, int scale) {
  std::vector<char> str(s.begin(), s.end());
  str.push_back('\0');
  return stb_easy_font_width(str.data()) * scale;
}

void write_png(const std::string& path, const Canvas& c) {
  std::vector<uint8_t> bytes;
  auto sink = [](void* ctx, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(ctx);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(sink, &bytes, c.width, c.height, 3, c.rgb.data(), c.width * 3))
    throw Error(ErrorCode::io_error, "PNG encoding failed for '" + path + "'");
  io::write_file_atomic(path, bytes);
}

Canvas reconstruction_grid(const float* originals, const float* reconstructions, int count, int height, int width,
                           int scale) {
  const int gap = 2, border = 4;
  const int cell_w = width * scale, cell_h = height * scale;
  Canvas c(border * 2 + count * cell_w + (count - 1) * gap, border * 2 + 2 * cell_h + gap * 2, 40);
  for (int row = 0; row < 2; ++row) {
    const float* src = row == 0 ? originals : reconstructions;
    for (int i = 0; i < count; ++i) {
      const int ox = border + i * (cell_w + gap), oy = border + row * (cell_h + gap * 2);
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
          const float v = std::clamp(src[(static_cast<int64_t>(i) * height + y) * width + x], 0.0f, 1.0f);
          const auto g = static_cast<uint8_t>(std::lround(v * 255.0f));
          c.fill_rect(ox + x * scale, oy + y * scale, ox + (x + 1) * scale, oy + (y + 1) * scale, g, g, g);
        }
    }
  }
  return c;
}

namespace {

// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

std::string tick_label(double v, double step) {
  // Enough decimals to tell neighbouring ticks apart.
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step))));
  char s[32];
  std::snprintf(s, sizeof s, "%.*f", decimals, v);
  return s;
}

}  // namespace

Canvas loss_curve(const LossHistory& h, const std::string& title) {
  const int W = 900, H = 560, left = 100, right = 30, top = 50, bottom = 70;
  Canvas c(W, H, 255);
  const int px0 = left, px1 = W - right, py0 = top, py1 = H - bottom;  // plot area

  double xmax = 1.0, ymin = 1e300, ymax = -1e300;
  auto see = [&](double y) {
    if (std::isfinite(y)) ymin = std::min(ymin, y), ymax = std::max(ymax, y);
  };
  for (double v : h.step_loss) see(v);
  for (double v : h.epoch_train) see(v);
  for (double v : h.epoch_test) see(v);
  for (double x : h.step_epoch) xmax = std::max(xmax, x);
  xmax = std::max(xmax, static_cast<double>(std::max(h.epoch_train.size(), h.epoch_test.size())));
  if (ymin > ymax) ymin = 0, ymax = 1;
  // The early step losses dwarf the rest; start the axis at zero and clip the top to 1.5× the largest
  // per-epoch value when there are per-epoch values, so the part that matters fills the plot.
  double epoch_max = -1e300;
  for (double v : h.epoch_train) epoch_max = std::max(epoch_max, v);
  for (double v : h.epoch_test) epoch_max = std::max(epoch_max, v);
  if (epoch_max > 0 && ymax > 1.5 * epoch_max) ymax = 1.5 * epoch_max;
  ymin = 0;
  if (ymax <= ymin) ymax = ymin + 1;
  const double ystep = nice_step(ymax - ymin, 6);
  ymax = std::ceil(ymax / ystep) * ystep;
  const double xstep = std::max(1.0, nice_step(xmax, 8));
  xmax = std::ceil(xmax / xstep) * xstep;

  auto X = [&](double x) { return px0 + (px1 - px0) * x / xmax; };
  auto Y = [&](double y) { return py1 - (py1 - py0) * (std::min(y, ymax) - ymin) / (ymax - ymin); };

  // Grid, ticks and labels.
  for (double y = ymin; y <= ymax + ystep * 0.5; y += ystep) {
    const int yy = static_cast<int>(std::lround(Y(y)));
    c.line(px0, yy, px1, yy, 1, 225, 225, 225);
    c.line(px0 - 6, yy, px0, yy, 2, 0, 0, 0);
    const std::string s = tick_label(y, ystep);
    c.text(px0 - 10 - Canvas::text_width(s, 2), yy - 7, s, 2, 0, 0, 0);
  }
  for (double x = 0; x <= xmax + xstep * 0.5; x += xstep) {
    const int xx = static_cast<int>(std::lround(X(x)));
    c.line(xx, py0, xx, py1, 1, 235, 235, 235);
    c.line(xx, py1, xx, py1 + 6, 2, 0, 0, 0);
    const std::string s = tick_label(x, xstep);
    c.text(xx - Canvas::text_width(s, 2) / 2, py1 + 12, s, 2, 0, 0, 0);
  }
  c.line(px0, py0, px0, py1, 2, 0, 0, 0);
  c.line(px0, py1, px1, py1, 2, 0, 0, 0);
  c.text((px0 + px1 - Canvas::text_width("epoch", 2)) / 2, H - 28, "epoch", 2, 0, 0, 0);
  c.text(12, py0 - 30, "MSE", 2, 0, 0, 0);
  c.text((W - Canvas::text_width(title, 2)) / 2, 14, title, 2, 0, 0, 0);

  // Series: step losses (light blue), per-epoch train (blue) and test (orange) with markers at epoch ends.
  for (std::size_t i = 1; i < h.step_loss.size(); ++i)
    c.line(X(h.step_epoch[i - 1]), Y(h.step_loss[i - 1]), X(h.step_epoch[i]), Y(h.step_loss[i]), 1, 170, 200, 235);
  auto series = [&](const std::vector<double>& v, uint8_t r, uint8_t g, uint8_t b) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double x = static_cast<double>(i + 1), y = v[i];
      if (i > 0) c.line(X(static_cast<double>(i)), Y(v[i - 1]), X(x), Y(y), 3, r, g, b);
      const int cx = static_cast<int>(std::lround(X(x))), cy = static_cast<int>(std::lround(Y(y)));
      c.fill_rect(cx - 4, cy - 4, cx + 5, cy + 5, r, g, b);
    }
  };
  series(h.epoch_train, 31, 119, 180);
  series(h.epoch_test, 255, 127, 14);

  // Legend, top right.
  const int lx = px1 - 260, ly = py0 + 12;
  c.fill_rect(lx - 10, ly - 8, px1 - 10, ly + 70, 250, 250, 250);
  c.line(lx, ly + 5, lx + 30, ly + 5, 1, 170, 200, 235);
  c.text(lx + 40, ly, "train (per step)", 2, 0, 0, 0);
  c.line(lx, ly + 27, lx + 30, ly + 27, 3, 31, 119, 180);
  c.text(lx + 40, ly + 22, "train (epoch mean)", 2, 0, 0, 0);
  c.line(lx, ly + 49, lx + 30, ly + 49, 3, 255, 127, 14);
  c.text(lx + 40, ly + 44, "test", 2, 0, 0, 0);
  return c;
}

}  // namespace tconv::cli::train
