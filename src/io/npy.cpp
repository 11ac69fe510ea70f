// NumPy .npy reading and writing (see npy.hpp; format: numpy/lib/format.py, "NEP 1").
//
// File: "\x93NUMPY" | major | minor | header length (u16 LE for 1.0, u32 LE for 2.0 and 3.0) | header | data.
// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n'. We parse that literal with a small tokenizer of our own rather than
// a general Python-literal evaluator: only the three keys, string / boolean / tuple-of-integers values, each
// key exactly once. Everything comes from an untrusted file, so every length is checked against what is
// left before it is used, element counts are checked for overflow, and the data length must match exactly.
// Writing produces version 1.0, C order, at most 64 dimensions (numpy's own limit), with the header padded so
// the data starts at a multiple of 64 bytes, as numpy itself writes it.
#include "io/npy.hpp"

#include <cstring>
#include <limits>
#include <string_view>

#include "core/dtype.hpp"
#include "io/files.hpp"
#include "tconv/error.hpp"

namespace tconv::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes

[[noreturn]] void bad(const std::string& source, const std::string& message) {
  throw Error(ErrorCode::format_error, "npy " + source + ": " + message);
}

std::size_t item_size(NpyType t) {
  switch (t) {
    case NpyType::f32: return 4;
    case NpyType::f16: return 2;
    case NpyType::f64: return 8;
    case NpyType::u8: return 1;
  }
  return 0;
}

const char* descr_of(NpyType t) {
  switch (t) {
    case NpyType::f32: return "<f4";
    case NpyType::f16: return "<f2";
    case NpyType::f64: return "<f8";
    case NpyType::u8: return "|u1";
  }
  return "?";
}

// Text from the file for a message: at most 40 characters, non-printable bytes escaped.
std::string shown(std::string_view s) {
  std::string r = "'";
  for (std::size_t i = 0; i < s.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      static const char hex[] = "0123456789abcdef";
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    } else {
      r += static_cast<char>(c);
    }
  }
  if (s.size() > 40) r += "...";
  return r + "'";
}

// Tokenizer and parser for the header dict. Positions index into `text`; the parser never reads past end.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source) : t_(text), src_(source) {}

  void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') {
        ++p_;
        break;
      }
      const std::string key = string_literal("a key");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (have_descr) fail("key 'descr' appears twice");
        if (peek() == '[') fail("structured (record) arrays are not supported; save a plain numeric array");
        descr = string_literal("the 'descr' value");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) fail("key 'fortran_order' appears twice");
        fortran = boolean();
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) fail("key 'shape' appears twice");
        shape = tuple();
        have_shape = true;
      } else {
        fail("unexpected key " + shown(key) + " (expected 'descr', 'fortran_order', 'shape')");
      }
      skip_space();
      if (peek() == ',') {
        ++p_;
        continue;
      }
      if (peek() == '}') {
        ++p_;
        break;
      }
      fail("expected ',' or '}' at header byte " + std::to_string(p_));
    }
    skip_space();
    if (p_ != t_.size()) fail("unexpected text after the header dict: " + shown(t_.substr(p_)));
    if (!have_descr) fail("header has no 'descr'");
    if (!have_order) fail("header has no 'fortran_order'");
    if (!have_shape) fail("header has no 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& m) const { bad(src_, m); }
  char peek() const { return p_ < t_.size() ? t_[p_] : '\0'; }
  bool at_end() const { return p_ >= t_.size(); }
  void skip_space() {
    while (!at_end() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) ++p_;
  }
  void expect(char c) {
    if (at_end() || t_[p_] != c)
      fail(std::string("expected '") + c + "' at header byte " + std::to_string(p_) +
           (at_end() ? std::string(" (header ended)") : ", found " + shown(t_.substr(p_, 1))));
    ++p_;
  }
  // 'text' or "text" without escapes (numpy never writes backslashes in these values).
  std::string string_literal(const char* what) {
    const char q = peek();
    if (q != '\'' && q != '"') fail(std::string("expected a quoted string for ") + what + " at header byte " + std::to_string(p_));
    const std::size_t start = ++p_;
    while (!at_end() && t_[p_] != q) {
      if (t_[p_] == '\\') fail(std::string("escape sequences are not supported in ") + what);
      ++p_;
    }
    if (at_end()) fail(std::string("unterminated string for ") + what);
    const std::string s(t_.substr(start, p_ - start));
    ++p_;
    return s;
  }
  bool boolean() {
    if (t_.substr(p_, 4) == "True") {
      p_ += 4;
      return true;
    }
    if (t_.substr(p_, 5) == "False") {
      p_ += 5;
      return false;
    }
    fail("'fortran_order' must be True or False, found " + shown(t_.substr(p_, 8)));
  }
  // ( ) | ( int , ) | ( int , int [, int]* [,] ); Python 2 files may write 3L.
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    skip_space();
    if (peek() == ')') {
      ++p_;
      return dims;
    }
    for (;;) {
      skip_space();
      dims.push_back(integer());
      if (dims.size() > 64) fail("shape has more than 64 dimensions");
      skip_space();
      if (peek() == ')') {
        if (dims.size() == 1) fail("a one-element shape must be written '(n,)'");
        ++p_;
        return dims;
      }
      expect(',');
      skip_space();
      if (peek() == ')') {
        ++p_;
        return dims;
      }
    }
  }
  int64_t integer() {
    const std::size_t start = p_;
    int64_t v = 0;
    while (!at_end() && t_[p_] >= '0' && t_[p_] <= '9') {
      const int d = t_[p_] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("a shape dimension does not fit in 64 bits");
      v = v * 10 + d;
      ++p_;
    }
    if (p_ == start) fail("expected a non-negative integer in 'shape' at header byte " + std::to_string(start) +
                          (at_end() ? std::string() : ", found " + shown(t_.substr(p_, 8))));
    if (peek() == 'L' || peek() == 'l') ++p_;
    return v;
  }

  std::string_view t_;
  const std::string& src_;
  std::size_t p_ = 0;
};

