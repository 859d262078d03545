# Man pages (make install and the package) and `make package`: a Debian
# package, built by CPack's DEB generator from what `make install` installs
# with prefix /usr, plus what only a Debian package has (the conffile
# /etc/jarvis/jarvisd.conf, copyright, changelog, maintainer scripts).
# scripts/debian/ holds those files; tests/pkg/package_test.sh checks the
# result with dpkg-deb, systemd-analyze and lintian.
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/jarvisd.8
    DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/jarvisctl.1
    DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/scripts/jarvisd.conf
    DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME jarvisd.conf.example)

set(JV_PACKAGE_CONTACT
    "Jarvis maintainers <maintainers@users.noreply.b-seed-080a7a80.example>"
    CACHE STRING "Maintainer of the Debian package (Name <address>)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME jarvis)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${JV_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Installed binaries carry no debug information (RelWithDebInfo builds).
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "replicated peer-to-peer store for metrics, audit log and configuration
Jarvis keeps metrics (counters), an audit log, configuration and an archive
in SQLite on every node, and replicates them between nodes as signed CRDT
batches. Nodes keep accepting writes while cut off from each other and
converge once they talk again.
.
This package ships the node daemon jarvisd with its systemd unit, the admin
CLI jarvisctl with its bash completion, and the operations guide.")
# Libraries found by dpkg-shlibdeps; the rest by hand: adduser makes the
# jarvis user (postinst), completion needs bash-completion's helpers,
# the unit reloads with /bin/kill (procps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, bash-completion, procps")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/scripts/debian/conffiles
    ${PROJECT_SOURCE_DIR}/scripts/debian/postinst
    ${PROJECT_SOURCE_DIR}/scripts/debian/prerm
    ${PROJECT_SOURCE_DIR}/scripts/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# Files only the package has are added to CPack's staging tree just before
# it is packed (scripts/debian/files.cmake); CPACK_JV_* reach that script.
string(TIMESTAMP CPACK_JV_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(CPACK_JV_SOURCE_DIR ${PROJECT_SOURCE_DIR})
set(CPACK_JV_DEFAULT_CONFIG ${JV_DEFAULT_CONFIG})
set(CPACK_JV_DOCDIR ${CMAKE_INSTALL_DOCDIR})
set(CPACK_JV_MANDIR ${CMAKE_INSTALL_MANDIR})
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/scripts/debian/files.cmake)

include(CPack)
