// The object API on a CUDA device (skipped without one): device-only buffers (contents() null), host
// transfers through staging, kernels run by the CUDA algorithms, results equal to the CPU's on small
// integers (exact in float32); the two-stream gradient, resident weights and reloads, the command buffer's
// stream.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "api/internal.hpp"         // api::weight_uploads()
#include "api/training_common.hpp"  // train::host_stagings()
#include "api_test_util.hpp"
#include "core/dtype.hpp"
#include "core/optimizer_math.hpp"
#include "core/pointwise.hpp"
#include "cuda/backend.hpp"
#include "cuda/training_math.hpp"
#include "cuda/weights_backend.hpp"  // the spin kernel and stream probe of the reload tests
#include "mps_reference.hpp"

using namespace tconv;
using namespace tconv::test;

TEST(CudaDevice, TransposeTrainingStepMatchesTheCpu) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  ConvolutionDescriptor d(3, 3, 4, 6);
  d.stride_x = d.stride_y = 2;
  d.groups = 2;
  auto w = ints(6 * 9 * 2, 1), b = ints(6, 2);
  auto ds = source(d, w, b);
  auto xv = ints(2 * 5 * 4 * 4, 3);
  std::vector<double> results[2][4];
  int i = 0;
  for (const Device& dev : {cpu, gpu}) {
    ConvolutionTranspose f(dev, ds);
    ConvolutionTransposeGradient g(dev, ds);
    Image x = make_image(dev, xv, 2, 5, 4, 4);
    if (dev.kind() == DeviceKind::cuda) EXPECT_EQ(x.buffer().contents(), nullptr);
    CommandBuffer cb(dev);
    ConvolutionTransposeGradientState st;
    Image y = f.encode(cb, x, ConvolutionGradientState(), st, false);
    Image gy = make_image(dev, ints(static_cast<size_t>(y.element_count()), 4), 2, y.height(), y.width(), 6);
    Image gx = g.encode(cb, gy, x, st);
    run(cb);
    results[i][0] = read_all(y);
    results[i][1] = read_all(gx);
    std::vector<float> gw(st.gradient_for_weights().length() / 4), gb(6);
    st.gradient_for_weights().copy_to_host(gw.data(), gw.size() * 4);
    st.gradient_for_biases().copy_to_host(gb.data(), 24);
    results[i][2].assign(gw.begin(), gw.end());
    results[i][3].assign(gb.begin(), gb.end());
    ++i;
  }
  for (int k = 0; k < 4; ++k) expect_equal(results[1][k], results[0][k], "cuda vs cpu");
}

TEST(CudaDevice, ConvolutionPairHalfAccumulatorAndReloadMatchTheCpu) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  ConvolutionDescriptor cd(3, 3, 2, 4);
  cd.stride_x = cd.stride_y = 2;
  cd.fused_neuron = NeuronDescriptor{NeuronType::relu, 0.5f, 0, 0};
  auto cds = source(cd, ints(4 * 9 * 2, 5), ints(4, 6));
  ConvolutionDescriptor gd(3, 3, 2, 4);
  gd.stride_x = gd.stride_y = 2;
  auto gds = source(gd, ints(4 * 9 * 2, 5));
  ConvolutionDescriptor td(3, 3, 4, 2);
  td.stride_x = td.stride_y = 2;
  auto tds = source(td, ints(2 * 9 * 4, 7), ints(2, 8));
  auto xv = ints(7 * 6 * 2, 9);
  std::vector<double> out[2][5];
  int i = 0;
  for (const Device& dev : {cpu, gpu}) {
    Convolution conv(dev, cds);
    ConvolutionGradient cg(dev, gds);
    ConvolutionTranspose t(dev, tds);
    t.properties().accumulator_precision = AccumulatorPrecision::half;
    Image x = make_image(dev, xv, 1, 7, 6, 2);
    CommandBuffer cb(dev);
    ConvolutionGradientState cs;
    Image code = conv.encode(cb, x, cs, false);
    Image recon = t.encode(cb, code, cs);
    ConvolutionWeightsAndBiasesState wb(dev, td);
    std::vector<float> nw(2 * 9 * 4, 0.5f);
    Buffer wbuf = wb.weights();
    wbuf.copy_from_host(nw.data(), nw.size() * 4);
    t.reload_weights_and_biases(cb, wb);
    Image recon2 = t.encode(cb, code, cs);
    Image gy = make_image(dev, ints(static_cast<size_t>(code.element_count()), 10), 1, code.height(), code.width(), 4);
    ConvolutionGradientState gs = conv.result_state(x, code);
    Image dx = cg.encode(cb, gy, x, gs);
    run(cb);
    out[i][0] = read_all(code);
    out[i][1] = read_all(recon);
    out[i][2] = read_all(recon2);
    out[i][3] = read_all(dx);
    std::vector<float> gw(gs.gradient_for_weights().length() / 4);
    gs.gradient_for_weights().copy_to_host(gw.data(), gw.size() * 4);
    out[i][4].assign(gw.begin(), gw.end());
    ++i;
  }
  for (int k = 0; k < 5; ++k) expect_equal(out[1][k], out[0][k], "cuda vs cpu");
}

// ---------------------------------------------------------------- two streams, resident weights, reloads

namespace {

std::vector<double> randoms(size_t n, uint32_t seed) {
  // Not small integers: products and sums round, so a change in summation order would show in the bits.
  std::vector<double> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (double& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<double>(s >> 8) / static_cast<double>(1u << 24) * 2.0 - 1.0;
  }
  return v;
}

std::vector<double> floats_of(const Buffer& b) {
  std::vector<float> f(b.length() / 4);
  b.copy_to_host(f.data(), f.size() * 4);
  return std::vector<double>(f.begin(), f.end());
}

struct GradientRun {
  std::vector<double> dx, dw, db;
};

// One ConvolutionTransposeGradient encode per option into its own command buffer.
GradientRun transpose_gradient(const Device& dev, ConvolutionTransposeGradient& g, const Image& gy, const Image& x,
                               const ConvolutionTransposeGradientState& st, GradientOption option) {
  g.set_gradient_option(option);
  CommandBuffer cb(dev);
  Image gx = g.encode(cb, gy, x, st);
  run(cb);
  GradientRun r;
  if (has_data(option)) r.dx = read_all(gx);
  if (has_weights(option)) {
    r.dw = floats_of(st.gradient_for_weights());
    r.db = floats_of(st.gradient_for_biases());
  }
  return r;
}

}  // namespace

// With both gradients asked for, dW/db run on a second stream beside dX (docs/cuda-backend.md). The
// results must equal, bit for bit, those of the two gradients encoded one at a time (one stream), on random
// data in several image types, every time.
TEST(CudaDevice, TwoStreamGradientEqualsOneStreamBitForBit) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0);
  ConvolutionDescriptor d(4, 4, 32, 16);
  d.stride_x = d.stride_y = 2;
  auto ds = source(d, randoms(16 * 16 * 32, 1), randoms(16, 2));
  for (DataType t : {DataType::float32, DataType::float16, DataType::bfloat16}) {
    SCOPED_TRACE(to_string(t));
    ConvolutionTranspose f(gpu, ds);
    ConvolutionTransposeGradient g(gpu, ds);
    g.properties().precision = t == DataType::float32 ? Precision::tf32
                               : t == DataType::float16 ? Precision::fp16 : Precision::bf16;
    Image x = make_image(gpu, randoms(8 * 12 * 10 * 32, 3), 8, 12, 10, 32, t);
    CommandBuffer cb(gpu);
    ConvolutionTransposeGradientState st;
    Image y = f.encode(cb, x, ConvolutionGradientState(), st, false);
    run(cb);
    Image gy = make_image(gpu, randoms(static_cast<size_t>(y.element_count()), 4), 8, y.height(), y.width(), 16, t);
    g.destination_image_descriptor({gy, x}, {st});
    const GradientRun data = transpose_gradient(gpu, g, gy, x, f.result_state(x, {}, y), GradientOption::data);
    const GradientRun weights = transpose_gradient(gpu, g, gy, x, f.result_state(x, {}, y), GradientOption::weights_and_bias);
    for (int rep = 0; rep < 3; ++rep) {
      const GradientRun both = transpose_gradient(gpu, g, gy, x, f.result_state(x, {}, y), GradientOption::all);
      expect_equal(both.dx, data.dx, "dX, two streams vs one");
      expect_equal(both.dw, weights.dw, "dW, two streams vs one");
      expect_equal(both.db, weights.db, "db, two streams vs one");
    }
  }
}

