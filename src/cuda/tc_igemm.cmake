# cuda_tc_igemm (tc_igemm.cu): pipelined tensor-core implicit GEMM for fwd and bwd_data; tc_round_check.cu: the
# device self-check of the tf32 rounding the tensor-core kernels share (tc_common.cuh), run by the CUDA tests.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tc_igemm.cu ${CMAKE_CURRENT_LIST_DIR}/tc_round_check.cu)
