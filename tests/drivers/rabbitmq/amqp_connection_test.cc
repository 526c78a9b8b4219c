// The RabbitMQ driver against the real local broker: what a publisher confirm promises (a
// confirmed persistent message survives the broker's SIGKILL), what the broker refuses and how
// the driver says it, and the consumer's redelivery rules. Each test on queues of its own.

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/rabbitmq_env.h"
#include "testutil/test_secrets.h"
#include "xa/rabbitmq/amqp_connection.h"

namespace xa::rabbitmq {
namespace {

using test::RandomHex;

using namespace std::chrono_literals;

AmqpOptions Broker() {
  AmqpOptions options = test::RabbitMqOptions();
  options.connect_timeout = 3s;
  options.confirm_timeout = 5s;
  return options;
}

std::unique_ptr<AmqpPublisher> Publisher(const AmqpOptions& options = Broker()) {
  auto publisher = AmqpPublisher::Connect(options);
  EXPECT_TRUE(publisher.ok()) << publisher.status().ToString();
  return publisher.ok() ? std::move(publisher).value() : nullptr;
}

std::unique_ptr<AmqpConsumer> Consumer(const std::string& queue, uint16_t prefetch = 16) {
  auto consumer = AmqpConsumer::Connect(Broker(), queue, prefetch);
  EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
  return consumer.ok() ? std::move(consumer).value() : nullptr;
}

// The next delivery within `timeout`; nullopt (and a failure if `expected`) when none came.
std::optional<AmqpDelivery> NextDelivery(AmqpConsumer& consumer, bool expected = true,
                                         std::chrono::milliseconds timeout = 5s) {
  auto next = consumer.Next(timeout);
  EXPECT_TRUE(next.ok()) << next.status().ToString();
  if (!next.ok()) return std::nullopt;
  if (expected) {
    EXPECT_TRUE(next->has_value()) << "no delivery within " << timeout.count() << " ms";
  }
  return *next;
}

class AmqpDriverTest : public ::testing::Test {
 protected:
  std::string queue_ = "xa-driver-test-" + RandomHex(4);
};

TEST_F(AmqpDriverTest, ConfirmedMessageArrivesWithItsIdTypeHeadersAndBinaryBody) {
  auto publisher = Publisher();
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(publisher->DeclareQueue(queue_).ok());
  ASSERT_TRUE(publisher->DeclareQueue(queue_).ok()) << "declaring is idempotent";
  const std::string body("\x00\xff binary \x01\n", 12);
  Status published = publisher->Publish(queue_, "id-1", "application/octet-stream", body,
                                        {{"x-producer", "orders"}, {"x-type", "payment.booked"}});
  ASSERT_TRUE(published.ok()) << published.ToString();
  auto consumer = Consumer(queue_);
  ASSERT_NE(consumer, nullptr);
  auto delivery = NextDelivery(*consumer);
  ASSERT_TRUE(delivery.has_value());
  EXPECT_EQ(delivery->message_id, "id-1");
  EXPECT_EQ(delivery->content_type, "application/octet-stream");
  EXPECT_EQ(delivery->body, body);
  EXPECT_FALSE(delivery->redelivered);
  AmqpHeaders expected{{"x-producer", "orders"}, {"x-type", "payment.booked"}};
  EXPECT_EQ(delivery->headers, expected);
  ASSERT_TRUE(consumer->Ack(delivery->delivery_tag).ok());
  EXPECT_FALSE(NextDelivery(*consumer, /*expected=*/false, 300ms).has_value());
}

TEST_F(AmqpDriverTest, MessageNoQueueTakesIsRefusedAsUnroutableAndThePublisherGoesOn) {
  auto publisher = Publisher();
  ASSERT_NE(publisher, nullptr);
  Status unroutable = publisher->Publish(queue_, "id-1", "text/plain", "nobody declared it");
  EXPECT_EQ(unroutable.code(), Code::kRmError) << unroutable.ToString();
  EXPECT_NE(unroutable.message().find("unroutable"), std::string::npos) << unroutable.ToString();
  EXPECT_NE(unroutable.message().find(queue_), std::string::npos) << unroutable.ToString();
  EXPECT_FALSE(publisher->broken());
  // The next publications' confirms are matched to them, not to the returned one.
  ASSERT_TRUE(publisher->DeclareQueue(queue_).ok());
  for (int i = 0; i < 3; ++i) {
    Status published = publisher->Publish(queue_, "id-" + std::to_string(i), "text/plain", "x");
    EXPECT_TRUE(published.ok()) << published.ToString();
  }
  auto consumer = Consumer(queue_);
  ASSERT_NE(consumer, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto delivery = NextDelivery(*consumer);
    ASSERT_TRUE(delivery.has_value());
    EXPECT_EQ(delivery->message_id, "id-" + std::to_string(i));
    ASSERT_TRUE(consumer->Ack(delivery->delivery_tag).ok());
  }
}

// A batch is confirmed as a whole (the broker acks several tags at once): each publication gets
// its own status, an unroutable one in the middle (an undeclared queue) and one with a bad queue
// name fail alone, and every other arrives once, in order.
TEST_F(AmqpDriverTest, BatchGetsAStatusPerPublicationAndOnlyTheUnroutableOneFails) {
  auto publisher = Publisher();
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(publisher->DeclareQueue(queue_).ok());
  const std::string nowhere = queue_ + "-undeclared";
  std::vector<AmqpPublisher::Publication> batch;
  std::vector<std::string> ids, bodies;
  for (int i = 0; i < 60; ++i) {
    ids.push_back("batch-" + std::to_string(i));
    bodies.push_back(std::string(1 + i, static_cast<char>('a' + i % 26)));
  }
  for (int i = 0; i < 60; ++i) {
    std::string_view queue = i == 30 ? std::string_view(nowhere)
                             : i == 45 ? std::string_view("bad\nname")
                                       : std::string_view(queue_);
    batch.push_back({queue, ids[i], "text/plain", bodies[i], {{"x-n", std::to_string(i)}}});
  }
  std::vector<Status> results = publisher->PublishBatch(batch);
  ASSERT_EQ(results.size(), 60u);
  for (int i = 0; i < 60; ++i) {
    if (i == 30) {
      EXPECT_EQ(results[i].code(), Code::kRmError) << results[i].ToString();
      EXPECT_NE(results[i].message().find("unroutable"), std::string::npos);
    } else if (i == 45) {
      EXPECT_EQ(results[i].code(), Code::kInval) << results[i].ToString();
    } else {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    }
  }
  EXPECT_FALSE(publisher->broken());
  auto consumer = Consumer(queue_);
  ASSERT_NE(consumer, nullptr);
  for (int i = 0; i < 60; ++i) {
    if (i == 30 || i == 45) continue;
    auto delivery = NextDelivery(*consumer);
    ASSERT_TRUE(delivery.has_value()) << i;
    EXPECT_EQ(delivery->message_id, ids[i]);
    EXPECT_EQ(delivery->body, bodies[i]);
    ASSERT_TRUE(consumer->Ack(delivery->delivery_tag).ok());
  }
  auto extra = consumer->Next(std::chrono::milliseconds(300));
  ASSERT_TRUE(extra.ok());
  EXPECT_FALSE(extra->has_value()) << "a publication arrived twice";
}

TEST_F(AmqpDriverTest, BadOptionsAndQueueNamesAreRefusedNamingWhatIsWrong) {
  AmqpOptions no_host = Broker();
  no_host.host.clear();
  EXPECT_NE(AmqpOptionsError(no_host), "");
  auto refused = AmqpPublisher::Connect(no_host);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInval) << refused.status().ToString();
  AmqpOptions bad_port = Broker();
  bad_port.port = 0;
  EXPECT_NE(AmqpOptionsError(bad_port), "");
  EXPECT_EQ(AmqpOptionsError(Broker()), "");

