// Tests of the main job's helpers: the random numbers shared with scripts/train_torch.py, the IDX/gzip
// reader and its errors, and the PNG drawing.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tconv/error.hpp"
#include "train_data.hpp"
#include "train_png.hpp"
#include "train_rng.hpp"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>

namespace fs = std::filesystem;
using namespace tconv::cli::train;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("tconv_train_app_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> b = {0, 0, 8, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    b.push_back(d >> 24), b.push_back((d >> 16) & 255), b.push_back((d >> 8) & 255), b.push_back(d & 255);
  }
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

void write_gz(const fs::path& p, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}

void write_raw(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Three 2×3 images with pixel values 0..17 and labels 7, 8, 9.
void write_small_dataset(const fs::path& dir, const std::string& split) {
  std::vector<uint8_t> px(18);
  for (int i = 0; i < 18; ++i) px[i] = static_cast<uint8_t>(i * 15);
  write_gz(dir / (split + "-images-idx3-ubyte.gz"), idx_bytes({3, 2, 3}, px));
  write_gz(dir / (split + "-labels-idx1-ubyte.gz"), idx_bytes({3}, {7, 8, 9}));
}

template <class F>
tconv::ErrorCode error_code_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const tconv::Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  return tconv::ErrorCode::ok;
}

}  // namespace

// Reference outputs of SplitMix64 for seed 0 (the published sequence) — the Python peer prints the same.
TEST(TrainRng, SplitMix64KnownSequence) {
  SplitMix64 r(0);
  EXPECT_EQ(r.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(r.next(), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(r.next(), 0x06C45D188009454Full);
}

// Values printed by scripts/train_torch.py (epoch_permutation, SplitMix64.uniform_symmetric): the two
// implementations must agree bit for bit, or the trainers would not see the same data and weights.
TEST(TrainRng, MatchesPythonPeer) {
  EXPECT_EQ(epoch_permutation(1, 0, 10), (std::vector<int64_t>{7, 8, 6, 5, 4, 9, 1, 2, 0, 3}));
  EXPECT_EQ(epoch_permutation(1, 1, 10), (std::vector<int64_t>{4, 1, 5, 8, 6, 2, 0, 3, 7, 9}));
  SplitMix64 r(7);
  const float expected[4] = {-0.05508515238761902f, -0.24160587787628174f, 0.2003803253173828f,
                             0.04146513342857361f};
  for (float e : expected) EXPECT_EQ(r.uniform_symmetric(0.25), e);
}

TEST(TrainRng, PermutationIsAPermutationAndChangesPerEpoch) {
  const auto a = epoch_permutation(42, 0, 1000), b = epoch_permutation(42, 1, 1000);
  auto sa = a;
  std::sort(sa.begin(), sa.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sa[i], i);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, epoch_permutation(42, 0, 1000));  // deterministic
}

TEST(TrainRng, UniformStaysInsideTheBound) {
  SplitMix64 r(3);
  const double bound = default_init_bound(16);  // 0.25
  EXPECT_EQ(bound, 0.25);
  float lo = 1, hi = -1;
  for (int i = 0; i < 100000; ++i) {
    const float v = r.uniform_symmetric(bound);
    ASSERT_GE(v, -0.25f);
    ASSERT_LT(v, 0.25f);
    lo = std::min(lo, v), hi = std::max(hi, v);
  }
  EXPECT_LT(lo, -0.249f);  // the whole range is used
  EXPECT_GT(hi, 0.249f);
}

TEST(TrainData, ReadsGzipIdxAndScalesToUnitRange) {
  const fs::path dir = temp_dir("ok");
  write_small_dataset(dir, "train");
  const Dataset d = load_fashion_mnist(dir.string(), "train");
  ASSERT_EQ(d.count, 3);
  ASSERT_EQ(d.height, 2);
  ASSERT_EQ(d.width, 3);
  for (int i = 0; i < 18; ++i) EXPECT_EQ(d.pixels[i], static_cast<float>(i * 15) / 255.0f);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{7, 8, 9}));
  const Dataset l = load_fashion_mnist(dir.string(), "train", 2);
  EXPECT_EQ(l.count, 2);
  EXPECT_EQ(l.pixels.size(), 12u);
  fs::remove_all(dir);
}

TEST(TrainData, ReadsUncompressedFiles) {
  const fs::path dir = temp_dir("plain");
  write_raw(dir / "t10k-images-idx3-ubyte", idx_bytes({1, 1, 2}, {0, 255}));
  write_raw(dir / "t10k-labels-idx1-ubyte", idx_bytes({1}, {4}));
  const Dataset d = load_fashion_mnist(dir.string(), "t10k");
  EXPECT_EQ(d.pixels, (std::vector<float>{0.0f, 1.0f}));
  fs::remove_all(dir);
}