// The same for the plain convolution's gradient, whose weight gradient also converts its layout and sums
// the bias gradient on the side stream; and the two-stream results still equal the CPU's on small integers.
TEST(CudaDevice, ConvolutionGradientTwoStreamsEqualOneStreamAndTheCpu) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  ConvolutionDescriptor cd(3, 3, 16, 24);
  cd.stride_x = cd.stride_y = 2;
  cd.groups = 2;
  auto cds = source(cd, ints(24 * 9 * 8, 11), ints(24, 12));
  auto xv = ints(3 * 9 * 11 * 16, 13);
  std::vector<double> out[2][3];
  for (int i = 0; i < 2; ++i) {
    const Device& dev = i == 0 ? cpu : gpu;
    Convolution conv(dev, cds);
    ConvolutionGradient cg(dev, cds);
    Image x = make_image(dev, xv, 3, 9, 11, 16);
    CommandBuffer cb(dev);
    ConvolutionGradientState cs;
    Image y = conv.encode(cb, x, cs, false);
    run(cb);
    Image gy = make_image(dev, ints(static_cast<size_t>(y.element_count()), 14), 3, y.height(), y.width(), 24);
    auto run_option = [&](GradientOption o, std::vector<double>* r) {
      cg.set_gradient_option(o);
      ConvolutionGradientState gs = conv.result_state(x, y);
      CommandBuffer c2(dev);
      Image dx = cg.encode(c2, gy, x, gs);
      run(c2);
      if (has_data(o)) r[0] = read_all(dx);
      if (has_weights(o)) {
        r[1] = floats_of(gs.gradient_for_weights());
        r[2] = floats_of(gs.gradient_for_biases());
      }
    };
    run_option(GradientOption::all, out[i]);
    if (dev.kind() == DeviceKind::cuda) {
      std::vector<double> one[3];
      run_option(GradientOption::data, one);
      run_option(GradientOption::weights_and_bias, one);
      for (int k = 0; k < 3; ++k) expect_equal(out[i][k], one[k], "two streams vs one");
    }
  }
  for (int k = 0; k < 3; ++k) expect_equal(out[1][k], out[0][k], "cuda vs cpu");
}

// Weights are uploaded once per weight store (construction, reload), not per encode or run; a reload from
// an updated data source and a reload from a weights state are each one upload and give the results of a
// kernel built from the new weights.
TEST(CudaDevice, WeightsStayResidentAndReloadsUploadOnce) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0);
  ConvolutionDescriptor d(3, 3, 4, 6);
  d.stride_x = d.stride_y = 2;
  auto ds = source(d, ints(6 * 9 * 4, 21), ints(6, 22));
  const uint64_t u0 = api::weight_uploads();
  ConvolutionTranspose f(gpu, ds);
  ConvolutionTransposeGradient g(gpu, ds);
  EXPECT_EQ(api::weight_uploads(), u0 + 2) << "one upload per kernel at construction";
  Image x = make_image(gpu, ints(2 * 5 * 4 * 4, 23), 2, 5, 4, 4);
  Image gy;
  {
    CommandBuffer cb(gpu);
    for (int i = 0; i < 10; ++i) {
      ConvolutionTransposeGradientState st;
      Image y = f.encode(cb, x, ConvolutionGradientState(), st, false);
      if (gy.empty()) gy = make_image(gpu, ints(static_cast<size_t>(y.element_count()), 24), 2, y.height(), y.width(), 6);
      g.encode(cb, gy, x, st);
    }
    run(cb);
  }
  EXPECT_EQ(api::weight_uploads(), u0 + 2) << "encodes and runs must not upload weights";

  auto forward = [&](ConvolutionTranspose& k, const ImageDescriptor& desc) {
    CommandBuffer c(gpu);
    Image y(gpu, desc);
    k.encode(c, x, y);
    run(c);
    return read_all(y);
  };

  // Data-source update (SGD from a gradient in device states) + reload: one upload, the new results.
  ConvolutionTransposeGradientState st;
  CommandBuffer cb(gpu);
  Image y0 = f.encode(cb, x, ConvolutionGradientState(), st, false);
  g.encode(cb, gy, x, st);
  ConvolutionWeightsAndBiasesState wb = f.export_weights_and_biases(cb, false);
  run(cb);
  ds->set_learning_rate(0.25f);
  ASSERT_TRUE(ds->update(st, wb));
  f.reload_weights_and_biases_from_data_source();
  EXPECT_EQ(api::weight_uploads(), u0 + 3);
  const std::vector<double> y1 = forward(f, y0.descriptor());
  EXPECT_EQ(api::weight_uploads(), u0 + 3);
  EXPECT_NE(y1, read_all(y0)) << "the update must change the result";
  {
    ConvolutionTranspose fresh(gpu, ds);  // built from the updated data source
    expect_equal(y1, forward(fresh, y0.descriptor()), "after the data-source reload");
  }

  // Reload from a weights state inside a command buffer: the upload happens when the reload runs, once; an
  // encode after it in the same buffer sees the new weights, one before it the old ones.
  ConvolutionWeightsAndBiasesState nw(gpu, d);
  std::vector<float> halves(static_cast<size_t>(d.weight_elements()), 0.5f), biases(6, -1.0f);
  Buffer nwb = nw.weights(), nbb = nw.biases();
  nwb.copy_from_host(halves.data(), halves.size() * 4);
  nbb.copy_from_host(biases.data(), biases.size() * 4);
  const uint64_t u1 = api::weight_uploads();
  CommandBuffer cb3(gpu);
  Image before(gpu, y0.descriptor()), after(gpu, y0.descriptor());
  f.encode(cb3, x, before);
  f.reload_weights_and_biases(cb3, nw);
  f.encode(cb3, x, after);
  EXPECT_EQ(api::weight_uploads(), u1) << "nothing is uploaded at encode time";
  run(cb3);
  EXPECT_EQ(api::weight_uploads(), u1 + 1);
  expect_equal(read_all(before), y1, "encoded before the reload");
  ConvolutionTranspose fresh(gpu, source(d, std::vector<double>(halves.size(), 0.5), std::vector<double>(6, -1.0)));
  expect_equal(read_all(after), forward(fresh, y0.descriptor()), "encoded after the reload");
}

// The command buffer's CUDA stream is the one its commands use, shared by the buffers of one queue, and
// null on the CPU; a buffer reports completion only after its GPU work finished.
TEST(CudaDevice, CommandBufferStreamAndCompletion) {
  CommandBuffer on_cpu(Device::cpu(1));
  EXPECT_EQ(on_cpu.cuda_stream(), nullptr);
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0);
  CommandBuffer a(gpu), b(gpu);
  ASSERT_NE(a.cuda_stream(), nullptr);
  EXPECT_EQ(a.cuda_stream(), b.cuda_stream());
  EXPECT_NE(a.cuda_stream(), CommandBuffer(Device::cuda(0)).cuda_stream()) << "another context, another queue";
  // A large forward: when wait returns and the status is completed, the result is there (read without sync).
  ConvolutionDescriptor d(3, 3, 64, 64);
  auto ds = source(d, randoms(64 * 9 * 64, 31));
  ConvolutionTranspose f(gpu, ds);
  Image x = make_image(gpu, randoms(4 * 64 * 64 * 64, 32), 4, 64, 64, 64);
  Image y = f.encode(a, x);
  a.commit();
  a.wait_until_completed();
  EXPECT_EQ(a.status(), CommandBufferStatus::completed);
  Image y2 = f.encode(b, x);
  run(b);
  expect_equal(read_all(y), read_all(y2), "same forward twice");
}

