// .npy: round trips, the exact bytes numpy writes, Fortran order, versions 1.0/2.0/3.0 from numpy itself,
// conversions to float32, and every rejection (truncation at every byte, bad magic/version, dtypes,
// malformed header dicts, wrong data length, overflowing shapes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/files.hpp"
#include "io/io_test_util.hpp"
#include "io/npy.hpp"

namespace tconv::io {
namespace {

using testing::expect_error;
using testing::TempDir;

std::vector<uint8_t> npy_file(const std::string& header, std::size_t data_bytes, int major = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  const std::size_t n = header.size();
  out.push_back(static_cast<uint8_t>(n));
  out.push_back(static_cast<uint8_t>(n >> 8));
  if (major >= 2) {
    out.push_back(static_cast<uint8_t>(n >> 16));
    out.push_back(static_cast<uint8_t>(n >> 24));
  }
  out.insert(out.end(), header.begin(), header.end());
  for (std::size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<uint8_t>(i));
  return out;
}

std::string reject(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  return expect_error([&] { (void)parse_npy(bytes.data(), bytes.size()); }, ErrorCode::format_error, fragment);
}

std::string hdr(const std::string& descr, const std::string& order, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }\n";
}

TEST(IoNpy, RoundTripsEveryTypeAndShape) {
  const std::vector<std::vector<int64_t>> shapes = {{}, {0}, {1}, {5}, {2, 3}, {2, 0, 3}, {1, 2, 3, 4}};
  for (NpyType t : {NpyType::f32, NpyType::f16, NpyType::f64, NpyType::u8}) {
    for (const auto& shape : shapes) {
      int64_t n = 1;
      for (auto d : shape) n *= d;
      const std::size_t es = t == NpyType::f64 ? 8 : t == NpyType::f32 ? 4 : t == NpyType::f16 ? 2 : 1;
      std::vector<uint8_t> data(static_cast<std::size_t>(n) * es);
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13 + 1);
      const auto bytes = serialize_npy(t, shape, data.data());
      // numpy's alignment: the data starts at a multiple of 64 and the header ends with '\n'.
      const std::size_t hl = bytes[8] | (bytes[9] << 8);
      EXPECT_EQ((10 + hl) % 64, 0u);
      EXPECT_EQ(bytes[10 + hl - 1], '\n');
      const NpyArray a = parse_npy(bytes.data(), bytes.size());
      EXPECT_EQ(a.type, t);
      EXPECT_EQ(a.shape, shape);
      EXPECT_EQ(a.elements(), n);
      EXPECT_EQ(a.data, data);
    }
  }
}

TEST(IoNpy, HeaderIsWhatNumpyWrites) {
  const float v[6] = {0, 1, 2, 3, 4, 5};
  const auto bytes = serialize_npy(NpyType::f32, {2, 3}, v);
  const std::string text(bytes.begin() + 10, bytes.begin() + 10 + (bytes[8] | (bytes[9] << 8)));
  EXPECT_EQ(text.substr(0, 59), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  EXPECT_EQ(bytes.size(), 128u + 24u);
  const auto one = serialize_npy(NpyType::u8, {5}, "abcde");
  EXPECT_NE(std::string(one.begin(), one.end()).find("'descr': '|u1', 'fortran_order': False, 'shape': (5,), }"),
            std::string::npos);
  const auto scalar = serialize_npy(NpyType::f16, {}, "\x00\x3c");
  EXPECT_NE(std::string(scalar.begin(), scalar.end()).find("'shape': (), }"), std::string::npos);
}

TEST(IoNpy, FortranOrderBecomesCOrder) {
  // C array [[0,1,2],[3,4,5]] stored column by column.
  auto bytes = npy_file(hdr("|u1", "True", "(2, 3)"), 0);
  for (uint8_t x : {0, 3, 1, 4, 2, 5}) bytes.push_back(x);
  NpyArray a = parse_npy(bytes.data(), bytes.size());
  EXPECT_EQ(a.data, (std::vector<uint8_t>{0, 1, 2, 3, 4, 5}));
  // 2x3x2 of float32: Fortran element (i,j,k) is at i + 2j + 6k; its value is the C index 6i + 2j + k.
  std::vector<float> f(12);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) f[i + 2 * j + 6 * k] = static_cast<float>(6 * i + 2 * j + k);
  bytes = npy_file(hdr("<f4", "True", "(2, 3, 2)"), 0);
  const auto* p = reinterpret_cast<const uint8_t*>(f.data());
  bytes.insert(bytes.end(), p, p + 48);
  a = parse_npy(bytes.data(), bytes.size());
  const auto c = a.to_f32();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(c[i], static_cast<float>(i));
  // Zero-size and one-dimensional Fortran arrays.
  bytes = npy_file(hdr("<f4", "True", "(0, 3)"), 0);
  EXPECT_EQ(parse_npy(bytes.data(), bytes.size()).data.size(), 0u);
  bytes = npy_file(hdr("<f2", "True", "(2,)"), 4);
  EXPECT_EQ(parse_npy(bytes.data(), bytes.size()).data, (std::vector<uint8_t>{0, 1, 2, 3}));
}

