// Agent: one node's HA loop. Each cycle observes (DCS snapshot, local PostgreSQL, peers when
// the lock is free), calls ha::Decide, executes the actions, and touches the member key. Long
// actions (bootstrap, basebackup, rewind) run on their own thread; the loop keeps renewing the
// lock meanwhile. The loop wakes every loop_wait, and at once on a change of the leader/config
// key, the postmaster's exit, or a request from the API.
//
// Thread-safety: Run() on one thread; Status() and RequestStop() from any thread.
//
// One job a file: agent.cc (the loop and long actions), agent_observe.cc (HaInput, published
// status, cold start), agent_execute.cc (Decide's actions), agent_bootstrap.cc (new data: initdb,
// standby cluster, clones), agent_handover.cc (planned handovers), agent_requests.cc (REST
// requests and reload), agent_leader.cc (fence, watchdog, sync/quorum replication, status and
// history keys), agent_slots.cc (replication slots), agent_failsafe.cc (failsafe_mode).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/callback_runner.h"
#include "agent/fence.h"
#include "agent/watchdog.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/process_exit_watch.h"
#include "config/config.h"
#include "dcs/dcs.h"
#include "ha/decide.h"
#include "ha/peer_client.h"
#include "model/node_status.h"
#include "postgres/node.h"

namespace pgha::agent {

// The Patroni version pgha advertises in member keys: peers parse it to pick protocol features.
inline constexpr const char* kAdvertisedPatroniVersion = "3.0.2";

// How long a leader about to stop PostgreSQL waits for the routers to acknowledge its notice
// (model/handover_notice.h): a router in session mode lets running transactions finish first,
// 5 s by default, and acknowledges then.
constexpr std::chrono::milliseconds kRouterAcknowledgeWait{6000};

// How often a member observes and publishes while the leadership moves.
constexpr double kTransitionRecheckSeconds = 0.5;

// How long to wait before the next pg_rewind after `failures` failed ones in a row: the cause
// (the leader not checkpointed yet, unreachable, out of WAL, a broken data directory) rarely
// clears in a second, and one that lasts should not fill the log. max(5 s, loop_wait) after the
// first failure, doubling after each further one, at most 5 minutes.
double RewindRetryDelay(int failures, double loop_wait);
// Whether a pg_rewind that failed for the `failures`-th time in a row at `failed_at` may be
// tried again at `now`.
bool RewindRetryDue(MonoTime failed_at, int failures, MonoTime now, double loop_wait);

class Agent {
 public:
  // `config`: the snapshot pgha started with. A reload replaces the agent's snapshot whole (and
  // LocalPostgres's, with UseConfig), between long actions; nothing changes a snapshot in place.
  Agent(std::shared_ptr<const config::Config> config, dcs::Dcs& dcs, postgres::Node& postgres,
        ha::PeerClient& peers, Clock& clock);
  // Where POST /reload and SIGHUP read the configuration again (the file pgha started with).
  void SetConfigSource(std::function<Result<config::Config>()> source);
  ~Agent();

  // Runs cycles until RequestStop(); then shuts down gracefully: a leader stops PostgreSQL and
  // deletes its leader key so a replica takes over at once; a replica just stops.
  void Run();
  void RequestStop();
  // One cycle now (observe, decide, execute, publish) without the wait that follows it in Run()
  // and without the fence process Run() starts: unit tests drive the loop with it, a cycle at a
  // time, on fakes.
  void Step();
  // Returns once no long action runs (the one started last has finished).
  void AwaitLongAction();
  // The graceful stop Run() ends with: a leader stops PostgreSQL and deletes its leader key; in
  // maintenance mode nothing is touched.
  void Shutdown();
  // Why Run() returned on its own, when it did: a failed bootstrap (Patroni exits on one too,
  // rather than initialize a cluster again and again). Empty after a requested stop.
  std::string FatalError() const;

