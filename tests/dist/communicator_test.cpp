// The communicator (include/tconv/communicator.hpp). Every build: the id's text, file and environment forms,
// the argument checks, and — without NCCL — that nothing can be made. With NCCL and one GPU: the reduction
// path with one rank (sum, pre-multiplied sum, mean on raw buffers and on a real gradient state, ordering
// against the commands around it). With several GPUs: one rank per GPU in threads of this process (NCCL's
// one-GPU-per-rank rule holds; ranks sharing a GPU are not valid and are never made).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api/api_test_util.hpp"
#include "tconv/communicator.hpp"
#include "tconv/tconv.hpp"

using namespace tconv;
using tconv::test::expect_error;

namespace {

std::filesystem::path temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("tconv_dist_" + name + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                  "_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(p);
  return p;
}

CommunicatorId patterned_id(uint8_t seed) {
  CommunicatorId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<uint8_t>(seed + 37 * i);
  return id;
}

bool have_gpu_and_nccl() { return Communicator::available() && Device::cuda_device_count() > 0; }

std::vector<float> read_buffer(const Buffer& b) {
  std::vector<float> v(b.length() / 4);
  b.copy_to_host(v.data(), v.size() * 4);
  return v;
}

// Runs `cb` and waits; every test below must see its errors.
void run(CommandBuffer& cb) {
  cb.commit();
  cb.wait_and_check();
}

}  // namespace

// ---------------------------------------------------------------- ids (every build)

TEST(CommunicatorId, HexRoundTripsEveryByte) {
  CommunicatorId id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<uint8_t>(255 - 2 * i);
  const std::string hex = id.to_hex();
  ASSERT_EQ(hex.size(), 256u);
  EXPECT_EQ(hex.substr(0, 6), "fffdfb");
  EXPECT_EQ(CommunicatorId::from_hex(hex), id);
  EXPECT_EQ(CommunicatorId::from_hex("  " + hex + "\n"), id);  // a file's trailing newline is fine
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(CommunicatorId::from_hex(upper), id);
}

TEST(CommunicatorId, MalformedHexIsAFormatErrorNamingTheProblem) {
  const std::string hex = patterned_id(1).to_hex();
  expect_error([&] { CommunicatorId::from_hex(hex.substr(1)); }, ErrorCode::format_error, "got 255 characters");
  expect_error([&] { CommunicatorId::from_hex(""); }, ErrorCode::format_error, "got 0 characters");
  std::string bad = hex;
  bad[17] = 'g';
  expect_error([&] { CommunicatorId::from_hex(bad); }, ErrorCode::format_error, "character 17 is 'g'");
}