  auto publisher = Publisher();
  ASSERT_NE(publisher, nullptr);
  for (const std::string& queue : {std::string(), std::string(256, 'q'), std::string("a\nb")}) {
    Status declared = publisher->DeclareQueue(queue);
    EXPECT_EQ(declared.code(), Code::kInval) << declared.ToString();
    EXPECT_NE(declared.message().find("queue name"), std::string::npos) << declared.ToString();
    Status published = publisher->Publish(queue, "id", "text/plain", "x");
    EXPECT_EQ(published.code(), Code::kInval) << published.ToString();
  }
  EXPECT_FALSE(publisher->broken());
}

TEST_F(AmqpDriverTest, RefusedLoginAndAbsentBrokerFailWithoutThePasswordInTheMessage) {
  AmqpOptions wrong = Broker();
  wrong.password = "wrong-" + RandomHex(8);
  auto refused = AmqpPublisher::Connect(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().code() == Code::kRmError || refused.status().code() == Code::kRmFail)
      << refused.status().ToString();
  EXPECT_EQ(refused.status().message().find(wrong.password), std::string::npos);

  AmqpOptions absent = Broker();
  absent.port = 1;  // nothing listens there
  auto nobody = AmqpConsumer::Connect(absent, queue_);
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.status().code(), Code::kRmFail) << nobody.status().ToString();
  EXPECT_NE(nobody.status().message().find("127.0.0.1:1"), std::string::npos)
      << "the message names the broker: " << nobody.status().ToString();
  EXPECT_EQ(nobody.status().message().find(absent.password), std::string::npos);
}

