// The coder: a safetensors file with a versioned, checksummed metadata map (see coder.hpp and
// docs/file-formats.md for the layout, the checksum's byte stream and the versioning policy).
//
// Scalars are stored as text in "__metadata__" so any safetensors reader shows them; the type is not stored
// but implied by the text: integers are plain decimal, doubles are C99 hexadecimal floating point ("%a",
// bit-exact, so a round trip never changes a value), booleans are "true"/"false". A typed getter refuses text
// that is not of its type, naming the key.
#include "io/coder.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "io/files.hpp"
#include "tconv/error.hpp"

namespace tconv::io {

namespace {

constexpr const char* kFormatKey = "tconv.format";
constexpr const char* kVersionKey = "tconv.version";
constexpr const char* kCrcKey = "tconv.crc32";
constexpr const char* kFormatName = "tconv-coder";
constexpr int kVersion = 1;  // the major version this build writes and the newest it reads

// Reflected IEEE 802.3 polynomial (zlib, PNG, gzip), table built at compile time.
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

bool is_reserved(const std::string& key) { return key == kFormatKey || key == kVersionKey || key == kCrcKey; }

// Running CRC over the checksum's byte stream: every field is length-prefixed (u64 little-endian) so no two
// different contents give the same stream.
struct CrcStream {
  uint32_t crc = 0;
  void bytes(const void* p, std::size_t n) { crc = crc32(p, n, crc); }
  void u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    bytes(b, 8);
  }
  void str(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
};

const char* dtype_tag(DataType t) {
  switch (t) {
    case DataType::float32: return "F32";
    case DataType::float16: return "F16";
    case DataType::bfloat16: return "BF16";
    case DataType::uint8: return "U8";
  }
  return "?";
}

// The checksum of a file's contents, leaving out the checksum entry itself.
uint32_t content_crc(const SafetensorsFile& f) {
  CrcStream s;
  uint64_t entries = 0;
  for (const auto& kv : f.metadata) entries += (kv.first != kCrcKey);
  s.u64(entries);
  for (const auto& [k, v] : f.metadata) {
    if (k == kCrcKey) continue;
    s.str(k);
    s.str(v);
  }
  s.u64(f.tensors.size());
  for (const auto& [name, t] : f.tensors) {
    s.str(name);
    s.str(dtype_tag(t.dtype));
    s.u64(t.shape.size());
    for (int64_t d : t.shape) s.u64(static_cast<uint64_t>(d));
    s.u64(t.data.size());
    s.bytes(t.data.data(), t.data.size());
  }
  return s.crc;
}

std::string hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

[[noreturn]] void bad(const std::string& source, const std::string& message) {
  throw Error(ErrorCode::format_error, "coder " + source + ": " + message);
}

// Whole-string integer parse (decimal, optional '-'); false on anything else or overflow.
bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  const char* b = s.data();
  const char* e = b + s.size();
  const auto r = std::from_chars(b, e, out);
  return r.ec == std::errc() && r.ptr == e;
}

}  // namespace

uint32_t crc32(const void* data, std::size_t bytes, uint32_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~seed;
  for (std::size_t i = 0; i < bytes; ++i) c = kCrcTable[(c ^ p[i]) & 0xffu] ^ (c >> 8);
  return ~c;
}

// ---- Encoder ----

namespace {
void check_scalar_key(const SafetensorsFile& f, const std::string& key) {
  if (key.empty()) throw Error(ErrorCode::invalid_argument, "coder keys must not be empty");
  if (is_reserved(key)) throw Error(ErrorCode::invalid_argument, "coder key '" + key + "' is reserved for the file's own header");
  if (f.tensors.count(key)) throw Error(ErrorCode::invalid_argument, "coder key '" + key + "' is already a tensor");
}
}  // namespace

void Encoder::set_int(const std::string& key, int64_t v) {
  check_scalar_key(file_, key);
  file_.metadata[key] = std::to_string(v);
}

void Encoder::set_double(const std::string& key, double v) {
  check_scalar_key(file_, key);
  // "%a" is exact for every finite value and for ±inf; NaN is written as "nan"/"-nan" (its payload is
  // not kept: no tconv value depends on one).
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  file_.metadata[key] = buf;
}

