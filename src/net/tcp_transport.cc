// The TCP transport (transport.h) over Boost.Asio.
//
// One I/O thread per transport runs every socket operation but one; callers hand it work
// (asio::post) and wait for results on a mutex and condition variable through the transport's
// clock, so that deadlines are the clock's. The exception: a send with nothing else queued or in
// flight is written by the caller itself, non-blocking, under the connection's mutex
// (ConnState::SendDirectly), which spares the I/O thread's wake-up on every request and reply.
//
// Lifetimes. Handlers in flight hold the socket's state (shared_ptr), never the I/O thread. The
// objects handed to callers (transport, listener, connection) hold the I/O thread; the last one
// destroyed stops it and destroys the io_context, which destroys the handlers still queued and
// with them the last states, while the io_context's services are still alive.

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

// Two warnings of GCC 12 about Boost 1.74's Asio headers, not about this code; everything else
// stays at -Werror:
//  - at -O2, a "potential null pointer dereference" inside the scheduler (scheduler.ipp, the
//    thread-private work counter), inlined into this file: a false positive;
//  - under -fsanitize=thread, "atomic_thread_fence is not supported" (Asio's fenced blocks):
//    TSan cannot see through the fence, but Asio's queues hand handlers over under mutexes,
//    which it does see.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include <boost/asio.hpp>

#include "src/net/frame.h"
#include "src/net/socket_address.h"
#include "src/net/transport.h"
#include "src/testing/sync_points.h"

namespace xa::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

class IoThread {
 public:
  IoThread() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

std::string EndpointString(const tcp::endpoint& e) {
  if (e.address().is_v6()) return "[" + e.address().to_string() + "]:" + std::to_string(e.port());
  return e.address().to_string() + ":" + std::to_string(e.port());
}

Result<tcp::endpoint> ParseAddress(const std::string& address) {
  Result<SocketAddress> parsed = ParseSocketAddress(address);
  if (!parsed.ok()) return parsed.status();
  return tcp::endpoint(asio::ip::make_address(parsed->ip), parsed->port);
}

// One socket and everything the caller's threads and the I/O thread share about it.
class ConnState : public std::enable_shared_from_this<ConnState> {
 public:
  ConnState(asio::io_context& io, Clock* clock, const TcpOptions& options)
      : socket_(io), clock_(clock), options_(options) {}

  tcp::socket& socket() { return socket_; }  // I/O thread only

  // I/O thread: the socket is connected; learn the addresses and start reading.
  void Started() {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    std::string local = EndpointString(socket_.local_endpoint(ignored));
    std::string peer = EndpointString(socket_.remote_endpoint(ignored));
    {
      std::lock_guard<std::mutex> lock(mu_);
      local_ = std::move(local);
      peer_ = std::move(peer);
      fd_ = socket_.native_handle();
    }
    ReadSome();
  }

  // Addresses are set once, before the state is handed to a caller.
  const std::string& local_address() const { return local_; }
  const std::string& peer_address() const { return peer_; }

  Status Send(std::string_view message) {
    XA_RETURN_IF_ERROR(CheckPayloadSize(message));
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_.ok()) return broken_;
    if (queued_bytes_ + kFrameHeaderSize + message.size() > options_.max_queued_send_bytes) {
      return Status(Code::kBusy, "send to " + peer_ + ": " + std::to_string(queued_bytes_) +
                                     " bytes are already waiting (the peer is not reading?)");
    }
    outbox_.push_back(EncodeFrame(message));
    queued_bytes_ += outbox_.back().size();
    if (!writing_) {
      // Nothing in flight: the frame goes to the kernel from the caller's thread, without waking
      // the I/O thread (a thread hand-off per message, on 3PC's commit path twice per round).
      // What the kernel does not take now (a full send buffer) goes the usual way, after it.
      if (SendDirectly()) return Status::Ok();
      writing_ = true;
      asio::post(socket_.get_executor(), [self = shared_from_this()] { self->WriteFront(); });
    }
    return Status::Ok();
  }

  Result<std::string> Receive(Clock::SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    clock_->WaitUntil(lock, changed_, deadline, [&] { return !inbox_.empty() || !broken_.ok(); });
    if (!inbox_.empty()) {
      std::string message = std::move(inbox_.front());
      inbox_.pop_front();
      return message;
    }
    if (!broken_.ok()) return broken_;
    return Status(Code::kTimeout, "no message from " + peer_ + " before the deadline");
  }

