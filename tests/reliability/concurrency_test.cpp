// Concurrency (issue 7; the contract is in docs/reliability.md). A binary of its own, labelled
// `concurrency`, so that the ThreadSanitizer build (scripts/sanitize.sh) runs exactly these tests.
//
// What is shared here is what the contract says may be shared:
//   - one ConvolutionTranspose / ConvolutionTransposeGradient object encoded from 4 threads at once, each
//     thread with its own command buffers, images and gradient states, using the encode forms that read
//     the kernel's properties without writing them (explicit destination, encode_to_state); properties are
//     configured once, before the threads start;
//   - command buffers: handlers added and waits made from several threads;
//   - devices and buffers: allocation from several threads, one device's queue fed by several threads.
// Results are compared bit for bit with the same work done by one thread. Some threads use the kernel's
// own device (one queue: commands run one after another) and some a device context of their own (same
// physical device, another queue: commands of different threads really run at the same time).
//
// Under TSan, OMP_NUM_THREADS=1 and TCONV_NUM_THREADS=1 (libgomp is not instrumented), so devices here are
// made with Device::cpu(0), which honours TCONV_NUM_THREADS.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "reliability/reliability_util.hpp"

namespace tconv::reliability {
namespace {

constexpr int kThreads = 4;
constexpr int kIters = 6;

// Runs f(t) on kThreads threads released together, and joins them.
template <class F>
void on_threads(F f) {
  std::atomic<int> ready{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      f(t);
    });
  for (auto& th : ts) th.join();
}

// Thread t's command-buffer device: even threads share the kernel's device (its queue), odd ones have their
// own context on the same physical device.
Device device_for(const Rig& rig, int t) { return t % 2 == 0 ? rig.dev : Device::cpu(0); }

TEST(Concurrency, OneTransposeEncodedFromFourThreads) {
  Rig rig(0);
  // Inputs per (thread, iteration), and destinations sized once (sizing writes the properties).
  const ImageDescriptor dd = rig.fwd.destination_image_descriptor({rig.source()});
  std::vector<std::vector<Image>> xs(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i) xs[t].push_back(int_image(rig.dev, 2, 5, 5, 4, t * 31 + i));

  // One thread: the expected outputs.
  std::vector<std::vector<std::vector<float>>> want(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i) {
      CommandBuffer cb(rig.dev);
      Image y(rig.dev, dd);
      rig.fwd.encode(cb, xs[t][i], y);
      cb.commit();
      cb.wait_and_check();
      want[t].push_back(all_floats(y));
    }

  // Four threads, one kernel; alternate the explicit-destination encode and encode_to_state.
  std::vector<std::vector<std::vector<float>>> got(kThreads);
  on_threads([&](int t) {
    const Device dev = device_for(rig, t);
    for (int i = 0; i < kIters; ++i) {
      CommandBuffer cb(dev);
      Image y(dev, dd);
      if (i % 2 == 0) {
        rig.fwd.encode(cb, xs[t][i], y);
      } else {
        const ConvolutionTransposeGradientState st = rig.fwd.result_state(xs[t][i], {}, y);
        rig.fwd.encode_to_state(cb, xs[t][i], st, y);
      }
      cb.commit();
      cb.wait_and_check();
      got[t].push_back(all_floats(y));
    }
  });
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i) EXPECT_EQ(got[t][i], want[t][i]) << "thread " << t << " iteration " << i;
}

