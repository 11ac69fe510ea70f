// Every registered CUDA algorithm against the float64 reference (cpu_ref_f64) on the GPU:
//   * exact small-integer data: sums are exact in float32, so our own kernels must match the reference bit
//     for bit in every precision mode (cuDNN, whose algorithms may transform the data — Winograd, FFT — is
//     held to the random-data tolerance instead);
//   * random data with a per-precision tolerance on ‖out − ref‖ / ‖ref‖ (table below, each bound with its
//     reason);
//   * every shape class (1×1, batch 1, groups, depthwise, dilation, stride > kernel, negative padding,
//     output padding, non-square, bias, neuron, accumulate, long reductions) in all three directions and for
//     f32/f16/bf16 images with every precision mode;
//   * outputs poisoned with NaN before each run, views that are windows of larger images whose surroundings
//     must stay poisoned (nothing outside the view is touched, every element inside is written);
//   * 100 repeated runs of each deterministic algorithm, bit-identical.
// Without a GPU every test skips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/tc_paths.hpp"
#include "cuda/tc_round_check.hpp"
#include "cuda_test_util.hpp"

namespace tconv::cuda_test {
namespace {

using core::Direction;
using core::Problem;

bool is_cudnn(const registry::Algorithm& a) { return a.name().rfind("cuda_cudnn", 0) == 0; }

// Bound on ‖out − ref‖ / ‖ref‖ for random data in [-1, 1].
double tolerance(const Problem& p, const registry::Algorithm& a) {
  // Our kernels round the inputs exactly as the reference does; what is left is float32 against float64
  // accumulation (sums of up to a few thousand terms: well under 1e-5) ...
  double accumulation = 2e-5;
  // ... the tensor cores' float32 accumulation aligns the products of one mma before adding them, which
  // may drop low bits (products themselves are exact) ...
  if (a.name().find("mma") != std::string_view::npos) accumulation = 1e-4;
  if (is_cudnn(a)) {
    // ... cuDNN rounds with the tensor cores' own rule (tf32) and may use Winograd/FFT transforms in fp32.
    switch (p.precision) {
      case Precision::fp32: accumulation = 1e-4; break;
      case Precision::tf32: accumulation = 5e-3; break;  // 10-bit mantissa, different rounding of each input
      case Precision::fp16: accumulation = 5e-3; break;
      case Precision::bf16: accumulation = 3e-2; break;  // 7-bit mantissa
    }
  }
  // ... plus the final rounding of image outputs (and of cuDNN's f16/bf16 weight gradient): half an ulp.
  double output = 0.0;
  if (p.act_type == DataType::float16) output = 1e-3;   // 2^-11 relative, normwise well below
  if (p.act_type == DataType::bfloat16) output = 8e-3;  // 2^-8 relative
  return std::max(accumulation, output);
}

struct Compare {
  double num = 0, den = 0;
  int64_t mismatches = 0, unwritten = 0, touched_outside = 0;
  std::string first;
  void value(float got, float ref, const std::string& where) {
    if (std::isnan(got) && !std::isnan(ref)) {
      if (unwritten++ == 0 && first.empty()) first = where + ": not written (NaN)";
      return;
    }
    const double d = static_cast<double>(got) - static_cast<double>(ref);
    num += d * d;
    den += static_cast<double>(ref) * ref;
    if (std::memcmp(&got, &ref, 4) != 0 && !(got == ref)) {
      if (mismatches++ == 0 && first.empty()) {
        std::ostringstream m;
        m << where << ": got " << got << ", reference " << ref;
        first = m.str();
      }
    }
  }
  double rel() const { return den > 0 ? std::sqrt(num / den) : std::sqrt(num); }
};

// Compares an image output (view inside a padded allocation) with the reference's.
void compare_image(const HostTensor& got, const HostTensor& ref, const char* name, Compare& c) {
  std::vector<bool> inside(got.bytes.size() / size_of(got.type), false);
  for (int64_t a = 0; a < got.n; ++a)
    for (int64_t y = 0; y < got.h; ++y)
      for (int64_t x = 0; x < got.w; ++x)
        for (int64_t ch = 0; ch < got.c; ++ch) {
          const int64_t i = got.at(a, y, x, ch);
          inside[static_cast<size_t>(i)] = true;
          std::ostringstream w;
          w << name << "[" << a << "][" << y << "][" << x << "][" << ch << "]";
          c.value(got.get(i), ref.get(i), w.str());
        }
  const std::size_t es = size_of(got.type);
  for (size_t i = 0; i < inside.size(); ++i) {
    if (inside[i]) continue;
    for (size_t b = 0; b < es; ++b)
      if (got.bytes[i * es + b] != kPoison) {
        if (c.touched_outside++ == 0 && c.first.empty()) c.first = std::string(name) + ": wrote outside the view";
        break;
      }
  }
}

void compare_vector(const std::vector<float>& got, const std::vector<float>& ref, const char* name, Compare& c) {
  for (size_t i = 0; i < got.size(); ++i) c.value(got[i], ref[i], std::string(name) + "[" + std::to_string(i) + "]");
}

Compare compare_outputs(const HostProblem& got, const HostProblem& ref) {
  Compare c;
  switch (got.p.dir) {
    case Direction::fwd: compare_image(got.dst, ref.dst, "dst", c); break;
    case Direction::bwd_data: compare_image(got.src, ref.src, "diff_src", c); break;
    case Direction::bwd_weights:
      compare_vector(got.wei, ref.wei, "diff_wei", c);
      if (got.p.with_bias) compare_vector(got.bias, ref.bias, "diff_bias", c);
      break;
  }
  return c;
}

HostProblem reference(const HostProblem& input) {
  HostProblem ref = input;
  const registry::Algorithm* r = registry::find("cpu_ref_f64");
  EXPECT_NE(r, nullptr);
  registry::ExecContext ctx;
  ctx.num_threads = 2;
  core::Args a = host_args(ref);
  const core::Status s = r->run(ref.p, a, nullptr, ctx);
  EXPECT_TRUE(s.ok()) << s.message;
  return ref;
}

// Runs every CUDA algorithm that takes p on exact and random data; returns how many took it.
int check_all(const Problem& p, bool padded, uint32_t seed) {
  Stream stream;
  EXPECT_TRUE(stream.status().ok()) << stream.status().message;
  int taken = 0;
  for (bool exact : {true, false}) {
    const HostProblem input = make_host_problem(p, exact, padded, seed + (exact ? 0u : 1u));
    const HostProblem ref = reference(input);
    for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cuda)) {
      if (!selected(*alg) || alg->decline_reason(p)) continue;
      if (exact) ++taken;
      SCOPED_TRACE(std::string(alg->name()) + " on " + p.describe() + (exact ? " exact" : " random") +
                   (padded ? " padded views" : ""));
      HostProblem got = input;
      const core::Status s = run_on_gpu(*alg, got, stream.get());
      if (!s.ok() && is_cudnn(*alg) && s.code == ErrorCode::unsupported) continue;  // no cuDNN algorithm fits
      EXPECT_TRUE(s.ok()) << s.message;
      if (!s.ok()) continue;
      const Compare c = compare_outputs(got, ref);
      EXPECT_EQ(c.unwritten, 0) << c.first;
      EXPECT_EQ(c.touched_outside, 0) << c.first;
      if (exact && !is_cudnn(*alg)) {
        EXPECT_EQ(c.mismatches, 0) << c.first;
      } else {
        EXPECT_LE(c.rel(), tolerance(p, *alg)) << "first difference: " << c.first;
      }
    }
  }
  return taken;
}

