# Tests of the communicator (label "dist"), included by src/dist/CMakeLists.txt: tests/CMakeLists.txt does
# not list this folder, and src/ is read before the top level enables testing, so the target is made here
# and its tests are registered from the top-level directory once it has been read (PRE_TEST discovery adds
# no build step, so it may be declared outside the target's folder — as tools/tconv/train.cmake does).
# The GPU tests skip without NCCL or a CUDA device; the several-GPU tests with fewer than 2 GPUs.
find_package(GTest REQUIRED)
add_executable(dist_communicator_test ${CMAKE_CURRENT_LIST_DIR}/communicator_test.cpp)
target_include_directories(dist_communicator_test PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
target_link_libraries(dist_communicator_test PRIVATE tconv GTest::gtest GTest::gtest_main)
function(_tconv_register_dist_tests)
  include(GoogleTest)
  gtest_discover_tests(dist_communicator_test DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS dist TIMEOUT 300)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _tconv_register_dist_tests)
