// The engine of xa-msgd (daemons/msgd/message_service.h) on an in-memory store, a fake broker
// and a fake producer endpoint, with time on a FakeClock: every path of docs/messages.md's flow
// and the faults a real server cannot produce on demand (a store that fails mid-pass, a broker
// that refuses). The same paths run against the real servers in msgd_integration_test.cc.

#include <gtest/gtest.h>

#include <tuple>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemons/msgd/message_service.h"
#include "tests/msgd/memory_message_store.h"
#include "tests/testutil/fake_clock.h"

namespace xa::msg {
namespace {

using namespace std::chrono_literals;
using test::MemoryDatabase;
using test::MemoryMessageStore;

// What the fake broker received, and its fault switch.
struct Broker {
  std::vector<std::string> published_ids;
  int refuse_next = 0;  // the next publications fail (as a nack or a lost confirm)
  int connections = 0;
};

class FakePublisher final : public Publisher {
 public:
  explicit FakePublisher(Broker* broker) : broker_(broker) {}
  Status Publish(const Message& message) override {
    if (broker_->refuse_next > 0) {
      --broker_->refuse_next;
      broken_ = true;
      return Status(Code::kRmFail, "injected: broker connection lost");
    }
    broker_->published_ids.push_back(message.id);
    return Status::Ok();
  }
  bool broken() const override { return broken_; }

 private:
  Broker* broker_;
  bool broken_ = false;
};

class FakeQuerier final : public BackQuerier {
 public:
  std::function<Reply(const Message&)> answer = [](const Message&) {
    return Reply{BackQueryAnswer::kUnknown, "injected: endpoint down"};
  };
  int asked = 0;
  Reply Ask(const Message& message) override {
    ++asked;
    return answer(message);
  }
  std::chrono::milliseconds max_duration() const override { return 100ms; }
};

class MessageServiceTest : public ::testing::Test {
 protected:
  MessageServiceTest() {
    options_.timings.confirm_timeout = 30s;
    options_.timings.check_ladder = {10s, 20s};
    options_.timings.ack_timeout = 60s;
    options_.timings.redelivery_ladder = {60s, 120s};
    options_.timings.max_redeliveries = 2;
    options_.timings.publish_retry = 1s;
    options_.max_body_bytes = 1024;
    options_.allowed_query_prefixes = {"http://127.0.0.1:8080/"};
    querier_ = std::make_shared<FakeQuerier>();
    service_ = std::make_unique<MessageService>(
        options_,
        [db = db_]() -> Result<std::unique_ptr<MessageStore>> {
          return std::unique_ptr<MessageStore>(new MemoryMessageStore(db));
        },
        [this]() -> Result<std::unique_ptr<Publisher>> {
          ++broker_.connections;
          return std::unique_ptr<Publisher>(new FakePublisher(&broker_));
        },
        querier_, &clock_);
  }

  Message Fields(std::string producer = "orders") {
    Message fields;
    fields.producer_id = std::move(producer);
    fields.data_type = "payment.booked";
    fields.consumer_queue = "accounting";
    fields.body = R"({"order": 17, "amount": "12.50"})";
    fields.query_url = "http://127.0.0.1:8080/orders/query";
    return fields;
  }
  std::string PreSend() {
    Result<Message> stored = service_->PreSend(Fields());
    EXPECT_TRUE(stored.ok()) << stored.status().ToString();
    return stored.ok() ? stored->id : "";
  }
  Message Stored(const std::string& id) {
    std::lock_guard<std::mutex> lock(db_->mu);
    auto it = db_->messages.find(id);
    EXPECT_NE(it, db_->messages.end()) << "message " << id << " is not in the store";
    return it == db_->messages.end() ? Message{} : it->second;
  }
  bool InStore(const std::string& id) {
    std::lock_guard<std::mutex> lock(db_->mu);
    return db_->messages.count(id) > 0;
  }
  int Deliver() {
    Result<int> handled = service_->RunDeliveryPass();
    EXPECT_TRUE(handled.ok()) << handled.status().ToString();
    return handled.ok() ? *handled : -1;
  }
  int Query() {
    Result<int> handled = service_->RunBackQueryPass();
    EXPECT_TRUE(handled.ok()) << handled.status().ToString();
    return handled.ok() ? *handled : -1;
  }

