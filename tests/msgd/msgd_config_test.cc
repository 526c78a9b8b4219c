// xa-msgd's configuration (msgd_config.h) and tokens file (msgd_tokens.h): what is accepted,
// and that each mistake is refused naming the line and what to change, never a secret.

#include <gtest/gtest.h>

#include <string>

#include "daemons/msgd/msgd_config.h"
#include "daemons/msgd/msgd_tokens.h"

namespace xa::msg {
namespace {

constexpr char kPasswordVariable[] = "XA_MSGD_TEST_PASSWORD";

std::string Config(const std::string& top, const std::string& sections = "") {
  return top +
         "\n[rm store]\ndriver = odbc\ndsn = msg\nuser = xa\npassword_env = "
         "XA_MSGD_TEST_PASSWORD\n"
         "[broker rabbitmq]\nhost = 127.0.0.1\nport = 15673\nuser = xa_msg\npassword_env = "
         "XA_MSGD_TEST_PASSWORD\n" +
         sections;
}

class MsgdConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv(kPasswordVariable, "s3cret-pw", 1); }
  void TearDown() override { unsetenv(kPasswordVariable); }
};

TEST_F(MsgdConfigTest, FullConfigurationIsRead) {
  Result<MsgdConfig> config = ParseMsgdConfig(
      Config("listen = 127.0.0.1:0\ntokens_file = /etc/xa/t\nmax_body_bytes = 4096\n"
             "check_ladder_ms = 100, 200\nredelivery_ladder_ms = 300\nmax_redeliveries = 7\n"
             "allowed_query_prefixes = http://127.0.0.1:9/, https://orders.example/q\n"
             "table_prefix = msg_\ndone_retention_ms = 86400000\n"),
      "/etc/xa/msgd.conf");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->listen, "127.0.0.1:0");
  EXPECT_EQ(config->service.max_body_bytes, 4096u);
  EXPECT_EQ(config->service.timings.check_ladder.size(), 2u);
  EXPECT_EQ(config->service.timings.redelivery_ladder.at(0).count(), 300);
  EXPECT_EQ(config->service.timings.max_redeliveries, 7);
  EXPECT_EQ(config->service.allowed_query_prefixes.size(), 2u);
  EXPECT_EQ(config->table_prefix, "msg_");
  EXPECT_EQ(config->service.done_retention.count(), 86400000);
  EXPECT_EQ(config->broker.port, 15673);
  EXPECT_EQ(config->broker.password, "s3cret-pw");
  EXPECT_EQ(config->store.Get("dsn"), "msg");
}

TEST_F(MsgdConfigTest, EachMistakeIsRefusedNamingIt) {
  struct Case {
    std::string text;
    std::string names;
  };
  const Case cases[] = {
      {Config("tokens_file = /t"), "listen is required"},
      {Config("listen = 127.0.0.1:1"), "tokens_file is required"},
      {Config("listen = 127.0.0.1:1\ntokens_file = /t\ncheck_ladder_ms = 10, x"),
       "check_ladder_ms"},
      {Config("listen = 127.0.0.1:1\ntokens_file = /t\nmax_body_bytes = 0"), "max_body_bytes"},
      {Config("listen = 127.0.0.1:1\ntokens_file = /t\ntable_prefix = x;drop"), "table_prefix"},
      {Config("listen = 127.0.0.1:1\ntokens_file = /t\nallowed_query_prefixes = ftp://x/"),
       "allowed_query_prefixes"},
      {Config("listen = 127.0.0.1:1\ntokens_file = /t\nbogus = 1"), "bogus"},
      {"listen = 127.0.0.1:1\ntokens_file = /t\n", "[rm store] or [redis store] is required"},
      {Config("listen = 127.0.0.1:1\ntokens_file = /t", "[rm other]\ndriver = odbc\ndsn = x\n"),
       "the only [rm] section"},
  };
  for (const Case& c : cases) {
    Result<MsgdConfig> config = ParseMsgdConfig(c.text, "/etc/xa/msgd.conf");
    ASSERT_FALSE(config.ok()) << c.names;
    EXPECT_EQ(config.status().code(), Code::kConfig);
    EXPECT_NE(config.status().message().find(c.names), std::string::npos)
        << config.status().message();
    EXPECT_EQ(config.status().message().find("s3cret-pw"), std::string::npos);
  }
}

