// One client of the session mode (session_mode.h), from its first byte to its last:
//  1. its login, answered by the router (client_login.h), against the secret the auth query
//     fetched;
//  2. a server connection on the primary, logged in with what the client's login left (its
//     SCRAM ClientKey, the md5 hash, or nothing for a server that trusts the router)
//     (server_login.h); the server's greeting goes to the client with a cancel key of the
//     router's own, which stays the same whatever server the session is on;
//  3. messages relayed both ways and read (session_state.h) to know when the session is at rest.
// A query that starts a transaction while writes are held (a switchover) waits, at most
// connect_hold_timeout. When the session is at rest and its server is not the primary's any
// more, or went away, the next query opens a connection on the primary, where the session's
// SETs and prepared statements are replayed first (their answers go to no one); a session whose
// state cannot be replayed (pinned) is closed with 57P01 instead. A server that goes away under
// a transaction leaves the client an error for it (lost_transaction.h).
//
// Thread-safety: everything runs on the client socket's executor (one thread); the public
// methods post to it.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "router/client_login.h"
#include "router/lost_transaction.h"
#include "router/session_hub.h"
#include "router/session_state.h"

namespace pgha::router {

class SessionConnection : public std::enable_shared_from_this<SessionConnection> {
 public:
  SessionConnection(std::shared_ptr<SessionMode::Hub> hub, asio::ip::tcp::socket client,
                    std::shared_ptr<const RouterSettings> settings);
  ~SessionConnection();

  void Start();
  // The routes changed: a held query looks again.
  void Wake();
  // A CancelRequest named this session: pass it to its current server.
  void Cancel();
  // pause_timeout passed: a transaction still under way is cut.
  void CutTransaction();
  // Another member took the leader key: a transaction on the old one is cut, a session at rest
  // leaves it.
  void LeaderMoved(std::string leader);
  void CloseFromOutside();
  // A transaction or query is under way on a server (the pause waits for none to be).
  bool busy() const { return busy_.load(); }

 private:
  // Output to one socket: appended by anyone on the thread, written by one writer at a time.
  struct Outbox {
    std::string pending;
    bool writing = false;
    std::unique_ptr<asio::steady_timer> drained;  // cancelled whenever a write completes
  };

  static asio::awaitable<void> Serve(std::shared_ptr<SessionConnection> self);
  static asio::awaitable<void> WriteClientOf(std::shared_ptr<SessionConnection> self);
  static asio::awaitable<void> WriteServerOf(std::shared_ptr<SessionConnection> self);
  // The auth query, on the hub's lookup thread (in an optional: co_spawn wants a result it can
  // make empty).
  static asio::awaitable<std::optional<Result<std::optional<StoredSecret>>>> Fetch(
      std::shared_ptr<SessionMode::Hub> hub, Backend primary, std::string user);
  asio::awaitable<void> Run();
  // A read from the client, through TLS once it is on.
  asio::awaitable<std::tuple<asio::error_code, size_t>> ReadClient(asio::mutable_buffer buffer);
  asio::awaitable<bool> Login();
  asio::awaitable<std::optional<std::optional<StoredSecret>>> LookUpSecret();
  // Waits for a primary up to connect_hold_timeout; nullopt: the client was told why and closed.
  asio::awaitable<std::optional<Backend>> WaitForPrimary();
  // A server for the session on the primary; `first`: the client gets its greeting, otherwise
  // the session's state is replayed. false: the session is closed.
  asio::awaitable<bool> OpenServer(bool first);
  asio::awaitable<void> ClientLoop();
  // (Detached coroutines take `self` so that the session outlives them.)
  asio::awaitable<void> ServerLoop(std::shared_ptr<SessionConnection> self,
                                   std::shared_ptr<asio::ip::tcp::socket> server,
                                   uint64_t generation);
  asio::awaitable<void> OnClientMessage(Message message);
  // A message that needs nothing of the slow path (OnClientMessage): the session is on the
  // primary as of the last look at the routes, or inside a transaction, and nothing ends it.
  bool PassesStraight(char type) const;
  // Waits for what must happen before a query at rest goes on: a primary, the session on it.
  asio::awaitable<bool> BeforeQuery();
  void ServerLost(const std::string& reason);
  void DropServer();
  // Send: queue and start the writer. Queue and Flush apart: several messages in one write.
  void SendToClient(std::string_view bytes);
  void QueueForClient(std::string_view bytes);
  void FlushToClient();
  void SendToServer(std::string_view bytes);
  void QueueForServer(std::string_view bytes);
  void FlushToServer();
  asio::awaitable<void> WriteClient();
  asio::awaitable<void> WriteServer();
  // Waits until `box` holds less than a buffer (the other side's backpressure).
  asio::awaitable<void> WaitForRoom(Outbox& box);
  // Waits until everything for the client is written.
  asio::awaitable<void> FlushClient();
  static asio::awaitable<void> SendCancel(std::shared_ptr<SessionConnection> self, Backend backend,
                                          CancelKey key);
  // Tells the client why (FATAL), then closes (after a linger).
  // Views, not strings: the caller waits for it, so what they show outlives the call, and a
  // view has no destructor for GCC 12 to run twice.
  asio::awaitable<void> CloseWith(std::string_view sqlstate, std::string_view message);
  static asio::awaitable<void> CloseWithOf(std::shared_ptr<SessionConnection> self,
                                           std::string sqlstate, std::string message);
  bool ending() const { return closed_ || closing_; }
  void UpdateBusy();
  void Close();

  std::shared_ptr<SessionMode::Hub> hub_;
  std::shared_ptr<const RouterSettings> settings_;  // as when the client arrived
  asio::ip::tcp::socket client_;
  ClientLogin login_;  // offers TLS when the hub has a certificate
  // Set once the client asked for TLS and the handshake ran: all its bytes go through it.
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  std::shared_ptr<asio::ip::tcp::socket> server_;  // null: no server now
  uint64_t generation_ = 0;                        // of server_: a replaced one's loop stops
  // The hub's routes_version when server_ was last found on the primary (0: not since it opened).
  uint64_t checked_routes_ = 0;
  std::optional<Backend> backend_;
  std::optional<CancelKey> server_key_;
  CancelKey client_key_for_cancel_;
  asio::steady_timer wake_;    // a held query's wait
  asio::steady_timer linger_;  // the end of a half-closed session's linger
  Outbox to_client_, to_server_;
  std::vector<std::pair<std::string, std::string>> parameters_;
  std::string client_key_;
  StoredSecret secret_;
  SessionState state_;
  std::optional<LostTransaction> lost_;
  std::string pinned_end_;  // a pinned session's server went away: why it ends
  std::atomic<bool> busy_{false};
  bool closing_ = false;  // told the client why it ends (CloseWith); lingering before Close
  bool closed_ = false;
  bool registered_ = false;
};

}  // namespace pgha::router
