# The main job (`tconv train`, `tconv reconstruct`; issue 6): the Fashion-MNIST auto-encoder built on the
# object API. Its helpers live beside cmd_train.cpp; zlib reads the gzip-compressed IDX files.
find_package(ZLIB REQUIRED)
set(_tconv_train_sources
  ${CMAKE_CURRENT_LIST_DIR}/train_data.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train_parallel.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train_png.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train_processes.cpp
  ${CMAKE_CURRENT_LIST_DIR}/train_progress.cpp)
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/train_model.cpp)
  list(APPEND _tconv_train_sources ${CMAKE_CURRENT_LIST_DIR}/train_model.cpp)
endif()
list(APPEND _tconv_cli_sources ${_tconv_train_sources})
# tconv_cli is created after the fragments are read (tools/tconv/CMakeLists.txt): link zlib once it exists.
cmake_language(DEFER CALL target_link_libraries tconv_cli PRIVATE ZLIB::ZLIB)

# Tests (label "train"): unit tests of the reader, random numbers and drawing, and — once the model is in
# the tree — a short training run that must lower the loss and reload to identical outputs.
if(TCONV_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
  set(_train_test_sources ${PROJECT_SOURCE_DIR}/tests/train_app/test_train_io.cpp
                           ${PROJECT_SOURCE_DIR}/tests/dist/train_parallel_test.cpp ${_tconv_train_sources})
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/train_model.cpp)
    list(APPEND _train_test_sources ${PROJECT_SOURCE_DIR}/tests/train_app/test_train_model.cpp)
  endif()
  add_executable(train_app_tests ${_train_test_sources})
  target_include_directories(train_app_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(train_app_tests PRIVATE tconv ZLIB::ZLIB GTest::gtest GTest::gtest_main)
  # The top level enables testing only after tools/ has been read, so tests declared in this folder would
  # not reach ctest: register them from the top-level directory once it has been read (PRE_TEST discovery
  # adds no build step, so it may be declared outside the target's folder).
  function(_tconv_register_train_app_tests)
    include(GoogleTest)  # sets the discovery script path in this (top-level) scope
    gtest_discover_tests(train_app_tests DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                         PROPERTIES LABELS train TIMEOUT 600)
    # The command line end to end: train a little, reload, reproduce the test MSE exactly.
    add_test(NAME train_cli_short_run
             COMMAND ${CMAKE_COMMAND} -DTCONV=$<TARGET_FILE:tconv_cli>
                     -DWORK=${CMAKE_BINARY_DIR}/train_cli_short_run -P ${PROJECT_SOURCE_DIR}/tests/train_app/cli_short_run.cmake)
    set_tests_properties(train_cli_short_run PROPERTIES LABELS train TIMEOUT 900)
    # Data-parallel end to end (--gpus 1 = --device cuda bit for bit; --gpus 2 where there are 2 GPUs).
    # Skipped without a GPU or NCCL.
    add_test(NAME train_gpus
             COMMAND ${CMAKE_COMMAND} -DTCONV=$<TARGET_FILE:tconv_cli> -DWORK=${CMAKE_BINARY_DIR}/train_gpus
                     -P ${PROJECT_SOURCE_DIR}/tests/dist/train_gpus.cmake)
    set_tests_properties(train_gpus PROPERTIES LABELS "train;dist" TIMEOUT 900 SKIP_REGULAR_EXPRESSION "SKIPPED:")
    # Against the PyTorch peer, with Debian's interpreter (the one that has torch).
    if(EXISTS /usr/bin/python3)
      add_test(NAME train_peer_check
               COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/train_app/peer_check.py $<TARGET_FILE:tconv_cli>
                       ${CMAKE_BINARY_DIR}/train_peer_check)
      set_tests_properties(train_peer_check PROPERTIES LABELS train TIMEOUT 900)
    endif()
  endfunction()
  cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _tconv_register_train_app_tests)
endif()
