# cuda_tap_gemm (tap_gemm.cu): data and weight gradients of layers with 1–4 output channels per group on the tensor
# cores, the kernel taps as the GEMM's k. Only with CUDA.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tap_gemm.cu)