  // Messages already accepted by Send still go out, then both directions close.
  void Close() {
    bool close_now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_.ok()) {
        broken_ = Status(Code::kIoError, "connection to " +
                                             (peer_.empty() ? std::string("the peer") : peer_) +
                                             " closed by this side");
      }
      closing_ = true;
      close_now = !writing_;
      changed_.notify_all();
    }
    if (close_now) {
      asio::post(socket_.get_executor(), [self = shared_from_this()] { self->CloseSocket(); });
    }
  }

  // Connect: the outcome of the attempt, for the caller waiting in Transport::Connect.
  void ConnectDone(const error_code& ec, const std::string& address) {
    if (!ec) Started();
    std::lock_guard<std::mutex> lock(mu_);
    connect_done_ = true;
    if (ec && broken_.ok()) {
      broken_ = Status(Code::kIoError, "connect to " + address + ": " + ec.message());
    }
    changed_.notify_all();
  }

  // Waits for ConnectDone; XA_TIMEOUT (and the attempt is abandoned) once `deadline` passes.
  Status WaitConnected(const std::string& address, Clock::SteadyTime deadline) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      clock_->WaitUntil(lock, changed_, deadline, [&] { return connect_done_; });
      if (connect_done_) return broken_;
    }
    Close();
    return Status(Code::kTimeout, "connect to " + address + ": no answer before the deadline");
  }

 private:
  // Under mu_, with no write in flight: writes what it can of the one queued frame with a
  // non-blocking send on the socket's descriptor (the I/O thread may be reading it meanwhile,
  // which the kernel allows; it closes the descriptor only after clearing fd_ under mu_). True
  // when the whole frame went; otherwise what is left stays queued, an error included: the I/O
  // thread's write meets it again and breaks the connection as it always does.
  bool SendDirectly() {
    if (fd_ < 0 || outbox_.size() != 1) return false;
    std::string& frame = outbox_.front();
    const ssize_t sent = ::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent <= 0) return false;
    const size_t taken = static_cast<size_t>(sent);
    queued_bytes_ -= std::min(queued_bytes_, taken);
    if (taken == frame.size()) {
      outbox_.pop_front();
      return true;
    }
    frame.erase(0, taken);
    return false;
  }

  // I/O thread.
  void CloseSocket() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fd_ = -1;
    }
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // The connection failed: what is queued can no longer be sent. The first error wins: later
  // ones are consequences of it.
  void Break(Status why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.ok()) broken_ = std::move(why);
    outbox_.clear();  // the I/O thread's write in progress (if any) holds its own copy
    queued_bytes_ = 0;
    changed_.notify_all();
  }

  void ReadSome() {
    socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](
                                                            const error_code& ec, size_t n) {
      self->OnRead(ec, n);
    });
  }

  void OnRead(const error_code& ec, size_t n) {
    if (ec) {
      if (ec == asio::error::eof) {
        std::string why = "connection closed by the peer " + peer_;
        if (decoder_.buffered() > 0) {
          why += " in the middle of a frame (" + std::to_string(decoder_.buffered()) +
                 " bytes of it arrived)";
        }
        Break(Status(Code::kIoError, why));
        XA_TEST_SYNC_POINT(kNetConnectionClosedByPeer);
      } else if (ec != asio::error::operation_aborted) {
        Break(Status(Code::kIoError, "receive from " + peer_ + ": " + ec.message()));
      }
      return;
    }
    decoder_.Append(std::string_view(read_buffer_.data(), n));
    while (true) {
      Result<std::optional<std::string>> next = decoder_.Next();
      if (!next.ok()) {
        Break(next.status().WithContext("from " + peer_));
        CloseSocket();
        return;
      }
      if (!next->has_value()) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        inbox_.push_back(std::move(**next));
        changed_.notify_all();
      }
      XA_TEST_SYNC_POINT(kNetMessageQueued);
    }
    ReadSome();
  }

  void WriteFront() {
    std::shared_ptr<const std::string> frame;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (outbox_.empty()) {
        writing_ = false;
        if (closing_) {
          asio::post(socket_.get_executor(), [self = shared_from_this()] { self->CloseSocket(); });
        }
        return;
      }
      frame = std::make_shared<const std::string>(std::move(outbox_.front()));
      outbox_.pop_front();
    }
    asio::async_write(socket_, asio::buffer(*frame),
                      [self = shared_from_this(), frame](const error_code& ec, size_t) {
                        if (ec) {
                          if (ec != asio::error::operation_aborted) {
                            self->Break(Status(Code::kIoError,
                                               "send to " + self->peer_ + ": " + ec.message()));
                            self->CloseSocket();
                          }
                          std::lock_guard<std::mutex> lock(self->mu_);
                          self->writing_ = false;
                          return;
                        }
                        {
                          std::lock_guard<std::mutex> lock(self->mu_);
                          self->queued_bytes_ -= std::min(self->queued_bytes_, frame->size());
                        }
                        self->WriteFront();
                      });
  }

  tcp::socket socket_;  // I/O thread only
  Clock* const clock_;
  const TcpOptions options_;
  std::array<char, 64 * 1024> read_buffer_;  // I/O thread only
  FrameDecoder decoder_;                     // I/O thread only

  std::mutex mu_;
  std::condition_variable changed_;  // a message arrived, the connection broke or connected
  std::string local_, peer_;         // written once under mu_ before a caller sees them
  std::deque<std::string> inbox_;    // guarded by mu_
  std::deque<std::string> outbox_;   // frames not yet handed to the socket; guarded by mu_
  size_t queued_bytes_ = 0;          // outbox_ and the write in progress; guarded by mu_
  bool writing_ = false;             // a WriteFront chain is running; guarded by mu_
  bool closing_ = false;             // Close() was called; guarded by mu_
  bool connect_done_ = false;        // guarded by mu_
  int fd_ = -1;  // the socket's descriptor while it is open, for SendDirectly; guarded by mu_
  Status broken_;                    // why the connection is unusable; guarded by mu_
};

