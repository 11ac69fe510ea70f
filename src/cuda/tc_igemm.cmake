# cuda_tc_igemm: tc_igemm.cpp (the algorithm: declines, workspace, dispatch), tc_igemm_plan.cpp (its planner, plain
# C++), tc_igemm_{bf16,f16,tf32}.cu (the kernels of tc_igemm_kernels.cuh, one operand type per translation unit so
# that they compile in parallel); tc_round_check.cu: the device self-check of the tf32 rounding the tensor-core
# kernels share (tc_common.cuh), run by the CUDA tests.
# The planner is built without CUDA too: the registry tests check it on every machine.
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tc_igemm_plan.cpp)
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tc_igemm.cpp ${CMAKE_CURRENT_LIST_DIR}/tc_igemm_bf16.cu
                             ${CMAKE_CURRENT_LIST_DIR}/tc_igemm_f16.cu ${CMAKE_CURRENT_LIST_DIR}/tc_igemm_tf32.cu
                             ${CMAKE_CURRENT_LIST_DIR}/tc_round_check.cu)
