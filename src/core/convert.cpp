// Public MPS ↔ PyTorch conversion helpers (include/tconv/convert.hpp; spec a.13, e13).
// Weight conversions are pure index permutations (exact). Geometry goes through core::mps so the offset
// arithmetic (floor/mod on negative totals) is the one the rest of the library uses.
#include "tconv/convert.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <string>

#include "core/mps_geometry.hpp"
#include "tconv/error.hpp"

namespace tconv {

namespace {

[[noreturn]] void bad(const std::string& what) { throw Error(ErrorCode::invalid_argument, what); }

std::string describe(const WeightShape& s) {
  std::ostringstream m;
  m << "in_channels " << s.in_channels << ", out_channels " << s.out_channels << ", kernel " << s.kernel_h << "x"
    << s.kernel_w << ", groups " << s.groups;
  return m.str();
}

void check_shape(const WeightShape& s, const char* fn) {
  if (s.in_channels <= 0 || s.out_channels <= 0 || s.kernel_h <= 0 || s.kernel_w <= 0 || s.groups <= 0)
    bad(std::string(fn) + ": weight shape sizes must be positive, got " + describe(s));
  if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0)
    bad(std::string(fn) + ": groups must divide both channel counts, got " + describe(s));
  const int64_t limit = std::numeric_limits<int64_t>::max() / 8;
  int64_t r = 1;
  for (int64_t x : {s.out_channels, s.kernel_h, s.kernel_w, s.in_channels / s.groups}) {
    if (r > limit / x) bad(std::string(fn) + ": weight element count overflows, got " + describe(s));
    r *= x;
  }
}

void check_count(const std::vector<float>& v, const WeightShape& s, const char* fn) {
  check_shape(s, fn);
  if (static_cast<int64_t>(v.size()) != s.elements()) {
    std::ostringstream m;
    m << fn << ": expected " << s.elements() << " weights for " << describe(s) << ", got " << v.size();
    bad(m.str());
  }
}

// Calls f(mps flat index, torch flat index) for every element of a transpose weight.
template <class F>
void transpose_pairs(const WeightShape& s, F f) {
  const int64_t Ig = s.in_channels / s.groups, Og = s.out_channels / s.groups, kh = s.kernel_h, kw = s.kernel_w;
  for (int64_t o = 0; o < s.out_channels; ++o) {
    const int64_t g = o / Og;
    for (int64_t q = 0; q < kh; ++q)
      for (int64_t p = 0; p < kw; ++p)
        for (int64_t c = 0; c < Ig; ++c) {
          const int64_t mps = ((o * kh + q) * kw + p) * Ig + c;
          const int64_t torch = (((g * Ig + c) * Og + (o - g * Og)) * kh + (kh - 1 - q)) * kw + (kw - 1 - p);
          f(mps, torch);
        }
  }
}

// Calls f(mps flat index, torch flat index) for every element of a conv weight.
template <class F>
void conv_pairs(const WeightShape& s, F f) {
  const int64_t Ig = s.in_channels / s.groups, kh = s.kernel_h, kw = s.kernel_w;
  for (int64_t o = 0; o < s.out_channels; ++o)
    for (int64_t q = 0; q < kh; ++q)
      for (int64_t p = 0; p < kw; ++p)
        for (int64_t c = 0; c < Ig; ++c) f(((o * kh + q) * kw + p) * Ig + c, ((o * Ig + c) * kh + q) * kw + p);
}

void check_axis(int64_t kernel, int64_t stride, int64_t dilation, const char* fn) {
  if (kernel <= 0 || stride <= 0 || dilation <= 0) {
    std::ostringstream m;
    m << fn << ": kernel, stride and dilation must be positive, got kernel " << kernel << ", stride " << stride
      << ", dilation " << dilation;
    bad(m.str());
  }
}

}  // namespace

int64_t WeightShape::elements() const { return out_channels * kernel_h * kernel_w * (in_channels / groups); }

void transpose_weights_from_torch(const float* torch_weights, float* mps_weights, const WeightShape& s) {
  check_shape(s, "transpose_weights_from_torch");
  transpose_pairs(s, [&](int64_t m, int64_t t) { mps_weights[m] = torch_weights[t]; });
}
void transpose_weights_to_torch(const float* mps_weights, float* torch_weights, const WeightShape& s) {
  check_shape(s, "transpose_weights_to_torch");
  transpose_pairs(s, [&](int64_t m, int64_t t) { torch_weights[t] = mps_weights[m]; });
}
std::vector<float> transpose_weights_from_torch(const std::vector<float>& torch_weights, const WeightShape& s) {
  check_count(torch_weights, s, "transpose_weights_from_torch");
  std::vector<float> out(torch_weights.size());
  transpose_weights_from_torch(torch_weights.data(), out.data(), s);
  return out;
}
std::vector<float> transpose_weights_to_torch(const std::vector<float>& mps_weights, const WeightShape& s) {
  check_count(mps_weights, s, "transpose_weights_to_torch");
  std::vector<float> out(mps_weights.size());
  transpose_weights_to_torch(mps_weights.data(), out.data(), s);
  return out;
}

