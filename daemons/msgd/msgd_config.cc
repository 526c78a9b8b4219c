#include "daemons/msgd/msgd_config.h"

#include <string_view>
#include <utility>

#include "src/base/escape.h"

namespace xa::msg {
namespace {

using internal::ConfigEntry;
using internal::ConfigFile;
using internal::ConfigSection;
using internal::IntegerSetting;
using internal::QuotedForMessage;

const internal::SectionKind kBrokerSection{"broker", "a broker", "broker"};
const internal::SectionKind kRedisSection{"redis", "a Redis store", "Redis store"};
const internal::SectionKind kNotifierSection{"notifier", "a notifier", "notifier"};
const internal::ConfigGrammar kGrammar{
    "xa-msgd", {internal::kRmSection, kBrokerSection, kRedisSection, kNotifierSection}};

constexpr std::string_view kTopKeys[] = {
    "listen",         "tokens_file",          "table_prefix",     "max_body_bytes",
    "http_threads",   "batch_size",           "poll_interval_ms", "confirm_timeout_ms",
    "check_ladder_ms", "back_query_timeout_ms", "allowed_query_prefixes", "ack_timeout_ms",
    "redelivery_ladder_ms", "max_redeliveries", "publish_retry_ms", "done_retention_ms"};
constexpr std::string_view kBrokerKeys[] = {"host",          "port",         "vhost",
                                            "user",          "password_file", "password_env",
                                            "confirm_timeout_ms"};

constexpr std::string_view kRedisKeys[] = {"host",         "port",         "db",
                                           "user",         "password_file", "password_env",
                                           "lease_ms",     "lock_wait_ms"};

constexpr std::string_view kNotifierKeys[] = {
    "workers",          "batch_size",       "connect_timeout_ms",     "call_timeout_ms",
    "max_body_bytes",   "allowed_schemes",  "allowed_hosts",          "allowed_networks",
    "allow_public_addresses", "breaker_failures", "breaker_cooldown_ms"};

constexpr IntegerSetting kNotifierWorkers{"workers", 1, 1024};
constexpr IntegerSetting kNotifierTimeoutMs{"a timeout (ms)", 10, 600'000};
constexpr IntegerSetting kBreakerFailures{"breaker_failures", 1, 1000};
constexpr IntegerSetting kBreakerCooldownMs{"breaker_cooldown_ms", 100, 3'600'000};
constexpr IntegerSetting kMaxBodyBytes{"max_body_bytes", 1, 16 * 1024 * 1024};
constexpr IntegerSetting kHttpThreads{"http_threads", 1, 256};
constexpr IntegerSetting kBatchSize{"batch_size", 1, 1000};
constexpr IntegerSetting kPollIntervalMs{"poll_interval_ms", 10, 600'000};
constexpr IntegerSetting kConfirmTimeoutMs{"confirm_timeout_ms", 10, 86'400'000};
constexpr IntegerSetting kLadderStepMs{"a ladder step (ms)", 10, 86'400'000};
constexpr IntegerSetting kBackQueryTimeoutMs{"back_query_timeout_ms", 10, 600'000};
constexpr IntegerSetting kAckTimeoutMs{"ack_timeout_ms", 10, 86'400'000};
constexpr IntegerSetting kMaxRedeliveries{"max_redeliveries", 0, 1000};
constexpr IntegerSetting kPublishRetryMs{"publish_retry_ms", 10, 3'600'000};
constexpr IntegerSetting kDoneRetentionMs{"done_retention_ms", 0, 315'360'000'000};
constexpr IntegerSetting kBrokerConfirmTimeoutMs{"confirm_timeout_ms", 10, 600'000};
constexpr IntegerSetting kRedisDb{"db", 0, 1'000'000};
constexpr IntegerSetting kLeaseMs{"lease_ms", 100, 3'600'000};
constexpr IntegerSetting kLockWaitMs{"lock_wait_ms", 0, 600'000};
constexpr size_t kMaxLadderSteps = 64;

std::string Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return std::string(text);
}

std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> items;
  while (true) {
    size_t comma = list.find(',');
    items.push_back(Trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) return items;
    list.remove_prefix(comma + 1);
  }
}

Result<std::vector<std::chrono::milliseconds>> ReadLadder(const ConfigFile& file,
                                                          const ConfigEntry& entry) {
  std::vector<std::chrono::milliseconds> ladder;
  for (const std::string& item : SplitList(entry.value)) {
    ConfigEntry one = entry;
    one.value = item;
    Result<int64_t> ms = file.Integer(kLadderStepMs, one);
    if (!ms.ok()) {
      return file.Error(entry.line, entry.key + " needs '<ms>, <ms>...', each 10 to 86400000, "
                                                "not " + QuotedForMessage(entry.value));
    }
    ladder.emplace_back(*ms);
  }
  if (ladder.size() > kMaxLadderSteps) {
    return file.Error(entry.line, entry.key + " has more than " +
                                      std::to_string(kMaxLadderSteps) + " steps");
  }
  return ladder;
}

Status ReadTopLevel(const ConfigFile& file, MsgdConfig& config) {
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(file.top, kTopKeys));
  ServiceOptions& service = config.service;
  for (const ConfigEntry& entry : file.top.entries) {
    const std::string& key = entry.key;
    auto integer = [&](const IntegerSetting& setting) { return file.Integer(setting, entry); };
    if (key == "listen") {
      if (entry.value.empty()) return file.Error(entry.line, "listen needs <IPv4>:<port>");
      config.listen = entry.value;
    } else if (key == "tokens_file") {
      if (entry.value.empty()) return file.Error(entry.line, "tokens_file needs a path");
      config.tokens_file = entry.value;
    } else if (key == "table_prefix") {
      if (!IsTablePrefix(entry.value)) {
        return file.Error(entry.line, "table_prefix must be 1 to 31 of [a-z0-9_], starting with "
                                      "a letter or '_', not " + QuotedForMessage(entry.value));
      }
      config.table_prefix = entry.value;
    } else if (key == "check_ladder_ms" || key == "redelivery_ladder_ms") {
      auto ladder = ReadLadder(file, entry);
      if (!ladder.ok()) return ladder.status();
      (key == "check_ladder_ms" ? service.timings.check_ladder
                                : service.timings.redelivery_ladder) = std::move(ladder).value();
    } else if (key == "allowed_query_prefixes") {
      for (const std::string& prefix : SplitList(entry.value)) {
        if (!(prefix.starts_with("http://") || prefix.starts_with("https://")) ||
            prefix.find('/', prefix.find("//") + 2) == std::string::npos) {
          return file.Error(entry.line, "allowed_query_prefixes needs URLs with a host and a "
                                        "path ('http://10.0.0.5:8080/'), each allowing what "
                                        "starts with it, not " + QuotedForMessage(prefix));
        }
        service.allowed_query_prefixes.push_back(prefix);
      }
    } else {
      const IntegerSetting* setting = nullptr;
      if (key == "max_body_bytes") setting = &kMaxBodyBytes;
      if (key == "http_threads") setting = &kHttpThreads;
      if (key == "batch_size") setting = &kBatchSize;
      if (key == "poll_interval_ms") setting = &kPollIntervalMs;
      if (key == "confirm_timeout_ms") setting = &kConfirmTimeoutMs;
      if (key == "back_query_timeout_ms") setting = &kBackQueryTimeoutMs;
      if (key == "ack_timeout_ms") setting = &kAckTimeoutMs;
      if (key == "max_redeliveries") setting = &kMaxRedeliveries;
      if (key == "publish_retry_ms") setting = &kPublishRetryMs;
      if (key == "done_retention_ms") setting = &kDoneRetentionMs;
      Result<int64_t> value = integer(*setting);
      if (!value.ok()) return value.status();
      std::chrono::milliseconds ms(*value);
      if (key == "max_body_bytes") service.max_body_bytes = static_cast<size_t>(*value);
      if (key == "http_threads") config.http_threads = static_cast<int>(*value);
      if (key == "batch_size") service.batch_size = static_cast<int>(*value);
      if (key == "poll_interval_ms") service.poll_interval = ms;
      if (key == "confirm_timeout_ms") service.timings.confirm_timeout = ms;
      if (key == "back_query_timeout_ms") config.back_query_timeout = ms;
      if (key == "ack_timeout_ms") service.timings.ack_timeout = ms;
      if (key == "max_redeliveries") service.timings.max_redeliveries = static_cast<int>(*value);
      if (key == "publish_retry_ms") service.timings.publish_retry = ms;
      if (key == "done_retention_ms") service.done_retention = ms;
    }
  }
  if (config.listen.empty()) return file.Error(0, "listen is required: <IPv4>:<port>");
  if (config.tokens_file.empty()) {
    return file.Error(0, "tokens_file is required: the callers' tokens (mode 0600)");
  }
  service.failure_pause = service.poll_interval;
  return Status::Ok();
}

Status ReadBrokerSection(const ConfigFile& file, const ConfigSection& section,
                         BrokerConfig& broker) {
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(section, kBrokerKeys));
  for (const ConfigEntry& entry : section.entries) {
    if (entry.key == "host") {
      broker.host = entry.value;
    } else if (entry.key == "port") {
      auto port = file.Integer(internal::kPort, entry);
      if (!port.ok()) return port.status();
      broker.port = static_cast<int>(*port);
    } else if (entry.key == "vhost") {
      broker.vhost = entry.value;
    } else if (entry.key == "user") {
      broker.user = entry.value;
    } else if (entry.key == "confirm_timeout_ms") {
      auto ms = file.Integer(kBrokerConfirmTimeoutMs, entry);
      if (!ms.ok()) return ms.status();
      broker.confirm_timeout = std::chrono::milliseconds(*ms);
    } else {  // password_file, password_env
      auto password = file.Password(entry);
      if (!password.ok()) return password.status();
      broker.password = std::move(password).value();
    }
  }
  if (broker.host.empty() || broker.user.empty()) {
    return file.Error(section.line, section.Label() + " needs host and user");
  }
  return Status::Ok();
}

Status ReadRedisSection(const ConfigFile& file, const ConfigSection& section,
                        RedisStoreOptions& redis) {
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(section, kRedisKeys));
  for (const ConfigEntry& entry : section.entries) {
    if (entry.key == "host") {
      redis.host = entry.value;
    } else if (entry.key == "user") {
      redis.user = entry.value;
    } else if (entry.key == "password_file" || entry.key == "password_env") {
      auto password = file.Password(entry);
      if (!password.ok()) return password.status();
      redis.password = std::move(password).value();
    } else {
      const IntegerSetting& setting = entry.key == "port"       ? internal::kPort
                                      : entry.key == "db"       ? kRedisDb
                                      : entry.key == "lease_ms" ? kLeaseMs
                                                                : kLockWaitMs;
      auto value = file.Integer(setting, entry);
      if (!value.ok()) return value.status();
      if (entry.key == "port") redis.port = static_cast<int>(*value);
      if (entry.key == "db") redis.database = static_cast<int>(*value);
      if (entry.key == "lease_ms") redis.lease = std::chrono::milliseconds(*value);
      if (entry.key == "lock_wait_ms") redis.lock_wait = std::chrono::milliseconds(*value);
    }
  }
  if (redis.host.empty()) return file.Error(section.line, section.Label() + " needs host");
  return Status::Ok();
}

Status ReadNotifierSection(const ConfigFile& file, const ConfigSection& section,
                           NotifierOptions& notifier) {
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(section, kNotifierKeys));
  for (const ConfigEntry& entry : section.entries) {
    const std::string& key = entry.key;
    if (key == "allowed_schemes") {
      notifier.url_policy.schemes.clear();
      for (const std::string& scheme : SplitList(entry.value)) {
        if (scheme != "http" && scheme != "https") {
          return file.Error(entry.line, "allowed_schemes lists http and https, not " +
                                            QuotedForMessage(scheme));
        }
        notifier.url_policy.schemes.push_back(scheme);
      }
    } else if (key == "allowed_hosts") {
      for (const std::string& host : SplitList(entry.value)) {
        if (host.empty()) return file.Error(entry.line, "allowed_hosts has an empty entry");
        notifier.url_policy.hosts.push_back(host);
      }
    } else if (key == "allowed_networks") {
      for (const std::string& text : SplitList(entry.value)) {
        Result<IpNetwork> network = ParseIpNetwork(text);
        if (!network.ok()) return file.Error(entry.line, network.status().message());
        notifier.url_policy.networks.push_back(*network);
      }
    } else if (key == "allow_public_addresses") {
      if (entry.value != "yes" && entry.value != "no") {
        return file.Error(entry.line, "allow_public_addresses is yes or no");
      }
      notifier.url_policy.allow_public = entry.value == "yes";
    } else {
      const IntegerSetting& setting = key == "workers"             ? kNotifierWorkers
                                      : key == "batch_size"        ? kBatchSize
                                      : key == "max_body_bytes"    ? kMaxBodyBytes
                                      : key == "breaker_failures"  ? kBreakerFailures
                                      : key == "breaker_cooldown_ms" ? kBreakerCooldownMs
                                                                     : kNotifierTimeoutMs;
      auto value = file.Integer(setting, entry);
      if (!value.ok()) return value.status();
      const std::chrono::milliseconds ms(*value);
      if (key == "workers") notifier.workers = static_cast<int>(*value);
      if (key == "batch_size") notifier.batch_size = static_cast<int>(*value);
      if (key == "max_body_bytes") notifier.max_body_bytes = static_cast<size_t>(*value);
      if (key == "breaker_failures") notifier.breaker.failures_to_open = static_cast<int>(*value);
      if (key == "breaker_cooldown_ms") notifier.breaker.cooldown = ms;
      if (key == "connect_timeout_ms") notifier.connect_timeout = ms;
      if (key == "call_timeout_ms") notifier.call_timeout = ms;
    }
  }
  if (std::string error = NotifierOptionsError(notifier); !error.empty()) {
    return file.Error(section.line, section.Label() + ": " + error);
  }
  return Status::Ok();
}

}  // namespace

Result<MsgdConfig> ParseMsgdConfig(const std::string& text, const std::string& path) {
  auto parsed = internal::ParseConfigText(text, path, kGrammar);
  if (!parsed.ok()) return parsed.status();
  const ConfigFile& file = *parsed;
  MsgdConfig config;
  config.path = path;
  XA_RETURN_IF_ERROR(ReadTopLevel(file, config));
  bool have_store = false, have_broker = false;
  for (const ConfigSection& section : file.sections) {
    if (section.kind == internal::kRmSection.kind) {
      if (section.name != "store") {
        return file.Error(section.line, section.Label() + ": the only [rm] section is "
                                                          "'[rm store]', the message store");
      }
      auto rm = internal::ReadRmSection(file, section);
      if (!rm.ok()) return rm.status();
      XA_RETURN_IF_ERROR(internal::CheckRmComplete(file, *rm));
      if (rm->driver != "odbc") {
        return file.Error(section.line, "[rm store] needs driver = odbc (MariaDB >= 10.6 or "
                                        "PostgreSQL through unixODBC), not " +
                                            QuotedForMessage(rm->driver));
      }
      if (have_store) {
        return file.Error(section.line, "a second store: xa-msgd keeps its messages in one, "
                                        "[rm store] or [redis store]");
      }
      config.store = std::move(rm).value();
      have_store = true;
    } else if (section.kind == kRedisSection.kind) {
      if (section.name != "store") {
        return file.Error(section.line, section.Label() + ": the only [redis] section is "
                                                          "'[redis store]', the message store");
      }
      if (have_store) {
        return file.Error(section.line, "a second store: xa-msgd keeps its messages in one, "
                                        "[rm store] or [redis store]");
      }
      XA_RETURN_IF_ERROR(ReadRedisSection(file, section, config.redis_store.emplace()));
      have_store = true;
    } else if (section.kind == kNotifierSection.kind) {
      if (config.notifier) {
        return file.Error(section.line, "a second [notifier] section: xa-msgd runs one notifier");
      }
      XA_RETURN_IF_ERROR(ReadNotifierSection(file, section, config.notifier.emplace()));
    } else {
      if (have_broker) {
        return file.Error(section.line, "a second [broker] section: xa-msgd uses one broker");
      }
      XA_RETURN_IF_ERROR(ReadBrokerSection(file, section, config.broker));
      have_broker = true;
    }
  }
  if (!have_store) {
    return file.Error(0, "[rm store] or [redis store] is required: where messages are kept");
  }
  if (!have_broker) return file.Error(0, "[broker rabbitmq] is required: where messages go");
  if (config.notifier && config.redis_store) {
    return file.Error(0, "[notifier] keeps its notifications in the SQL store: use [rm store] "
                         "(the Redis store holds messages only, for now)");
  }
  if (config.redis_store) {
    RedisStoreOptions& redis = *config.redis_store;
    redis.key_prefix = config.table_prefix;
    // A job renews its leases between two calls of the store; the longest wait between them is
    // one publication or one back-query.
    const std::chrono::milliseconds longest_call =
        std::max(config.broker.confirm_timeout, config.back_query_timeout);
    if (redis.lease < 2 * longest_call) {
      return file.Error(0, "[redis store] lease_ms " + std::to_string(redis.lease.count()) +
                               " is too short: it must be at least twice the longer of the "
                               "broker's confirm_timeout_ms and back_query_timeout_ms (" +
                               std::to_string(2 * longest_call.count()) + ")");
    }
    if (std::string error = RedisStoreOptionsError(redis); !error.empty()) {
      return file.Error(0, "[redis store]: " + error);
    }
  }
  if (std::string error = ServiceOptionsError(config.service); !error.empty()) {
    return file.Error(0, error);
  }
  return config;
}

Result<MsgdConfig> LoadMsgdConfig(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kGrammar.program);
  if (!text.ok()) return text.status();
  return ParseMsgdConfig(*text, path);
}

}  // namespace xa::msg
