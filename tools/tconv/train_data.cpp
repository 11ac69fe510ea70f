// Fashion-MNIST reader: IDX format (big-endian header: 0x00 0x00 type ndims, then ndims u32 sizes, then
// the payload) inside an optional gzip stream, inflated with zlib.
#include "train_data.hpp"

#include <zlib.h>

#include <cstdio>
#include <filesystem>

#include "tconv/error.hpp"

namespace tconv::cli::train {
namespace {

std::string missing_message(const std::string& path) {
  return "cannot find '" + path +
         "' (Fashion-MNIST). Install Debian's dataset-fashion-mnist (scripts/install-deps.sh does) or pass "
         "--data DIR pointing at a folder holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
         "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz";
}

std::vector<uint8_t> read_whole(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(ErrorCode::io_error, "cannot open '" + path + "'");
  std::vector<uint8_t> out;
  uint8_t chunk[1 << 16];
  std::size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) out.insert(out.end(), chunk, chunk + n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw Error(ErrorCode::io_error, "error reading '" + path + "'");
  return out;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header (not a raw zlib stream).
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(ErrorCode::internal, "zlib inflateInit2 failed");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  std::vector<uint8_t> out;
  uint8_t chunk[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string why = zs.msg ? zs.msg : (rc == Z_BUF_ERROR ? "truncated stream" : "error " + std::to_string(rc));
      inflateEnd(&zs);
      throw Error(ErrorCode::format_error, "'" + path + "' is not a valid gzip file: " + why);
    }
    out.insert(out.end(), chunk, chunk + (sizeof chunk - zs.avail_out));
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      throw Error(ErrorCode::format_error, "'" + path + "' is a truncated gzip file");
    }
  }
  inflateEnd(&zs);
  return out;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// The file for `stem` in `dir`: the .gz form first (what Debian ships), then the plain one.
std::string locate(const std::string& dir, const std::string& stem) {
  const std::string gz = dir + "/" + stem + ".gz", plain = dir + "/" + stem;
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(plain, ec)) return plain;
  throw Error(ErrorCode::io_error, missing_message(gz));
}

}  // namespace

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> raw = read_whole(path);
  if (raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) return gunzip(raw, path);
  return raw;
}

void parse_idx(const std::vector<uint8_t>& bytes, int expected_dims, const std::string& what,
               std::vector<int64_t>& dims, const uint8_t*& payload) {
  if (bytes.size() < 4)
    throw Error(ErrorCode::format_error, "'" + what + "' is too short to be an IDX file (" +
                                             std::to_string(bytes.size()) + " bytes)");
  // Magic: two zero bytes, element type 0x08 (unsigned byte), number of dimensions.
  if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != expected_dims) {
    char magic[16];
    std::snprintf(magic, sizeof magic, "0x%08x", be32(bytes.data()));
    throw Error(ErrorCode::format_error, "'" + what + "' has IDX magic " + magic + ", expected 0x0000080" +
                                             std::to_string(expected_dims) + " (unsigned bytes, " +
                                             std::to_string(expected_dims) + " dimensions)");
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(expected_dims);
  if (bytes.size() < header)
    throw Error(ErrorCode::format_error, "'" + what + "' is truncated inside its IDX header");
  dims.clear();
  uint64_t total = 1;
  for (int d = 0; d < expected_dims; ++d) {
    const uint32_t n = be32(bytes.data() + 4 + 4 * d);
    if (n == 0) throw Error(ErrorCode::format_error, "'" + what + "' has a zero dimension " + std::to_string(d));
    dims.push_back(n);
    total *= n;
  }
  if (bytes.size() - header < total)
    throw Error(ErrorCode::format_error, "'" + what + "' is truncated: header promises " + std::to_string(total) +
                                             " bytes of data, file holds " + std::to_string(bytes.size() - header));
  payload = bytes.data() + header;
}

Dataset load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit) {
  const std::string img_path = locate(dir, split + "-images-idx3-ubyte");
  const std::string lbl_path = locate(dir, split + "-labels-idx1-ubyte");
  const std::vector<uint8_t> img = read_maybe_gzip(img_path), lbl = read_maybe_gzip(lbl_path);
  std::vector<int64_t> idims, ldims;
  const uint8_t *ip = nullptr, *lp = nullptr;
  parse_idx(img, 3, img_path, idims, ip);
  parse_idx(lbl, 1, lbl_path, ldims, lp);
  if (idims[0] != ldims[0])
    throw Error(ErrorCode::format_error, "'" + img_path + "' holds " + std::to_string(idims[0]) + " images but '" +
                                             lbl_path + "' holds " + std::to_string(ldims[0]) + " labels");
  Dataset d;
  d.count = (limit > 0 && limit < idims[0]) ? limit : idims[0];
  d.height = idims[1];
  d.width = idims[2];
  const int64_t n = d.count * d.height * d.width;
  d.pixels.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) d.pixels[i] = static_cast<float>(ip[i]) / 255.0f;
  d.labels.assign(lp, lp + d.count);
  return d;
}

}  // namespace tconv::cli::train
