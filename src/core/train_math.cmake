# Training companions' engine math (owner: optimizers/neurons/loss): optimizer update rules and element-wise
# neuron / MSE math. -ffp-contract=off keeps the documented float32 order of operations (docs/optimizers.md)
# independent of -march: no multiply-add is fused unless written so.
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/optimizer_math.cpp ${CMAKE_CURRENT_LIST_DIR}/pointwise.cpp)
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/optimizer_math.cpp ${CMAKE_CURRENT_LIST_DIR}/pointwise.cpp
                            TARGET_DIRECTORY tconv PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
