// Where each port sends new connections: a pure function of what the router knows (the cluster
// as etcd shows it, whether etcd answers, the members' latest REST answers) and its settings.
// The router is a fence as much as a proxy: the write port goes only to the member that holds
// the leader key and reports itself running as primary; anything else holds writes back.
//
// Thread-safety: pure functions over values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/cluster.h"
#include "router/settings.h"

namespace pgha::router {

struct Backend {
  std::string member;
  std::string host;
  int port = 0;
  std::string api_url;
  bool operator==(const Backend&) const = default;
};

// One member's latest answers to the router's REST checks.
struct ProbeAnswer {
  bool primary_ok = false;  // GET /primary answered 200
  bool replica_ok = false;  // GET /replica answered 200
};

struct RoutingInput {
  // The cluster as last read from etcd; nullopt before the first read succeeded.
  std::optional<model::ClusterSnapshot> cluster;
  bool dcs_reachable = false;
  // Fresh REST answers by member name (the caller drops stale ones); a member absent here has
  // not been checked yet.
  std::map<std::string, ProbeAnswer> probes;
  WallTime wall_now{};
  MonoTime now{};
  // When the router first saw the current failover key (a switchover or failover request).
  std::optional<MonoTime> failover_seen_at;
  // When the router first saw the current handover notice (model/handover_notice.h).
  std::optional<MonoTime> handover_seen_at;
};

struct Routes {
  std::optional<Backend> primary;  // nullopt: new write connections are held
  std::string no_primary_reason;   // why, for logs and the status page
  std::vector<Backend> replicas;   // running replicas eligible for reads
  std::vector<Backend> readers;    // where reads go: the replicas, or the fallback
  bool reads_on_primary = false;   // readers is the primary by read_fallback
  std::string leader;              // who holds the leader key ("" when nobody)
  bool from_dcs = true;            // false: etcd is away and the REST checks decided
  bool operator==(const Routes&) const = default;
};

Routes DecideRoutes(const RoutingInput& input, const RouterSettings& settings);

// The member's PostgreSQL address from its conn_url; nullopt when it has none.
std::optional<Backend> BackendOf(const model::Member& member);

}  // namespace pgha::router
