// Build without the CUDA backend: no CUDA algorithms.
#include "registry/algorithm.hpp"

namespace tconv::registry {
std::vector<const Algorithm*> cuda_algorithms() { return {}; }
}  // namespace tconv::registry
