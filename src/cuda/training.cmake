# The training companions' CUDA kernels (owner: device-resident training): neurons, MSE loss, optimizers.
# Nothing to add without the CUDA backend (stub.cpp reports them unavailable then).
if(NOT TCONV_HAVE_CUDA)
  return()
endif()
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/training_kernels.cu)
# The kernels must round like the CPU engine (built with -ffp-contract=off, IEEE division and square root,
# subnormals kept): no fused multiply-add, IEEE div/sqrt, no flush-to-zero — stated explicitly rather than
# relying on nvcc's defaults, so a global fast-math flag cannot silently change the results.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/training_kernels.cu TARGET_DIRECTORY tconv PROPERTIES
                            COMPILE_OPTIONS "-fmad=false;-prec-div=true;-prec-sqrt=true;-ftz=false")
