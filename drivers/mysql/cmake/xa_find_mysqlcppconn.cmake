# Defines the imported target xa::mysqlcppconn for MySQL Connector/C++ 1.1 (Debian's
# libmysqlcppconn-dev: headers cppconn/*.h, library libmysqlcppconn), which ships no CMake package.
# Used by the build (drivers/mysql/CMakeLists.txt) and by installed consumers (xaConfig.cmake).
# Sets XA_MYSQLCPPCONN_FOUND. Hints: XA_MYSQLCPPCONN_INCLUDE_DIR, XA_MYSQLCPPCONN_LIBRARY.
if(TARGET xa::mysqlcppconn)
  set(XA_MYSQLCPPCONN_FOUND TRUE)
  return()
endif()
find_path(XA_MYSQLCPPCONN_INCLUDE_DIR NAMES cppconn/driver.h)
find_library(XA_MYSQLCPPCONN_LIBRARY NAMES mysqlcppconn)
if(XA_MYSQLCPPCONN_INCLUDE_DIR AND XA_MYSQLCPPCONN_LIBRARY)
  add_library(xa::mysqlcppconn UNKNOWN IMPORTED GLOBAL)
  set_target_properties(xa::mysqlcppconn PROPERTIES
    IMPORTED_LOCATION "${XA_MYSQLCPPCONN_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${XA_MYSQLCPPCONN_INCLUDE_DIR}")
  set(XA_MYSQLCPPCONN_FOUND TRUE)
else()
  set(XA_MYSQLCPPCONN_FOUND FALSE)
endif()
