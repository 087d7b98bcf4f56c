// The loop: construction, Run, one cycle (observe, decide, execute, publish), the wait between
// cycles, long actions and the graceful stop.

#include "agent/agent.h"

#include <algorithm>

#include "agent/ha_config.h"
#include "common/log.h"
#include "model/codec.h"

namespace pgha::agent {

using std::chrono::duration;
using std::chrono::milliseconds;
using std::chrono::seconds;

Agent::Agent(std::shared_ptr<const config::Config> config, dcs::Dcs& dcs, postgres::Node& postgres,
             ha::PeerClient& peers, Clock& clock)
    : config_(std::move(config)),
      dcs_(dcs),
      postgres_(postgres),
      peers_(peers),
      clock_(clock),
      callbacks_(config_->scope),
      watchdog_(config_->watchdog,
                config_->watchdog.mode == "off"
                    ? nullptr
                    : MakeWatchdogDevice(config_->watchdog.driver, config_->watchdog.device)) {
  // Until the DCS says otherwise, the cached dynamic configuration (patroni.dynamic.json in the
  // data directory), else the bootstrap section, is the best guess of the cluster config.
  if (auto cached = postgres_.ReadDynamicConfigCache()) {
    dynamic_ = model::GlobalConfig(*cached);
  } else {
    dynamic_ = model::GlobalConfig(config_->bootstrap.dcs);
  }
  ha_config_ = HaConfigFrom(dynamic_, *config_);
  // A data directory without standby.signal was a primary's; if another node leads now, it
  // must be rewound before it can follow.
  rewind_needed_ = postgres_.DataInitialized() && !postgres_.StandbySignalPresent();
  status_.scope = config_->scope;
  status_.name = config_->name;
  status_.version = kAdvertisedPatroniVersion;
  status_.tags = config_->tags.raw;
}

Agent::~Agent() {
  if (long_thread_.joinable()) {
    long_thread_.join();
  }
}

void Agent::SetConfigSource(std::function<Result<config::Config>()> source) {
  config_source_ = std::move(source);
}

void Agent::RequestStop() {
  stop_ = true;
  Wake();
}

uint64_t Agent::WakeEventCount() {
  MutexLock lock(wake_mutex_);
  return wake_events_;
}

void Agent::Wake() {
  {
    MutexLock lock(wake_mutex_);
    ++wake_events_;
  }
  wake_.notify_all();
}

model::NodeStatus Agent::CurrentStatus() const {
  MutexLock lock(mutex_);
  model::NodeStatus copy = status_;
  copy.seconds_since_cycle = duration<double>(clock_.Now() - last_cycle_).count();
  return copy;
}

std::shared_ptr<const model::ClusterSnapshot> Agent::CurrentCluster() const {
  MutexLock lock(mutex_);
  return cluster_;
}

std::string Agent::Following() const {
  MutexLock lock(mutex_);
  return following_;
}

void Agent::SetFollowing(const std::string& name) {
  MutexLock lock(mutex_);
  following_ = name;
}

std::string Agent::LastReason() const {
  MutexLock lock(mutex_);
  return last_reason_;
}

void Agent::Run() {
  PGHA_LOG_INFO("pgha {} starting: member {} of cluster {}", kAdvertisedPatroniVersion,
                config_->name, config_->scope);
  dcs_.SetChangeListener([this] { Wake(); });
  StartFence();
  if (auto written = postgres_.WritePgpass(); !written.ok()) {
    PGHA_LOG_WARN("postgresql.pgpass: {}", written.error().message());
  }
  while (!stop_) {
    // Counted before the cycle reads the DCS: a change that lands while the cycle runs (a
    // failover key written just after the read) ends the next wait at once, not a loop_wait
    // later.
    uint64_t events_before_cycle = WakeEventCount();
    Step();
    WaitForNextCycle(events_before_cycle);
  }
  Shutdown();
  watchdog_.Disable();
  fence_.reset();  // PostgreSQL is stopped: nothing to guard
  postmaster_exit_.Stop();
  dcs_.SetChangeListener(nullptr);  // the DCS may outlive this agent
}

void Agent::Step() {
  RunCycle();
  UpdateFence();
  UpdateWatchdog();
}

void Agent::AwaitLongAction() {
  while (true) {
    {
      MutexLock lock(mutex_);
      if (long_action_ == ha::LongAction::kNone) {
        return;
      }
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
}

std::string Agent::FatalError() const {
  MutexLock lock(mutex_);
  return fatal_error_;
}

void Agent::WaitForNextCycle(uint64_t events_before_cycle) {
  double wait = ha_config_.loop_wait;
  // While the leadership moves (no leader, or a switchover asked for now) members observe every
  // half second: health checks and peers read the status the loop published, and positions a
  // loop_wait old would hold up the handover (the primary waits for a candidate to report its
  // shutdown checkpoint) and the race (the healthiest member is chosen on them).
  {
    MutexLock lock(mutex_);
    if (cluster_) {
      const auto& failover = cluster_->failover;
      bool moving = cluster_->IsUnlocked() ||
                    (failover && (!failover->scheduled_at ||
                                  *failover->scheduled_at <= clock_.WallNow() + seconds(1)));
      if (moving) {
        wait = std::min(wait, kTransitionRecheckSeconds);
      }
    }
  }
  // The same while the local PostgreSQL settles (started but not yet accepting connections, a
  // replica not yet streaming): the health checks would otherwise learn it is ready a loop_wait
  // late.
  bool settling = (!last_obs_.running && postgres_.PostmasterAlive()) ||
                  (last_obs_.running && last_obs_.in_recovery &&
                   last_obs_.replication_state != "streaming" && !config_->tags.nostream);
  if (settling) {
    wait = std::min(wait, kTransitionRecheckSeconds);
  }
  for (const auto& recheck : {recheck_in_, restart_recheck_in_}) {
    if (recheck) {
      wait = std::clamp(*recheck, 0.0, wait);
    }
  }
  // Sleep until loop_wait or an event since the cycle began: a DCS change, the postmaster's
  // exit, a request from the API, a long action's end, or stop. Every one of them calls Wake().
  // An exit reported before now was this cycle's own doing (a demotion) or is found below (the
  // pid is gone): only one during the wait is logged.
  postmaster_exited_ = false;
  if (last_obs_.running) {
    auto pid = postgres_.PostmasterPid();
    if (pid) {
      postmaster_exit_.Watch(*pid);
    } else {
      postmaster_exit_.Stop();
      return;  // it was running a moment ago: look again now
    }
  } else {
    postmaster_exit_.Stop();
  }
  auto deadline =
      std::chrono::steady_clock::now() + milliseconds(static_cast<int64_t>(wait * 1000));
  bool woken = false;
  {
    MutexLock lock(wake_mutex_);
    woken = WaitUntil(wake_, lock, deadline, [&]() REQUIRES(wake_mutex_) {
      return stop_ || wake_events_ != events_before_cycle;
    });
  }
  if (woken && postmaster_exited_.exchange(false)) {
    MutexLock state(mutex_);
    if (long_action_ == ha::LongAction::kNone) {
      PGHA_LOG_WARN("postmaster is gone");  // a long action stops PostgreSQL on purpose
    }
  }
}

void Agent::RunCycle() {
  uint64_t long_actions_before = 0;
  {
    MutexLock lock(mutex_);
    long_actions_before = long_actions_finished_;
  }
  auto load_started = clock_.Now();
  auto cluster = dcs_.LoadCluster();
  {
    MutexLock lock(mutex_);
    status_.metrics.dcs_load.Observe(duration<double>(clock_.Now() - load_started).count());
  }
  if (!cluster.ok()) {
    PGHA_LOG_WARN("DCS is not accessible: {}", cluster.error().message());
  } else {
    // A primary kept by failsafe_mode takes no DCS action while the members confirm it, so
    // nothing else would clear the failure: a load that succeeds again is its sign that the
    // DCS is back (it then takes the leader key again). Had the load come from a stale cache,
    // the renewal that follows fails and sets the flag again.
    if (dcs_failed_ && FailsafeConfirmedRecently()) {
      PGHA_LOG_INFO("DCS is accessible again");
      dcs_failed_ = false;
    }
    MutexLock lock(mutex_);
    cluster_ = std::make_shared<const model::ClusterSnapshot>(*cluster);
  }
  ha::HaInput input = Observe(cluster);
  ApplyRequestedReload(input);
  EvaluateScheduledRestart(input);
  StartRequestedRestart(input);
  StartRequestedReinitialize(input);
  {
    // A restart started just now is this cycle's long action: Decide must not see its
    // stopping PostgreSQL as a crash.
    MutexLock lock(mutex_);
    input.local.long_action = long_action_;
    if (long_actions_finished_ != long_actions_before) {
      // A long action ended after the DCS was read: what it wrote (a failover key cleared
      // after an aborted handover, the lock released) is not in this snapshot, and deciding on
      // it would repeat the action. Decide at once on a fresh one instead.
      lock.unlock();
      PGHA_LOG_DEBUG("a long action ended during the cycle; deciding again on a fresh snapshot");
      Wake();
      return;
    }
  }
  std::string reason;
  // Only a cycle that changed nothing about PostgreSQL may apply new parameters: after a
  // demote, promote or follow the observation taken before it is stale.
  bool steady = true;
  // The leader race changes the cluster; decide again on the new snapshot (at most twice).
  for (int round = 0; round < 3; ++round) {
    ha::Decision decision = ha::Decide(input);
    reason = decision.reason;
    recheck_in_ = decision.recheck_in;
    bool redecide = false;
    for (const auto& action : decision.actions) {
      steady = steady && (action.kind == ha::ActionKind::kUpdateLock ||
                          action.kind == ha::ActionKind::kLeaderUpkeep);
      if (!Execute(action, input)) {
        break;
      }
      if (action.kind == ha::ActionKind::kAcquireLock) {
        redecide = true;
      }
    }
    if (!redecide) {
      break;
    }
    auto fresh = dcs_.LoadCluster();
    if (fresh.ok() && (!fresh->leader || fresh->leader->name != config_->name)) {
      // The cache may not have seen our own write yet; the lock is ours, say so.
      fresh->leader = model::Leader{config_->name, 0, 0};
    }
    input = Observe(fresh);
  }
  {
    MutexLock lock(mutex_);
    if (reason != last_reason_) {
      PGHA_LOG_INFO("{}", reason);
    } else {
      PGHA_LOG_DEBUG("{}", reason);
    }
    last_reason_ = reason;
    last_cycle_ = clock_.Now();
    ++status_.metrics.cycles;
  }
  // After a DCS failure this cycle, further DCS calls would each spend retry_timeout and push
  // back the next decision; a primary must get to that decision (demote) in time. So only a
  // node that is not a writable primary probes the DCS, and the member key waits.
  if (dcs_failed_) {
    bool writable_primary = last_obs_.running && !last_obs_.in_recovery;
    if (!writable_primary && dcs_.Ping().ok()) {
      PGHA_LOG_INFO("DCS is accessible again");
      dcs_failed_ = false;
    }
  }
  if (steady) {
    ApplyParameterChanges(input);
    // A replica keeps slots for the members that cascade from it (replicatefrom) and drops
    // the ones nobody wants; the query runs only when what it should keep changes (or
    // PostgreSQL restarted, as after a demotion), not every cycle.
    if (last_obs_.running && last_obs_.in_recovery && input.dcs_reachable) {
      std::string wanted = SlotsWanted(input.cluster, false);
      if (!replica_slots_synced_ || replica_slots_synced_->first != wanted ||
          replica_slots_synced_->second != last_obs_.postmaster_start_time) {
        if (SyncSlots(input.cluster, false).ok()) {
          replica_slots_synced_ = std::make_pair(wanted, last_obs_.postmaster_start_time);
        }
      }
    } else {
      replica_slots_synced_.reset();
    }
    if (last_obs_.running && last_obs_.in_recovery && !input.dcs_reachable) {
      AdvanceSlotsFromFailsafeLeader();
    }
  }
  if (input.dcs_reachable && !dcs_failed_) {
    TouchMember(input);
  }
}

// The only writer of long_action_: kNone -> `action` here, and back to kNone when the work ends.
void Agent::StartLongAction(ha::LongAction action, std::function<Status()> work) {
  MutexLock lock(mutex_);
  if (long_action_ != ha::LongAction::kNone) {
    return;
  }
  if (long_thread_.joinable()) {
    long_thread_.join();
  }
  long_action_ = action;
  long_thread_ = std::thread([this, name = ha::LongActionName(action), work = std::move(work)] {
    Status status = work();
    if (!status.ok()) {
      PGHA_LOG_ERROR("{} failed: {}", name, status.error().message());
    } else {
      PGHA_LOG_INFO("{} finished", name);
    }
    {
      MutexLock inner(mutex_);
      long_action_ = ha::LongAction::kNone;
      ++long_actions_finished_;
    }
    // A success is acted on at once; a failure waits for the next cycle, or a node that cannot
    // create its replica would try again and again without pause.
    if (status.ok()) {
      Wake();
    }
  });
}

void Agent::TouchMember(const ha::HaInput& in) {
  model::NodeStatus status = CurrentStatus();
  model::MemberData data;
  data.conn_url = ConnUrl();
  data.api_url = ApiUrl();
  data.state = status.state;
  data.role = status.role;
  data.version = kAdvertisedPatroniVersion;
  data.tags = config_->tags.raw;
  if (status.postgres_running) {
    if (status.in_recovery) {
      data.xlog_location =
          std::max(status.received_location.value_or(0), status.replayed_location.value_or(0));
      data.replication_state = status.replication_state;
    } else {
      data.xlog_location = status.wal_position;
    }
    data.timeline = status.timeline;
  }
  data.pause = in.config.paused;
  data.scheduled_restart = status.scheduled_restart;
  if (!status.pending_restart_reason.empty()) {
    data.pending_restart = true;
    data.pending_restart_reason = status.pending_restart_reason;
  }
  auto touched = dcs_.TouchMember(model::EncodeMember(data));
  if (!touched.ok()) {
    PGHA_LOG_WARN("failed to update the member key: {}", touched.error().message());
    dcs_failed_ = true;
  }
}

void Agent::Shutdown() {
  PGHA_LOG_INFO("shutting down");
  // Long actions are not interruptible; wait for them rather than leave half a data dir.
  // Only this (the loop) thread starts or joins them.
  if (long_thread_.joinable()) {
    long_thread_.join();
  }
  auto cluster = dcs_.LoadCluster();
  bool paused =
      cluster.ok() && cluster->config ? cluster->config->data.is_paused() : dynamic_.is_paused();
  if (paused) {
    // Patroni's rule: in maintenance mode the operator owns PostgreSQL; stopping the agent
    // (to upgrade it, say) leaves the server and the leader key as they are.
    PGHA_LOG_INFO("leader key is not deleted and PostgreSQL is not stopped: the cluster is paused");
    return;
  }
  bool leader = cluster.ok() && cluster->leader && cluster->leader->name == config_->name;
  int64_t notice = 0;
  if (leader) {
    auto wait = RouterWaitBeforeStop();
    if (wait > milliseconds::zero()) {
      auto announced_at = clock_.Now();
      notice = AnnounceHandover(model::HandoverReason::kShutdown, "", wait);
      AwaitRouters(notice, announced_at, announced_at + wait);
    }
  }
  auto stopped = postgres_.Stop("fast", seconds(config_->postgresql.pg_ctl_timeout));
  if (!stopped.ok()) {
    PGHA_LOG_ERROR("{}", stopped.error().message());
  } else if (last_obs_.running) {
    Callback("on_stop", last_obs_.in_recovery);
  }
  if (leader && stopped.ok()) {
    // PostgreSQL is down: nothing can be written here any more, so the lock can go at once.
    auto deleted = dcs_.DeleteLeader();
    PGHA_LOG_INFO("leader key {}", deleted.ok() && *deleted ? "deleted" : "could not be deleted");
  }
  WithdrawHandover(notice);
}

milliseconds Agent::RouterWaitBeforeStop() const {
  if (!last_lock_renewal_) {
    return milliseconds::zero();
  }
  // The loop no longer renews the lock: the fence (agent/fence.cc) would kill PostgreSQL at
  // ttl less its margin after the last renewal. Half of what is left goes to the routers, the
  // other half to the stop itself.
  double margin = std::min(config_->watchdog.safety_margin, ha_config_.ttl / 4);
  auto fence_deadline = *last_lock_renewal_ + std::chrono::duration_cast<MonoTime::duration>(
                                                  duration<double>(ha_config_.ttl - margin));
  auto left = std::chrono::duration_cast<milliseconds>(fence_deadline - clock_.Now());
  return std::clamp(left / 2, milliseconds::zero(), kRouterAcknowledgeWait);
}

}  // namespace pgha::agent
