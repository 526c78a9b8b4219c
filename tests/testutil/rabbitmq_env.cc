#include "testutil/rabbitmq_env.h"

#include <gtest/gtest.h>

namespace xa::test {

rabbitmq::AmqpOptions RabbitMqOptions() {
  Result<rabbitmq::AmqpOptions> options = RabbitMqOptionsFromEnv();
  if (options.ok()) return std::move(options).value();
  ADD_FAILURE() << options.status().ToString();
  rabbitmq::AmqpOptions nowhere;
  nowhere.host.clear();
  return nowhere;
}

}  // namespace xa::test
