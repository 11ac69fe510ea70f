# cuda_simt_f32 (owner: fp32 SIMT kernels): true-float32 register-blocked implicit GEMMs for all three passes.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE
               ${CMAKE_CURRENT_LIST_DIR}/simt_f32.cu
               ${CMAKE_CURRENT_LIST_DIR}/simt_f32_gather.cu
               ${CMAKE_CURRENT_LIST_DIR}/simt_f32_wgrad.cu)
