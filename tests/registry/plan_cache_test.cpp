// The plan cache (src/registry/plan_cache.hpp, include/tconv/tuning.hpp): keys, the file format's round trip,
// malformed files refused with a message and without touching the cache, a cached choice overriding the
// preference order (with made-up algorithms and with the real CPU registry through both APIs), stale entries
// ignored, determinism gating, and concurrent plans while the cache is replaced.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "registry/algorithm.hpp"
#include "registry/plan_cache.hpp"
#include "tconv/error.hpp"
#include "tconv/functional.hpp"
#include "tconv/tuning.hpp"

namespace tconv::registry {
namespace {

namespace fs = std::filesystem;

// A made-up algorithm: its name, whether it is deterministic and whether it takes problems are given.
class Fake : public Algorithm {
 public:
  Fake(std::string name, bool det, bool takes) : name_(std::move(name)), det_(det), takes_(takes) {}
  std::string_view name() const noexcept override { return name_; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  bool deterministic() const noexcept override { return det_; }
  std::optional<std::string> decline_reason(const core::Problem&) const override {
    if (takes_) return std::nullopt;
    return "fake declines everything";
  }
  core::Status run(const core::Problem&, const core::Args&, void*, const ExecContext&) const override {
    return core::Status::ok_status();
  }

 private:
  std::string name_;
  bool det_, takes_;
};

core::Problem small_problem(core::Direction dir = core::Direction::bwd_data) {
  core::Problem p;
  p.dir = dir;
  p.g.n = 2;
  p.g.c_in = 6;
  p.g.c_out = 4;
  p.g.h_in = p.g.w_in = 5;
  p.g.kh = p.g.kw = 3;
  p.g.stride_h = p.g.stride_w = 2;
  p.g.pad_h = p.g.pad_w = 1;
  p.g.h_out = p.g.w_out = core::Geometry::out_size(5, 3, 2, 1, 1, 0);
  return p;
}

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("tconv-plan-cache-" + std::string(info->name()) + "-" +
                                        std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_)) v.push_back(e.path().filename().string());
    return v;
  }

 private:
  fs::path dir_;
};

// Every test leaves the process-wide cache inactive.
class PlanCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_active_plan_cache(); }
  void TearDown() override { clear_active_plan_cache(); }
};

TEST_F(PlanCacheTest, KeyNamesEverythingThatAffectsTheChoice) {
  const core::Problem p = small_problem();
  EXPECT_EQ(plan_problem_key(p), plan_problem_key(small_problem()));
  EXPECT_EQ(plan_problem_key(p),
            "bwd_data n2 ci6 co4 g1 in5x5 out9x9 k3x3 s2x2 d1x1 p1x1 float32 fp32 bias=0 accumulate=0 neuron=none");
  std::vector<core::Problem> variants;
  auto vary = [&](auto change) {
    core::Problem q = p;
    change(q);
    variants.push_back(q);
  };
  vary([](core::Problem& q) { q.dir = core::Direction::fwd; });
  vary([](core::Problem& q) { q.g.n = 3; });
  vary([](core::Problem& q) { q.g.c_in = 8; });
  vary([](core::Problem& q) { q.g.c_out = 6; });
  vary([](core::Problem& q) { q.g.groups = 2; });
  vary([](core::Problem& q) { q.g.h_in = 6; });
  vary([](core::Problem& q) { q.g.w_out = 10; });
  vary([](core::Problem& q) { q.g.kw = 2; });
  vary([](core::Problem& q) { q.g.stride_h = 1; });
  vary([](core::Problem& q) { q.g.dil_w = 2; });
  vary([](core::Problem& q) { q.g.pad_h = -1; });
  vary([](core::Problem& q) { q.act_type = DataType::bfloat16; });
  vary([](core::Problem& q) { q.precision = Precision::tf32; });
  vary([](core::Problem& q) { q.with_bias = true; });
  vary([](core::Problem& q) { q.accumulate = true; });
  vary([](core::Problem& q) { q.neuron.type = NeuronType::relu; });
  for (std::size_t i = 0; i < variants.size(); ++i) {
    EXPECT_NE(plan_problem_key(variants[i]), plan_problem_key(p)) << "variant " << i;
    for (std::size_t j = 0; j < i; ++j) EXPECT_NE(plan_problem_key(variants[i]), plan_problem_key(variants[j]));
  }
  EXPECT_EQ(plan_device_label(DeviceKind::cpu).rfind("cpu:", 0), 0u) << plan_device_label(DeviceKind::cpu);
  EXPECT_EQ(plan_device_label(DeviceKind::cuda).rfind("cuda:", 0), 0u);
}

