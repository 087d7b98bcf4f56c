// Quorum commit, Patroni 4's `synchronous_mode: quorum`. Two places say who holds a commit:
// PostgreSQL's synchronous_standby_names = ANY numsync (names) says a commit waits for any
// `numsync` of `names`; the `sync` key's voters (sync_standby) and `quorum` say a replica may take
// over only if it is a voter and sees `quorum` other voters (or the old leader) no further ahead
// than itself. Every commit must be on a node the new leader sees, so at every moment:
//
//   voters empty (only the key's leader may take over), or
//   quorum + min(numsync, confirmed) >= |voters ∪ names|
//
// where `confirmed` counts listed standbys known to have every commit acknowledged before they
// were listed. The planner moves both halves towards voters = names = the eligible standbys,
// numsync = min(synchronous_node_count, their number), one write at a time, each state on the way
// satisfying the rule: the key is widened (more voters, higher quorum) before
// synchronous_standby_names changes, and narrowed only once PostgreSQL runs the new value.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "ha/sync_replication.h"
#include "model/cluster.h"

namespace pgha::ha {

// The `sync` key's half: who may take over and how many of them a candidate must see.
struct QuorumKey {
  int64_t quorum = 0;
  std::set<std::string> voters;
  bool operator==(const QuorumKey&) const = default;
};

// synchronous_standby_names' half: ANY numsync (names). `any_standby` is "*" (strict mode with
// no eligible standby: commits wait for whichever standby connects).
struct QuorumNames {
  int64_t numsync = 0;
  std::set<std::string> names;
  bool any_standby = false;
  bool operator==(const QuorumNames&) const = default;
};

// Whether the rule above holds for this key while PostgreSQL runs `running` and `confirmed` of
// its listed standbys are known to hold every earlier commit.
bool QuorumSafe(const QuorumKey& key, const QuorumNames& running, int64_t confirmed);

// The standbys eligible this cycle (streaming, running, not nosync, within
// maximum_lag_on_syncnode; nofailover ones only to reach synchronous_node_count) and which listed
// ones are confirmed: named as voters by our own key, or reporting sync/quorum at or past the
// position synchronous_standby_names last changed at. Updates tracking.ready.
// `caught_up`: every listed eligible standby has reached that position, so each holds every commit
// acknowledged under the previous synchronous_standby_names and the key may narrow.
struct QuorumState {
  std::set<std::string> active;
  std::set<std::string> confirmed;
  bool caught_up = false;
};
QuorumState CurrentQuorumState(const model::ClusterSnapshot& cluster, const std::string& me,
                               const std::vector<WalSender>& senders, const SyncSettings& settings,
                               uint64_t primary_position, SyncTracking& tracking);

// This cycle's writes, in order; a failed key write (someone else wrote it) ends the cycle.
struct QuorumSteps {
  std::optional<QuorumKey> key_before;       // the key, with us as its leader
  std::optional<QuorumNames> standby_names;  // then synchronous_standby_names
  std::optional<QuorumKey> key_after;        // then the key (only if key_before was not written)
  std::string log;
};
QuorumSteps PlanQuorumReplication(const model::ClusterSnapshot& cluster, const std::string& me,
                                  const SyncSettings& settings, const QuorumState& state,
                                  const QuorumNames& running);

// The leader's bookkeeping around the plan (SyncTracking):
// - what PostgreSQL runs, as the last change left it;
QuorumNames RunningQuorumNames(const SyncTracking& tracking);
// - after synchronous_standby_names changed: listed standbys no longer listed lose their
//   confirmation, and the position they must reach is taken a second later (a WAL sender still on
//   the old value can release a commit after the reload);
void NoteStandbyNamesChanged(SyncTracking& tracking, const QuorumNames& now_running, MonoTime now);
// - at the start of each cycle: take that position once the second has passed.
void SettlePositionAtChange(SyncTracking& tracking, MonoTime now, uint64_t primary_position);

// "ANY 2 (a,b,c)", "*" or "".
std::string FormatQuorumStandbyNames(const QuorumNames& names);

// The key as the cluster holds it, when it is ours; nullopt when it is absent or names another
// leader.
std::optional<QuorumKey> OwnQuorumKey(const model::ClusterSnapshot& cluster, const std::string& me);

}  // namespace pgha::ha