void Encoder::set_bool(const std::string& key, bool v) {
  check_scalar_key(file_, key);
  file_.metadata[key] = v ? "true" : "false";
}

void Encoder::set_string(const std::string& key, const std::string& v) {
  check_scalar_key(file_, key);
  file_.metadata[key] = v;
}

void Encoder::set_tensor(const std::string& key, DataType dtype, std::vector<int64_t> shape, const void* data,
                         std::size_t bytes) {
  if (key.empty()) throw Error(ErrorCode::invalid_argument, "coder keys must not be empty");
  if (key == "__metadata__" || is_reserved(key))
    throw Error(ErrorCode::invalid_argument, "coder key '" + key + "' is reserved and cannot name a tensor");
  if (file_.metadata.count(key)) throw Error(ErrorCode::invalid_argument, "coder key '" + key + "' is already a scalar");
  int64_t nbytes = static_cast<int64_t>(size_of(dtype));
  if (nbytes == 0) throw Error(ErrorCode::invalid_argument, "coder tensor '" + key + "' has an unknown data type");
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d < 0) throw Error(ErrorCode::invalid_argument, "coder tensor '" + key + "' has a negative dimension " + std::to_string(d));
    if (d == 0) has_zero = true;
    else if (__builtin_mul_overflow(nbytes, d, &nbytes))
      throw Error(ErrorCode::invalid_argument, "coder tensor '" + key + "' has more bytes than fit in 64 bits");
  }
  if (has_zero) nbytes = 0;
  if (static_cast<uint64_t>(nbytes) != bytes)
    throw Error(ErrorCode::invalid_argument, "coder tensor '" + key + "': " + std::to_string(bytes) +
                                                 " bytes given but its shape of " + std::string(to_string(dtype)) +
                                                 " needs " + std::to_string(nbytes));
  if (bytes > 0 && data == nullptr)
    throw Error(ErrorCode::invalid_argument, "coder tensor '" + key + "': null data for " + std::to_string(bytes) + " bytes");
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  const auto* p = static_cast<const uint8_t*>(data);
  if (bytes > 0) t.data.assign(p, p + bytes);
  file_.tensors[key] = std::move(t);
}

std::vector<uint8_t> Encoder::to_bytes() const {
  SafetensorsFile f = file_;
  f.metadata[kFormatKey] = kFormatName;
  f.metadata[kVersionKey] = std::to_string(kVersion);
  f.metadata.erase(kCrcKey);
  f.metadata[kCrcKey] = hex8(content_crc(f));
  return serialize_safetensors(f);
}

void Encoder::write_file(const std::string& path) const { write_file_atomic(path, to_bytes()); }

// ---- Decoder ----

namespace {

// Parse, then check format, version and checksum, in that order (a newer major version may define its
// checksum differently, so the version is judged before the checksum).
void decode(const uint8_t* bytes, std::size_t size, const std::string& source, SafetensorsFile& file,
            int& version) {
  file = parse_safetensors(bytes, size, source);
  const auto& md = file.metadata;

  const auto fmt = md.find(kFormatKey);
  if (fmt == md.end()) bad(source, "not a tconv coder file (no \"tconv.format\" metadata entry)");
  if (fmt->second != kFormatName)
    bad(source, "not a tconv coder file (\"tconv.format\" is '" + fmt->second.substr(0, 64) + "', expected '" +
                    kFormatName + "')");

  // Version "MAJOR" or "MAJOR.MINOR": a newer minor only adds keys an older reader may ignore; a newer major
  // may change meanings, so it is refused.
  const auto ver = md.find(kVersionKey);
  if (ver == md.end()) bad(source, "no \"tconv.version\" metadata entry");
  const std::string& vtext = ver->second;
  const std::string major_text = vtext.substr(0, vtext.find('.'));
  int64_t major = 0, minor = 0;
  const bool has_minor = major_text.size() != vtext.size();
  if (!parse_int(major_text, major) || major < 1 || major_text[0] == '-' || major_text[0] == '+' ||
      (has_minor && (!parse_int(vtext.substr(major_text.size() + 1), minor) || minor < 0 ||
                     vtext[major_text.size() + 1] == '-')))
    bad(source, "\"tconv.version\" is '" + vtext.substr(0, 64) + "', not a version number");
  if (major > kVersion)
    bad(source, "written by a newer tconv (coder version " + vtext + "; this build reads version " +
                    std::to_string(kVersion) + " and older)");
  version = static_cast<int>(major);

  const auto crc = md.find(kCrcKey);
  if (crc == md.end()) bad(source, "no \"tconv.crc32\" metadata entry");
  uint32_t stored = 0;
  {
    const std::string& c = crc->second;
    const char* b = c.data();
    const char* e = b + c.size();
    const auto r = std::from_chars(b, e, stored, 16);
    if (c.size() != 8 || r.ec != std::errc() || r.ptr != e)
      bad(source, "\"tconv.crc32\" is '" + c.substr(0, 64) + "', not 8 hexadecimal digits");
  }
  const uint32_t actual = content_crc(file);
  if (stored != actual)
    bad(source, "checksum mismatch (stored " + hex8(stored) + ", contents give " + hex8(actual) +
                    "): the file is damaged or was edited");
}

}  // namespace

