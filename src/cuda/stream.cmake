# Bandwidth-bound CUDA algorithms for depthwise and few-channel layers (cuda_stream_depthwise,
# cuda_few_channels): stream_*.cu beside this file. Nothing to add without the CUDA backend.
# The tiled depthwise kernels' plan is plain C++, built in every configuration: the registry tests check it.
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/stream_depthwise_plan.cpp)
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/stream_reduce.cu
    ${CMAKE_CURRENT_LIST_DIR}/stream_depthwise.cu
    ${CMAKE_CURRENT_LIST_DIR}/stream_depthwise_tiled.cu
    ${CMAKE_CURRENT_LIST_DIR}/stream_few.cu
    ${CMAKE_CURRENT_LIST_DIR}/stream_few_fwd.cu
    ${CMAKE_CURRENT_LIST_DIR}/stream_few_bwd_data.cu
    ${CMAKE_CURRENT_LIST_DIR}/stream_few_bwd_weights.cu)
