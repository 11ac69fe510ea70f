// The optimised CPU algorithms, best first. (The reference is appended by the registry.)
#include "registry/algorithm.hpp"

namespace tconv::registry {
std::vector<const Algorithm*> cpu_algorithms() { return {}; }
}  // namespace tconv::registry
