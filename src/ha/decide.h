// The HA decision: a pure function of (cluster as the DCS shows it, this node's state, peers'
// answers, config, now) -> actions and a sentence saying why (Patroni's Ha._run_cycle, without
// the I/O). No sockets, threads, files or clock reads here: the agent observes, calls Decide,
// executes, and calls Decide again after an action that changes the cluster (the leader race).
//
// Thread-safety: pure functions over values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "ha/long_action.h"
#include "ha/sync_replication.h"
#include "model/cluster.h"

namespace pgha::ha {

// What the agent knows about its own PostgreSQL, gathered before deciding.
struct LocalState {
  std::string name;
  bool data_initialized = false;   // PGDATA holds a cluster (PG_VERSION exists)
  std::string sysid;               // from pg_controldata; empty when unknown
  bool postgres_running = false;   // accepting connections
  bool in_recovery = false;        // a replica (pg_is_in_recovery)
  uint64_t wal_position = 0;       // primary: current LSN; replica: max(received, replayed)
  uint64_t replayed_position = 0;  // replica: pg_last_wal_replay_lsn
  bool streaming = false;          // replica: its WAL receiver is streaming
  int64_t receiver_timeline = 0;   // replica: the WAL receiver's timeline; 0 without a receiver
  int64_t timeline = 0;
  std::string following;  // member this replica streams from ("" = none)
  bool nofailover = false;
  int64_t failover_priority = 1;
  std::string replicatefrom;       // tag: cascade from this member instead of the leader
  bool clone_from_leader = false;  // reinitialize --from-leader: ignore clonefrom members
  // A long action (initdb, basebackup, rewind, start) is running off the loop.
  LongAction long_action = LongAction::kNone;
  // When the leader lock was last renewed successfully (primary only).
  std::optional<MonoTime> last_lock_renewal;
  // The postmaster died under us since the last cycle while we held the lock.
  bool crashed = false;
  // When PostgreSQL was found stopped while this node held the lock (for primary_start_timeout).
  std::optional<MonoTime> down_since;
  // The old primary's data needs pg_rewind before it can follow (timeline diverged).
  bool needs_rewind = false;
};

// A peer's answer to GET /patroni (2 s timeout, no retry), as the leader race needs it.
struct PeerStatus {
  std::string name;
  bool reachable = false;
  bool is_primary = false;
  bool running = false;
  uint64_t wal_position = 0;
  int64_t timeline = 0;
  bool nofailover = false;
  int64_t failover_priority = 1;
};

struct HaConfig {
  double ttl = 30;
  double loop_wait = 10;
  double retry_timeout = 10;
  int64_t maximum_lag_on_failover = 1048576;
  int64_t primary_start_timeout = 300;
  bool use_pg_rewind = false;
  bool paused = false;
  SyncSettings sync;
  bool failsafe_mode = false;
  // A create_replica_methods entry restores without a leader (no_leader): an empty node of an
  // initialized cluster may create itself while no leader runs.
  bool can_create_replica_without_leader = false;
  // standby_cluster in the DCS config: the leader is a standby leader replicating from the
  // remote primary (standby_cluster.host/port), never promoted while the section is there.
  bool standby_cluster = false;
};

struct HaInput {
  model::ClusterSnapshot cluster;
  bool dcs_reachable = true;
  // failsafe_mode with the DCS away: every member accepted this primary's POST /failsafe now.
  bool failsafe_confirmed = false;
  LocalState local;
  std::vector<PeerStatus> peers;
  HaConfig config;
  MonoTime now{};
  WallTime wall_now{};  // for scheduled switchovers (the failover key's scheduled_at)
  // Set while this agent is in a cold start (cold_start.h): until then the leader race waits
  // for the registered members and orders candidates by timeline, then position.
  std::optional<MonoTime> cold_start_until;
};

enum class ActionKind {
  kInitializeRace,  // win `initialize` in the DCS, then bootstrap (initdb) as a long action
  kCreateReplica,   // create_replica_methods from `target` ("" = without a leader), long action
  kStartPrimary,    // start PostgreSQL as primary (crash recovery keeps the timeline)
  kStartReplica,    // write standby.signal + primary_conninfo for `target`, then start
  kAcquireLock,     // the leader race
  kUpdateLock,      // renew the leader lock
  kReleaseLock,     // delete the leader key (only if ours)
  kPromote,         // pg_ctl promote
  kDemote,          // make PostgreSQL refuse writes at once, then follow `target`
  kFollow,          // point primary_conninfo at `target` and reload
  kFollowRemote,    // standby leader: follow standby_cluster's remote primary (start if stopped)
  kRewind,          // pg_rewind from `target`, as a long action
  // The leader's work each cycle: the `status` key (optime, slots), the `failsafe` key, and
  // synchronous replication (synchronous_standby_names and the `sync` key kept in step).
  kLeaderUpkeep,
  // Planned handover to `target` ("" = the healthiest replica), as a long action: checkpoint,
  // stop, make sure a candidate received the shutdown checkpoint, release the lock, follow.
  kSwitchover,
  kClearFailover,  // delete the failover key (only the revision this cycle saw)
};

struct Action {
  ActionKind kind;
  std::string target;  // member name for kCreateReplica/kStartReplica/kFollow/kRewind/kDemote
  // kDemote only: the lock is lost, so stop at once (Patroni's immediate-nolock) rather than
  // with a fast shutdown, whose checkpoint and wait for WAL senders can outlast the lease.
  bool immediate = false;
  bool operator==(const Action&) const = default;
};

struct Decision {
  std::vector<Action> actions;
  std::string reason;  // Patroni's sentence for what this cycle does
  // Decide again after this many seconds even if loop_wait is longer (a scheduled switchover
  // falls due before the next cycle).
  std::optional<double> recheck_in;
};

Decision Decide(const HaInput& input);

// Whether this node may take the lock: it is not nofailover, not too far behind the last leader
// optime, and no reachable peer is ahead of it (or equal with a higher failover_priority), nor
// still a running primary.
bool IsHealthiestNode(const HaInput& input, std::string* why_not);

// Whether a peer could take over from this leader: one of `candidates` ("" in the list means
// any member but this one) answered, runs, is not nofailover and is within
// maximum_lag_on_failover of the last leader optime (or at least at `min_position`).
bool IsFailoverPossible(const HaInput& input, const std::vector<std::string>& candidates,
                        std::optional<uint64_t> min_position = std::nullopt);

// Patroni's should_run_scheduled_action: an action scheduled at `at` waits while more than
// loop_wait away, is due from then until 1.5 * loop_wait (whole seconds) after `at`, and is
// stale (to be dropped) later than that. `seconds_left` gets at - now.
enum class ScheduleState { kWait, kDue, kStale };
ScheduleState ScheduledActionState(WallTime at, WallTime now, double loop_wait,
                                   double* seconds_left);

// Whom a replica named `me` streams from (Patroni's _get_node_to_follow): the member named by
// its replicatefrom tag when that member exists, else the leader; "" when neither (or itself).
std::string NodeToFollow(const model::ClusterSnapshot& cluster, const std::string& me,
                         const std::string& replicatefrom);

// Where a new replica clones from: a running member tagged clonefrom (other than `me`), else
// the leader; "" when the leader is not running either.
std::string CloneSource(const model::ClusterSnapshot& cluster, const std::string& me,
                        bool leader_only = false);

const char* ActionName(ActionKind kind);

}  // namespace pgha::ha
