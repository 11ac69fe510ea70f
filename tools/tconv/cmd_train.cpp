// `tconv train` and `tconv reconstruct`: the main job (issue 6). Trains the convolutional auto-encoder of
// train_model.hpp on Fashion-MNIST with Adam on mean-squared error, and writes into --out:
//   recon.png          the first test images (top row) above their reconstructions (bottom row)
//   loss.png           train and test MSE per epoch (per-step train loss behind them)
//   train_log.csv      epoch, step, train_loss, test_loss, images_per_s
//   model.safetensors  every kernel through the coder (safetensors layout; PyTorch can read the weights)
//   summary.json       the summary line's numbers
// and prints a one-line summary (final test MSE, training throughput). `tconv reconstruct` decodes a saved
// model, evaluates the same test images in the same batches and must print the same test MSE.
// `--gpus N` trains data-parallel, one process per GPU (train_parallel.hpp); rank 0 writes the outputs.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "io/files.hpp"
#include "tconv/communicator.hpp"
#include "tconv/device.hpp"
#include "tconv/error.hpp"
#include "train_data.hpp"
#include "train_model.hpp"
#include "train_parallel.hpp"
#include "train_png.hpp"
#include "train_progress.hpp"
#include "train_rng.hpp"

namespace tconv::cli {
namespace {

using namespace tconv::cli::train;
using Clock = std::chrono::steady_clock;

constexpr int kGridImages = 10;      // images in recon.png
constexpr int64_t kEvalBatch = 1000;  // test-set batches (fixed: the test MSE must be reproducible)

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Device pick_device(const std::string& text, int threads) {
  if (!text.empty()) return make_device(text, threads);
  Device d = Device::default_device();  // the GPU when there is one, else the CPU
  if (d.kind() == DeviceKind::cpu) return Device::cpu(threads);
  if (threads > 0) d.set_num_threads(threads);
  return d;
}

void write_grid(const std::string& path, AutoEncoder& model, const Dataset& test) {
  const int count = static_cast<int>(std::min<int64_t>(kGridImages, test.count));
  std::vector<float> recon(static_cast<std::size_t>(count) * kImagePixels);
  model.reconstruct(test.image(0), count, recon.data());
  write_png(path, reconstruction_grid(test.image(0), recon.data(), count, kImageSide, kImageSide));
}

std::string fmt(const char* f, double v) {
  char s[64];
  std::snprintf(s, sizeof s, f, v);
  return s;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  CLI::App app{"Train the convolutional auto-encoder (Conv 1→32→64, ConvTranspose 64→32→1, k4 s2) on "
               "Fashion-MNIST with Adam on mean-squared error, using tconv's object API",
               "tconv train"};
  int64_t epochs = 3, batch = 128, limit_train = 0, limit_test = 0;
  float lr = 1e-3f;
  uint64_t seed = 1;
  int threads = 0;
  std::string device_text, data_dir = kDefaultDataDir, out_dir = "out/train";
  int progress_mode = -1;
  int gpus = 0, rank = -1;
  std::string id_file;
  app.add_option("--epochs", epochs, "passes over the training set")->check(CLI::Range(int64_t{1}, int64_t{100000}));
  app.add_option("--batch", batch, "images per step")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--lr", lr, "Adam learning rate");
  app.add_option("--device", device_text, "cpu | cuda[:N] (default: the GPU when there is one, else the CPU)");
  app.add_option("--threads", threads, "CPU threads (0: TCONV_NUM_THREADS / OpenMP default)");
  app.add_option("--seed", seed, "initialisation and shuffling seed (shared with scripts/train_torch.py)");
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--out", out_dir, "output folder (created)");
  app.add_option("--limit-train", limit_train, "use only the first N training images (0: all)");
  app.add_option("--limit-test", limit_test, "use only the first N test images (0: all)");
  app.add_option("--progress", progress_mode, "1: progress bar, 0: log lines (default: bar on a terminal)");
  app.add_option("--gpus", gpus, "data-parallel over N GPUs, one process each, gradients all-reduced through "
                                 "NCCL; --batch stays the global batch (0: one device, no NCCL)")
      ->check(CLI::Range(0, 4096))->group("Data-parallel");
  app.add_option("--rank", rank, "this process is rank R of a --gpus group started by hand (e.g. one per node); "
                                 "without it this process is rank 0 and starts the others")
      ->check(CLI::Range(0, 4095))->group("Data-parallel");
  app.add_option("--nccl-id-file", id_file, "where rank 0 writes the NCCL id and the others read it (default: "
                                            "<out>/nccl_id; TCONV_NCCL_ID in the environment takes precedence)")
      ->group("Data-parallel");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (rank >= 0 && gpus == 0) throw Error(ErrorCode::invalid_argument, "--rank needs --gpus (the number of ranks)");
  if (!(lr > 0) || !std::isfinite(lr)) throw Error(ErrorCode::invalid_argument, "--lr must be a positive number, got " + std::to_string(lr));
  if (limit_train < 0 || limit_test < 0) throw Error(ErrorCode::invalid_argument, "--limit-train/--limit-test must be >= 0");

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error(ErrorCode::io_error, "cannot create --out folder '" + out_dir + "': " + ec.message());

  // Data-parallel: rank 0 starts the other ranks first, so that they load their data while it loads its own.
  std::unique_ptr<ParallelRun> parallel;
  if (gpus > 0) {
    parallel = std::make_unique<ParallelRun>(gpus, rank, id_file.empty() ? out_dir + "/nccl_id" : id_file,
                                             std::vector<std::string>(argv + 1, argv + argc), out_dir);
  }
  const Device device = parallel ? parallel->device(device_text, threads) : pick_device(device_text, threads);
  if (parallel) parallel->launch();
  const bool lead = !parallel || parallel->rank() == 0;  // the rank that evaluates, reports and writes

  const Dataset train_set = load_fashion_mnist(data_dir, "train", limit_train);
  const Dataset test_set = lead ? load_fashion_mnist(data_dir, "t10k", limit_test) : Dataset{};
  if (train_set.height != kImageSide || train_set.width != kImageSide ||
      (lead && (test_set.height != kImageSide || test_set.width != kImageSide)))
    throw Error(ErrorCode::format_error, "expected 28x28 images in '" + data_dir + "', got " +
                                             std::to_string(train_set.height) + "x" + std::to_string(train_set.width));

  AutoEncoder model(device, seed, lr);
  const Communicator* comm = parallel ? &parallel->connect(device) : nullptr;
  const int ranks = parallel ? parallel->ranks() : 1;
  if (lead) {
    std::printf("tconv train: %s, %lld train / %lld test images, batch %lld, lr %g, seed %llu, init fingerprint %s\n",
                device.name().c_str(), static_cast<long long>(train_set.count), static_cast<long long>(test_set.count),
                static_cast<long long>(batch), lr, static_cast<unsigned long long>(seed), model.fingerprint().c_str());
    if (parallel) {
      const int v = Communicator::library_version();
      std::printf("data-parallel: %d rank(s), one process per GPU, global batch %lld, NCCL %d.%d.%d\n", ranks,
                  static_cast<long long>(batch), v / 10000, v / 100 % 100, v % 100);
    }
    std::fflush(stdout);
  }

  const int64_t steps_per_epoch = (train_set.count + batch - 1) / batch;
  Progress progress(epochs, steps_per_epoch, lead ? progress_mode : 0);
  CsvLog csv(lead ? out_dir + "/train_log.csv" : std::string());
  LossHistory history;
  std::vector<float> batch_pixels(static_cast<std::size_t>(batch * kImagePixels));
  double train_seconds = 0, test_mse = NAN;
  int64_t images_trained = 0;

  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const std::vector<int64_t> order = epoch_permutation(seed, epoch, train_set.count);
    double loss_sum = 0;
    const auto epoch_start = Clock::now();
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      const int64_t first = step * batch, n = std::min(batch, train_set.count - first);
      // This rank's shard of the global batch (all of it on one device).
      int64_t from = first, take = n;
      float share = 1.0f;
      if (parallel) {
        const Shard s = shard_of(n, parallel->rank(), ranks);
        from = first + s.offset, take = s.count, share = s.weight;
        if (take == 0) from = first, take = 1;  // n < ranks: take part with weight 0
      }
      for (int64_t i = 0; i < take; ++i)
        std::copy_n(train_set.image(order[from + i]), kImagePixels, batch_pixels.data() + i * kImagePixels);
      // Data-parallel: the loss returned is the global batch's (reduced with the gradients), the same on
      // every rank, so every rank stops together if it diverges.
      const double loss = model.train_step(batch_pixels.data(), take, comm, share);
      if (!std::isfinite(loss))
        throw Error(ErrorCode::internal, "training diverged: loss " + std::to_string(loss) + " at epoch " +
                                             std::to_string(epoch + 1) + " step " + std::to_string(step + 1));
      loss_sum += loss;
      images_trained += n;
      if (!lead) continue;
      const double ips = static_cast<double>(first + n) / seconds_since(epoch_start);
      history.step_epoch.push_back(epoch + static_cast<double>(step + 1) / steps_per_epoch);
      history.step_loss.push_back(loss);
      csv.add(epoch + 1, step + 1, loss, NAN, ips);
      progress.step(epoch + 1, step + 1, loss_sum / (step + 1), ips);
    }
    const double epoch_seconds = seconds_since(epoch_start);
    train_seconds += epoch_seconds;
    if (!lead) continue;
    test_mse = model.evaluate(test_set.pixels.data(), test_set.count, kEvalBatch);
    const double train_mse = loss_sum / steps_per_epoch, ips = train_set.count / epoch_seconds;
    history.epoch_train.push_back(train_mse);
    history.epoch_test.push_back(test_mse);
    csv.add(epoch + 1, steps_per_epoch, train_mse, test_mse, ips);
    csv.flush();
    progress.epoch_done(epoch + 1, train_mse, test_mse, ips, epoch_seconds);
  }