// ---------------------------------------------------------------- device-resident training companions
//
// Neurons, the MSE loss and the optimizers run as CUDA kernels when their images and buffers are in the
// queue's GPU memory (src/cuda/training_kernels.cu, math in src/cuda/training_math.hpp). Claims checked here:
//  * optimizers, the loss (forward value and gradient) and the arithmetic neurons (none, relu, linear,
//    hard_sigmoid, absolute, soft_sign, relu_n) equal the CPU bit for bit, for float32/float16/bfloat16;
//  * neurons with exp/log/log1p/tanh/pow/erf differ from the CPU at most by the CPU libm's own error:
//    |gpu − cpu| ≤ 8·2⁻²⁴·(|cpu| + s) with s = |g|·(1 + |x|)(1 + |a|)(1 + |b|) (g = 1 forward), plus one
//    unit of the storage type when it is float16/bfloat16 (the worst case measured on the host against glibc
//    is about a quarter of the bound);
//  * nothing of theirs is staged through host memory (train::host_stagings()).
// The TrainingMath tests run without a GPU: they check the shared math against the CPU engine on the host.

namespace {

// The CPU engine's transcendentals, as core/neuron.hpp calls them for T = float.
struct CpuLibm {
  static float exp(float x) { return std::exp(x); }
  static float log(float x) { return std::log(x); }
  // neuron.hpp calls log1p unqualified; the only declaration name lookup finds there is the C library's
  // double log1p (pointwise.cpp.o imports log1p, not log1pf), so the CPU evaluates it in float64.
  static float log1p(float x) { return static_cast<float>(::log1p(static_cast<double>(x))); }
  static float tanh(float x) { return std::tanh(x); }
  static float erf(float x) { return std::erf(x); }
  static float pow(float x, float y) { return std::pow(x, y); }
};

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }
bool both_nan(float a, float b) { return std::isnan(a) && std::isnan(b); }

struct NeuronCase {
  NeuronDescriptor n;
  bool exact;  // arithmetic only: bit-identical to the CPU
};

// Every neuron type; parameters keep a·x + b > 0 for x in [-4, 4] where a log or a power needs it.
std::vector<NeuronCase> neuron_cases() {
  return {{{NeuronType::none}, true},
          {{NeuronType::relu, 0.1f}, true},
          {{NeuronType::linear, 1.5f, -0.25f}, true},
          {{NeuronType::sigmoid}, false},
          {{NeuronType::hard_sigmoid, 0.2f, 0.5f}, true},
          {{NeuronType::tanh, 1.7159f, 0.6667f}, false},
          {{NeuronType::absolute}, true},
          {{NeuronType::soft_plus, 0.5f, 2.0f}, false},
          {{NeuronType::soft_sign}, true},
          {{NeuronType::elu, 1.0f}, false},
          {{NeuronType::relu_n, 0.1f, 2.0f}, true},
          {{NeuronType::power, 0.5f, 2.5f, 1.5f}, false},
          {{NeuronType::exponential, 0.5f, 0.1f, 2.0f}, false},
          {{NeuronType::exponential, 0.5f, 0.1f, 0.0f}, false},
          {{NeuronType::logarithm, 0.5f, 2.5f, 10.0f}, false},
          {{NeuronType::logarithm, 0.5f, 2.5f, 0.0f}, false},
          {{NeuronType::gelu}, false}};
}

// Distance of `got` from `want` in units of the documented bound (≤ 1 passes); 0 for equal bits.
double bound_units(float got, float want, float x, float g, const NeuronDescriptor& n, DataType storage) {
  if (same_bits(got, want) || both_nan(got, want)) return 0.0;
  if (std::isnan(got) || std::isnan(want) || std::isinf(got) || std::isinf(want)) return 1e30;
  const double s = std::fabs(g) * (1.0 + std::fabs(x)) * (1.0 + std::fabs(n.a)) * (1.0 + std::fabs(n.b));
  double tol = 8.0 * std::ldexp(1.0, -24) * (std::fabs(want) + s);
  if (storage == DataType::float16) tol += std::fabs(want) * std::ldexp(1.0, -10) + std::ldexp(1.0, -24);
  if (storage == DataType::bfloat16) tol += std::fabs(want) * std::ldexp(1.0, -7) + std::ldexp(1.0, -126);
  return std::fabs(static_cast<double>(got) - static_cast<double>(want)) / tol;
}

std::vector<float> spread(size_t n, uint32_t seed, float lo, float hi) {
  std::vector<float> v(n);
  const std::vector<double> r = randoms(n, seed);
  for (size_t i = 0; i < n; ++i) v[i] = lo + static_cast<float>((r[i] + 1.0) * 0.5) * (hi - lo);
  return v;
}

}  // namespace

// The kernels' neuron expressions are the CPU engine's operation for operation: with the CPU's own libm calls
// substituted they give the CPU engine's results bit for bit; with the float64-evaluated transcendentals the
// kernels use, they stay within the documented bound.
TEST(TrainingMath, NeuronsMatchTheCpuEngine) {
  const size_t n = 200000;
  std::vector<float> x = spread(n, 51, -7.0f, 7.0f), g = spread(n, 52, -2.0f, 2.0f);
  for (float special : {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f, 88.0f, -88.0f, 100.0f, -100.0f})
    x.push_back(special), g.push_back(1.0f);
  std::vector<float> y(x.size()), gx(x.size());
  for (const NeuronCase& c : neuron_cases()) {
    const NeuronDescriptor& d = c.n;
    const auto count = static_cast<int64_t>(x.size());
    core::neuron_forward(d, {x.data(), DataType::float32}, {y.data(), DataType::float32}, count, 1);
    core::neuron_gradient(d, {g.data(), DataType::float32}, {x.data(), DataType::float32},
                          {gx.data(), DataType::float32}, count, 1);
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      const float f = train_math::neuron_apply<CpuLibm>(d.type, d.a, d.b, d.c, x[i]);
      const float gd = g[i] * train_math::neuron_derivative<CpuLibm>(d.type, d.a, d.b, d.c, x[i]);
      ASSERT_TRUE(same_bits(f, y[i]) || both_nan(f, y[i])) << to_string(d.type) << " forward at x = " << x[i];
      ASSERT_TRUE(same_bits(gd, gx[i]) || both_nan(gd, gx[i])) << to_string(d.type) << " gradient at x = " << x[i];
      const float fk = train_math::neuron_apply(d.type, d.a, d.b, d.c, x[i]);
      const float gk = g[i] * train_math::neuron_derivative(d.type, d.a, d.b, d.c, x[i]);
      if (c.exact) {
        ASSERT_TRUE(same_bits(fk, y[i]) || both_nan(fk, y[i])) << to_string(d.type) << " at x = " << x[i];
        ASSERT_TRUE(same_bits(gk, gx[i]) || both_nan(gk, gx[i])) << to_string(d.type) << " at x = " << x[i];
      }
      worst = std::max({worst, bound_units(fk, y[i], x[i], 1.0f, d, DataType::float32),
                        bound_units(gk, gx[i], x[i], g[i], d, DataType::float32)});
    }
    EXPECT_LE(worst, 1.0) << to_string(d.type) << ": the float64-evaluated form leaves the documented bound";
  }
}