// The broker alone, for a configuration whose store is on Redis.
std::string RedisConfig(const std::string& redis_section, const std::string& top = "") {
  return "listen = 127.0.0.1:1\ntokens_file = /t\ntable_prefix = msg_\n" + top +
         "[broker rabbitmq]\nhost = 127.0.0.1\nuser = xa_msg\npassword_env = "
         "XA_MSGD_TEST_PASSWORD\n[redis store]\n" +
         redis_section;
}

TEST_F(MsgdConfigTest, RedisStoreIsReadWithTheTablePrefixAsItsKeyPrefix) {
  Result<MsgdConfig> config = ParseMsgdConfig(
      RedisConfig("host = 127.0.0.1\nport = 16379\ndb = 2\npassword_env = "
                  "XA_MSGD_TEST_PASSWORD\nlease_ms = 45000\nlock_wait_ms = 500\n"),
      "/etc/xa/msgd.conf");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(config->redis_store.has_value());
  EXPECT_EQ(config->redis_store->port, 16379);
  EXPECT_EQ(config->redis_store->database, 2);
  EXPECT_EQ(config->redis_store->password, "s3cret-pw");
  EXPECT_EQ(config->redis_store->key_prefix, "msg_");
  EXPECT_EQ(config->redis_store->lease.count(), 45000);
  EXPECT_EQ(config->redis_store->lock_wait.count(), 500);
}

TEST_F(MsgdConfigTest, EachRedisStoreMistakeIsRefusedNamingIt) {
  struct Case {
    std::string text;
    std::string names;
  };
  const Case cases[] = {
      // The defaults' broker confirm timeout is 10 s: a lease must outlast two of them.
      {RedisConfig("host = 127.0.0.1\nlease_ms = 15000\n"), "lease_ms 15000 is too short"},
      {RedisConfig("host = 127.0.0.1\nlease_ms = 5000\n",
                   "back_query_timeout_ms = 3000\n"),
       "at least twice"},
      {RedisConfig("host = 127.0.0.1\nlease_ms = 50\n"), "lease_ms"},
      {RedisConfig("host = 127.0.0.1\nappendfsync = everysec\n"), "appendfsync"},
      {RedisConfig("host = 127.0.0.1\ndb = -1\n"), "db"},
      {RedisConfig("host = 127.0.0.1\n") + "[rm store]\ndriver = odbc\ndsn = x\n",
       "a second store"},
      {"listen = 127.0.0.1:1\ntokens_file = /t\n[broker rabbitmq]\nhost = h\nuser = u\n"
       "[redis cache]\nhost = 127.0.0.1\n",
       "the only [redis] section"},
  };
  for (const Case& c : cases) {
    Result<MsgdConfig> config = ParseMsgdConfig(c.text, "/etc/xa/msgd.conf");
    ASSERT_FALSE(config.ok()) << c.names;
    EXPECT_EQ(config.status().code(), Code::kConfig) << config.status().ToString();
    EXPECT_NE(config.status().message().find(c.names), std::string::npos)
        << config.status().message();
    EXPECT_EQ(config.status().message().find("s3cret-pw"), std::string::npos);
  }
}

const std::string kTokenA(40, 'a');
const std::string kTokenB(40, 'b');

TEST_F(MsgdConfigTest, NotifierSectionIsReadWithItsUrlPolicy) {
  Result<MsgdConfig> config = ParseMsgdConfig(
      Config("listen = 127.0.0.1:0\ntokens_file = /t",
             "[notifier webhooks]\nworkers = 32\ncall_timeout_ms = 5000\n"
             "allowed_schemes = https, http\nallowed_hosts = *.shop.example\n"
             "allowed_networks = 10.1.0.0/16\nallow_public_addresses = no\n"
             "breaker_failures = 3\nbreaker_cooldown_ms = 1000\n"),
      "/c");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(config->notifier.has_value());
  EXPECT_EQ(config->notifier->workers, 32);
  EXPECT_EQ(config->notifier->call_timeout.count(), 5000);
  EXPECT_EQ(config->notifier->url_policy.schemes, (std::vector<std::string>{"https", "http"}));
  EXPECT_EQ(config->notifier->url_policy.hosts, std::vector<std::string>{"*.shop.example"});
  EXPECT_EQ(config->notifier->url_policy.networks.size(), 1u);
  EXPECT_FALSE(config->notifier->url_policy.allow_public);
  EXPECT_EQ(config->notifier->breaker.failures_to_open, 3);
  Result<MsgdConfig> without = ParseMsgdConfig(Config("listen = 127.0.0.1:0\ntokens_file = /t"), "/c");
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->notifier.has_value());
}