  model::NodeStatus CurrentStatus() const;
  // The DCS snapshot of the last cycle that could read it; null before the first.
  std::shared_ptr<const model::ClusterSnapshot> CurrentCluster() const;
  // Restarts PostgreSQL in its current role (REST POST /restart): the loop's thread runs it as a
  // long action, keeping the leader lock meanwhile; this call waits until it finished or
  // `timeout` passed. Fails when another long action or restart is under way.
  Status RestartPostgres(std::chrono::seconds timeout);
  // POST /restart {"schedule": ...}: restart at `at` if `conditions` hold then. `shown` is what
  // the member key and /patroni show (Patroni's request fields). Conflict when one is already
  // scheduled. Dropped when PostgreSQL restarts meanwhile, or when the time passed long ago.
  Status ScheduleRestart(WallTime at, nlohmann::json shown, model::RestartConditions conditions,
                         std::chrono::seconds timeout);
  // DELETE /restart: false when none was scheduled.
  bool CancelScheduledRestart();
  // Throws this replica's data away so the loop clones it again from the leader (REST POST
  // /reinitialize). Returns once the loop started it, or why it refused (the leader, no leader,
  // another long action unless `force`).
  // `from_leader`: clone from the leader even when a member is tagged clonefrom.
  Status Reinitialize(bool force, bool from_leader = false);
  // Asks the loop to re-read the configuration (POST /reload, SIGHUP) and returns at once, as
  // Patroni does: the loop applies it between long actions and logs what it did.
  Status Reload();
  // POST /failsafe from the leader while the DCS is away: remember it as the leader for ttl.
  void AcceptFailsafeLeader(const std::string& name, const std::string& conn_url,
                            const std::string& api_url,
                            const std::map<std::string, uint64_t>& slots = {});
  // The reason sentence of the last cycle, for logs and tests.
  std::string LastReason() const;

 private:
  void RunCycle();
  ha::HaInput Observe(const Result<model::ClusterSnapshot>& cluster);
  bool Execute(const ha::Action& action, const ha::HaInput& input);
  void StartLongAction(ha::LongAction action, std::function<Status()> work);
  void Publish(const ha::HaInput& input, const postgres::Observation& obs);
  // Health checks read the published status; these publish a stop or a promotion the moment
  // it happens, not at the next cycle (up to loop_wait later), so that a router stops sending
  // writes to a stopped primary and finds the promoted one at its next check.
  void PublishStopped();
  void PublishPromoted(const postgres::Observation& obs);
  void TouchMember(const ha::HaInput& input);
  void ApplyParameterChanges(const ha::HaInput& input);
  void StartRequestedRestart(const ha::HaInput& input);
  void EvaluateScheduledRestart(const ha::HaInput& input);
  // Stops and starts PostgreSQL in its current role as the long action "restart"; `finish`
  // gets the outcome.
  void StartRestart(const ha::HaInput& input, std::function<void(Status)> finish);
  void StartRequestedReinitialize(const ha::HaInput& input);
  void ApplyRequestedReload(const ha::HaInput& input);