  if (!lead) {
    parallel->finish();
    return 0;
  }
  const double images_per_s = images_trained / train_seconds;
  TrainingRecord record{.epochs = epochs, .batch = batch, .learning_rate = lr, .seed = seed,
                        .train_images = train_set.count, .test_images = test_set.count, .eval_batch = kEvalBatch,
                        .test_mse = test_mse,
                        .device_kind = device.kind() == DeviceKind::cuda ? "cuda" : "cpu"};
  model.save(out_dir + "/model.safetensors", record);
  write_grid(out_dir + "/recon.png", model, test_set);
  write_png(out_dir + "/loss.png", loss_curve(history, "tconv auto-encoder on Fashion-MNIST: MSE"));
  const nlohmann::json summary = {{"tool", "tconv"}, {"device", device.name()}, {"ranks", ranks},
                                  {"threads", device.num_threads()},
                                  {"epochs", epochs}, {"batch", batch}, {"seed", seed},
                                  {"train_images", train_set.count}, {"test_images", test_set.count},
                                  {"test_mse", test_mse}, {"images_per_s", images_per_s},
                                  {"train_seconds", train_seconds}, {"history_test_mse", history.epoch_test},
                                  {"history_train_mse", history.epoch_train}};
  const std::string js = summary.dump() + "\n";
  io::write_file_atomic(out_dir + "/summary.json", js.data(), js.size());
  // The other ranks end once rank 0's outputs are written; a failed rank fails the run.
  if (parallel) parallel->finish();
  const std::string where = ranks > 1 ? std::to_string(ranks) + " GPUs, rank 0 on " + device.name() : device.name();
  std::printf("tconv: test MSE %s after %lld epochs, %.0f images/s (%s); outputs in %s\n",
              fmt("%.6f", test_mse).c_str(), static_cast<long long>(epochs), images_per_s, where.c_str(),
              out_dir.c_str());
  std::printf("test MSE (exact): %.17g\n", test_mse);
  return 0;
}