// The kernels' optimizer elements are core/optimizer_math's loops, bit for bit, for every rule and every
// gradient preprocessing (clipping, rescale, L1, L2).
TEST(TrainingMath, OptimizerElementsMatchTheCpuEngine) {
  const int64_t n = 5000;
  const std::vector<float> g0 = spread(n, 61, -1.0f, 1.0f), w0 = spread(n, 62, -0.5f, 0.5f);
  std::vector<core::OptimizerCommon> commons(4);
  commons[0].learning_rate = 0.01f;
  commons[1] = {.learning_rate = 0.03f, .gradient_rescale = 0.5f, .apply_gradient_clipping = true,
                .gradient_clip_max = 0.25f, .gradient_clip_min = -0.3f};
  commons[2] = {.learning_rate = 0.02f, .regularization = core::Regularization::l1, .regularization_scale = 1e-3f};
  commons[3] = {.learning_rate = 0.005f, .gradient_rescale = 2.0f, .regularization = core::Regularization::l2,
                .regularization_scale = 0.01f};
  for (const core::OptimizerCommon& c : commons) {
    for (int kind = 0; kind < 6; ++kind) {
      std::vector<float> w = w0, wk = w0, s[3], sk[3];
      for (int k = 0; k < 3; ++k) s[k] = sk[k] = spread(static_cast<size_t>(n), 63 + k, 0.0f, 0.1f);
      const core::SgdParams sgd{0.9f, kind == 2};
      const core::RmsPropParams rms = core::rmsprop_params(0.95, 1e-6f);
      const core::AdamParams adam = core::adam_params(0.9, 0.999, 1e-8f);
      for (int step = 1; step <= 3; ++step) {
        const float lr_t = core::adam_step_size(c.learning_rate, 0.9, 0.999, step);
        const core::UpdateArrays a{g0.data(), w.data(), w.data(), n};
        if (kind == 0) core::sgd_update(c, sgd, a, nullptr, 1);
        if (kind == 1 || kind == 2) core::sgd_update(c, sgd, a, s[0].data(), 1);
        if (kind == 3) core::rmsprop_update(c, rms, a, s[0].data(), 1);
        if (kind == 4) core::adam_update(c, adam, lr_t, a, s[0].data(), s[1].data(), nullptr, 1);
        if (kind == 5) core::adam_update(c, adam, lr_t, a, s[0].data(), s[1].data(), s[2].data(), 1);
        for (int64_t i = 0; i < n; ++i) {
          float* m = &sk[0][static_cast<size_t>(i)];
          float& v = wk[static_cast<size_t>(i)];
          const float gi = g0[static_cast<size_t>(i)];
          using K = train_math::SgdKind;
          if (kind <= 2) v = train_math::sgd_element(c, sgd.momentum_scale, static_cast<K>(kind), gi, v, m);
          if (kind == 3) v = train_math::rmsprop_element(c, rms, gi, v, m);
          if (kind >= 4)
            v = train_math::adam_element(c, adam, lr_t, gi, v, m, &sk[1][static_cast<size_t>(i)],
                                         kind == 5 ? &sk[2][static_cast<size_t>(i)] : nullptr);
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        const auto u = static_cast<size_t>(i);
        ASSERT_TRUE(same_bits(wk[u], w[u])) << "rule " << kind << " element " << i;
        for (int k = 0; k < 3; ++k) ASSERT_TRUE(same_bits(sk[k][u], s[k][u])) << "rule " << kind << " state " << k;
      }
    }
  }
}

// Each neuron type, forward and gradient, on the GPU against the CPU on the same values, for the three image
// types (and mixed ones); nothing staged through the host on the GPU.
TEST(CudaDevice, NeuronKernelsMatchTheCpu) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  const int64_t N = 3, H = 17, W = 19, C = 7, count = N * H * W * C;  // not a multiple of the block size
  const std::vector<float> xs = spread(static_cast<size_t>(count), 71, -4.0f, 4.0f);
  const std::vector<float> gs = spread(static_cast<size_t>(count), 72, -2.0f, 2.0f);
  auto image = [&](const Device& d, const std::vector<float>& v, DataType t) {
    return make_image(d, std::vector<double>(v.begin(), v.end()), N, H, W, C, t);
  };
  auto floats = [](const Image& i) {
    const std::vector<double> d = read_all(i);
    return std::vector<float>(d.begin(), d.end());
  };
  const struct { DataType x, y; } types[] = {{DataType::float32, DataType::float32},
                                             {DataType::float16, DataType::float16},
                                             {DataType::bfloat16, DataType::bfloat16},
                                             {DataType::float16, DataType::float32},
                                             {DataType::float32, DataType::bfloat16}};
  const uint64_t staged = train::host_stagings();
  for (const NeuronCase& c : neuron_cases()) {
    double worst = 0.0;
    int64_t differ = 0;
    for (const auto& t : types) {
      std::vector<float> out[2][3];  // [device][forward, gradient, in-place gradient]
      std::vector<float> x_seen;     // x as stored in its type (what both devices read)
      int k = 0;
      for (const Device& dev : {cpu, gpu}) {
        NeuronKernel f(dev, c.n);
        NeuronGradient gr(dev, c.n);
        Image x = image(dev, xs, t.x), gy = image(dev, gs, t.y), gy2 = image(dev, gs, t.y);
        Image y(dev, ImageDescriptor{W, H, C, N, t.y}), gx(dev, ImageDescriptor{W, H, C, N, t.y});
        CommandBuffer cb(dev);
        f.encode(cb, x, y);
        gr.encode(cb, gy, x, gx);
        gr.encode(cb, gy2, x, gy2);  // in place over the source gradient
        run(cb);
        out[k][0] = floats(y);
        out[k][1] = floats(gx);
        out[k][2] = floats(gy2);
        if (k == 0) x_seen = floats(x);
        ++k;
      }
      const std::vector<float> g_seen = floats(image(cpu, gs, t.y));
      for (int o = 0; o < 3; ++o) {
        ASSERT_EQ(out[1][o].size(), out[0][o].size());
        for (size_t i = 0; i < out[0][o].size(); ++i) {
          const float got = out[1][o][i], want = out[0][o][i];
          if (same_bits(got, want) || both_nan(got, want)) continue;
          ++differ;
          ASSERT_FALSE(c.exact) << to_string(c.n.type) << " output " << o << " element " << i << ": gpu " << got
                                << ", cpu " << want << " (" << to_string(t.x) << " -> " << to_string(t.y) << ")";
          const double u = bound_units(got, want, x_seen[i], o == 0 ? 1.0f : g_seen[i], c.n, t.y);
          worst = std::max(worst, u);
          ASSERT_LE(u, 1.0) << to_string(c.n.type) << " output " << o << " element " << i << ": gpu " << got
                            << ", cpu " << want << " (" << to_string(t.x) << " -> " << to_string(t.y) << ")";
        }
      }
    }
    std::printf("[neuron %-12s] %lld of %lld values differ from the CPU; worst %.3f of the bound\n",
                std::string(to_string(c.n.type)).c_str(), static_cast<long long>(differ),
                static_cast<long long>(count * 3 * 5), worst);
  }
  EXPECT_EQ(train::host_stagings(), staged) << "neuron kernels on the GPU must not stage through the host";
}