// ---- shape classes -----------------------------------------------------------------------------------------
// At least 4 channels per group except where the class is about fewer (depthwise), so that every algorithm
// (cuda_igemm_mma declines fewer) runs on every class.
struct Shape {
  const char* name;
  core::Geometry g;
  bool with_bias = false;
  bool accumulate = false;
  NeuronType neuron = NeuronType::none;
  bool padded = false;
};

core::Geometry geom(int64_t n, int64_t ci, int64_t co, int64_t groups, int64_t h, int64_t w, int64_t kh, int64_t kw,
                    int64_t sh, int64_t sw, int64_t dh, int64_t dw, int64_t ph, int64_t pw, int64_t oph = 0,
                    int64_t opw = 0) {
  core::Geometry g;
  g.n = n; g.c_in = ci; g.c_out = co; g.groups = groups; g.h_in = h; g.w_in = w; g.kh = kh; g.kw = kw;
  g.stride_h = sh; g.stride_w = sw; g.dil_h = dh; g.dil_w = dw; g.pad_h = ph; g.pad_w = pw;
  g.h_out = core::Geometry::out_size(h, kh, sh, dh, ph, oph);
  g.w_out = core::Geometry::out_size(w, kw, sw, dw, pw, opw);
  return g;
}

const Shape kShapes[] = {
    {"basic", geom(2, 4, 6, 1, 4, 5, 3, 3, 2, 2, 1, 1, 1, 1)},
    {"one_by_one", geom(2, 5, 4, 1, 3, 4, 1, 1, 1, 1, 1, 1, 0, 0)},
    {"image_1x1", geom(3, 4, 4, 1, 1, 1, 3, 3, 2, 2, 1, 1, 0, 0)},
    {"batch1", geom(1, 4, 5, 1, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1)},
    {"groups", geom(2, 8, 8, 2, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1)},
    {"depthwise", geom(2, 4, 8, 4, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1)},
    {"dilation", geom(2, 4, 4, 1, 4, 4, 3, 3, 1, 1, 2, 2, 1, 1)},
    {"stride_gt_kernel", geom(2, 4, 4, 1, 4, 3, 2, 2, 3, 3, 1, 1, 0, 0)},
    {"negative_padding", geom(2, 4, 4, 1, 4, 4, 3, 3, 2, 2, 1, 1, -1, -1)},
    {"output_padding", geom(2, 4, 4, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1)},
    {"non_square", geom(2, 4, 5, 1, 3, 6, 3, 2, 2, 1, 1, 2, 1, 0, 1, 0)},
    {"bias", geom(2, 4, 6, 1, 4, 4, 4, 4, 2, 2, 1, 1, 1, 1), true},
    {"neuron_relu", geom(2, 4, 6, 1, 4, 4, 4, 4, 2, 2, 1, 1, 1, 1), true, false, NeuronType::relu},
    {"accumulate", geom(2, 4, 6, 1, 4, 4, 4, 4, 2, 2, 1, 1, 1, 1), true, true},
    {"padded_views", geom(2, 5, 6, 1, 4, 3, 3, 3, 2, 2, 1, 1, 1, 1), true, false, NeuronType::none, true},
    {"long_reduction", geom(8, 8, 8, 1, 24, 24, 4, 4, 2, 2, 1, 1, 1, 1), true},
    {"wide_channels", geom(2, 70, 33, 1, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0), true},
    // Channel counts that are multiples of 8/16/32, so that the vectorised tensor-core kernels (16-byte
    // copies, ldmatrix) take them: pixel and channel counts that leave partial tiles, reductions longer than
    // the pipelines' stages, groups, dilation with output padding, and the few-channel and depthwise layouts
    // of real layers (dcgan_g5, fsrcnn_x3, depthwise_up, fcn8s_up8 in miniature).
    {"aligned_dense", geom(4, 64, 96, 1, 11, 13, 4, 4, 2, 2, 1, 1, 1, 1), true},
    {"aligned_groups", geom(2, 64, 128, 2, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1), true},
    {"aligned_long_k", geom(2, 256, 160, 1, 14, 14, 2, 2, 2, 2, 1, 1, 0, 0), true},
    {"aligned_dilated", geom(2, 32, 48, 1, 10, 10, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1), true},
    {"aligned_stride1", geom(1, 16, 24, 1, 40, 40, 3, 3, 1, 1, 1, 1, 1, 1), true},
    // Vector-friendly channel counts seen through strided views whose pixel stride (c + 3) forbids 16-byte
    // copies: the tensor-core weight gradient's element-load staging (and its wgmma shared layout) runs here.
    {"aligned_padded_views", geom(2, 32, 16, 1, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1), true, false, NeuronType::none, true},
    {"few_out_channels", geom(4, 64, 3, 1, 16, 16, 4, 4, 2, 2, 1, 1, 1, 1), true},
    {"one_out_channel_k9", geom(2, 56, 1, 1, 12, 12, 9, 9, 3, 3, 1, 1, 4, 4), true},
    {"depthwise_wide", geom(2, 64, 64, 64, 16, 16, 4, 4, 2, 2, 1, 1, 1, 1), true},
    {"k16_s8", geom(1, 21, 21, 1, 8, 8, 16, 16, 8, 8, 1, 1, 4, 4), true},
    // Few pixels and long reductions (dcgan_g2 in miniature): 12 GEMM rows, up to 4096 k, so that
    // cuda_tc_igemm splits the k range (split-K with the fixed-order reduction, bias added after it).
    {"few_pixels_long_k", geom(2, 256, 128, 1, 2, 3, 4, 4, 2, 2, 1, 1, 1, 1), true},
    // Odd channel counts that cuda_channel_pad pads onto the tensor cores: two groups of 18→21, and bias,
    // accumulate and strided windows going through the padded buffers.
    {"pad_grouped_18to21", geom(2, 36, 42, 2, 6, 5, 3, 3, 2, 2, 1, 1, 1, 1), true},
    {"pad_accumulate_21to3", geom(2, 21, 3, 1, 6, 6, 4, 4, 2, 2, 1, 1, 1, 1), true, true, NeuronType::none, true},
    {"pad_views_21to18", geom(2, 21, 18, 1, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0), true, false, NeuronType::none, true},
    {"pad_fwd_out_21to10", geom(2, 21, 10, 1, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1), true, false, NeuronType::none, true},
    // Few output channels with the taps as k (cuda_tap_gemm): two groups of 16→2 with output padding and tiles
    // cut by the image edge; dilation through strided views of 20 channels (no 16-byte copies); 4 outputs of a
    // 7×7 kernel (k = 196: two k-row tiles in the weight gradient) accumulating; 72 channels (two channel
    // tiles) at stride 1 over an image wider than one tile.
    {"tap_groups_16to2", geom(2, 32, 4, 2, 7, 9, 5, 5, 2, 2, 1, 1, 2, 2, 1, 1), true},
    {"tap_dilated_views_20to3", geom(2, 20, 3, 1, 9, 10, 3, 3, 2, 2, 2, 2, 1, 1), true, false, NeuronType::none, true},
    {"tap_k7_4out_accumulate", geom(2, 16, 4, 1, 6, 6, 7, 7, 2, 2, 1, 1, 3, 3), true, true},
    {"tap_wide_72to1", geom(1, 72, 1, 1, 20, 19, 3, 3, 1, 1, 1, 1, 1, 1), true},
    // Depthwise layers for cuda_stream_depthwise's tiled gradients (stream_depthwise_plan.hpp): stride 1 with
    // images that leave partial tiles and a partial channel tile (40 channels: 10 float32 or 5 16-bit vectors);
    // stride 3, dilation 2 and output padding, accumulating; a stride longer than the kernel (outputs no tap
    // reaches: their bias terms are read outside the staged regions); a 7×7 kernel (13 tap groups of 16-bit
    // taps) with negative padding; several tiles per weight-gradient chunk (3 images of 3×3 tiles); and padded
    // views, which forbid 16-byte accesses and keep the untiled kernels covered.
    {"dw_s1_k3_edges", geom(2, 40, 40, 40, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1), true},
    {"dw_dilated_s3_accumulate", geom(1, 16, 16, 16, 9, 10, 3, 3, 3, 3, 2, 2, 2, 1, 1, 0), true, true},
    {"dw_stride_gt_kernel", geom(2, 24, 24, 24, 6, 7, 2, 2, 3, 3, 1, 1, 0, 0), true},
    {"dw_k7_negative_padding", geom(1, 8, 8, 8, 10, 9, 7, 7, 2, 2, 1, 1, -1, -1), true},
    {"dw_chunks_of_tiles", geom(3, 64, 64, 64, 20, 18, 4, 4, 2, 2, 1, 1, 1, 1), true},
    {"dw_padded_views", geom(2, 16, 16, 16, 7, 6, 4, 4, 2, 2, 1, 1, 1, 1), true, false, NeuronType::none, true},
};

