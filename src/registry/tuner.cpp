#include "registry/tuner.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <new>
#include <optional>

#include "core/dtype.hpp"
#include "cuda/backend.hpp"

namespace tconv::registry {

const AlgorithmTiming* TuneResult::fastest(bool deterministic_only) const {
  const AlgorithmTiming* best = nullptr;
  for (const AlgorithmTiming& t : timings) {
    if (!t.error.empty() || (deterministic_only && !t.algorithm->deterministic())) continue;
    if (best == nullptr || t.ms < best->ms) best = &t;  // strict: on a tie the earlier in preference order wins
  }
  return best;
}

const AlgorithmTiming* TuneResult::default_timing() const {
  for (const AlgorithmTiming& t : timings)
    if (t.algorithm == default_choice) return t.error.empty() ? &t : nullptr;
  return nullptr;
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Random values in [-1, 1) stored as `t` (float32, float16 or bfloat16), from a 64-bit LCG: the tensors of a
// tuning run only need to be ordinary numbers (no zeros that a kernel could skip, no denormals or infinities).
std::vector<uint8_t> random_bytes(int64_t count, DataType t, uint64_t& state) {
  std::vector<uint8_t> bytes(static_cast<std::size_t>(count) * size_of(t));
  for (int64_t i = 0; i < count; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float v = static_cast<float>(state >> 40) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
    core::store_from_f32(bytes.data(), i, t, v);
  }
  return bytes;
}

// Host memory aligned to 64 bytes (the SIMD kernels' loads and the workspace contract).
struct HostBlock {
  std::vector<uint8_t> storage;
  void* p = nullptr;
  void allocate(std::size_t bytes) {
    storage.assign(bytes + 64, 0);
    const auto addr = reinterpret_cast<uintptr_t>(storage.data());
    p = storage.data() + (64 - addr % 64) % 64;
  }
};

// Device memory, freed with the object (also on every error path).
struct DeviceBlock {
  int device = 0;
  void* p = nullptr;
  DeviceBlock() = default;
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  ~DeviceBlock() {
    if (p != nullptr) cuda_backend::free_device(device, p);
  }
};

struct DeviceEvents {
  int device = 0;
  std::vector<void*> ev;
  DeviceEvents() = default;
  DeviceEvents(const DeviceEvents&) = delete;
  DeviceEvents& operator=(const DeviceEvents&) = delete;
  ~DeviceEvents() {
    for (void* e : ev) cuda_backend::event_destroy(device, e);
  }
  core::Status create(int dev, int count) {
    device = dev;
    for (int i = 0; i < count; ++i) {
      void* e = nullptr;
      if (auto s = cuda_backend::event_create(dev, &e, /*timing=*/true); !s.ok()) return s;
      ev.push_back(e);
    }
    return core::Status::ok_status();
  }
};

struct DeviceStream {
  int device = 0;
  void* s = nullptr;
  DeviceStream() = default;
  DeviceStream(const DeviceStream&) = delete;
  DeviceStream& operator=(const DeviceStream&) = delete;
  ~DeviceStream() {
    if (s != nullptr) {
      (void)cuda_backend::stream_synchronize(device, s);
      cuda_backend::stream_destroy(device, s);
    }
  }
};

// Times one algorithm: a probe run (timed, also the first warm-up), then max(warmup − 1, 0) more warm-up runs
// and `reps` timed runs, unless the probe is already > prune_factor × the best median so far. The backend
// supplies `run_timed(n, times)`: runs the algorithm n times, back to back, appending each run's ms to
// `times` when times != nullptr.
using RunTimed = std::function<core::Status(int, std::vector<double>*)>;

AlgorithmTiming time_one(const Algorithm* a, const TuneOptions& o, double best_ms, const RunTimed& run_timed) {
  AlgorithmTiming t;
  t.algorithm = a;
  std::vector<double> probe;
  if (auto s = run_timed(1, &probe); !s.ok()) {
    t.error = s.message;
    return t;
  }
  if (best_ms > 0 && probe[0] > o.prune_factor * best_ms) {
    t.ms = probe[0];
    t.runs = 1;
    return t;
  }
  std::vector<double> times;
  core::Status s = run_timed(std::max(o.warmup - 1, 0), nullptr);
  if (s.ok()) s = run_timed(o.reps, &times);
  if (!s.ok()) {
    t.error = s.message;
    return t;
  }
  t.ms = median(times);
  t.runs = o.reps;
  return t;
}

}  // namespace

core::Status tune(const core::Problem& p, DeviceKind backend, const TuneOptions& o, TuneResult* out,
                  const std::vector<const Algorithm*>* candidates) {
  if (auto s = core::validate(p); !s.ok()) return s;
  if (o.reps < 1 || o.warmup < 0 || o.num_threads < 1 || !(o.prune_factor > 1.0))
    return core::invalid("tune: reps " + std::to_string(o.reps) + " must be >= 1, warmup " + std::to_string(o.warmup) +
                         " >= 0, num_threads " + std::to_string(o.num_threads) + " >= 1, prune_factor " +
                         std::to_string(o.prune_factor) + " > 1");
  const std::vector<const Algorithm*>& cands = candidates != nullptr ? *candidates : algorithms(backend);
  TuneResult r;
  r.nondeterministic_timed = o.allow_nondeterministic;
  r.default_choice = choose_from(cands, nullptr, {}, p, o.allow_nondeterministic).algorithm;
  std::vector<const Algorithm*> eligible;
  std::size_t ws_bytes = 0;
  for (const Algorithm* a : cands) {
    if (a->backend() != backend || (!a->deterministic() && !o.allow_nondeterministic) || a->decline_reason(p)) continue;
    eligible.push_back(a);
    ws_bytes = std::max(ws_bytes, a->workspace_bytes(p));
  }
  if (eligible.empty()) return core::unsupported("tune: no algorithm takes " + p.describe());

  const core::Geometry& g = p.g;
  const int64_t n_src = core::src_elements(g), n_dst = core::dst_elements(g), n_wei = core::wei_elements(g);
  uint64_t rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
  const std::vector<uint8_t> h_src = random_bytes(n_src, p.act_type, rng);
  const std::vector<uint8_t> h_dst = random_bytes(n_dst, p.act_type, rng);
  const std::vector<uint8_t> h_wei = random_bytes(n_wei, DataType::float32, rng);
  const std::vector<uint8_t> h_bias = random_bytes(g.c_out, DataType::float32, rng);

  // One src-shaped and one dst-shaped activation tensor serve every direction (fwd reads src and writes dst,
  // bwd_data reads diff_dst and writes diff_src, bwd_weights reads both): no run reads what it writes.
  auto make_args = [&](void* src, void* dst, void* wei, void* bias, void* dwei, void* dbias) {
    core::Args a = core::dense_args(g, src, dst, static_cast<const float*>(wei),
                                    p.with_bias ? static_cast<const float*>(bias) : nullptr,
                                    static_cast<float*>(dwei), p.with_bias ? static_cast<float*>(dbias) : nullptr);
    return a;
  };

  if (backend == DeviceKind::cpu) {
    HostBlock src, dst, wei, bias, dwei, dbias, ws;
    try {
      src.allocate(h_src.size());
      dst.allocate(h_dst.size());
      wei.allocate(h_wei.size());
      bias.allocate(h_bias.size());
      dwei.allocate(h_wei.size());
      dbias.allocate(h_bias.size());
      ws.allocate(ws_bytes);
    } catch (const std::bad_alloc&) {
      return core::fail(ErrorCode::out_of_memory, "tune: cannot allocate the host tensors of " + p.describe());
    }
    std::memcpy(src.p, h_src.data(), h_src.size());
    std::memcpy(dst.p, h_dst.data(), h_dst.size());
    std::memcpy(wei.p, h_wei.data(), h_wei.size());
    std::memcpy(bias.p, h_bias.data(), h_bias.size());
    const core::Args args = make_args(src.p, dst.p, wei.p, bias.p, dwei.p, dbias.p);
    ExecContext ctx;
    ctx.num_threads = o.num_threads;
    double best = 0;
    for (const Algorithm* a : eligible) {
      auto run_timed = [&](int count, std::vector<double>* times) -> core::Status {
        for (int i = 0; i < count; ++i) {
          const auto t0 = std::chrono::steady_clock::now();
          if (auto s = a->run(p, args, ws_bytes ? ws.p : nullptr, ctx); !s.ok()) return s;
          if (times) times->push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        return core::Status::ok_status();
      };
      AlgorithmTiming t = time_one(a, o, best, run_timed);
      if (t.error.empty() && (best == 0 || t.ms < best)) best = t.ms;
      r.timings.push_back(std::move(t));
    }
  } else {
    const int dev = o.cuda_device;
    if (dev < 0 || dev >= cuda_backend::device_count())
      return core::fail(ErrorCode::device_unavailable, "tune: no CUDA device " + std::to_string(dev) + " (" +
                                                           std::to_string(cuda_backend::device_count()) + " present)");
    DeviceBlock src, dst, wei, bias, dwei, dbias, ws;
    using Alloc = std::pair<DeviceBlock*, std::size_t>;
    for (const Alloc& al : {Alloc{&src, h_src.size()}, Alloc{&dst, h_dst.size()}, Alloc{&wei, h_wei.size()},
                            Alloc{&bias, h_bias.size()}, Alloc{&dwei, h_wei.size()}, Alloc{&dbias, h_bias.size()},
                            Alloc{&ws, std::max<std::size_t>(ws_bytes, 1)}}) {
      al.first->device = dev;
      if (auto s = cuda_backend::malloc_device(dev, al.second, &al.first->p); !s.ok()) return s;
    }
    using Upload = std::pair<DeviceBlock*, const std::vector<uint8_t>*>;
    for (const Upload& up : {Upload{&src, &h_src}, Upload{&dst, &h_dst}, Upload{&wei, &h_wei}, Upload{&bias, &h_bias}})
      if (auto s = cuda_backend::copy_h2d(dev, up.first->p, up.second->data(), up.second->size()); !s.ok()) return s;
    // A blocking stream: ordered after the stream-ordered allocations and synchronous copies above, which
    // run on the legacy default stream (backend.hpp).
    DeviceStream stream;
    stream.device = dev;
    if (auto s = cuda_backend::stream_create(dev, &stream.s, /*blocking=*/true); !s.ok()) return s;
    DeviceEvents ev;
    if (auto s = ev.create(dev, std::max(o.reps, 1) + 1); !s.ok()) return s;
    const core::Args args = make_args(src.p, dst.p, wei.p, bias.p, dwei.p, dbias.p);
    ExecContext ctx;
    ctx.cuda_device = dev;
    ctx.cuda_stream = stream.s;
    double best = 0;
    for (const Algorithm* a : eligible) {
      auto run_timed = [&](int count, std::vector<double>* times) -> core::Status {
        if (count == 0) return core::Status::ok_status();
        if (times == nullptr) {
          for (int i = 0; i < count; ++i)
            if (auto s = a->run(p, args, ws.p, ctx); !s.ok()) return s;
          return cuda_backend::stream_synchronize(dev, stream.s);
        }
        // Back to back on the stream, an event before each run and after the last: GPU time per run.
        for (int i = 0; i < count; ++i) {
          if (auto s = cuda_backend::event_record(dev, ev.ev[static_cast<std::size_t>(i)], stream.s); !s.ok()) return s;
          if (auto s = a->run(p, args, ws.p, ctx); !s.ok()) return s;
        }
        void* last = ev.ev[static_cast<std::size_t>(count)];
        if (auto s = cuda_backend::event_record(dev, last, stream.s); !s.ok()) return s;
        if (auto s = cuda_backend::event_synchronize(dev, last); !s.ok()) return s;
        for (int i = 0; i < count; ++i) {
          float ms = 0;
          if (auto s = cuda_backend::event_elapsed_ms(dev, ev.ev[static_cast<std::size_t>(i)],
                                                      ev.ev[static_cast<std::size_t>(i) + 1], &ms);
              !s.ok())
            return s;
          times->push_back(ms);
        }
        return core::Status::ok_status();
      };
      AlgorithmTiming t = time_one(a, o, best, run_timed);
      if (t.error.empty() && (best == 0 || t.ms < best)) best = t.ms;
      r.timings.push_back(std::move(t));
    }
  }
  if (r.fastest(false) == nullptr) {
    std::string why;
    for (const AlgorithmTiming& t : r.timings) why += std::string(t.algorithm->name()) + ": " + t.error + "; ";
    // An algorithm failing on a problem it takes is a bug (not "unsupported", which says nothing takes it).
    return core::fail(ErrorCode::internal, "tune: every algorithm that takes " + p.describe() + " failed to run: " + why);
  }
  *out = std::move(r);
  return core::Status::ok_status();
}

void record(PlanCache& cache, const core::Problem& p, const std::string& device, const TuneResult& r) {
  const std::string key = plan_problem_key(p);
  if (const AlgorithmTiming* t = r.fastest(true))
    cache.put(PlanEntry{device, key, true, std::string(t->algorithm->name()), t->ms});
  if (r.nondeterministic_timed)
    if (const AlgorithmTiming* t = r.fastest(false))
      cache.put(PlanEntry{device, key, false, std::string(t->algorithm->name()), t->ms});
}

}  // namespace tconv::registry
