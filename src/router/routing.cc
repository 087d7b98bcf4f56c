#include "router/routing.h"

#include <algorithm>

namespace pgha::router {
namespace {

bool IsRunning(const model::Member& member) {
  // Patroni 3 writes "running" for a healthy replica, Patroni 4 "streaming".
  std::string state = member.state();
  return state == "running" || state == "streaming";
}

// A switchover or failover announced for now (not scheduled later) that the current leader will
// carry out: new writes wait for the new primary instead of reaching one about to stop.
bool SwitchoverPending(const RoutingInput& in, const RouterSettings& settings) {
  const auto& failover = in.cluster->failover;
  if (!failover || (!failover->leader && !failover->candidate)) {
    return false;  // absent, or emptied ("{}") once done
  }
  if (failover->scheduled_at && *failover->scheduled_at > in.wall_now) {
    return false;
  }
  if (failover->leader && in.cluster->leader && *failover->leader != in.cluster->leader->name) {
    return false;  // names a leader that is not the leader: the agents will ignore it
  }
  if (failover->candidate && in.cluster->leader &&
      *failover->candidate == in.cluster->leader->name) {
    return false;  // asks for the member that already leads
  }
  // Bounded: a request the leader refuses without clearing it must not stop writes for good.
  // A scheduled one is counted from when it fell due, not from when it was written.
  if (failover->scheduled_at) {
    return in.wall_now - *failover->scheduled_at < settings.switchover_hold;
  }
  return in.failover_seen_at && in.now - *in.failover_seen_at < settings.switchover_hold;
}

// The leader announced that it is about to stop PostgreSQL (a switchover, a graceful stop): new
// writes wait for the next primary. Bounded like a switchover: the notice of a leader that
// neither stops nor withdraws it holds writes for switchover_hold at most.
bool HandoverPending(const RoutingInput& in, const RouterSettings& settings) {
  const auto& notice = in.cluster->handover;
  if (!notice || !in.cluster->leader || notice->leader != in.cluster->leader->name) {
    return false;  // none, or from a member that no longer leads: the handover is over
  }
  return in.handover_seen_at && in.now - *in.handover_seen_at < settings.switchover_hold;
}

void DecidePrimaryFromDcs(const RoutingInput& in, const RouterSettings& settings, Routes& out) {
  const auto& cluster = *in.cluster;
  if (!cluster.leader) {
    out.no_primary_reason = "no member holds the leader key";
    return;
  }
  const model::Member* leader = cluster.LeaderMember();
  if (leader == nullptr) {
    out.no_primary_reason = "leader " + cluster.leader->name + " has no member key";
    return;
  }
  if (!leader->IsPrimaryRole() || !IsRunning(*leader)) {
    out.no_primary_reason = "leader " + leader->name + " is not running as primary (role " +
                            leader->role() + ", state " + leader->state() + ")";
    return;
  }
  auto backend = BackendOf(*leader);
  if (!backend) {
    out.no_primary_reason = "leader " + leader->name + " advertises no conn_url";
    return;
  }
  if (SwitchoverPending(in, settings)) {
    out.no_primary_reason = "switchover in progress";
    return;
  }
  if (HandoverPending(in, settings)) {
    out.no_primary_reason = "leader " + leader->name + " announced a " +
                            model::HandoverReasonName(in.cluster->handover->reason);
    return;
  }
  out.primary = backend;
}

void DecideReplicasFromDcs(const RoutingInput& in, const RouterSettings& settings, Routes& out) {
  const auto& cluster = *in.cluster;
  std::optional<uint64_t> leader_position = cluster.status.optime;
  if (const auto* leader = cluster.LeaderMember(); leader != nullptr) {
    if (auto position = leader->wal_position();
        position && (!leader_position || *position > *leader_position)) {
      leader_position = position;
    }
  }
  for (const auto& member : cluster.members) {
    if (cluster.leader && member.name == cluster.leader->name) {
      continue;
    }
    if (member.role() != model::kRoleReplica || !IsRunning(member) || member.noloadbalance()) {
      continue;
    }
    auto position = member.wal_position();
    if (leader_position && position && *leader_position > *position &&
        static_cast<int64_t>(*leader_position - *position) > settings.max_replica_lag_bytes) {
      continue;
    }
    if (auto probe = in.probes.find(member.name);
        probe != in.probes.end() && !probe->second.replica_ok) {
      continue;  // its own agent says it should not serve reads (or does not answer)
    }
    if (auto backend = BackendOf(member)) {
      out.replicas.push_back(*backend);
    }
  }
}

// etcd is away: the last known members stay only while their REST API vouches for them, and
// nothing becomes primary that was not the leader before.
void DecideFromProbes(const RoutingInput& in, Routes& out) {
  const auto& cluster = *in.cluster;
  auto answers = [&](const std::string& name) -> const ProbeAnswer* {
    auto it = in.probes.find(name);
    return it == in.probes.end() ? nullptr : &it->second;
  };
  if (const auto* leader = cluster.LeaderMember(); leader != nullptr) {
    const auto* probe = answers(leader->name);
    if (probe != nullptr && probe->primary_ok) {
      out.primary = BackendOf(*leader);
    }
  }
  if (!out.primary) {
    out.no_primary_reason =
        "etcd is unreachable and the last leader does not answer 200 to /primary";
  }
  for (const auto& member : cluster.members) {
    if (cluster.leader && member.name == cluster.leader->name) {
      continue;
    }
    const auto* probe = answers(member.name);
    if (probe != nullptr && probe->replica_ok && !member.noloadbalance()) {
      if (auto backend = BackendOf(member)) {
        out.replicas.push_back(*backend);
      }
    }
  }
}

}  // namespace

std::optional<Backend> BackendOf(const model::Member& member) {
  std::string host = member.host();
  int port = member.port();
  if (host.empty() || port <= 0) {
    return std::nullopt;
  }
  return Backend{member.name, host, port, member.api_url()};
}

Routes DecideRoutes(const RoutingInput& in, const RouterSettings& settings) {
  Routes out;
  if (!in.cluster) {
    out.no_primary_reason = "the cluster has not been read from etcd yet";
  } else {
    out.leader = in.cluster->leader ? in.cluster->leader->name : "";
    out.from_dcs = in.dcs_reachable;
    if (in.dcs_reachable) {
      DecidePrimaryFromDcs(in, settings, out);
      DecideReplicasFromDcs(in, settings, out);
    } else {
      DecideFromProbes(in, out);
    }
  }
  out.readers = out.replicas;
  if (out.readers.empty() && out.primary && settings.read_fallback == ReadFallback::kPrimary) {
    out.readers.push_back(*out.primary);
    out.reads_on_primary = true;
  }
  return out;
}

}  // namespace pgha::router