int cmd_reconstruct(int argc, char** argv) {
  CLI::App app{"Reload a model saved by `tconv train` (the kernels' decode path), render its reconstructions "
               "and recompute its test MSE, which must equal the one recorded at training",
               "tconv reconstruct"};
  std::string model_path, out_path, device_text, data_dir = kDefaultDataDir;
  int threads = 0;
  app.add_option("--model", model_path, "model.safetensors written by tconv train")->required();
  app.add_option("--out", out_path, "PNG to write")->required();
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files");
  app.add_option("--device", device_text, "cpu | cuda[:N] (default: the GPU when there is one, else the CPU)");
  app.add_option("--threads", threads, "CPU threads (0: default)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const Device device = pick_device(device_text, threads);
  TrainingRecord record;
  AutoEncoder model = AutoEncoder::load(model_path, device, &record);
  const Dataset test_set = load_fashion_mnist(data_dir, "t10k", record.test_images);
  if (test_set.count != record.test_images)
    throw Error(ErrorCode::invalid_argument, "the model was evaluated on " + std::to_string(record.test_images) +
                                                 " test images but '" + data_dir + "' holds only " +
                                                 std::to_string(test_set.count));
  const double test_mse = model.evaluate(test_set.pixels.data(), test_set.count, record.eval_batch);
  write_grid(out_path, model, test_set);
  const bool same = test_mse == record.test_mse;
  // Every algorithm tconv picks is deterministic per device kind (bit-identical across runs and thread
  // counts), so on the kind that trained the model the value must be identical; another kind may round
  // differently, and is only reported.
  const std::string kind = device.kind() == DeviceKind::cuda ? "cuda" : "cpu";
  const bool comparable = kind == record.device_kind;
  std::printf("tconv reconstruct: test MSE %.6f on %lld images (%s); recorded at training (%s) %.6f: %s\n", test_mse,
              static_cast<long long>(test_set.count), device.name().c_str(), record.device_kind.c_str(),
              record.test_mse, same ? "identical" : comparable ? "DIFFERENT" : "different device kind");
  std::printf("test MSE (exact): %.17g\n", test_mse);
  if (!same && comparable) {
    std::fprintf(stderr, "tconv reconstruct: the reloaded model gives test MSE %.17g, training recorded %.17g\n",
                 test_mse, record.test_mse);
    return 1;
  }
  return 0;
}

}  // namespace tconv::cli
