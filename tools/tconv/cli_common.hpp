// Helpers shared by the tconv subcommands: parsing the command line and geometry values, choosing a
// device, reading .npy arrays and suite files with errors that name the file and the offending
// dtype/shape, and writing several outputs only once every one of them has been computed (so a failing
// command leaves no output file behind).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tconv/device.hpp"
#include "tconv/functional.hpp"
#include "tconv/types.hpp"

namespace CLI {
class App;
}

namespace tconv::cli {

// Parses a subcommand's arguments. Returns the exit status when --help ended the command (the help is
// printed), nullopt to go on; a malformed command line throws Error(invalid_argument) like every other
// error (the same "error: <code>: <message>" line, exit status 1).
std::optional<int> parse_arguments(CLI::App& app, int argc, char** argv);

// A comma-separated list option ("a,b,,c": a, b, c; empty items are dropped).
std::vector<std::string> split_list(const std::string& text);

// A benchmark suite file (../shared/bench/suite.json format): a JSON object with a "layers" array. Errors
// name the file: Error(io_error) when it cannot be read, Error(format_error) when it is not such JSON.
nlohmann::json read_suite(const std::string& path);

// "H,W" or one number N (meaning N,N). Throws Error(invalid_argument) naming the option and the text.
Hw parse_hw(const std::string& option, const std::string& text);

// Parsers for the enumerated options; each throws Error(invalid_argument) listing the accepted values.
ActivationLayout parse_layout(const std::string& text);
WeightLayout parse_weight_layout(const std::string& text);
Precision parse_precision_option(const std::string& text);
GradientOption parse_gradient_option(const std::string& text);

// --device cpu|cuda[:N] with --threads (0: default). CUDA in a CPU-only build: Error(device_unavailable).
Device make_device(const std::string& text, int threads);

// A .npy array as the functional API takes it: float32 files as float32, float16 files as float16.
// Any other dtype gives Error(invalid_argument) naming the file and the dtype.
struct HostArray {
  std::string path;
  DataType type = DataType::float32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  ConstArrayRef ref() const { return ConstArrayRef{bytes.data(), type, shape}; }
  // The same values as float32 (float16 converts exactly).
  HostArray as_float32() const;
};
HostArray load_array(const std::string& role, const std::string& path);

// Outputs gathered in memory and written together at the end (each file atomically), after every
// computation has succeeded. Arrays are written as float32 .npy whatever their element type.
// write_all checks every destination folder first; if a write still fails, the files this call already
// wrote are removed, so a failing command leaves no output file.
class PendingOutputs {
 public:
  void add(std::string path, DataType type, std::vector<int64_t> shape, const void* data);
  void write_all() const;

 private:
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files_;
};

}  // namespace tconv::cli
