# Debian packages from CPack (`cpack -G DEB` in a build configured with -DBUILD_SHARED_LIBS=ON
# and -DCMAKE_INSTALL_PREFIX=/usr: scripts/package-test.sh builds, installs and removes them).
#
#   libxa<soversion>  the shared libraries: libxa, libxa_mysql, libxa_odbc (component runtime)
#   libxa-dev         headers, the CMake package, the pkg-config files, the .so links (dev)
#   xa-tools          xa-recover, xa-log and xa-agent, their man pages and xa-agent's systemd
#                     unit (tools)
#
# Each package's dependencies on Debian's libraries come from dpkg-shlibdeps (libboost-log,
# libodbc, libmysqlcppconn, libssl, libstdc++ ...), the -dev package's on the -dev packages its
# CMake and pkg-config files need, and the packages of one build depend on each other at exactly
# their version. The version is the project's (CMakeLists.txt), release 1.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME xa)
set(CPACK_PACKAGE_VENDOR "xa")
set(CPACK_PACKAGE_CONTACT "xa maintainers <xa-maintainers@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Distributed transactions for C++: 2PC and 3PC over XA with a durable decision log")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>-<release>_<arch>.deb
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev tools)

set(xa_deb_version "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")
set(xa_runtime_package "libxa${XA_SOVERSION}")

set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Where dpkg-shlibdeps finds our own libraries when it reads the tools' dependencies.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS
  ${CMAKE_BINARY_DIR} ${CMAKE_BINARY_DIR}/drivers/mysql ${CMAKE_BINARY_DIR}/drivers/odbc)
# A shlibs file and the ldconfig trigger in the runtime package.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${xa_runtime_package})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "xa's shared libraries: the transaction manager, its decision log and recovery, and the MySQL Connector/C++ and unixODBC resource managers")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libxa-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "${xa_runtime_package} (= ${xa_deb_version}), libboost-log-dev (>= 1.74), libssl-dev, libmysqlcppconn-dev, unixodbc-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "xa's headers, CMake package (find_package(xa)) and pkg-config files (xa, xa-mysql, xa-odbc)")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME xa-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "${xa_runtime_package} (= ${xa_deb_version})")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
  "xa-recover, the operator's recovery tool, xa-log, the decision log's read-only inspector, and xa-agent, the three-phase-commit participant agent, with their man pages and xa-agent's systemd unit")

include(CPack)
