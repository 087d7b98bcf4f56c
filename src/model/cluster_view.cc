#include "model/cluster_view.h"

#include <algorithm>

#include "common/lsn.h"

namespace pgha::model {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string RoleOf(const ClusterSnapshot& cluster, const Member& member) {
  if (cluster.leader && cluster.leader->name == member.name) {
    return cluster.EffectiveConfig().is_standby_cluster() ? "standby_leader" : "leader";
  }
  if (cluster.sync && cluster.sync->IsSyncStandby(member.name)) {
    bool quorum = cluster.EffectiveConfig().synchronous_mode() == SynchronousMode::kQuorum;
    return quorum ? "quorum_standby" : "sync_standby";
  }
  return "replica";
}

// Bytes `position` is behind `reference`; Patroni reports 0 for a member ahead of the status key.
json LagBehind(uint64_t reference, std::optional<uint64_t> position) {
  if (!position) {
    return "unknown";
  }
  return reference >= *position ? reference - *position : 0;
}

}  // namespace

ordered_json ClusterAsJson(const ClusterSnapshot& cluster) {
  uint64_t cluster_lsn = cluster.status.optime.value_or(0);
  ordered_json members = ordered_json::array();
  for (const Member& m : cluster.members) {
    ordered_json member;
    member["name"] = m.name;
    std::string role = RoleOf(cluster, m);
    member["role"] = role;
    member["state"] = m.state();
    member["api_url"] = m.api_url();
    if (!m.host().empty()) {
      member["host"] = m.host();
      if (m.port() != 0) {
        member["port"] = m.port();
      }
    }
    for (const char* optional :
         {"timeline", "pending_restart", "pending_restart_reason", "scheduled_restart", "tags"}) {
      if (auto it = m.data.find(optional); it != m.data.end() && !it->is_null()) {
        member[optional] = *it;
      }
    }
    bool is_leader = role == "leader" || role == "standby_leader";
    if (!is_leader) {
      member["lag"] = LagBehind(cluster_lsn, m.wal_position());
    }
    // Patroni 4.1's split of the position into what was received and what was replayed.
    if (!is_leader && (m.receive_lsn() || m.replay_lsn())) {
      if (auto lsn = m.receive_lsn()) {
        member["receive_lsn"] = Lsn(*lsn).ToString();
        member["receive_lag"] = LagBehind(cluster_lsn, lsn);
      }
      if (auto lsn = m.replay_lsn()) {
        member["replay_lsn"] = Lsn(*lsn).ToString();
        member["replay_lag"] = LagBehind(cluster_lsn, lsn);
      }
    }
    members.push_back(std::move(member));
  }
  std::sort(members.begin(), members.end(), [](const ordered_json& a, const ordered_json& b) {
    return a["name"].get<std::string>() < b["name"].get<std::string>();
  });
  ordered_json out;
  out["members"] = std::move(members);
  if (cluster.EffectiveConfig().is_paused()) {
    out["pause"] = true;
  }
  if (cluster.failover && cluster.failover->scheduled_at) {
    ordered_json scheduled;
    scheduled["at"] = cluster.failover->scheduled_at_text;
    if (cluster.failover->leader) {
      scheduled["from"] = *cluster.failover->leader;
    }
    if (cluster.failover->candidate) {
      scheduled["to"] = *cluster.failover->candidate;
    }
    out["scheduled_switchover"] = std::move(scheduled);
  }
  return out;
}

}  // namespace pgha::model