TEST(IoNpy, ConvertsToFloat32) {
  const uint16_t h[4] = {0x3c00, 0xc000, 0x0001, 0x7c00};  // 1, -2, smallest subnormal, inf
  NpyArray a;
  a.type = NpyType::f16;
  a.shape = {4};
  a.data.assign(reinterpret_cast<const uint8_t*>(h), reinterpret_cast<const uint8_t*>(h) + 8);
  auto f = a.to_f32();
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], -2.0f);
  EXPECT_EQ(f[2], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(f[3]));
  const double d[3] = {0.1, 1e300, -3.0};
  a.type = NpyType::f64;
  a.shape = {3};
  a.data.assign(reinterpret_cast<const uint8_t*>(d), reinterpret_cast<const uint8_t*>(d) + 24);
  f = a.to_f32();
  EXPECT_EQ(f[0], 0.1f);
  EXPECT_TRUE(std::isinf(f[1]));
  EXPECT_EQ(f[2], -3.0f);
  a.type = NpyType::u8;
  a.shape = {2};
  a.data = {0, 255};
  f = a.to_f32();
  EXPECT_EQ(f[1], 255.0f);
}

TEST(IoNpy, AcceptsHeaderVariants) {
  for (const std::string& h : {std::string("{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,)}"),
                               std::string("{'shape': (2L,), 'fortran_order': False, 'descr': '<f4'}   \n"),
                               std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (2,),}\n")}) {
    for (int major : {1, 2, 3}) {
      const auto bytes = npy_file(h, 8, major);
      const NpyArray a = parse_npy(bytes.data(), bytes.size());
      EXPECT_EQ(a.shape, (std::vector<int64_t>{2})) << h;
      EXPECT_EQ(a.type, NpyType::f32);
    }
  }
  for (const char* d : {"|u1", "<u1", ">u1"}) {
    const auto bytes = npy_file(hdr(d, "False", "(3,)"), 3);
    EXPECT_EQ(parse_npy(bytes.data(), bytes.size()).type, NpyType::u8) << d;
  }
}

TEST(IoNpy, TruncatedAtEveryByteIsRejected) {
  const float v[3] = {1, 2, 3};
  const auto bytes = serialize_npy(NpyType::f32, {3}, v);
  for (std::size_t len = 0; len < bytes.size(); ++len)
    expect_error([&] { (void)parse_npy(bytes.data(), len); }, ErrorCode::format_error, "npy");
  auto longer = bytes;
  longer.push_back(0);
  reject(longer, "needs 12 data bytes but the file has 13");
}

