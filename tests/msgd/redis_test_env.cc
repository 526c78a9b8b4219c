#include "tests/msgd/redis_test_env.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "testutil/db_env.h"

namespace xa::test {
namespace {

struct ContextFree {
  void operator()(redisContext* context) const { redisFree(context); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
struct ReplyFree {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

Reply Command(redisContext* context, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return Reply(static_cast<redisReply*>(redisCommandArgv(
      context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

Context Connect() {
  msg::RedisStoreOptions options = RedisStoreOptionsFromEnv("xa_test_");
  Context context(redisConnect(options.host.c_str(), options.port));
  if (!context || context->err != 0) {
    ADD_FAILURE() << "cannot reach Redis at " << options.host << ":" << options.port;
    return nullptr;
  }
  Reply auth = Command(context.get(), {"AUTH", options.password});
  if (!auth || auth->type == REDIS_REPLY_ERROR) {
    ADD_FAILURE() << "Redis refused the test's login";
    return nullptr;
  }
  return context;
}

}  // namespace

msg::RedisStoreOptions RedisStoreOptionsFromEnv(const std::string& key_prefix) {
  msg::RedisStoreOptions options;
  options.host = RequireEnv("XA_TEST_REDIS_HOST");
  options.port = std::atoi(RequireEnv("XA_TEST_REDIS_PORT").c_str());
  std::string password_file = RequireEnv("XA_TEST_REDIS_PASSWORD_FILE");
  if (!password_file.empty()) options.password = ReadSecretFile(password_file);
  options.key_prefix = key_prefix;
  return options;
}

void DeleteRedisKeys(const std::string& key_prefix) {
  Context context = Connect();
  if (!context) return;
  std::string cursor = "0";
  do {
    Reply page = Command(context.get(), {"SCAN", cursor, "MATCH", key_prefix + "*", "COUNT", "500"});
    if (!page || page->type != REDIS_REPLY_ARRAY || page->elements != 2) {
      ADD_FAILURE() << "SCAN failed while deleting the test's keys";
      return;
    }
    cursor.assign(page->element[0]->str, page->element[0]->len);
    std::vector<std::string> del = {"DEL"};
    for (size_t i = 0; i < page->element[1]->elements; ++i) {
      del.emplace_back(page->element[1]->element[i]->str, page->element[1]->element[i]->len);
    }
    if (del.size() > 1) Command(context.get(), del);
  } while (cursor != "0");
}

std::string RedisCommand(const std::vector<std::string>& args) {
  Context context = Connect();
  if (!context) return "";
  Reply reply = Command(context.get(), args);
  if (!reply) {
    ADD_FAILURE() << "Redis did not answer " << args[0];
    return "";
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    ADD_FAILURE() << "Redis refused " << args[0] << ": " << std::string(reply->str, reply->len);
    return "";
  }
  if (reply->type == REDIS_REPLY_INTEGER) return std::to_string(reply->integer);
  if (reply->type == REDIS_REPLY_ARRAY) {
    std::string joined;
    for (size_t i = 0; i < reply->elements; ++i) {
      if (i > 0) joined += '\n';
      if (reply->element[i]->str) joined.append(reply->element[i]->str, reply->element[i]->len);
    }
    return joined;
  }
  return reply->str ? std::string(reply->str, reply->len) : "";
}

}  // namespace xa::test
