# The rooms test: every #include of the source tree points down the rooms of ARCHITECTURE.md,
# never up or sideways; spawn/ and supervise/ never reach asio, even through a header; the
# child's files include nothing but system headers and spawn/.
#
#   cmake -DROOT=<source tree> -P check_rooms.cmake
#
# Exits non-zero with one line per broken rule. tests/rooms/plant_upward.cmake runs it on a
# copy with an upward include planted, and expects exactly that failure.

cmake_minimum_required(VERSION 3.20)

if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source tree> -P check_rooms.cmake")
endif()

# Rank of each room: a file may include its own room and rooms of a lower rank. logs, memory and
# probe share a rank and may not include each other.
set(rank_core 0)
set(rank_config 1)
set(rank_daemon/spawn 2)
set(rank_daemon/os 3)
set(rank_daemon/supervise 4)
set(rank_daemon/logs 5)
set(rank_daemon/memory 5)
set(rank_daemon/probe 5)
set(rank_daemon/control 6)
set(rank_daemon 7)
set(rank_ctl 7)

function(room_of path out)
  foreach(r daemon/spawn daemon/os daemon/supervise daemon/logs daemon/memory daemon/probe
          daemon/control)
    if(path MATCHES "^${r}/")
      set(${out} ${r} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  foreach(r core config daemon ctl)
    if(path MATCHES "^${r}/")
      set(${out} ${r} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

set(problems "")
file(GLOB_RECURSE sources RELATIVE "${ROOT}" "${ROOT}/core/*.[ch]pp" "${ROOT}/config/*.[ch]pp"
     "${ROOT}/daemon/*.[ch]pp" "${ROOT}/ctl/*.[ch]pp")
list(SORT sources)

# Project includes of every file, and whether it names asio itself.
foreach(src IN LISTS sources)
  file(STRINGS "${ROOT}/${src}" lines REGEX "^[ \t]*#[ \t]*include")
  set(inc_${src} "")
  set(asio_${src} FALSE)
  set(system_only_${src} TRUE)
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      list(APPEND inc_${src} "${CMAKE_MATCH_1}")
    elseif(line MATCHES "boost/asio")
      set(asio_${src} TRUE)
    endif()
  endforeach()
endforeach()

# Direction.
foreach(src IN LISTS sources)
  room_of("${src}" from)
  if(from STREQUAL "")
    continue()
  endif()
  foreach(inc IN LISTS inc_${src})
    room_of("${inc}" to)
    if(to STREQUAL "" OR to STREQUAL from)
      continue()
    endif()
    if(from STREQUAL "ctl" AND NOT to STREQUAL "core")
      list(APPEND problems "${src}: includes ${inc} (ctl/ may include core/ alone)")
    elseif(NOT rank_${to} LESS rank_${from})
      list(APPEND problems "${src}: includes ${inc}, which is in ${to}, not below ${from}")
    endif()
  endforeach()
endforeach()

# asio, followed through project headers.
function(reaches_asio file out)
  set(seen "${file}")
  set(todo "${file}")
  while(todo)
    list(POP_FRONT todo f)
    if(asio_${f})
      set(${out} "${f}" PARENT_SCOPE)
      return()
    endif()
    foreach(inc IN LISTS inc_${f})
      if(DEFINED inc_${inc} AND NOT inc IN_LIST seen)
        list(APPEND seen "${inc}")
        list(APPEND todo "${inc}")
      endif()
    endforeach()
  endwhile()
  set(${out} "" PARENT_SCOPE)
endfunction()

foreach(src IN LISTS sources)
  if(src MATCHES "^daemon/(spawn|supervise)/")
    reaches_asio("${src}" via)
    if(via)
      list(APPEND problems "${src}: reaches boost/asio (through ${via})")
    endif()
  endif()
endforeach()

# The child: what runs between clone and exec.
foreach(src daemon/spawn/spawn_child.cpp daemon/spawn/spawn_child.hpp daemon/spawn/clone3.cpp
        daemon/spawn/clone3.hpp)
  if(NOT DEFINED inc_${src})
    list(APPEND problems "${src}: missing (the child's files moved? update this test)")
    continue()
  endif()
  foreach(inc IN LISTS inc_${src})
    if(NOT inc MATCHES "^daemon/spawn/")
      list(APPEND problems "${src}: the child includes ${inc} (system headers and spawn/ only)")
    endif()
  endforeach()
endforeach()

list(LENGTH sources n)
if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "rooms: includes that break the rooms of ARCHITECTURE.md:\n  ${text}")
endif()
message(STATUS "rooms: ${n} files, every include points down")