TEST(CommunicatorId, FileRoundTripAndWaitingForRankZero) {
  const auto dir = temp_dir("idfile");
  const std::string path = (dir / "nccl_id").string();
  const CommunicatorId id = patterned_id(7);
  // Missing, no waiting: an io_error naming the file.
  expect_error([&] { CommunicatorId::read_file(path, 0); }, ErrorCode::io_error, path);
  // Missing for a while: the reader waits at least that long before giving up.
  const auto t0 = std::chrono::steady_clock::now();
  expect_error([&] { CommunicatorId::read_file(path, 0.2); }, ErrorCode::io_error, "waited");
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.2);
  // Written by "rank 0" while another rank waits for it.
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    id.write_file(path);
  });
  const CommunicatorId got = CommunicatorId::read_file(path, 30);
  writer.join();
  EXPECT_EQ(got, id);
  // A corrupt file names the file.
  {
    const std::string junk = "not an id\n";
    FILE* f = std::fopen((dir / "junk").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  expect_error([&] { CommunicatorId::read_file((dir / "junk").string()); }, ErrorCode::format_error, "junk");
  std::filesystem::remove_all(dir);
}

TEST(CommunicatorId, FromTheEnvironment) {
  const CommunicatorId id = patterned_id(9);
  ASSERT_EQ(setenv("TCONV_TEST_NCCL_ID", id.to_hex().c_str(), 1), 0);
  EXPECT_EQ(CommunicatorId::from_environment("TCONV_TEST_NCCL_ID"), id);
  ASSERT_EQ(setenv("TCONV_TEST_NCCL_ID", "12", 1), 0);
  expect_error([] { CommunicatorId::from_environment("TCONV_TEST_NCCL_ID"); }, ErrorCode::format_error,
               "TCONV_TEST_NCCL_ID");
  unsetenv("TCONV_TEST_NCCL_ID");
  expect_error([] { CommunicatorId::from_environment("TCONV_TEST_NCCL_ID"); }, ErrorCode::invalid_argument,
               "TCONV_TEST_NCCL_ID");
}

// ---------------------------------------------------------------- argument checks (every build)

TEST(Communicator, RankAndSizeAreCheckedFirst) {
  const Device cpu = Device::cpu(1);
  const CommunicatorId id = patterned_id(3);
  expect_error([&] { Communicator(cpu, id, 0, 0); }, ErrorCode::invalid_argument, "at least 1 rank, got 0");
  expect_error([&] { Communicator(cpu, id, 2, 2); }, ErrorCode::invalid_argument, "rank 2 is outside [0, 2)");
  expect_error([&] { Communicator(cpu, id, -1, 4); }, ErrorCode::invalid_argument, "rank -1");
}

TEST(Communicator, NullHandleRefusesUse) {
  Communicator c;
  EXPECT_FALSE(c);
  CommandBuffer cb(Device::cpu(1));
  expect_error([&] { c.rank(); }, ErrorCode::invalid_argument, "null communicator");
  expect_error([&] { c.encode_join(cb); }, ErrorCode::invalid_argument, "null communicator");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{Buffer::allocate(Device::cpu(1), 16)}}, ReduceOp::sum); },
               ErrorCode::invalid_argument, "null communicator");
  c.abort();  // harmless on a null handle
}

TEST(Communicator, WithoutNcclNothingCanBeMade) {
  if (Communicator::available()) GTEST_SKIP() << "this build has NCCL " << Communicator::library_version();
  EXPECT_EQ(Communicator::library_version(), 0);
  expect_error([] { CommunicatorId::generate(); }, ErrorCode::unsupported, "no NCCL");
  expect_error([] { Communicator(Device::cpu(1), patterned_id(1), 0, 1); }, ErrorCode::unsupported, "no NCCL");
}

TEST(Communicator, RefusesTheCpu) {
  if (!Communicator::available()) GTEST_SKIP() << "this build has no NCCL";
  expect_error([] { Communicator(Device::cpu(1), patterned_id(1), 0, 1); }, ErrorCode::invalid_argument,
               "CUDA device");
}

// ---------------------------------------------------------------- one rank on one GPU

TEST(CommunicatorOneRank, SumScaledSumAndMeanInPlace) {
  if (!have_gpu_and_nccl()) GTEST_SKIP() << "needs NCCL and a CUDA device";
  EXPECT_GE(Communicator::library_version(), 21300);
  const Device gpu = Device::cuda(0);
  Communicator c(gpu, CommunicatorId::generate(), 0, 1);
  // NCCL must never use NVLink multicast (shared GPUs): the communicator turned it off before NCCL started.
  ASSERT_NE(std::getenv("NCCL_NVLS_ENABLE"), nullptr);
  EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);

  std::vector<float> v(1000);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3, 3);
  for (float& x : v) x = u(rng);
  Buffer a = Buffer::from_host(gpu, v.data(), v.size() * 4);
  Buffer b = Buffer::from_host(gpu, v.data(), v.size() * 4);
  Buffer m = Buffer::from_host(gpu, v.data(), v.size() * 4);
  CommandBuffer cb(gpu);
  c.encode_all_reduce(cb, {FloatSpan{a}}, ReduceOp::sum);
  // A sub-range only: values outside it stay as they were.
  c.encode_all_reduce(cb, {FloatSpan{b, 40, 100}}, ReduceOp::sum, 0.25f);
  c.encode_all_reduce(cb, {FloatSpan{m}}, ReduceOp::mean);
  c.encode_join(cb);
  run(cb);
  const std::vector<float> ra = read_buffer(a), rb = read_buffer(b), rm = read_buffer(m);
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(ra[i], v[i]) << i;  // the sum over one rank is the rank's own value
    ASSERT_EQ(rm[i], v[i]) << i;
    const bool inside = i >= 10 && i < 110;
    ASSERT_EQ(rb[i], inside ? v[i] * 0.25f : v[i]) << i;  // ×0.25 is exact
  }
}