struct TypeMode {
  DataType act;
  Precision prec;
};
const TypeMode kTypeModes[] = {
    {DataType::float32, Precision::fp32},  {DataType::float32, Precision::tf32},
    {DataType::float32, Precision::bf16},  {DataType::float32, Precision::fp16},
    {DataType::float16, Precision::fp16},  {DataType::float16, Precision::fp32},
    {DataType::bfloat16, Precision::bf16}, {DataType::bfloat16, Precision::fp32},
};

// The problem of shape class s in direction d and type/precision mode t (bias and accumulate where the class
// has them and the direction takes them; the neuron left out).
Problem class_problem(const Shape& s, Direction d, const TypeMode& t) {
  Problem p;
  p.dir = d;
  p.g = s.g;
  p.act_type = t.act;
  p.precision = t.prec;
  p.with_bias = s.with_bias && d != Direction::bwd_data;
  p.accumulate = s.accumulate && d == Direction::bwd_weights;
  return p;
}

std::string type_mode_name(const TypeMode& t) {
  return std::string(to_string(t.act)) + "_" + std::string(to_string(t.prec));
}

class CudaShapes : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(CudaShapes, AllDirectionsAgainstReference) {
  TCONV_SKIP_WITHOUT_GPU();
  const Shape& s = kShapes[std::get<0>(GetParam())];
  const TypeMode& t = kTypeModes[std::get<1>(GetParam())];
  for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights}) {
    if (s.neuron != NeuronType::none && d != Direction::fwd) continue;
    if (s.accumulate && d != Direction::bwd_weights) continue;
    Problem p = class_problem(s, d, t);
    if (d == Direction::fwd) p.neuron.type = s.neuron;
    ASSERT_TRUE(core::validate(p).ok()) << p.describe();
    const int taken = check_all(p, s.padded, 1234u + static_cast<uint32_t>(d));
    EXPECT_GE(taken, 1) << "no CUDA algorithm took " << p.describe();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Classes, CudaShapes,
    ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kShapes))),
                       ::testing::Range(0, static_cast<int>(std::size(kTypeModes)))),
    [](const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
      return std::string(kShapes[std::get<0>(info.param)].name) + "_" +
             type_mode_name(kTypeModes[std::get<1>(info.param)]);
    });

