# Packaging: one `blogscale` .deb and .rpm (CPack) holding every binary, the systemd
# units, sysusers.d/tmpfiles.d files, the default cluster file and the monitoring bundle.
# Included last by the top-level CMakeLists.txt, so every binary target is known here.
#
#   cmake --build build && cd build && cpack -G DEB     # blogscale_<version>_amd64.deb
#                                     cpack -G RPM     # blogscale-<version>-1.x86_64.rpm
#
# Why one package, the file layout and the maintainer scripts: docs/OPERATIONS.md.
#
# The system files below are in the CMake install component "system", which is
# EXCLUDE_FROM_ALL: a plain `cmake --install build` (or `ninja install`) installs only the
# binaries and never overwrites /etc/blogscale/cluster.yaml or units on the build machine.
# CPack installs both components into its staging tree (CPACK_INSTALL_CMAKE_PROJECTS):
# an install() rule elsewhere (e.g. hooks under ctl/) reaches the packages when it has no
# COMPONENT (= "Unspecified", like the binaries) or COMPONENT system.

set(BL_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BL_PKG_MAINTAINER
    "blogscale maintainers <maintainers@users.noreply.r-seed-5f8c6a4d.example>"
    CACHE STRING "Maintainer of the deb/rpm packages (Name <email>)")

# --- files of the "system" component -----------------------------------------------------
# Paths are relative to CPACK_PACKAGING_INSTALL_PREFIX (/usr) except /etc.
set(BL_PKG_UNITDIR lib/systemd/system)
set(BL_PKG_UNITS ${BL_PKG_DIR}/systemd/blog-lb.service ${BL_PKG_DIR}/systemd/blog-node@.service)
# blog-ctld (issue 8) may not exist yet: its unit ships only when its binary does, so the
# packages build either way.
if(TARGET blog-ctld)
    list(APPEND BL_PKG_UNITS ${BL_PKG_DIR}/systemd/blog-ctld.service)
endif()
install(FILES ${BL_PKG_UNITS} DESTINATION ${BL_PKG_UNITDIR}
        COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${BL_PKG_DIR}/systemd/blogscale.sysusers.conf DESTINATION lib/sysusers.d
        RENAME blogscale.conf COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${BL_PKG_DIR}/systemd/blogscale.tmpfiles.conf DESTINATION lib/tmpfiles.d
        RENAME blogscale.conf COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${BL_PKG_DIR}/cluster.yaml DESTINATION /etc/blogscale
        COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${BL_PKG_DIR}/monitoring/prometheus.yml ${BL_PKG_DIR}/monitoring/alerts.yml
              ${BL_PKG_DIR}/monitoring/grafana-dashboard.json
        DESTINATION share/blogscale/monitoring COMPONENT system EXCLUDE_FROM_ALL)

