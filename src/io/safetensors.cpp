// The safetensors layout, read with every check done before anything in the file is trusted, and written
// exactly as the reference implementation (Hugging Face's `safetensors`) writes it, so PyTorch loads it.
//
// File: u64 little-endian N | N bytes of UTF-8 JSON header | data section.
// Header: {"__metadata__": {string: string}, "<tensor>": {"dtype": "F32", "shape": [..],
//          "data_offsets": [begin, end]}, ...}; offsets are relative to the data section.
//
// Reading follows the reference reader's rules (so a file we accept, PyTorch accepts too):
//   N ≤ 100,000,000 and N ≤ file size − 8; the header starts with '{' and is one JSON object (trailing spaces
//   allowed); the tensors' byte ranges, sorted, tile the data section exactly (no overlap, no gap, nothing
//   after the last one); each range's length is elements · dtype size. On top of that we refuse what the
//   reference tolerates silently: duplicate keys, unknown fields in a tensor entry, nesting deeper than a
//   valid header has, and shapes whose element count overflows 64 bits even when another dimension is 0.
//   JSON is parsed twice: a SAX pass (iterative, bounded depth) checks structure and duplicates, then the
//   DOM pass builds values we then inspect.
// Writing: tensors laid out by descending dtype size, then by name (the reference's order, which keeps every
//   tensor aligned to its element size), the header padded with spaces so the data section starts at a
//   multiple of 8, "__metadata__" left out when empty.
#include "io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "io/files.hpp"
#include "tconv/error.hpp"