// cuda_direct takes everything the problem validator accepts.
TEST(CudaRegistry, DirectTakesEveryShapeAndCudnnDeclinesWithReasons) {
  const registry::Algorithm* direct = registry::find("cuda_direct");
  ASSERT_NE(direct, nullptr);
  EXPECT_TRUE(direct->deterministic());
  for (const Shape& s : kShapes) {
    Problem p;
    p.g = s.g;
    EXPECT_FALSE(direct->decline_reason(p).has_value()) << s.name;
  }
  if (const registry::Algorithm* cudnn = registry::find("cuda_cudnn")) {
    EXPECT_TRUE(cudnn->deterministic());
    Problem p;
    p.g = kShapes[8].g;  // negative padding
    const auto why = cudnn->decline_reason(p);
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("negative"), std::string::npos) << *why;
    p.g = kShapes[0].g;
    p.act_type = DataType::float32;
    p.precision = Precision::bf16;
    EXPECT_TRUE(cudnn->decline_reason(p).has_value());
  }
  if (const registry::Algorithm* nd = registry::find("cuda_cudnn_nondet")) EXPECT_FALSE(nd->deterministic());
}

// cuda_channel_pad takes the odd-channel classes (all directions where the reduction side is padded by less than
// a vector, the weight gradient where only its cost rule allows), so the class tests above run it through the
// padding; it declines fp32, depthwise layers and problems the tensor-core algorithms take unpadded.
TEST(CudaRegistry, ChannelPadTakesOddChannelsOnly) {
  const registry::Algorithm* pad = registry::find("cuda_channel_pad");
  ASSERT_NE(pad, nullptr);
  EXPECT_TRUE(pad->deterministic());
  for (const Shape& s : kShapes) {
    const std::string name = s.name;
    const bool all = name == "k16_s8" || name == "pad_grouped_18to21" || name == "pad_views_21to18";
    const bool wgrad_only = name == "few_out_channels" || name == "pad_accumulate_21to3";
    const bool refused = name == "depthwise" || name == "depthwise_wide" || name.rfind("aligned_", 0) == 0;
    if (!all && !wgrad_only && !refused && name != "pad_fwd_out_21to10") continue;
    for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights})
      for (const TypeMode& t : kTypeModes) {
        const Problem p = class_problem(s, d, t);
        const bool tc = (t.act == DataType::bfloat16 && t.prec == Precision::bf16) ||
                        (t.act == DataType::float16 && t.prec == Precision::fp16) ||
                        (t.act == DataType::float32 && t.prec == Precision::tf32);
        // 21→10 at stride 1: dst is the smaller image, so fwd writes it through a padded buffer (and a padded
        // bias); its data gradient pads Og 10 → 16 in bf16/fp16, more than the k-tile rule allows.
        const bool fwd_out = name == "pad_fwd_out_21to10" && (d != Direction::bwd_data || t.prec == Precision::tf32);
        const bool expect = tc && (all || fwd_out || (wgrad_only && d == Direction::bwd_weights));
        const auto why = pad->decline_reason(p);
        EXPECT_EQ(why.has_value(), !expect) << p.describe() << ": " << why.value_or("taken");
        if (expect) EXPECT_GT(pad->workspace_bytes(p), 0u) << p.describe();
      }
  }
}

