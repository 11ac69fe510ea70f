// The coder: scalar and tensor round trips (doubles bit-exact), the checksum (known CRC-32 vectors, and
// any change to any byte is caught), format and version checks, typed getters and their messages.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/coder.hpp"
#include "io/files.hpp"
#include "io/io_test_util.hpp"

namespace tconv::io {
namespace {

using testing::expect_error;
using testing::TempDir;

Encoder sample_encoder() {
  Encoder e;
  e.set_string("kernel.class", "ConvolutionTranspose");
  e.set_int("descriptor.kernel_width", 3);
  e.set_int("big", std::numeric_limits<int64_t>::min());
  e.set_double("alpha", 0.1);
  e.set_bool("descriptor.bias", true);
  e.set_bool("flag", false);
  const float w[6] = {1, 2, 3, 4, 5, 6};
  e.set_tensor("weights", DataType::float32, {1, 2, 3}, w, sizeof w);
  const uint16_t b[2] = {0x3f80, 0x4000};
  e.set_tensor("bias", DataType::bfloat16, {2}, b, sizeof b);
  return e;
}

Decoder decode(const std::vector<uint8_t>& bytes) { return Decoder::from_bytes(bytes.data(), bytes.size()); }

// A coder file with its metadata changed after the checksum was computed (or recomputed), via safetensors.
std::vector<uint8_t> edited(const std::vector<uint8_t>& bytes, const std::string& key, const std::string& value) {
  SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size());
  f.metadata[key] = value;
  return serialize_safetensors(f);
}

// The checksum exactly as docs/file-formats.md defines it, written independently of the library's code:
// CRC-32 of u64(count) then (u64 len, key, u64 len, value) per metadata entry except tconv.crc32, in key
// order; u64(count) then per tensor in name order: name, dtype tag (both length-prefixed), u64 rank, u64
// dims, u64 byte count, bytes. All u64 little-endian. Result: 8 lowercase hex digits.
std::string documented_crc(const SafetensorsFile& f) {
  std::vector<uint8_t> s;
  auto u64 = [&](uint64_t v) { for (int i = 0; i < 8; ++i) s.push_back(static_cast<uint8_t>(v >> (8 * i))); };
  auto str = [&](const std::string& x) { u64(x.size()); s.insert(s.end(), x.begin(), x.end()); };
  u64(f.metadata.size() - f.metadata.count("tconv.crc32"));
  for (const auto& [k, v] : f.metadata)
    if (k != "tconv.crc32") { str(k); str(v); }
  u64(f.tensors.size());
  for (const auto& [name, t] : f.tensors) {
    str(name);
    str(t.dtype == DataType::float32 ? "F32" : t.dtype == DataType::float16 ? "F16" : t.dtype == DataType::bfloat16 ? "BF16" : "U8");
    u64(t.shape.size());
    for (int64_t d : t.shape) u64(static_cast<uint64_t>(d));
    u64(t.data.size());
    s.insert(s.end(), t.data.begin(), t.data.end());
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc32(s.data(), s.size()));
  return hex;
}

TEST(IoCoder, Crc32MatchesTheStandardCheckValues) {
  EXPECT_EQ(crc32("123456789", 9), 0xcbf43926u);
  EXPECT_EQ(crc32("", 0), 0u);
  EXPECT_EQ(crc32("The quick brown fox jumps over the lazy dog", 43), 0x414fa339u);
  // Chaining through the seed equals one pass.
  EXPECT_EQ(crc32("6789", 4, crc32("12345", 5)), 0xcbf43926u);
}

TEST(IoCoder, RoundTripsScalarsAndTensors) {
  const Decoder d = decode(sample_encoder().to_bytes());
  EXPECT_EQ(d.version(), 1);
  EXPECT_EQ(d.get_string("kernel.class"), "ConvolutionTranspose");
  EXPECT_EQ(d.get_int("descriptor.kernel_width"), 3);
  EXPECT_EQ(d.get_int("big"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(d.get_double("alpha"), 0.1);
  EXPECT_TRUE(d.get_bool("descriptor.bias"));
  EXPECT_FALSE(d.get_bool("flag"));
  EXPECT_EQ(d.get_int_or("absent", 42), 42);
  EXPECT_EQ(d.get_int_or("descriptor.kernel_width", 42), 3);
  EXPECT_TRUE(d.has("weights"));
  EXPECT_TRUE(d.has("alpha"));
  EXPECT_FALSE(d.has("absent"));
  EXPECT_FALSE(d.has("tconv.crc32"));
  const Tensor& w = d.get_tensor("weights");
  EXPECT_EQ(w.dtype, DataType::float32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{1, 2, 3}));
  float back[6];
  std::memcpy(back, w.data.data(), sizeof back);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back[i], static_cast<float>(i + 1));
  EXPECT_EQ(d.get_tensor("bias").dtype, DataType::bfloat16);
  EXPECT_EQ(d.file().metadata.at("tconv.format"), "tconv-coder");
}

TEST(IoCoder, EmptyEncoderRoundTrips) {
  const Decoder d = decode(Encoder{}.to_bytes());
  EXPECT_EQ(d.file().tensors.size(), 0u);
  EXPECT_EQ(d.file().metadata.size(), 3u);  // format, version, checksum
}

TEST(IoCoder, DoublesRoundTripBitExactly) {
  std::vector<double> values = {0.0,
                                -0.0,
                                1.0,
                                0.1,
                                -1.0 / 3.0,
                                1e308,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::lowest(),
                                std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::denorm_min(),
                                -std::numeric_limits<double>::denorm_min() * 12345,
                                std::numeric_limits<double>::epsilon(),
                                std::numeric_limits<double>::infinity(),
                                -std::numeric_limits<double>::infinity()};
  std::mt19937_64 rng(12345);
  while (values.size() < 2000) {
    const double v = std::bit_cast<double>(rng());
    if (!std::isnan(v)) values.push_back(v);
  }
  Encoder e;
  for (std::size_t i = 0; i < values.size(); ++i) e.set_double("v" + std::to_string(i), values[i]);
  e.set_double("nan", std::numeric_limits<double>::quiet_NaN());
  e.set_double("neg_nan", -std::numeric_limits<double>::quiet_NaN());
  const Decoder d = decode(e.to_bytes());
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(std::bit_cast<uint64_t>(d.get_double("v" + std::to_string(i))), std::bit_cast<uint64_t>(values[i]))
        << "value " << values[i];
  EXPECT_TRUE(std::isnan(d.get_double("nan")));
  EXPECT_TRUE(std::isnan(d.get_double("neg_nan")));
  EXPECT_TRUE(std::signbit(d.get_double("neg_nan")));
}

TEST(IoCoder, AnyChangedByteIsRefused) {
  // Every single-bit change anywhere in the file is refused: either the file no longer parses, or its
  // checksum no longer matches, or (inside the header) an entry is no longer what the reader expects.
  const auto bytes = sample_encoder().to_bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto bad = bytes;
    bad[i] ^= 0x01;
    bool refused = false;
    try {
      (void)decode(bad);
    } catch (const Error& e) {
      refused = e.code() == ErrorCode::format_error;
    }
    if (!refused) {
      ADD_FAILURE() << "a flipped bit at byte " << i << " of " << bytes.size() << " was accepted";
    }
  }
}

