// The message stores alone, on the real servers, each test on tables or keys of its own. Every
// store (MariaDB, PostgreSQL, Redis): due messages shared between two connections without
// either taking one the other holds, keyset paging without gaps or repeats, binary bytes kept
// exactly, purge, the audit table. The SQL store: migrations (two daemons at once, a newer
// schema refused) and its tables against docs/messages.md ("The store"). The Redis store (in
// redis_message_store_test.cc): durability refused, leases.

#include "daemons/msgd/redis_message_store.h"
#include "daemons/msgd/sql_message_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/msgd/store_test_env.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/test_secrets.h"
#include "tests/msgd/redis_test_env.h"

namespace xa::msg {
namespace {

using test::RandomHex;

// The columns the "The store" sections of docs/messages.md and docs/notifications.md document,
// table by table, in order.
std::map<std::string, std::vector<std::string>> DocumentedColumns() {
  std::map<std::string, std::vector<std::string>> tables;
  for (const char* doc : {"/docs/messages.md", "/docs/notifications.md"}) {
  std::ifstream in(std::string(XA_SOURCE_DIR) + doc);
  std::string line, table;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## The store";
    if (!in_section) continue;
    for (const std::string& name : StoreTableNames()) {
      if (line.rfind("`" + std::string(name) + "`,", 0) == 0) table = name;
    }
    if (!table.empty() && line.rfind("| `", 0) == 0) {
      size_t end = line.find('`', 3);
      tables[table].push_back(line.substr(3, end - 3));
    }
  }
  }
  return tables;
}

class SqlMessageStoreTest : public ::testing::TestWithParam<odbc::Dialect> {
 protected:
  bool postgres() const { return GetParam() == odbc::Dialect::kPostgres; }
  odbc::OdbcOptions Options() const { return test::StoreOdbcOptions(GetParam()); }
  std::unique_ptr<SqlMessageStore> Open() {
    auto store = SqlMessageStore::Open(Options(), prefix_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  void TearDown() override {
    std::string drop = DropStoreTablesSql(prefix_);
    if (postgres()) {
      test::PostgresAdmin(drop);
    } else {
      test::MariaDbAdmin("USE " + test::MariaDbAccount().database + "; " + drop);
    }
  }
  std::vector<std::string> ActualColumns(const std::string& table) {
    auto connection = odbc::LocalConnection::Open(Options());
    EXPECT_TRUE(connection.ok());
    if (!connection.ok()) return {};
    auto rows = (*connection)->Query(
        std::string("SELECT column_name FROM information_schema.columns WHERE table_schema = ") +
        (postgres() ? "current_schema()" : "DATABASE()") + " AND table_name = '" + prefix_ +
        table + "' ORDER BY ordinal_position");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    std::vector<std::string> columns;
    if (rows.ok()) {
      for (const auto& row : *rows) columns.push_back(row[0].value_or(""));
    }
    return columns;
  }

  std::string prefix_ = "st" + RandomHex(4) + "_";
};

enum class StoreKind { kMariaDb, kPostgres, kRedis };

// What every store does alike.
class MessageStoreTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  std::unique_ptr<MessageStore> Open() {
    Result<std::unique_ptr<MessageStore>> store = Status(Code::kInval, "no store");
    if (GetParam() == StoreKind::kRedis) {
      RedisStoreOptions options = test::RedisStoreOptionsFromEnv(prefix_);
      auto redis = RedisMessageStore::Open(options);
      if (redis.ok()) store = std::unique_ptr<MessageStore>(std::move(redis).value());
      else store = redis.status();
    } else {
      bool postgres = GetParam() == StoreKind::kPostgres;
      test::ServerAccount account = postgres ? test::PostgresAccount() : test::MariaDbAccount();
      odbc::OdbcOptions options;
      options.dsn = postgres ? test::OdbcPostgresDsn() : test::OdbcMariaDbDsn();
      options.user = account.user;
      options.password = account.password;
      options.dialect = postgres ? odbc::Dialect::kPostgres : odbc::Dialect::kMariaDb;
      auto sql = SqlMessageStore::Open(options, prefix_);
      if (sql.ok()) store = std::unique_ptr<MessageStore>(std::move(sql).value());
      else store = sql.status();
    }
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  void TearDown() override {
    if (GetParam() == StoreKind::kRedis) {
      test::DeleteRedisKeys(prefix_);
      return;
    }
    std::string drop = DropStoreTablesSql(prefix_);
    if (GetParam() == StoreKind::kPostgres) {
      test::PostgresAdmin(drop);
    } else {
      test::MariaDbAdmin("USE " + test::MariaDbAccount().database + "; " + drop);
    }
  }
  Message NewMessage(int64_t updated_ms, MessageStatus status = MessageStatus::kReady) {
    Message m;
    m.id = RandomHex(16);
    m.producer_id = "orders";
    m.data_type = "payment.booked";
    m.consumer_queue = "accounting";
    m.body = "body of " + m.id;
    m.query_url = "http://127.0.0.1:8080/q";
    m.status = status;
    m.created_ms = updated_ms;
    m.updated_ms = updated_ms;
    m.next_attempt_ms = updated_ms;
    return m;
  }
  void Insert(MessageStore& store, const std::vector<Message>& messages) {
    for (const Message& m : messages) ASSERT_TRUE(store.Insert(m).ok()) << m.id;
    ASSERT_TRUE(store.Commit().ok());
  }

  std::string prefix_ = "st" + RandomHex(4) + "_";
};

TEST_P(SqlMessageStoreTest, TwoDaemonsMigratingAtOnceBothSucceedAndEachVersionIsAppliedOnce) {
  auto first = Open();
  auto second = Open();
  ASSERT_TRUE(first && second);
  auto a = std::async(std::launch::async, [&] { return first->Migrate(); });
  auto b = std::async(std::launch::async, [&] { return second->Migrate(); });
  Status migrated_a = a.get(), migrated_b = b.get();
  EXPECT_TRUE(migrated_a.ok()) << migrated_a.ToString();
  EXPECT_TRUE(migrated_b.ok()) << migrated_b.ToString();
  auto version = first->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, kStoreSchemaVersion);
  first->Rollback();
  auto connection = odbc::LocalConnection::Open(Options());
  ASSERT_TRUE(connection.ok());
  auto rows = (*connection)->Query("SELECT version FROM " + prefix_ + "schema ORDER BY version");
  ASSERT_TRUE(rows.ok());
  std::vector<std::string> versions;
  for (const auto& row : *rows) versions.push_back(row[0].value_or(""));
  EXPECT_EQ(versions, (std::vector<std::string>{"1", "2", "3"}));
  // A third start finds the work done.
  EXPECT_TRUE(first->Migrate().ok());
}

TEST_P(SqlMessageStoreTest, NewerSchemaThanThisBuildKnowsIsRefused) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  auto connection = odbc::LocalConnection::Open(Options());
  ASSERT_TRUE(connection.ok());
  ASSERT_TRUE((*connection)->Execute("INSERT INTO " + prefix_ +
                                     "schema (version, applied_ms) VALUES (99, 0)").ok());
  ASSERT_TRUE((*connection)->Commit().ok());
  Status refused = Open()->Migrate();
  EXPECT_EQ(refused.code(), Code::kConfig) << refused.ToString();
  EXPECT_NE(refused.message().find("99"), std::string::npos) << refused.ToString();
}

TEST_P(SqlMessageStoreTest, TablesHaveExactlyTheDocumentedColumns) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  std::map<std::string, std::vector<std::string>> documented = DocumentedColumns();
  ASSERT_EQ(documented.size(), StoreTableNames().size())
      << "docs/messages.md and docs/notifications.md, \"The store\": one table a column list";
  for (const auto& [table, columns] : documented) {
    EXPECT_EQ(ActualColumns(table), columns) << "table " << table;
  }
}

