# The plan cache's public calls (include/tconv/tuning.hpp; the cache and tuner live in src/registry).
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tuning.cpp)
