// xa-msgd: the reliable message service (docs/messages.md). A thin main over
// xa::msg::MessageService: reads the configuration (msgd_config.h) and the tokens file
// (msgd_tokens.h), migrates the store, serves the HTTP/JSON API and /metrics, runs the delivery
// and status-confirmation jobs, until SIGTERM or SIGINT. Stateless apart from its store: run
// several side by side on one store and they share the jobs' work.
//
// Exit codes (also in --help):
//   0  stopped by SIGTERM or SIGINT
//   2  usage error
//   3  configuration error (the file, the tokens file, the store's or broker's settings)
//   4  the store cannot be reached or migrated
//   5  the service could not start serving (the listen address is taken, ...)

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "daemons/msgd/amqp_message_publisher.h"
#include "daemons/msgd/http_back_querier.h"
#include "daemons/msgd/management_page.h"
#include "daemons/msgd/message_service.h"
#include "daemons/msgd/notifier.h"
#include "daemons/msgd/notifier_http_api.h"
#include "daemons/msgd/msgd_config.h"
#include "daemons/msgd/msgd_http_api.h"
#include "daemons/msgd/msgd_tokens.h"
#include "daemons/msgd/redis_message_store.h"
#include "daemons/msgd/sql_message_store.h"
#include "src/base/escape.h"
#include "src/http/http_server.h"
#include "tools/common/rm_from_config.h"
#include "xa/env.h"

