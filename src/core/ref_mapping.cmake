target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/direction.cpp ${CMAKE_CURRENT_LIST_DIR}/convert.cpp)
