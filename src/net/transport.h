// The network seam: framed messages between processes (the coordinator and its participant
// agents), behind an interface that tests can wrap to drop, delay, reorder or partition
// (tests/testutil/fault_injection_transport.h).
//
//   std::unique_ptr<Transport> tcp = NewTcpTransport(env->clock());
//   Result<std::unique_ptr<Listener>> listener = tcp->Listen("127.0.0.1:0");
//   ... (*listener)->address() is "127.0.0.1:<the port picked>" ...
//   Result<std::unique_ptr<Connection>> c = tcp->Connect(address, clock->DeadlineAfter(1s));
//   (*c)->Send("prepare ...");
//   Result<std::string> reply = (*c)->Receive(clock->DeadlineAfter(5s));
//
// Messages are delivered whole, unchanged (frame.h: length and CRC32C), in the order they were
// sent on one connection, or not at all: a message Send() accepted is lost if the connection
// breaks before the peer reads it. Whoever needs to know that a message arrived asks for a reply.
//
// Every deadline is read on the transport's clock (include/xa/env.h), so a test with a fake
// clock decides when a Receive, Accept or Connect times out.
//
// Errors: Code::kTimeout when a deadline passes; Code::kIoError when the connection is refused,
// closed by the peer or broken (the message says which); Code::kCorruption when a damaged frame
// arrived (the connection is then closed: its framing cannot be trusted); Code::kInval for a bad
// address or a message over kMaxFramePayload; Code::kBusy when too much is queued for sending.
//
// Security: the frames are neither authenticated nor encrypted. Listen on loopback, or on a
// network where every host that can connect is trusted with the transactions.
//
// Thread safety: a Transport, Listener or Connection may be used from several threads at once
// (Send from one thread while another is in Receive). A Transport must outlive its listeners and
// connections.

#ifndef XA_SRC_NET_TRANSPORT_H_
#define XA_SRC_NET_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "xa/env.h"
#include "xa/status.h"

namespace xa::net {

// One connection, carrying messages both ways. Destroying it closes it.
class Connection {
 public:
  virtual ~Connection() = default;
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues `message` and returns without waiting for the peer; messages leave in Send order.
  // Fails once the connection is closed or broken (with the error that broke it).
  virtual Status Send(std::string_view message) = 0;
  // The next message, waiting until `deadline` (Clock::kNoDeadline: no limit). Messages that
  // arrived before the peer closed are returned before the close is reported.
  virtual Result<std::string> Receive(Clock::SteadyTime deadline) = 0;
  // Closes both directions at once; queued messages not yet sent are dropped. Idempotent.
  virtual void Close() = 0;

  // "127.0.0.1:40312": for messages and logs.
  virtual const std::string& local_address() const = 0;
  virtual const std::string& peer_address() const = 0;
};

// Accepts connections on one address. Destroying it stops listening (accepted connections
// live on).
class Listener {
 public:
  virtual ~Listener() = default;
  Listener() = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // The next connection, waiting until `deadline`.
  virtual Result<std::unique_ptr<Connection>> Accept(Clock::SteadyTime deadline) = 0;
  // Stops listening; the address is free when Close returns (a restarted server may listen on
  // it again at once). Connections not yet accepted are closed. Idempotent.
  virtual void Close() = 0;
  // Where peers connect: the actual port when Listen was asked for port 0.
  virtual const std::string& address() const = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // `address` is "<IPv4 literal>:<port>" or "[<IPv6 literal>]:<port>"; port 0 picks a free one.
  virtual Result<std::unique_ptr<Listener>> Listen(const std::string& address) = 0;
  // A deadline that has already passed fails with XA_TIMEOUT without trying.
  virtual Result<std::unique_ptr<Connection>> Connect(const std::string& address,
                                                      Clock::SteadyTime deadline) = 0;
  // The clock on which this transport reads deadlines.
  virtual Clock* clock() = 0;
};

struct TcpOptions {
  // Send() fails with Code::kBusy while more than this many bytes wait to be written (a peer that
  // stopped reading must not make the sender grow without bound).
  size_t max_queued_send_bytes = 64 * 1024 * 1024;
};

// TCP (Boost.Asio, one I/O thread per transport; TCP_NODELAY, since the messages are small and
// every one is waited for). `clock` must outlive the transport.
std::unique_ptr<Transport> NewTcpTransport(Clock* clock, TcpOptions options = {});

}  // namespace xa::net

#endif  // XA_SRC_NET_TRANSPORT_H_
