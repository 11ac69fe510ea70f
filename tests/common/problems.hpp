// Random canonical problems over named shape classes (design §4.2: tile edges, 1×1 images, batch 1, groups,
// dilation, negative padding, output padding ...). Each class biases one aspect to its awkward values and
// leaves the rest small and random, so a suite run covers every class with many variations in seconds.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/problem.hpp"

namespace tconv::testing {

using core::Direction;
using core::Geometry;
using core::Problem;

enum class ShapeClass {
  basic,          // small everything
  tiny_images,    // 1×1 source images (and 1-wide / 1-high)
  batch1,         // n = 1, larger images
  odd_sizes,      // odd extents and odd kernels
  groups,         // 2..4 groups
  depthwise,      // groups = input channels (channel multiplier 1 or 2)
  dilation,       // dilation up to 3
  stride,         // stride up to 4, often larger than the kernel
  kernels,        // even and odd kernels up to 7
  negative_pad,   // padding −3..−1
  output_pad,     // PyTorch output_padding 1..max(s, d)−1
  explicit_out,   // output size cropped or extended past PyTorch's size
  non_square,     // every parameter different on the two axes
  channels,       // channel counts 1..70
  half_types,     // float16 / bfloat16 images
  precisions,     // tf32 / bf16 / fp16 input rounding
  tile_edges,     // larger images and channel counts at SIMD/tile edges ±1 (7, 8, 9, 15, 16, 17, ...)
};

inline const std::vector<ShapeClass>& all_shape_classes() {
  static const std::vector<ShapeClass> v = {
      ShapeClass::basic,        ShapeClass::tiny_images, ShapeClass::batch1,     ShapeClass::odd_sizes,
      ShapeClass::groups,       ShapeClass::depthwise,   ShapeClass::dilation,   ShapeClass::stride,
      ShapeClass::kernels,      ShapeClass::negative_pad, ShapeClass::output_pad, ShapeClass::explicit_out,
      ShapeClass::non_square,   ShapeClass::channels,    ShapeClass::half_types, ShapeClass::precisions,
      ShapeClass::tile_edges};
  return v;
}

inline std::string to_string(ShapeClass s) {
  switch (s) {
    case ShapeClass::basic: return "basic";
    case ShapeClass::tiny_images: return "tiny_images";
    case ShapeClass::batch1: return "batch1";
    case ShapeClass::odd_sizes: return "odd_sizes";
    case ShapeClass::groups: return "groups";
    case ShapeClass::depthwise: return "depthwise";
    case ShapeClass::dilation: return "dilation";
    case ShapeClass::stride: return "stride";
    case ShapeClass::kernels: return "kernels";
    case ShapeClass::negative_pad: return "negative_pad";
    case ShapeClass::output_pad: return "output_pad";
    case ShapeClass::explicit_out: return "explicit_out";
    case ShapeClass::non_square: return "non_square";
    case ShapeClass::channels: return "channels";
    case ShapeClass::half_types: return "half_types";
    case ShapeClass::precisions: return "precisions";
    case ShapeClass::tile_edges: return "tile_edges";
  }
  return "?";
}

// Uniform integer in [lo, hi].
inline int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}
inline bool coin(std::mt19937_64& rng) { return (rng() & 1u) != 0; }

struct GenOptions {
  Direction dir = Direction::fwd;
  bool bias = true;          // may set with_bias (fwd, bwd_weights)
  bool accumulate = true;    // may set accumulate (bwd_weights)
  bool neuron = false;       // may set a fused neuron (fwd)
  bool exact_neurons = true; // only neurons that are exact on small integers (relu, linear ½x+1, |x|, relu_n)
  int64_t max_macs = 60000;  // keeps the reference fast: hundreds of cases per second
};

namespace detail {
struct AxisParams { int64_t in, out, k, s, d, pad; };

inline AxisParams random_axis(std::mt19937_64& rng, ShapeClass sc) {
  AxisParams a{uniform(rng, 1, 5), 0, uniform(rng, 1, 4), uniform(rng, 1, 2), 1, 0};
  int64_t op = 0;
  switch (sc) {
    case ShapeClass::tiny_images: a.in = uniform(rng, 1, 2) == 1 ? 1 : uniform(rng, 1, 3); a.k = uniform(rng, 1, 5); break;
    case ShapeClass::batch1: a.in = uniform(rng, 4, 9); break;
    case ShapeClass::odd_sizes: a.in = 2 * uniform(rng, 1, 5) + 1; a.k = 2 * uniform(rng, 0, 3) + 1; break;
    case ShapeClass::dilation: a.d = uniform(rng, 1, 3); a.k = uniform(rng, 1, 4); break;
    case ShapeClass::stride: a.s = uniform(rng, 1, 4); a.k = uniform(rng, 1, 3); break;
    case ShapeClass::kernels: a.k = uniform(rng, 1, 7); a.in = uniform(rng, 1, 6); break;
    case ShapeClass::non_square: a.k = uniform(rng, 1, 5); a.s = uniform(rng, 1, 3); a.d = uniform(rng, 1, 2); a.in = uniform(rng, 1, 7); break;
    case ShapeClass::channels: a.in = uniform(rng, 1, 3); a.k = uniform(rng, 1, 3); break;
    case ShapeClass::tile_edges: a.in = uniform(rng, 7, 17); a.k = uniform(rng, 1, 3); break;
    default: break;
  }
  const int64_t ke = (a.k - 1) * a.d + 1;
  a.pad = uniform(rng, 0, ke - 1);
  if (sc == ShapeClass::negative_pad) a.pad = -uniform(rng, 1, 3);
  if (sc == ShapeClass::output_pad) {
    if (a.s < 2 && a.d < 2) a.s = uniform(rng, 2, 3);
    op = uniform(rng, 1, std::max(a.s, a.d) - 1);
  } else if (sc != ShapeClass::explicit_out && coin(rng)) {
    op = uniform(rng, 0, std::max(a.s, a.d) - 1);
  }
  a.out = Geometry::out_size(a.in, a.k, a.s, a.d, a.pad, op);
  if (sc == ShapeClass::explicit_out) a.out = uniform(rng, 1, std::max<int64_t>(1, a.out) + 3);
  return a;
}
}  // namespace detail

