# I/O (owner: io): atomic files, safetensors, the coder, .npy arrays. nlohmann-json parses safetensors headers;
# it stays private to the library (no public header includes it).
find_package(nlohmann_json 3.9 REQUIRED)
target_sources(tconv PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/files.cpp
  ${CMAKE_CURRENT_LIST_DIR}/safetensors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/coder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/npy.cpp)
target_link_libraries(tconv PRIVATE nlohmann_json::nlohmann_json)
