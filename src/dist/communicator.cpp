// The parts of the communicator every build has: the id's text and file forms, and the checks of every
// argument (done at encode time, so that a mistake reaches the caller instead of a peer hanging in a
// collective that this rank never starts). Like src/api, this is object-API code: it throws tconv::Error.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "dist/communicator_impl.hpp"
#include "io/files.hpp"
#include "tconv/error.hpp"
#include "tconv/state.hpp"

namespace tconv {

namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(ErrorCode::invalid_argument, m); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const Communicator::Impl& checked(const std::shared_ptr<Communicator::Impl>& p, const char* what) {
  if (!p) invalid(std::string("Communicator::") + what + " on a null communicator");
  return *p;
}

}  // namespace

// ---------------------------------------------------------------- CommunicatorId

CommunicatorId CommunicatorId::generate() { return dist::backend_generate_id(); }

std::string CommunicatorId::to_hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

CommunicatorId CommunicatorId::from_hex(const std::string& text) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  const std::size_t last = text.find_last_not_of(" \t\r\n");
  const std::string hex = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
  CommunicatorId id;
  if (hex.size() != id.bytes.size() * 2)
    throw Error(ErrorCode::format_error, "a communicator id is " + std::to_string(id.bytes.size() * 2) +
                                             " hex digits, got " + std::to_string(hex.size()) + " characters");
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      throw Error(ErrorCode::format_error, "a communicator id is hex digits only; character " +
                                               std::to_string(2 * i + (hi < 0 ? 0 : 1)) + " is '" +
                                               hex[2 * i + (hi < 0 ? 0 : 1)] + "'");
    id.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

void CommunicatorId::write_file(const std::string& path) const {
  const std::string s = to_hex() + "\n";
  io::write_file_atomic(path, s.data(), s.size());
}

CommunicatorId CommunicatorId::read_file(const std::string& path, double timeout_seconds) {
  if (!(timeout_seconds >= 0)) invalid("CommunicatorId::read_file: timeout must be >= 0 seconds");
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  // The writer renames a complete file into place, so once the name exists its content is whole.
  for (;;) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) break;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited >= timeout_seconds)
      throw Error(ErrorCode::io_error, "communicator id file '" + path + "' does not exist (waited " +
                                           std::to_string(waited) + " s; rank 0 writes it)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::vector<uint8_t> bytes = io::read_file(path);
  try {
    return from_hex(std::string(bytes.begin(), bytes.end()));
  } catch (const Error& e) {
    throw Error(ErrorCode::format_error, "communicator id file '" + path + "': " + e.message());
  }
}

CommunicatorId CommunicatorId::from_environment(const char* variable) {
  const char* v = std::getenv(variable);
  if (v == nullptr) invalid(std::string("environment variable ") + variable + " (the communicator id) is not set");
  try {
    return from_hex(v);
  } catch (const Error& e) {
    throw Error(ErrorCode::format_error, std::string("environment variable ") + variable + ": " + e.message());
  }
}

// ---------------------------------------------------------------- Communicator

bool Communicator::available() noexcept { return dist::backend_available(); }
int Communicator::library_version() noexcept { return dist::backend_version(); }

Communicator::Communicator(const Device& device, const CommunicatorId& id, int rank, int ranks) {
  if (ranks < 1) invalid("a communicator needs at least 1 rank, got " + std::to_string(ranks));
  if (rank < 0 || rank >= ranks)
    invalid("rank " + std::to_string(rank) + " is outside [0, " + std::to_string(ranks) + ")");
  if (!available())
    throw Error(ErrorCode::unsupported, "this tconv build has no NCCL, so it cannot make a communicator "
                                        "(rank " + std::to_string(rank) + " of " + std::to_string(ranks) + ")");
  if (device.kind() != DeviceKind::cuda)
    invalid("a communicator runs on a CUDA device (one rank per GPU), got " + device.name());
  impl_ = dist::backend_create(device, id, rank, ranks);
}

int Communicator::rank() const { return checked(impl_, "rank").rank; }
int Communicator::size() const { return checked(impl_, "size").size; }
const Device& Communicator::device() const { return checked(impl_, "device").device; }

namespace {

// The checks both all-reduce entries share: a live communicator, a known reduction, a valid pre-multiplier.
void check_reduction(const Communicator::Impl& c, const char* what, ReduceOp op, float scale, bool any_spans) {
  if (c.aborted()) invalid(std::string("Communicator::") + what + ": the communicator was aborted");
  if (op != ReduceOp::sum && op != ReduceOp::mean)
    invalid("unknown reduction " + std::to_string(static_cast<int>(op)));
  if (op == ReduceOp::mean && scale != 1.0f)
    invalid("a mean takes no pre-multiplier (scale must be 1, got " + std::to_string(scale) + ")");
  if (!std::isfinite(scale)) invalid("the pre-multiplier must be finite, got " + std::to_string(scale));
  if (!any_spans) invalid(std::string("Communicator::") + what + ": no spans to reduce");
}

}  // namespace

