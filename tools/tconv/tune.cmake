# `tconv tune` (cmd_tune.cpp): fills a plan cache from a suite (docs/tuning.md). It shares the suite geometry
# helper of `tconv bench` (cmd_bench.cpp), so it is offered when that command is in the tree.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/cmd_tune.cpp AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/cmd_bench.cpp)
  list(APPEND _tconv_cli_sources ${CMAKE_CURRENT_LIST_DIR}/cmd_tune.cpp)
  list(APPEND _tconv_cli_defs TCONV_HAVE_CMD_TUNE=1)
endif()
