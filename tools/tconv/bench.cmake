# tconv bench: the CPU side measures the machine's sgemm rate with OpenBLAS next to the layers; --device cuda
# (bench_cuda.cpp) measures the GPU's bf16 matrix rate with cuBLAS. cuBLAS is linked to the program only,
# and only in a build with CUDA; without it bench_cuda_stub.cpp says that CUDA is absent.
find_library(TCONV_OPENBLAS_LIBRARY openblas REQUIRED)
# The executable is created after the fragments are read; link OpenBLAS to it once it exists.
cmake_language(DEFER CALL target_link_libraries tconv_cli PRIVATE ${TCONV_OPENBLAS_LIBRARY})
if(TCONV_HAVE_CUDA)
  list(APPEND _tconv_cli_sources ${CMAKE_CURRENT_LIST_DIR}/bench_cuda.cpp)
  cmake_language(DEFER CALL target_link_libraries tconv_cli PRIVATE CUDA::cublas CUDA::cudart)
else()
  list(APPEND _tconv_cli_sources ${CMAKE_CURRENT_LIST_DIR}/bench_cuda_stub.cpp)
endif()
