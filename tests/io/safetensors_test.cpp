// safetensors: round trips of every dtype and odd shapes, the exact layout the reference writer produces,
// every rejection the reader promises (each by a hand-built file), truncation at every byte, and
// readability from Python (a json + numpy reader that follows the reference rules) in both directions.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/files.hpp"
#include "io/io_test_util.hpp"
#include "io/safetensors.hpp"

namespace tconv::io {
namespace {

using testing::expect_error;
using testing::TempDir;

Tensor make_tensor(DataType t, std::vector<int64_t> shape, uint8_t seed) {
  Tensor x;
  x.dtype = t;
  x.shape = std::move(shape);
  x.data.resize(static_cast<std::size_t>(x.elements()) * size_of(t));
  for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = static_cast<uint8_t>(seed + 7 * i);
  return x;
}

void expect_same(const SafetensorsFile& a, const SafetensorsFile& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    const auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << name;
    EXPECT_EQ(t.dtype, it->second.dtype) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_EQ(t.data, it->second.data) << name;
  }
}

SafetensorsFile sample() {
  SafetensorsFile f;
  f.metadata = {{"format", "pt"}, {"note", "ünïcode ✓"}, {"empty", ""}};
  f.tensors["w32"] = make_tensor(DataType::float32, {2, 3, 1, 4}, 1);
  f.tensors["h16"] = make_tensor(DataType::float16, {5}, 2);
  f.tensors["b16"] = make_tensor(DataType::bfloat16, {3, 3}, 3);
  f.tensors["u8"] = make_tensor(DataType::uint8, {7}, 4);
  f.tensors["scalar"] = make_tensor(DataType::float32, {}, 5);
  f.tensors["zero"] = make_tensor(DataType::float16, {2, 0, 3}, 6);
  f.tensors["zero1"] = make_tensor(DataType::uint8, {0}, 7);
  f.tensors["odd"] = make_tensor(DataType::uint8, {3}, 8);
  return f;
}

// A file made of a given header text and data section (the header is not padded, as other writers may do).
std::vector<uint8_t> raw_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> out(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string reject(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  return expect_error([&] { (void)parse_safetensors(bytes.data(), bytes.size()); }, ErrorCode::format_error, fragment);
}

TEST(IoSafetensors, RoundTripsEveryDtypeAndOddShapes) {
  const SafetensorsFile f = sample();
  const auto bytes = serialize_safetensors(f);
  expect_same(f, parse_safetensors(bytes.data(), bytes.size()));
  EXPECT_EQ(f.tensors.at("scalar").elements(), 1);
  EXPECT_EQ(f.tensors.at("zero").elements(), 0);
}

TEST(IoSafetensors, EmptyFileIsTwoBracesPaddedToEight) {
  const auto bytes = serialize_safetensors(SafetensorsFile{});
  const std::vector<uint8_t> expected = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  EXPECT_EQ(bytes, expected);
  const auto f = parse_safetensors(bytes.data(), bytes.size());
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_TRUE(f.tensors.empty());
}

TEST(IoSafetensors, LayoutFollowsTheReferenceWriter) {
  const auto bytes = serialize_safetensors(sample());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  EXPECT_EQ(n % 8, 0u) << "data section must start 8-byte aligned";
  const std::string text(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  EXPECT_EQ(text.find_last_not_of(' ') + 1, text.find_last_of('}') + 1) << "only spaces pad the header";
  const auto h = nlohmann::json::parse(text);
  // Descending element size, then name: b16 and h16 (F16/BF16), after all F32, before all U8.
  const std::vector<std::pair<std::string, std::vector<uint64_t>>> expected = {
      {"scalar", {0, 4}}, {"w32", {4, 100}}, {"b16", {100, 118}}, {"h16", {118, 128}},
      {"zero", {128, 128}}, {"odd", {128, 131}}, {"u8", {131, 138}}, {"zero1", {138, 138}}};
  for (const auto& [name, offs] : expected) EXPECT_EQ(h.at(name).at("data_offsets").get<std::vector<uint64_t>>(), offs) << name;
  EXPECT_EQ(h.at("b16").at("dtype"), "BF16");
  EXPECT_EQ(h.at("scalar").at("shape"), nlohmann::json::array());
  EXPECT_EQ(h.at("__metadata__").at("format"), "pt");
  EXPECT_EQ(bytes.size(), 8 + n + 138);
}

TEST(IoSafetensors, TruncatedAtEveryByteIsRejected) {
  SafetensorsFile f;
  f.metadata["k"] = "v";
  f.tensors["a"] = make_tensor(DataType::float32, {2, 2}, 9);
  f.tensors["b"] = make_tensor(DataType::uint8, {3}, 10);
  const auto bytes = serialize_safetensors(f);
  for (std::size_t len = 0; len < bytes.size(); ++len)
    expect_error([&] { (void)parse_safetensors(bytes.data(), len); }, ErrorCode::format_error, "safetensors");
  auto longer = bytes;
  longer.push_back(0);
  reject(longer, "trailing bytes");
}

TEST(IoSafetensors, RejectsMalformedHeaders) {
  const std::vector<uint8_t> four(4, 0);
  reject({1, 2, 3}, "shorter than its 8-byte header length");
  reject(raw_file(""), "does not start with '{'");
  reject(raw_file(" {}"), "does not start with '{'");
  reject(raw_file("[]"), "does not start with '{'");
  reject(raw_file("{"), "not valid JSON");
  reject(raw_file("{} x"), "not valid JSON");
  reject(raw_file("{\"a\":1,}"), "not valid JSON");
  reject(raw_file("{\"a\":\"\xff\"}"), "not valid JSON");
  reject(raw_file("{\"x\":[[[[[[[[[[[[1]]]]]]]]]]]]}"), "nests deeper");
  reject(raw_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", four),
         "appears twice");
  // Header length beyond the file and beyond the limit.
  auto big = raw_file("{}");
  big[0] = 200;
  reject(big, "runs past the end");
  big[0] = 0;
  big[4] = 1;  // 2^32
  reject(big, "exceeds the limit");
}

TEST(IoSafetensors, RejectsBadEntries) {
  const std::vector<uint8_t> four(4, 1);
  auto one = [&](const std::string& entry, const std::string& fragment, const std::vector<uint8_t>& data) {
    return reject(raw_file("{\"t\":" + entry + "}", data), fragment);
  };
  one("3", "is not a JSON object", four);
  one("{\"shape\":[4],\"data_offsets\":[0,4]}", "no \"dtype\"", four);
  one("{\"dtype\":\"U8\",\"data_offsets\":[0,4]}", "no \"shape\"", four);
  one("{\"dtype\":\"U8\",\"shape\":[4]}", "no \"data_offsets\"", four);
  one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4],\"x\":1}", "unexpected field 'x'", four);
  std::string m = one("{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}", "dtype 'F64'", std::vector<uint8_t>(8));
  EXPECT_NE(m.find("tensor 't'"), std::string::npos) << m;
  one("{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}", "dtype 'I32'", four);
  one("{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,4]}", "\"dtype\" is not a string", four);
  one("{\"dtype\":\"U8\",\"shape\":4,\"data_offsets\":[0,4]}", "\"shape\" is not an array", four);
  one("{\"dtype\":\"U8\",\"shape\":[-4],\"data_offsets\":[0,4]}", "not a non-negative 64-bit integer", four);
  one("{\"dtype\":\"U8\",\"shape\":[4.0],\"data_offsets\":[0,4]}", "not a non-negative 64-bit integer", four);
  one("{\"dtype\":\"U8\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}", "not a non-negative", four);
  one("{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}", "more elements than fit", four);
  // Overflow is refused even when a zero dimension makes the count 0, wherever the zero is.
  one("{\"dtype\":\"U8\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}", "more elements than fit", {});
  one("{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}", "larger than 2^63 bytes", four);
  one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0]}", "two non-negative integers", four);
  one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4,4]}", "two non-negative integers", four);
  one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[-1,4]}", "two non-negative integers", four);
  one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,0]}", "end before they begin", four);
  one("{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,8]}", "run past the data section", four);
  one("{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,4]}", "needs 3", four);
  one("{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,4]}", "needs 8", four);
}