// cuda_tap_gemm takes the data and weight gradients of the few-output-channel classes in the three tensor-core
// modes and true fp32 (float32 images) and nothing else: no forward, no mixed modes, no layers with more than 4 output or fewer than
// 8 input channels per group.
TEST(CudaRegistry, TapGemmTakesFewOutputChannelGradients) {
  const registry::Algorithm* tap = registry::find("cuda_tap_gemm");
  ASSERT_NE(tap, nullptr);
  EXPECT_TRUE(tap->deterministic());
  int taken = 0;
  for (const Shape& s : kShapes) {
    const std::string name = s.name;
    const bool few = name == "few_out_channels" || name == "one_out_channel_k9" || name == "pad_accumulate_21to3" ||
                     name.rfind("tap_", 0) == 0;
    for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights})
      for (const TypeMode& t : kTypeModes) {
        const Problem p = class_problem(s, d, t);
        const bool kind = (t.act == DataType::bfloat16 && t.prec == Precision::bf16) ||
                          (t.act == DataType::float16 && t.prec == Precision::fp16) ||
                          (t.act == DataType::float32 && (t.prec == Precision::tf32 || t.prec == Precision::fp32));
        const bool expect = few && kind && d != Direction::fwd;
        const auto why = tap->decline_reason(p);
        EXPECT_EQ(why.has_value(), !expect) << p.describe() << ": " << why.value_or("taken");
        if (expect) {
          ++taken;
          EXPECT_GT(tap->workspace_bytes(p), 0u) << p.describe();  // packed weights / partial rows
        }
      }
  }
  EXPECT_EQ(taken, 7 * 4 * 2);
}

