target_sources(tconv PRIVATE ${CMAKE_CURRENT_LIST_DIR}/registry.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/plan_cache.cpp
                             ${CMAKE_CURRENT_LIST_DIR}/tuner.cpp)
