#include "daemons/msgd/redis_message_store.h"

#include <hiredis/hiredis.h>
#include <sys/random.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <thread>
#include <utility>

#include "src/base/byte_text.h"
#include "src/base/escape.h"

namespace xa::msg {
namespace {

// The key layout (docs/messages.md, "The Redis store"), P the key prefix:
//   P schema               the layout version
//   P m:<id>               hash: the message, one field a column (kFields)
//   P due:<status>         zset: live pending, ready and sent messages by next_attempt_ms
//   P st:<status>:<dead>   zset: every message by updated_ms (ties in id order, as Redis orders
//                          equal scores by member): paging, counts, purge
//   P ev:<id>              list: the message's history, oldest first, each a record of
//                          EncodeFields(at_ms, kind, detail)
//   P audit                zset: the audit table by seq, each member "<seq> " +
//                          EncodeFields(at_ms, operator, action, message_id, result)
//   P audit:seq            the last seq given
//   P lease:<id>           a store's token while it holds the message (PX lease)
//
// The message hash's fields, in the order the scripts receive them after the id.
constexpr const char* kFields[] = {"p", "t", "q", "b", "u", "s", "r",
                                   "c", "d", "cr", "up", "n", "e"};
constexpr size_t kFieldCount = std::size(kFields);

// Shared by the scripts: the prefix is ARGV[1]; index/unindex keep the zsets in step with a
// message's hash.
constexpr std::string_view kLuaPrelude = R"lua(
local P = ARGV[1]
local function unindex(id)
  local v = redis.call('HMGET', P .. 'm:' .. id, 's', 'd')
  if v[1] then
    redis.call('ZREM', P .. 'due:' .. v[1], id)
    redis.call('ZREM', P .. 'st:' .. v[1] .. ':' .. v[2], id)
  end
end
local function index(id, s, d, up, n)
  if d == '0' and (s == '1' or s == '2' or s == '3') then
    redis.call('ZADD', P .. 'due:' .. s, n, id)
  end
  redis.call('ZADD', P .. 'st:' .. s .. ':' .. d, up, id)
end
)lua";

// ARGV: P, token, lease_ms, id. 0: another holds it; 1: no such message (no lease taken);
// else the hash, leased to the token.
constexpr std::string_view kLuaLease = R"lua(
local lk = P .. 'lease:' .. ARGV[4]
local holder = redis.call('GET', lk)
if holder and holder ~= ARGV[2] then return 0 end
if redis.call('EXISTS', P .. 'm:' .. ARGV[4]) == 0 then return 1 end
redis.call('SET', lk, ARGV[2], 'PX', ARGV[3])
return redis.call('HGETALL', P .. 'm:' .. ARGV[4])
)lua";

