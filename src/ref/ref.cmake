target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/cpu_ref_f64.cpp)