void conv_weights_from_torch(const float* torch_weights, float* mps_weights, const WeightShape& s) {
  check_shape(s, "conv_weights_from_torch");
  conv_pairs(s, [&](int64_t m, int64_t t) { mps_weights[m] = torch_weights[t]; });
}
void conv_weights_to_torch(const float* mps_weights, float* torch_weights, const WeightShape& s) {
  check_shape(s, "conv_weights_to_torch");
  conv_pairs(s, [&](int64_t m, int64_t t) { torch_weights[t] = mps_weights[m]; });
}
std::vector<float> conv_weights_from_torch(const std::vector<float>& torch_weights, const WeightShape& s) {
  check_count(torch_weights, s, "conv_weights_from_torch");
  std::vector<float> out(torch_weights.size());
  conv_weights_from_torch(torch_weights.data(), out.data(), s);
  return out;
}
std::vector<float> conv_weights_to_torch(const std::vector<float>& mps_weights, const WeightShape& s) {
  check_count(mps_weights, s, "conv_weights_to_torch");
  std::vector<float> out(mps_weights.size());
  conv_weights_to_torch(mps_weights.data(), out.data(), s);
  return out;
}

int64_t mps_total_offset_from_torch_padding(int64_t padding, int64_t kernel, int64_t dilation) {
  check_axis(kernel, 1, dilation, "mps_total_offset_from_torch_padding");
  return core::mps::total_offset_from_fwd_pad(padding, kernel, dilation);
}

int64_t torch_padding_from_mps_total_offset(int64_t total_offset, int64_t kernel, int64_t dilation) {
  check_axis(kernel, 1, dilation, "torch_padding_from_mps_total_offset");
  return core::mps::fwd_pad_from_total_offset(total_offset, kernel, dilation);
}

MpsTransposeOffsets mps_offsets_from_torch(const TorchTransposeGeometry& t, int64_t kernel_h, int64_t kernel_w) {
  check_axis(kernel_h, t.stride.h, t.dilation.h, "mps_offsets_from_torch (height)");
  check_axis(kernel_w, t.stride.w, t.dilation.w, "mps_offsets_from_torch (width)");
  const auto sy = core::mps::split_total_offset(
      core::mps::total_offset_from_fwd_pad(t.padding.h, kernel_h, t.dilation.h), t.stride.h);
  const auto sx = core::mps::split_total_offset(
      core::mps::total_offset_from_fwd_pad(t.padding.w, kernel_w, t.dilation.w), t.stride.w);
  MpsTransposeOffsets o;
  o.offset_x = sx.offset;
  o.kernel_offset_x = sx.kernel_offset;
  o.offset_y = sy.offset;
  o.kernel_offset_y = sy.kernel_offset;
  return o;
}

int64_t torch_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t padding,
                                    int64_t output_padding) {
  check_axis(kernel, stride, dilation, "torch_transpose_output_size");
  const int64_t out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1;
  if (in <= 0 || out <= 0) {
    std::ostringstream m;
    m << "torch_transpose_output_size: input size " << in << ", kernel " << kernel << ", stride " << stride
      << ", dilation " << dilation << ", padding " << padding << ", output_padding " << output_padding
      << " give output size " << out << " (must be positive)";
    bad(m.str());
  }
  return out;
}

int64_t torch_conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t padding) {
  check_axis(kernel, stride, dilation, "torch_conv_output_size");
  const int64_t out = core::mps::floor_div(in + 2 * padding - dilation * (kernel - 1) - 1, stride) + 1;
  if (in <= 0 || out <= 0) {
    std::ostringstream m;
    m << "torch_conv_output_size: input size " << in << ", kernel " << kernel << ", stride " << stride
      << ", dilation " << dilation << ", padding " << padding << " give output size " << out
      << " (must be positive)";
    bad(m.str());
  }
  return out;
}

TorchTransposeGeometry torch_from_mps(const MpsTransposeOffsets& o, int64_t kernel_h, int64_t kernel_w,
                                      TorchTransposeGeometry::HW stride, TorchTransposeGeometry::HW dilation,
                                      int64_t groups, TorchTransposeGeometry::HW in_size,
                                      TorchTransposeGeometry::HW out_size) {
  check_axis(kernel_h, stride.h, dilation.h, "torch_from_mps (height)");
  check_axis(kernel_w, stride.w, dilation.w, "torch_from_mps (width)");
  if (groups <= 0) bad("torch_from_mps: groups must be positive, got " + std::to_string(groups));
  TorchTransposeGeometry t;
  t.stride = stride;
  t.dilation = dilation;
  t.groups = groups;
  auto axis = [&](const char* name, int64_t offset, int64_t kernel_offset, int64_t k, int64_t s, int64_t d,
                  int64_t in, int64_t out, int64_t& pad, int64_t& op) {
    const int64_t T = offset * s + kernel_offset;
    pad = core::mps::fwd_pad_from_total_offset(T, k, d);
    if (pad < 0) {
      std::ostringstream m;
      m << "torch_from_mps: the " << name << " axis (offset " << offset << ", kernel offset " << kernel_offset
        << ", kernel " << k << ", stride " << s << ", dilation " << d << ") needs PyTorch padding " << pad
        << " < 0; pad the source by " << -pad << " first";
      bad(m.str());
    }
    const int64_t natural = (in - 1) * s - 2 * pad + d * (k - 1) + 1;
    op = out - natural;
    if (in <= 0 || out <= 0 || op < 0 || op >= std::max(s, d)) {
      std::ostringstream m;
      m << "torch_from_mps: the " << name << " axis maps input size " << in << " to output size " << out
        << ", which needs output_padding " << op << " (PyTorch allows 0 to " << std::max(s, d) - 1
        << " with stride " << s << ", dilation " << d << ", padding " << pad << "); crop instead";
      bad(m.str());
    }
  };
  axis("height", o.offset_y, o.kernel_offset_y, kernel_h, stride.h, dilation.h, in_size.h, out_size.h, t.padding.h,
       t.output_padding.h);
  axis("width", o.offset_x, o.kernel_offset_x, kernel_w, stride.w, dilation.w, in_size.w, out_size.w, t.padding.w,
       t.output_padding.w);
  return t;
}

}  // namespace tconv