// sm_90's one-instruction tf32 rounding, which the tensor-core kernels use, against the integer round-to-nearest-
// even (core::round_input's rule) on every float bit pattern: the exact-integer classes above cannot see a tie
// rounded the other way, this can.
TEST(CudaTf32Rounding, OneInstructionMatchesReferenceOnEveryFloat) {
  TCONV_SKIP_WITHOUT_GPU();
  cuda_tc::Tf32RoundCheck r;
  const core::Status s = cuda_tc::check_tf32_rounding(0, r);
  ASSERT_TRUE(s.ok()) << s.message;
  EXPECT_EQ(r.mismatches, 0u) << "e.g. input 0x" << std::hex << r.first_input << ": 0x" << r.first_fast
                              << ", reference 0x" << r.first_reference;
  EXPECT_EQ(r.nan_lost, 0u);
}

// The multiply path: a silent fall-back from wgmma to mma.sync passes every numeric test and shows only in the
// timings. A build with sm_90a code on a compute-capability 9.0 device must find wgmma code for both tensor-core
// algorithms (the checks their launches branch on); any other device or build must not.
TEST(CudaTensorCorePaths, WgmmaExactlyOnSm90aBuildsAndDevices) {
  TCONV_SKIP_WITHOUT_GPU();
  const int cc = cuda_tc::compute_capability(0);
  ASSERT_GT(cc, 0);
#if defined(TCONV_TEST_HAVE_SM90A)
  const bool expect = cc == 90;
#else
  const bool expect = false;
#endif
  EXPECT_EQ(cuda_tc::igemm_uses_wgmma(0), expect) << "compute capability " << cc;
  EXPECT_EQ(cuda_tc::wgrad_uses_wgmma(0), expect) << "compute capability " << cc;
}

