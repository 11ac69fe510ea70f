// Build without NCCL (no CUDA backend, or NCCL not found): the communicator reports itself unavailable and
// nothing can make one, so the training tool and the tests branch on Communicator::available().
#include <string>

#include "dist/communicator_impl.hpp"
#include "tconv/error.hpp"

namespace tconv::dist {
namespace {
[[noreturn]] void absent(const std::string& what) {
  throw Error(ErrorCode::unsupported, what + ": this tconv build has no NCCL (it needs the CUDA backend and "
                                             "nccl.h/libnccl; see src/dist/nccl.cmake)");
}
}  // namespace

bool backend_available() noexcept { return false; }
int backend_version() noexcept { return 0; }
CommunicatorId backend_generate_id() { absent("CommunicatorId::generate"); }
std::shared_ptr<Communicator::Impl> backend_create(const Device&, const CommunicatorId&, int, int) {
  absent("Communicator");
}

}  // namespace tconv::dist
