// The Redis store's own rules, on the real Redis of scripts/servers.sh (and, for the settings it
// must refuse, a redis-server the test starts itself): not durable enough is refused, naming the
// setting; leases expire, are renewed while their transaction works, and a transaction whose
// lease was taken over writes nothing; a held lease makes LockOne wait, then time out; a newer
// key layout is refused; a refused login does not show the password.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemons/msgd/redis_message_store.h"
#include "tests/msgd/redis_test_env.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/test_secrets.h"

extern char** environ;

namespace xa::msg {
namespace {

using namespace std::chrono_literals;
using test::RandomHex;

// A port nothing listens on now: bound, read, released.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// A redis-server of the test's own, without a password, with the given settings.
class OwnRedis {
 public:
  explicit OwnRedis(const std::vector<std::string>& settings) : port_(FreePort()) {
    std::vector<std::string> args = {"/usr/bin/redis-server", "--port", std::to_string(port_),
                                     "--bind",                "127.0.0.1", "--dir", dir_.path(),
                                     "--save",                "",
                                     "--logfile",             dir_.File("redis.log")};
    args.insert(args.end(), settings.begin(), settings.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = 0;
  }
  ~OwnRedis() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  RedisStoreOptions Options() const {
    RedisStoreOptions options;
    options.port = port_;
    options.key_prefix = "own_";
    return options;
  }
  // Opens a store on it once it answers (a refusal of its settings is an answer).
  Result<std::unique_ptr<RedisMessageStore>> OpenWhenUp() const {
    Result<std::unique_ptr<RedisMessageStore>> store = Status(Code::kRmFail, "not started");
    for (int i = 0; i < 200 && pid_ > 0; ++i) {
      store = RedisMessageStore::Open(Options());
      if (store.ok() || store.status().code() != Code::kRmFail) return store;
      std::this_thread::sleep_for(25ms);
    }
    return store;
  }

 private:
  test::ScratchDir dir_;
  int port_;
  pid_t pid_ = 0;
};

TEST(RedisStoreDurabilityTest, EverysecEvictionOrNoAppendOnlyFileIsRefusedNamingTheSetting) {
  struct Case {
    std::vector<std::string> settings;
    std::string named;
  } cases[] = {
      {{"--appendonly", "yes", "--appendfsync", "everysec"}, "appendfsync"},
      {{"--appendonly", "no", "--appendfsync", "always"}, "appendonly"},
      {{"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "allkeys-lru"},
       "maxmemory-policy"},
  };
  for (const Case& c : cases) {
    OwnRedis redis(c.settings);
    auto store = redis.OpenWhenUp();
    ASSERT_FALSE(store.ok()) << c.named;
    EXPECT_EQ(store.status().code(), Code::kConfig) << store.status().ToString();
    EXPECT_NE(store.status().message().find(c.named), std::string::npos)
        << store.status().ToString();
  }
  OwnRedis durable({"--appendonly", "yes", "--appendfsync", "always"});
  auto store = durable.OpenWhenUp();
  EXPECT_TRUE(store.ok()) << store.status().ToString();
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void TearDown() override { test::DeleteRedisKeys(prefix_); }
  std::unique_ptr<RedisMessageStore> Open(std::chrono::milliseconds lease = 30s,
                                          std::chrono::milliseconds lock_wait = 10s) {
    RedisStoreOptions options = test::RedisStoreOptionsFromEnv(prefix_);
    options.lease = lease;
    options.lock_wait = lock_wait;
    auto store = RedisMessageStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  Message Stored(RedisMessageStore& store) {
    Message m;
    m.id = RandomHex(16);
    m.producer_id = "orders";
    m.data_type = "payment.booked";
    m.consumer_queue = "accounting";
    m.body = "b";
    m.status = MessageStatus::kReady;
    m.created_ms = m.updated_ms = m.next_attempt_ms = 1000;
    EXPECT_TRUE(store.Insert(m).ok());
    EXPECT_TRUE(store.Commit().ok());
    return m;
  }
  static constexpr MessageStatus kReady[] = {MessageStatus::kReady};
  std::string prefix_ = "rs" + RandomHex(4) + "_";
};

TEST_F(RedisStoreTest, ExpiredLeaseIsTakenByAnotherAndTheFirstTransactionWritesNothing) {
  auto first = Open(300ms);
  auto second = Open(300ms);
  ASSERT_TRUE(first && second && first->Migrate().ok());
  Message m = Stored(*first);
  auto taken = first->LockDue(kReady, 5000, 10);
  ASSERT_TRUE(taken.ok() && taken->size() == 1u) << taken.status().ToString();
  auto while_held = second->LockDue(kReady, 5000, 10);
  ASSERT_TRUE(while_held.ok());
  EXPECT_TRUE(while_held->empty()) << "a held lease is skipped";
  second->Rollback();
  std::this_thread::sleep_for(450ms);  // the first says nothing: its lease expires
  auto taken_over = second->LockDue(kReady, 5000, 10);
  ASSERT_TRUE(taken_over.ok() && taken_over->size() == 1u) << taken_over.status().ToString();

  Message by_first = (*taken)[0];
  by_first.status = MessageStatus::kSent;
  by_first.last_error = "first";
  ASSERT_TRUE(first->Update(by_first).ok());
  Status refused = first->Commit();
  EXPECT_EQ(refused.code(), Code::kRbTimeout) << refused.ToString();
  EXPECT_NE(refused.message().find(m.id), std::string::npos) << refused.ToString();

  Message by_second = (*taken_over)[0];
  by_second.status = MessageStatus::kSent;
  by_second.last_error = "second";
  ASSERT_TRUE(second->Update(by_second).ok());
  ASSERT_TRUE(second->Commit().ok());
  auto now = first->Get(m.id);
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_EQ((*now)->last_error, "second") << "the late transaction wrote nothing";
}

TEST_F(RedisStoreTest, LeasesAreRenewedWhileTheirTransactionKeepsWorking) {
  auto first = Open(300ms);
  auto second = Open(300ms);
  ASSERT_TRUE(first && second && first->Migrate().ok());
  Message m = Stored(*first);
  auto taken = first->LockDue(kReady, 5000, 10);
  ASSERT_TRUE(taken.ok() && taken->size() == 1u);
  // Three leases long, with a call every 50 ms: each renews once a third of the lease passed.
  for (int i = 0; i < 18; ++i) {
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(first->Get(m.id).ok());
  }
  auto skipped = second->LockDue(kReady, 5000, 10);
  ASSERT_TRUE(skipped.ok());
  EXPECT_TRUE(skipped->empty()) << "the renewed lease still holds the message";
  second->Rollback();
  Message updated = (*taken)[0];
  updated.status = MessageStatus::kSent;
  ASSERT_TRUE(first->Update(updated).ok());
  EXPECT_TRUE(first->Commit().ok());
}

TEST_F(RedisStoreTest, LockOneWaitsForAnotherLeaseThenTimesOutAndGetsItOnceReleased) {
  auto first = Open();
  auto second = Open(30s, 200ms);
  ASSERT_TRUE(first && second && first->Migrate().ok());
  Message m = Stored(*first);
  auto held = first->LockOne(m.id);
  ASSERT_TRUE(held.ok() && held->has_value());
  auto began = std::chrono::steady_clock::now();
  auto waited = second->LockOne(m.id);
  EXPECT_GE(std::chrono::steady_clock::now() - began, 200ms);
  EXPECT_EQ(waited.status().code(), Code::kRbTimeout) << waited.status().ToString();
  first->Rollback();
  auto got = second->LockOne(m.id);
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
  second->Rollback();
  auto none = second->LockOne(RandomHex(16));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(RedisStoreTest, InsertOfAnExistingIdIsRefusedAndWritesNothingElse) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  Message m = Stored(*store);
  Message again = m;
  again.body = "other";
  Status refused = store->Insert(again);
  EXPECT_EQ(refused.code(), Code::kDupId) << refused.ToString();
  auto kept = store->Get(m.id);
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->body, "b");
}

TEST_F(RedisStoreTest, NewerKeyLayoutThanThisBuildKnowsIsRefused) {
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  auto version = store->SchemaVersion();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, kRedisStoreSchemaVersion);
  test::RedisCommand({"SET", prefix_ + "schema", "99"});
  Status refused = Open()->Migrate();
  EXPECT_EQ(refused.code(), Code::kConfig) << refused.ToString();
  EXPECT_NE(refused.message().find("99"), std::string::npos) << refused.ToString();
}

TEST_F(RedisStoreTest, RefusedLoginFailsWithoutThePasswordInTheMessage) {
  RedisStoreOptions options = test::RedisStoreOptionsFromEnv(prefix_);
  options.password = "not-the-password-" + RandomHex(8);
  auto store = RedisMessageStore::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kRmFail) << store.status().ToString();
  EXPECT_EQ(store.status().ToString().find(options.password), std::string::npos);
  EXPECT_NE(store.status().message().find("login refused"), std::string::npos)
      << store.status().ToString();
}


// docs/messages.md, "The Redis store": the key forms ("`Pm:<id>`") and the message hash's
// fields, as the tables list them.
struct DocumentedLayout {
  std::vector<std::string> key_forms;
  std::vector<std::string> fields;
};
DocumentedLayout ReadDocumentedLayout() {
  std::ifstream in(std::string(XA_SOURCE_DIR) + "/docs/messages.md");
  DocumentedLayout layout;
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## The Redis store";
    if (!in_section || line.rfind("| `", 0) != 0) continue;
    std::string cell = line.substr(3, line.find('`', 3) - 3);
    (cell.rfind("P", 0) == 0 ? layout.key_forms : layout.fields).push_back(cell);
  }
  return layout;
}

// A documented form as a pattern over real keys: P the prefix, <id> a message id, <status> and
// <dead> digits.
std::regex FormPattern(const std::string& form, const std::string& prefix) {
  std::string pattern = "^" + prefix;
  for (size_t i = 1; i < form.size();) {
    if (form.compare(i, 4, "<id>") == 0) {
      pattern += "[0-9a-f]{32}";
      i += 4;
    } else if (form.compare(i, 8, "<status>") == 0) {
      pattern += "[1-5]";
      i += 8;
    } else if (form.compare(i, 6, "<dead>") == 0) {
      pattern += "[01]";
      i += 6;
    } else {
      pattern += form[i] == ':' ? std::string(":") : std::string(1, form[i]);
      ++i;
    }
  }
  return std::regex(pattern + "$");
}

TEST_F(RedisStoreTest, KeysAndMessageFieldsAreExactlyTheDocumentedOnes) {
  DocumentedLayout documented = ReadDocumentedLayout();
  ASSERT_EQ(documented.key_forms.size(), 8u) << "docs/messages.md, \"The Redis store\": the keys";
  ASSERT_EQ(documented.fields.size(), 13u) << "docs/messages.md: the message hash's fields";
  auto store = Open();
  ASSERT_TRUE(store && store->Migrate().ok());
  Message m = Stored(*store);
  ASSERT_TRUE(store->AddEvent({m.id, 1001, "pre-sent", ""}).ok());
  ASSERT_TRUE(store->AddAudit({0, 1002, "ops", "resend", m.id, "changed"}).ok());
  ASSERT_TRUE(store->Commit().ok());
  auto held = store->LockOne(m.id);  // its lease key, while held
  ASSERT_TRUE(held.ok() && held->has_value());

  std::set<std::string> forms_seen;
  std::string keys = test::RedisCommand({"KEYS", prefix_ + "*"});
  std::istringstream lines(keys);
  for (std::string key; std::getline(lines, key);) {
    bool documented_form = false;
    for (const std::string& form : documented.key_forms) {
      if (std::regex_match(key, FormPattern(form, prefix_))) {
        documented_form = true;
        forms_seen.insert(form);
      }
    }
    EXPECT_TRUE(documented_form) << "key " << key << " has no form in docs/messages.md";
  }
  EXPECT_EQ(forms_seen, std::set<std::string>(documented.key_forms.begin(),
                                              documented.key_forms.end()))
      << "a documented key form the store did not write";
  std::string fields = test::RedisCommand({"HKEYS", prefix_ + "m:" + m.id});
  std::set<std::string> actual;
  std::istringstream field_lines(fields);
  for (std::string field; std::getline(field_lines, field);) actual.insert(field);
  EXPECT_EQ(actual, std::set<std::string>(documented.fields.begin(), documented.fields.end()));
  store->Rollback();
}

}  // namespace
}  // namespace xa::msg