TEST(CommunicatorOneRank, ReducesAGradientStateBetweenTheCommandsAroundIt) {
  if (!have_gpu_and_nccl()) GTEST_SKIP() << "needs NCCL and a CUDA device";
  const Device gpu = Device::cuda(0);
  Communicator c(gpu, CommunicatorId::generate(), 0, 1);
  ConvolutionDescriptor d(4, 4, 8, 4);
  d.stride_x = d.stride_y = 2;
  std::vector<float> w(static_cast<std::size_t>(d.weight_elements())), bias(4), xv(2 * 6 * 6 * 8);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
  for (std::size_t i = 0; i < xv.size(); ++i) xv[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
  auto ds = std::make_shared<ArrayDataSource>(d, w, bias);
  ConvolutionTranspose f(gpu, ds);
  ConvolutionTransposeGradient g(gpu, ds);
  Image x(gpu, ImageDescriptor{6, 6, 8, 2});
  x.buffer().copy_from_host(xv.data(), xv.size() * 4);

  // The unreduced gradients, for reference.
  std::vector<float> want_w, want_b;
  Image y;
  {
    CommandBuffer cb(gpu);
    ConvolutionTransposeGradientState st;
    y = f.encode(cb, x, ConvolutionGradientState(), st, false);
    g.encode(cb, y, x, st);  // gY = Y: any values will do
    run(cb);
    want_w = read_buffer(st.gradient_for_weights());
    want_b = read_buffer(st.gradient_for_biases());
  }
  // The same step with an all-reduce (×0.5, exact) right after the gradient kernel, a data-gradient kernel
  // encoded after it (runs while the all-reduce may still be in flight), the join, and a command after the
  // join that must see the reduced values.
  CommandBuffer cb(gpu);
  ConvolutionTransposeGradientState st;
  Image y2 = f.encode(cb, x, ConvolutionGradientState(), st, false);
  g.encode(cb, y2, x, st);
  c.encode_all_reduce(cb, st, ReduceOp::sum, 0.5f);
  ConvolutionTransposeGradientState st2;
  Image y3 = f.encode(cb, x, ConvolutionGradientState(), st2, false);
  Image gx = g.encode(cb, y3, x, st2);
  c.encode_join(cb);
  auto seen = std::make_shared<std::vector<float>>();
  cb.encode("read after join", [st, seen] { *seen = read_buffer(st.gradient_for_weights()); });
  run(cb);
  const std::vector<float> got_w = read_buffer(st.gradient_for_weights()), got_b = read_buffer(st.gradient_for_biases());
  ASSERT_EQ(got_w.size(), want_w.size());
  ASSERT_EQ(seen->size(), want_w.size());
  bool nonzero = false;
  for (std::size_t i = 0; i < want_w.size(); ++i) {
    ASSERT_EQ(got_w[i], want_w[i] * 0.5f) << i;
    ASSERT_EQ((*seen)[i], want_w[i] * 0.5f) << i;
    nonzero = nonzero || want_w[i] != 0;
  }
  EXPECT_TRUE(nonzero) << "the test's gradients are all zero: it would not notice a missing reduction";
  for (std::size_t i = 0; i < want_b.size(); ++i) ASSERT_EQ(got_b[i], want_b[i] * 0.5f) << i;
  // The second, unreduced state is untouched by the first one's all-reduce.
  EXPECT_EQ(read_buffer(st2.gradient_for_weights()), want_w);
}

// The entry for memory tconv does not own (a PyTorch tensor, a cudaMalloc'ed array): the reduction is queued on
// the caller's stream — here a command buffer's, whose commit then synchronises it — and only the named
// ranges change. Bad spans are refused before NCCL sees them.
TEST(CommunicatorOneRank, EnqueuesOnTheCallersStreamOverExternalMemory) {
  if (!have_gpu_and_nccl()) GTEST_SKIP() << "needs NCCL and a CUDA device";
  const Device gpu = Device::cuda(0);
  Communicator c(gpu, CommunicatorId::generate(), 0, 1);
  std::vector<float> v(600);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) - 300.5f;
  Buffer a = Buffer::from_host(gpu, v.data(), v.size() * 4);
  float* p = static_cast<float*>(a.device_pointer());
  ASSERT_NE(p, nullptr);
  CommandBuffer cb(gpu);
  void* stream = cb.cuda_stream();
  // Two ranges in one group, an empty span (its address is never read) and ×0.5 (exact).
  c.enqueue_all_reduce(stream, {DeviceFloatSpan{p + 10, 100}, DeviceFloatSpan{nullptr, 0}, DeviceFloatSpan{p + 400, 50}},
                       ReduceOp::sum, 0.5f);
  run(cb);
  const std::vector<float> r = read_buffer(a);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const bool inside = (i >= 10 && i < 110) || (i >= 400 && i < 450);
    ASSERT_EQ(r[i], inside ? v[i] * 0.5f : v[i]) << i;
  }
  expect_error([&] { c.enqueue_all_reduce(stream, {DeviceFloatSpan{nullptr, 4}}, ReduceOp::sum); },
               ErrorCode::invalid_argument, "null address");
  expect_error([&] {
    c.enqueue_all_reduce(stream, {DeviceFloatSpan{reinterpret_cast<char*>(p) + 2, 4}}, ReduceOp::sum);
  }, ErrorCode::invalid_argument, "aligned");
  expect_error([&] { c.enqueue_all_reduce(stream, {DeviceFloatSpan{p, 4}}, ReduceOp::mean, 2.0f); },
               ErrorCode::invalid_argument, "scale must be 1");
  // Host memory is not device memory of this GPU: NCCL would fault on it.
  expect_error([&] { c.enqueue_all_reduce(stream, {DeviceFloatSpan{v.data(), 4}}, ReduceOp::sum); },
               ErrorCode::invalid_argument, "not device memory");
}

