# The CUDA backend (owner: CUDA engine layer). Included by src/cuda/CMakeLists.txt before stub.cmake
# (fragments are included in sorted order); it does nothing in a build without CUDA, so stub.cpp stays the
# CPU-only fallback. With CUDA it sets TCONV_CUDA_BACKEND_SOURCES, which makes stub.cmake add nothing.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()

set(TCONV_CUDA_BACKEND_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/runtime.cpp
    ${CMAKE_CURRENT_LIST_DIR}/api_kernels.cu
    ${CMAKE_CURRENT_LIST_DIR}/cuda_algorithms.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cuda_direct.cu
    ${CMAKE_CURRENT_LIST_DIR}/direct_fwd.cu
    ${CMAKE_CURRENT_LIST_DIR}/direct_bwd_data.cu
    ${CMAKE_CURRENT_LIST_DIR}/direct_bwd_weights.cu
    ${CMAKE_CURRENT_LIST_DIR}/igemm_mma.cu
    ${CMAKE_CURRENT_LIST_DIR}/igemm_mma_wgrad.cu)

# cuDNN 9 is optional: found in the toolkit folder, under CUDNN_ROOT (cache or environment), or in a
# Python wheel's nvidia/cudnn folder (what the GPU machine image has). Without it cuda_cudnn is not built.
find_path(TCONV_CUDNN_INCLUDE_DIR cudnn.h
          HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
          PATH_SUFFIXES include)
find_library(TCONV_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
             HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
             PATH_SUFFIXES lib lib64 lib/x64)
set(TCONV_HAVE_CUDNN OFF)
if(TCONV_CUDNN_INCLUDE_DIR AND TCONV_CUDNN_LIBRARY)
  file(STRINGS ${TCONV_CUDNN_INCLUDE_DIR}/cudnn_version.h _cudnn_major REGEX "define CUDNN_MAJOR [0-9]+")
  if(_cudnn_major MATCHES "CUDNN_MAJOR ([0-9]+)" AND CMAKE_MATCH_1 GREATER_EQUAL 9)
    set(TCONV_HAVE_CUDNN ON)
  endif()
endif()
message(STATUS "tconv CUDA backend: architectures ${CMAKE_CUDA_ARCHITECTURES}; cuDNN: ${TCONV_HAVE_CUDNN} "
               "(${TCONV_CUDNN_LIBRARY})")
if(TCONV_HAVE_CUDNN)
  list(APPEND TCONV_CUDA_BACKEND_SOURCES ${CMAKE_CURRENT_LIST_DIR}/cuda_cudnn.cu)
  # Source properties are per directory: name the directory of the tconv target.
  set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/cuda_algorithms.cpp TARGET_DIRECTORY tconv PROPERTIES
                              COMPILE_DEFINITIONS TCONV_HAVE_CUDNN=1)
  target_include_directories(tconv PRIVATE ${TCONV_CUDNN_INCLUDE_DIR})
  target_link_libraries(tconv PUBLIC ${TCONV_CUDNN_LIBRARY})
endif()

target_sources(tconv PRIVATE ${TCONV_CUDA_BACKEND_SOURCES})
target_link_libraries(tconv PUBLIC CUDA::cudart)
# Device code: line info for compute-sanitizer reports; no -G (slow).
target_compile_options(tconv PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo --expt-relaxed-constexpr>)
set_target_properties(tconv PROPERTIES CUDA_SEPARABLE_COMPILATION OFF CUDA_RESOLVE_DEVICE_SYMBOLS ON)
# The tconv target is created before CUDA is enabled, so it did not pick up CMAKE_CUDA_ARCHITECTURES.
set_target_properties(tconv PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
