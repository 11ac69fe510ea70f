# cuda_tc_wgrad (tc_wgrad.cu): tensor-core weight/bias gradients with a cp.async pipeline. Only with CUDA.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tc_wgrad.cu)