# blog-ctld's default scale hooks (issue 8), from ctl/hooks/ or packaging/hooks/ once they
# exist: /usr/lib/blogscale/hooks/ (the path DESIGN §6 shows for autoscale.scale_up).
file(GLOB BL_PKG_HOOKS ${PROJECT_SOURCE_DIR}/ctl/hooks/* ${BL_PKG_DIR}/hooks/*)
if(BL_PKG_HOOKS)
    install(PROGRAMS ${BL_PKG_HOOKS} DESTINATION lib/blogscale/hooks
            COMPONENT system EXCLUDE_FROM_ALL)
endif()

# /usr/share/doc/blogscale: copyright, a Debian-format changelog (lintian requires both),
# the operator docs and examples.
set(BL_PKG_VERSION ${PROJECT_VERSION})
configure_file(${BL_PKG_DIR}/doc/changelog.in ${CMAKE_CURRENT_BINARY_DIR}/pkg/changelog @ONLY)
execute_process(COMMAND gzip -9nf ${CMAKE_CURRENT_BINARY_DIR}/pkg/changelog
                RESULT_VARIABLE BL_PKG_GZIP_RC)
if(NOT BL_PKG_GZIP_RC EQUAL 0)
    message(FATAL_ERROR "packaging: gzip of the changelog failed")
endif()
# Manual pages, compressed as Debian wants them (gzip -9n: no name or time stamp).
set(BL_PKG_MANPAGES blog-lb.8 blog-node.8 blogctl.1)
if(TARGET blog-ctld)
    list(APPEND BL_PKG_MANPAGES blog-ctld.8)
endif()
foreach(page ${BL_PKG_MANPAGES})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
    configure_file(${BL_PKG_DIR}/man/${page} ${CMAKE_CURRENT_BINARY_DIR}/pkg/${page} COPYONLY)
    execute_process(COMMAND gzip -9nf ${CMAKE_CURRENT_BINARY_DIR}/pkg/${page}
                    RESULT_VARIABLE BL_PKG_GZIP_RC)
    if(NOT BL_PKG_GZIP_RC EQUAL 0)
        message(FATAL_ERROR "packaging: gzip of ${page} failed")
    endif()
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pkg/${page}.gz DESTINATION share/man/man${section}
            COMPONENT system EXCLUDE_FROM_ALL)
endforeach()
install(FILES ${BL_PKG_DIR}/doc/copyright ${CMAKE_CURRENT_BINARY_DIR}/pkg/changelog.gz
        DESTINATION share/doc/blogscale COMPONENT system EXCLUDE_FROM_ALL)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION share/doc/blogscale
        COMPONENT system EXCLUDE_FROM_ALL FILES_MATCHING PATTERN "*.md")
install(FILES ${PROJECT_SOURCE_DIR}/examples/local.yaml ${PROJECT_SOURCE_DIR}/examples/full.yaml
              ${BL_PKG_DIR}/doc/50-blogscale.rules
        DESTINATION share/doc/blogscale/examples COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${BL_PKG_DIR}/deb/blogscale.lintian-overrides DESTINATION share/lintian/overrides
        RENAME blogscale COMPONENT system EXCLUDE_FROM_ALL)

# --- common -----------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME blogscale)
set(CPACK_PACKAGE_VENDOR "blogscale")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${BL_PKG_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "blogging API cluster: load balancer, API nodes, admin CLI")
set(CPACK_PACKAGE_DESCRIPTION
    "blogscale serves a blogging API (posts and assets over HTTP/JSON) at high
request rates. blog-lb routes each post id to its owner node through a Maglev
consistent-hash table; blog-node answers the API from an embedded LMDB store
(or MongoDB) behind a hot in-process cache kept coherent by Redis pub/sub;
blog-ctld scales the node pool through hooks; blogctl drives it all. One YAML
file, /etc/blogscale/cluster.yaml, describes the cluster.
.
The package ships systemd units (blog-lb, blog-node@NAME, blog-ctld), none
enabled on install, and a Prometheus/Grafana monitoring bundle in
/usr/share/blogscale/monitoring.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_CMAKE_PROJECTS
    "${CMAKE_BINARY_DIR};${PROJECT_NAME};Unspecified;/"
    "${CMAKE_BINARY_DIR};${PROJECT_NAME};system;/")
set(CPACK_GENERATOR DEB RPM)
set(CPACK_SOURCE_GENERATOR "")

# --- deb (Debian 12) ---------------------------------------------------------------------
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${BL_PKG_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION web)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps on the stripped binaries (libev4, libssl3,
# libhiredis0.14, libmongoc-1.0-0, libbson-1.0-0, libyaml-0-2, libmicrohttpd12, liblmdb0,
# libjansson4, libxxhash0, libc6 with the versions the build needed); adduser is for the
# postinst's fallback when systemd-sysusers is absent.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server, lmdb-utils")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus, openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${BL_PKG_DIR}/deb/postinst ${BL_PKG_DIR}/deb/prerm ${BL_PKG_DIR}/deb/postrm
    ${BL_PKG_DIR}/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

# --- rpm (best effort for Fedora/RHEL, see docs/OPERATIONS.md) ---------------------------
# rpmbuild adds soname requirements (libev.so.4()(64bit), ...) from the binaries; the names
# below are the Fedora/EPEL packages holding those libraries. An rpm built here links
# Debian's sonames (hiredis 0.14): build it on the target distribution to install it there.
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "LicenseRef-not-yet-declared")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_REQUIRES
    "libev, openssl-libs, hiredis, mongo-c-driver-libs, libyaml, libmicrohttpd, lmdb-libs, jansson, xxhash-libs")
set(CPACK_RPM_PACKAGE_REQUIRES_POST "systemd, shadow-utils")
# CPack 3.25 cannot tell that this rpmbuild supports weak dependencies, so the Recommends
# tag goes in through the spec preamble; no /usr/lib/.build-id links (no debuginfo
# package to match them).
set(CPACK_RPM_SPEC_MORE_DEFINE "%global _build_id_links none\nRecommends: redis")
set(CPACK_PACKAGE_RELOCATABLE OFF)
string(REPLACE "\n.\n" "\n\n" CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${BL_PKG_DIR}/rpm/post.sh)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${BL_PKG_DIR}/rpm/preun.sh)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${BL_PKG_DIR}/rpm/postun.sh)
set(CPACK_RPM_USER_FILELIST "%config(noreplace) /etc/blogscale/cluster.yaml"
    "%exclude /usr/share/lintian/overrides/blogscale")
# Directories owned by filesystem/systemd packages, not by blogscale.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/lib/systemd /usr/lib/systemd/system /usr/lib/sysusers.d /usr/lib/tmpfiles.d
    /usr/share/lintian /usr/share/lintian/overrides)

include(CPack)
