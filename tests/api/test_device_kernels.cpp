// The object API on a CUDA device (skipped without one): device-only buffers (contents() null), host
// transfers through staging, kernels run by the CUDA algorithms, results equal to the CPU's on small
// integers (exact in float32); the two-stream gradient, resident weights and reloads, the command buffer's
// stream.
#include <gtest/gtest.h>

#include "api/internal.hpp"  // api::weight_uploads()
#include "api_test_util.hpp"
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
