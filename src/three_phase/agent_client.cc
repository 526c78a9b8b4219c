#include "src/three_phase/agent_client.h"

#include <random>
#include <utility>

#include "src/base/escape.h"
#include "src/base/logging.h"

namespace xa::three_phase {
namespace {

std::string Quoted(const std::string& name) {
  return "'" + internal::EscapeForMessage(name) + "'";
}

// A request id no earlier run of this process is likely to have used on a connection to the
// same agent: ids only pair replies with requests on one connection, so uniqueness within a run
// is what matters, and a random start keeps logs of two runs apart.
uint64_t RandomStart() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

Status AgentDirectory::Validate() const {
  for (const auto& [rm, agent] : agent_of_rm) {
    if (rm.empty()) return Status(Code::kConfig, "agent directory: a resource manager without a name");
    if (address_of_agent.find(agent) == address_of_agent.end()) {
      return Status(Code::kConfig, "agent directory: resource manager " + Quoted(rm) +
                                       " belongs to agent " + Quoted(agent) +
                                       ", which has no address; add the agent with its address");
    }
  }
  for (const auto& [agent, address] : address_of_agent) {
    if (agent.empty() || address.empty()) {
      return Status(Code::kConfig, "agent directory: an agent without a name or an address");
    }
  }
  return Status::Ok();
}

Result<std::string> AgentDirectory::AgentOf(const std::string& rm_name) const {
  auto it = agent_of_rm.find(rm_name);
  if (it == agent_of_rm.end()) {
    return Status(Code::kConfig, "no 3PC agent stands for resource manager " + Quoted(rm_name) +
                                     ": add it to an agent's resource managers in the directory");
  }
  return it->second;
}

AgentClient::AgentClient(net::Transport* transport, const net::SharedKey* key, std::string my_name,
                         AgentDirectory directory, AgentClientOptions options)
    : transport_(transport),
      key_(key),
      my_name_(std::move(my_name)),
      directory_(std::move(directory)),
      options_(options),
      next_request_id_(RandomStart()) {}

AgentClient::~AgentClient() = default;

AgentClient::Pool& AgentClient::PoolOf(const std::string& agent) {
  std::lock_guard<std::mutex> lock(pools_mu_);
  std::unique_ptr<Pool>& pool = pools_[agent];
  if (pool == nullptr) pool = std::make_unique<Pool>();
  return *pool;
}

Result<std::unique_ptr<net::Connection>> AgentClient::Checkout(const std::string& agent,
                                                               Pool& pool,
                                                               Clock::SteadyTime deadline,
                                                               bool* reused) {
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    if (!pool.idle.empty()) {
      std::unique_ptr<net::Connection> connection = std::move(pool.idle.back());
      pool.idle.pop_back();
      *reused = true;
      return connection;
    }
  }
  *reused = false;
  auto address = directory_.address_of_agent.find(agent);
  if (address == directory_.address_of_agent.end()) {
    return Status(Code::kConfig, "3PC agent " + Quoted(agent) + " has no address in the directory");
  }
  Result<std::unique_ptr<net::Connection>> connection = transport_->Connect(address->second, deadline);
  if (!connection.ok()) return connection.status();
  Result<std::string> peer = net::AuthenticateAsClient(**connection, *key_, my_name_, deadline);
  if (!peer.ok()) return peer.status();
  if (*peer != agent) {
    // The directory and the agent's configuration disagree: talking on would send one agent's
    // participants to another, which refuses them at best.
    return Status(Code::kConfig, "the 3PC agent at " + address->second + " calls itself " +
                                     Quoted(*peer) + ", but the directory says " + Quoted(agent) +
                                     " listens there; make the configurations agree");
  }
  return connection;
}

void AgentClient::DropIdle(Pool& pool) {
  std::vector<std::unique_ptr<net::Connection>> dropped;
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    dropped.swap(pool.idle);
  }
}

void AgentClient::Return(Pool& pool, std::unique_ptr<net::Connection> connection) {
  std::lock_guard<std::mutex> lock(pool.mu);
  if (pool.idle.size() < options_.max_idle_connections_per_agent) {
    pool.idle.push_back(std::move(connection));
  }
}