// A valid random problem of the class (validate() accepts it; the MAC count is below max_macs).
inline Problem random_problem(std::mt19937_64& rng, ShapeClass sc, const GenOptions& opt) {
  for (;;) {
    Problem p;
    p.dir = opt.dir;
    Geometry& g = p.g;
    const detail::AxisParams ah = detail::random_axis(rng, sc);
    detail::AxisParams aw = detail::random_axis(rng, sc);
    if (sc != ShapeClass::non_square && sc != ShapeClass::tiny_images && coin(rng)) aw = ah;  // square half the time
    if (sc == ShapeClass::non_square && ah.k == aw.k && ah.s == aw.s && ah.in == aw.in) continue;
    g.h_in = ah.in; g.h_out = ah.out; g.kh = ah.k; g.stride_h = ah.s; g.dil_h = ah.d; g.pad_h = ah.pad;
    g.w_in = aw.in; g.w_out = aw.out; g.kw = aw.k; g.stride_w = aw.s; g.dil_w = aw.d; g.pad_w = aw.pad;
    if (g.h_out <= 0 || g.w_out <= 0) continue;
    g.n = sc == ShapeClass::batch1 ? 1 : uniform(rng, 1, 3);
    g.groups = 1;
    g.c_in = uniform(rng, 1, 6);
    g.c_out = uniform(rng, 1, 6);
    switch (sc) {
      case ShapeClass::groups:
        g.groups = uniform(rng, 2, 4);
        g.c_in = g.groups * uniform(rng, 1, 4);
        g.c_out = g.groups * uniform(rng, 1, 4);
        break;
      case ShapeClass::depthwise:
        g.groups = uniform(rng, 1, 12);
        g.c_in = g.groups;
        g.c_out = g.groups * uniform(rng, 1, 2);
        break;
      case ShapeClass::channels:
        g.c_in = uniform(rng, 1, 70);
        g.c_out = uniform(rng, 1, 70);
        if (coin(rng)) g.c_in = uniform(rng, 1, 3) == 1 ? 1 : g.c_in;
        break;
      case ShapeClass::tile_edges: {
        const int64_t edges[] = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17};
        g.n = 1;
        g.c_in = edges[uniform(rng, 0, 9)];
        g.c_out = edges[uniform(rng, 0, 9)];
        break;
      }
      default: break;
    }
    if (sc == ShapeClass::half_types) p.act_type = coin(rng) ? DataType::float16 : DataType::bfloat16;
    if (sc == ShapeClass::precisions) {
      const Precision ps[] = {Precision::tf32, Precision::bf16, Precision::fp16};
      p.precision = ps[uniform(rng, 0, 2)];
      const DataType ts[] = {DataType::float32, DataType::float16, DataType::bfloat16};
      p.act_type = ts[uniform(rng, 0, 2)];
    }
    if (opt.bias && p.dir != Direction::bwd_data) p.with_bias = coin(rng);
    if (opt.accumulate && p.dir == Direction::bwd_weights) p.accumulate = coin(rng);
    if (opt.neuron && p.dir == Direction::fwd && coin(rng)) {
      if (opt.exact_neurons) {
        const NeuronDescriptor ns[] = {{NeuronType::relu, 0.0f, 0.0f, 0.0f},
                                       {NeuronType::relu, 0.25f, 0.0f, 0.0f},
                                       {NeuronType::linear, 0.5f, 1.0f, 0.0f},
                                       {NeuronType::absolute, 0.0f, 0.0f, 0.0f},
                                       {NeuronType::relu_n, 0.0f, 4.0f, 0.0f}};
        p.neuron = ns[uniform(rng, 0, 4)];
      } else {
        const NeuronDescriptor ns[] = {{NeuronType::relu, 0.1f, 0.0f, 0.0f},    {NeuronType::sigmoid, 0, 0, 0},
                                       {NeuronType::tanh, 1.0f, 0.5f, 0.0f},    {NeuronType::elu, 1.0f, 0, 0},
                                       {NeuronType::soft_plus, 1.0f, 1.0f, 0}, {NeuronType::gelu, 0, 0, 0},
                                       {NeuronType::soft_sign, 0, 0, 0},        {NeuronType::hard_sigmoid, 0.2f, 0.5f, 0}};
        p.neuron = ns[uniform(rng, 0, 7)];
      }
    }
    if (!core::validate(p).ok()) continue;
    const int64_t cap = sc == ShapeClass::tile_edges ? 4 * opt.max_macs : opt.max_macs;
    if (p.macs() > cap) continue;
    if (core::dst_elements(g) > 4 * cap || core::src_elements(g) > 4 * cap) continue;
    return p;
  }
}

}  // namespace tconv::testing
