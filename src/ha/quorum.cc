#include "ha/quorum.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace pgha::ha {
namespace {

std::set<std::string> Union(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::set<std::string> out = a;
  out.insert(b.begin(), b.end());
  return out;
}

int64_t CountIn(const std::set<std::string>& names, const std::set<std::string>& among) {
  return std::count_if(names.begin(), names.end(),
                       [&](const std::string& n) { return among.count(n) > 0; });
}

int64_t Size(const std::set<std::string>& s) { return static_cast<int64_t>(s.size()); }

// The key that lets the most replicas take over while PostgreSQL runs `running`: every listed
// standby votes, and a candidate must see enough of them to meet every commit.
QuorumKey BestKey(const QuorumNames& running, int64_t confirmed) {
  int64_t holding = std::min(running.numsync, confirmed);
  if (running.any_standby || holding <= 0) {
    return {};
  }
  return {Size(running.names) - holding, running.names};
}

// A key that is safe both for what PostgreSQL runs now and for what it is about to run.
QuorumKey KeyForChange(const QuorumNames& running, int64_t running_confirmed,
                       const QuorumNames& wanted, int64_t wanted_confirmed) {
  if (running.any_standby || wanted.any_standby) {
    return {};
  }
  int64_t holding =
      std::min({running.numsync, running_confirmed, wanted.numsync, wanted_confirmed});
  if (holding <= 0) {
    return {};
  }
  auto voters = Union(running.names, wanted.names);
  return {Size(voters) - holding, voters};
}

std::string Describe(const QuorumKey& key) {
  return key.voters.empty() ? "nobody"
                            : fmt::format("{} of ({})", key.quorum, fmt::join(key.voters, ","));
}

std::string Describe(const QuorumNames& names) {
  std::string text = FormatQuorumStandbyNames(names);
  return text.empty() ? "none" : text;
}

}  // namespace

bool QuorumSafe(const QuorumKey& key, const QuorumNames& running, int64_t confirmed) {
  if (key.voters.empty()) {
    return true;  // only the key's leader, which has every commit, may take over
  }
  if (running.any_standby || running.numsync <= 0 || key.quorum < 0) {
    return false;
  }
  return key.quorum + std::min(running.numsync, confirmed) >=
         Size(Union(key.voters, running.names));
}

QuorumState CurrentQuorumState(const model::ClusterSnapshot& cluster, const std::string& me,
                               const std::vector<WalSender>& senders, const SyncSettings& settings,
                               uint64_t primary_position, SyncTracking& tracking) {
  struct Replica {
    std::string name;
    const WalSender* row;
    bool nofailover;
  };
  std::vector<Replica> replicas;
  for (const auto& s : senders) {
    const auto* member = cluster.FindMember(s.application_name);
    if (s.position && member && member->name != me && member->state() == "running" &&
        !member->nosync()) {
      replicas.push_back({member->name, &s, member->nofailover()});
    }
  }
  uint64_t max_position = primary_position;
  if (replicas.size() > 1) {
    max_position = 0;
    for (const auto& r : replicas) {
      max_position = std::max(max_position, *r.row->position);
    }
  }
  // Members that may take over first; nofailover ones only to reach synchronous_node_count.
  std::stable_sort(replicas.begin(), replicas.end(), [](const Replica& a, const Replica& b) {
    return !a.nofailover && b.nofailover;
  });
  const auto listed = tracking.standby_names.value_or(std::vector<std::string>{});
  auto is_listed = [&](const std::string& name) {
    return std::find(listed.begin(), listed.end(), name) != listed.end();
  };
  auto own_key = OwnQuorumKey(cluster, me);
  QuorumState out;
  out.caught_up = true;
  for (const auto& r : replicas) {
    uint64_t position = *r.row->position;
    bool in_sync = r.row->sync_state == "sync" || r.row->sync_state == "quorum";
    if (is_listed(r.name) && ((own_key && own_key->voters.count(r.name)) ||
                              (in_sync && position >= tracking.position_at_change))) {
      tracking.ready.insert(r.name);
    }
    bool within_lag = settings.maximum_lag_on_syncnode <= 0 ||
                      max_position - std::min(max_position, position) <=
                          static_cast<uint64_t>(settings.maximum_lag_on_syncnode);
    if (!within_lag || (r.nofailover && Size(out.active) >= settings.node_count)) {
      continue;
    }
    out.active.insert(r.name);
    if (tracking.ready.count(r.name)) {
      out.confirmed.insert(r.name);
    }
    if (is_listed(r.name) && position < tracking.position_at_change) {
      out.caught_up = false;
    }
  }
  return out;
}