// ARGV: P, token, lease_ms, now_ms, limit, statuses... Leases up to `limit` due messages no
// other store holds, earliest first: id, hash, id, hash, ...
constexpr std::string_view kLuaLeaseDue = R"lua(
local token, lease, now, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local found = {}
for k = 6, #ARGV do
  local offset, taken = 0, 0
  while taken < limit and offset < 20000 do
    local ids = redis.call('ZRANGEBYSCORE', P .. 'due:' .. ARGV[k], '-inf', now, 'WITHSCORES',
                           'LIMIT', offset, 200)
    if #ids == 0 then break end
    for j = 1, #ids, 2 do
      local holder = redis.call('GET', P .. 'lease:' .. ids[j])
      if (not holder) or holder == token then
        found[#found + 1] = {tonumber(ids[j + 1]), ids[j]}
        taken = taken + 1
        if taken >= limit then break end
      end
    end
    offset = offset + 200
  end
end
table.sort(found, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local out = {}
for j = 1, math.min(limit, #found) do
  local id = found[j][2]
  redis.call('SET', P .. 'lease:' .. id, token, 'PX', lease)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', P .. 'm:' .. id)
end
return out
)lua";

// ARGV: P, token, lease_ms, before_ms, limit. Leases up to `limit` live done messages updated
// before before_ms that no other store holds, oldest first: their ids.
constexpr std::string_view kLuaLeaseOldDone = R"lua(
local token, lease, limit = ARGV[2], ARGV[3], tonumber(ARGV[5])
local out, offset = {}, 0
while #out < limit and offset < 20000 do
  local ids = redis.call('ZRANGEBYSCORE', P .. 'st:4:0', '-inf', '(' .. ARGV[4], 'LIMIT', offset, 200)
  if #ids == 0 then break end
  for j = 1, #ids do
    local holder = redis.call('GET', P .. 'lease:' .. ids[j])
    if (not holder) or holder == token then
      redis.call('SET', P .. 'lease:' .. ids[j], token, 'PX', lease)
      out[#out + 1] = ids[j]
      if #out >= limit then break end
    end
  end
  offset = offset + 200
end
return out
)lua";

// ARGV: P, status, dead, after_updated_ms, after_id, limit: id, hash, ... in (updated, id) order
// after (after_updated_ms, after_id).
constexpr std::string_view kLuaList = R"lua(
local key = P .. 'st:' .. ARGV[2] .. ':' .. ARGV[3]
local after, after_id, limit = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local out, offset = {}, 0
while #out < 2 * limit do
  local ids = redis.call('ZRANGEBYSCORE', key, ARGV[4], '+inf', 'WITHSCORES', 'LIMIT', offset, 200)
  if #ids == 0 then break end
  for j = 1, #ids, 2 do
    if tonumber(ids[j + 1]) ~= after or ids[j] > after_id then
      out[#out + 1] = ids[j]
      out[#out + 1] = redis.call('HGETALL', P .. 'm:' .. ids[j])
      if #out >= 2 * limit then break end
    end
  end
  offset = offset + 200
end
return out
)lua";

// ARGV: P. status, dead, count, oldest updated_ms, ... for every non-empty pair.
constexpr std::string_view kLuaCounts = R"lua(
local out = {}
for s = 1, 5 do
  for d = 0, 1 do
    local key = P .. 'st:' .. s .. ':' .. d
    local n = redis.call('ZCARD', key)
    if n > 0 then
      local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      out[#out + 1] = s
      out[#out + 1] = d
      out[#out + 1] = n
      out[#out + 1] = first[2]
    end
  end
end
return out
)lua";

// ARGV: P, token, lease_ms, ids... Extends the token's leases; XA_LEASE when one is lost.
constexpr std::string_view kLuaRenew = R"lua(
for k = 4, #ARGV do
  local lk = P .. 'lease:' .. ARGV[k]
  if redis.call('GET', lk) ~= ARGV[2] then return redis.error_reply('XA_LEASE ' .. ARGV[k]) end
  redis.call('PEXPIRE', lk, ARGV[3])
end
return 'OK'
)lua";

// ARGV: P, token, ids... Drops the token's leases (another's are left alone).
constexpr std::string_view kLuaRelease = R"lua(
for k = 3, #ARGV do
  local lk = P .. 'lease:' .. ARGV[k]
  if redis.call('GET', lk) == ARGV[2] then redis.call('DEL', lk) end
end
return 'OK'
)lua";

// ARGV: P, token, n, n leased ids, then the writes: I|U id <13 fields>, D id, E id record,
// A record. Checks everything first (a script's writes are not undone by a later error), then
// writes, then drops the leases.
constexpr std::string_view kLuaCommit = R"lua(
local token, n = ARGV[2], tonumber(ARGV[3])
for k = 4, 3 + n do
  if redis.call('GET', P .. 'lease:' .. ARGV[k]) ~= token then
    return redis.error_reply('XA_LEASE ' .. ARGV[k])
  end
end
local i = 4 + n
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'I' or op == 'U' then
    local exists = redis.call('EXISTS', P .. 'm:' .. ARGV[i + 1]) == 1
    if op == 'I' and exists then return redis.error_reply('XA_DUP ' .. ARGV[i + 1]) end
    i = i + 15
  elseif op == 'D' or op == 'A' then
    i = i + 2
  elseif op == 'E' then
    i = i + 3
  else
    return redis.error_reply('XA_BAD_WRITE ' .. op)
  end
end
i = 4 + n
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'I' or op == 'U' then
    local id = ARGV[i + 1]
    unindex(id)
    redis.call('HSET', P .. 'm:' .. id, 'p', ARGV[i + 2], 't', ARGV[i + 3], 'q', ARGV[i + 4],
               'b', ARGV[i + 5], 'u', ARGV[i + 6], 's', ARGV[i + 7], 'r', ARGV[i + 8],
               'c', ARGV[i + 9], 'd', ARGV[i + 10], 'up', ARGV[i + 12], 'n', ARGV[i + 13],
               'e', ARGV[i + 14])
    -- An update keeps the creation time, as the SQL store's UPDATE does.
    if op == 'I' then redis.call('HSET', P .. 'm:' .. id, 'cr', ARGV[i + 11]) end
    index(id, ARGV[i + 7], ARGV[i + 10], ARGV[i + 12], ARGV[i + 13])
    i = i + 15
  elseif op == 'D' then
    unindex(ARGV[i + 1])
    redis.call('DEL', P .. 'm:' .. ARGV[i + 1], P .. 'ev:' .. ARGV[i + 1])
    i = i + 2
  elseif op == 'E' then
    redis.call('RPUSH', P .. 'ev:' .. ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    local seq = redis.call('INCR', P .. 'audit:seq')
    redis.call('ZADD', P .. 'audit', seq, seq .. ' ' .. ARGV[i + 1])
    i = i + 2
  end
end
for k = 4, 3 + n do redis.call('DEL', P .. 'lease:' .. ARGV[k]) end
return 'OK'
)lua";

}  // namespace

// A reply, copied out of hiredis's tree.
struct RedisValue {
  int type = REDIS_REPLY_NIL;
  long long integer = 0;
  std::string text;  // string, status, error
  std::vector<RedisValue> elements;
};

namespace {

RedisValue Copy(const redisReply& reply) {
  RedisValue value;
  value.type = reply.type;
  value.integer = reply.integer;
  if (reply.str != nullptr) value.text.assign(reply.str, reply.len);
  for (size_t i = 0; i < reply.elements; ++i) value.elements.push_back(Copy(*reply.element[i]));
  return value;
}

struct timeval TimevalOf(std::chrono::milliseconds ms) {
  struct timeval tv {};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// Fields of a record (an event, an audit entry) as "<length>:<bytes>" each: bytes come back
// exactly, whatever they hold.
std::string EncodeFields(std::initializer_list<std::string_view> fields) {
  std::string out;
  for (std::string_view field : fields) {
    out += std::to_string(field.size());
    out += ':';
    out += field;
  }
  return out;
}

bool DecodeFields(std::string_view text, std::vector<std::string>* fields) {
  fields->clear();
  while (!text.empty()) {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 9) return false;
    size_t size = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + colon, size);
    if (error != std::errc() || end != text.data() + colon || size > text.size() - colon - 1) {
      return false;
    }
    fields->emplace_back(text.substr(colon + 1, size));
    text.remove_prefix(colon + 1 + size);
  }
  return true;
}

bool ParseInt(std::string_view text, int64_t* value) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

// A zset score as Redis prints it ("1733300000000", or "1.7333e+12" for some): milliseconds
// are integers below 2^53, exact in a double.
bool ParseScore(std::string_view text, int64_t* value) {
  if (ParseInt(text, value)) return true;
  double score = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), score);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(score)) {
    return false;
  }
  *value = static_cast<int64_t>(score);
  return true;
}

