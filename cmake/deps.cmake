# Finds every third-party library through pkg-config (or the header for libev, which
# ships no .pc file) and stops with the Debian package to install when one is missing.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

function(bl_require_pkg target module debpkg)
    pkg_check_modules(${target} IMPORTED_TARGET ${module})
    if(NOT ${target}_FOUND)
        message(FATAL_ERROR "missing ${module}: apt-get install ${debpkg}  (or run scripts/install-deps.sh)")
    endif()
endfunction()

bl_require_pkg(YAML yaml-0.1 libyaml-dev)
bl_require_pkg(OPENSSL openssl libssl-dev)
bl_require_pkg(XXHASH libxxhash libxxhash-dev)
bl_require_pkg(MHD libmicrohttpd libmicrohttpd-dev)
bl_require_pkg(LMDB lmdb liblmdb-dev)
bl_require_pkg(HIREDIS hiredis libhiredis-dev)
bl_require_pkg(BSON libbson-1.0 libbson-dev)
bl_require_pkg(MONGOC libmongoc-1.0 libmongoc-dev)

find_path(EV_INCLUDE_DIR ev.h)
find_library(EV_LIBRARY ev)
if(NOT EV_INCLUDE_DIR OR NOT EV_LIBRARY)
    message(FATAL_ERROR "missing libev: apt-get install libev-dev  (or run scripts/install-deps.sh)")
endif()
add_library(bl_ev INTERFACE)
target_include_directories(bl_ev INTERFACE ${EV_INCLUDE_DIR})
target_link_libraries(bl_ev INTERFACE ${EV_LIBRARY})

if(BLOG_BUILD_TESTS)
    bl_require_pkg(CMOCKA cmocka libcmocka-dev)
    bl_require_pkg(CURL libcurl libcurl4-openssl-dev)
endif()
