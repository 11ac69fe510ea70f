# Weight-store copies for the object API's device-side weight reload and export (owner: api weight stores).
# Included after cuda.cmake (fragments are included in sorted order), which sets TCONV_CUDA_BACKEND_SOURCES when
# the CUDA backend is built; without it the stub reports CUDA as absent, like stub.cmake's.
if(TCONV_CUDA_BACKEND_SOURCES)
  target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/weights_kernels.cu)
else()
  target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/weights_stub.cpp)
endif()