  ServiceOptions options_;
  xa::test::FakeClock clock_;
  std::shared_ptr<MemoryDatabase> db_ = std::make_shared<MemoryDatabase>();
  Broker broker_;
  std::shared_ptr<FakeQuerier> querier_;
  std::unique_ptr<MessageService> service_;
};

TEST_F(MessageServiceTest, PreSentMessageIsPendingAndNeverPublishedBeforeItsConfirm) {
  std::string id = PreSend();
  ASSERT_EQ(id.size(), kMessageIdSize);
  EXPECT_EQ(Stored(id).status, MessageStatus::kPending);
  EXPECT_EQ(Deliver(), 0);
  clock_.Advance(29s);
  EXPECT_EQ(Deliver(), 0);
  EXPECT_TRUE(broker_.published_ids.empty());
}

TEST_F(MessageServiceTest, PreSendRefusesEachBadFieldNamingIt) {
  Message no_queue = Fields();
  no_queue.consumer_queue = "";
  Message big = Fields();
  big.body = std::string(1025, 'x');
  Message elsewhere = Fields();
  elsewhere.query_url = "http://169.254.169.254/latest/meta-data";
  Message blank_type = Fields();
  blank_type.data_type = "two words";
  for (auto& [fields, names] : std::vector<std::pair<Message, std::string>>{
           {no_queue, "queue"}, {big, "body"}, {elsewhere, "allowed_query_prefixes"},
           {blank_type, "data_type"}}) {
    Result<Message> refused = service_->PreSend(fields);
    ASSERT_FALSE(refused.ok()) << names;
    EXPECT_EQ(refused.status().code(), Code::kInval);
    EXPECT_NE(refused.status().message().find(names), std::string::npos)
        << refused.status().message();
  }
  EXPECT_TRUE(db_->messages.empty());
}

TEST_F(MessageServiceTest, ConfirmedMessageIsPublishedOnceAndAckFinishesIt) {
  std::string id = PreSend();
  Result<RequestOutcome> confirmed = service_->Confirm(id, "orders");
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(confirmed->result, RequestResult::kChanged);
  EXPECT_EQ(service_->Confirm(id, "orders")->result, RequestResult::kAlready);
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(broker_.published_ids, std::vector<std::string>{id});
  EXPECT_EQ(Stored(id).status, MessageStatus::kSent);
  EXPECT_EQ(service_->Acknowledge(id)->result, RequestResult::kChanged);
  EXPECT_EQ(service_->Acknowledge(id)->result, RequestResult::kAlready);
  EXPECT_EQ(Stored(id).status, MessageStatus::kDone);
  clock_.Advance(1h);
  EXPECT_EQ(Deliver(), 0);
  EXPECT_EQ(broker_.published_ids.size(), 1u);
}

TEST_F(MessageServiceTest, CancelledMessageIsGoneAndCannotBeConfirmed) {
  std::string id = PreSend();
  EXPECT_EQ(service_->Cancel(id, "orders")->result, RequestResult::kChanged);
  EXPECT_FALSE(InStore(id));
  EXPECT_EQ(service_->Cancel(id, "orders")->result, RequestResult::kAlready);
  EXPECT_EQ(service_->Confirm(id, "orders")->result, RequestResult::kNotFound);
  clock_.Advance(1h);
  EXPECT_EQ(Deliver(), 0);
  EXPECT_EQ(Query(), 0);
  EXPECT_TRUE(broker_.published_ids.empty());
}

TEST_F(MessageServiceTest, ConfirmedMessageCannotBeCancelled) {
  std::string id = PreSend();
  ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  EXPECT_EQ(service_->Cancel(id, "orders")->result, RequestResult::kConflict);
  EXPECT_EQ(Stored(id).status, MessageStatus::kReady);
}

TEST_F(MessageServiceTest, ProducerCannotTouchAnotherProducersMessage) {
  std::string id = PreSend();
  EXPECT_EQ(service_->Confirm(id, "intruder")->result, RequestResult::kForbidden);
  EXPECT_EQ(service_->Cancel(id, "intruder")->result, RequestResult::kForbidden);
  EXPECT_EQ(Stored(id).status, MessageStatus::kPending);
}

TEST_F(MessageServiceTest, SilentProducerIsAskedAfterTheTimeoutAndCommittedAnswerDelivers) {
  std::string id = PreSend();
  querier_->answer = [](const Message&) {
    return BackQuerier::Reply{BackQueryAnswer::kCommitted, ""};
  };
  clock_.Advance(29s);
  EXPECT_EQ(Query(), 0);
  clock_.Advance(1s);
  EXPECT_EQ(Query(), 1);
  EXPECT_EQ(Stored(id).status, MessageStatus::kReady);
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(broker_.published_ids, std::vector<std::string>{id});
}

TEST_F(MessageServiceTest, RolledBackAnswerDeletesTheMessageWhichIsNeverDelivered) {
  std::string id = PreSend();
  querier_->answer = [](const Message&) {
    return BackQuerier::Reply{BackQueryAnswer::kRolledBack, ""};
  };
  clock_.Advance(30s);
  EXPECT_EQ(Query(), 1);
  EXPECT_FALSE(InStore(id));
  clock_.Advance(1h);
  EXPECT_EQ(Deliver(), 0);
  EXPECT_TRUE(broker_.published_ids.empty());
}

TEST_F(MessageServiceTest, UnansweredBackQueriesFollowTheLadderThenParkTheMessage) {
  std::string id = PreSend();
  clock_.Advance(30s);
  EXPECT_EQ(Query(), 1);  // first question: no answer, next in 10 s
  EXPECT_EQ(Stored(id).check_count, 1);
  clock_.Advance(9s);
  EXPECT_EQ(Query(), 0);
  clock_.Advance(1s);
  EXPECT_EQ(Query(), 1);  // second: next in 20 s
  clock_.Advance(19s);
  EXPECT_EQ(Query(), 0);
  clock_.Advance(1s);
  EXPECT_EQ(Query(), 1);  // third and last: parked
  Message parked = Stored(id);
  EXPECT_EQ(parked.status, MessageStatus::kParked);
  EXPECT_EQ(parked.check_count, 3);
  EXPECT_NE(parked.last_error.find("endpoint down"), std::string::npos);
  clock_.Advance(1h);
  EXPECT_EQ(Query(), 0);
  EXPECT_EQ(querier_->asked, 3);
  // The operator decides: confirm delivers it.
  EXPECT_EQ(service_->Confirm(id)->result, RequestResult::kChanged);
  EXPECT_EQ(Deliver(), 1);
}

TEST_F(MessageServiceTest, ConfirmArrivingDuringTheBackQueryWins) {
  std::string id = PreSend();
  querier_->answer = [&](const Message& asked) {
    EXPECT_EQ(service_->Confirm(asked.id, "orders")->result, RequestResult::kChanged);
    return BackQuerier::Reply{BackQueryAnswer::kRolledBack, ""};
  };
  clock_.Advance(30s);
  EXPECT_EQ(Query(), 1);
  ASSERT_TRUE(InStore(id));
  EXPECT_EQ(Stored(id).status, MessageStatus::kReady);
  EXPECT_EQ(Deliver(), 1);
}

TEST_F(MessageServiceTest, UnacknowledgedMessageIsRedeliveredOnTheLadderThenDies) {
  std::string id = PreSend();
  ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  EXPECT_EQ(Deliver(), 1);
  clock_.Advance(59s);
  EXPECT_EQ(Deliver(), 0);
  clock_.Advance(1s);
  EXPECT_EQ(Deliver(), 1);  // redelivery 1, next after 60 s
  EXPECT_EQ(Stored(id).resend_count, 1);
  clock_.Advance(60s);
  EXPECT_EQ(Deliver(), 1);  // redelivery 2 (the maximum), next look after 120 s
  clock_.Advance(119s);
  EXPECT_EQ(Deliver(), 0);
  clock_.Advance(1s);
  EXPECT_EQ(Deliver(), 1);  // no ack after the last: dead
  Message dead = Stored(id);
  EXPECT_TRUE(dead.dead);
  EXPECT_EQ(broker_.published_ids.size(), 3u);
  clock_.Advance(1h);
  EXPECT_EQ(Deliver(), 0);
  // Revived by an operator: published again, redeliveries counted afresh.
  EXPECT_EQ(service_->Revive(id, "ops")->result, RequestResult::kChanged);
  EXPECT_EQ(Deliver(), 1);
  EXPECT_FALSE(Stored(id).dead);
  EXPECT_EQ(broker_.published_ids.size(), 4u);
  EXPECT_EQ(service_->Acknowledge(id)->result, RequestResult::kChanged);
}

// An operator's resend of a message that used up its redeliveries publishes it (it used to be
// due as `sent` and die at once, unpublished: the browser test found it).
TEST_F(MessageServiceTest, ResendOfAMessageAtItsLastRedeliveryPublishesItOnce) {
  std::string id = PreSend();
  ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  EXPECT_EQ(Deliver(), 1);
  for (auto wait : {60s, 60s, 120s}) {
    clock_.Advance(wait);
    EXPECT_EQ(Deliver(), 1);
  }
  ASSERT_TRUE(Stored(id).dead);
  ASSERT_EQ(broker_.published_ids.size(), 3u);
  EXPECT_EQ(service_->Resend(id, "ops")->result, RequestResult::kChanged);
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(broker_.published_ids.size(), 4u) << "the resend was not published";
  EXPECT_FALSE(Stored(id).dead);
  EXPECT_EQ(Stored(id).status, MessageStatus::kSent);
  EXPECT_EQ(Stored(id).resend_count, 2) << "a resend keeps the count";
  // No ack: at its next timeout it dies again, without another publication.
  clock_.Advance(120s);
  EXPECT_EQ(Deliver(), 1);
  EXPECT_TRUE(Stored(id).dead);
  EXPECT_EQ(broker_.published_ids.size(), 4u);
}

TEST_F(MessageServiceTest, DoneMessagesArePurgedAfterTheirRetentionWithTheirHistoryOnly) {
  // The fixture's default retention: 7 days.
  std::string done = PreSend();
  std::string sent = PreSend();
  for (const std::string& id : {done, sent}) ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  EXPECT_EQ(Deliver(), 2);
  ASSERT_EQ(service_->Acknowledge(done)->result, RequestResult::kChanged);
  ASSERT_EQ(service_->Kill(sent, "ops")->result, RequestResult::kChanged);  // dead: not purged
  clock_.Advance(std::chrono::hours(24 * 7) - 1s);
  EXPECT_EQ(*service_->RunPurgePass(), 0) << "not yet past its retention";
  EXPECT_TRUE(InStore(done));
  clock_.Advance(61s);  // past the retention, and past the minute between passes
  EXPECT_EQ(*service_->RunPurgePass(), 1);
  EXPECT_FALSE(InStore(done));
  EXPECT_TRUE(InStore(sent));
  {
    std::lock_guard<std::mutex> lock(db_->mu);
    for (const MessageEvent& event : db_->events) EXPECT_NE(event.message_id, done);
    EXPECT_EQ(db_->audit.size(), 1u) << "the audit rows stay";
  }
  EXPECT_EQ(service_->counters().purged.load(), 1u);
}

TEST_F(MessageServiceTest, OperatorActionsAreAuditedWithTheirResultAndOutliveADeletion) {
  std::string parked = PreSend();
  std::string pending = PreSend();
  EXPECT_EQ(service_->Resend(parked, "alice")->result, RequestResult::kConflict);
  EXPECT_EQ(service_->OperatorConfirm(parked, "alice")->result, RequestResult::kChanged);
  EXPECT_EQ(service_->OperatorConfirm(parked, "alice")->result, RequestResult::kAlready);
  EXPECT_EQ(service_->Delete(pending, "bob")->result, RequestResult::kChanged);
  EXPECT_FALSE(InStore(pending));
  // A failed write leaves no audit entry of an action that did not happen.
  db_->fail_count = 1;
  db_->skip_calls = 1;  // the lock succeeds, the write fails
  EXPECT_FALSE(service_->Kill(parked, "mallory").ok());

  Result<std::vector<AuditEntry>> audit = service_->AuditLog(INT64_MAX, 10);
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  ASSERT_EQ(audit->size(), 4u);
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> expected = {
      {"bob", "delete", pending, "changed"},
      {"alice", "confirm", parked, "already"},
      {"alice", "confirm", parked, "changed"},
      {"alice", "resend", parked, "conflict"}};  // newest first
  for (size_t i = 0; i < expected.size(); ++i) {
    const AuditEntry& entry = (*audit)[i];
    EXPECT_EQ(std::tie(entry.operator_name, entry.action, entry.message_id, entry.result),
              std::tie(std::get<0>(expected[i]), std::get<1>(expected[i]),
                       std::get<2>(expected[i]), std::get<3>(expected[i])))
        << "entry " << i;
  }
  Result<std::vector<AuditEntry>> older = service_->AuditLog((*audit)[1].seq, 10);
  ASSERT_TRUE(older.ok());
  EXPECT_EQ(older->size(), 2u) << "paging: the entries before the second newest";
}

TEST_F(MessageServiceTest, FailedPublicationIsRetriedOnANewConnection) {
  std::string id = PreSend();
  ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  broker_.refuse_next = 1;
  EXPECT_EQ(Deliver(), 1);
  Message after = Stored(id);
  EXPECT_EQ(after.status, MessageStatus::kReady);
  EXPECT_NE(after.last_error.find("broker connection lost"), std::string::npos);
  EXPECT_EQ(Deliver(), 0);  // not before publish_retry
  clock_.Advance(1s);
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(broker_.published_ids, std::vector<std::string>{id});
  EXPECT_EQ(broker_.connections, 2);
  EXPECT_EQ(Stored(id).status, MessageStatus::kSent);
}

TEST_F(MessageServiceTest, StoreFailureMidPassLeavesTheMessageDueAndItIsPublishedAgain) {
  std::string id = PreSend();
  ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  {
    // The pass's LockDue succeeds, the broker confirms, then writing the result fails as a
    // lost connection would: nothing of the pass commits.
    std::lock_guard<std::mutex> lock(db_->mu);
    db_->skip_calls = 1;
    db_->fail_count = 1;
  }
  Result<int> failed = service_->RunDeliveryPass();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kRmFail);
  EXPECT_EQ(broker_.published_ids.size(), 1u);
  EXPECT_EQ(Stored(id).status, MessageStatus::kReady);
  // Still due: published again (a duplicate the consumer's dedupe absorbs), then sent.
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(broker_.published_ids, (std::vector<std::string>{id, id}));
  EXPECT_EQ(Stored(id).status, MessageStatus::kSent);
}

TEST_F(MessageServiceTest, StoreDownFailsTheRequestAndLosesNothing) {
  std::string id = PreSend();
  {
    std::lock_guard<std::mutex> lock(db_->mu);
    db_->fail_count = 1;
  }
  Result<RequestOutcome> confirmed = service_->Confirm(id, "orders");
  ASSERT_FALSE(confirmed.ok());
  EXPECT_EQ(confirmed.status().code(), Code::kRmFail);
  EXPECT_EQ(Stored(id).status, MessageStatus::kPending);
  EXPECT_EQ(service_->Confirm(id, "orders")->result, RequestResult::kChanged);
  EXPECT_EQ(Stored(id).status, MessageStatus::kReady);
}

TEST_F(MessageServiceTest, HistoryRecordsEveryStep) {
  std::string id = PreSend();
  ASSERT_TRUE(service_->Confirm(id, "orders").ok());
  EXPECT_EQ(Deliver(), 1);
  ASSERT_TRUE(service_->Acknowledge(id).ok());
  Result<std::vector<MessageEvent>> history = service_->History(id, 100);
  ASSERT_TRUE(history.ok());
  std::vector<std::string> kinds;
  for (const MessageEvent& event : *history) kinds.push_back(event.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"pre-sent", "confirmed", "published",
                                             "acknowledged"}));
}

}  // namespace
}  // namespace xa::msg
