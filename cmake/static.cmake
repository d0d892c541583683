# COWHERD_STATIC: cowherd and cowctl with no shared-library dependencies, for any container
# (FROM scratch included) and any distribution. Built from Debian's own archives: Boost.JSON,
# yaml-cpp and ncurses ship .a files, and spdlog and fmt are used header-only (Debian's
# libspdlog is built against a shared libfmt, which a static link cannot take).
#
# User and group names (`user:`, `group:`, `socket_group`) still resolve: glibc 2.34 and later
# build the `files` NSS backend into libc, static libc.a included, so /etc/passwd and
# /etc/group are read with no libnss_*.so. Other backends named in /etc/nsswitch.conf (ldap,
# sss, systemd) would be dlopen()ed from the host's glibc, which a static binary cannot rely
# on: README.md says so. GNU ld warns about getpwnam & co. in a static link for that reason.
option(COWHERD_STATIC "Link cowherd and cowctl statically (no shared-library dependencies)" OFF)
if(NOT COWHERD_STATIC)
  return()
endif()
if(COWHERD_SANITIZE OR COWHERD_TSAN OR COWHERD_FUZZ)
  message(FATAL_ERROR "COWHERD_STATIC does not combine with the sanitizer or fuzzing builds")
endif()

# Every find_library below (Boost, ncurses, yaml-cpp) picks an archive, never a .so.
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
set(Boost_USE_STATIC_LIBS ON)
add_link_options(-static)

# Debian's libncursesw.so is a linker script that pulls in libtinfo; the archive does not, and
# FindCurses looks for a "tinfow" that Debian does not have.
find_library(CURSES_EXTRA_LIBRARY NAMES tinfo REQUIRED)

find_package(fmt REQUIRED)
add_library(spdlog::spdlog INTERFACE IMPORTED)
set_target_properties(spdlog::spdlog PROPERTIES INTERFACE_COMPILE_DEFINITIONS SPDLOG_FMT_EXTERNAL
                                                INTERFACE_LINK_LIBRARIES fmt::fmt-header-only)

# Debian's yaml-cpp CMake config names only the shared library; the archive sits beside it.
find_library(COWHERD_YAML_CPP_ARCHIVE NAMES yaml-cpp REQUIRED)
find_path(COWHERD_YAML_CPP_INCLUDE yaml-cpp/yaml.h REQUIRED)
add_library(yaml-cpp STATIC IMPORTED)
set_target_properties(yaml-cpp PROPERTIES IMPORTED_LOCATION ${COWHERD_YAML_CPP_ARCHIVE}
                                          INTERFACE_INCLUDE_DIRECTORIES ${COWHERD_YAML_CPP_INCLUDE})