bool type_from_descr(const std::string& d, NpyType& out) {
  if (d == "<f4") out = NpyType::f32;
  else if (d == "<f2") out = NpyType::f16;
  else if (d == "<f8") out = NpyType::f64;
  else if (d == "|u1" || d == "<u1" || d == ">u1") out = NpyType::u8;  // byte order is moot for one byte
  else return false;
  return true;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Fortran order -> C order. Walks the C-order index like an odometer and keeps the Fortran offset in step.
std::vector<uint8_t> fortran_to_c(const uint8_t* src, const std::vector<int64_t>& shape, std::size_t esize,
                                  int64_t elements) {
  std::vector<uint8_t> out(static_cast<std::size_t>(elements) * esize);
  if (elements == 0) return out;
  const std::size_t rank = shape.size();
  std::vector<int64_t> fstride(rank), idx(rank, 0);
  int64_t s = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    fstride[k] = s;
    s *= shape[k];
  }
  int64_t f = 0;
  for (int64_t c = 0; c < elements; ++c) {
    std::memcpy(out.data() + static_cast<std::size_t>(c) * esize, src + static_cast<std::size_t>(f) * esize, esize);
    for (std::size_t k = rank; k-- > 0;) {  // the last index runs fastest in C order
      if (++idx[k] < shape[k]) {
        f += fstride[k];
        break;
      }
      f -= fstride[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
  return out;
}

}  // namespace

int64_t NpyArray::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::to_f32() const {
  const std::size_t n = data.size() / item_size(type);
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const uint8_t* p = data.data() + i * item_size(type);
    switch (type) {
      case NpyType::f32: std::memcpy(&out[i], p, 4); break;
      case NpyType::f16: out[i] = core::f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))); break;
      case NpyType::f64: {
        double d;
        std::memcpy(&d, p, 8);
        out[i] = static_cast<float>(d);  // round to nearest; beyond float's range gives ±inf
        break;
      }
      case NpyType::u8: out[i] = static_cast<float>(p[0]); break;
    }
  }
  return out;
}

NpyArray parse_npy(const uint8_t* bytes, std::size_t size) { return parse_npy(bytes, size, "data"); }