TEST(CommunicatorOneRank, SpansAreCheckedAtEncodeTime) {
  if (!have_gpu_and_nccl()) GTEST_SKIP() << "needs NCCL and a CUDA device";
  const Device gpu = Device::cuda(0);
  Communicator c(gpu, CommunicatorId::generate(), 0, 1);
  CommandBuffer cb(gpu);
  Buffer b = Buffer::allocate(gpu, 64);
  expect_error([&] { c.encode_all_reduce(cb, std::vector<FloatSpan>{}, ReduceOp::sum); }, ErrorCode::invalid_argument, "no spans");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{Buffer()}}, ReduceOp::sum); }, ErrorCode::invalid_argument,
               "span 0 has a null buffer");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b}, FloatSpan{Buffer::allocate(Device::cpu(1), 64)}}, ReduceOp::sum); },
               ErrorCode::invalid_argument, "span 1 lives on cpu");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b, 2}}, ReduceOp::sum); }, ErrorCode::invalid_argument,
               "offset 2 is not a multiple of 4");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b, 8, 15}}, ReduceOp::sum); }, ErrorCode::invalid_argument,
               "15 floats from byte 8 do not fit in the buffer's 64 bytes");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b, 68}}, ReduceOp::sum); }, ErrorCode::invalid_argument,
               "past the buffer");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b}}, ReduceOp::mean, 0.5f); }, ErrorCode::invalid_argument,
               "scale must be 1");
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b}}, ReduceOp::sum, INFINITY); }, ErrorCode::invalid_argument,
               "finite");
  CommandBuffer on_cpu(Device::cpu(1));
  expect_error([&] { c.encode_join(on_cpu); }, ErrorCode::invalid_argument, "command buffer lives on cpu");
  // An aborted communicator refuses further work.
  c.abort();
  expect_error([&] { c.encode_all_reduce(cb, {FloatSpan{b}}, ReduceOp::sum); }, ErrorCode::invalid_argument, "aborted");
}

// ---------------------------------------------------------------- several GPUs, one rank each