TEST(IoNpy, RejectsMalformedFiles) {
  reject({}, "magic");
  reject({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0}, "magic");
  auto v = npy_file(hdr("<f4", "False", "(1,)"), 4);
  v[6] = 4;
  reject(v, "version 4.0 is not supported");
  v[6] = 1;
  v[7] = 1;
  reject(v, "version 1.1");
  v[7] = 0;
  v[8] = 0xff;
  reject(v, "runs past the end");
  std::string m = reject(npy_file(hdr(">f4", "False", "(1,)"), 4), "big-endian");
  EXPECT_NE(m.find("'>f4'"), std::string::npos) << m;
  reject(npy_file(hdr("<i4", "False", "(1,)"), 4), "dtype '<i4' is not supported");
  reject(npy_file(hdr("=f4", "False", "(1,)"), 4), "dtype '=f4'");
  reject(npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4), "structured");
  reject(npy_file("{'descr': '<f4', 'shape': (1,), }", 4), "no 'fortran_order'");
  reject(npy_file("{'fortran_order': False, 'shape': (1,), }", 4), "no 'descr'");
  reject(npy_file("{'descr': '<f4', 'fortran_order': False}", 4), "no 'shape'");
  reject(npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4), "appears twice");
  reject(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4), "unexpected key 'x'");
  reject(npy_file(hdr("<f4", "false", "(1,)"), 4), "True or False");
  reject(npy_file(hdr("<f4", "False", "(1)"), 4), "'(n,)'");
  reject(npy_file(hdr("<f4", "False", "(-1,)"), 4), "non-negative integer");
  reject(npy_file(hdr("<f4", "False", "[1]"), 4), "expected '('");
  reject(npy_file(hdr("<f4", "False", "(1,,)"), 4), "non-negative integer");
  reject(npy_file(hdr("<f4", "False", "(99999999999999999999,)"), 4), "does not fit in 64 bits");
  reject(npy_file(hdr("<f4", "False", "(4294967296, 4294967296)"), 4), "larger than 2^63 bytes");
  reject(npy_file(hdr("<f4", "False", "(0, 4294967296, 4294967296)"), 0), "larger than 2^63 bytes");
  reject(npy_file(hdr("<f4", "False", "(2,)"), 4), "needs 8 data bytes but the file has 4 (truncated?)");
  reject(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 4), "unexpected text after");
  reject(npy_file("{'descr': '<f4", 4), "unterminated string");
  reject(npy_file("{'descr': '<f4' 'fortran_order'", 4), "expected ',' or '}'");
  reject(npy_file("{'descr' '<f4'}", 4), "expected ':'");
  reject(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4), "expected ',' or '}'");
  reject(npy_file("", 0), "expected '{'");
  reject(npy_file("{'de\\'scr': 1}", 0), "escape sequences");
  std::string deep = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 70; ++i) deep += "1, ";
  reject(npy_file(deep + ")}", 4), "more than 64 dimensions");
}

TEST(IoNpy, WriterRefusesBadArguments) {
  expect_error([&] { (void)serialize_npy(NpyType::f32, {-1}, nullptr); }, ErrorCode::invalid_argument, "negative");
  expect_error([&] { (void)serialize_npy(NpyType::f32, {2}, nullptr); }, ErrorCode::invalid_argument, "null data");
  expect_error([&] { (void)serialize_npy(NpyType::f32, std::vector<int64_t>(65, 1), "abcd"); },
               ErrorCode::invalid_argument, "at most 64");
  EXPECT_EQ(serialize_npy(NpyType::f32, {0, 7}, nullptr).size(), 128u);
}

TEST(IoNpy, FilesAndPathsInErrors) {
  TempDir dir;
  const float v[4] = {1, 2, 3, 4};
  write_npy_f32(dir.file("a.npy"), {2, 2}, v);
  const NpyArray a = read_npy(dir.file("a.npy"));
  EXPECT_EQ(a.to_f32(), (std::vector<float>{1, 2, 3, 4}));
  write_file_atomic(dir.file("b.npy"), std::vector<uint8_t>{1, 2});
  expect_error([&] { (void)read_npy(dir.file("b.npy")); }, ErrorCode::format_error, dir.file("b.npy"));
  expect_error([&] { (void)read_npy(dir.file("c.npy")); }, ErrorCode::io_error, dir.file("c.npy"));
}

