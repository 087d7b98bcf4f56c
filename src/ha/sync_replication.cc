#include "ha/sync_replication.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <tuple>

namespace pgha::ha {
namespace {

bool Listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool SameSet(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

std::vector<std::string> Sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

std::string Join(const std::vector<std::string>& names) {
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ","));
}

bool IsPlainIdentifier(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
  });
}

}  // namespace

SyncCandidates CurrentSyncState(const model::ClusterSnapshot& cluster,
                                const std::vector<WalSender>& senders, const SyncSettings& settings,
                                uint64_t primary_position, SyncTracking& tracking) {
  struct Replica {
    std::string name;
    std::string sync_state;
    uint64_t position;
    bool nofailover;
  };
  // pg_stat_replication's sync_state sorts async < potential < quorum < sync; highest state,
  // then highest position first keeps the current sync standbys unless they fall behind.
  std::vector<const WalSender*> rows;
  for (const auto& s : senders) {
    if (s.position) {
      rows.push_back(&s);
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const WalSender* a, const WalSender* b) {
    return std::tie(a->sync_state, *a->position) > std::tie(b->sync_state, *b->position);
  });
  std::vector<Replica> replicas;
  for (const auto* row : rows) {
    const auto* member = cluster.FindMember(row->application_name);
    if (member && member->state() == "running" && !member->nosync()) {
      replicas.push_back({member->name, row->sync_state, *row->position, member->nofailover()});
    }
  }
  uint64_t max_position = primary_position;
  if (replicas.size() > 1) {
    max_position = 0;
    for (const auto& r : replicas) {
      max_position = std::max(max_position, r.position);
    }
  }
  // Members that may take over first (a stable sort keeps the order above among equals).
  std::stable_sort(replicas.begin(), replicas.end(), [](const Replica& a, const Replica& b) {
    return !a.nofailover && b.nofailover;
  });
  const std::vector<std::string> listed =
      tracking.standby_names.value_or(std::vector<std::string>{});
  SyncCandidates out;
  for (const auto& r : replicas) {
    // A listed replica counts as synchronous once the key names it, or once it reports `sync`
    // at or past the position synchronous_standby_names changed at.
    if (!tracking.ready.count(r.name) && Listed(listed, r.name) &&
        ((cluster.sync && cluster.sync->IsSyncStandby(r.name)) ||
         (r.sync_state == "sync" && r.position >= tracking.position_at_change))) {
      tracking.ready.insert(r.name);
    }
    if (settings.maximum_lag_on_syncnode <= 0 ||
        max_position - std::min(max_position, r.position) <=
            static_cast<uint64_t>(settings.maximum_lag_on_syncnode)) {
      out.picked.push_back(r.name);
      if (r.sync_state == "sync" && tracking.ready.count(r.name)) {
        out.confirmed.push_back(r.name);
      }
    }
    if (static_cast<int64_t>(out.picked.size()) >= std::max<int64_t>(1, settings.node_count)) {
      break;
    }
  }
  return out;
}

SyncSteps PlanSyncReplication(const model::ClusterSnapshot& cluster, const std::string& me,
                              const SyncSettings& settings, const SyncCandidates& state,
                              const std::vector<std::string>& running_standby_names) {
  SyncSteps steps;
  bool key_present = cluster.sync && cluster.sync->leader;
  if (!settings.enabled) {
    if (key_present) {
      steps.delete_key = true;
      steps.log = "synchronous replication disabled";
    }
    if (!running_standby_names.empty()) {
      steps.standby_names = std::vector<std::string>{};
    }
    return steps;
  }
  std::vector<std::string> current;
  if (key_present && *cluster.sync->leader == me) {
    current = cluster.sync->sync_standby;
  }
  bool key_is_ours = key_present && *cluster.sync->leader == me;
  if (SameSet(state.picked, current) && key_is_ours) {
    // Nothing to change; still make PostgreSQL run with what the key says.
    std::vector<std::string> wanted = state.picked;
    if (wanted.empty() && settings.strict) {
      wanted = {"*"};
    }
    if (!SameSet(wanted, running_standby_names)) {
      steps.standby_names = wanted;
    }
    return steps;
  }
  // First narrow the key to members that stay synchronous.
  std::vector<std::string> common;
  for (const auto& name : current) {
    if (Listed(state.confirmed, name)) {
      common.push_back(name);
    }
  }
  if (!key_is_ours || !SameSet(common, current)) {
    steps.key_before = Sorted(common);
  }
  std::vector<std::string> picked = state.picked;
  if (picked.empty() && settings.strict) {
    picked = {"*"};  // no standby at all: commits wait until one connects
  }
  if (!SameSet(picked, running_standby_names)) {
    steps.standby_names = picked;
  }
  if (!steps.key_before && !state.confirmed.empty() && !SameSet(state.confirmed, common)) {
    steps.key_after = Sorted(state.confirmed);
  }
  steps.log = fmt::format("synchronous standbys: picked {}, confirmed {}, sync key {}",
                          Join(state.picked), Join(state.confirmed), Join(current));
  return steps;
}

std::string FormatSynchronousStandbyNames(const std::vector<std::string>& names) {
  if (names.empty()) {
    return "";
  }
  if (names.size() == 1 && names[0] == "*") {
    return "*";
  }
  std::vector<std::string> quoted;
  for (const auto& name : names) {
    if (IsPlainIdentifier(name)) {
      quoted.push_back(name);
    } else {
      std::string q = "\"";
      for (char c : name) {
        q += c;
        if (c == '"') {
          q += '"';
        }
      }
      quoted.push_back(q + "\"");
    }
  }
  if (quoted.size() == 1) {
    return quoted[0];
  }
  return fmt::format("{} ({})", quoted.size(), fmt::join(quoted, ","));
}

bool SyncAllows(const model::ClusterSnapshot& cluster, const std::string& name) {
  if (!cluster.sync || !cluster.sync->leader) {
    return true;
  }
  return *cluster.sync->leader == name || cluster.sync->IsSyncStandby(name);
}

}  // namespace pgha::ha