TEST_P(MessageStoreTest, TwoConnectionsTakingDueMessagesNeverTakeTheSameOne) {
  auto first = Open();
  auto second = Open();
  ASSERT_TRUE(first && second && first->Migrate().ok());
  std::vector<Message> messages;
  for (int i = 0; i < 6; ++i) messages.push_back(NewMessage(1000 + i));
  Insert(*first, messages);
  const MessageStatus ready[] = {MessageStatus::kReady};
  auto taken_first = first->LockDue(ready, 5000, 4);
  ASSERT_TRUE(taken_first.ok()) << taken_first.status().ToString();
  ASSERT_EQ(taken_first->size(), 4u);
  // The second connection skips the four held rows instead of waiting for them.
  auto taken_second = second->LockDue(ready, 5000, 10);
  ASSERT_TRUE(taken_second.ok()) << taken_second.status().ToString();
  ASSERT_EQ(taken_second->size(), 2u);
  std::set<std::string> ids;
  for (const auto* batch : {&*taken_first, &*taken_second}) {
    for (const Message& m : *batch) EXPECT_TRUE(ids.insert(m.id).second) << m.id << " twice";
  }
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ((*taken_first)[0].next_attempt_ms, 1000) << "earliest due first";
  // Not yet due, dead, or of another status: not taken.
  second->Rollback();
  Message dead = (*taken_first)[0];
  dead.dead = true;
  ASSERT_TRUE(first->Update(dead).ok());
  ASSERT_TRUE(first->Commit().ok());
  auto later = second->LockDue(ready, 1002, 10);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->size(), 2u) << "due by 1002 and not dead: 1001 and 1002";
  second->Rollback();
  const MessageStatus pending[] = {MessageStatus::kPending};
  auto none = second->LockDue(pending, 5000, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  second->Rollback();
}