TEST_F(PlanCacheTest, RoundTripThroughAFile) {
  TempDir dir;
  PlanCache c;
  c.put({"cpu:X", "bwd_data a", true, "alg_one", 1.25});
  c.put({"cpu:X", "bwd_data a", false, "alg_two", 0.5});
  c.put({"cuda:H", "fwd b", true, "alg_three", 0.001});
  c.put({"cpu:X", "bwd_data a", true, "alg_four", 1.0});  // replaces alg_one (same device, problem, mode)
  ASSERT_EQ(c.size(), 3u);
  const std::string path = dir.path("plans.json");
  ASSERT_TRUE(c.save(path).ok());
  EXPECT_EQ(dir.files(), std::vector<std::string>{"plans.json"});  // the atomic write left no temporary

  PlanCache d;
  d.put({"other", "other", true, "kept?", 1});
  const core::Status s = d.load(path);
  ASSERT_TRUE(s.ok()) << s.message;
  const std::vector<PlanEntry> a = c.entries(), b = d.entries();
  ASSERT_EQ(b.size(), 3u);  // replaced, not merged
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].device, b[i].device);
    EXPECT_EQ(a[i].problem, b[i].problem);
    EXPECT_EQ(a[i].deterministic_only, b[i].deterministic_only);
    EXPECT_EQ(a[i].algorithm, b[i].algorithm);
    EXPECT_DOUBLE_EQ(a[i].ms, b[i].ms);
  }
  auto e = d.find("cpu:X", "bwd_data a", true);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->algorithm, "alg_four");
  EXPECT_FALSE(d.find("cpu:X", "bwd_data a ", true));  // exact keys only

  PlanCache m;
  m.put({"other", "other", true, "kept", 1});
  ASSERT_TRUE(m.load(path, /*merge=*/true).ok());
  EXPECT_EQ(m.size(), 4u);
}

