#include "ha/decide.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "common/lsn.h"
#include "ha/cold_start.h"

namespace pgha::ha {

namespace {

using std::chrono::duration;

bool HoldsLock(const HaInput& in) {
  return in.cluster.leader && in.cluster.leader->name == in.local.name;
}

std::string LeaderName(const HaInput& in) {
  return in.cluster.leader ? in.cluster.leader->name : std::string();
}

double SecondsSince(MonoTime now, MonoTime then) { return duration<double>(now - then).count(); }

Decision Make(std::vector<Action> actions, std::string reason) {
  return Decision{std::move(actions), std::move(reason), std::nullopt};
}

// The DCS cannot be reached: a replica keeps replicating; a primary keeps serving only while
// its lock cannot have expired elsewhere, and demotes once retry_timeout has passed without a
// successful renewal (before ttl, when another node could take the lock).
Decision DcsUnreachable(const HaInput& in) {
  const auto& local = in.local;
  if (local.postgres_running && !local.in_recovery && in.failsafe_confirmed) {
    return Make({},
                "continue to run as a leader because failsafe mode is enabled and all "
                "members are accessible");
  }
  if (local.postgres_running && !local.in_recovery) {
    bool renewal_overdue =
        !local.last_lock_renewal ||
        SecondsSince(in.now, *local.last_lock_renewal) >= in.config.retry_timeout;
    if (renewal_overdue) {
      return Make({{ActionKind::kDemote, ""}},
                  "demoting self because DCS is not accessible and I was a leader");
    }
    // Try to renew: a success proves the DCS is back and clears the alarm.
    return Make({{ActionKind::kUpdateLock, ""}},
                "DCS is not accessible; keeping the primary until the lock could expire");
  }
  return Make({}, "DCS is not accessible");
}

Decision Uninitialized(const HaInput& in) {
  const auto& cluster = in.cluster;
  if (!cluster.initialize && cluster.IsUnlocked()) {
    return Make({{ActionKind::kInitializeRace, ""}}, "trying to bootstrap a new cluster");
  }
  if (cluster.leader && !cluster.leader->name.empty() && cluster.leader->name != in.local.name) {
    std::string source = CloneSource(cluster, in.local.name, in.local.clone_from_leader);
    if (!source.empty()) {
      std::string whom = source == cluster.leader->name
                             ? fmt::format("leader '{}'", source)
                             : fmt::format("replica '{}' (clonefrom)", source);
      return Make({{ActionKind::kCreateReplica, source}},
                  fmt::format("trying to bootstrap from {}", whom));
    }
    return Make({}, fmt::format("waiting for leader '{}' to be running to bootstrap from it",
                                cluster.leader->name));
  }
  // No leader: a restore from a backup may still create this node (not while another node is
  // initializing the cluster, which an empty initialize key means).
  if (in.config.can_create_replica_without_leader && cluster.initialize &&
      !cluster.initialize->empty()) {
    return Make({{ActionKind::kCreateReplica, ""}}, "bootstrap (without leader)");
  }
  return Make({}, "waiting for leader to bootstrap");
}

Decision PostgresStopped(const HaInput& in) {
  const auto& local = in.local;
  if (HoldsLock(in)) {
    // Crash under a live agent: restart in place by crash recovery as primary, same timeline,
    // renewing the lock meanwhile; give the lock up if it takes longer than
    // primary_start_timeout so a replica can take over. A timeout of 0 prefers a failover to
    // the restart when a replica can take over (Patroni's rule).
    if (in.config.standby_cluster) {
      return Make({{ActionKind::kUpdateLock, ""}, {ActionKind::kFollowRemote, ""}},
                  "starting as the standby leader, holding the leader lock");
    }
    if (in.config.primary_start_timeout == 0 && !in.config.paused && IsFailoverPossible(in, {""})) {
      return Make({{ActionKind::kReleaseLock, ""}},
                  "primary crashed and primary_start_timeout is 0: failing over");
    }
    if (local.down_since && SecondsSince(in.now, *local.down_since) >
                                static_cast<double>(in.config.primary_start_timeout)) {
      return Make({{ActionKind::kReleaseLock, ""}},
                  "primary did not start within primary_start_timeout; releasing the leader lock");
    }
    return Make({{ActionKind::kUpdateLock, ""}, {ActionKind::kStartPrimary, ""}},
                "starting primary after failure, holding the leader lock");
  }
  std::string leader = LeaderName(in);
  if (leader.empty()) {
    if (!local.in_recovery && local.data_initialized) {
      // A former primary with nobody holding the lock: start it (as replica of nobody would
      // never promote); it rejoins the race once running. Start read-only to be safe.
      return Make({{ActionKind::kStartReplica, ""}},
                  "starting as a secondary: no leader, the race decides once running");
    }
    return Make({{ActionKind::kStartReplica, ""}}, "starting as a secondary");
  }
  if (local.needs_rewind) {
    if (in.config.use_pg_rewind) {
      return Make({{ActionKind::kRewind, leader}},
                  fmt::format("running pg_rewind from {}", leader));
    }
    return Make({}, fmt::format("the timeline diverged from leader {} and use_pg_rewind is off; "
                                "waiting (reinitialize this member to rejoin)",
                                leader));
  }
  std::string source = NodeToFollow(in.cluster, local.name, local.replicatefrom);
  return Make({{ActionKind::kStartReplica, source}},
              fmt::format("starting as a secondary following {}", source));
}

// Quorum commit: a commit waits for any numsync of the voters, so a voter has every acknowledged
// commit once it has seen `quorum` other voters (or the old leader) no further ahead than itself
// (peers ahead of it have already ruled it out). The key's own leader needs no votes.
bool SeesQuorum(const HaInput& in, std::string* why_not) {
  const auto& sync = in.cluster.sync;
  if (!sync || !sync->leader || sync->quorum == 0 || *sync->leader == in.local.name) {
    return true;
  }
  // A negative quorum is no value a leader writes: ask for every other voter and the leader.
  int64_t needed = sync->quorum > 0 ? sync->quorum
                                    : static_cast<int64_t>(sync->sync_standby.size()) -
                                          (sync->IsSyncStandby(in.local.name) ? 1 : 0) + 1;
  int64_t votes = 0;
  for (const auto& peer : in.peers) {
    if (peer.reachable && peer.name != in.local.name &&
        peer.wal_position <= in.local.wal_position &&
        (peer.name == *sync->leader || sync->IsSyncStandby(peer.name))) {
      ++votes;
    }
  }
  if (votes < needed) {
    *why_not = fmt::format("sees {} of the {} other quorum members it needs", votes, needed);
    return false;
  }
  return true;
}

// The healthiest-node test over the peers other than `excluded` (the old leader of a manual
// failover), with or without the maximum_lag_on_failover check.
bool HealthiestAmong(const HaInput& in, const std::string& excluded, bool check_lag,
                     std::string* why_not) {
  const auto& local = in.local;
  if (local.nofailover) {
    *why_not = "tagged nofailover";
    return false;
  }
  if (!local.postgres_running) {
    *why_not = "PostgreSQL is not running";
    return false;
  }
  // In synchronous mode only the members the sync key names hold every acknowledged commit.
  bool sync_only = in.config.sync.enabled;
  if (sync_only && !SyncAllows(in.cluster, local.name)) {
    *why_not = "not a synchronous standby";
    return false;
  }
  if (check_lag && in.cluster.status.optime && local.in_recovery) {
    uint64_t optime = *in.cluster.status.optime;
    if (optime > local.wal_position &&
        optime - local.wal_position > static_cast<uint64_t>(in.config.maximum_lag_on_failover)) {
      *why_not = fmt::format(
          "lagging {} bytes behind the last leader position, more than "
          "maximum_lag_on_failover ({})",
          optime - local.wal_position, in.config.maximum_lag_on_failover);
      return false;
    }
  }
  bool cold_start = InColdStart(in);
  for (const auto& peer : in.peers) {
    if (peer.name == local.name || peer.name == excluded || !peer.reachable) {
      continue;  // an unreachable member cannot be a better candidate
    }
    if (peer.is_primary && peer.running && local.in_recovery) {
      *why_not = fmt::format("{} is still running as primary", peer.name);
      return false;
    }
    if (peer.nofailover || (sync_only && !SyncAllows(in.cluster, peer.name))) {
      continue;
    }
    if (cold_start && peer.timeline != local.timeline) {
      if (IsAheadOf(peer.timeline, peer.wal_position, local.timeline, local.wal_position)) {
        *why_not = fmt::format("cold start: {} is on a later timeline ({} > {})", peer.name,
                               peer.timeline, local.timeline);
        return false;
      }
      continue;  // on an earlier timeline: behind, whatever its position
    }
    if (peer.wal_position > local.wal_position) {
      *why_not = fmt::format("{} has a higher WAL position ({} > {})", peer.name, peer.wal_position,
                             local.wal_position);
      return false;
    }
    if (peer.wal_position == local.wal_position &&
        peer.failover_priority > local.failover_priority) {
      *why_not =
          fmt::format("{} has the same WAL position and a higher failover_priority ({} > {})",
                      peer.name, peer.failover_priority, local.failover_priority);
      return false;
    }
  }
  if (sync_only) {
    return SeesQuorum(in, why_not);
  }
  return true;
}

// The race while a failover key exists (Patroni's manual_failover_process_no_leader): the named
// candidate takes the lock; the others stand back while it is healthy, and otherwise the
// healthiest member other than the old leader goes, lag not counted.
bool TakesOverInManualFailover(const HaInput& in, std::string* why_not) {
  const auto& failover = *in.cluster.failover;
  const auto& me = in.local.name;
  // A switchover in synchronous mode goes only to a synchronous standby, whatever happens to
  // the named candidate.
  if (in.config.sync.enabled && failover.leader && !SyncAllows(in.cluster, me)) {
    *why_not = "not a synchronous standby";
    return false;
  }
  if (failover.candidate && !failover.candidate->empty()) {
    if (*failover.candidate == me) {
      return true;
    }
    if (in.config.paused) {
      *why_not = fmt::format("PAUSE: the manual failover goes to {}", *failover.candidate);
      return false;
    }
    for (const auto& peer : in.peers) {
      if (peer.name == *failover.candidate && peer.reachable && peer.running && !peer.nofailover) {
        *why_not = fmt::format("manual failover: to {}, i am {}", peer.name, me);
        return false;
      }
    }
    // The candidate cannot take over: any member but the old leader may.
  } else if (in.config.paused) {
    *why_not = "PAUSE: a manual failover needs a named candidate";
    return false;
  }
  std::string old_leader = failover.leader.value_or("");
  if (!old_leader.empty() && old_leader == me) {
    std::vector<std::string> others;
    for (const auto& peer : in.peers) {
      if (peer.name != me && peer.name != failover.candidate.value_or("")) {
        others.push_back(peer.name);
      }
    }
    if (!others.empty() && IsFailoverPossible(in, others)) {
      *why_not = "manual failover: another member is healthy enough to take over";
      return false;
    }
    return true;
  }
  return HealthiestAmong(in, old_leader, /*check_lag=*/false, why_not);
}

Decision Unlocked(const HaInput& in) {
  const auto& local = in.local;
  const auto& failover = in.cluster.failover;
  std::string why_not;
  if (in.config.paused) {
    // Only an operator's failover to a named member moves the lock while paused.
    if (failover && !failover->scheduled_at && !local.nofailover &&
        TakesOverInManualFailover(in, &why_not)) {
      return Make({{ActionKind::kAcquireLock, ""}}, "manual failover: taking the leader lock");
    }
    return Make({}, "PAUSE: no leader lock, not taking it while paused");
  }
  bool healthiest = false;
  if (local.nofailover) {
    why_not = "tagged nofailover";
  } else if (failover) {
    healthiest = TakesOverInManualFailover(in, &why_not);
  } else {
    healthiest = IsHealthiestNode(in, &why_not);
  }
  if (healthiest && !failover && InColdStart(in)) {
    if (auto missing = MembersNotHeardFrom(in); !missing.empty()) {
      healthiest = false;
      why_not = fmt::format(
          "cold start: waiting up to {:.0f} s for {} to report a position (the member that was "
          "primary last leads again)",
          std::max(0.0, std::chrono::duration<double>(*in.cold_start_until - in.now).count()),
          fmt::join(missing, ", "));
    }
  }
  if (healthiest) {
    return Make({{ActionKind::kAcquireLock, ""}}, "trying to acquire the leader lock");
  }
  if (!local.in_recovery) {
    // A primary that lost the race (or is not the healthiest) must not keep taking writes.
    return Make({{ActionKind::kDemote, ""}},
                fmt::format("demoting self because I am not the healthiest node ({})", why_not));
  }
  return Make({}, fmt::format("no leader lock; not the healthiest node: {}", why_not));
}

// The leader's side of a failover key (Patroni's process_manual_failover_from_leader): hand
// over when the key names this leader (or none) and a candidate is healthy; otherwise remove
// the key, saying why. nullopt: nothing to do about the key this cycle.
std::optional<Decision> ManualFailoverFromLeader(const HaInput& in) {
  const auto& failover = *in.cluster.failover;
  const auto& me = in.local.name;
  const std::vector<Action> keep = {{ActionKind::kUpdateLock, ""}, {ActionKind::kLeaderUpkeep, ""}};
  auto clean_up = [&keep](const std::string& why) {
    auto actions = keep;
    actions.push_back({ActionKind::kClearFailover, ""});
    return Make(std::move(actions), fmt::format("{}; cleaning up failover key", why));
  };
  if (failover.scheduled_at) {
    if (in.config.paused) {
      return std::nullopt;  // a scheduled switchover waits for resume
    }
    double delta = 0;
    switch (
        ScheduledActionState(*failover.scheduled_at, in.wall_now, in.config.loop_wait, &delta)) {
      case ScheduleState::kStale:
        return clean_up(
            fmt::format("found a stale switchover value ({})", failover.scheduled_at_text));
      case ScheduleState::kWait:
        return Make(keep, fmt::format("awaiting switchover at {} (in {:.0f} seconds)",
                                      failover.scheduled_at_text, delta));
      case ScheduleState::kDue:
        if (delta > 0) {
          auto d = Make(keep, fmt::format("awaiting switchover at {} (in {:.0f} seconds)",
                                          failover.scheduled_at_text, delta));
          d.recheck_in = delta;
          return d;
        }
        break;
    }
  }
  std::string old_leader = failover.leader.value_or("");
  std::string candidate = failover.candidate.value_or("");
  if (!old_leader.empty() && old_leader != me) {
    return clean_up(
        fmt::format("manual failover: leader name does not match: {} != {}", old_leader, me));
  }
  if (candidate == me) {
    return clean_up("manual failover: I am already the leader, no need to failover");
  }
  if (candidate.empty() && in.config.paused) {
    return clean_up("failover is possible only to a specific candidate in a paused state");
  }
  if (!IsFailoverPossible(in, {candidate})) {
    return clean_up("manual failover: no healthy members found, failover is not possible");
  }
  return Make({{ActionKind::kUpdateLock, ""}, {ActionKind::kSwitchover, candidate}},
              "manual failover: demoting myself");
}

// Patroni's check for a running replica (rewind.py, _check_timeline_and_lsn): one that replayed
// WAL of its timeline past the point where the leader's history says that timeline ended holds
// WAL the leader never had — an async replica ahead of the sync standby that took over — and
// PostgreSQL refuses to switch ("new timeline forked off ... before current recovery point").
// SQL shows no replay timeline, so the WAL receiver stands witness: a diverged replica's receiver
// stays alive, asks the leader for the old timeline, is told where it ends, and waits (not
// streaming). Without a receiver (leader down, just rewound) or while streaming (it trails
// replay across a switchpoint) nothing is concluded.
std::optional<uint64_t> DivergedAt(const HaInput& in) {
  const auto& local = in.local;
  if (!local.postgres_running || !local.in_recovery || local.streaming ||
      local.receiver_timeline <= 0) {
    return std::nullopt;
  }
  for (const auto& entry : in.cluster.history) {
    if (entry.timeline == local.receiver_timeline) {
      if (local.replayed_position > entry.lsn) {
        return entry.lsn;
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

Decision Locked(const HaInput& in) {
  const auto& local = in.local;
  if (HoldsLock(in)) {
    if (in.config.standby_cluster) {
      // A standby cluster's leader replicates from the remote primary; a primary here (the
      // section was just added) is turned into one too.
      if (local.following != model::kStandbyClusterSource || !local.in_recovery) {
        return Make({{ActionKind::kUpdateLock, ""}, {ActionKind::kFollowRemote, ""}},
                    "promoted self to a standby leader by acquiring session lock");
      }
      return Make(
          {{ActionKind::kUpdateLock, ""}, {ActionKind::kLeaderUpkeep, ""}},
          fmt::format("no action. I am ({}), the standby leader with the lock", local.name));
    }
    if (local.in_recovery) {
      std::vector<Action> actions = {{ActionKind::kUpdateLock, ""}, {ActionKind::kPromote, ""}};
      if (in.cluster.failover && !in.cluster.failover->scheduled_at) {
        actions.push_back({ActionKind::kClearFailover, ""});  // it brought us here: done
      }
      return Make(std::move(actions), "promoted self to leader by acquiring session lock");
    }
    if (in.cluster.failover) {
      if (auto handover = ManualFailoverFromLeader(in)) {
        return *handover;
      }
    }
    return Make({{ActionKind::kUpdateLock, ""}, {ActionKind::kLeaderUpkeep, ""}},
                fmt::format("no action. I am ({}), the leader with the lock", local.name));
  }
  std::string leader = LeaderName(in);
  if (!local.in_recovery) {
    return Make({{ActionKind::kDemote, leader, true}},
                "demoting self because I do not have the lock and I was a leader");
  }
  if (auto switchpoint = DivergedAt(in); switchpoint && in.config.use_pg_rewind) {
    return Make(
        {{ActionKind::kDemote, leader}},
        fmt::format("stopping to rewind from {}: replayed WAL of timeline {} up to {}, past "
                    "{} where the leader's history ends that timeline",
                    leader, local.receiver_timeline, Lsn(local.replayed_position).ToString(),
                    Lsn(*switchpoint).ToString()));
  }
  if (local.needs_rewind && local.following != leader) {
    // A former primary running read-only (demoted while the DCS was away) may have diverged
    // from the new leader: stop, then rewind before following.
    return Make({{ActionKind::kDemote, leader}},
                fmt::format("stopping to rewind from {} before following it", leader));
  }
  std::string source = NodeToFollow(in.cluster, local.name, local.replicatefrom);
  if (local.following != source) {
    if (source == leader) {
      return Make({{ActionKind::kFollow, leader}}, fmt::format("following new leader {}", leader));
    }
    return Make(
        {{ActionKind::kFollow, source}},
        fmt::format("following {} (replicatefrom) instead of the leader {}", source, leader));
  }
  if (source != leader) {
    return Make({}, fmt::format("no action. I am ({}), a secondary, and following {} "
                                "(replicatefrom); the leader is {}",
                                local.name, source, leader));
  }
  return Make({}, fmt::format("no action. I am ({}), a secondary, and following a leader ({})",
                              local.name, leader));
}

}  // namespace

bool IsHealthiestNode(const HaInput& in, std::string* why_not) {
  // failsafe_mode: the failsafe key lists the members the last leader knew; one it did not know
  // (a node restored from a backup, say) may hold none of its commits and must not win.
  if (in.config.failsafe_mode && in.cluster.failsafe &&
      !in.cluster.failsafe->count(in.local.name)) {
    *why_not = "not a member of the failsafe key";
    return false;
  }
  return HealthiestAmong(in, "", /*check_lag=*/true, why_not);
}

bool IsFailoverPossible(const HaInput& in, const std::vector<std::string>& candidates,
                        std::optional<uint64_t> min_position) {
  auto wanted = [&candidates](const std::string& name) {
    for (const auto& c : candidates) {
      if (c.empty() || c == name) {
        return true;
      }
    }
    return false;
  };
  for (const auto& peer : in.peers) {
    if (peer.name == in.local.name || !wanted(peer.name) || !peer.reachable || !peer.running ||
        peer.nofailover || peer.is_primary ||
        (in.config.sync.enabled && !SyncAllows(in.cluster, peer.name))) {
      continue;
    }
    if (min_position) {
      if (peer.wal_position >= *min_position) {
        return true;
      }
      continue;
    }
    uint64_t optime = in.cluster.status.optime.value_or(0);
    if (optime <= peer.wal_position ||
        optime - peer.wal_position <= static_cast<uint64_t>(in.config.maximum_lag_on_failover)) {
      return true;
    }
  }
  return false;
}

Decision Decide(const HaInput& in) {
  const auto& local = in.local;
  if (local.long_action != LongAction::kNone) {
    if (HoldsLock(in) && in.dcs_reachable) {
      return Make({{ActionKind::kUpdateLock, ""}},
                  fmt::format("updated leader lock during {}", LongActionName(local.long_action)));
    }
    return Make({}, fmt::format("{} in progress", LongActionName(local.long_action)));
  }
  if (!in.dcs_reachable) {
    return DcsUnreachable(in);
  }
  if (!local.data_initialized) {
    return Uninitialized(in);
  }
  if (in.cluster.initialize && !in.cluster.initialize->empty() && !local.sysid.empty() &&
      *in.cluster.initialize != local.sysid) {
    return Make({},
                fmt::format("system ID mismatch, node {} belongs to a different cluster: {} != {}",
                            local.name, local.sysid, *in.cluster.initialize));
  }
  if (!local.postgres_running) {
    if (in.config.paused) {
      return Make({}, "PAUSE: PostgreSQL is not running");
    }
    return PostgresStopped(in);
  }
  if (in.cluster.IsUnlocked()) {
    return Unlocked(in);
  }
  return Locked(in);
}

std::string NodeToFollow(const model::ClusterSnapshot& cluster, const std::string& me,
                         const std::string& replicatefrom) {
  std::string target;
  if (!replicatefrom.empty() && replicatefrom != me && cluster.FindMember(replicatefrom)) {
    target = replicatefrom;
  } else if (cluster.leader) {
    target = cluster.leader->name;
  }
  return target == me ? "" : target;
}

std::string CloneSource(const model::ClusterSnapshot& cluster, const std::string& me,
                        bool leader_only) {
  for (const auto& m : leader_only ? std::vector<model::Member>() : cluster.members) {
    if (m.name != me && m.state() == "running" && !m.IsPrimaryRole() &&
        model::JsonAsBool(m.tags().value("clonefrom", nlohmann::json(false))).value_or(false)) {
      return m.name;
    }
  }
  const auto* leader = cluster.LeaderMember();
  if (leader != nullptr && leader->name != me && leader->state() == "running") {
    return leader->name;
  }
  return "";
}

ScheduleState ScheduledActionState(WallTime at, WallTime now, double loop_wait,
                                   double* seconds_left) {
  double delta = duration<double>(at - now).count();
  *seconds_left = delta;
  if (delta > loop_wait) {
    return ScheduleState::kWait;
  }
  if (delta < -static_cast<double>(static_cast<int64_t>(loop_wait * 1.5))) {
    return ScheduleState::kStale;
  }
  return ScheduleState::kDue;
}

const char* ActionName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kInitializeRace:
      return "initialize race";
    case ActionKind::kCreateReplica:
      return "create replica";
    case ActionKind::kStartPrimary:
      return "start primary";
    case ActionKind::kStartReplica:
      return "start replica";
    case ActionKind::kAcquireLock:
      return "acquire lock";
    case ActionKind::kUpdateLock:
      return "update lock";
    case ActionKind::kReleaseLock:
      return "release lock";
    case ActionKind::kPromote:
      return "promote";
    case ActionKind::kDemote:
      return "demote";
    case ActionKind::kFollow:
      return "follow";
    case ActionKind::kFollowRemote:
      return "follow remote";
    case ActionKind::kRewind:
      return "rewind";
    case ActionKind::kLeaderUpkeep:
      return "leader upkeep";
    case ActionKind::kSwitchover:
      return "switchover";
    case ActionKind::kClearFailover:
      return "clear failover";
  }
  return "unknown";
}

}  // namespace pgha::ha