  // A request from the REST API that the loop's thread carries out (restart, reinitialize).
  struct LoopRequest {
    bool pending = false;
    uint64_t answered = 0;
    Status answer;
  };
  enum class RequestKind { kRestart, kReinitialize, kReload, kCount };
  // Posts the request (named `what`) and waits up to `timeout` for the loop's answer; nullopt
  // when none came in time. Refused at once while the same request or, unless `force`,
  // another long action is under way.
  std::optional<Status> AskLoop(RequestKind kind, ha::LongAction what, bool force,
                                std::chrono::milliseconds timeout) EXCLUDES(mutex_);
  // Whether the loop should take the request up now (posted, and no long action running).
  bool Asked(RequestKind kind) const EXCLUDES(mutex_);
  void Answer(RequestKind kind, Status status) EXCLUDES(mutex_);
  LoopRequest& Request(RequestKind kind) REQUIRES(mutex_) {
    return requests_[static_cast<size_t>(kind)];
  }
  const LoopRequest& Request(RequestKind kind) const REQUIRES(mutex_) {
    return requests_[static_cast<size_t>(kind)];
  }
  void WriteStatusAndSlots(const ha::HaInput& input);
  // Keeps the replication slots ha/slots.h says this node keeps (`leader`: it holds the lock).
  // Returns the slots there were before the changes.
  Result<std::vector<model::ReplicationSlot>> SyncSlots(const model::ClusterSnapshot& cluster,
                                                        bool leader);
  // A replica's permanent logical slots: advanced to the leader's positions, copied when
  // missing (a long action: PostgreSQL stops while the state files go in).
  void SyncLogicalSlotsFromLeader(const model::ClusterSnapshot& cluster,
                                  const std::map<std::string, model::ReplicationSlot>& desired,
                                  const std::vector<model::ReplicationSlot>& existing);
  // The leader's permanent logical slots among `slots`, by name, at their confirmed positions.
  std::map<std::string, uint64_t> LogicalSlotPositions(
      const model::ClusterSnapshot& cluster,
      const std::vector<model::ReplicationSlot>& slots) const;
  // What SyncSlots would keep, as one comparable string (a replica syncs when it changes).
  std::string SlotsWanted(const model::ClusterSnapshot& cluster, bool leader) const;
  void RecordHistory(const model::ClusterSnapshot& cluster, int64_t timeline);
  // Sleeps until loop_wait (shorter while the leadership moves or PostgreSQL settles) or until
  // Wake() has been called more than `events_before_cycle` times in all.
  void WaitForNextCycle(uint64_t events_before_cycle);
  Status Bootstrap();
  // Bootstrap of a standby cluster: a copy of the remote primary, followed as standby leader.
  Status BootstrapStandbyCluster(const model::GlobalConfig& dynamic,
                                 const std::function<Status(const Error&)>& fail);
  // The planned handover (a long action): checkpoint, stop, wait until `candidate` (or any
  // member, when "") has the shutdown checkpoint, release the lock, follow the new leader.
  // When no candidate gets that far, starts again as primary and drops the failover key.
  Status HandOver(const std::string& candidate, const model::ClusterSnapshot& cluster,
                  const model::GlobalConfig& dynamic, const ha::HaConfig& ha);
  // The notice to the routers before PostgreSQL stops for a handover (agent_router_notice.cc):
  // its revision, 0 when the DCS did not take it. AwaitRouters waits for every
  // router's acknowledgement, until `deadline`; WithdrawHandover removes the notice (nothing for
  // 0).
  int64_t AnnounceHandover(model::HandoverReason reason, const std::string& candidate,
                           std::chrono::milliseconds wait);
  void AwaitRouters(int64_t notice_revision, MonoTime announced_at, MonoTime deadline);
  void WithdrawHandover(int64_t notice_revision);
  // How long a graceful stop of the leader may wait for the routers: bounded by what is left of
  // the lock it no longer renews.
  std::chrono::milliseconds RouterWaitBeforeStop() const;
  // Writes the standby configuration for `leader` and starts PostgreSQL as its replica.
  Status StartFollowing(const model::GlobalConfig& dynamic, const model::Member& leader);
  // Callbacks: `action` with this node's role; AfterStart picks on_start, or on_role_change when
  // PostgreSQL came back in another role than it last ran in.
  void Callback(const std::string& action, bool replica);
  void AfterStart(bool replica);
  // pg_ctl start, then AfterStart; false (logged) when PostgreSQL did not start.
  bool StartInRole(bool replica);
  // PostgreSQL now runs as `role` (master, replica, standby_leader): on_role_change when that
  // differs from the last role, else on_start when it was just `started`.
  void NoteRole(const std::string& role, bool started);
  // standby_cluster's remote primary as a member to follow; nullopt without a host.
  static std::optional<model::Member> StandbyClusterSource(const model::GlobalConfig& dynamic);
  std::string MemberState(const ha::HaInput& input) const;
  // Starts, ends or reports the cold start into `in` (ha/cold_start.h).
  void TrackColdStart(ha::HaInput& in);
  // Writes pgha/members/<name> once this member's data is the cluster's and it is not there.
  void RegisterMember(const model::ClusterSnapshot& cluster, bool loaded);
  std::string Following() const;
  void SetFollowing(const std::string& name);

  // Read by the loop and by long actions; replaced (never changed) by the loop on reload, only
  // while no long action runs.
  std::shared_ptr<const config::Config> config_;
  std::function<Result<config::Config>()> config_source_;
  dcs::Dcs& dcs_;
  postgres::Node& postgres_;
  ha::PeerClient& peers_;
  Clock& clock_;

  std::atomic<bool> stop_{false};
  std::string fatal_error_ GUARDED_BY(mutex_);
  // Ends WaitForNextCycle's sleep; see Wake().
  void Wake();
  uint64_t WakeEventCount();
  Mutex wake_mutex_;
  std::condition_variable_any wake_;
  uint64_t wake_events_ GUARDED_BY(wake_mutex_) = 0;
  std::atomic<bool> postmaster_exited_{false};
  ProcessExitWatch postmaster_exit_{[this] {
    postmaster_exited_ = true;
    Wake();
  }};

