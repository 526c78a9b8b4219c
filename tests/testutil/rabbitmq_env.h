// RabbitMQ's 'xa_msg' account, from the environment the test servers write (XA_TEST_RABBITMQ_HOST,
// _PORT, _USER, _PASSWORD_FILE; see db_env.h), as the driver's options: the programs that talk to
// the broker themselves (the driver's tests, the msgd tests' consumers, the kill soak's worker)
// build them here, each setting its own timeouts on top.
//
// A missing variable is a failure, never a skip (as in db_env.h).

#ifndef XA_TESTS_TESTUTIL_RABBITMQ_ENV_H_
#define XA_TESTS_TESTUTIL_RABBITMQ_ENV_H_

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "xa/rabbitmq/amqp_connection.h"
#include "xa/status.h"

namespace xa::test {

// In a test: fails the current test naming what is missing, and then returns options without a
// host, which the driver refuses before it contacts any broker. Defined in rabbitmq_env.cc
// (xa_testutil, when the RabbitMQ driver is built).
rabbitmq::AmqpOptions RabbitMqOptions();

// Outside gtest (msgd_soak_worker, a process of its own that exits on this error): the options,
// or kConfig naming the first variable missing or the password file unreadable. Inline and free
// of gtest so that such a program needs none of the test support's libraries.
inline Result<rabbitmq::AmqpOptions> RabbitMqOptionsFromEnv() {
  std::string missing;
  auto require = [&missing](const char* name) -> std::string {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return value;
    if (missing.empty()) missing = name;
    return "";
  };
  rabbitmq::AmqpOptions options;
  options.host = require("XA_TEST_RABBITMQ_HOST");
  const std::string port = require("XA_TEST_RABBITMQ_PORT");
  options.user = require("XA_TEST_RABBITMQ_USER");
  const std::string password_file = require("XA_TEST_RABBITMQ_PASSWORD_FILE");
  if (!missing.empty()) {
    return Status(Code::kConfig, "environment variable " + missing +
                                     " is not set: run the tests through scripts/test.sh, or "
                                     "source build/servers/env.sh after scripts/servers.sh start");
  }
  const char* port_end = port.data() + port.size();
  auto [parsed_end, error] = std::from_chars(port.data(), port_end, options.port);
  if (error != std::errc() || parsed_end != port_end) {
    return Status(Code::kConfig, "XA_TEST_RABBITMQ_PORT is not a port number: " + port);
  }
  std::ifstream in(password_file);
  if (!in) return Status(Code::kConfig, "cannot read the password file " + password_file);
  std::stringstream password;
  password << in.rdbuf();
  options.password = password.str();
  // A trailing newline is the file's, not the password's (as db_env.h's ReadSecretFile reads it).
  while (!options.password.empty() &&
         (options.password.back() == '\n' || options.password.back() == '\r')) {
    options.password.pop_back();
  }
  return options;
}

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_RABBITMQ_ENV_H_