TEST_F(PlanCacheTest, MalformedFilesAreRefusedWithAMessageAndChangeNothing) {
  TempDir dir;
  const std::string ok_entry =
      R"({"device": "cpu:X", "problem": "p", "deterministic_only": true, "algorithm": "a", "ms": 1.0})";
  auto file = [](const std::string& entries, const std::string& version = "1") {
    return R"({"format": "tconv-plan-cache", "version": )" + version + R"(, "entries": [)" + entries + "]}";
  };
  struct Case {
    std::string text, fragment;
  };
  const std::vector<Case> cases = {
      {"", "not valid JSON"},
      {"{\"format\": \"tconv-plan-cache\", \"version\": 1, \"entries\": [", "not valid JSON"},  // truncated
      {"\x01\x02garbage", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"format": "something-else", "version": 1, "entries": []})", "not a plan cache file"},
      {R"({"version": 1, "entries": []})", "\"format\""},
      {file("", "2"), "newer tconv"},
      {file("", "0"), "not a valid version"},
      {file("", "\"1\""), "\"version\" is missing or not an integer"},
      {R"({"format": "tconv-plan-cache", "version": 1})", "\"entries\" is missing"},
      {R"({"format": "tconv-plan-cache", "version": 1, "entries": {}})", "\"entries\" is missing or not an array"},
      {file("3"), "entry 0 is not an object"},
      {file(ok_entry + R"(, {"device": "cpu:X", "problem": "p", "deterministic_only": true, "ms": 1})"),
       "entry 1: \"algorithm\""},
      {file(R"({"device": "", "problem": "p", "deterministic_only": true, "algorithm": "a", "ms": 1})"),
       "entry 0: \"device\""},
      {file(R"({"device": "d", "problem": 7, "deterministic_only": true, "algorithm": "a", "ms": 1})"),
       "entry 0: \"problem\""},
      {file(R"({"device": "d", "problem": "p", "deterministic_only": "yes", "algorithm": "a", "ms": 1})"),
       "\"deterministic_only\""},
      {file(R"({"device": "d", "problem": "p", "deterministic_only": true, "algorithm": "a", "ms": "1"})"),
       "\"ms\" is missing or not a number"},
      {file(R"({"device": "d", "problem": "p", "deterministic_only": true, "algorithm": "a", "ms": -1})"),
       "not >= 0"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = dir.write("bad" + std::to_string(i) + ".json", cases[i].text);
    PlanCache c;
    c.put({"keep", "keep", true, "keep", 2});
    const core::Status s = c.load(path);
    EXPECT_EQ(s.code, ErrorCode::format_error) << "case " << i << ": " << s.message;
    EXPECT_NE(s.message.find(cases[i].fragment), std::string::npos) << "case " << i << ": " << s.message;
    EXPECT_NE(s.message.find(path), std::string::npos) << "case " << i << ": " << s.message;
    ASSERT_EQ(c.size(), 1u) << "case " << i;
    EXPECT_EQ(c.entries()[0].algorithm, "keep");
  }
  // The same files through the public API: Error(format_error), the active cache untouched.
  const std::string good = dir.write("good.json", file(ok_entry));
  load_plan_cache(good);
  ASSERT_TRUE(plan_cache_active());
  try {
    load_plan_cache(dir.path("bad1.json"));
    ADD_FAILURE() << "a truncated file was loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::format_error);
  }
  EXPECT_TRUE(plan_cache_active());
  EXPECT_EQ(plan_cache_size(), 1u);
  // A missing file is an I/O error, not a format error.
  PlanCache c;
  const core::Status s = c.load(dir.path("absent.json"));
  EXPECT_EQ(s.code, ErrorCode::io_error) << s.message;
  EXPECT_THROW(load_plan_cache(dir.path("absent.json")), Error);
  // An empty entry list is a valid (empty) cache; unknown extra fields are ignored within a version.
  const std::string extra = dir.write("extra.json", R"({"format": "tconv-plan-cache", "version": 1, "note": "x",
      "entries": [{"device": "d", "problem": "p", "deterministic_only": false, "algorithm": "a", "ms": 0, "x": 1}]})");
  ASSERT_TRUE(c.load(extra).ok());
  EXPECT_EQ(c.size(), 1u);
  ASSERT_TRUE(c.load(dir.write("empty.json", file(""))).ok());
  EXPECT_EQ(c.size(), 0u);
}

// choose_from with made-up algorithms: A and B take everything, C takes everything but is nondeterministic,
// D declines everything.
class ChooseFromTest : public PlanCacheTest {
 protected:
  Fake a_{"fake_a", true, true}, b_{"fake_b", true, true}, c_{"fake_c", false, true}, d_{"fake_d", true, false};
  std::vector<const Algorithm*> cands_{&d_, &c_, &a_, &b_};
  core::Problem p_ = small_problem();
  std::string key_ = plan_problem_key(p_);
  PlanCache cache_;
  std::string choose(bool allow_nd, std::string* reason = nullptr) {
    const Choice ch = choose_from(cands_, &cache_, "dev", p_, allow_nd);
    if (reason) *reason = ch.reason;
    return ch.algorithm ? std::string(ch.algorithm->name()) : std::string("(none)");
  }
};

TEST_F(ChooseFromTest, PreferenceOrderWithoutACacheEntry) {
  EXPECT_EQ(choose(false), "fake_a");  // d declines, c is nondeterministic
  EXPECT_EQ(choose(true), "fake_c");
  EXPECT_EQ(choose_from(cands_, nullptr, "dev", p_, false).algorithm, &a_);
  // Entries for another device or another problem do not apply.
  cache_.put({"other-dev", key_, true, "fake_b", 1});
  cache_.put({"dev", plan_problem_key(small_problem(core::Direction::fwd)), true, "fake_b", 1});
  std::string why;
  EXPECT_EQ(choose(false, &why), "fake_a");
  EXPECT_EQ(why, "first in preference order that takes the problem");
}

TEST_F(ChooseFromTest, ACachedChoiceOverridesThePreferenceOrder) {
  cache_.put({"dev", key_, true, "fake_b", 0.25});
  std::string why;
  EXPECT_EQ(choose(false, &why), "fake_b");
  EXPECT_NE(why.find("plan cache"), std::string::npos) << why;
  EXPECT_NE(why.find("0.25"), std::string::npos) << why;
  EXPECT_EQ(choose(true), "fake_b");  // the deterministic entry serves runs that allow nondeterminism too
}