Status Corrupt(const std::string& what) {
  return Status(Code::kCorruption, "message store (Redis): " + what + " cannot be read");
}

// A message from its id and HGETALL's field/value list.
Result<Message> ParseMessage(const std::string& id, const RedisValue& hash) {
  if (hash.type != REDIS_REPLY_ARRAY || hash.elements.size() != 2 * kFieldCount) {
    return Corrupt("message " + internal::EscapeForMessage(id) + "'s fields");
  }
  std::map<std::string_view, const std::string*> fields;
  for (size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    fields[hash.elements[i].text] = &hash.elements[i + 1].text;
  }
  Message m;
  m.id = id;
  std::string* texts[] = {&m.producer_id, &m.data_type, &m.consumer_queue, &m.body,
                          &m.query_url};
  const char* text_fields[] = {"p", "t", "q", "b", "u"};
  for (size_t i = 0; i < 5; ++i) {
    auto it = fields.find(text_fields[i]);
    if (it == fields.end()) return Corrupt("message " + id + "'s field " + text_fields[i]);
    *texts[i] = *it->second;
  }
  int64_t status = 0, resend = 0, check = 0, dead = 0;
  int64_t* numbers[] = {&status, &resend, &check, &dead, &m.created_ms, &m.updated_ms,
                        &m.next_attempt_ms};
  const char* number_fields[] = {"s", "r", "c", "d", "cr", "up", "n"};
  for (size_t i = 0; i < 7; ++i) {
    auto it = fields.find(number_fields[i]);
    if (it == fields.end() || !ParseInt(*it->second, numbers[i])) {
      return Corrupt("message " + id + "'s field " + number_fields[i]);
    }
  }
  std::optional<MessageStatus> parsed = MessageStatusFromNumber(status);
  if (!parsed) return Corrupt("message " + id + "'s status");
  m.status = *parsed;
  m.resend_count = static_cast<int32_t>(resend);
  m.check_count = static_cast<int32_t>(check);
  m.dead = dead != 0;
  auto error = fields.find("e");
  if (error == fields.end()) return Corrupt("message " + id + "'s field e");
  m.last_error = *error->second;
  return m;
}