QuorumSteps PlanQuorumReplication(const model::ClusterSnapshot& cluster, const std::string& me,
                                  const SyncSettings& settings, const QuorumState& state,
                                  const QuorumNames& running) {
  QuorumSteps steps;
  QuorumKey key;
  if (auto own = OwnQuorumKey(cluster, me)) {
    key = *own;
  } else {
    steps.key_before = QuorumKey{};  // take the key over naming nobody: always safe for us
  }
  QuorumNames wanted;
  wanted.names = state.active;
  wanted.numsync = std::min(std::max<int64_t>(1, settings.node_count), Size(state.active));
  if (state.active.empty() && settings.strict) {
    wanted.any_standby = true;
    wanted.numsync = 1;
  }
  int64_t running_confirmed = CountIn(running.names, state.confirmed);
  if (!(running == wanted)) {
    int64_t wanted_confirmed = CountIn(wanted.names, state.confirmed);
    if (!QuorumSafe(key, running, running_confirmed) ||
        !QuorumSafe(key, wanted, wanted_confirmed)) {
      steps.key_before = KeyForChange(running, running_confirmed, wanted, wanted_confirmed);
    }
    steps.standby_names = wanted;
    steps.log = fmt::format("quorum commit: synchronous_standby_names {} -> {}, sync key {} -> {}",
                            Describe(running), Describe(wanted), Describe(key),
                            Describe(steps.key_before.value_or(key)));
    return steps;
  }
  QuorumKey best = BestKey(running, running_confirmed);
  // Narrow the key only once every listed standby holds what the previous
  // synchronous_standby_names acknowledged; an unsafe key is replaced at once.
  bool may_write = state.caught_up || !QuorumSafe(key, running, running_confirmed);
  if (best == key || !may_write) {
    return steps;
  }
  if (steps.key_before) {
    steps.key_before = best;
  } else {
    steps.key_after = best;
  }
  steps.log = fmt::format("quorum commit: sync key {} -> {} ({} of {} listed standbys confirmed)",
                          Describe(key), Describe(best), running_confirmed, Size(running.names));
  return steps;
}

QuorumNames RunningQuorumNames(const SyncTracking& tracking) {
  QuorumNames running;
  for (const auto& name : tracking.standby_names.value_or(std::vector<std::string>{})) {
    if (name == "*") {
      running.any_standby = true;
    } else {
      running.names.insert(name);
    }
  }
  running.numsync = tracking.numsync;
  return running;
}

void NoteStandbyNamesChanged(SyncTracking& tracking, const QuorumNames& now_running, MonoTime now) {
  std::vector<std::string> names(now_running.names.begin(), now_running.names.end());
  if (now_running.any_standby) {
    names = {"*"};
  }
  tracking.standby_names = names;
  tracking.numsync = now_running.numsync;
  tracking.position_at_change = std::numeric_limits<uint64_t>::max();
  tracking.position_pending_since = now;
  std::erase_if(tracking.ready,
                [&](const std::string& name) { return !now_running.names.count(name); });
}

void SettlePositionAtChange(SyncTracking& tracking, MonoTime now, uint64_t primary_position) {
  if (tracking.position_pending_since &&
      now - *tracking.position_pending_since >= std::chrono::seconds(1)) {
    tracking.position_at_change = primary_position;
    tracking.position_pending_since.reset();
  }
}

std::string FormatQuorumStandbyNames(const QuorumNames& names) {
  if (names.any_standby) {
    return "*";
  }
  if (names.names.empty() || names.numsync <= 0) {
    return "";
  }
  std::vector<std::string> quoted;
  for (const auto& name : names.names) {
    // The quoting rules of FIRST lists apply: reuse them one name at a time.
    quoted.push_back(FormatSynchronousStandbyNames({name}));
  }
  return fmt::format("ANY {} ({})", names.numsync, fmt::join(quoted, ","));
}

std::optional<QuorumKey> OwnQuorumKey(const model::ClusterSnapshot& cluster,
                                      const std::string& me) {
  if (!cluster.sync || !cluster.sync->leader || *cluster.sync->leader != me) {
    return std::nullopt;
  }
  QuorumKey key;
  key.quorum = cluster.sync->quorum;
  key.voters.insert(cluster.sync->sync_standby.begin(), cluster.sync->sync_standby.end());
  return key;
}

}  // namespace pgha::ha