NpyArray parse_npy(const uint8_t* bytes, std::size_t size, const std::string& source) {
  if (size < 10 || std::memcmp(bytes, kMagic, 6) != 0) {
    if (size >= 6 && std::memcmp(bytes, kMagic, 6) == 0)
      bad(source, "is " + std::to_string(size) + " bytes long, too short for a .npy preamble (truncated?)");
    bad(source, "does not start with the .npy magic \"\\x93NUMPY\"");
  }
  const int major = bytes[6], minor = bytes[7];
  std::size_t header_len = 0, pre = 0;
  if (major == 1 && minor == 0) {
    header_len = static_cast<std::size_t>(bytes[8]) | (static_cast<std::size_t>(bytes[9]) << 8);
    pre = 10;
  } else if ((major == 2 || major == 3) && minor == 0) {
    if (size < 12) bad(source, "is " + std::to_string(size) + " bytes long, too short for a version " + std::to_string(major) + ".0 preamble");
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | bytes[8 + i];
    pre = 12;
  } else {
    bad(source, "format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " is not supported (1.0, 2.0, 3.0)");
  }
  if (header_len > size - pre)
    bad(source, "header length " + std::to_string(header_len) + " runs past the end of the " + std::to_string(size) +
                    "-byte file (truncated?)");

  const std::string_view text(reinterpret_cast<const char*>(bytes + pre), header_len);
  std::string descr;
  bool fortran = false;
  NpyArray a;
  HeaderParser(text, source).parse(descr, fortran, a.shape);

  if (!type_from_descr(descr, a.type)) {
    if (!descr.empty() && descr[0] == '>')
      bad(source, "big-endian data " + shown(descr) + " is not supported; save it with arr.astype(arr.dtype.newbyteorder('<'))");
    bad(source, "dtype " + shown(descr) + " is not supported (float32 '<f4', float16 '<f2', float64 '<f8', uint8 '|u1')");
  }

  // Same overflow rule as safetensors: the non-zero dimensions' byte count must fit in int64.
  const std::size_t esize = item_size(a.type);
  int64_t nonzero_bytes = static_cast<int64_t>(esize);
  bool has_zero = false;
  for (int64_t d : a.shape) {
    if (d == 0) has_zero = true;
    else if (__builtin_mul_overflow(nonzero_bytes, d, &nonzero_bytes))
      bad(source, "shape " + shape_text(a.shape) + " is larger than 2^63 bytes");
  }
  const uint64_t nbytes = has_zero ? 0 : static_cast<uint64_t>(nonzero_bytes);
  const uint64_t have = size - pre - header_len;
  if (have != nbytes)
    bad(source, "shape " + shape_text(a.shape) + " of " + descr + " needs " + std::to_string(nbytes) +
                    " data bytes but the file has " + std::to_string(have) + (have < nbytes ? " (truncated?)" : ""));

  const uint8_t* data = bytes + pre + header_len;
  const int64_t elements = static_cast<int64_t>(nbytes / esize);
  if (fortran && a.shape.size() > 1)
    a.data = fortran_to_c(data, a.shape, esize, elements);
  else
    a.data.assign(data, data + nbytes);
  return a;
}

NpyArray read_npy(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return parse_npy(bytes.data(), bytes.size(), "file '" + path + "'");
}

std::vector<uint8_t> serialize_npy(NpyType type, const std::vector<int64_t>& shape, const void* data) {
  const std::size_t esize = item_size(type);
  if (esize == 0) throw Error(ErrorCode::invalid_argument, "serialize_npy: unknown element type");
  if (shape.size() > 64)
    throw Error(ErrorCode::invalid_argument, "serialize_npy: " + std::to_string(shape.size()) + " dimensions (at most 64)");
  uint64_t nbytes = esize;
  for (int64_t d : shape) {
    if (d < 0) throw Error(ErrorCode::invalid_argument, "serialize_npy: negative dimension in shape " + shape_text(shape));
    if (__builtin_mul_overflow(nbytes, static_cast<uint64_t>(d), &nbytes))
      throw Error(ErrorCode::invalid_argument, "serialize_npy: shape " + shape_text(shape) + " is too large");
  }
  if (nbytes > 0 && data == nullptr)
    throw Error(ErrorCode::invalid_argument, "serialize_npy: null data for shape " + shape_text(shape));

  std::string header = std::string("{'descr': '") + descr_of(type) + "', 'fortran_order': False, 'shape': " +
                       shape_text(shape) + ", }";
  // Pad with spaces and a final '\n' so preamble + header is a multiple of 64 (numpy's own alignment).
  // With at most 64 dimensions the header stays far below version 1.0's 65535-byte limit.
  const std::size_t pre = 10;
  header.append((64 - (pre + header.size() + 1) % 64) % 64, ' ');
  header += '\n';

  std::vector<uint8_t> out(pre + header.size() + nbytes);
  std::memcpy(out.data(), kMagic, 6);
  out[6] = 1;
  out[7] = 0;
  const std::size_t hl = header.size();
  out[8] = static_cast<uint8_t>(hl & 0xff);
  out[9] = static_cast<uint8_t>(hl >> 8);
  std::memcpy(out.data() + pre, header.data(), hl);
  if (nbytes > 0) std::memcpy(out.data() + pre + hl, data, nbytes);
  return out;
}

void write_npy(const std::string& path, NpyType type, const std::vector<int64_t>& shape, const void* data) {
  write_file_atomic(path, serialize_npy(type, shape, data));
}

}  // namespace tconv::io