// ---- determinism ---------------------------------------------------------------------------------------------
// Runs alg on input 99 more times; every output must equal `first` (the first run's) bit for bit.
void expect_repeats_match(const registry::Algorithm& alg, const HostProblem& input, const HostProblem& first,
                          void* stream) {
  for (int rep = 1; rep < 100; ++rep) {
    HostProblem again = input;
    const core::Status s = run_on_gpu(alg, again, stream);
    ASSERT_TRUE(s.ok()) << s.message;
    ASSERT_EQ(again.dst.bytes, first.dst.bytes) << "run " << rep;
    ASSERT_EQ(again.src.bytes, first.src.bytes) << "run " << rep;
    ASSERT_EQ(0, std::memcmp(again.wei.data(), first.wei.data(), first.wei.size() * 4)) << "run " << rep;
    ASSERT_EQ(0, std::memcmp(again.bias.data(), first.bias.data(), first.bias.size() * 4)) << "run " << rep;
  }
}

TEST(CudaDeterminism, HundredRunsBitIdentical) {
  TCONV_SKIP_WITHOUT_GPU();
  Stream stream;
  ASSERT_TRUE(stream.status().ok()) << stream.status().message;
  for (Direction d : {Direction::fwd, Direction::bwd_data, Direction::bwd_weights}) {
    for (const TypeMode& t : {TypeMode{DataType::float32, Precision::fp32}, TypeMode{DataType::bfloat16, Precision::bf16},
                              TypeMode{DataType::float32, Precision::tf32}}) {
      Problem p;
      p.dir = d;
      p.g = geom(8, 32, 16, 1, 12, 12, 4, 4, 2, 2, 1, 1, 1, 1);
      p.act_type = t.act;
      p.precision = t.prec;
      p.with_bias = d != Direction::bwd_data;
      const HostProblem input = make_host_problem(p, false, false, 99u);
      for (const registry::Algorithm* alg : registry::algorithms(DeviceKind::cuda)) {
        if (!selected(*alg) || !alg->deterministic() || alg->decline_reason(p)) continue;
        SCOPED_TRACE(std::string(alg->name()) + " on " + p.describe());
        HostProblem first = input;
        const core::Status s0 = run_on_gpu(*alg, first, stream.get());
        if (!s0.ok() && is_cudnn(*alg) && s0.code == ErrorCode::unsupported) continue;
        ASSERT_TRUE(s0.ok()) << s0.message;
        expect_repeats_match(*alg, input, first, stream.get());
      }
    }
  }
}