void Communicator::encode_all_reduce(CommandBuffer& cb, const std::vector<FloatSpan>& spans, ReduceOp op,
                                     float scale) const {
  const Impl& c = checked(impl_, "encode_all_reduce");
  check_reduction(c, "encode_all_reduce", op, scale, !spans.empty());
  if (!(cb.device() == c.device))
    invalid("the command buffer lives on " + cb.device().name() + " but the communicator on " + c.device.name());
  std::vector<dist::ResolvedSpan> resolved;
  resolved.reserve(spans.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const FloatSpan& s = spans[i];
    const std::string which = "span " + std::to_string(i);
    if (!s.buffer) invalid(which + " has a null buffer");
    if (!(s.buffer.device() == c.device))
      invalid(which + " lives on " + s.buffer.device().name() + " but the communicator on " + c.device.name());
    if (s.offset % sizeof(float) != 0) invalid(which + ": offset " + std::to_string(s.offset) + " is not a multiple of 4");
    const std::size_t length = s.buffer.length();
    if (s.offset > length) invalid(which + ": offset " + std::to_string(s.offset) + " is past the buffer's " +
                                   std::to_string(length) + " bytes");
    const std::size_t avail = (length - s.offset) / sizeof(float);
    if (s.count < -1) invalid(which + ": count " + std::to_string(s.count) + " is negative");
    const std::size_t count = s.count == -1 ? avail : static_cast<std::size_t>(s.count);
    if (count > avail)
      invalid(which + ": " + std::to_string(count) + " floats from byte " + std::to_string(s.offset) +
              " do not fit in the buffer's " + std::to_string(length) + " bytes");
    if (count == 0) continue;  // nothing to move; NCCL would accept it, but there is no point
    resolved.push_back({s.buffer, reinterpret_cast<float*>(static_cast<uint8_t*>(s.buffer.device_pointer()) + s.offset),
                        count});
  }
  impl_->encode_all_reduce(cb, std::move(resolved), op, scale);
}

void Communicator::enqueue_all_reduce(void* stream, const std::vector<DeviceFloatSpan>& spans, ReduceOp op,
                                      float scale) const {
  const Impl& c = checked(impl_, "enqueue_all_reduce");
  check_reduction(c, "enqueue_all_reduce", op, scale, !spans.empty());
  std::vector<dist::ResolvedSpan> resolved;
  resolved.reserve(spans.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const DeviceFloatSpan& s = spans[i];
    if (s.count == 0) continue;  // an empty tensor: its address may be anything, even null
    const std::string which = "span " + std::to_string(i);
    if (s.data == nullptr) invalid(which + " has " + std::to_string(s.count) + " values at a null address");
    if (reinterpret_cast<uintptr_t>(s.data) % sizeof(float) != 0)
      invalid(which + ": address " + std::to_string(reinterpret_cast<uintptr_t>(s.data)) +
              " is not aligned to 4 bytes (float32)");
    // The last byte's address must not wrap around (a count far beyond any allocation).
    if (s.count > (UINTPTR_MAX - reinterpret_cast<uintptr_t>(s.data)) / sizeof(float))
      invalid(which + ": " + std::to_string(s.count) + " floats do not fit in the address space");
    resolved.push_back({Buffer(), static_cast<float*>(s.data), s.count});
  }
  impl_->enqueue_all_reduce(stream, std::move(resolved), op, scale);
}

void Communicator::encode_all_reduce(CommandBuffer& cb, const ConvolutionGradientState& state, ReduceOp op,
                                     float scale) const {
  if (!state) invalid("Communicator::encode_all_reduce: the gradient state is null");
  encode_all_reduce(cb, {FloatSpan{state.gradient_for_weights()}, FloatSpan{state.gradient_for_biases()}}, op, scale);
}

void Communicator::encode_join(CommandBuffer& cb) const {
  const Impl& c = checked(impl_, "encode_join");
  if (c.aborted()) invalid("Communicator::encode_join: the communicator was aborted");
  if (!(cb.device() == c.device))
    invalid("the command buffer lives on " + cb.device().name() + " but the communicator on " + c.device.name());
  impl_->encode_join(cb);
}

void Communicator::abort() noexcept {
  if (impl_) impl_->abort();
}

}  // namespace tconv
