// The router's data path: two listeners (write, read) whose clients are relayed to the backend
// the current Routes name, on a small fixed set of I/O threads (asio; one io_context per thread,
// no thread per connection). Per connection: two buffers of buffer_size with backpressure (a
// side is read only once the other side took the last read), TCP_NODELAY and keepalive.
//
// A client that arrives while its port has no target is held, not refused: it is forwarded as
// soon as Apply() names one, and gets a FATAL error after connect_hold_timeout. A backend that
// refuses the connection is skipped for check_interval and the client tries the next one, or
// waits. When the leader key moves, write connections to the member that lost it are closed at
// once (on_leader_change: close).
//
// With `mode: session` the write port's clients are handed to the session mode instead
// (session_mode.h), which speaks PostgreSQL's protocol and carries sessions across a switchover.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "router/routing.h"
#include "router/session_mode.h"
#include "router/settings.h"

namespace pgha::router {

enum class Port { kWrite, kRead };
const char* PortName(Port port);

struct ListenerStats {
  int64_t active = 0;  // relayed or waiting for a backend
  int64_t total = 0;
  int64_t refused_maxconn = 0;
  int64_t held_now = 0;
  int64_t held_total = 0;       // clients that had to wait for a target
  int64_t hold_timeouts = 0;    // ... and got an error after connect_hold_timeout
  double hold_seconds_sum = 0;  // waiting time of held clients that got a backend
  int64_t rejected_no_replica = 0;
  int64_t invalid_openings = 0;  // bytes that are no PostgreSQL startup
  int64_t connect_errors = 0;    // backend connections refused or timed out
  int64_t closed_on_leader_change = 0;
  int64_t bytes_from_clients = 0;
  int64_t bytes_to_clients = 0;
  int64_t retried = 0;  // logins moved to another backend before the client saw the first
};

struct MemberStats {
  int64_t active = 0;
  int64_t total = 0;
};

struct ProxyStats {
  ListenerStats write, read;
  // By port, then member name.
  std::map<std::string, std::map<std::string, MemberStats>> members;
  SessionModeStats session;  // the write port's clients in `mode: session`
};

class Proxy {
 public:
  explicit Proxy(RouterSettings settings);
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds both listeners and starts the I/O threads; a clear error when a port is taken.
  Status Start();
  // New targets: held clients go to them, lost write connections close.
  void Apply(const Routes& routes);
  // New settings (SIGHUP): listeners whose address changed are re-bound, open connections stay;
  // the rest applies to connections accepted from now on. An address that cannot be bound is
  // an error and the old listener stays.
  Status Reload(const RouterSettings& settings);
  // Stops accepting (SIGTERM): open connections carry on until they end or CloseAll().
  void StopAccepting();
  void CloseAll();
  // Stops the I/O threads; connections still open are closed.
  void Stop();

  // Called (from an I/O thread; it must not block) when a backend refuses or times out a
  // connection. Set before Start.
  void SetRefusalListener(std::function<void(const std::string& member)> on_refusal);

  // How backend host names become addresses (host_resolver.h); getaddrinfo unless a test sets
  // another before Start.
  void SetHostResolver(
      std::function<Result<std::vector<std::string>>(const std::string& host)> resolve);

  // Session mode: how a role's stored secret is fetched (session_mode.h), and who is told
  // when Drained() may have become true. Set before Start.
  void SetSecretLookup(SessionMode::SecretLookup lookup);
  void SetDrainedListener(std::function<void()> on_drained);
  // No session-mode client has a transaction under way (always true in l4 mode): a leader's
  // handover notice may be acknowledged.
  bool Drained() const;

  ProxyStats Stats() const;
  int64_t ActiveConnections() const;
  // The ports bound (useful when the settings ask for port 0 in tests).
  int write_port() const;
  int read_port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgha::router
