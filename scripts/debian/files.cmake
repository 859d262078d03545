# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) on its staging tree before it is
# packed: adds what only the Debian package has and compresses man pages
# and the changelog as Debian policy asks (gzip -9n: no name, no time).
set(root ${CPACK_TEMPORARY_INSTALL_DIRECTORY})
set(src ${CPACK_JV_SOURCE_DIR})
set(doc ${root}/usr/${CPACK_JV_DOCDIR})

function(gzip_n file)
    execute_process(COMMAND gzip -9nf ${file} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "gzip -9n ${file} failed")
    endif()
endfunction()

# The default config, a conffile (scripts/debian/conffiles).
get_filename_component(confdir ${CPACK_JV_DEFAULT_CONFIG} DIRECTORY)
file(COPY ${src}/scripts/jarvisd.conf DESTINATION ${root}${confdir}
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

file(COPY ${src}/scripts/debian/copyright DESTINATION ${doc}
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
set(version ${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})
file(READ ${src}/scripts/debian/changelog.in text)
string(REPLACE "@VERSION@" "${version}" text "${text}")
string(REPLACE "@MAINTAINER@" "${CPACK_PACKAGE_CONTACT}" text "${text}")
string(REPLACE "@DATE@" "${CPACK_JV_DATE}" text "${text}")
file(WRITE ${doc}/changelog.Debian "${text}")
gzip_n(${doc}/changelog.Debian)

file(GLOB_RECURSE pages ${root}/usr/${CPACK_JV_MANDIR}/*.[1-9])
foreach(page IN LISTS pages)
    gzip_n(${page})
endforeach()

# Tags that do not apply to a package built outside Debian, with the reason.
file(MAKE_DIRECTORY ${root}/usr/share/lintian/overrides)
file(COPY_FILE ${src}/scripts/debian/lintian-overrides
    ${root}/usr/share/lintian/overrides/jarvis)
