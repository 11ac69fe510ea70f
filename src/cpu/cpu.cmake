# CPU backend sources (owner: CPU backend). The Highway files are compiled once per SIMD target
# (foreach_target); SSSE3/SSE4 are left out to keep build time down (AVX2, AVX-512 and the portable
# baseline remain).
set(_tconv_cpu_hwy_sources
  ${CMAKE_CURRENT_LIST_DIR}/igemm_f32.cpp
  ${CMAKE_CURRENT_LIST_DIR}/gemm_bwd_weights.cpp
  ${CMAKE_CURRENT_LIST_DIR}/depthwise_stream.cpp
  ${CMAKE_CURRENT_LIST_DIR}/few_channels.cpp)
target_sources(tconv PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/cpu_algorithms.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cpu_common.cpp
  ${CMAKE_CURRENT_LIST_DIR}/phase_igemm_fwd.cpp
  ${CMAKE_CURRENT_LIST_DIR}/igemm_bwd_data.cpp
  ${_tconv_cpu_hwy_sources})
set_source_files_properties(${_tconv_cpu_hwy_sources} PROPERTIES
  COMPILE_DEFINITIONS "HWY_DISABLED_TARGETS=(HWY_SSSE3|HWY_SSE4)")
find_library(TCONV_HWY_LIB hwy REQUIRED)
target_link_libraries(tconv PUBLIC ${TCONV_HWY_LIB})