// One algorithm on geometry g in the given directions and modes (bias where the direction takes it): 100 runs,
// bit-identical outputs.
void expect_hundred_identical(const char* name, const core::Geometry& g, std::initializer_list<Direction> dirs,
                              std::initializer_list<TypeMode> modes, bool padded, uint32_t seed) {
  const registry::Algorithm* alg = registry::find(name);
  ASSERT_NE(alg, nullptr) << name;
  Stream stream;
  ASSERT_TRUE(stream.status().ok()) << stream.status().message;
  for (Direction d : dirs) {
    for (const TypeMode& t : modes) {
      Problem p;
      p.dir = d;
      p.g = g;
      p.act_type = t.act;
      p.precision = t.prec;
      p.with_bias = d != Direction::bwd_data;
      SCOPED_TRACE(std::string(name) + " on " + p.describe());
      ASSERT_FALSE(alg->decline_reason(p).has_value()) << *alg->decline_reason(p);
      const HostProblem input = make_host_problem(p, false, padded, seed);
      HostProblem first = input;
      const core::Status s0 = run_on_gpu(*alg, first, stream.get());
      ASSERT_TRUE(s0.ok()) << s0.message;
      expect_repeats_match(*alg, input, first, stream.get());
    }
  }
}

// The tap-gathered gradients on fsrcnn's layout in miniature (56→1, 9×9, stride 3, with bias), tensor cores and
// true fp32 (the weight gradient's chunk count and summation order depend on the problem only).
TEST(CudaDeterminism, TapGemmHundredRunsBitIdentical) {
  TCONV_SKIP_WITHOUT_GPU();
  expect_hundred_identical("cuda_tap_gemm", geom(4, 56, 1, 1, 24, 24, 9, 9, 3, 3, 1, 1, 4, 4, 2, 2),
                           {Direction::bwd_data, Direction::bwd_weights},
                           {TypeMode{DataType::float32, Precision::tf32}, TypeMode{DataType::bfloat16, Precision::bf16},
                            TypeMode{DataType::float32, Precision::fp32}},
                           false, 55u);
}

// The padded path (copies around a tensor-core algorithm) on odd channel counts and strided views.
TEST(CudaDeterminism, ChannelPadHundredRunsBitIdentical) {
  TCONV_SKIP_WITHOUT_GPU();
  expect_hundred_identical("cuda_channel_pad", geom(8, 21, 18, 1, 12, 12, 4, 4, 2, 2, 1, 1, 1, 1),
                           {Direction::fwd, Direction::bwd_data, Direction::bwd_weights},
                           {TypeMode{DataType::float32, Precision::tf32}, TypeMode{DataType::bfloat16, Precision::bf16}},
                           true, 77u);
}

// The tiled depthwise gradients (several tiles per weight-gradient chunk, partial rows added in order) on
// depthwise_up's layout in miniature.
TEST(CudaDeterminism, StreamDepthwiseTiledHundredRunsBitIdentical) {
  TCONV_SKIP_WITHOUT_GPU();
  expect_hundred_identical("cuda_stream_depthwise", geom(4, 64, 64, 64, 20, 18, 4, 4, 2, 2, 1, 1, 1, 1),
                           {Direction::bwd_data, Direction::bwd_weights},
                           {TypeMode{DataType::float32, Precision::fp32}, TypeMode{DataType::bfloat16, Precision::bf16},
                            TypeMode{DataType::float32, Precision::tf32}},
                           false, 33u);
}

}  // namespace
}  // namespace tconv::cuda_test