TEST(IoCoder, ChecksumMismatchIsNamed) {
  const auto bytes = sample_encoder().to_bytes();
  // Change a tensor byte (the last byte of the file is data).
  auto bad = bytes;
  bad.back() ^= 0x80;
  expect_error([&] { (void)decode(bad); }, ErrorCode::format_error, "checksum mismatch");
  // Change a scalar but keep the old checksum.
  expect_error([&] { (void)decode(edited(bytes, "descriptor.kernel_width", "4")); }, ErrorCode::format_error,
               "checksum mismatch");
  // Add an entry.
  expect_error([&] { (void)decode(edited(bytes, "extra", "x")); }, ErrorCode::format_error, "checksum mismatch");
  expect_error([&] { (void)decode(edited(bytes, "tconv.crc32", "xyz")); }, ErrorCode::format_error,
               "not 8 hexadecimal digits");
  expect_error([&] { (void)decode(edited(bytes, "tconv.crc32", "+1234567")); }, ErrorCode::format_error,
               "not 8 hexadecimal digits");
}

TEST(IoCoder, TruncatedAtEveryByteIsRefused) {
  Encoder e;
  e.set_int("k", 1);
  const uint8_t t[3] = {1, 2, 3};
  e.set_tensor("t", DataType::uint8, {3}, t, 3);
  const auto bytes = e.to_bytes();
  for (std::size_t len = 0; len < bytes.size(); ++len)
    expect_error([&] { (void)Decoder::from_bytes(bytes.data(), len); }, ErrorCode::format_error, "");
}