TEST(IoSafetensors, RejectsBadRangesAndMetadata) {
  const std::vector<uint8_t> eight(8, 2);
  const std::string a = "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}";
  reject(raw_file("{" + a + ",\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", eight), "overlap");
  reject(raw_file("{" + a + ",\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", eight), "overlap");
  reject(raw_file("{" + a + ",\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[5,8]}}", eight), "belong to no tensor");
  reject(raw_file("{" + a + "}", eight), "trailing bytes");
  reject(raw_file("{\"__metadata__\":[]," + a + "}", std::vector<uint8_t>(4)), "\"__metadata__\" is not a JSON object");
  reject(raw_file("{\"__metadata__\":{\"k\":1}," + a + "}", std::vector<uint8_t>(4)), "metadata entry 'k' is not a string");
  // Accepted: a header padded with spaces, zero-size tensors sharing an offset, tensors in any JSON order.
  const auto ok = raw_file("{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                           "\"y\":{\"dtype\":\"U8\",\"shape\":[0,9],\"data_offsets\":[4,4]}," + a + "}   ",
                           std::vector<uint8_t>(4, 3));
  const auto f = parse_safetensors(ok.data(), ok.size());
  EXPECT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors.at("a").data, std::vector<uint8_t>(4, 3));
}

TEST(IoSafetensors, WriterRefusesInconsistentTensors) {
  SafetensorsFile f;
  f.tensors["t"] = make_tensor(DataType::float32, {2}, 0);
  f.tensors["t"].data.pop_back();
  expect_error([&] { (void)serialize_safetensors(f); }, ErrorCode::invalid_argument, "holds 7 bytes");
  f.tensors["t"] = make_tensor(DataType::float32, {2}, 0);
  f.tensors["t"].shape = {-2};
  expect_error([&] { (void)serialize_safetensors(f); }, ErrorCode::invalid_argument, "negative dimension");
  SafetensorsFile g;
  g.tensors["__metadata__"] = make_tensor(DataType::uint8, {1}, 0);
  expect_error([&] { (void)serialize_safetensors(g); }, ErrorCode::invalid_argument, "reserved");
  SafetensorsFile h;
  h.metadata["bad\xff"] = "x";
  expect_error([&] { (void)serialize_safetensors(h); }, ErrorCode::invalid_argument, "UTF-8");
}

