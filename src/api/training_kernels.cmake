# Training companions of the object API (owner: optimizers/neurons/loss): optimizers, neuron kernels, MSE loss.
target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/training_common.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/training_optimizer.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/training_kernels.cpp)
