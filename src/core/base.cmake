target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/error.cpp ${CMAKE_CURRENT_LIST_DIR}/types.cpp ${CMAKE_CURRENT_LIST_DIR}/problem.cpp ${CMAKE_CURRENT_LIST_DIR}/mps_geometry.cpp)
