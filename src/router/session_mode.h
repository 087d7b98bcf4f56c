// The write port's session mode (setting `mode: session`): the router logs clients in itself
// (against the secret PostgreSQL holds for the role, fetched with the auth query: SCRAM-SHA-256,
// md5, or none where the servers trust the router), opens each session's server connection with
// what the client's login left (its SCRAM ClientKey, the md5 hash), and relays PostgreSQL
// messages, so that it can carry an idle session to a new primary (session_connection.h).
//
// This class is what the sessions share: the routes, the pause a switchover brings (from the
// moment the routes hold writes until they name a primary again), the secrets fetched, the
// cancel keys handed to clients, the figures. A pause is over for the leader once no session
// has a transaction under way; after pause_timeout those still under way are cut (their clients
// get an error for the transaction and carry on). Whoever acknowledges the leader's handover
// notice asks Drained() and is told when it becomes true.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "router/host_resolver.h"
#include "router/pg_wire.h"
#include "router/routing.h"
#include "router/scram.h"
#include "router/settings.h"
#include "router/stored_secret.h"

namespace pgha::router {

struct SessionModeStats {
  int64_t active = 0;             // client sessions open
  int64_t total = 0;              // accepted
  int64_t logins_refused = 0;     // a wrong password, an unknown role, a malformed login
  int64_t moved = 0;              // sessions carried to another server
  int64_t pinned_closed = 0;      // sessions closed because their state could not move
  int64_t transactions_lost = 0;  // transactions whose server went away under them
  int64_t pause_timeouts = 0;     // transactions cut at pause_timeout
  int64_t pauses = 0;             // switchovers and handovers that paused the sessions
  bool paused = false;
  int64_t queries_held = 0;      // queries that waited for a primary
  double hold_seconds_sum = 0;   // and how long, in all
  int64_t verifier_lookups = 0;  // auth queries run
  int64_t verifier_lookup_errors = 0;
};

class SessionConnection;

class SessionMode {
 public:
  // Fetches a role's stored secret from the primary (the auth query): nullopt when there is no
  // such role or its secret cannot be read, an error when the query could not run. Blocking;
  // called on a lookup thread.
  using SecretLookup = std::function<Result<std::optional<StoredSecret>>(const Backend& primary,
                                                                         const std::string& user)>;

  SessionMode(HostResolver& resolver, std::shared_ptr<const RouterSettings> settings);
  ~SessionMode();
  SessionMode(const SessionMode&) = delete;
  SessionMode& operator=(const SessionMode&) = delete;

  // Before the first Accept: the certificate and key (PEM files) for clients' TLS. An error
  // names the file that cannot be used.
  Status UseCertificate(const std::string& certificate_file, const std::string& key_file);
  // Before the first Accept.
  void SetSecretLookup(SecretLookup lookup);
  // Called (from any thread; it must not block) when Drained() may have become true.
  void SetDrainedListener(std::function<void()> on_drained);

  void Accept(asio::ip::tcp::socket client, std::shared_ptr<const RouterSettings> settings);
  void Apply(const Routes& routes);
  void SetSettings(std::shared_ptr<const RouterSettings> settings);
  // No session has a transaction or a query under way on a server.
  bool Drained() const;
  void CloseAll();
  SessionModeStats Stats() const;
  // The sessions open now (Stats().active without the hub's lock: asked at every accept).
  int64_t Active() const;

  struct Hub;

 private:
  std::shared_ptr<Hub> hub_;
};

}  // namespace pgha::router