TEST(TrainData, MissingFilesNameThePathAndTheFix) {
  const fs::path dir = temp_dir("missing");
  std::string msg;
  EXPECT_EQ(error_code_of([&] { load_fashion_mnist(dir.string(), "train"); }, &msg), tconv::ErrorCode::io_error);
  EXPECT_NE(msg.find("train-images-idx3-ubyte"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--data"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(TrainData, CorruptFilesAreFormatErrors) {
  const fs::path dir = temp_dir("corrupt");
  std::string msg;
  // Wrong magic (labels-style header in the image file).
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_bytes({3}, {1, 2, 3}));
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_bytes({3}, {1, 2, 3}));
  EXPECT_EQ(error_code_of([&] { load_fashion_mnist(dir.string(), "train"); }, &msg), tconv::ErrorCode::format_error);
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  // Payload shorter than the header promises.
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_bytes({3, 2, 3}, {1, 2, 3}));
  EXPECT_EQ(error_code_of([&] { load_fashion_mnist(dir.string(), "train"); }, &msg), tconv::ErrorCode::format_error);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  // Image and label counts disagree.
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_bytes({2, 1, 1}, {1, 2}));
  EXPECT_EQ(error_code_of([&] { load_fashion_mnist(dir.string(), "train"); }, &msg), tconv::ErrorCode::format_error);
  EXPECT_NE(msg.find("labels"), std::string::npos) << msg;
  // A gzip stream cut in the middle.
  write_small_dataset(dir, "train");
  std::vector<uint8_t> gz;
  {
    std::ifstream f(dir / "train-images-idx3-ubyte.gz", std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(f), {});
  }
  gz.resize(gz.size() / 2);
  write_raw(dir / "train-images-idx3-ubyte.gz", gz);
  EXPECT_EQ(error_code_of([&] { load_fashion_mnist(dir.string(), "train"); }, &msg), tconv::ErrorCode::format_error);
  EXPECT_NE(msg.find("gzip"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(TrainPng, ReconstructionGridRoundTrips) {
  const fs::path dir = temp_dir("png");
  // Two 2×2 images: originals black/white, reconstructions mid-grey and a gradient.
  const float orig[8] = {0, 0, 0, 0, 1, 1, 1, 1};
  const float recon[8] = {0.5f, 0.5f, 0.5f, 0.5f, 0, 0.25f, 0.75f, 1};
  const Canvas c = reconstruction_grid(orig, recon, 2, 2, 2, 3);
  write_png((dir / "grid.png").string(), c);
  int w = 0, h = 0, n = 0;
  unsigned char* px = stbi_load((dir / "grid.png").c_str(), &w, &h, &n, 3);
  ASSERT_NE(px, nullptr);
  EXPECT_EQ(w, c.width);
  EXPECT_EQ(h, c.height);
  auto at = [&](int x, int y) { return px[(y * w + x) * 3]; };
  const int border = 4, gap = 2, cell = 6;
  EXPECT_EQ(at(border + 1, border + 1), 0);                           // original 0: black
  EXPECT_EQ(at(border + cell + gap + 1, border + 1), 255);            // original 1: white
  EXPECT_EQ(at(border + 1, border + cell + 2 * gap + 1), 128);        // reconstruction 0: grey
  EXPECT_EQ(at(border + cell + gap + 3, border + cell + 2 * gap + 1), 64);  // 0.25 → 64, second pixel
  stbi_image_free(px);
  fs::remove_all(dir);
}

TEST(TrainPng, LossCurveDrawsBothSeries) {
  LossHistory h;
  for (int i = 0; i < 30; ++i) h.step_epoch.push_back((i + 1) / 10.0), h.step_loss.push_back(0.1 / (i + 1));
  h.epoch_train = {0.02, 0.01, 0.008};
  h.epoch_test = {0.015, 0.009, 0.0075};
  const Canvas c = loss_curve(h, "test curve");
  int blue = 0, orange = 0, black = 0;
  for (std::size_t i = 0; i < c.rgb.size(); i += 3) {
    const uint8_t r = c.rgb[i], g = c.rgb[i + 1], b = c.rgb[i + 2];
    blue += (r == 31 && g == 119 && b == 180);
    orange += (r == 255 && g == 127 && b == 14);
    black += (r == 0 && g == 0 && b == 0);
  }
  EXPECT_GT(blue, 100);
  EXPECT_GT(orange, 100);
  EXPECT_GT(black, 500);  // axes, ticks and labels
}