TEST_F(ChooseFromTest, StaleEntriesAreIgnored) {
  std::string why;
  cache_.put({"dev", key_, true, "no_such_algorithm", 0.1});
  EXPECT_EQ(choose(false, &why), "fake_a");
  EXPECT_NE(why.find("'no_such_algorithm' ignored: not registered"), std::string::npos) << why;
  cache_.put({"dev", key_, true, "fake_d", 0.1});
  EXPECT_EQ(choose(false, &why), "fake_a");
  EXPECT_NE(why.find("'fake_d' ignored: declines: fake declines everything"), std::string::npos) << why;
  // Nothing takes the problem: the failure names the ignored entry and every decline.
  std::vector<const Algorithm*> only_d{&d_};
  const Choice none = choose_from(only_d, &cache_, "dev", p_, true);
  EXPECT_EQ(none.algorithm, nullptr);
  EXPECT_NE(none.reason.find("no algorithm takes"), std::string::npos) << none.reason;
  EXPECT_NE(none.reason.find("fake_d: fake declines everything"), std::string::npos) << none.reason;
}

TEST_F(ChooseFromTest, DeterminismGatesCachedEntries) {
  std::string why;
  // A hand-edited deterministic-mode entry naming a nondeterministic algorithm: only where allowed.
  cache_.put({"dev", key_, true, "fake_c", 0.1});
  EXPECT_EQ(choose(false, &why), "fake_a");
  EXPECT_NE(why.find("'fake_c' ignored: nondeterministic"), std::string::npos) << why;
  EXPECT_EQ(choose(true), "fake_c");
  // Tuned with nondeterministic algorithms: the mode-any entry serves only runs that allow them, and is
  // consulted before the deterministic entry there.
  cache_.clear();
  cache_.put({"dev", key_, false, "fake_c", 0.1});
  EXPECT_EQ(choose(false, &why), "fake_a");
  EXPECT_EQ(why, "first in preference order that takes the problem");  // not even consulted
  cache_.put({"dev", key_, true, "fake_b", 0.2});
  EXPECT_EQ(choose(false), "fake_b");
  EXPECT_EQ(choose(true), "fake_c");
  // A mode-any entry that has gone stale falls back to the deterministic entry, not the order.
  cache_.put({"dev", key_, false, "gone", 0.1});
  EXPECT_EQ(choose(true, &why), "fake_b");
  EXPECT_NE(why.find("'gone' ignored"), std::string::npos) << why;
}

// ---------------------------------------------------------------- the real CPU registry

const Algorithm* declining_cpu_algorithm(const core::Problem& p) {
  for (const Algorithm* a : algorithms(DeviceKind::cpu))
    if (a->decline_reason(p)) return a;
  return nullptr;
}

std::string entry_file(const std::string& algorithm, const core::Problem& p) {
  return R"({"format": "tconv-plan-cache", "version": 1, "entries": [{"device": ")" +
         plan_device_label(DeviceKind::cpu) + R"(", "problem": ")" + plan_problem_key(p) +
         R"(", "deterministic_only": true, "algorithm": ")" + algorithm + R"(", "ms": 0.5}]})";
}

