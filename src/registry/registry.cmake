target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/registry.cpp)