// The MSE loss: the forward value (float64 sum in the CPU's block order) and the gradient equal the CPU's bit
// for bit, for partial and whole blocks, mixed types, an offset loss slot and an in-place gradient.
TEST(CudaDevice, MseLossMatchesTheCpuBitForBit) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  const struct { int64_t n, h, w, c; DataType p, t; } cases[] = {
      {3, 29, 31, 5, DataType::float32, DataType::float32},   // 13 485 values: 4 blocks, the last partial
      {1, 1, 1, 1, DataType::float32, DataType::float32},     // one value
      {2, 64, 64, 8, DataType::float16, DataType::float32},   // 65 536: exactly 16 blocks
      {128, 28, 28, 1, DataType::float32, DataType::float32}, // the auto-encoder's batch
      {5, 13, 11, 3, DataType::bfloat16, DataType::bfloat16}};
  const uint64_t staged = train::host_stagings();
  for (const auto& c : cases) {
    const int64_t count = c.n * c.h * c.w * c.c;
    const std::vector<double> pv = randoms(static_cast<size_t>(count), 81);
    const std::vector<double> tv = randoms(static_cast<size_t>(count), 82);
    float loss[2] = {0, 0};
    std::vector<double> grad[2], in_place[2];
    int k = 0;
    for (const Device& dev : {cpu, gpu}) {
      MSELoss mse(dev, MSELossDescriptor{.weight = 0.75f});
      Image p = make_image(dev, pv, c.n, c.h, c.w, c.c, c.p), t = make_image(dev, tv, c.n, c.h, c.w, c.c, c.t);
      Image p2 = make_image(dev, pv, c.n, c.h, c.w, c.c, c.p);
      Buffer out = Buffer::allocate(dev, 16);
      CommandBuffer cb(dev);
      mse.encode_forward(cb, p, t, out, 8);
      Image g = mse.encode_gradient(cb, p, t);
      mse.encode_gradient(cb, p2, t, p2);
      run(cb);
      float slots[4];
      out.copy_to_host(slots, 16);
      EXPECT_EQ(slots[0], 0.0f);
      EXPECT_EQ(slots[1], 0.0f);
      loss[k] = slots[2];
      grad[k] = read_all(g);
      in_place[k] = read_all(p2);
      ++k;
    }
    EXPECT_TRUE(same_bits(loss[1], loss[0])) << count << " values: gpu " << loss[1] << ", cpu " << loss[0];
    expect_equal(grad[1], grad[0], "MSE gradient");
    expect_equal(in_place[1], in_place[0], "in-place MSE gradient");
  }
  EXPECT_EQ(train::host_stagings(), staged) << "the loss on the GPU must not stage through the host";
}

namespace {

// Runs `steps` encodes of an update on `dev`: `init` arrays become buffers (each at byte offset 8 of its own
// buffer, to exercise offsets), encode(cb, buffers) encodes one update, all steps in one command buffer.
// Returns every buffer's values afterwards.
using UpdateEncode = std::function<void(CommandBuffer&, std::vector<Buffer>&, int64_t)>;
std::vector<std::vector<float>> run_updates(const Device& dev, const std::vector<std::vector<float>>& init, int steps,
                                            const UpdateEncode& encode) {
  std::vector<Buffer> b;
  for (const auto& v : init) {
    std::vector<float> padded(v.size() + 4, -7.0f);
    std::copy(v.begin(), v.end(), padded.begin() + 2);
    b.push_back(Buffer::from_host(dev, padded.data(), padded.size() * 4));
  }
  CommandBuffer cb(dev);
  for (int s = 0; s < steps; ++s) encode(cb, b, static_cast<int64_t>(init[0].size()));
  run(cb);
  std::vector<std::vector<float>> out;
  for (const Buffer& x : b) {
    std::vector<float> f(x.length() / 4);
    x.copy_to_host(f.data(), x.length());
    out.push_back(std::move(f));
  }
  return out;
}

void expect_same_floats(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t a = 0; a < got.size(); ++a) {
    ASSERT_EQ(got[a].size(), want[a].size()) << what;
    for (size_t i = 0; i < got[a].size(); ++i)
      ASSERT_TRUE(same_bits(got[a][i], want[a][i]))
          << what << ": array " << a << " element " << i << ": gpu " << got[a][i] << ", cpu " << want[a][i];
  }
}

}  // namespace

// Every optimizer (SGD plain / momentum / Nesterov, RMSProp, Adam, AMSGrad) with clipping, rescale, L1 and L2,
// vector and convolution-state forms, in place and not: the GPU's values and states equal the CPU's bit for
// bit after several steps.
TEST(CudaDevice, OptimizersMatchTheCpuBitForBit) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  const int64_t n = 1003;
  const std::vector<float> g = spread(n, 91, -1.0f, 1.0f), w = spread(n, 92, -0.5f, 0.5f);
  const std::vector<float> zeros(static_cast<size_t>(n), 0.0f), small = spread(n, 93, 0.0f, 0.01f);
  const OptimizerDescriptor clip{.learning_rate = 0.05f, .gradient_rescale = 0.5f, .apply_gradient_clipping = true,
                                 .gradient_clip_max = 0.25f, .gradient_clip_min = -0.3f};
  const OptimizerDescriptor l2{.learning_rate = 0.02f, .regularization_type = RegularizationType::l2,
                               .regularization_scale = 0.01f};
  const OptimizerDescriptor l1{.learning_rate = 0.01f, .gradient_rescale = 2.0f,
                               .regularization_type = RegularizationType::l1, .regularization_scale = 1e-3f};
  // Buffers: 0 gradient, 1 values, 2 result (or unused), 3.. states. FloatVector(buffer, 8, n) everywhere.
  auto fv = [](const Buffer& b, int64_t count) { return FloatVector(b, 8, count); };
  const uint64_t staged = train::host_stagings();
  struct Case {
    std::string name;
    std::vector<std::vector<float>> init;
    std::function<UpdateEncode(const Device&)> make;
  };
  std::vector<Case> cases;
  cases.push_back({"SGD plain, clipping + rescale", {g, w, zeros}, [&](const Device& d) -> UpdateEncode {
                     auto o = std::make_shared<OptimizerSGD>(d, 0.0f, false, clip);
                     return [o, fv](CommandBuffer& cb, std::vector<Buffer>& b, int64_t k) {
                       o->encode(cb, fv(b[0], k), fv(b[1], k), std::nullopt, fv(b[2], k));
                       o->encode(cb, fv(b[0], k), fv(b[2], k), std::nullopt, fv(b[2], k));  // in place
                     };
                   }});
  cases.push_back({"SGD momentum, L2", {g, w, small}, [&](const Device& d) -> UpdateEncode {
                     auto o = std::make_shared<OptimizerSGD>(d, 0.9f, false, l2);
                     return [o, fv](CommandBuffer& cb, std::vector<Buffer>& b, int64_t k) {
                       o->encode(cb, fv(b[0], k), fv(b[1], k), fv(b[2], k), fv(b[1], k));
                     };
                   }});
  cases.push_back({"SGD Nesterov, L1 + rescale", {g, w, small}, [&](const Device& d) -> UpdateEncode {
                     auto o = std::make_shared<OptimizerSGD>(d, 0.8f, true, l1);
                     return [o, fv](CommandBuffer& cb, std::vector<Buffer>& b, int64_t k) {
                       o->encode(cb, fv(b[0], k), fv(b[1], k), fv(b[2], k), fv(b[1], k));
                     };
                   }});
  cases.push_back({"RMSProp, clipping", {g, w, zeros, small}, [&](const Device& d) -> UpdateEncode {
                     auto o = std::make_shared<OptimizerRMSProp>(d, 0.95, 1e-6f, clip);
                     return [o, fv](CommandBuffer& cb, std::vector<Buffer>& b, int64_t k) {
                       o->encode(cb, fv(b[0], k), fv(b[1], k), fv(b[3], k), fv(b[2], k));
                       o->encode(cb, fv(b[0], k), fv(b[2], k), fv(b[3], k), fv(b[1], k));
                     };
                   }});
  cases.push_back({"Adam, L2", {g, w, zeros, zeros, zeros}, [&](const Device& d) -> UpdateEncode {
                     auto o = std::make_shared<OptimizerAdam>(d, AdamParameters{}, l2);
                     return [o, fv](CommandBuffer& cb, std::vector<Buffer>& b, int64_t k) {
                       o->encode(cb, fv(b[0], k), fv(b[1], k), fv(b[3], k), fv(b[4], k), std::nullopt, fv(b[1], k));
                     };
                   }});
  cases.push_back({"AMSGrad, clipping + rescale", {g, w, zeros, zeros, zeros, small},
                   [&](const Device& d) -> UpdateEncode {
                     auto o = std::make_shared<OptimizerAdam>(
                         d, AdamParameters{.beta1 = 0.8, .beta2 = 0.99, .epsilon = 1e-6f, .amsgrad = true}, clip);
                     return [o, fv](CommandBuffer& cb, std::vector<Buffer>& b, int64_t k) {
                       o->encode(cb, fv(b[0], k), fv(b[1], k), fv(b[3], k), fv(b[4], k), fv(b[5], k), fv(b[2], k));
                     };
                   }});
  for (const Case& c : cases) {
    const auto want = run_updates(cpu, c.init, 4, c.make(cpu));
    const auto got = run_updates(gpu, c.init, 4, c.make(gpu));
    expect_same_floats(got, want, c.name);
  }

  // Convolution-state forms: weights and biases in one launch, in place or into another state.
  ConvolutionDescriptor desc(3, 3, 5, 7);
  const int64_t nw = desc.weight_elements(), nb = 7;
  auto state_run = [&](const Device& dev, int rule) {
    auto gs = StateAccess::make_gradient(new_gradient_state_impl(dev, desc, false));
    Buffer gw = gs.gradient_for_weights(), gb = gs.gradient_for_biases();
    gw.copy_from_host(spread(static_cast<size_t>(nw), 94, -1.0f, 1.0f).data(), static_cast<size_t>(nw) * 4);
    gb.copy_from_host(spread(static_cast<size_t>(nb), 95, -1.0f, 1.0f).data(), static_cast<size_t>(nb) * 4);
    const std::vector<float> w0 = spread(static_cast<size_t>(nw), 96, -0.5f, 0.5f), b0 = spread(7, 97, -0.5f, 0.5f);
    ConvolutionWeightsAndBiasesState src(Buffer::from_host(dev, w0.data(), w0.size() * 4),
                                         Buffer::from_host(dev, b0.data(), b0.size() * 4));
    ConvolutionWeightsAndBiasesState dst(dev, desc);
    std::vector<Buffer> st;
    for (int k = 0; k < 6; ++k) st.push_back(Buffer::allocate(dev, static_cast<size_t>(k % 2 == 0 ? nw : nb) * 4));
    OptimizerSGD plain(dev, 0.0f, false, l1);
    OptimizerSGD nesterov(dev, 0.9f, true, clip);
    OptimizerRMSProp rms(dev, 0.9, 1e-7f, l2);
    OptimizerAdam adam(dev, AdamParameters{}, clip);
    OptimizerAdam ams(dev, AdamParameters{.amsgrad = true}, l2);
    CommandBuffer cb(dev);
    for (int step = 0; step < 3; ++step) {
      if (rule == 0) plain.encode(cb, gs, src, {}, src);
      if (rule == 1) nesterov.encode(cb, gs, src, {st[0], st[1]}, dst);
      if (rule == 2) rms.encode(cb, gs, src, {st[0], st[1]}, src);
      if (rule == 3) adam.encode(cb, gs, src, {st[0], st[1]}, {st[2], st[3]}, src);
      if (rule == 4) ams.encode(cb, gs, src, {st[0], st[1]}, {st[2], st[3]}, {st[4], st[5]}, dst);
      if (rule == 5) adam.encode(cb, gs, src, {st[0]}, {st[2]}, src);  // weights only: biases stay
    }
    run(cb);
    std::vector<std::vector<float>> out;
    for (const Buffer& x : {src.weights(), src.biases(), dst.weights(), dst.biases()}) {
      std::vector<float> f(x.length() / 4);
      x.copy_to_host(f.data(), x.length());
      out.push_back(std::move(f));
    }
    for (const Buffer& x : st) {
      std::vector<float> f(x.length() / 4);
      x.copy_to_host(f.data(), x.length());
      out.push_back(std::move(f));
    }
    return out;
  };
  for (int rule = 0; rule < 6; ++rule)
    expect_same_floats(state_run(gpu, rule), state_run(cpu, rule), "state form, rule " + std::to_string(rule));
  EXPECT_EQ(train::host_stagings(), staged) << "optimizers on the GPU must not stage through the host";
}

