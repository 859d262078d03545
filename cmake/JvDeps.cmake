# Finds every external dependency as an imported target. A missing one fails
# configure with the Debian package that provides it.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
    message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config "
        "(or run scripts/deps.sh)")
endif()

function(jv_require_pkg target module debpkg)
    pkg_check_modules(${target} QUIET IMPORTED_TARGET GLOBAL ${module})
    if(NOT ${target}_FOUND)
        message(FATAL_ERROR "${module} not found: apt-get install ${debpkg} "
            "(or run scripts/deps.sh)")
    endif()
endfunction()

jv_require_pkg(SODIUM  libsodium libsodium-dev)
jv_require_pkg(SQLITE  sqlite3   libsqlite3-dev)
jv_require_pkg(MSGPACK msgpack   libmsgpack-dev)
jv_require_pkg(UV      libuv     libuv1-dev)
# 2.14: object keys with their length (node/jsonout.c).
jv_require_pkg(JANSSON "jansson>=2.14" libjansson-dev)
jv_require_pkg(CURL    libcurl   libcurl4-openssl-dev)
jv_require_pkg(ZSTD    libzstd   libzstd-dev)
if(JV_BUILD_TESTS)
    jv_require_pkg(CMOCKA cmocka libcmocka-dev)
endif()

# nng ships a CMake package on Debian, no pkg-config file.
find_package(nng CONFIG QUIET)
if(NOT nng_FOUND)
    message(FATAL_ERROR "nng not found: apt-get install libnng-dev "
        "(or run scripts/deps.sh)")
endif()

# http-parser ships neither; find header and library directly.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
find_library(HTTP_PARSER_LIBRARY http_parser)
if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
    message(FATAL_ERROR "http-parser not found: apt-get install "
        "libhttp-parser-dev (or run scripts/deps.sh)")
endif()
add_library(jv_http_parser INTERFACE)
target_include_directories(jv_http_parser INTERFACE ${HTTP_PARSER_INCLUDE_DIR})
target_link_libraries(jv_http_parser INTERFACE ${HTTP_PARSER_LIBRARY})

find_package(Threads REQUIRED)
