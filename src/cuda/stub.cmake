# Without the CUDA backend (or until its fragment replaces this one): no CUDA algorithms, CUDA unavailable.
if(NOT TCONV_CUDA_BACKEND_SOURCES)
  target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/stub.cpp)
endif()