// A whole training step of a small auto-encoder (Convolution → ReLU → ConvolutionTranspose sized by the
// convolution's state → sigmoid → MSE; gradients; Adam on both layers in place; reloads on the queue), three
// steps on each device. The convolutions' float sums may be ordered differently on the GPU, so the losses and
// weights agree to rounding (bounds below), not bit for bit; the companions stay on the device.
TEST(CudaDevice, TrainingStepsStayOnTheDeviceAndMatchTheCpu) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  ConvolutionDescriptor ed(4, 4, 1, 4), dd(4, 4, 4, 1);
  ed.stride_x = ed.stride_y = dd.stride_x = dd.stride_y = 2;
  const std::vector<double> ew = randoms(4 * 16, 101), eb = randoms(4, 102), dw = randoms(16 * 4, 103),
                            db = randoms(1, 104);
  std::vector<double> xv = randoms(3 * 12 * 12, 105);
  for (double& v : xv) v = (v + 1.0) * 0.5;  // pixels in [0, 1]
  struct Run {
    std::vector<double> losses, params;
  };
  auto train = [&](const Device& dev) {
    Run r;
    auto es = source(ed, ew, eb), ds = source(dd, dw, db);
    Convolution enc(dev, es);
    ConvolutionGradient enc_grad(dev, es);
    enc_grad.set_gradient_option(GradientOption::weights_and_bias);
    ConvolutionTranspose dec(dev, ds);
    ConvolutionTransposeGradient dec_grad(dev, ds);
    NeuronKernel relu(dev, NeuronDescriptor{NeuronType::relu}), sigmoid(dev, NeuronDescriptor{NeuronType::sigmoid});
    NeuronGradient relu_grad(dev, NeuronDescriptor{NeuronType::relu});
    NeuronGradient sigmoid_grad(dev, NeuronDescriptor{NeuronType::sigmoid});
    MSELoss mse(dev);
    auto state = [&](const std::vector<double>& w, const std::vector<double>& b) {
      const std::vector<float> wf(w.begin(), w.end()), bf(b.begin(), b.end());
      return ConvolutionWeightsAndBiasesState(Buffer::from_host(dev, wf.data(), wf.size() * 4),
                                              Buffer::from_host(dev, bf.data(), bf.size() * 4));
    };
    ConvolutionWeightsAndBiasesState ewb = state(ew, eb), dwb = state(dw, db);
    auto zeros = [&](size_t k) { return Buffer::allocate(dev, k * 4); };
    std::vector<Buffer> em{zeros(ew.size()), zeros(eb.size())}, ev{zeros(ew.size()), zeros(eb.size())};
    std::vector<Buffer> dm{zeros(dw.size()), zeros(db.size())}, dv{zeros(dw.size()), zeros(db.size())};
    // ε = 1e-4 keeps Adam's step a smooth function of the gradient, so that rounding-level differences in the
    // convolutions' gradients stay rounding-level in the weights (with 1e-8, a gradient near 0 could flip sign).
    const AdamParameters ap{.epsilon = 1e-4f};
    OptimizerAdam adam_e(dev, ap, OptimizerDescriptor{.learning_rate = 0.01f});
    OptimizerAdam adam_d(dev, ap, OptimizerDescriptor{.learning_rate = 0.01f});
    Image x = make_image(dev, xv, 3, 12, 12, 1);
    Buffer loss = Buffer::allocate(dev, 4);
    for (int step = 0; step < 3; ++step) {
      CommandBuffer cb(dev);
      ConvolutionGradientState s1;
      ConvolutionTransposeGradientState t1;
      Image h1 = enc.encode(cb, x, s1, false);
      Image a1 = relu.encode(cb, h1);
      Image h2 = dec.encode(cb, a1, s1, t1, false);
      Image y = sigmoid.encode(cb, h2);
      mse.encode_forward(cb, y, x, loss);
      Image g = y;
      mse.encode_gradient(cb, y, x, g);
      sigmoid_grad.encode(cb, g, h2, g);
      Image ga1 = dec_grad.encode(cb, g, a1, t1);
      relu_grad.encode(cb, ga1, h1, ga1);
      enc_grad.encode(cb, ga1, x, s1);
      adam_e.encode(cb, s1, ewb, em, ev, ewb);
      adam_d.encode(cb, t1, dwb, dm, dv, dwb);
      enc.reload_weights_and_biases(cb, ewb);
      dec.reload_weights_and_biases(cb, dwb);
      dec_grad.reload_weights_and_biases(cb, dwb);
      run(cb);
      float l = 0;
      loss.copy_to_host(&l, 4);
      r.losses.push_back(l);
    }
    for (const Buffer& b : {ewb.weights(), ewb.biases(), dwb.weights(), dwb.biases()}) {
      std::vector<float> f(b.length() / 4);
      b.copy_to_host(f.data(), b.length());
      r.params.insert(r.params.end(), f.begin(), f.end());
    }
    return r;
  };
  const Run want = train(cpu);
  const uint64_t staged = train::host_stagings();
  const Run got = train(gpu);
  EXPECT_EQ(train::host_stagings(), staged) << "a training step on the GPU must not stage through the host";
  ASSERT_EQ(got.losses.size(), want.losses.size());
  for (size_t i = 0; i < want.losses.size(); ++i)
    EXPECT_NEAR(got.losses[i], want.losses[i], 1e-5 * want.losses[i]) << "loss of step " << i;
  EXPECT_LT(want.losses.back(), want.losses.front()) << "the steps must train";
  ASSERT_EQ(got.params.size(), want.params.size());
  for (size_t i = 0; i < want.params.size(); ++i)
    EXPECT_NEAR(got.params[i], want.params[i], 1e-6) << "parameter " << i;
}

