// pgha-router's own settings: the optional `router:` section of a node's patroni.yml, then
// PGHA_ROUTER_<KEY> variables (upper-case key), then command-line flags. Where to find the
// cluster (scope, namespace, etcd3) and how to call the members' REST API (restapi/ctl
// authentication and TLS) come from the rest of the same file, as a node reads them.
//
// Thread-safety: an immutable value once parsed; a reload builds a new one.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "config/config.h"

namespace pgha::router {

// Where reads go when no replica is eligible.
enum class ReadFallback { kPrimary, kReject };
// What happens to open write connections when their member loses the leader key.
enum class OnLeaderChange { kClose, kKeep };
// How the write port relays: bytes (l4), or PostgreSQL messages, logging clients in itself
// and carrying their sessions to a new primary (session; docs/router.md).
enum class ProxyMode { kL4, kSession };

struct RouterSettings {
  // This router's name in etcd (pgha/routers/<name>), under which it acknowledges a leader's
  // handover notice. Empty: the host name and the write port, set when the router starts.
  std::string name;
  config::HostPort write_listen{"0.0.0.0", 5000};
  config::HostPort read_listen{"0.0.0.0", 5001};
  config::HostPort stats_listen{"0.0.0.0", 8484};
  int64_t max_replica_lag_bytes = 1024 * 1024;  // Patroni's maximum_lag_on_failover default
  ReadFallback read_fallback = ReadFallback::kPrimary;
  OnLeaderChange on_leader_change = OnLeaderChange::kClose;
  std::chrono::milliseconds connect_hold_timeout{30000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds check_interval{1000};
  // A switchover the router saw announced holds new write connections at most this long while
  // the old leader still holds the key (it then routes to the leader again).
  std::chrono::milliseconds switchover_hold{10000};
  std::chrono::milliseconds drain_timeout{30000};
  size_t maxconn = 1000;  // per listener
  size_t threads = 2;
  size_t buffer_bytes = 16 * 1024;  // per direction and connection
  bool tcp_keepalive = true;
  ProxyMode mode = ProxyMode::kL4;
  // Session mode: how long transactions under way may run on once a switchover is announced
  // before they end with an error and the router acknowledges.
  std::chrono::milliseconds pause_timeout{5000};
  // Session mode: the role, password and database of the auth query that fetches a client's
  // SCRAM verifier (empty user: postgresql.authentication.superuser of the same file).
  std::string auth_user;
  std::string auth_password;
  std::string auth_dbname = "postgres";
  std::string auth_query = "SELECT passwd FROM pg_catalog.pg_shadow WHERE usename = $1";
  // Session mode: the certificate and key (PEM files) with which the router answers a client's
  // TLS request; both empty: TLS is declined and the client goes on in clear or gives up.
  std::string tls_certificate;
  std::string tls_key;
  // Session mode: how long a fetched verifier is used before it is fetched again.
  std::chrono::milliseconds auth_cache_ttl{60000};
};

// `section` is the `router:` mapping (null or absent: defaults); `environment` supplies
// PGHA_ROUTER_* overrides. An unknown key or variable, a bad value: an error naming it.
Result<RouterSettings> ParseRouterSettings(const nlohmann::json& section,
                                           const std::map<std::string, std::string>& environment);

const char* ReadFallbackName(ReadFallback value);
const char* OnLeaderChangeName(OnLeaderChange value);
const char* ProxyModeName(ProxyMode value);

}  // namespace pgha::router