// id, hash, id, hash, ... into messages.
Result<std::vector<Message>> ParseMessages(const RedisValue& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements.size() % 2 != 0) {
    return Corrupt("a list of messages");
  }
  std::vector<Message> messages;
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    if (!IsMessageId(reply.elements[i].text)) return Corrupt("a message id");
    Result<Message> message = ParseMessage(reply.elements[i].text, reply.elements[i + 1]);
    if (!message.ok()) return message.status();
    messages.push_back(std::move(message).value());
  }
  return messages;
}

std::string Script(std::string_view body) {
  return std::string(kLuaPrelude) + std::string(body);
}

Result<std::string> NewToken() {
  Result<std::string> token = NewMessageId();  // 16 random bytes as hex
  if (!token.ok()) return token.status().WithContext("choosing the store's lease token");
  return token;
}

}  // namespace

// One hiredis connection: a command's failure to reach Redis breaks it (kRmFail); an error
// Redis answers is kRmError, or what the scripts' markers mean.
class RedisMessageStore::Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const RedisStoreOptions& options) {
    const std::string where = "Redis at " + options.host + ":" + std::to_string(options.port);
    redisContext* context =
        redisConnectWithTimeout(options.host.c_str(), options.port, TimevalOf(options.io_timeout));
    if (context == nullptr) return Status(Code::kRmFail, where + ": cannot allocate a context");
    auto connection = std::unique_ptr<Connection>(new Connection(context, where));
    if (context->err != 0) {
      return Status(Code::kRmFail, where + ": cannot connect: " + context->errstr +
                                       "; is it running, and is host/port in [redis store] right?");
    }
    if (redisSetTimeout(context, TimevalOf(options.io_timeout)) != REDIS_OK) {
      return Status(Code::kRmFail, where + ": cannot set the I/O timeout");
    }
    if (!options.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!options.user.empty()) auth.push_back(options.user);
      auth.push_back(options.password);
      Result<RedisValue> authed = connection->Run(auth);
      if (!authed.ok()) {
        // Redis's words name no secret; ours neither.
        return Status(Code::kRmFail, where + ": login refused (" + authed.status().message() +
                                         "): check user and password_file in [redis store]");
      }
    }
    if (options.database != 0) {
      Result<RedisValue> selected = connection->Run({"SELECT", std::to_string(options.database)});
      if (!selected.ok()) return selected.status().WithContext(where + ": SELECT");
    }
    return connection;
  }

  ~Connection() { redisFree(context_); }

  bool broken() const { return broken_; }

  Result<RedisValue> Run(const std::vector<std::string>& args) {
    if (broken_) return Status(Code::kRmFail, where_ + ": the connection was lost");
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (reply == nullptr) {
      broken_ = true;
      return Status(Code::kRmFail, where_ + ": " +
                                       (context_->err != 0 ? context_->errstr : "no reply") +
                                       " (the transaction is gone)");
    }
    RedisValue value = Copy(*reply);
    freeReplyObject(reply);
    if (value.type != REDIS_REPLY_ERROR) return value;
    return ErrorOf(value.text);
  }

 private:
  Connection(redisContext* context, std::string where)
      : context_(context), where_(std::move(where)) {}

  Status ErrorOf(const std::string& text) {
    if (size_t at = text.find("XA_LEASE "); at != std::string::npos) {
      return Status(Code::kRbTimeout,
                    "the lease of message " + internal::EscapeForMessage(text.substr(at + 9, 32)) +
                        " expired before the transaction ended, and another may hold it: "
                        "nothing was written; lease_ms in [redis store] may be too short");
    }
    if (size_t at = text.find("XA_DUP "); at != std::string::npos) {
      return Status(Code::kDupId, "message " + internal::EscapeForMessage(text.substr(at + 7, 32)) +
                                      " exists");
    }
    // Still loading its append-only file after a restart, or busy with a long script: the
    // same as unreachable for now.
    if (text.starts_with("LOADING") || text.starts_with("BUSY") ||
        text.starts_with("MASTERDOWN")) {
      broken_ = true;
      return Status(Code::kRmFail, where_ + ": " + internal::EscapeForMessage(text));
    }
    return Status(Code::kRmError, where_ + " refused: " + internal::EscapeForMessage(text));
  }

  redisContext* const context_;
  const std::string where_;
  bool broken_ = false;
};

RedisMessageStore::RedisMessageStore(RedisStoreOptions options, std::string token)
    : options_(std::move(options)), token_(std::move(token)) {}

RedisMessageStore::~RedisMessageStore() { Rollback(); }