AgentClient::PendingCall::PendingCall() = default;
AgentClient::PendingCall::PendingCall(PendingCall&&) noexcept = default;
AgentClient::PendingCall& AgentClient::PendingCall::operator=(PendingCall&&) noexcept = default;
AgentClient::PendingCall::~PendingCall() = default;

Result<AgentMessage> AgentClient::Call(const std::string& rm_name, AgentMessage request,
                                       Clock::SteadyTime deadline) {
  PendingCall call = Start(rm_name, std::move(request), deadline);
  return Finish(call, deadline);
}

AgentClient::PendingCall AgentClient::Start(const std::string& rm_name, AgentMessage request,
                                            Clock::SteadyTime deadline) {
  PendingCall call;
  call.rm_name_ = rm_name;
  Result<std::string> agent = directory_.AgentOf(rm_name);
  if (!agent.ok()) {
    call.status_ = agent.status();
    return call;
  }
  request.request_id = next_request_id_.fetch_add(1, std::memory_order_relaxed);
  Result<std::string> payload = EncodeAgentMessage(request);
  if (!payload.ok()) {
    call.status_ = payload.status();
    return call;
  }
  call.context_ = "3PC agent " + Quoted(*agent) + " (for " + Quoted(rm_name) + "), " +
                  std::string(AgentMessageTypeName(TypeOf(request)));
  call.request_ = std::move(request);
  call.payload_ = std::move(*payload);
  call.pool_ = &PoolOf(*agent);
  Result<std::unique_ptr<net::Connection>> connection =
      Checkout(*agent, *call.pool_, deadline, &call.reused_);
  if (!connection.ok()) {
    call.status_ = connection.status().WithContext(call.context_);
    return call;
  }
  call.connection_ = std::move(*connection);
  // A failed send is read by Finish, which may ask again on a new connection.
  Status sent = call.connection_->Send(call.payload_);
  if (!sent.ok()) call.status_ = sent;
  return call;
}

Result<AgentMessage> AgentClient::Finish(PendingCall& call, Clock::SteadyTime deadline) {
  if (call.connection_ == nullptr) return call.status_;  // failed before anything was sent
  const uint64_t request_id = call.request_.request_id;
  for (int attempt = 1;; ++attempt) {
    Status broken = call.status_;
    while (broken.ok()) {
      Result<std::string> frame = call.connection_->Receive(deadline);
      if (!frame.ok()) {
        broken = frame.status();
        break;
      }
      Result<AgentMessage> reply = DecodeAgentMessage(*frame);
      if (!reply.ok()) {
        call.connection_.reset();
        return reply.status().WithContext(call.context_);
      }
      if (reply->request_id != request_id) {
        XA_LOG(kDebug, "3pc") << call.context_ << ": dropped a late reply (request "
                              << reply->request_id << ")";
        continue;
      }
      // The agent answered: the connection is sound.
      Return(*call.pool_, std::move(call.connection_));
      if (const auto* error = std::get_if<ErrorMessage>(&reply->body)) {
        return Status(error->code, error->message).WithContext(call.context_);
      }
      return reply;
    }
    call.connection_.reset();
    // A pooled connection that the agent closed while it sat idle (the agent restarted, or
    // dropped it): so are the others in the pool. Every agent message is idempotent (a repeated
    // one is answered with the participant's state), so the request goes once more, on a new
    // connection, within the same deadline. A timeout is not retried: the deadline is spent.
    if (call.reused_ && attempt == 1 && broken.code() == Code::kIoError) {
      XA_LOG(kInfo, "3pc") << call.context_ << ": a pooled connection was closed by the agent ("
                           << broken.ToString() << "); asking again on a new one";
      DropIdle(*call.pool_);
      Result<std::string> agent = directory_.AgentOf(call.rm_name_);
      if (!agent.ok()) return agent.status();
      Result<std::unique_ptr<net::Connection>> connection =
          Checkout(*agent, *call.pool_, deadline, &call.reused_);
      if (!connection.ok()) return connection.status().WithContext(call.context_);
      call.connection_ = std::move(*connection);
      call.status_ = call.connection_->Send(call.payload_);
      continue;
    }
    return broken.WithContext(call.context_);
  }
}

}  // namespace xa::three_phase
