// Canonical problem: validation, sizes and FLOP counts. See problem.hpp for the definition.
#include "core/problem.hpp"

#include <algorithm>
#include <limits>
#include <sstream>

namespace tconv::core {

const char* to_string(Direction d) noexcept {
  switch (d) {
    case Direction::fwd: return "fwd";
    case Direction::bwd_data: return "bwd_data";
    case Direction::bwd_weights: return "bwd_weights";
  }
  return "?";
}

namespace {

// a·b·…, or -1 on overflow of int64 (all factors are already known to be positive).
int64_t checked_product(std::initializer_list<int64_t> xs) {
  int64_t r = 1;
  for (int64_t x : xs) {
    if (x != 0 && r > std::numeric_limits<int64_t>::max() / x) return -1;
    r *= x;
  }
  return r;
}

}  // namespace

int64_t src_elements(const Geometry& g) { return checked_product({g.n, g.h_in, g.w_in, g.c_in}); }
int64_t dst_elements(const Geometry& g) { return checked_product({g.n, g.h_out, g.w_out, g.c_out}); }
int64_t wei_elements(const Geometry& g) { return checked_product({g.c_out, g.kh, g.kw, g.c_in / g.groups}); }

Status validate(const Problem& p) {
  const Geometry& g = p.g;
  // Enumerations first: a value outside the enum (a cast integer, a corrupt file) would otherwise reach
  // switch statements with no matching case and take a path no algorithm was written for.
  if (static_cast<unsigned>(p.dir) > static_cast<unsigned>(Direction::bwd_weights)) {
    return invalid("direction value " + std::to_string(static_cast<unsigned>(p.dir)) +
                   " is out of range (0 fwd, 1 bwd_data, 2 bwd_weights)");
  }
  if (static_cast<unsigned>(p.precision) > static_cast<unsigned>(Precision::fp16)) {
    return invalid("precision value " + std::to_string(static_cast<unsigned>(p.precision)) +
                   " is out of range (0 fp32, 1 tf32, 2 bf16, 3 fp16)");
  }
  if (static_cast<unsigned>(p.neuron.type) > static_cast<unsigned>(NeuronType::gelu)) {
    return invalid("neuron type value " + std::to_string(static_cast<unsigned>(p.neuron.type)) +
                   " is out of range (0 none .. " + std::to_string(static_cast<unsigned>(NeuronType::gelu)) +
                   " gelu)");
  }
  struct Named { const char* name; int64_t v; };
  const Named positive[] = {{"batch n", g.n},           {"input channels", g.c_in},
                            {"output channels", g.c_out}, {"groups", g.groups},
                            {"input height", g.h_in},     {"input width", g.w_in},
                            {"output height", g.h_out},   {"output width", g.w_out},
                            {"kernel height", g.kh},      {"kernel width", g.kw},
                            {"stride height", g.stride_h}, {"stride width", g.stride_w},
                            {"dilation height", g.dil_h}, {"dilation width", g.dil_w}};
  for (const auto& x : positive) {
    if (x.v <= 0) {
      std::ostringstream m;
      m << x.name << " must be positive, got " << x.v;
      return invalid(m.str());
    }
  }
  if (g.c_in % g.groups != 0 || g.c_out % g.groups != 0) {
    std::ostringstream m;
    m << "groups (" << g.groups << ") must divide input channels (" << g.c_in << ") and output channels ("
      << g.c_out << ")";
    return invalid(m.str());
  }
  // Every size product an algorithm may form must fit in int64 (elements and bytes).
  const int64_t limit = std::numeric_limits<int64_t>::max() / 8;
  const int64_t se = src_elements(g), de = dst_elements(g), we = wei_elements(g);
  if (se < 0 || de < 0 || we < 0 || se > limit || de > limit || we > limit) {
    std::ostringstream m;
    m << "tensor sizes overflow 64-bit indexing: src " << g.n << "x" << g.h_in << "x" << g.w_in << "x" << g.c_in
      << ", dst " << g.n << "x" << g.h_out << "x" << g.w_out << "x" << g.c_out << ", weights " << g.c_out << "x"
      << g.kh << "x" << g.kw << "x" << g.c_in / g.groups;
    return invalid(m.str());
  }
  // Padding so large that |pad| overflows index arithmetic with the extents.
  const int64_t big = int64_t{1} << 40;
  if (g.pad_h > big || g.pad_h < -big || g.pad_w > big || g.pad_w < -big || g.kh > big || g.kw > big ||
      g.stride_h > big || g.stride_w > big || g.dil_h > big || g.dil_w > big) {
    std::ostringstream m;
    m << "geometry values out of range (|pad|, kernel, stride, dilation must be below 2^40): pad " << g.pad_h << ","
      << g.pad_w << " kernel " << g.kh << "," << g.kw << " stride " << g.stride_h << "," << g.stride_w
      << " dilation " << g.dil_h << "," << g.dil_w;
    return invalid(m.str());
  }
  if (p.act_type != DataType::float32 && p.act_type != DataType::float16 && p.act_type != DataType::bfloat16) {
    return unsupported("image data type " + std::string(to_string(p.act_type)) +
                       " is not supported (float32, float16, bfloat16)");
  }
  if (p.dir != Direction::fwd && p.neuron.type != NeuronType::none) {
    return invalid("a fused neuron is only applied in the forward direction; gradient problems must not carry one");
  }
  if (p.accumulate && p.dir != Direction::bwd_weights) {
    return invalid("accumulate is only meaningful for the weight gradient (bwd_weights)");
  }
  return Status::ok_status();
}

int64_t Problem::macs() const {
  // Every (src pixel, kernel tap) pair that lands inside dst contributes Ig·c_out MACs. Count exactly.
  // For each kernel tap q, the source positions i with 0 <= i·s − pad + d·(k−1−q) < out form one interval:
  // count it in closed form (O(k), so a huge but valid extent cannot turn this into a long loop).
  auto taps = [](int64_t in, int64_t out, int64_t k, int64_t s, int64_t d, int64_t pad) {
    auto floor_div = [](int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
    int64_t t = 0;
    for (int64_t q = 0; q < k; ++q) {
      const int64_t shift = d * (k - 1 - q) - pad;  // o = i·s + shift
      const int64_t lo = std::max<int64_t>(0, -floor_div(shift, s));                 // ceil(−shift/s)
      const int64_t hi = std::min<int64_t>(in - 1, floor_div(out - 1 - shift, s));
      if (hi >= lo) t += hi - lo + 1;
    }
    return t;
  };
  const int64_t th = taps(g.h_in, g.h_out, g.kh, g.stride_h, g.dil_h, g.pad_h);
  const int64_t tw = taps(g.w_in, g.w_out, g.kw, g.stride_w, g.dil_w, g.pad_w);
  // validate() bounds each tensor, not this product (it can pass 2^63 for a valid problem, found by
  // fuzz/fuzz_problem.cpp): saturate instead of overflowing.
  int64_t m = 1;
  for (int64_t f : {g.n, th, tw, g.ig(), g.c_out})
    if (__builtin_mul_overflow(m, f, &m)) return std::numeric_limits<int64_t>::max();
  return m;
}

double Problem::flops() const { return 2.0 * static_cast<double>(macs()); }

std::string Problem::describe() const {
  std::ostringstream s;
  s << to_string(dir) << " n" << g.n << " ci" << g.c_in << " co" << g.c_out << " g" << g.groups << " in" << g.h_in
    << "x" << g.w_in << " out" << g.h_out << "x" << g.w_out << " k" << g.kh << "x" << g.kw << " s" << g.stride_h
    << "x" << g.stride_w << " d" << g.dil_h << "x" << g.dil_w << " p" << g.pad_h << "x" << g.pad_w << " "
    << tconv::to_string(act_type) << " " << tconv::to_string(precision);
  if (with_bias) s << " bias";
  if (accumulate) s << " accumulate";
  if (neuron.type != NeuronType::none) s << " neuron=" << tconv::to_string(neuron.type);
  return s.str();
}

Args dense_args(const Geometry& g, void* src, void* dst, const float* wei, const float* bias, float* diff_wei,
                float* diff_bias) {
  Args a;
  a.src = dense_nhwc(src, g.h_in, g.w_in, g.c_in);
  a.diff_src = a.src;
  a.dst = dense_nhwc(dst, g.h_out, g.w_out, g.c_out);
  a.diff_dst = a.dst;
  a.wei = wei;
  a.bias = bias;
  a.diff_wei = diff_wei;
  a.diff_bias = diff_bias;
  return a;
}

}  // namespace tconv::core