class TcpConnection final : public Connection {
 public:
  TcpConnection(std::shared_ptr<IoThread> io, std::shared_ptr<ConnState> state)
      : io_(std::move(io)), state_(std::move(state)) {}
  ~TcpConnection() override { state_->Close(); }

  Status Send(std::string_view message) override { return state_->Send(message); }
  Result<std::string> Receive(Clock::SteadyTime deadline) override {
    return state_->Receive(deadline);
  }
  void Close() override { state_->Close(); }
  const std::string& local_address() const override { return state_->local_address(); }
  const std::string& peer_address() const override { return state_->peer_address(); }

 private:
  std::shared_ptr<IoThread> io_;      // declared first: destroyed after state_
  std::shared_ptr<ConnState> state_;
};

class ListenState : public std::enable_shared_from_this<ListenState> {
 public:
  ListenState(asio::io_context& io, Clock* clock, const TcpOptions& options)
      : io_(io), acceptor_(io), clock_(clock), options_(options) {}

  // Caller's thread, before the I/O thread knows this state.
  Status Open(const tcp::endpoint& endpoint, const std::string& address) {
    error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status(Code::kIoError, "listen on " + address + ": " + ec.message());
    address_ = EndpointString(acceptor_.local_endpoint(ec));
    asio::post(io_, [self = shared_from_this()] { self->AcceptNext(); });
    return Status::Ok();
  }

  const std::string& address() const { return address_; }

