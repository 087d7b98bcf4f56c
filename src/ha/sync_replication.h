// Synchronous replication as Patroni 3.0.2 runs it (Ha.process_sync_replication and
// SyncHandler): which replicas the leader lists in synchronous_standby_names, and which of them
// the `sync` key names as allowed to take over. The invariant: a member the `sync` key names
// was, for as long as the key named it, listed in synchronous_standby_names and confirmed
// synchronous — so every acknowledged commit is on it. Hence the order: the key shrinks before
// synchronous_standby_names drops a member, and grows only after PostgreSQL reports a new member
// synchronous and caught up.
//
// Thread-safety: pure functions over values; SyncTracking belongs to the leader's loop.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/cluster.h"

namespace pgha::ha {

// One row of pg_stat_replication on the leader.
struct WalSender {
  std::string application_name;
  std::string sync_state;            // async | potential | sync | quorum
  std::optional<uint64_t> position;  // flush_lsn (write_lsn/replay_lsn as synchronous_commit)
};

struct SyncSettings {
  bool enabled = false;  // synchronous_mode
  bool strict = false;   // synchronous_mode_strict: no commits without a synchronous standby
  bool quorum = false;   // synchronous_mode: quorum (ha/quorum.h)
  int64_t node_count = 1;
  int64_t maximum_lag_on_syncnode = -1;  // <= 0: never swap a lagging sync standby
};

// What the leader remembers between cycles (SyncHandler's fields).
struct SyncTracking {
  // The names synchronous_standby_names lists as PostgreSQL runs it; nullopt when unknown (the
  // agent just started, or the value changed outside the loop).
  std::optional<std::vector<std::string>> standby_names;
  // How many of them a commit waits for (quorum mode's ANY n; all of them otherwise).
  int64_t numsync = 0;
  // The primary's position when standby_names last changed: a newly listed replica counts as
  // synchronous only once it reports `sync` at or past it.
  uint64_t position_at_change = 0;
  std::set<std::string> ready;  // listed members confirmed synchronous since the last change
  // Quorum mode: when synchronous_standby_names last changed, while position_at_change waits to
  // be taken a moment later, once every WAL sender surely runs the new value (until then it is
  // the largest position, which nobody reaches).
  std::optional<MonoTime> position_pending_since;
};

// Patroni's SyncHandler.current_state: `picked` are the best replicas to list (the current sync
// standbys first, then by position; nosync members and stopped members never), `confirmed` those
// of them PostgreSQL already treats as synchronous and caught up. Updates tracking.ready.
struct SyncCandidates {
  std::vector<std::string> picked;
  std::vector<std::string> confirmed;
};
SyncCandidates CurrentSyncState(const model::ClusterSnapshot& cluster,
                                const std::vector<WalSender>& senders, const SyncSettings& settings,
                                uint64_t primary_position, SyncTracking& tracking);

// What the leader does this cycle, in this order. A key write that fails (someone else wrote
// the key) ends the cycle's sync work.
struct SyncSteps {
  bool delete_key = false;  // synchronous_mode is off: remove the `sync` key
  // Write `sync` = {leader: me, sync_standby: these} (empty: null) before touching
  // synchronous_standby_names.
  std::optional<std::vector<std::string>> key_before;
  std::optional<std::vector<std::string>> standby_names;  // then set these ("*": any)
  // Then, once confirmed, name these in the key (skipped when key_before was written this cycle:
  // the next cycle does it with the key's new revision).
  std::optional<std::vector<std::string>> key_after;
  std::string log;  // what changes, for the log ("" when nothing does)
};
SyncSteps PlanSyncReplication(const model::ClusterSnapshot& cluster, const std::string& me,
                              const SyncSettings& settings, const SyncCandidates& state,
                              const std::vector<std::string>& running_standby_names);

// The value for synchronous_standby_names: "" for none, "*", a single name, or "N (a,b)";
// names that are not plain identifiers are double-quoted.
std::string FormatSynchronousStandbyNames(const std::vector<std::string>& names);

// Whether `name` may take over in synchronous mode: the key is empty, or names it (as leader
// or synchronous standby) — Patroni's SyncState.matches.
bool SyncAllows(const model::ClusterSnapshot& cluster, const std::string& name);

}  // namespace pgha::ha
