#include "router/session_mode.h"

#include <vector>

#include "common/log.h"
#include "router/session_connection.h"
#include "router/session_hub.h"

namespace pgha::router {

using Steady = std::chrono::steady_clock;

SessionMode::Hub::Hub(HostResolver& resolver_in, std::shared_ptr<const RouterSettings> settings_in)
    : resolver(resolver_in), settings(std::move(settings_in)) {}

SessionMode::Hub::Target SessionMode::Hub::CurrentTarget() const {
  MutexLock lock(mutex);
  return Target{routes.primary, routes.no_primary_reason};
}

std::shared_ptr<const RouterSettings> SessionMode::Hub::CurrentSettings() const {
  MutexLock lock(mutex);
  return settings;
}

std::optional<std::optional<StoredSecret>> SessionMode::Hub::CachedSecret(const std::string& user) {
  MutexLock lock(mutex);
  auto it = secrets.find(user);
  if (it == secrets.end() || Steady::now() - it->second.fetched > settings->auth_cache_ttl) {
    return std::nullopt;
  }
  return it->second.secret;
}

Result<std::optional<StoredSecret>> SessionMode::Hub::FetchSecret(const Backend& primary,
                                                                  const std::string& user) {
  SessionMode::SecretLookup fetch;
  {
    MutexLock lock(mutex);
    if (shut_down) {
      return Error::Unavailable("the router is stopping");
    }
    fetch = lookup;
  }
  if (!fetch) {
    return Error::Unavailable("no auth query is configured");
  }
  ++counters.verifier_lookups;
  auto found = fetch(primary, user);
  if (!found.ok()) {
    ++counters.verifier_lookup_errors;
    PGHA_LOG_WARN("session mode: the auth query on {} failed: {}", primary.member,
                  found.error().message());
    return found;
  }
  MutexLock lock(mutex);
  secrets[user] = CachedEntry{*found, Steady::now()};
  return found;
}

void SessionMode::Hub::ForgetSecret(const std::string& user) {
  MutexLock lock(mutex);
  secrets.erase(user);
}

void SessionMode::Hub::Register(SessionConnection* connection,
                                std::weak_ptr<SessionConnection> weak) {
  MutexLock lock(mutex);
  connections[connection] = std::move(weak);
}

void SessionMode::Hub::Unregister(SessionConnection* connection) {
  MutexLock lock(mutex);
  connections.erase(connection);
  std::erase_if(cancel_keys, [&](const auto& entry) { return entry.second == connection; });
}

CancelKey SessionMode::Hub::IssueCancelKey(SessionConnection* connection) {
  MutexLock lock(mutex);
  CancelKey key;
  do {
    key.process_id = random();
    key.secret = random();
  } while (key.process_id == 0 || cancel_keys.count(key) != 0);
  cancel_keys[key] = connection;
  return key;
}

void SessionMode::Hub::Cancel(const CancelKey& key) {
  std::shared_ptr<SessionConnection> target;
  {
    MutexLock lock(mutex);
    auto it = cancel_keys.find(key);
    if (it == cancel_keys.end()) {
      return;  // as PostgreSQL: a key that names no session is ignored
    }
    target = connections[it->second].lock();
  }
  if (target) {
    target->Cancel();
  }
}

std::vector<std::shared_ptr<SessionConnection>> SessionMode::Hub::Open() {
  std::vector<std::shared_ptr<SessionConnection>> open;
  {
    MutexLock lock(mutex);
    for (const auto& [raw, weak] : connections) {
      open.push_back(weak.lock());
    }
  }
  // Dropped here, outside the mutex: the last reference's destructor takes the mutex.
  std::erase_if(open, [](const auto& connection) { return connection == nullptr; });
  return open;
}

void SessionMode::Hub::NoteRested() {
  std::function<void()> listener;
  {
    MutexLock lock(mutex);
    if (!paused) {
      return;
    }
    listener = on_drained;
  }
  if (listener) {
    listener();  // it asks Drained(), which needs the mutex
  }
}

SessionMode::SessionMode(HostResolver& resolver, std::shared_ptr<const RouterSettings> settings)
    : hub_(std::make_shared<Hub>(resolver, std::move(settings))) {}

SessionMode::~SessionMode() {
  {
    MutexLock lock(hub_->mutex);
    hub_->shut_down = true;
    hub_->pause_timer.reset();
  }
  CloseAll();
  hub_->lookup_pool.join();
}

Status SessionMode::UseCertificate(const std::string& certificate_file,
                                   const std::string& key_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  asio::error_code error;
  context->use_certificate_chain_file(certificate_file, error);
  if (error) {
    return Error::Invalid("router.tls_certificate " + certificate_file + ": " + error.message());
  }
  context->use_private_key_file(key_file, asio::ssl::context::pem, error);
  if (error) {
    return Error::Invalid("router.tls_key " + key_file + ": " + error.message());
  }
  hub_->tls = std::move(context);
  return OkStatus();
}

void SessionMode::SetSecretLookup(SecretLookup lookup) {
  MutexLock lock(hub_->mutex);
  hub_->lookup = std::move(lookup);
}

void SessionMode::SetDrainedListener(std::function<void()> on_drained) {
  MutexLock lock(hub_->mutex);
  hub_->on_drained = std::move(on_drained);
}

void SessionMode::Accept(asio::ip::tcp::socket client,
                         std::shared_ptr<const RouterSettings> settings) {
  std::make_shared<SessionConnection>(hub_, std::move(client), std::move(settings))->Start();
}

void SessionMode::SetSettings(std::shared_ptr<const RouterSettings> settings) {
  MutexLock lock(hub_->mutex);
  hub_->settings = std::move(settings);
}

void SessionMode::Apply(const Routes& routes) {
  bool leader_moved = false;
  {
    MutexLock lock(hub_->mutex);
    bool was_paused = hub_->paused;
    leader_moved = !routes.leader.empty() && hub_->routes.leader != routes.leader;
    hub_->routes = routes;
    hub_->routes_version.fetch_add(1, std::memory_order_acq_rel);
    hub_->paused = !routes.primary.has_value();
    if (hub_->paused && !was_paused && !hub_->shut_down) {
      // Transactions under way may finish for pause_timeout; then they are cut, so that the
      // leader waiting for this router's acknowledgement is not held by a client.
      ++hub_->counters.pauses;
      uint64_t number = ++hub_->pause_number;
      hub_->pause_timer =
          std::make_unique<asio::steady_timer>(hub_->lookup_pool, hub_->settings->pause_timeout);
      hub_->pause_timer->async_wait(
          [weak = std::weak_ptr<Hub>(hub_), number](const asio::error_code& error) {
            auto hub = weak.lock();
            if (error || !hub) {
              return;
            }
            {
              MutexLock hub_lock(hub->mutex);
              if (!hub->paused || hub->pause_number != number) {
                return;
              }
            }
            auto busy = hub->Open();
            std::erase_if(busy, [](const auto& connection) { return !connection->busy(); });
            if (!busy.empty()) {
              PGHA_LOG_WARN(
                  "session mode: {} transaction(s) still under way after pause_timeout; "
                  "cutting them",
                  busy.size());
            }
            for (auto& connection : busy) {
              connection->CutTransaction();
            }
          });
    }
    if (!hub_->paused) {
      hub_->pause_timer.reset();
    }
  }
  for (auto& connection : hub_->Open()) {
    if (leader_moved) {
      connection->LeaderMoved(routes.leader);
    }
    connection->Wake();
  }
}

bool SessionMode::Drained() const {
  for (const auto& connection : hub_->Open()) {
    if (connection->busy()) {
      return false;
    }
  }
  return true;
}

void SessionMode::CloseAll() {
  for (auto& connection : hub_->Open()) {
    connection->CloseFromOutside();
  }
}

int64_t SessionMode::Active() const { return hub_->counters.active.load(); }

SessionModeStats SessionMode::Stats() const {
  const auto& c = hub_->counters;
  SessionModeStats stats;
  stats.active = c.active;
  stats.total = c.total;
  stats.logins_refused = c.logins_refused;
  stats.moved = c.moved;
  stats.pinned_closed = c.pinned_closed;
  stats.transactions_lost = c.transactions_lost;
  stats.pause_timeouts = c.pause_timeouts;
  stats.pauses = c.pauses;
  stats.queries_held = c.queries_held;
  stats.hold_seconds_sum = static_cast<double>(c.hold_micros.load()) / 1e6;
  stats.verifier_lookups = c.verifier_lookups;
  stats.verifier_lookup_errors = c.verifier_lookup_errors;
  MutexLock lock(hub_->mutex);
  stats.paused = hub_->paused;
  return stats;
}

}  // namespace pgha::router