TEST_F(PlanCacheTest, ChooseUsesTheActiveCacheOnTheRealRegistry) {
  TempDir dir;
  const core::Problem p = small_problem();
  const Algorithm* def = choose(p, DeviceKind::cpu).algorithm;
  const Algorithm* ref = find("cpu_ref_f64");
  ASSERT_NE(def, nullptr);
  ASSERT_NE(ref, nullptr);
  ASSERT_NE(def, ref) << "the test needs an optimised CPU algorithm that takes " << p.describe();
  EXPECT_FALSE(plan_cache_active());

  load_plan_cache(dir.write("ref.json", entry_file("cpu_ref_f64", p)));
  EXPECT_TRUE(plan_cache_active());
  EXPECT_EQ(plan_cache_size(), 1u);
  const Choice c = choose(p, DeviceKind::cpu);
  EXPECT_EQ(c.algorithm, ref) << c.reason;
  EXPECT_NE(c.reason.find("plan cache"), std::string::npos);
  // A forced algorithm still wins over the cache; another direction or backend is not affected.
  EXPECT_EQ(choose(p, DeviceKind::cpu, def->name()).algorithm, def);
  EXPECT_NE(choose(small_problem(core::Direction::fwd), DeviceKind::cpu).algorithm, ref);

  // Saved and reloaded through the public calls: the same choice.
  const std::string saved = dir.path("saved.json");
  save_plan_cache(saved);
  clear_plan_cache();
  EXPECT_FALSE(plan_cache_active());
  EXPECT_EQ(choose(p, DeviceKind::cpu).algorithm, def);
  load_plan_cache(saved);
  EXPECT_EQ(choose(p, DeviceKind::cpu).algorithm, ref);

  // A stale entry (an algorithm that declines the problem, or one this build does not have): the default.
  const Algorithm* decliner = declining_cpu_algorithm(p);
  ASSERT_NE(decliner, nullptr) << "every CPU algorithm takes " << p.describe();
  load_plan_cache(dir.write("stale.json", entry_file(std::string(decliner->name()), p)));
  Choice s = choose(p, DeviceKind::cpu);
  EXPECT_EQ(s.algorithm, def) << s.reason;
  EXPECT_NE(s.reason.find("ignored: declines"), std::string::npos) << s.reason;
  load_plan_cache(dir.write("gone.json", entry_file("cpu_removed_long_ago", p)));
  s = choose(p, DeviceKind::cpu);
  EXPECT_EQ(s.algorithm, def) << s.reason;
  EXPECT_NE(s.reason.find("not registered"), std::string::npos) << s.reason;
}

TEST_F(PlanCacheTest, TheFunctionalApiPlansWithTheCache) {
  TempDir dir;
  // tconv grad's problem for dx: bwd_data, no bias, float32, fp32 (the CLI test drives the same end to end).
  const core::Problem p = small_problem();
  const core::Geometry& g = p.g;
  std::vector<float> w(static_cast<std::size_t>(g.c_in * g.og() * g.kh * g.kw)),
      dy(static_cast<std::size_t>(g.n * g.c_out * g.h_out * g.w_out)),
      dx1(static_cast<std::size_t>(g.n * g.c_in * g.h_in * g.w_in)), dx2(dx1.size());
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
  for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
  ConvTranspose2dOptions opt;
  opt.stride = {2, 2};
  opt.padding = {1, 1};
  const std::vector<int64_t> xs{g.n, g.c_in, g.h_in, g.w_in}, ws{g.c_in, g.og(), g.kh, g.kw},
      ys{g.n, g.c_out, g.h_out, g.w_out};
  auto run = [&](std::vector<float>& dx) {
    ConvTranspose2dGrads gr;
    gr.dx = ArrayRef{dx.data(), DataType::float32, xs};
    return conv_transpose2d_backward(Device::cpu(1), ConstArrayRef{nullptr, DataType::float32, xs},
                                     ConstArrayRef{w.data(), DataType::float32, ws},
                                     ConstArrayRef{dy.data(), DataType::float32, ys}, gr, opt)
        .data_algorithm;
  };
  const std::string def = run(dx1);
  ASSERT_NE(def, "cpu_ref_f64");
  load_plan_cache(dir.write("ref.json", entry_file("cpu_ref_f64", p)));
  EXPECT_EQ(run(dx2), "cpu_ref_f64");
  EXPECT_EQ(dx1, dx2);  // small integers: every algorithm is exact
}

TEST_F(PlanCacheTest, ConcurrentPlansWhileTheCacheIsReplaced) {
  const core::Problem p = small_problem();
  const Algorithm* def = choose(p, DeviceKind::cpu).algorithm;
  const Algorithm* ref = find("cpu_ref_f64");
  PlanCache with_ref;
  with_ref.put({plan_device_label(DeviceKind::cpu), plan_problem_key(p), true, "cpu_ref_f64", 1});
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> planners;
  for (int t = 0; t < 4; ++t) {
    planners.emplace_back([&] {
      while (!stop.load()) {
        const Algorithm* a = choose(p, DeviceKind::cpu).algorithm;
        if (a != def && a != ref) bad.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    set_active_plan_cache(with_ref);
    clear_active_plan_cache();
  }
  stop = true;
  for (std::thread& t : planners) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace tconv::registry