TEST_F(MsgdConfigTest, NotifierMistakesAreRefusedNamingThem) {
  const std::pair<std::string, std::string> cases[] = {
      {"[notifier webhooks]\nallowed_schemes = ftp\n", "allowed_schemes lists http and https"},
      {"[notifier webhooks]\nallowed_networks = 10.0.0.0\n", "not a network"},
      {"[notifier webhooks]\nworkers = 0\n", "workers"},
      {"[notifier webhooks]\nallow_public_addresses = maybe\n", "yes or no"},
      {"[notifier webhooks]\nurl = x\n", "url"},
      {"[notifier a]\n[notifier b]\n", "a second [notifier]"},
  };
  for (const auto& [section, names] : cases) {
    Result<MsgdConfig> config =
        ParseMsgdConfig(Config("listen = 127.0.0.1:0\ntokens_file = /t", section), "/c");
    ASSERT_FALSE(config.ok()) << section;
    EXPECT_NE(config.status().message().find(names), std::string::npos)
        << config.status().message();
  }
  Result<MsgdConfig> beside_redis = ParseMsgdConfig(
      "listen = 127.0.0.1:0\ntokens_file = /t\n[redis store]\nhost = 127.0.0.1\n"
      "[broker rabbitmq]\nhost = 127.0.0.1\nuser = u\n[notifier webhooks]\n",
      "/c");
  ASSERT_FALSE(beside_redis.ok());
  EXPECT_NE(beside_redis.status().message().find("SQL store"), std::string::npos)
      << beside_redis.status().message();
}

TEST(MsgdTokensTest, MerchantTokensNameTheirEndpoint) {
  Result<TokenTable> table =
      TokenTable::Parse("merchant shop-42 " + kTokenA + "\n", "/t");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  std::optional<Caller> merchant = table->Authenticate("Bearer " + kTokenA);
  ASSERT_TRUE(merchant.has_value());
  EXPECT_EQ(merchant->role, Role::kMerchant);
  EXPECT_EQ(merchant->name, "shop-42");
  EXPECT_EQ(RoleName(Role::kMerchant), "merchant");
}

TEST(MsgdTokensTest, BearerTokensNameTheirCallerAndRole) {
  Result<TokenTable> table = TokenTable::Parse(
      "# role name token\nproducer orders " + kTokenA + "\n\noperator alice " + kTokenB + "\n",
      "/t");
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  std::optional<Caller> orders = table->Authenticate("Bearer " + kTokenA);
  ASSERT_TRUE(orders.has_value());
  EXPECT_EQ(orders->name, "orders");
  EXPECT_EQ(orders->role, Role::kProducer);
  EXPECT_EQ(table->Authenticate("Bearer " + kTokenB)->role, Role::kOperator);
  EXPECT_FALSE(table->Authenticate("Bearer " + kTokenA + "x").has_value());
  EXPECT_FALSE(table->Authenticate(kTokenA).has_value());
  EXPECT_FALSE(table->Authenticate("").has_value());
}

TEST(MsgdTokensTest, BadLinesAreRefusedWithoutQuotingTheToken) {
  const std::pair<std::string, std::string> cases[] = {
      {"producer orders short\n", "must be 32 to 256"},
      {"admin orders " + kTokenA + "\n", "role must be"},
      {"producer orders " + kTokenA + "\nconsumer orders " + kTokenB + "\n", "listed twice"},
      {"producer a " + kTokenA + "\nconsumer b " + kTokenA + "\n", "each caller needs its own"},
      {"producer orders\n", "'<role> <name> <token>'"},
      {"# nothing\n", "no caller"},
  };
  for (const auto& [text, names] : cases) {
    Result<TokenTable> table = TokenTable::Parse(text, "/t");
    ASSERT_FALSE(table.ok()) << names;
    EXPECT_NE(table.status().message().find(names), std::string::npos)
        << table.status().message();
    EXPECT_EQ(table.status().message().find(kTokenA), std::string::npos);
  }
}

}  // namespace
}  // namespace xa::msg