TEST_P(MessageStoreTest, PagesVisitEveryMessageOnceInUpdatedThenIdOrder) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  std::vector<Message> messages;
  for (int i = 0; i < 23; ++i) messages.push_back(NewMessage(5000 + i / 3));  // ties of three
  messages.push_back(NewMessage(5000, MessageStatus::kDone));  // another status: not listed
  Insert(*store, messages);
  std::vector<std::pair<int64_t, std::string>> expected;
  for (const Message& m : messages) {
    if (m.status == MessageStatus::kReady) expected.emplace_back(m.updated_ms, m.id);
  }
  std::sort(expected.begin(), expected.end());
  std::vector<std::pair<int64_t, std::string>> seen;
  int64_t after_ms = INT64_MIN;
  std::string after_id;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store->List(MessageStatus::kReady, false, after_ms, after_id, 5);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    store->Rollback();
    if (page->empty()) break;
    for (const Message& m : *page) seen.emplace_back(m.updated_ms, m.id);
    after_ms = page->back().updated_ms;
    after_id = page->back().id;
  }
  EXPECT_EQ(seen, expected);
}

TEST_P(MessageStoreTest, BytesOfEveryValueComeBackExactlyAndHistoryGoesWithItsMessage) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  Message m = NewMessage(7000);
  m.body = std::string("\x00\xff'\"\\;--\n", 9) + "é";
  m.producer_id = "o'brien";
  m.last_error = "it said: 'no'; DROP TABLE x";
  Insert(*store, {m});
  ASSERT_TRUE(store->AddEvent({m.id, 7001, "published", "broker said \"ok\" \\ done"}).ok());
  ASSERT_TRUE(store->Commit().ok());
  auto back = store->Get(m.id);
  ASSERT_TRUE(back.ok() && back->has_value()) << back.status().ToString();
  EXPECT_EQ((*back)->body, m.body);
  EXPECT_EQ((*back)->producer_id, m.producer_id);
  EXPECT_EQ((*back)->last_error, m.last_error);
  auto events = store->Events(m.id, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].detail, "broker said \"ok\" \\ done");
  store->Rollback();
  auto deleted = store->Delete(m.id);
  ASSERT_TRUE(deleted.ok() && *deleted);
  ASSERT_TRUE(store->Commit().ok());
  auto after = store->Events(m.id, 10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << "the history is deleted with its message";
  store->Rollback();
}