TEST(Concurrency, OneGradientEncodedFromFourThreads) {
  Rig rig(0);
  struct Work {
    Image x, gy;
    ConvolutionTransposeGradientState st;
  };
  // Each (thread, iteration) gets its own forward encode, hence its own state; made twice (one set for the
  // one-thread run, one for the four-thread run: gradient states accumulate, e4).
  auto make_work = [&] {
    std::vector<std::vector<Work>> w(kThreads);
    CommandBuffer cb(rig.dev);
    for (int t = 0; t < kThreads; ++t)
      for (int i = 0; i < kIters; ++i) {
        Work k;
        k.x = int_image(rig.dev, 2, 5, 5, 4, t * 17 + i);
        const Image y = rig.fwd.encode(cb, k.x, ConvolutionGradientState{}, k.st, false);
        k.gy = int_image(rig.dev, 2, y.height(), y.width(), y.feature_channels(), t * 5 + i + 1);
        w[t].push_back(k);
      }
    cb.commit();
    cb.wait_and_check();
    return w;
  };
  std::vector<std::vector<Work>> serial = make_work(), parallel = make_work();
  // Configure the gradient kernel once (auto-configuration writes its properties): every state above was
  // made with the same forward properties, so one configuration fits all.
  const ImageDescriptor gd = rig.grad.destination_image_descriptor({serial[0][0].gy, serial[0][0].x}, {serial[0][0].st});

  auto run_one = [&](const Device& dev, Work& k) {
    CommandBuffer cb(dev);
    Image gx(dev, gd);
    rig.grad.encode(cb, k.gy, k.x, k.st, gx);
    cb.commit();
    cb.wait_and_check();
    PassResult r;
    r.gx = all_floats(gx);
    r.gw = buffer_floats(k.st.gradient_for_weights());
    r.gb = buffer_floats(k.st.gradient_for_biases());
    return r;
  };
  std::vector<std::vector<PassResult>> want(kThreads), got(kThreads);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i) want[t].push_back(run_one(rig.dev, serial[t][i]));
  on_threads([&](int t) {
    const Device dev = device_for(rig, t);
    for (int i = 0; i < kIters; ++i) got[t].push_back(run_one(dev, parallel[t][i]));
  });
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i) {
      EXPECT_EQ(got[t][i], want[t][i]) << "thread " << t << " iteration " << i;
      EXPECT_FALSE(want[t][i].gw.empty());
    }
}

TEST(Concurrency, HandlersAndWaitsFromOtherThreads) {
  const Device dev = Device::cpu(0);
  CommandBuffer cb(dev);
  std::atomic<bool> release{false};
  cb.encode("gate", [&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
  });
  std::atomic<int> handled{0};
  std::atomic<int> self_waits{0};
  // Handlers added from four threads at once; one of them waits on its own buffer (must not deadlock).
  on_threads([&](int t) {
    cb.add_completed_handler([&, t](const CommandBuffer& done) {
      EXPECT_EQ(done.status(), CommandBufferStatus::completed);
      if (t == 0) {
        done.wait_until_completed();
        self_waits.fetch_add(1);
      }
      handled.fetch_add(1);
    });
  });
  cb.commit();
  // Four waiters; each must see every handler finished when its wait returns.
  std::vector<int> seen(kThreads, -1);
  std::thread waiters([&] {
    on_threads([&](int t) {
      cb.wait_until_completed();
      seen[static_cast<std::size_t>(t)] = handled.load();
    });
  });
  // A handler may still be added while the buffer runs.
  cb.add_completed_handler([&](const CommandBuffer&) { handled.fetch_add(1); });
  release.store(true);
  waiters.join();
  EXPECT_EQ(cb.status(), CommandBufferStatus::completed);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(seen[static_cast<std::size_t>(t)], kThreads + 1) << "waiter " << t;
  EXPECT_EQ(self_waits.load(), 1);
  // Once finished, adding a handler is refused (it would never run).
  expect_error([&] { cb.add_completed_handler([](const CommandBuffer&) {}); }, ErrorCode::invalid_argument,
               "already finished");
}

// A handler added from another thread while the buffer finishes either runs or is refused: never lost.
// The window where a lost handler could slip in is short, so two adders race each of many small buffers
// (bounded by time, to stay fast under sanitizers).
TEST(Concurrency, HandlerAddedWhileFinishingIsNeverLost) {
  const Device dev = Device::cpu(0);
  int lost_total = 0, rounds = 0;
  const auto stop_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (; rounds < 20000 && std::chrono::steady_clock::now() < stop_at; ++rounds) {
    CommandBuffer cb(dev);
    cb.encode("nothing", [] {});
    std::atomic<int> ran{0}, accepted{0};
    std::atomic<bool> go{false};
    auto adder = [&] {
      while (!go.load()) std::this_thread::yield();
      for (;;) {
        try {
          cb.add_completed_handler([&](const CommandBuffer&) { ran.fetch_add(1); });
          accepted.fetch_add(1);
        } catch (const Error&) {
          break;  // finished: refused, as documented
        }
      }
    };
    std::thread a1(adder), a2(adder);
    go.store(true);
    cb.commit();
    a1.join();
    a2.join();
    cb.wait_until_completed();
    lost_total += accepted.load() - ran.load();
  }
  EXPECT_EQ(lost_total, 0) << "handlers accepted but never run, over " << rounds << " buffers";
}