  Result<std::shared_ptr<ConnState>> Accept(Clock::SteadyTime deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    clock_->WaitUntil(lock, changed_, deadline,
                      [&] { return !accepted_.empty() || !broken_.ok(); });
    if (!accepted_.empty()) {
      std::shared_ptr<ConnState> c = std::move(accepted_.front());
      accepted_.pop_front();
      return c;
    }
    if (!broken_.ok()) return broken_;
    return Status(Code::kTimeout, "no connection on " + address_ + " before the deadline");
  }

  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (broken_.ok()) broken_ = Status(Code::kIoError, "listener on " + address_ + " closed");
      for (const std::shared_ptr<ConnState>& c : accepted_) c->Close();
      accepted_.clear();
      changed_.notify_all();
    }
    // The port is free once Close returns, so that a server restarted in the same process can
    // listen on its address again at once. The acceptor belongs to the I/O thread: close it
    // there and wait, unless this is that thread or it no longer runs.
    if (io_.stopped() || io_.get_executor().running_in_this_thread()) {
      error_code ignored;
      acceptor_.close(ignored);
      return;
    }
    auto closed = std::make_shared<std::promise<void>>();
    std::future<void> done = closed->get_future();
    asio::post(io_, [self = shared_from_this(), closed] {
      error_code ignored;
      self->acceptor_.close(ignored);
      closed->set_value();
    });
    // Bounded: an I/O thread that stops meanwhile drops the closing handler, and the acceptor
    // is then closed with the io_context.
    done.wait_for(std::chrono::seconds(5));
  }

 private:
  void AcceptNext() {
    auto conn = std::make_shared<ConnState>(io_, clock_, options_);
    acceptor_.async_accept(conn->socket(), [self = shared_from_this(), conn](
                                               const error_code& ec) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;  // closed
        std::lock_guard<std::mutex> lock(self->mu_);
        if (self->broken_.ok()) {
          self->broken_ =
              Status(Code::kIoError, "accept on " + self->address_ + ": " + ec.message());
        }
        self->changed_.notify_all();
        return;
      }
      conn->Started();
      {
        std::lock_guard<std::mutex> lock(self->mu_);
        if (!self->broken_.ok()) {
          conn->Close();  // the listener was closed meanwhile
          return;
        }
        self->accepted_.push_back(conn);
        self->changed_.notify_all();
      }
      XA_TEST_SYNC_POINT(kNetConnectionAccepted);
      self->AcceptNext();
    });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;  // I/O thread only, once Open returned
  Clock* const clock_;
  const TcpOptions options_;
  std::string address_;  // set by Open

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<ConnState>> accepted_;  // guarded by mu_
  Status broken_;                                   // guarded by mu_
};

class TcpListener final : public Listener {
 public:
  TcpListener(std::shared_ptr<IoThread> io, std::shared_ptr<ListenState> state)
      : io_(std::move(io)), state_(std::move(state)) {}
  ~TcpListener() override { state_->Close(); }

  Result<std::unique_ptr<Connection>> Accept(Clock::SteadyTime deadline) override {
    Result<std::shared_ptr<ConnState>> c = state_->Accept(deadline);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Connection>(new TcpConnection(io_, std::move(*c)));
  }
  void Close() override { state_->Close(); }
  const std::string& address() const override { return state_->address(); }

 private:
  std::shared_ptr<IoThread> io_;  // declared first: destroyed after state_
  std::shared_ptr<ListenState> state_;
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(Clock* clock, TcpOptions options)
      : io_(std::make_shared<IoThread>()), clock_(clock), options_(options) {}

  Result<std::unique_ptr<Listener>> Listen(const std::string& address) override {
    Result<tcp::endpoint> endpoint = ParseAddress(address);
    if (!endpoint.ok()) return endpoint.status();
    auto state = std::make_shared<ListenState>(io_->io(), clock_, options_);
    XA_RETURN_IF_ERROR(state->Open(*endpoint, address));
    return std::unique_ptr<Listener>(new TcpListener(io_, std::move(state)));
  }

  Result<std::unique_ptr<Connection>> Connect(const std::string& address,
                                              Clock::SteadyTime deadline) override {
    Result<tcp::endpoint> endpoint = ParseAddress(address);
    if (!endpoint.ok()) return endpoint.status();
    // Decided before the attempt: a loopback connect may complete before the wait would look at
    // the deadline, and a passed deadline must give the same answer every time.
    if (clock_->SteadyNow() >= deadline) {
      return Status(Code::kTimeout, "connect to " + address + ": the deadline had passed");
    }
    auto state = std::make_shared<ConnState>(io_->io(), clock_, options_);
    asio::post(io_->io(), [state, endpoint = *endpoint, address] {
      state->socket().async_connect(
          endpoint, [state, address](const error_code& ec) { state->ConnectDone(ec, address); });
    });
    XA_RETURN_IF_ERROR(state->WaitConnected(address, deadline));
    return std::unique_ptr<Connection>(new TcpConnection(io_, std::move(state)));
  }

  Clock* clock() override { return clock_; }

 private:
  std::shared_ptr<IoThread> io_;
  Clock* const clock_;
  const TcpOptions options_;
};

}  // namespace

std::unique_ptr<Transport> NewTcpTransport(Clock* clock, TcpOptions options) {
  return std::make_unique<TcpTransport>(clock, options);
}

}  // namespace xa::net