TEST_P(MessageStoreTest, PurgeDeletesOnlyOldDoneMessagesInBatchesWithTheirHistory) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  std::vector<Message> old_done, kept;
  for (int i = 0; i < 5; ++i) old_done.push_back(NewMessage(1000 + i, MessageStatus::kDone));
  kept.push_back(NewMessage(9000, MessageStatus::kDone));  // too young
  kept.push_back(NewMessage(1000, MessageStatus::kSent));  // not done
  Message dead_done = NewMessage(1000, MessageStatus::kDone);
  dead_done.dead = true;
  kept.push_back(dead_done);
  Insert(*store, old_done);
  Insert(*store, kept);
  for (const Message& m : old_done) ASSERT_TRUE(store->AddEvent({m.id, 1, "acked", ""}).ok());
  ASSERT_TRUE(store->Commit().ok());
  std::vector<int> batches;
  for (int pass = 0; pass < 4; ++pass) {
    auto purged = store->PurgeDone(5000, 3);
    ASSERT_TRUE(purged.ok()) << purged.status().ToString();
    ASSERT_TRUE(store->Commit().ok());
    batches.push_back(*purged);
  }
  EXPECT_EQ(batches, (std::vector<int>{3, 2, 0, 0}));
  for (const Message& m : old_done) {
    auto gone = store->Get(m.id);
    ASSERT_TRUE(gone.ok());
    EXPECT_FALSE(gone->has_value()) << m.id;
    auto events = store->Events(m.id, 10);
    ASSERT_TRUE(events.ok());
    EXPECT_TRUE(events->empty());
  }
  for (const Message& m : kept) {
    auto there = store->Get(m.id);
    ASSERT_TRUE(there.ok());
    EXPECT_TRUE(there->has_value()) << m.id;
  }
  store->Rollback();
}

TEST_P(MessageStoreTest, AuditEntriesComeBackNewestFirstInPages) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  std::string id = RandomHex(16);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store->AddAudit({0, 100 + i, "night-shift", i % 2 ? "revive" : "kill", id, "changed"})
            .ok());
  }
  ASSERT_TRUE(store->Commit().ok());
  auto newest = store->Audit(INT64_MAX, 3);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_EQ(newest->size(), 3u);
  EXPECT_EQ((*newest)[0].at_ms, 104);
  EXPECT_EQ((*newest)[0].operator_name, "night-shift");
  EXPECT_EQ((*newest)[0].action, "kill");
  EXPECT_EQ((*newest)[0].message_id, id);
  EXPECT_GT((*newest)[0].seq, (*newest)[1].seq);
  auto rest = store->Audit(newest->back().seq, 3);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].at_ms, 100);
  store->Rollback();
}

INSTANTIATE_TEST_SUITE_P(Servers, MessageStoreTest,
                         ::testing::Values(StoreKind::kMariaDb, StoreKind::kPostgres,
                                           StoreKind::kRedis),
                         [](const ::testing::TestParamInfo<StoreKind>& kind) {
                           return kind.param == StoreKind::kMariaDb    ? "MariaDb"
                                  : kind.param == StoreKind::kPostgres ? "Postgres"
                                                                       : "Redis";
                         });

INSTANTIATE_TEST_SUITE_P(Servers, SqlMessageStoreTest,
                         ::testing::Values(odbc::Dialect::kMariaDb, odbc::Dialect::kPostgres),
                         [](const ::testing::TestParamInfo<odbc::Dialect>& dialect) {
                           return dialect.param == odbc::Dialect::kMariaDb ? "MariaDb"
                                                                           : "Postgres";
                         });

}  // namespace
}  // namespace xa::msg