namespace {

constexpr int kExitStopped = 0;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;
constexpr int kExitStore = 4;
constexpr int kExitServe = 5;

constexpr char kUsage[] =
    "usage: xa-msgd --config FILE\n"
    "\n"
    "The reliable message service: keeps each message a producer pre-sends as pending until\n"
    "the producer confirms it (or, when the producer falls silent, until its query endpoint\n"
    "says whether the business operation committed), publishes confirmed messages to their\n"
    "RabbitMQ queue, and publishes them again until the consumer acknowledges them (then, after\n"
    "the last redelivery, marks them dead for an operator). Several instances may share one\n"
    "store.\n"
    "\n"
    "options:\n"
    "  --config FILE   the configuration (its format: docs/messages.md); required\n"
    "  --help          this text\n"
    "\n"
    "environment:\n"
    "  XA_LOG_LEVEL    trace, debug, info (default), warning, error\n"
    "\n"
    "exit codes:\n"
    "  0  stopped by SIGTERM or SIGINT\n"
    "  2  usage error\n"
    "  3  configuration error (the file, the tokens file, the store's or broker's settings)\n"
    "  4  the store cannot be reached or migrated\n"
    "  5  the service could not start serving (for example, its listen address is taken)\n";

int Fail(int code, const std::string& what) {
  std::cerr << "xa-msgd: " << what << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return kExitStopped;
    }
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    return Fail(kExitUsage, "unknown or incomplete option '" +
                                xa::internal::EscapeForMessage(arg) + "'\n" + kUsage);
  }
  if (config_path.empty()) return Fail(kExitUsage, std::string("--config is required\n") + kUsage);

  // Taken by sigwait below: blocked before any thread starts, so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A broker or HTTP peer that closes its socket must not kill the daemon.
  signal(SIGPIPE, SIG_IGN);

  xa::Result<xa::msg::MsgdConfig> config = xa::msg::LoadMsgdConfig(config_path);
  if (!config.ok()) return Fail(kExitConfig, config.status().ToString());
  xa::Result<xa::msg::TokenTable> tokens = xa::msg::TokenTable::Load(config->tokens_file);
  if (!tokens.ok()) return Fail(kExitConfig, tokens.status().ToString());
  xa::msg::StoreFactory stores;
  if (config->redis_store) {
    stores = [options = *config->redis_store]()
        -> xa::Result<std::unique_ptr<xa::msg::MessageStore>> {
      auto store = xa::msg::RedisMessageStore::Open(options);
      if (!store.ok()) return store.status();
      return std::unique_ptr<xa::msg::MessageStore>(std::move(store).value());
    };
  } else {
    xa::Result<xa::odbc::OdbcOptions> store_options =
        xa::tools::OdbcOptionsFromConfig(config->store);
    if (!store_options.ok()) return Fail(kExitConfig, store_options.status().ToString());
    stores = [options = *store_options, prefix = config->table_prefix]()
        -> xa::Result<std::unique_ptr<xa::msg::MessageStore>> {
      auto store = xa::msg::SqlMessageStore::Open(options, prefix);
      if (!store.ok()) return store.status();
      return std::unique_ptr<xa::msg::MessageStore>(std::move(store).value());
    };
  }
  {
    auto store = stores();
    if (!store.ok()) {
      return Fail(store.status().code() == xa::Code::kConfig ? kExitConfig : kExitStore,
                  store.status()
                      .WithContext(config->redis_store ? "[redis store]" : "[rm store]")
                      .ToString());
    }
    if (xa::Status migrated = (*store)->Migrate(); !migrated.ok()) {
      return Fail(migrated.code() == xa::Code::kConfig ? kExitConfig : kExitStore,
                  migrated.WithContext("migrating the store").ToString());
    }
  }

  xa::rabbitmq::AmqpOptions amqp;
  amqp.host = config->broker.host;
  amqp.port = config->broker.port;
  amqp.vhost = config->broker.vhost;
  amqp.user = config->broker.user;
  amqp.password = config->broker.password;
  amqp.confirm_timeout = config->broker.confirm_timeout;
  if (std::string error = xa::rabbitmq::AmqpOptionsError(amqp); !error.empty()) {
    return Fail(kExitConfig, "[broker]: " + error);
  }
  xa::msg::PublisherFactory publishers = [amqp] {
    return xa::msg::AmqpMessagePublisher::Connect(amqp);
  };

  xa::msg::MessageService service(
      config->service, stores, publishers,
      std::make_shared<xa::msg::HttpBackQuerier>(config->back_query_timeout),
      xa::Env::Default()->clock());

  xa::http::HttpServerOptions http;
  http.address = config->listen;
  http.threads = config->http_threads;
  // The request's JSON carries the body as a string with escapes: room for them.
  http.max_body_bytes = config->service.max_body_bytes * 2 + 4096;
  xa::msg::AddApiRoutes(service, *tokens, http);
  // The notifier, on the same SQL store (the configuration refuses it beside the Redis one).
  std::unique_ptr<xa::msg::Notifier> notifier;
  if (config->notifier) {
    xa::Result<xa::odbc::OdbcOptions> store_options =
        xa::tools::OdbcOptionsFromConfig(config->store);
    if (!store_options.ok()) return Fail(kExitConfig, store_options.status().ToString());
    xa::msg::NotificationStoreFactory notification_stores =
        [options = *store_options, prefix = config->table_prefix]()
        -> xa::Result<std::unique_ptr<xa::msg::NotificationStore>> {
      auto store = xa::msg::SqlMessageStore::Open(options, prefix);
      if (!store.ok()) return store.status();
      return std::unique_ptr<xa::msg::NotificationStore>(std::move(store).value());
    };
    notifier = std::make_unique<xa::msg::Notifier>(
        *config->notifier, notification_stores,
        xa::msg::MakeHttpEndpointCaller(*config->notifier), xa::Env::Default()->clock());
    xa::msg::AddNotifierRoutes(*notifier, *tokens, http);
    http.max_body_bytes =
        std::max(http.max_body_bytes, config->notifier->max_body_bytes * 2 + 4096);
    http.routes["/metrics"] = [messages = http.routes["/metrics"], n = notifier.get()] {
      xa::http::HttpResponse answer = messages();
      answer.body += xa::msg::RenderNotifierMetrics(*n);
      return answer;
    };
  }
  xa::msg::AddManagementPage(http);
  xa::Result<std::unique_ptr<xa::http::HttpServer>> server =
      xa::http::HttpServer::Start(std::move(http));
  if (!server.ok()) return Fail(kExitServe, server.status().WithContext("listen").ToString());
  service.Start();
  if (notifier) notifier->Start();
  std::cerr << "xa-msgd: serving on http://" << (*server)->address() << " (" << tokens->size()
            << " callers)\n";

  int received = 0;
  sigwait(&stop_signals, &received);
  std::cerr << "xa-msgd: " << strsignal(received) << ", stopping\n";
  (*server)->Stop();
  service.Stop();
  if (notifier) notifier->Stop();
  return kExitStopped;
}