// ---------------------------------------------------------------- device-side weight reloads
//
// A reload from a weights state in the GPU's memory is one launch on the queue's stream (api::encode_reload_weights,
// src/cuda/weights_kernels.cu): the same values as the reload through the host (same rounding to the storage
// type, same layout), no host copy and no wait for the GPU, and the host values of the kernel are read back only
// when someone reads them (current weights, equality, copies), once per reload.

namespace {

namespace cwb = tconv::cuda_backend::weights;

// Weights that round differently in each storage type: random values plus a float16 subnormal, a float16 tie
// (1 + 2⁻¹¹ rounds to even, 1) and a bfloat16 tie (−(1 + 2⁻⁸) rounds to −1).
std::vector<float> reload_values(size_t n, uint32_t seed) {
  std::vector<float> v = spread(n, seed, -2.0f, 2.0f);
  v[0] = 3.0e-6f;
  v[1] = 1.0f + std::ldexp(1.0f, -11);
  v[2] = -(1.0f + std::ldexp(1.0f, -8));
  return v;
}

std::vector<float> rounded(std::vector<float> v, DataType storage) {
  for (float& x : v) {
    if (storage == DataType::float16) x = core::f16_to_f32(core::f32_to_f16(x));
    if (storage == DataType::bfloat16) x = core::bf16_to_f32(core::f32_to_bf16(x));
  }
  return v;
}

ConvolutionWeightsAndBiasesState state_on(const Device& where, const std::vector<float>& w, const std::vector<float>& b) {
  return ConvolutionWeightsAndBiasesState(Buffer::from_host(where, w.data(), w.size() * 4),
                                          Buffer::from_host(where, b.data(), b.size() * 4));
}

std::vector<float> float_values(const Buffer& b, std::size_t offset, size_t count) {
  std::vector<float> f(count);
  b.copy_to_host(f.data(), count * 4, offset);
  return f;
}

void expect_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_TRUE(same_bits(got[i], want[i])) << what << " at " << i << ": " << got[i] << " vs " << want[i];
}

void expect_bits(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_TRUE(std::memcmp(&got[i], &want[i], sizeof(double)) == 0) << what << " at " << i << ": " << got[i] << " vs "
                                                                     << want[i];
}

// The four kernels that own weights: a grouped, strided transpose and its gradient, a grouped, strided
// convolution and its gradient (the convolution's store is kept canonical: the reload reorders).
struct WeightKernels {
  static ConvolutionDescriptor descriptor() {
    ConvolutionDescriptor d(3, 3, 6, 8);
    d.stride_x = d.stride_y = 2;
    d.groups = 2;
    return d;
  }
  static std::shared_ptr<ArrayDataSource> data_source(uint32_t seed, DataType storage) {
    const ConvolutionDescriptor d = descriptor();
    auto ds = source(d, randoms(static_cast<size_t>(d.weight_elements()), seed), randoms(8, seed + 1));
    if (storage != DataType::float32) ds->set_kernel_weights_data_type(storage);
    return ds;
  }
  WeightKernels(const Device& d, DataType storage)
      : dev(d), t(d, data_source(301, storage)), tg(d, data_source(301, storage)), c(d, data_source(303, storage)),
        cg(d, data_source(303, storage)) {}
  void reload(CommandBuffer& cb, const ConvolutionWeightsAndBiasesState& ts, const ConvolutionWeightsAndBiasesState& cs) {
    t.reload_weights_and_biases(cb, ts);
    tg.reload_weights_and_biases(cb, ts);
    c.reload_weights_and_biases(cb, cs);
    cg.reload_weights_and_biases(cb, cs);
  }
  // Every weight-reading run: the transpose's forward and data gradient, the convolution's forward and data
  // gradient, on fixed random inputs.
  std::vector<std::vector<double>> outputs() {
    CommandBuffer cb(dev);
    Image x = make_image(dev, randoms(2 * 5 * 5 * 6, 311), 2, 5, 5, 6);
    ConvolutionTransposeGradientState st;
    Image y = t.encode(cb, x, ConvolutionGradientState(), st, false);
    Image gy = make_image(dev, randoms(static_cast<size_t>(y.element_count()), 312), 2, y.height(), y.width(), 8);
    Image gx = tg.encode(cb, gy, x, st);
    Image xc = make_image(dev, randoms(2 * 9 * 9 * 6, 313), 2, 9, 9, 6);
    ConvolutionGradientState cs;
    Image yc = c.encode(cb, xc, cs, false);
    Image gyc = make_image(dev, randoms(static_cast<size_t>(yc.element_count()), 314), 2, yc.height(), yc.width(), 8);
    Image gxc = cg.encode(cb, gyc, xc, cs);
    run(cb);
    return {read_all(y), read_all(gx), read_all(yc), read_all(gxc)};
  }
  Device dev;
  ConvolutionTranspose t;
  ConvolutionTransposeGradient tg;
  Convolution c;
  ConvolutionGradient cg;
};

}  // namespace

// The device-side reload equals the reload through the host bit for bit — weights rounded to the storage type
// the same way, the convolution's reordered the same way, biases alike — and so do the runs that read them; the
// runs read nothing back to the host.
TEST(CudaDevice, DeviceSideReloadEqualsTheHostPathBitForBit) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  const ConvolutionDescriptor d = WeightKernels::descriptor();
  const auto n = static_cast<size_t>(d.weight_elements());
  const std::vector<float> tw = reload_values(n, 321), tb = spread(8, 322, -1.0f, 1.0f);
  const std::vector<float> cw = reload_values(n, 323), cb_ = spread(8, 324, -1.0f, 1.0f);
  for (DataType storage : {DataType::float32, DataType::float16, DataType::bfloat16}) {
    SCOPED_TRACE(std::string("storage ") + std::string(to_string(storage)));
    WeightKernels on_device(gpu, storage), through_host(gpu, storage), on_cpu(cpu, storage);
    {
      CommandBuffer a(gpu), b(gpu), c(cpu);
      const uint64_t u0 = api::weight_uploads();
      on_device.reload(a, state_on(gpu, tw, tb), state_on(gpu, cw, cb_));  // device-only buffers: the device path
      run(a);
      EXPECT_EQ(api::weight_uploads(), u0 + 4) << "one device copy per reload";
      through_host.reload(b, state_on(cpu, tw, tb), state_on(cpu, cw, cb_));  // host memory: through the host
      run(b);
      on_cpu.reload(c, state_on(cpu, tw, tb), state_on(cpu, cw, cb_));
      run(c);
    }
    const uint64_t r0 = api::weight_readbacks();
    const auto got = on_device.outputs(), want = through_host.outputs();
    EXPECT_EQ(api::weight_readbacks(), r0) << "runs after a device-side reload must not read the weights back";
    for (size_t k = 0; k < want.size(); ++k) expect_bits(got[k], want[k], "run " + std::to_string(k));

    const std::vector<float> tw_r = rounded(tw, storage), cw_r = rounded(cw, storage);
    if (storage == DataType::float16) {
      EXPECT_EQ(tw_r[1], 1.0f);
      EXPECT_NE(tw_r[0], tw[0]) << "the float16 subnormal rounds";
    }
    if (storage == DataType::bfloat16) EXPECT_EQ(tw_r[2], -1.0f);
    for (WeightKernels* k : {&on_device, &through_host, &on_cpu}) {
      expect_bits(k->t.current_weights(), tw_r, "transpose weights");
      expect_bits(k->t.current_biases(), tb, "transpose biases");
      expect_bits(k->tg.current_weights(), tw_r, "transpose gradient weights");
      expect_bits(k->c.current_weights(), cw_r, "convolution weights (its own OHWI layout)");
      expect_bits(k->c.current_biases(), cb_, "convolution biases");
    }
    EXPECT_GT(api::weight_readbacks(), r0) << "host reads of a device-side reload read it back";
  }
}