TEST(IoSafetensors, FileRoundTripAndErrorsNameThePath) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  write_safetensors(path, sample());
  expect_same(sample(), read_safetensors(path));
  write_file_atomic(path, std::vector<uint8_t>{1, 2, 3});
  expect_error([&] { (void)read_safetensors(path); }, ErrorCode::format_error, path);
  expect_error([&] { (void)read_safetensors(dir.file("none")); }, ErrorCode::io_error, dir.file("none"));
}

// Python side: a reader written from the safetensors specification with json + numpy (the reference
// package is not installed here), applying the reference's layout rules, and a writer that lays out a
// file as the reference does; the test checks both directions.
const char* kPythonCheck = R"PY(
import json, struct, sys
import numpy as np
path, out = sys.argv[1], sys.argv[2]
raw = open(path, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
assert n % 8 == 0 and raw[8] == ord('{')
hdr = json.loads(raw[8:8 + n].decode('utf-8'))
data = raw[8 + n:]
meta = hdr.pop('__metadata__', {})
kinds = {'F32': '<f4', 'F16': '<f2', 'BF16': '<u2', 'U8': '|u1'}
pos = 0
lines = []
for name, e in sorted(hdr.items(), key=lambda kv: kv[1]['data_offsets']):
    b, t = e['data_offsets']
    assert b == pos, (name, b, pos)
    dt = np.dtype(kinds[e['dtype']])
    assert b % dt.itemsize == 0, 'misaligned ' + name
    a = np.frombuffer(data[b:t], dtype=dt).reshape(e['shape'])
    if e['dtype'] == 'BF16':
        a = (a.astype('<u4') << 16).view('<f4')
    lines.append('%s %s %s %.9g' % (name, e['dtype'], 'x'.join(map(str, e['shape'])), float(np.sum(a, dtype=np.float64))))
    pos = t
assert pos == len(data)
lines.append('meta ' + json.dumps(meta, sort_keys=True))
# Write a file the way the reference writer does: metadata first, F32 before U8, header padded to 8.
w = np.arange(6, dtype='<f4').reshape(2, 3) * 0.5
u = np.array([1, 2, 250], dtype='|u1')
h = {'__metadata__': {'from': 'python'},
     'w': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]},
     'u': {'dtype': 'U8', 'shape': [3], 'data_offsets': [24, 27]}}