Decoder Decoder::from_bytes(const uint8_t* bytes, std::size_t size) {
  Decoder d;
  decode(bytes, size, "data", d.file_, d.version_);
  return d;
}

Decoder Decoder::from_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  Decoder d;
  decode(bytes.data(), bytes.size(), "file '" + path + "'", d.file_, d.version_);
  return d;
}

bool Decoder::has(const std::string& key) const {
  if (is_reserved(key)) return false;
  return file_.metadata.count(key) != 0 || file_.tensors.count(key) != 0;
}

namespace {
[[noreturn]] void bad_key(const std::string& key, const std::string& what) {
  throw Error(ErrorCode::format_error, "coder key '" + key + "' " + what);
}
const std::string& scalar_text(const SafetensorsFile& f, const std::string& key, const char* type) {
  const auto it = f.metadata.find(key);
  if (it == f.metadata.end() || is_reserved(key)) {
    if (f.tensors.count(key)) bad_key(key, std::string("is a tensor, not ") + type);
    bad_key(key, std::string("is missing (expected ") + type + ")");
  }
  return it->second;
}
std::string shown(const std::string& v) { return "'" + (v.size() > 64 ? v.substr(0, 64) + "..." : v) + "'"; }
}  // namespace

int64_t Decoder::get_int(const std::string& key) const {
  const std::string& v = scalar_text(file_, key, "an integer");
  int64_t out = 0;
  if (!parse_int(v, out)) bad_key(key, "holds " + shown(v) + ", not a 64-bit integer");
  return out;
}

double Decoder::get_double(const std::string& key) const {
  const std::string& v = scalar_text(file_, key, "a number");
  // strtod reads the "%a" form exactly and also decimal text (a file edited by hand). It must consume all
  // of the text; leading whitespace, which strtod would skip, is refused too.
  if (v.empty() || std::isspace(static_cast<unsigned char>(v[0]))) bad_key(key, "holds " + shown(v) + ", not a number");
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size() || v.find('\0') != std::string::npos)
    bad_key(key, "holds " + shown(v) + ", not a number");
  return d;  // overflow gives ±inf and underflow a denormal or 0, as the text says
}

bool Decoder::get_bool(const std::string& key) const {
  const std::string& v = scalar_text(file_, key, "a boolean");
  if (v == "true") return true;
  if (v == "false") return false;
  bad_key(key, "holds " + shown(v) + ", not 'true' or 'false'");
}

std::string Decoder::get_string(const std::string& key) const { return scalar_text(file_, key, "a string"); }

const Tensor& Decoder::get_tensor(const std::string& key) const {
  const auto it = file_.tensors.find(key);
  if (it == file_.tensors.end()) {
    if (file_.metadata.count(key) && !is_reserved(key)) bad_key(key, "is a scalar, not a tensor");
    bad_key(key, "is missing (expected a tensor)");
  }
  return it->second;
}

int64_t Decoder::get_int_or(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  return get_int(key);
}

}  // namespace tconv::io
