// The object API on a CUDA device (skipped without one): device-only buffers (contents() null), host
// transfers through staging, kernels run by the CUDA algorithms, results equal to the CPU's on small
// integers (exact in float32).
#include <gtest/gtest.h>

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
