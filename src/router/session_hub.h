// What a session-mode connection shares with the others (session_mode.h): the routes and the
// pause, the cache of stored secrets and the thread its auth queries run on, the cancel keys, the
// registry of open sessions and the figures. Internal to the session mode.
//
// Thread-safety: every method may be called from any thread; `mutex` guards what it names.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "router/session_mode.h"

namespace pgha::router {

struct SessionMode::Hub : std::enable_shared_from_this<SessionMode::Hub> {
  Hub(HostResolver& resolver, std::shared_ptr<const RouterSettings> settings);

  struct Target {
    std::optional<Backend> primary;  // nullopt: writes are held
    std::string waiting_for;         // why, when they are
  };
  Target CurrentTarget() const;
  std::shared_ptr<const RouterSettings> CurrentSettings() const;

  // A cached secret of `user` still within auth_cache_ttl.
  std::optional<std::optional<StoredSecret>> CachedSecret(const std::string& user);
  // Runs the auth query (blocking: call it on lookup_pool) and caches what it found.
  Result<std::optional<StoredSecret>> FetchSecret(const Backend& primary, const std::string& user);
  // The secret proved wrong (a failed login, a server holding another): fetch it next time.
  void ForgetSecret(const std::string& user);

  void Register(SessionConnection* connection, std::weak_ptr<SessionConnection> weak);
  void Unregister(SessionConnection* connection);
  // A key for a new session's client, mapped to it until Unregister.
  CancelKey IssueCancelKey(SessionConnection* connection);
  // A CancelRequest from a client: to the session it names, if any.
  void Cancel(const CancelKey& key);
  // The sessions open now (references taken outside the mutex's hold on their lifetime).
  std::vector<std::shared_ptr<SessionConnection>> Open();
  // A session finished its transaction: tell the listener when the pause has drained.
  void NoteRested();

  HostResolver& resolver;
  // The router's certificate for clients' TLS (tls_certificate, tls_key); null: TLS is declined.
  std::shared_ptr<asio::ssl::context> tls;
  asio::thread_pool lookup_pool{1};  // auth queries, off the I/O threads

  struct Counters {
    std::atomic<int64_t> active{0}, total{0}, logins_refused{0}, moved{0}, pinned_closed{0},
        transactions_lost{0}, pause_timeouts{0}, pauses{0}, queries_held{0}, hold_micros{0},
        verifier_lookups{0}, verifier_lookup_errors{0};
  } counters;

  // Moves on with every Apply, inside the mutex: a session that found its server on the primary
  // at version v need not look again while the version is still v.
  std::atomic<uint64_t> routes_version{0};

  mutable Mutex mutex;
  std::shared_ptr<const RouterSettings> settings GUARDED_BY(mutex);
  Routes routes GUARDED_BY(mutex);
  bool paused GUARDED_BY(mutex) = false;
  uint64_t pause_number GUARDED_BY(mutex) = 0;  // which pause the timer below belongs to
  std::unique_ptr<asio::steady_timer> pause_timer GUARDED_BY(mutex);
  std::map<SessionConnection*, std::weak_ptr<SessionConnection>> connections GUARDED_BY(mutex);
  std::map<CancelKey, SessionConnection*> cancel_keys GUARDED_BY(mutex);
  std::mt19937 random GUARDED_BY(mutex){std::random_device{}()};
  struct CachedEntry {
    std::optional<StoredSecret> secret;
    std::chrono::steady_clock::time_point fetched;
  };
  std::map<std::string, CachedEntry> secrets GUARDED_BY(mutex);
  SessionMode::SecretLookup lookup GUARDED_BY(mutex);
  std::function<void()> on_drained GUARDED_BY(mutex);
  bool shut_down GUARDED_BY(mutex) = false;
};

}  // namespace pgha::router
