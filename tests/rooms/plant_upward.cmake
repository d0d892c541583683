# Proves the rooms test can fail: copies the tree's sources, plants one upward include (the
# os room reaching the control room) and one asio include in supervise/, and expects the
# check to name both.
#
#   cmake -DROOT=<source tree> -DWORK=<scratch dir> -P plant_upward.cmake

cmake_minimum_required(VERSION 3.20)

file(REMOVE_RECURSE "${WORK}")
foreach(room core config daemon ctl)
  file(COPY "${ROOT}/${room}" DESTINATION "${WORK}" FILES_MATCHING PATTERN "*.[ch]pp")
endforeach()
file(APPEND "${WORK}/daemon/os/reaper.hpp" "\n#include \"daemon/control/commands.hpp\"\n")
file(APPEND "${WORK}/daemon/supervise/worker.hpp" "\n#include <boost/asio/io_context.hpp>\n")

execute_process(COMMAND "${CMAKE_COMMAND}" -DROOT=${WORK} -P "${CMAKE_CURRENT_LIST_DIR}/check_rooms.cmake"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
file(REMOVE_RECURSE "${WORK}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the rooms check passed a tree with an upward include planted")
endif()
foreach(expect "daemon/os/reaper.hpp: includes daemon/control/commands.hpp"
        "daemon/supervise/worker.hpp: reaches boost/asio")
  string(FIND "${err}" "${expect}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the rooms check did not report '${expect}':\n${err}")
  endif()
endforeach()
message(STATUS "rooms: the planted includes were caught")