TEST(Concurrency, DeviceAndBufferAllocationFromFourThreads) {
  const Device shared = Device::cpu(0);
  std::atomic<int> failures{0};
  on_threads([&](int t) {
    for (int i = 0; i < 40; ++i) {
      const Device own = Device::cpu(0);  // a fresh context, destroyed at the end of the iteration
      const std::size_t bytes = static_cast<std::size_t>(64 + 4 * (t * 40 + i));
      std::vector<uint8_t> pattern(bytes);
      for (std::size_t k = 0; k < bytes; ++k) pattern[k] = static_cast<uint8_t>(k * 3 + static_cast<std::size_t>(t));
      const Buffer a = Buffer::from_host(shared, pattern.data(), bytes);
      const Buffer b = a.copy_to(own);
      Image img(i % 2 ? own : shared, ImageDescriptor{3 + t, 2, 5, 1, DataType::float16});
      img.fill(static_cast<float>(t + i));
      std::vector<uint8_t> back(bytes);
      b.copy_to_host(back.data(), bytes);
      if (back != pattern || b.same_memory(a)) failures.fetch_add(1);
      for (float v : img.read_floats())
        if (v != static_cast<float>(t + i)) {
          failures.fetch_add(1);
          break;
        }
      // The fresh device's queue starts, runs one buffer and is torn down with the device.
      CommandBuffer cb(own);
      std::atomic<bool> ran{false};
      cb.encode("touch", [&] { ran.store(true); });
      cb.commit();
      cb.wait_and_check();
      if (!ran.load()) failures.fetch_add(1);
    }
  });
  EXPECT_EQ(failures.load(), 0);
}

TEST(Concurrency, OneQueueFedByFourThreadsKeepsEachThreadsOrder) {
  const Device dev = Device::cpu(0);
  std::vector<std::vector<int>> order(kThreads);
  std::vector<CommandBuffer> last;
  std::mutex last_mu;
  on_threads([&](int t) {
    CommandBuffer final_cb(dev);
    for (int i = 0; i < 50; ++i) {
      CommandBuffer cb(dev);
      cb.encode("append", [&order, t, i] { order[static_cast<std::size_t>(t)].push_back(i); });
      cb.commit();
      final_cb = cb;
    }
    std::lock_guard<std::mutex> lock(last_mu);
    last.push_back(final_cb);
  });
  for (const CommandBuffer& cb : last) cb.wait_and_check();  // one queue: all earlier buffers are done too
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(order[static_cast<std::size_t>(t)].size(), 50u) << "thread " << t;
    for (int i = 0; i < 50; ++i) EXPECT_EQ(order[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)], i);
  }
}

TEST(Concurrency, FunctionalCallsFromFourThreads) {
  const Device dev = Device::cpu(0);
  // x [2][6][6][4] NHWC, OHWI weights [8][3][3][4], stride 2: y [2][13][13][8].
  std::vector<float> x(2 * 6 * 6 * 4), w(8 * 3 * 3 * 4);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.37f;
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i % 5) - 2) * 0.21f;
  ConvTranspose2dOptions o;
  o.stride = {2, 2};
  o.layout = ActivationLayout::nhwc;
  o.weight_layout = WeightLayout::mps;
  const std::vector<int64_t> xs{2, 6, 6, 4}, ws{8, 3, 3, 4};
  const std::vector<int64_t> ys = conv_transpose2d_output_shape(xs, ws, o);
  auto forward = [&](std::vector<float>& y) {
    y.assign(static_cast<std::size_t>(ys[0] * ys[1] * ys[2] * ys[3]), 0.0f);
    conv_transpose2d(dev, {x.data(), DataType::float32, xs}, {w.data(), DataType::float32, ws}, {},
                     {y.data(), DataType::float32, ys}, o);
  };
  std::vector<float> want;
  forward(want);
  std::vector<std::vector<float>> got(kThreads);
  on_threads([&](int t) {
    for (int i = 0; i < kIters; ++i) {
      std::vector<float> y;
      forward(y);
      if (i == 0 || y != got[static_cast<std::size_t>(t)]) got[static_cast<std::size_t>(t)] = y;
    }
  });
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[static_cast<std::size_t>(t)], want) << "thread " << t;
}

}  // namespace
}  // namespace tconv::reliability
