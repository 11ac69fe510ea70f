// libFuzzer target: core::validate on a Problem built from fuzz bytes. Any field may hold any value of its
// type (sizes from all of int64, enums with values outside their lists). validate must return without
// undefined behaviour; for an accepted problem the size helpers must agree with its promise (no overflow:
// every element count positive and below 2^60), and describe(), macs() and flops() must run cleanly.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <limits>

#include "core/problem.hpp"

using namespace tconv;

namespace {

// Sizes drawn from the ranges where bugs hide: small values, values near powers of two, anything at all.
int64_t pick(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return in.ConsumeIntegralInRange<int64_t>(-3, 9);
    case 1: return in.ConsumeIntegralInRange<int64_t>(0, 5000);
    case 2: {
      const int64_t p = int64_t{1} << in.ConsumeIntegralInRange<int>(0, 62);
      return p + in.ConsumeIntegralInRange<int64_t>(-1, 1);
    }
    default: return in.ConsumeIntegral<int64_t>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  core::Problem p;
  p.dir = static_cast<core::Direction>(in.ConsumeIntegralInRange<uint8_t>(0, 3));
  core::Geometry& g = p.g;
  for (int64_t* v : {&g.n, &g.c_in, &g.c_out, &g.groups, &g.h_in, &g.w_in, &g.h_out, &g.w_out, &g.kh, &g.kw,
                     &g.stride_h, &g.stride_w, &g.dil_h, &g.dil_w, &g.pad_h, &g.pad_w})
    *v = pick(in);
  const DataType types[] = {DataType::float32, DataType::float16, DataType::bfloat16, DataType::uint8};
  p.act_type = in.ConsumeBool() ? types[in.ConsumeIntegralInRange<int>(0, 3)] : static_cast<DataType>(in.ConsumeIntegral<uint32_t>());
  p.precision = static_cast<Precision>(in.ConsumeIntegralInRange<uint8_t>(0, 4));
  p.with_bias = in.ConsumeBool();
  p.accumulate = in.ConsumeBool();
  p.neuron.type = static_cast<NeuronType>(in.ConsumeIntegralInRange<uint8_t>(0, 15));
  p.neuron.a = in.ConsumeFloatingPoint<float>();

  const core::Status s = core::validate(p);
  if (!s.ok()) {
    if (s.message.empty()) std::abort();  // every refusal must say why
    return 0;
  }
  const int64_t limit = int64_t{1} << 60;
  for (int64_t e : {core::src_elements(g), core::dst_elements(g), core::wei_elements(g)})
    if (e <= 0 || e > limit) std::abort();
  (void)p.describe();
  // macs() walks every (pixel, tap) pair of each axis; keep that walk short so the fuzzer stays fast.
  if (g.h_in <= 4096 && g.kh <= 4096 && g.w_in <= 4096 && g.kw <= 4096 && g.h_in * g.kh + g.w_in * g.kw <= (1 << 16)) {
    const int64_t m = p.macs();
    if (m < 0) std::abort();
    (void)p.flops();
  }
  return 0;
}
