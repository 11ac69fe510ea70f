# cuda_tc_igemm (tc_igemm.cu): pipelined tensor-core implicit GEMM for fwd and bwd_data.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tc_igemm.cu)
