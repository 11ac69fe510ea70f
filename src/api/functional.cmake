# The PyTorch-style functional API (include/tconv/functional.hpp).
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/functional.cpp)