  // Loop-thread state.
  ha::HaConfig ha_config_;
  model::GlobalConfig dynamic_;
  bool dynamic_cached_ = false;  // patroni.dynamic.json holds dynamic_
  postgres::Observation last_obs_;
  std::optional<MonoTime> last_lock_renewal_;
  std::optional<MonoTime> down_since_;
  std::optional<MonoTime> promotion_wanted_since_;  // leader gone or switchover asked, first seen
  // The cold start (ha/cold_start.h): its end, set on the first cycle that finds the cluster
  // initialized with no leader; over once a leader key is seen or the end has passed.
  std::optional<MonoTime> cold_start_until_;
  bool cold_start_over_ = false;
  // Also written by long-action threads.
  std::atomic<bool> rewind_needed_{false};
  // When the last pg_rewind failed (zero: it did not), as time since the clock's epoch.
  std::atomic<MonoTime::duration> rewind_failed_at_{MonoTime::duration::zero()};
  std::atomic<int> rewind_failures_{
      0};  // in a row; the member's state is "rewind failed" while > 0
  std::atomic<bool> clone_from_leader_{false};  // the next clone skips clonefrom members
  std::atomic<bool> starting_{false};           // while pg_ctl start runs during bootstrap
  std::optional<double> recheck_in_;            // from the last decision: wake before loop_wait
  std::optional<double> restart_recheck_in_;
  // The cascading slots a replica last created, and for which postmaster start.
  std::optional<std::pair<std::string, std::string>> replica_slots_synced_;
  std::string last_status_written_;
  // The leader's synchronous replication (see ha/sync_replication.h).
  ha::SyncTracking sync_tracking_;
  bool PrepareSynchronousPromotion(const ha::HaInput& in);
  // The fence process (see agent/fence.h), armed after every renewal while this is the primary.
  std::unique_ptr<Fence> fence_;
  // failsafe_mode: when every member accepted this primary's POST /failsafe (loop thread).
  std::optional<MonoTime> failsafe_confirmed_at_;
  std::string last_failsafe_written_;
  // The leader that last called POST /failsafe here.
  struct FailsafeLeader {
    std::string name;
    std::string conn_url;
    std::string api_url;
    MonoTime at;
    std::map<std::string, uint64_t> slots;  // its permanent logical slots' positions
  };
  std::optional<FailsafeLeader> failsafe_leader_ GUARDED_BY(mutex_);
  std::string ConnUrl() const;
  std::string ApiUrl() const;
  // With the DCS away: asks every member in the failsafe key to accept this node as the leader;
  // true when all did (then it may go on taking writes for ttl).
  bool ConfirmFailsafe(const model::ClusterSnapshot& last);
  // Every member confirmed this primary over POST /failsafe within ttl (loop thread only).
  bool FailsafeConfirmedRecently() const;
  void WriteFailsafeMembers(const ha::HaInput& in);
  // With the DCS away: advances this replica's logical slots to the positions the failsafe
  // leader sent with its last POST /failsafe.
  void AdvanceSlotsFromFailsafeLeader();
  void StartFence();
  void UpdateFence();
  // Activates, pings or closes the watchdog (agent/watchdog.h) after each cycle.
  void UpdateWatchdog();
  // The ttl the watchdog's timeout counts from: the configured one, as Patroni's.
  double WatchdogTtl() const;
  // Stops PostgreSQL to refuse writes: at once when `immediate`, else a fast shutdown bounded by
  // the time the leader lock has left.
  Status StopForDemotion(bool immediate);
  void ProcessSyncReplication(const ha::HaInput& in);
  void ProcessQuorumReplication(const ha::HaInput& in, const std::vector<ha::WalSender>& senders);
  int64_t last_history_timeline_ = 0;
  MonoTime last_cycle_{};
  nlohmann::json applied_parameters_;  // postgresql.parameters last written and reloaded
  std::string sysid_;  // cached pg_controldata identifier; cleared whenever a long action runs
  // A DCS write failed; cached reads are not proof that the DCS works until a linearizable
  // read succeeds again.
  bool dcs_failed_ = false;

  // Shared between the loop, its long action's thread and the REST API's threads.
  mutable Mutex mutex_;
  ha::LongAction long_action_ GUARDED_BY(mutex_) = ha::LongAction::kNone;
  uint64_t long_actions_finished_ GUARDED_BY(mutex_) = 0;
  std::string following_ GUARDED_BY(mutex_);  // the member primary_conninfo points at
  std::thread long_thread_;                   // the loop's: started and joined only there
  model::NodeStatus status_ GUARDED_BY(mutex_);
  std::shared_ptr<const model::ClusterSnapshot> cluster_ GUARDED_BY(mutex_);
  // Set by a handover once it deleted the leader key, so that a cycle working from an older
  // snapshot does not renew (or re-create) the key it gave away; cleared when the DCS shows
  // another leader or none.
  Mutex lock_mutex_;
  bool lock_released_ GUARDED_BY(lock_mutex_) = false;
  // Requests from the REST API.
  std::array<LoopRequest, static_cast<size_t>(RequestKind::kCount)> requests_ GUARDED_BY(mutex_);
  std::condition_variable_any request_answered_;  // with mutex_: Answer() ends AskLoop's wait
  struct ScheduledRestart {
    WallTime at;
    nlohmann::json shown;
    model::RestartConditions conditions;
    std::string postmaster_start_time;  // a restart in between makes this one moot
  };
  std::optional<ScheduledRestart> scheduled_restart_ GUARDED_BY(mutex_);
  std::string last_reason_ GUARDED_BY(mutex_);
  std::string callback_role_;  // the role PostgreSQL last started or was promoted in
  CallbackRunner callbacks_;
  // Loop-thread state: the watchdog, and the renewal (or failsafe confirmation) it last pinged for.
  Watchdog watchdog_;
  std::optional<MonoTime> watchdog_pinged_for_;
};

}  // namespace pgha::agent