// numpy itself: arrays it saves (C and Fortran order, versions 1.0/2.0/3.0, every dtype) read back with the
// values numpy computed; arrays we save load in numpy and are byte-identical to np.save's output.
const char* kNumpyScript = R"PY(
import sys, numpy as np
from numpy.lib import format as F
d = sys.argv[1]
a = (np.arange(24, dtype='<f4') * 0.5 - 3).reshape(2, 3, 4)
np.save(d + '/c_f4.npy', a)
np.save(d + '/f_f4.npy', np.asfortranarray(a))
np.save(d + '/f_f8.npy', np.asfortranarray(a.astype('<f8') / 3))
np.save(d + '/f2.npy', np.array([1, 0.5, -2, 65504], dtype='<f2'))
np.save(d + '/u1.npy', np.arange(250, 256, dtype='u1').reshape(2, 3))
np.save(d + '/scalar.npy', np.array(7.25, dtype='<f4'))
np.save(d + '/empty.npy', np.zeros((0, 3), dtype='<f4'))
np.save(d + '/be.npy', a.astype('>f4'))
np.save(d + '/i4.npy', np.arange(3, dtype='<i4'))
for v in (2, 3):
    with open(d + '/v%d.npy' % v, 'wb') as f:
        F.write_array(f, a, version=(v, 0))
ours = np.load(d + '/ours.npy')
assert ours.dtype == np.dtype('<f4') and ours.shape == (2, 3, 4), (ours.dtype, ours.shape)
assert (ours == a).all()
np.save(d + '/theirs_same.npy', a)
assert open(d + '/ours.npy', 'rb').read() == open(d + '/theirs_same.npy', 'rb').read(), 'bytes differ from np.save'
print('ok')
)PY";

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) out += "(failed)";
  return out;
}

TEST(IoNpy, InteroperatesWithNumpy) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "/usr/bin/python3 not installed";
  TempDir dir;
  std::vector<float> a(24);
  for (int i = 0; i < 24; ++i) a[i] = static_cast<float>(i) * 0.5f - 3.0f;
  write_npy_f32(dir.file("ours.npy"), {2, 3, 4}, a.data());
  {
    std::ofstream py(dir.file("np.py"));
    py << kNumpyScript;
  }
  ASSERT_EQ(run_command("/usr/bin/python3 " + dir.file("np.py") + " " + dir.path() + " 2>&1"), "ok\n");

  for (const char* name : {"c_f4.npy", "f_f4.npy", "v2.npy", "v3.npy"}) {
    const NpyArray x = read_npy(dir.file(name));
    EXPECT_EQ(x.type, NpyType::f32) << name;
    EXPECT_EQ(x.shape, (std::vector<int64_t>{2, 3, 4})) << name;
    EXPECT_EQ(x.to_f32(), a) << name;
  }
  const NpyArray f8 = read_npy(dir.file("f_f8.npy"));
  EXPECT_EQ(f8.type, NpyType::f64);
  std::vector<double> d(24);
  std::memcpy(d.data(), f8.data.data(), 192);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(d[i], static_cast<double>(a[i]) / 3) << i;
  EXPECT_EQ(read_npy(dir.file("f2.npy")).to_f32(), (std::vector<float>{1, 0.5f, -2, 65504}));
  const NpyArray u1 = read_npy(dir.file("u1.npy"));
  EXPECT_EQ(u1.data, (std::vector<uint8_t>{250, 251, 252, 253, 254, 255}));
  EXPECT_EQ(u1.shape, (std::vector<int64_t>{2, 3}));
  const NpyArray s = read_npy(dir.file("scalar.npy"));
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.to_f32(), std::vector<float>{7.25f});
  EXPECT_EQ(read_npy(dir.file("empty.npy")).shape, (std::vector<int64_t>{0, 3}));
  expect_error([&] { (void)read_npy(dir.file("be.npy")); }, ErrorCode::format_error, "big-endian");
  expect_error([&] { (void)read_npy(dir.file("i4.npy")); }, ErrorCode::format_error, "'<i4'");
}

}  // namespace
}  // namespace tconv::io