TEST(IoCoder, FormatAndVersionAreChecked) {
  SafetensorsFile plain;
  plain.metadata["format"] = "pt";
  auto bytes = serialize_safetensors(plain);
  expect_error([&] { (void)decode(bytes); }, ErrorCode::format_error, "not a tconv coder file");
  const auto good = Encoder{}.to_bytes();
  expect_error([&] { (void)decode(edited(good, "tconv.format", "other")); }, ErrorCode::format_error,
               "not a tconv coder file");
  // Versions are judged before the checksum (a newer version may define it differently).
  std::string m = expect_error([&] { (void)decode(edited(good, "tconv.version", "2")); }, ErrorCode::format_error,
                               "written by a newer tconv");
  EXPECT_NE(m.find("version 2"), std::string::npos) << m;
  expect_error([&] { (void)decode(edited(good, "tconv.version", "17.3")); }, ErrorCode::format_error, "newer tconv");
  for (const char* v : {"", "0", "-1", "x", "1.", ".1", "1.-2", "1x", "+1"})
    expect_error([&] { (void)decode(edited(good, "tconv.version", v)); }, ErrorCode::format_error, "not a version number");
  // A newer minor version of the same major reads, once its checksum is what its writer would store.
  SafetensorsFile f = parse_safetensors(good.data(), good.size());
  f.metadata["tconv.version"] = "1.4";
  f.metadata["tconv.crc32"] = documented_crc(f);
  EXPECT_EQ(decode(serialize_safetensors(f)).version(), 1);
  f.metadata.erase("tconv.crc32");
  expect_error([&] { (void)decode(serialize_safetensors(f)); }, ErrorCode::format_error, "no \"tconv.crc32\"");
  f.metadata.erase("tconv.version");
  expect_error([&] { (void)decode(serialize_safetensors(f)); }, ErrorCode::format_error, "no \"tconv.version\"");
}

TEST(IoCoder, ChecksumIsTheDocumentedOne) {
  const auto bytes = sample_encoder().to_bytes();
  const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size());
  EXPECT_EQ(f.metadata.at("tconv.crc32"), documented_crc(f));
}

TEST(IoCoder, TypedGettersNameTheKey) {
  const Decoder d = decode(sample_encoder().to_bytes());
  expect_error([&] { (void)d.get_int("absent"); }, ErrorCode::format_error, "coder key 'absent' is missing");
  expect_error([&] { (void)d.get_int("kernel.class"); }, ErrorCode::format_error, "'kernel.class' holds 'ConvolutionTranspose', not a 64-bit integer");
  expect_error([&] { (void)d.get_int("alpha"); }, ErrorCode::format_error, "'alpha'");
  expect_error([&] { (void)d.get_double("kernel.class"); }, ErrorCode::format_error, "not a number");
  expect_error([&] { (void)d.get_bool("descriptor.kernel_width"); }, ErrorCode::format_error, "not 'true' or 'false'");
  expect_error([&] { (void)d.get_int("weights"); }, ErrorCode::format_error, "'weights' is a tensor");
  expect_error([&] { (void)d.get_string("weights"); }, ErrorCode::format_error, "'weights' is a tensor");
  expect_error([&] { (void)d.get_tensor("alpha"); }, ErrorCode::format_error, "'alpha' is a scalar");
  expect_error([&] { (void)d.get_tensor("nothing"); }, ErrorCode::format_error, "'nothing' is missing");
  expect_error([&] { (void)d.get_string("tconv.crc32"); }, ErrorCode::format_error, "is missing");
  expect_error([&] { (void)d.get_int_or("kernel.class", 1); }, ErrorCode::format_error, "kernel.class");
  // Integers are read as doubles (a hand-edited file); doubles are not read as integers.
  EXPECT_EQ(d.get_double("descriptor.kernel_width"), 3.0);
}

