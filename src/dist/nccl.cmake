# Finds NCCL for the communicator: sets TCONV_HAVE_NCCL, TCONV_NCCL_INCLUDE_DIR, TCONV_NCCL_LIBRARY.
# Looked for, in this order: NCCL_ROOT (cache or environment), the CUDA toolkit's folders (CUDA 13 ships
# nccl.h and libnccl.so there), and the Python wheel nvidia-nccl-cu13 / -cu12 (site-packages/nvidia/nccl/
# {include,lib}, what PyTorch's GPU images carry; its lib folder has only libnccl.so.2). Only with the
# CUDA backend: NCCL moves device memory.
set(TCONV_HAVE_NCCL OFF)
if(NOT TCONV_HAVE_CUDA OR TCONV_NCCL STREQUAL "OFF")
  if(TCONV_NCCL STREQUAL "ON")
    message(FATAL_ERROR "TCONV_NCCL=ON needs the CUDA backend (TCONV_CUDA is ${TCONV_CUDA}, no CUDA compiler in use)")
  endif()
  message(STATUS "tconv NCCL communicator: OFF (CUDA backend: ${TCONV_HAVE_CUDA}, TCONV_NCCL=${TCONV_NCCL})")
  return()
endif()

# The wheel's folder, asked of each Python interpreter that may hold it.
set(_nccl_wheel_dirs)
set(_nccl_pythons)
if(Python3_EXECUTABLE)
  list(APPEND _nccl_pythons ${Python3_EXECUTABLE})
endif()
find_program(_tconv_python3 NAMES python3)
if(_tconv_python3)
  list(APPEND _nccl_pythons ${_tconv_python3})
endif()
if(EXISTS /usr/bin/python3)
  list(APPEND _nccl_pythons /usr/bin/python3)
endif()
list(REMOVE_DUPLICATES _nccl_pythons)
foreach(_py ${_nccl_pythons})
  execute_process(COMMAND ${_py} -c "import nvidia.nccl as m; print(list(m.__path__)[0])"
                  OUTPUT_VARIABLE _dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND IS_DIRECTORY "${_dir}")
    list(APPEND _nccl_wheel_dirs ${_dir})
  endif()
endforeach()

find_path(TCONV_NCCL_INCLUDE_DIR nccl.h
          HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT} ${_nccl_wheel_dirs}
          PATH_SUFFIXES include)
find_library(TCONV_NCCL_LIBRARY NAMES nccl libnccl.so.2
             HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT} ${_nccl_wheel_dirs}
             PATH_SUFFIXES lib lib64)

# ncclRedOpCreatePreMulSum needs 2.11, ncclGetLastError 2.13.
set(_nccl_version "")
if(TCONV_NCCL_INCLUDE_DIR AND TCONV_NCCL_LIBRARY)
  file(STRINGS ${TCONV_NCCL_INCLUDE_DIR}/nccl.h _nccl_defs REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) +[0-9]+")
  foreach(_part MAJOR MINOR PATCH)
    string(REGEX MATCH "NCCL_${_part} +([0-9]+)" _m "${_nccl_defs}")
    set(_nccl_${_part} ${CMAKE_MATCH_1})
  endforeach()
  set(_nccl_version "${_nccl_MAJOR}.${_nccl_MINOR}.${_nccl_PATCH}")
  if(_nccl_version VERSION_GREATER_EQUAL 2.13)
    set(TCONV_HAVE_NCCL ON)
  endif()
endif()
if(NOT TCONV_HAVE_NCCL AND TCONV_NCCL STREQUAL "ON")
  message(FATAL_ERROR "TCONV_NCCL=ON but no NCCL >= 2.13 was found (nccl.h: ${TCONV_NCCL_INCLUDE_DIR}, "
                      "library: ${TCONV_NCCL_LIBRARY}, version '${_nccl_version}'); set NCCL_ROOT")
endif()
message(STATUS "tconv NCCL communicator: ${TCONV_HAVE_NCCL} (NCCL ${_nccl_version}: ${TCONV_NCCL_LIBRARY})")