TEST_F(AmqpDriverTest, UnacknowledgedAndRequeuedDeliveriesComeAgainMarkedRedelivered) {
  auto publisher = Publisher();
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(publisher->DeclareQueue(queue_).ok());
  ASSERT_TRUE(publisher->Publish(queue_, "kept", "text/plain", "1").ok());
  ASSERT_TRUE(publisher->Publish(queue_, "dropped", "text/plain", "2").ok());
  {
    auto consumer = Consumer(queue_);
    ASSERT_NE(consumer, nullptr);
    auto first = NextDelivery(*consumer);
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->message_id, "kept");
    ASSERT_TRUE(consumer->Reject(first->delivery_tag, /*requeue=*/true).ok());
    std::set<std::string> seen;
    for (int i = 0; i < 2; ++i) {
      auto again = NextDelivery(*consumer);
      ASSERT_TRUE(again.has_value());
      seen.insert(again->message_id);
      if (again->message_id == "kept") {
        EXPECT_TRUE(again->redelivered);
      }
      if (again->message_id == "dropped") {
        ASSERT_TRUE(consumer->Reject(again->delivery_tag, /*requeue=*/false).ok());
      }
      // "kept" is left unacknowledged when this consumer goes away.
    }
    EXPECT_EQ(seen, (std::set<std::string>{"kept", "dropped"}));
  }
  auto next = Consumer(queue_);
  ASSERT_NE(next, nullptr);
  auto kept = NextDelivery(*next);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->message_id, "kept");
  EXPECT_TRUE(kept->redelivered);
  ASSERT_TRUE(next->Ack(kept->delivery_tag).ok());
  EXPECT_FALSE(NextDelivery(*next, /*expected=*/false, 500ms).has_value())
      << "a message rejected without requeue is gone";
}

// The promise the message service builds on: a publication the broker confirmed survives the
// broker's crash, and a publisher whose broker went away says so and is replaced.
TEST_F(AmqpDriverTest, ConfirmedPersistentMessagesSurviveABrokerKill) {
  auto publisher = Publisher();
  ASSERT_NE(publisher, nullptr);
  ASSERT_TRUE(publisher->DeclareQueue(queue_).ok());
  std::set<std::string> confirmed;
  for (int i = 0; i < 50; ++i) {
    std::string id = "before-" + std::to_string(i);
    Status published = publisher->Publish(queue_, id, "text/plain", "body " + id);
    ASSERT_TRUE(published.ok()) << published.ToString();
    confirmed.insert(id);
  }
  const std::string script = test::RequireEnv("XA_TEST_SERVERS_SCRIPT");
  test::ProcessResult killed = test::RunProcess({"/bin/bash", script, "kill-rabbitmq"}, {});
  ASSERT_TRUE(killed.Exited(0)) << killed.Describe();

  // The old connection is gone: the publication fails (it may or may not be queued) and the
  // publisher says it is broken.
  Status lost = publisher->Publish(queue_, "during", "text/plain", "x");
  EXPECT_FALSE(lost.ok());
  EXPECT_TRUE(lost.code() == Code::kRmFail || lost.code() == Code::kTimeout) << lost.ToString();
  EXPECT_TRUE(publisher->broken());
  EXPECT_FALSE(publisher->Publish(queue_, "after", "text/plain", "x").ok());
  auto while_down = AmqpPublisher::Connect(Broker());
  EXPECT_FALSE(while_down.ok());

  test::ProcessResult started = test::RunProcess({"/bin/bash", script, "start"}, {});
  ASSERT_TRUE(started.Exited(0)) << started.Describe();
  auto again = Publisher();
  ASSERT_NE(again, nullptr);
  for (int i = 0; i < 5; ++i) {
    std::string id = "restarted-" + std::to_string(i);
    ASSERT_TRUE(again->Publish(queue_, id, "text/plain", "body " + id).ok());
    confirmed.insert(id);
  }

  auto consumer = Consumer(queue_, /*prefetch=*/64);
  ASSERT_NE(consumer, nullptr);
  std::set<std::string> received;
  while (true) {
    auto delivery = NextDelivery(*consumer, /*expected=*/false, 2s);
    if (!delivery) break;
    EXPECT_EQ(delivery->body, "body " + delivery->message_id);
    received.insert(delivery->message_id);
    ASSERT_TRUE(consumer->Ack(delivery->delivery_tag).ok());
  }
  received.erase("during");  // the unconfirmed one may or may not have been queued
  EXPECT_EQ(received, confirmed) << "every confirmed message, and nothing else, after the kill";
}

}  // namespace
}  // namespace xa::rabbitmq