namespace {

// Runs `body(rank, communicator)` on every GPU (one thread per rank; all construct together, as NCCL's
// initialisation needs all ranks).
template <class F>
void on_every_gpu(int ranks, F body) {
  const CommunicatorId id = CommunicatorId::generate();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<std::size_t>(ranks));
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      try {
        Communicator c(Device::cuda(r), id, r, ranks);
        body(r, c);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < ranks; ++r) EXPECT_EQ(errors[static_cast<std::size_t>(r)], "") << "rank " << r;
}

}  // namespace

TEST(CommunicatorSeveralGpus, SumMeanAndWeightedSumAcrossRanks) {
  if (!Communicator::available() || Device::cuda_device_count() < 2)
    GTEST_SKIP() << "needs NCCL and at least 2 CUDA devices (found " << Device::cuda_device_count() << ")";
  const int ranks = std::min(Device::cuda_device_count(), 8);
  const std::size_t n = 4099;  // not a multiple of any chunk size
  // Small integers: every sum is exact whatever the order, so the expected values are exact too.
  auto value = [](int r, std::size_t i) { return static_cast<float>(static_cast<int>((i * 7 + r * 13) % 31) - 15); };
  std::vector<std::vector<float>> sums(ranks), means(ranks), weighted(ranks);
  on_every_gpu(ranks, [&](int r, Communicator& c) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = value(r, i);
    const Device& gpu = c.device();
    Buffer s = Buffer::from_host(gpu, v.data(), n * 4), m = Buffer::from_host(gpu, v.data(), n * 4),
           w = Buffer::from_host(gpu, v.data(), n * 4);
    CommandBuffer cb(gpu);
    c.encode_all_reduce(cb, {FloatSpan{s}}, ReduceOp::sum);
    c.encode_all_reduce(cb, {FloatSpan{m}}, ReduceOp::mean);
    // Each rank's share of a batch, as the data-parallel training uses it: (r + 1) / 8 (exact in binary).
    c.encode_all_reduce(cb, {FloatSpan{w}}, ReduceOp::sum, static_cast<float>(r + 1) / 8.0f);
    c.encode_join(cb);
    run(cb);
    sums[r] = read_buffer(s);
    means[r] = read_buffer(m);
    weighted[r] = read_buffer(w);
  });
  for (std::size_t i = 0; i < n; ++i) {
    double sum = 0, wsum = 0;
    for (int r = 0; r < ranks; ++r) {
      sum += value(r, i);
      wsum += value(r, i) * (r + 1) / 8.0;
    }
    for (int r = 0; r < ranks; ++r) {
      ASSERT_EQ(sums[r][i], static_cast<float>(sum)) << "rank " << r << " at " << i;
      ASSERT_NEAR(means[r][i], sum / ranks, 1e-6 * (1 + std::abs(sum))) << "rank " << r << " at " << i;
      ASSERT_EQ(weighted[r][i], static_cast<float>(wsum)) << "rank " << r << " at " << i;
      ASSERT_EQ(means[r][i], means[0][i]) << "every rank receives the same bits";
    }
  }
}

TEST(CommunicatorSeveralGpus, DeterministicAcrossRepetitions) {
  if (!Communicator::available() || Device::cuda_device_count() < 2)
    GTEST_SKIP() << "needs NCCL and at least 2 CUDA devices (found " << Device::cuda_device_count() << ")";
  const int ranks = std::min(Device::cuda_device_count(), 8);
  const std::size_t n = 1 << 20;
  std::vector<std::vector<std::vector<float>>> results(ranks);
  on_every_gpu(ranks, [&](int r, Communicator& c) {
    std::mt19937 rng(static_cast<unsigned>(100 + r));
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    for (int rep = 0; rep < 5; ++rep) {
      Buffer b = Buffer::from_host(c.device(), v.data(), n * 4);
      CommandBuffer cb(c.device());
      c.encode_all_reduce(cb, {FloatSpan{b}}, ReduceOp::sum, 0.3f);
      c.encode_join(cb);
      run(cb);
      results[r].push_back(read_buffer(b));
    }
  });
  for (int r = 0; r < ranks; ++r)
    for (std::size_t rep = 0; rep < results[r].size(); ++rep)
      ASSERT_TRUE(results[r][rep] == results[0][0]) << "rank " << r << " repetition " << rep;
}