s = json.dumps(h, separators=(',', ':')).encode('utf-8')
s += b' ' * ((8 - len(s) % 8) % 8)
open(out, 'wb').write(struct.pack('<Q', len(s)) + s + w.tobytes() + u.tobytes())
print('\n'.join(lines))
)PY";

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  if (rc != 0) out += "\n(exit status " + std::to_string(rc) + ")";
  return out;
}

TEST(IoSafetensors, PythonReadsOurFilesAndWeReadPythons) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 not installed";
  TempDir dir;
  SafetensorsFile f;
  f.metadata = {{"tconv.kind", "weights"}};
  Tensor w;
  w.dtype = DataType::float32;
  w.shape = {2, 2};
  const float wv[] = {1.5f, -2.0f, 0.25f, 3.0f};
  w.data.assign(reinterpret_cast<const uint8_t*>(wv), reinterpret_cast<const uint8_t*>(wv) + sizeof wv);
  f.tensors["weights"] = w;
  Tensor h;  // float16 1.0, 2.0, -0.5
  h.dtype = DataType::float16;
  h.shape = {3};
  h.data = {0x00, 0x3c, 0x00, 0x40, 0x00, 0xb8};
  f.tensors["half"] = h;
  Tensor b;  // bfloat16 1.0, 4.0
  b.dtype = DataType::bfloat16;
  b.shape = {1, 2};
  b.data = {0x80, 0x3f, 0x80, 0x40};
  f.tensors["bf"] = b;
  Tensor u;
  u.dtype = DataType::uint8;
  u.shape = {3};
  u.data = {1, 2, 3};
  f.tensors["odd_u8"] = u;
  Tensor s;
  s.dtype = DataType::float32;
  s.shape = {};
  const float sv = 7.0f;
  s.data.assign(reinterpret_cast<const uint8_t*>(&sv), reinterpret_cast<const uint8_t*>(&sv) + 4);
  f.tensors["scalar"] = s;
  write_safetensors(dir.file("ours.safetensors"), f);
  {
    std::ofstream py(dir.file("check.py"));
    py << kPythonCheck;
  }
  const std::string out = run_command("/usr/bin/python3 " + dir.file("check.py") + " " + dir.file("ours.safetensors") +
                                      " " + dir.file("theirs.safetensors") + " 2>&1");
  const std::string expected =
      "scalar F32  7\n"
      "weights F32 2x2 2.75\n"
      "bf BF16 1x2 5\n"
      "half F16 3 2.5\n"
      "odd_u8 U8 3 6\n"
      "meta {\"tconv.kind\": \"weights\"}\n";
  EXPECT_EQ(out, expected);

  const auto theirs = read_safetensors(dir.file("theirs.safetensors"));
  EXPECT_EQ(theirs.metadata.at("from"), "python");
  const Tensor& tw = theirs.tensors.at("w");
  ASSERT_EQ(tw.shape, (std::vector<int64_t>{2, 3}));
  float got[6];
  std::memcpy(got, tw.data.data(), sizeof got);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(got[i], 0.5f * static_cast<float>(i));
  EXPECT_EQ(theirs.tensors.at("u").data, (std::vector<uint8_t>{1, 2, 250}));
}

}  // namespace
}  // namespace tconv::io