Result<std::unique_ptr<RedisMessageStore>> RedisMessageStore::Open(
    const RedisStoreOptions& options) {
  if (std::string error = RedisStoreOptionsError(options); !error.empty()) {
    return Status(Code::kInval, "[redis store]: " + error);
  }
  Result<std::string> token = NewToken();
  if (!token.ok()) return token.status();
  auto store = std::unique_ptr<RedisMessageStore>(new RedisMessageStore(options, *token));
  auto connection = Connection::Open(options);
  if (!connection.ok()) return connection.status().WithContext("message store");
  // Durable enough for confirmed messages, or refused.
  const struct {
    const char* setting;
    const char* required;
    const char* why;
  } kDurability[] = {
      {"appendonly", "yes", "without the append-only file a crash loses every write since the "
                            "last snapshot"},
      {"appendfsync", "always", "with everysec a crash loses about a second of confirmed "
                                "messages and acknowledgements"},
      {"maxmemory-policy", "noeviction", "an evicting policy deletes messages when memory runs "
                                         "short"},
  };
  for (const auto& rule : kDurability) {
    Result<RedisValue> got = (*connection)->Run({"CONFIG", "GET", rule.setting});
    if (!got.ok()) {
      return Status(Code::kConfig, "message store: cannot read Redis's " +
                                       std::string(rule.setting) + " (" +
                                       got.status().message() +
                                       "): the store must check its durability; allow CONFIG GET "
                                       "to the store's user");
    }
    std::string value = got->elements.size() == 2 ? got->elements[1].text : "";
    if (value != rule.required) {
      return Status(Code::kConfig, "message store: Redis has " + std::string(rule.setting) + " " +
                                       "'" + internal::EscapeForMessage(value) + "'" + ", not " +
                                       rule.required + ": " + rule.why + "; set " +
                                       rule.setting + " " + rule.required + " in redis.conf");
    }
  }
  store->connection_ = std::move(connection).value();
  return store;
}

template <typename T>
Result<T> RedisMessageStore::Failed(Status status) {
  Rollback();
  return status.WithContext("message store");
}

Result<RedisValue> RedisMessageStore::Run(const std::vector<std::string>& args) {
  if (!connection_ || connection_->broken()) {
    // A lost connection lost the transaction with it: its writes were never sent, its leases
    // expire on their own.
    leases_.clear();
    writes_.clear();
    written_.clear();
    connection_.reset();
    auto connection = Connection::Open(options_);
    if (!connection.ok()) return connection.status().WithContext("message store");
    connection_ = std::move(connection).value();
  }
  if (Status renewed = RenewLeasesIfDue(); !renewed.ok()) return Failed<RedisValue>(renewed);
  Result<RedisValue> got = connection_->Run(args);
  if (!got.ok()) return Failed<RedisValue>(got.status());
  return got;
}

Status RedisMessageStore::RenewLeasesIfDue() {
  if (leases_.empty()) return Status::Ok();
  auto now = std::chrono::steady_clock::now();
  if (now - leases_renewed_ < options_.lease / 3) return Status::Ok();
  std::vector<std::string> args = {"EVAL", Script(kLuaRenew), "0", options_.key_prefix, token_,
                                   std::to_string(options_.lease.count())};
  args.insert(args.end(), leases_.begin(), leases_.end());
  Result<RedisValue> renewed = connection_->Run(args);
  if (!renewed.ok()) return renewed.status();
  leases_renewed_ = now;
  return Status::Ok();
}