// Neither the encode nor the command of a device-side reload waits for the GPU: with the stream kept busy by
// a long kernel before the reloads, the stream is still busy when the command after the reloads runs. The
// control (an explicit synchronisation in the same place) shows that the probe sees an idle stream.
TEST(CudaDevice, DeviceSideReloadDoesNotWaitForTheGpu) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0);
  const ConvolutionDescriptor d = WeightKernels::descriptor();
  const auto n = static_cast<size_t>(d.weight_elements());
  const std::vector<float> tw = reload_values(n, 331), tb = spread(8, 332, -1.0f, 1.0f);
  const std::vector<float> cw = reload_values(n, 333), cb_ = spread(8, 334, -1.0f, 1.0f);
  const ConvolutionWeightsAndBiasesState ts = state_on(gpu, tw, tb), cs = state_on(gpu, cw, cb_);
  WeightKernels k(gpu, DataType::float16);
  for (bool control : {false, true}) {
    CommandBuffer cb(gpu);
    void* stream = cb.cuda_stream();
    cb.encode("spin", [stream] { core::throw_if_error(cwb::spin(0, stream, 300000)); });  // 0.3 s of GPU time
    const uint64_t r0 = api::weight_readbacks();
    k.reload(cb, ts, cs);
    if (control)
      cb.encode("synchronise", [stream] { core::throw_if_error(cuda_backend::stream_synchronize(0, stream)); });
    bool idle = true;
    cb.encode("probe", [stream, &idle] { core::throw_if_error(cwb::stream_idle(0, stream, &idle)); });
    run(cb);
    EXPECT_EQ(api::weight_readbacks(), r0);
    if (control) EXPECT_TRUE(idle) << "control: after a synchronisation the probe must see the stream idle";
    else EXPECT_FALSE(idle) << "a device-side reload waited for the GPU work queued before it";
  }
  // And the reloads took effect, in queue order, with the host path's values.
  WeightKernels through_host(gpu, DataType::float16);
  CommandBuffer cb(gpu);
  through_host.reload(cb, state_on(Device::cpu(1), tw, tb), state_on(Device::cpu(1), cw, cb_));
  run(cb);
  const auto got = k.outputs(), want = through_host.outputs();
  for (size_t i = 0; i < want.size(); ++i) expect_bits(got[i], want[i], "run " + std::to_string(i));
}

// The host values of a device-side reload are read back lazily: export stays on the device; the first host read
// reads the store back once (current weights and biases together), later reads do not; copies and equality see
// the reloaded values; the convolution's values come back in its own layout.
TEST(CudaDevice, DeviceSideReloadHostValuesAreReadBackLazily) {
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  Device gpu = Device::cuda(0), cpu = Device::cpu(2);
  const ConvolutionDescriptor d = WeightKernels::descriptor();
  const auto n = static_cast<size_t>(d.weight_elements());
  const DataType storage = DataType::bfloat16;
  const std::vector<float> tw = reload_values(n, 341), tb = spread(8, 342, -1.0f, 1.0f);
  const std::vector<float> cw = reload_values(n, 343), cb_ = spread(8, 344, -1.0f, 1.0f);
  const std::vector<float> tw_r = rounded(tw, storage), cw_r = rounded(cw, storage);
  WeightKernels k(gpu, storage);
  {
    CommandBuffer cb(gpu);
    k.reload(cb, state_on(gpu, tw, tb), state_on(gpu, cw, cb_));
    run(cb);
  }
  const uint64_t r0 = api::weight_readbacks();
  // Export: device to device, back in the kernel's layout.
  CommandBuffer e(gpu);
  ConvolutionWeightsAndBiasesState et = k.t.export_weights_and_biases(e, false), ec = k.c.export_weights_and_biases(e, false);
  run(e);
  EXPECT_EQ(api::weight_readbacks(), r0) << "export must stay on the device";
  expect_bits(float_values(et.weights(), et.weights_offset(), n), tw_r, "exported transpose weights");
  expect_bits(float_values(et.biases(), et.biases_offset(), 8), tb, "exported transpose biases");
  expect_bits(float_values(ec.weights(), ec.weights_offset(), n), cw_r, "exported convolution weights");
  expect_bits(float_values(ec.biases(), ec.biases_offset(), 8), cb_, "exported convolution biases");

  // Host reads: one read back per store, on first use.
  expect_bits(k.t.current_weights(), tw_r, "transpose weights");
  EXPECT_EQ(api::weight_readbacks(), r0 + 1);
  expect_bits(k.t.current_biases(), tb, "transpose biases");
  expect_bits(k.t.current_weights(), tw_r, "transpose weights again");
  EXPECT_EQ(api::weight_readbacks(), r0 + 1) << "the mirror is read back once";
  expect_bits(k.c.current_weights(), cw_r, "convolution weights");
  EXPECT_EQ(api::weight_readbacks(), r0 + 2);

  // Copies take the reloaded values (e11), on either device; equality compares them.
  ConvolutionTranspose t_gpu = k.t.copy_to(gpu), t_cpu = k.t.copy_to(cpu);
  expect_bits(t_gpu.current_weights(), tw_r, "copy on the GPU");
  expect_bits(t_cpu.current_weights(), tw_r, "copy on the CPU");
  expect_bits(t_cpu.current_biases(), tb, "copy's biases");
  EXPECT_TRUE(t_gpu.equals(k.t));
  ConvolutionTransposeGradient tg_copy = k.tg.copy_to(gpu);
  expect_bits(tg_copy.current_weights(), tw_r, "gradient copy");
  EXPECT_TRUE(tg_copy.equals(k.tg));
  {
    // The copy runs with the reloaded values too.
    CommandBuffer cb(gpu);
    Image x = make_image(gpu, randoms(2 * 5 * 5 * 6, 345), 2, 5, 5, 6);
    Image y1 = k.t.encode(cb, x), y2 = t_gpu.encode(cb, x);
    run(cb);
    expect_bits(read_all(y2), read_all(y1), "copy's forward");
  }
  // A second kernel reloaded from equal values compares equal; before it is read it costs no read back.
  WeightKernels other(gpu, storage);
  const uint64_t r1 = api::weight_readbacks();
  {
    CommandBuffer cb(gpu);
    other.reload(cb, state_on(gpu, tw, tb), state_on(gpu, cw, cb_));
    run(cb);
  }
  EXPECT_EQ(api::weight_readbacks(), r1);
  EXPECT_TRUE(other.t.equals(k.t));
  EXPECT_TRUE(other.c.equals(k.c));
}
