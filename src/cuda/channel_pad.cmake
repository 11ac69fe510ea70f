# cuda_channel_pad (channel_pad.cu): odd channel counts on the tensor cores (bf16, fp16, tf32) by padding their
# channels into workspace buffers. Only with CUDA.
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/channel_pad.cu)