namespace tconv::io {

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit
constexpr std::size_t kMaxJsonDepth = 8;           // a valid header nests 3 deep (object, entry, shape)

[[noreturn]] void bad(const std::string& source, const std::string& message) {
  throw Error(ErrorCode::format_error, "safetensors " + source + ": " + message);
}

struct DtypeName {
  DataType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {{DataType::float32, "F32"},
                                 {DataType::float16, "F16"},
                                 {DataType::bfloat16, "BF16"},
                                 {DataType::uint8, "U8"}};

const char* dtype_name(DataType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  return nullptr;
}

bool dtype_from_name(std::string_view s, DataType& out) {
  for (const auto& d : kDtypes)
    if (s == d.name) {
      out = d.type;
      return true;
    }
  return false;
}

// A string from an untrusted file, shortened and with control bytes escaped, for an error message.
std::string shown(std::string_view s) {
  std::string r = "'";
  const std::size_t limit = 64;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    } else {
      r += static_cast<char>(c);
    }
  }
  if (s.size() > limit) r += "...";
  return r + "'";
}

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// SAX pass: bounded nesting, no duplicate keys in any object, and the parser's own message on bad JSON.
class StructureCheck final : public nlohmann::json_sax<json> {
 public:
  std::string error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return push(true); }
  bool end_object() override { return pop(); }
  bool start_array(std::size_t) override { return push(false); }
  bool end_array() override { return pop(); }
  bool key(string_t& k) override {
    if (!scopes_.back().second.insert(k).second) {
      error = "key " + shown(k) + " appears twice in one JSON object";
      return false;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = std::string("header is not valid JSON: ") + e.what();
    return false;
  }

 private:
  bool push(bool is_object) {
    if (scopes_.size() >= kMaxJsonDepth) {
      error = "header JSON nests deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    scopes_.emplace_back(is_object, std::set<std::string>{});
    return true;
  }
  bool pop() {
    scopes_.pop_back();
    return true;
  }
  std::vector<std::pair<bool, std::set<std::string>>> scopes_;
};

// A JSON value that must be a non-negative integer that fits in int64.
bool as_index(const json& v, int64_t& out) {
  if (!v.is_number_unsigned()) return false;
  const uint64_t u = v.get<uint64_t>();
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  out = static_cast<int64_t>(u);
  return true;
}

std::string shape_text(const json& shape) {
  std::string s = shape.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

struct Entry {
  std::string name;
  Tensor tensor;  // data filled after the ranges are checked
  int64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& source, const std::string& name, const json& v, uint64_t data_size) {
  const std::string who = "tensor " + shown(name);
  if (!v.is_object()) bad(source, who + " is not a JSON object");
  const json* dtype = nullptr;
  const json* shape = nullptr;
  const json* offsets = nullptr;
  for (const auto& [k, x] : v.items()) {
    if (k == "dtype") dtype = &x;
    else if (k == "shape") shape = &x;
    else if (k == "data_offsets") offsets = &x;
    else bad(source, who + " has an unexpected field " + shown(k));
  }
  if (!dtype) bad(source, who + " has no \"dtype\"");
  if (!shape) bad(source, who + " has no \"shape\"");
  if (!offsets) bad(source, who + " has no \"data_offsets\"");

  Entry e;
  e.name = name;
  if (!dtype->is_string()) bad(source, who + ": \"dtype\" is not a string");
  const std::string& dname = dtype->get_ref<const std::string&>();
  if (!dtype_from_name(dname, e.tensor.dtype))
    bad(source, who + " has dtype " + shown(dname) + ", which tconv does not read (F32, F16, BF16, U8)");

  if (!shape->is_array()) bad(source, who + ": \"shape\" is not an array");
  // The element count of the non-zero dimensions must fit in int64 even when a zero makes the total 0,
  // so the answer does not depend on where the zero is.
  int64_t nonzero_product = 1;
  bool has_zero = false;
  for (const json& d : *shape) {
    int64_t n = 0;
    if (!as_index(d, n)) bad(source, who + ": shape " + shape_text(*shape) + " has an entry that is not a non-negative 64-bit integer");
    e.tensor.shape.push_back(n);
    if (n == 0) {
      has_zero = true;
      continue;
    }
    if (nonzero_product > std::numeric_limits<int64_t>::max() / n)
      bad(source, who + ": shape " + shape_text(*shape) + " has more elements than fit in 64 bits");
    nonzero_product *= n;
  }
  const int64_t elements = has_zero ? 0 : nonzero_product;
  const int64_t esize = static_cast<int64_t>(size_of(e.tensor.dtype));
  if (elements > std::numeric_limits<int64_t>::max() / esize)
    bad(source, who + ": shape " + shape_text(*shape) + " is larger than 2^63 bytes");
  const int64_t nbytes = elements * esize;

  if (!offsets->is_array() || offsets->size() != 2 || !as_index((*offsets)[0], e.begin) ||
      !as_index((*offsets)[1], e.end))
    bad(source, who + ": \"data_offsets\" must be two non-negative integers, got " + shape_text(*offsets));
  if (e.end < e.begin)
    bad(source, who + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before they begin");
  if (static_cast<uint64_t>(e.end) > data_size)
    bad(source, who + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] run past the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
  if (e.end - e.begin != nbytes)
    bad(source, who + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
                    std::to_string(e.end - e.begin) + " bytes but shape " + shape_text(*shape) + " of " + dname +
                    " needs " + std::to_string(nbytes));
  return e;
}

}  // namespace

int64_t Tensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& f) {
  // The reference writer's order: larger element sizes first, then by name (std::map order is bytewise).
  std::vector<const std::pair<const std::string, Tensor>*> order;
  for (const auto& kv : f.tensors) order.push_back(&kv);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return size_of(a->second.dtype) > size_of(b->second.dtype);
  });

  json header = json::object();
  if (!f.metadata.empty()) header["__metadata__"] = f.metadata;
  uint64_t offset = 0;
  for (const auto* kv : order) {
    const std::string& name = kv->first;
    const Tensor& t = kv->second;
    const std::string who = "tensor " + shown(name);
    if (name == "__metadata__") throw Error(ErrorCode::invalid_argument, "\"__metadata__\" is reserved and cannot name a tensor");
    const char* dname = dtype_name(t.dtype);
    if (!dname) throw Error(ErrorCode::invalid_argument, who + " has a data type safetensors files cannot hold here");
    // Same limits as the reader: the non-zero dimensions' byte count must fit in int64.
    int64_t nonzero_bytes = static_cast<int64_t>(size_of(t.dtype));
    bool has_zero = false;
    for (int64_t d : t.shape) {
      if (d < 0) throw Error(ErrorCode::invalid_argument, who + " has a negative dimension " + std::to_string(d));
      if (d == 0) has_zero = true;
      else if (__builtin_mul_overflow(nonzero_bytes, d, &nonzero_bytes))
        throw Error(ErrorCode::invalid_argument, who + "'s shape has more bytes than fit in 64 bits");
    }
    const uint64_t nbytes = has_zero ? 0 : static_cast<uint64_t>(nonzero_bytes);
    if (t.data.size() != nbytes)
      throw Error(ErrorCode::invalid_argument, who + " holds " + std::to_string(t.data.size()) +
                                                   " bytes but its shape needs " + std::to_string(nbytes));
    header[name] = {{"dtype", dname}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }

  std::string text;
  try {
    text = header.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception&) {
    throw Error(ErrorCode::invalid_argument, "a tensor name or metadata entry is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<uint8_t> out(8 + text.size() + offset);
  store_le64(out.data(), text.size());
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* data = out.data() + 8 + text.size();
  for (const auto* kv : order) {
    const auto& bytes = kv->second.data;
    if (!bytes.empty()) std::memcpy(data, bytes.data(), bytes.size());
    data += bytes.size();
  }
  return out;
}

SafetensorsFile parse_safetensors(const uint8_t* bytes, std::size_t size) {
  return parse_safetensors(bytes, size, "data");
}

SafetensorsFile parse_safetensors(const uint8_t* bytes, std::size_t size, const std::string& source) {
  if (size < 8)
    bad(source, "is " + std::to_string(size) + " bytes long, shorter than its 8-byte header length field");
  const uint64_t n = load_le64(bytes);
  if (n > kMaxHeaderBytes)
    bad(source, "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    bad(source, "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(size) +
                    "-byte file (truncated?)");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  if (n == 0 || text[0] != '{') bad(source, "header does not start with '{'");

  StructureCheck check;
  if (!json::sax_parse(text, text + n, &check)) bad(source, check.error);
  const json header = json::parse(text, text + n);  // cannot fail: the SAX pass accepted the same bytes
  if (!header.is_object()) bad(source, "header is not a JSON object");

  const uint8_t* data = bytes + 8 + n;
  const uint64_t data_size = size - 8 - n;
  SafetensorsFile f;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) bad(source, "\"__metadata__\" is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad(source, "metadata entry " + shown(mk) + " is not a string");
        f.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    entries.push_back(parse_entry(source, key, value, data_size));
  }

  // The ranges, in file order, must tile the data section: each begins where the previous one ended.
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  int64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < expected)
      bad(source, "tensors " + shown(previous->name) + " and " + shown(e->name) + " overlap (bytes " +
                      std::to_string(e->begin) + " to " + std::to_string(expected) + ")");
    if (e->begin > expected)
      bad(source, "bytes " + std::to_string(expected) + " to " + std::to_string(e->begin) +
                      " of the data section belong to no tensor (before " + shown(e->name) + ")");
    expected = e->end;
    previous = e;
  }
  if (static_cast<uint64_t>(expected) != data_size)
    bad(source, "the data section has " + std::to_string(data_size) + " bytes but the tensors cover " +
                    std::to_string(expected) + " (trailing bytes or a wrong header length)");

  for (auto& e : entries) {
    e.tensor.data.assign(data + e.begin, data + e.end);
    f.tensors.emplace(std::move(e.name), std::move(e.tensor));
  }
  return f;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return parse_safetensors(bytes.data(), bytes.size(), "file '" + path + "'");
}

void write_safetensors(const std::string& path, const SafetensorsFile& f) {
  write_file_atomic(path, serialize_safetensors(f));
}

}  // namespace tconv::io
