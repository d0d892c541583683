# The Debian package (make deb): CPack's DEB generator over this project's own install rules,
# for a build configured with CMAKE_INSTALL_PREFIX=/usr, so that the paths compiled into
# cowherd and written into the unit are the ones the package installs.
option(COWHERD_MANPAGES "Generate and install cowherd(8), cowctl(1) and cowherd.yaml(5)" OFF)
if(COWHERD_MANPAGES)
  # make deb builds what the package installs; without this, cpack would build every
  # example and benchmark first.
  set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
  set(COWHERD_MAN_DIR ${CMAKE_BINARY_DIR}/man)
  set(COWHERD_MAN_PAGES ${COWHERD_MAN_DIR}/cowherd.8.gz ${COWHERD_MAN_DIR}/cowctl.1.gz
                        ${COWHERD_MAN_DIR}/cowherd.yaml.5.gz)
  add_custom_command(
    OUTPUT ${COWHERD_MAN_PAGES}
    COMMAND ${CMAKE_SOURCE_DIR}/packaging/man/make-man.sh $<TARGET_FILE_DIR:cowherd>
            ${CMAKE_SOURCE_DIR} ${COWHERD_MAN_DIR} ${PROJECT_VERSION}
    DEPENDS cowherd cowctl ${CMAKE_SOURCE_DIR}/packaging/man/make-man.sh
            ${CMAKE_SOURCE_DIR}/packaging/man/cowherd.h2m
            ${CMAKE_SOURCE_DIR}/packaging/man/cowctl.h2m ${CMAKE_SOURCE_DIR}/config/README.md
    COMMENT "Man pages from --help (help2man) and config/README.md (pandoc)")
  add_custom_target(man ALL DEPENDS ${COWHERD_MAN_PAGES})
  install(FILES ${COWHERD_MAN_DIR}/cowherd.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
  install(FILES ${COWHERD_MAN_DIR}/cowctl.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  install(FILES ${COWHERD_MAN_DIR}/cowherd.yaml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cowherd)
set(CPACK_PACKAGE_VENDOR cowherd)
set(CPACK_PACKAGE_CONTACT "cowherd maintainers <cowherd@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "container-style process supervisor for pools of workers")
set(CPACK_PACKAGE_DESCRIPTION
    "cowherd runs pools of workers, restarts them by policy with backoff, reaps every child \
(as a subreaper, or PID 1 in a container) and is driven by cowctl over a Unix socket.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# The install rules name /etc/cowherd and the unit's directory by absolute path.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE https://github.com/cowherd/cowherd)
# Runtime dependencies are what dpkg-shlibdeps finds in the binaries, never a list kept by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# /etc/cowherd/cowherd.yaml is the admin's: an upgrade asks before replacing an edited one,
# remove keeps it, purge deletes it.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
                                       ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