Result<std::optional<Message>> RedisMessageStore::Lease(std::string_view id) {
  auto deadline = std::chrono::steady_clock::now() + options_.lock_wait;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    Result<RedisValue> got = Run({"EVAL", Script(kLuaLease), "0", options_.key_prefix, token_,
                                  std::to_string(options_.lease.count()), std::string(id)});
    if (!got.ok()) return got.status();
    if (got->type == REDIS_REPLY_ARRAY) {
      if (leases_.empty()) leases_renewed_ = std::chrono::steady_clock::now();
      leases_.insert(std::string(id));
      Result<Message> message = ParseMessage(std::string(id), *got);
      if (!message.ok()) return Failed<std::optional<Message>>(message.status());
      return std::optional<Message>(std::move(message).value());
    }
    if (got->type == REDIS_REPLY_INTEGER && got->integer == 1) return std::optional<Message>();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Failed<std::optional<Message>>(Status(
          Code::kRbTimeout, "message " + std::string(id) + " stayed leased by another for " +
                                std::to_string(options_.lock_wait.count()) +
                                " ms (lock_wait_ms): try again"));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

std::optional<std::optional<Message>> RedisMessageStore::Written(std::string_view id) const {
  auto it = written_.find(id);
  if (it == written_.end()) return std::nullopt;
  return it->second;
}

Status RedisMessageStore::Migrate() {
  Result<int> version = SchemaVersion();
  if (!version.ok()) return version.status();
  if (*version > kRedisStoreSchemaVersion) {
    return Status(Code::kConfig, "message store: Redis holds key layout version " +
                                     std::to_string(*version) + " under prefix '" +
                                     options_.key_prefix + "', newer than this build's " +
                                     std::to_string(kRedisStoreSchemaVersion) +
                                     ": run a newer xa-msgd");
  }
  if (*version == kRedisStoreSchemaVersion) return Status::Ok();
  // Version 1 is the first layout: nothing to convert. NX: several daemons may start at once.
  return Run({"SET", options_.key_prefix + "schema", std::to_string(kRedisStoreSchemaVersion),
              "NX"})
      .status();
}

Result<int> RedisMessageStore::SchemaVersion() {
  Result<RedisValue> got = Run({"GET", options_.key_prefix + "schema"});
  if (!got.ok()) return got.status();
  if (got->type == REDIS_REPLY_NIL) return 0;
  int64_t version = 0;
  if (!ParseInt(got->text, &version) || version < 1 || version > 1'000'000) {
    return Failed<int>(Corrupt("the key layout version"));
  }
  return static_cast<int>(version);
}

namespace {
// The script arguments of a message's fields, in kFields order.
void AppendFields(const Message& m, std::vector<std::string>& out) {
  out.push_back(m.producer_id);
  out.push_back(m.data_type);
  out.push_back(m.consumer_queue);
  out.push_back(m.body);
  out.push_back(m.query_url);
  out.push_back(std::to_string(static_cast<int>(m.status)));
  out.push_back(std::to_string(m.resend_count));
  out.push_back(std::to_string(m.check_count));
  out.push_back(m.dead ? "1" : "0");
  out.push_back(std::to_string(m.created_ms));
  out.push_back(std::to_string(m.updated_ms));
  out.push_back(std::to_string(m.next_attempt_ms));
  out.push_back(m.last_error);
}
}  // namespace

Status RedisMessageStore::Insert(const Message& message) {
  if (!IsMessageId(message.id)) return MessageIdError(message.id);
  std::optional<std::optional<Message>> mine = Written(message.id);
  bool exists = mine.has_value() && mine->has_value();
  if (!mine.has_value()) {
    Result<RedisValue> got = Run({"EXISTS", options_.key_prefix + "m:" + message.id});
    if (!got.ok()) return got.status();
    exists = got->integer != 0;
  }
  if (exists) {
    Rollback();
    return Status(Code::kDupId, "message store: message " + message.id + " exists");
  }
  writes_.push_back("I");
  writes_.push_back(message.id);
  AppendFields(message, writes_);
  written_[message.id] = message;
  return Status::Ok();
}

Result<std::optional<Message>> RedisMessageStore::LockOne(std::string_view id) {
  if (!IsMessageId(id)) return MessageIdError(id);
  if (std::optional<std::optional<Message>> mine = Written(id); mine.has_value()) return *mine;
  return Lease(id);
}

Result<std::optional<Message>> RedisMessageStore::Get(std::string_view id) {
  if (!IsMessageId(id)) return MessageIdError(id);
  if (std::optional<std::optional<Message>> mine = Written(id); mine.has_value()) return *mine;
  Result<RedisValue> got = Run({"HGETALL", options_.key_prefix + "m:" + std::string(id)});
  if (!got.ok()) return got.status();
  if (got->type == REDIS_REPLY_ARRAY && got->elements.empty()) return std::optional<Message>();
  Result<Message> message = ParseMessage(std::string(id), *got);
  if (!message.ok()) return Failed<std::optional<Message>>(message.status());
  return std::optional<Message>(std::move(message).value());
}

Result<std::vector<Message>> RedisMessageStore::LockDue(std::span<const MessageStatus> statuses,
                                                        int64_t now_ms, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  if (statuses.empty()) return std::vector<Message>();
  std::vector<std::string> args = {"EVAL",
                                   Script(kLuaLeaseDue),
                                   "0",
                                   options_.key_prefix,
                                   token_,
                                   std::to_string(options_.lease.count()),
                                   std::to_string(now_ms),
                                   std::to_string(limit)};
  for (MessageStatus status : statuses) {
    if (status != MessageStatus::kPending && status != MessageStatus::kReady &&
        status != MessageStatus::kSent) {
      return Status(Code::kInval, "message store: only pending, ready and sent messages fall "
                                  "due, not " + std::string(MessageStatusName(status)));
    }
    args.push_back(std::to_string(static_cast<int>(status)));
  }
  Result<RedisValue> got = Run(args);
  if (!got.ok()) return got.status();
  Result<std::vector<Message>> due = ParseMessages(*got);
  if (!due.ok()) return Failed<std::vector<Message>>(due.status());
  if (!due->empty() && leases_.empty()) leases_renewed_ = std::chrono::steady_clock::now();
  for (const Message& message : *due) leases_.insert(message.id);
  return due;
}

Status RedisMessageStore::Update(const Message& message) {
  if (!IsMessageId(message.id)) return MessageIdError(message.id);
  std::optional<std::optional<Message>> mine = Written(message.id);
  if (mine.has_value() ? !mine->has_value() : !leases_.contains(message.id)) {
    // Not leased yet (the SQL store's UPDATE would take the row lock): take it now.
    bool gone = mine.has_value();
    if (!gone) {
      Result<std::optional<Message>> current = Lease(message.id);
      if (!current.ok()) return current.status();
      gone = !current->has_value();
    }
    if (gone) {
      Rollback();
      return Status(Code::kNoTa, "message store: message " + message.id + " is gone");
    }
  }
  writes_.push_back("U");
  writes_.push_back(message.id);
  AppendFields(message, writes_);
  Message& kept = written_[message.id].emplace(message);
  if (mine.has_value() && mine->has_value()) kept.created_ms = (*mine)->created_ms;
  return Status::Ok();
}

Result<bool> RedisMessageStore::Delete(std::string_view id) {
  if (!IsMessageId(id)) return MessageIdError(id);
  std::optional<std::optional<Message>> mine = Written(id);
  bool exists = mine.has_value() && mine->has_value();
  if (!mine.has_value()) {
    Result<std::optional<Message>> current =
        leases_.contains(std::string(id)) ? Get(id) : Lease(id);
    if (!current.ok()) return current.status();
    exists = current->has_value();
  }
  if (!exists) return false;
  writes_.push_back("D");
  writes_.push_back(std::string(id));
  written_[std::string(id)] = std::nullopt;
  return true;
}

Result<int> RedisMessageStore::PurgeDone(int64_t before_ms, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  Result<RedisValue> got = Run({"EVAL", Script(kLuaLeaseOldDone), "0", options_.key_prefix, token_,
                                std::to_string(options_.lease.count()),
                                std::to_string(before_ms), std::to_string(limit)});
  if (!got.ok()) return got.status();
  if (got->type != REDIS_REPLY_ARRAY) return Failed<int>(Corrupt("the purge's ids"));
  if (!got->elements.empty() && leases_.empty()) {
    leases_renewed_ = std::chrono::steady_clock::now();
  }
  int purged = 0;
  for (const RedisValue& id : got->elements) {
    if (!IsMessageId(id.text)) return Failed<int>(Corrupt("a message id"));
    leases_.insert(id.text);
    writes_.push_back("D");
    writes_.push_back(id.text);
    written_[id.text] = std::nullopt;
    ++purged;
  }
  return purged;
}

Status RedisMessageStore::AddEvent(const MessageEvent& event) {
  if (!IsMessageId(event.message_id)) return MessageIdError(event.message_id);
  writes_.push_back("E");
  writes_.push_back(event.message_id);
  writes_.push_back(EncodeFields({std::to_string(event.at_ms),
                                  std::string_view(event.kind).substr(0, 64),
                                  std::string_view(event.detail).substr(0, kMaxErrorSize)}));
  return Status::Ok();
}

Status RedisMessageStore::AddAudit(const AuditEntry& entry) {
  if (!IsMessageId(entry.message_id)) return MessageIdError(entry.message_id);
  writes_.push_back("A");
  writes_.push_back(EncodeFields({std::to_string(entry.at_ms),
                                  std::string_view(entry.operator_name).substr(0, kMaxProducerIdSize),
                                  std::string_view(entry.action).substr(0, 16), entry.message_id,
                                  std::string_view(entry.result).substr(0, 16)}));
  return Status::Ok();
}

Result<std::vector<AuditEntry>> RedisMessageStore::Audit(int64_t before_seq, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  Result<RedisValue> got = Run({"ZREVRANGEBYSCORE", options_.key_prefix + "audit",
                                "(" + std::to_string(before_seq), "-inf", "LIMIT", "0",
                                std::to_string(limit)});
  if (!got.ok()) return got.status();
  std::vector<AuditEntry> page;
  std::vector<std::string> fields;
  for (const RedisValue& member : got->elements) {
    size_t space = member.text.find(' ');
    AuditEntry entry;
    if (space == std::string::npos ||
        !ParseInt(std::string_view(member.text).substr(0, space), &entry.seq) ||
        !DecodeFields(std::string_view(member.text).substr(space + 1), &fields) ||
        fields.size() != 5 || !ParseInt(fields[0], &entry.at_ms)) {
      return Failed<std::vector<AuditEntry>>(Corrupt("an audit entry"));
    }
    entry.operator_name = std::move(fields[1]);
    entry.action = std::move(fields[2]);
    entry.message_id = std::move(fields[3]);
    entry.result = std::move(fields[4]);
    page.push_back(std::move(entry));
  }
  return page;
}

Result<std::vector<MessageEvent>> RedisMessageStore::Events(std::string_view id, int limit) {
  if (!IsMessageId(id)) return MessageIdError(id);
  if (limit < 1 || limit > 1000) return LimitError();
  Result<RedisValue> got = Run({"LRANGE", options_.key_prefix + "ev:" + std::string(id),
                                std::to_string(-limit), "-1"});
  if (!got.ok()) return got.status();
  std::vector<MessageEvent> events;
  std::vector<std::string> fields;
  for (const RedisValue& record : got->elements) {
    MessageEvent event;
    event.message_id = std::string(id);
    if (!DecodeFields(record.text, &fields) || fields.size() != 3 ||
        !ParseInt(fields[0], &event.at_ms)) {
      return Failed<std::vector<MessageEvent>>(Corrupt("an event of message " + event.message_id));
    }
    event.kind = std::move(fields[1]);
    event.detail = std::move(fields[2]);
    events.push_back(std::move(event));
  }
  return events;
}

Result<std::vector<Message>> RedisMessageStore::List(MessageStatus status, bool dead,
                                                     int64_t after_updated_ms,
                                                     std::string_view after_id, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  if (!after_id.empty() && !IsMessageId(after_id)) return MessageIdError(after_id);
  // Scores are doubles: below -2^53 every time is "before everything".
  constexpr int64_t kFirst = -(int64_t{1} << 53);
  Result<RedisValue> got =
      Run({"EVAL", Script(kLuaList), "0", options_.key_prefix,
           std::to_string(static_cast<int>(status)), dead ? "1" : "0",
           std::to_string(std::max(after_updated_ms, kFirst)), std::string(after_id),
           std::to_string(limit)});
  if (!got.ok()) return got.status();
  Result<std::vector<Message>> page = ParseMessages(*got);
  if (!page.ok()) return Failed<std::vector<Message>>(page.status());
  return page;
}

Result<std::map<MessageStatus, StatusCount>> RedisMessageStore::Counts() {
  Result<RedisValue> got = Run({"EVAL", Script(kLuaCounts), "0", options_.key_prefix});
  if (!got.ok()) return got.status();
  std::map<MessageStatus, StatusCount> counts;
  if (got->elements.size() % 4 != 0) {
    return Failed<std::map<MessageStatus, StatusCount>>(Corrupt("the counts"));
  }
  for (size_t i = 0; i < got->elements.size(); i += 4) {
    std::optional<MessageStatus> status = MessageStatusFromNumber(got->elements[i].integer);
    int64_t oldest = 0;
    if (!status || !ParseScore(got->elements[i + 3].text, &oldest)) {
      return Failed<std::map<MessageStatus, StatusCount>>(Corrupt("the counts"));
    }
    StatusCount& c = counts[*status];
    (got->elements[i + 1].integer != 0 ? c.dead : c.live) += got->elements[i + 2].integer;
    if (!c.oldest_updated_ms || oldest < *c.oldest_updated_ms) c.oldest_updated_ms = oldest;
  }
  return counts;
}

Status RedisMessageStore::Commit() {
  if (writes_.empty() && leases_.empty()) return Status::Ok();
  std::vector<std::string> args = {"EVAL", Script(kLuaCommit), "0", options_.key_prefix, token_,
                                   std::to_string(leases_.size())};
  args.insert(args.end(), leases_.begin(), leases_.end());
  args.insert(args.end(), std::make_move_iterator(writes_.begin()),
              std::make_move_iterator(writes_.end()));
  writes_.clear();
  Result<RedisValue> done = Run(args);
  if (!done.ok()) return done.status();
  leases_.clear();
  written_.clear();
  return Status::Ok();
}

void RedisMessageStore::Rollback() {
  writes_.clear();
  written_.clear();
  if (leases_.empty()) return;
  std::vector<std::string> args = {"EVAL", Script(kLuaRelease), "0", options_.key_prefix, token_};
  args.insert(args.end(), leases_.begin(), leases_.end());
  leases_.clear();
  // Best effort: a lease left behind expires on its own.
  if (connection_ && !connection_->broken()) (void)connection_->Run(args);
}

}  // namespace xa::msg