TEST(IoCoder, EncoderRefusesReservedAndCollidingKeys) {
  Encoder e;
  expect_error([&] { e.set_int("tconv.version", 2); }, ErrorCode::invalid_argument, "reserved");
  expect_error([&] { e.set_string("tconv.crc32", "0"); }, ErrorCode::invalid_argument, "reserved");
  expect_error([&] { e.set_int("", 2); }, ErrorCode::invalid_argument, "empty");
  const float x = 1;
  expect_error([&] { e.set_tensor("__metadata__", DataType::float32, {1}, &x, 4); }, ErrorCode::invalid_argument, "reserved");
  e.set_tensor("w", DataType::float32, {1}, &x, 4);
  expect_error([&] { e.set_int("w", 1); }, ErrorCode::invalid_argument, "already a tensor");
  e.set_int("n", 1);
  expect_error([&] { e.set_tensor("n", DataType::float32, {1}, &x, 4); }, ErrorCode::invalid_argument, "already a scalar");
  expect_error([&] { e.set_tensor("v", DataType::float32, {2}, &x, 4); }, ErrorCode::invalid_argument, "needs 8");
  expect_error([&] { e.set_tensor("v", DataType::float32, {-1}, &x, 4); }, ErrorCode::invalid_argument, "negative");
  e.set_tensor("empty", DataType::float16, {0, 5}, nullptr, 0);
  const Decoder d = decode(e.to_bytes());
  EXPECT_EQ(d.get_tensor("empty").shape, (std::vector<int64_t>{0, 5}));
}

TEST(IoCoder, FileRoundTripAndErrorsNameThePath) {
  TempDir dir;
  const std::string path = dir.file("kernel.tconv");
  sample_encoder().write_file(path);
  const Decoder d = Decoder::from_file(path);
  EXPECT_EQ(d.get_int("descriptor.kernel_width"), 3);
  EXPECT_EQ(read_file(path), sample_encoder().to_bytes());
  expect_error([&] { (void)Decoder::from_file(dir.file("missing")); }, ErrorCode::io_error, dir.file("missing"));
  auto bytes = read_file(path);
  bytes.back() ^= 1;
  write_file_atomic(path, bytes);
  const std::string m = expect_error([&] { (void)Decoder::from_file(path); }, ErrorCode::format_error, "checksum mismatch");
  EXPECT_NE(m.find(path), std::string::npos) << m;
}

TEST(IoCoder, FileWrittenByPythonDecodes) {
  // fuzz/corpus/fuzz_coder/kernel: written by fuzz/make_corpus.py from docs/file-formats.md, with zlib.crc32.
  const Decoder d = Decoder::from_file(std::string(TCONV_SOURCE_DIR) + "/fuzz/corpus/fuzz_coder/kernel");
  EXPECT_EQ(d.get_string("kernel.class"), "ConvolutionTranspose");
  EXPECT_EQ(d.get_int("descriptor.kernel_width"), 3);
  EXPECT_EQ(d.get_double("neuron.a"), 0.1);
  EXPECT_TRUE(d.get_bool("descriptor.bias"));
  EXPECT_EQ(d.get_tensor("weights").shape, (std::vector<int64_t>{2, 3, 3, 1}));
  expect_error([] { (void)Decoder::from_file(std::string(TCONV_SOURCE_DIR) + "/fuzz/corpus/fuzz_coder/bad_version"); },
               ErrorCode::format_error, "written by a newer tconv");
}

}  // namespace
}  // namespace tconv::io
