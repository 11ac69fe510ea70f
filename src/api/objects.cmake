# The MPS-style object API (include/tconv/*.hpp): devices, buffers, command buffers, images, descriptors,
# data sources, states and the convolution kernels.
target_sources(tconv PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/device.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image.cpp
  ${CMAKE_CURRENT_LIST_DIR}/descriptor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/data_source.cpp
  ${CMAKE_CURRENT_LIST_DIR}/state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/common.cpp
  ${CMAKE_CURRENT_LIST_DIR}/coding.cpp
  ${CMAKE_CURRENT_LIST_DIR}/convolution_transpose.cpp
  ${CMAKE_CURRENT_LIST_DIR}/convolution_transpose_gradient.cpp
  ${CMAKE_CURRENT_LIST_DIR}/convolution.cpp)
