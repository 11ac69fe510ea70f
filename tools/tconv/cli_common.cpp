// Helpers shared by the tconv subcommands (see cli_common.hpp).
#include "cli_common.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <unistd.h>

#include "core/dtype.hpp"
#include "io/files.hpp"
#include "io/npy.hpp"
#include "tconv/error.hpp"

namespace tconv::cli {

namespace {

[[noreturn]] void bad(const std::string& m) { throw Error(ErrorCode::invalid_argument, m); }

bool parse_int(std::string_view s, int64_t& out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e && b != e;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

}  // namespace

Hw parse_hw(const std::string& option, const std::string& text) {
  const auto comma = text.find(',');
  int64_t h = 0, w = 0;
  if (comma == std::string::npos) {
    if (!parse_int(text, h)) bad("--" + option + " expects H,W or one integer, got '" + text + "'");
    return Hw{h, h};
  }
  if (!parse_int(std::string_view(text).substr(0, comma), h) ||
      !parse_int(std::string_view(text).substr(comma + 1), w)) {
    bad("--" + option + " expects H,W or one integer, got '" + text + "'");
  }
  return Hw{h, w};
}

std::optional<int> parse_arguments(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    throw Error(ErrorCode::invalid_argument, std::string(e.what()) + " (see --help)");
  }
  return std::nullopt;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> v;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) v.push_back(item);
  return v;
}

nlohmann::json read_suite(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::io_error, "cannot read suite file '" + path + "'");
  nlohmann::json suite;
  try {
    in >> suite;
  } catch (const std::exception& e) {
    throw Error(ErrorCode::format_error, "suite file '" + path + "' is not JSON: " + e.what());
  }
  if (!suite.is_object() || !suite.contains("layers") || !suite["layers"].is_array())
    throw Error(ErrorCode::format_error, "suite file '" + path + "' has no \"layers\" array");
  return suite;
}

ActivationLayout parse_layout(const std::string& text) {
  if (text == "nchw") return ActivationLayout::nchw;
  if (text == "nhwc") return ActivationLayout::nhwc;
  bad("unknown --layout '" + text + "' (nchw, nhwc)");
}

WeightLayout parse_weight_layout(const std::string& text) {
  if (text == "pytorch") return WeightLayout::pytorch;
  if (text == "mps") return WeightLayout::mps;
  bad("unknown --weight-layout '" + text + "' (pytorch, mps)");
}

Precision parse_precision_option(const std::string& text) {
  Precision p{};
  if (!parse_precision(text, p)) bad("unknown --precision '" + text + "' (fp32, tf32, bf16, fp16)");
  return p;
}

GradientOption parse_gradient_option(const std::string& text) {
  if (text == "data") return GradientOption::data;
  if (text == "weights") return GradientOption::weights_and_bias;
  if (text == "all") return GradientOption::all;
  bad("unknown --option '" + text + "' (data, weights, all)");
}

Device make_device(const std::string& text, int threads) {
  if (threads < 0) bad("--threads must be >= 0, got " + std::to_string(threads));
  if (text == "cpu") return Device::cpu(threads);
  if (text.rfind("cuda", 0) == 0) {
    int64_t ordinal = 0;
    if (text.size() > 4 && (text[4] != ':' || !parse_int(std::string_view(text).substr(5), ordinal) || ordinal < 0)) {
      bad("unknown --device '" + text + "' (cpu, cuda, cuda:N)");
    }
    Device d = Device::cuda(static_cast<int>(ordinal));  // device_unavailable in a CPU-only build
    if (threads > 0) d.set_num_threads(threads);
    return d;
  }
  bad("unknown --device '" + text + "' (cpu, cuda, cuda:N)");
}

HostArray HostArray::as_float32() const {
  if (type == DataType::float32) return *this;
  HostArray r;
  r.path = path;
  r.type = DataType::float32;
  r.shape = shape;
  const size_t n = bytes.size() / size_of(type);
  r.bytes.resize(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) {
    const float v = core::load_as_f32(bytes.data(), static_cast<int64_t>(i), type);
    std::memcpy(r.bytes.data() + i * sizeof(float), &v, sizeof(float));
  }
  return r;
}

HostArray load_array(const std::string& role, const std::string& path) {
  io::NpyArray a = io::read_npy(path);  // io_error / format_error name the path and the defect
  HostArray h;
  h.path = path;
  h.shape = a.shape;
  switch (a.type) {
    case io::NpyType::f32: h.type = DataType::float32; break;
    case io::NpyType::f16: h.type = DataType::float16; break;
    case io::NpyType::f64:
      bad("--" + role + " '" + path + "' has dtype float64 ('<f8'); tconv reads float32 or float16 .npy files " +
          "(convert with array.astype(numpy.float32))");
    case io::NpyType::u8:
      bad("--" + role + " '" + path + "' has dtype uint8 ('|u1'); tconv reads float32 or float16 .npy files");
  }
  const size_t want = static_cast<size_t>(a.elements()) * size_of(h.type);
  if (a.data.size() != want) {
    throw Error(ErrorCode::format_error, "--" + role + " '" + path + "' holds " + std::to_string(a.data.size()) +
                                             " data bytes for shape " + shape_str(a.shape) + ", expected " +
                                             std::to_string(want));
  }
  h.bytes = std::move(a.data);
  return h;
}

void PendingOutputs::add(std::string path, DataType type, std::vector<int64_t> shape, const void* data) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<float> f(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) f[static_cast<size_t>(i)] = core::load_as_f32(data, i, type);
  files_.emplace_back(std::move(path), io::serialize_npy(io::NpyType::f32, shape, f.data()));
}

void PendingOutputs::write_all() const {
  // Catch the usual failure (a missing or read-only folder) before the first file is written, so one bad
  // output path does not leave the others behind.
  for (const auto& [path, bytes] : files_) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      throw Error(ErrorCode::io_error, "cannot write '" + path + "': folder '" + dir + "': " + std::strerror(errno));
    }
  }
  // Any later failure (disk full ...) removes the outputs this command already wrote.
  for (size_t i = 0; i < files_.size(); ++i) {
    try {
      io::write_file_atomic(files_[i].first, files_[i].second);
    } catch (...) {
      for (size_t j = 0; j < i; ++j) std::remove(files_[j].first.c_str());
      throw;
    }
  }
}

}  // namespace tconv::cli
