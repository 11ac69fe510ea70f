# Helpers shared by the subcommands (geometry parsing, devices, .npy arrays, deferred atomic output writes),
# and what `tconv info` reports about the build (version, build type, flags, Highway targets).
list(APPEND _tconv_cli_sources ${CMAKE_CURRENT_LIST_DIR}/cli_common.cpp)
string(TOUPPER "${CMAKE_BUILD_TYPE}" _tconv_bt)
string(STRIP "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_tconv_bt}}" _tconv_flags)
list(APPEND _tconv_cli_defs TCONV_VERSION="${PROJECT_VERSION}" TCONV_BUILD_TYPE="${CMAKE_BUILD_TYPE}"
     TCONV_CXX_FLAGS="${_tconv_flags}")
find_path(TCONV_HWY_INCLUDE hwy/targets.h)
find_library(TCONV_HWY_LIBRARY hwy)
if(TCONV_HWY_INCLUDE AND TCONV_HWY_LIBRARY)
  list(APPEND _tconv_cli_defs TCONV_HAVE_HWY=1)
  # The executable is created after the fragments are read; link Highway to it once it exists.
  cmake_language(DEFER CALL target_link_libraries tconv_cli PRIVATE ${TCONV_HWY_LIBRARY})
endif()
