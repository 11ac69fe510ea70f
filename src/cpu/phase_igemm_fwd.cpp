// cpu_phase_igemm_f32: the forward pass (dst = neuron(bias + transposed convolution of src)) as an indirect
// GEMM over the stride phases of dst (sub-pixel decomposition): each phase is a dense convolution with the
// taps that hit it, so no multiply touches an inserted zero. Engine: igemm_f32.hpp.
// float16/bfloat16 activations and rounding precision modes are staged into float32 (cpu_common.hpp);
// accumulation is float32 in a fixed order (deterministic for any thread count).
#include "cpu/cpu_algorithms.hpp"
#include "cpu/cpu_common.hpp"
#include "cpu/igemm_f32.hpp"

namespace tconv::cpu {
namespace {

class PhaseIgemmFwd final : public registry::Algorithm {
 public:
  std::string_view name() const noexcept override { return "cpu_phase_igemm_f32"; }
  DeviceKind backend() const noexcept override { return DeviceKind::cpu; }
  std::optional<std::string> decline_reason(const core::Problem& p) const override {
    if (p.dir != core::Direction::fwd) return std::string("computes the forward direction only, not ") + core::to_string(p.dir);
    return std::nullopt;
  }
  std::size_t workspace_bytes(const core::Problem& p) const override {
    const core::Geometry& g = p.g;
    std::size_t b = round_up(static_cast<int64_t>(igemm_packed_bytes(g, true)), 64);
    if (input_needs_staging(p.act_type, p.precision)) b += f32_bytes(g.n, g.h_in, g.w_in, g.c_in);
    if (p.act_type != DataType::float32) b += f32_bytes(g.n, g.h_out, g.w_out, g.c_out);
    return b;
  }
  core::Status run(const core::Problem& p, const core::Args& a, void* workspace,
                   const registry::ExecContext& ctx) const override {
    const core::Geometry& g = p.g;
    char* w = static_cast<char*>(workspace);
    IgemmJob job;
    job.fwd = true;
    job.g = g;
    job.threads = ctx.num_threads;
    job.packed = w;
    w += round_up(static_cast<int64_t>(igemm_packed_bytes(g, true)), 64);
    if (input_needs_staging(p.act_type, p.precision)) {
      job.a = stage_input(a.src, g.n, g.h_in, g.w_in, g.c_in, p.act_type, p.precision, reinterpret_cast<float*>(w), ctx.num_threads);
      w += f32_bytes(g.n, g.h_in, g.w_in, g.c_in);
    } else {
      job.a = as_f32(a.src);
    }
    const bool stage_out = p.act_type != DataType::float32;
    job.c = stage_out ? F32View{reinterpret_cast<float*>(w), g.h_out * g.w_out * g.c_out, g.w_out * g.c_out, g.c_out}
                      : as_f32(a.dst);
    job.wei = a.wei;
    job.precision = p.precision;
    job.bias = p.with_bias ? a.bias : nullptr;
    job.neuron = p.neuron;
    igemm_run(job);
    if (stage_out) unstage_output(job.c.data, a.dst, g.n, g.h_out, g.w_out, g.c_out, p.act_type, ctx.num_threads);
    return core::Status::ok_status();
  }
};

}  // namespace

const registry::Algorithm* phase_igemm_fwd() {
  static const PhaseIgemmFwd a;
  return &a;
}

}  // namespace tconv::cpu
