// Executing ha::Decide's actions: starting, stopping, promoting, demoting, rewinding, and the
// callbacks around them.

#include <fmt/format.h>

#include <algorithm>

#include "agent/agent.h"
#include "common/log.h"
#include "model/codec.h"

namespace pgha::agent {

using std::chrono::duration;
using std::chrono::seconds;

bool Agent::Execute(const ha::Action& action, const ha::HaInput& in) {
  using ha::ActionKind;
  const model::Member* target =
      action.target.empty() ? nullptr : in.cluster.FindMember(action.target);
  switch (action.kind) {
    case ActionKind::kInitializeRace: {
      if (watchdog_.required() && !watchdog_.Activate(WatchdogTtl(), ha_config_.loop_wait)) {
        PGHA_LOG_ERROR("not bootstrapping: the watchdog is required and could not be activated");
        return false;
      }
      auto won = dcs_.Initialize(true, "");
      if (!won.ok() || !*won) {
        return false;
      }
      StartLongAction(ha::LongAction::kBootstrap, [this] { return Bootstrap(); });
      return true;
    }
    case ActionKind::kCreateReplica: {
      if (target == nullptr && !action.target.empty()) {
        return false;  // the member to copy from is gone
      }
      clone_from_leader_ = false;
      std::optional<model::Member> source;
      if (target != nullptr) {
        source = *target;
      }
      // The thread gets its own copy of the dynamic config: the loop replaces dynamic_.
      StartLongAction(ha::LongAction::kBasebackup, [this, source, dynamic = dynamic_]() -> Status {
        auto created = postgres_.CreateReplica(source ? &*source : nullptr);
        if (!created.ok()) {
          (void)postgres_.RemoveDataDirectory();
          return created.error();
        }
        rewind_needed_ = false;
        if (source) {
          return StartFollowing(dynamic, *source);
        }
        // Restored with no leader to follow: a replica of nobody, replaying the archive until a
        // leader appears (the race stays with the members that know the cluster's history).
        PGHA_RETURN_IF_ERROR(postgres_.WriteConfig(dynamic, true, nullptr));
        PGHA_RETURN_IF_ERROR(postgres_.Start(seconds(config_->postgresql.pg_ctl_timeout)));
        AfterStart(true);
        return OkStatus();
      });
      return true;
    }
    case ActionKind::kStartPrimary: {
      auto written = postgres_.WriteConfig(dynamic_, false, nullptr);
      if (!written.ok()) {
        PGHA_LOG_ERROR("{}", written.error().message());
        return false;
      }
      // pg_ctl start returns once the server accepts connections: crash recovery, same timeline.
      return StartInRole(/*replica=*/false);
    }
    case ActionKind::kStartReplica: {
      auto written = postgres_.WriteConfig(dynamic_, true, target);
      if (!written.ok()) {
        PGHA_LOG_ERROR("{}", written.error().message());
        return false;
      }
      SetFollowing(target != nullptr ? target->name : "");
      return StartInRole(/*replica=*/true);
    }
    case ActionKind::kAcquireLock: {
      auto race_started = clock_.Now();  // the race refreshes the lease first
      auto won = dcs_.AttemptToAcquireLeader();
      if (!won.ok()) {
        PGHA_LOG_WARN("leader race failed: {}", won.error().message());
        return false;
      }
      if (*won) {
        last_lock_renewal_ = race_started;
        PGHA_LOG_INFO("acquired the leader lock");
        // A data directory brought to a cluster that has no initialize key yet (a new scope for
        // an existing node): the key records its system identifier, as Patroni writes it.
        if (!in.cluster.initialize && !in.local.sysid.empty()) {
          (void)dcs_.Initialize(true, in.local.sysid);
        }
      }
      return *won;
    }
    case ActionKind::kUpdateLock: {
      MutexLock guard(lock_mutex_);
      if (lock_released_) {
        return false;  // handed over: the key is not ours to renew
      }
      auto renew_started = clock_.Now();
      auto renewed = dcs_.UpdateLeader(in.cluster);
      guard.unlock();
      {
        MutexLock lock(mutex_);
        status_.metrics.dcs_renew.Observe(duration<double>(clock_.Now() - renew_started).count());
      }
      if (!renewed.ok()) {
        PGHA_LOG_WARN("failed to update the leader lock: {}", renewed.error().message());
        dcs_failed_ = true;
        // The renewal already spent retry_timeout trying: past that, the lock may expire
        // elsewhere before we could renew it, so stop taking writes now (Patroni does the same).
        bool overdue =
            !last_lock_renewal_ || duration<double>(clock_.Now() - *last_lock_renewal_).count() >=
                                       ha_config_.retry_timeout;
        if (overdue && in.local.postgres_running && !in.local.in_recovery &&
            ConfirmFailsafe(in.cluster)) {
          PGHA_LOG_INFO(
              "continue to run as a leader because failsafe mode is enabled and all members are "
              "accessible");
        } else if (overdue && in.local.postgres_running && !in.local.in_recovery) {
          PGHA_LOG_WARN("demoting self because the leader lock could not be renewed");
          (void)Execute(ha::Action{ActionKind::kDemote, "", true}, in);
        }
        return false;
      }
      dcs_failed_ = false;
      if (!*renewed) {
        PGHA_LOG_WARN("the leader lock is held by another node now");
        return false;
      }
      // The lease runs from when etcd took the keepalive, no earlier than this.
      last_lock_renewal_ = renew_started;
      return true;
    }
    case ActionKind::kReleaseLock: {
      (void)dcs_.DeleteLeader();
      return true;
    }
    case ActionKind::kPromote: {
      // watchdog.mode: required: no primary without a watchdog that would stop it in time.
      if (watchdog_.required() && !ha_config_.paused &&
          !watchdog_.Activate(WatchdogTtl(), ha_config_.loop_wait)) {
        PGHA_LOG_ERROR("not promoting self because the watchdog could not be activated");
        (void)dcs_.DeleteLeader();
        return false;
      }
      if (auto fenced = postgres_.RunPrePromote(); !fenced.ok()) {
        PGHA_LOG_ERROR("releasing the leader key voluntarily: {}", fenced.error().message());
        (void)dcs_.DeleteLeader();
        return false;
      }
      if (!PrepareSynchronousPromotion(in)) {
        return false;
      }
      auto promoted = postgres_.Promote(seconds(config_->postgresql.pg_ctl_timeout));
      if (!promoted.ok()) {
        PGHA_LOG_ERROR("{}", promoted.error().message());
        return false;
      }
      SetFollowing("");
      rewind_needed_ = false;
      {
        MutexLock lock(mutex_);
        callback_role_ = "master";
        auto& m = status_.metrics;
        ++(in.cluster.failover ? m.switchovers : m.failovers);
        m.last_promotion_seconds =
            duration<double>(clock_.Now() - promotion_wanted_since_.value_or(in.now)).count();
      }
      Callback("on_role_change", false);
      // Routers send writes to the leader once its member key says it runs as primary: say so
      // now, not after the checkpoint below and the next cycle.
      PublishPromoted(postgres_.Observe());
      TouchMember(in);
      // Old primaries rewind against our control file; it shows the new timeline only after a
      // checkpoint (the promotion's own checkpoint runs in the background).
      if (auto checkpoint = postgres_.Checkpoint(); !checkpoint.ok()) {
        PGHA_LOG_WARN("checkpoint after promote failed: {}", checkpoint.error().message());
      }
      auto obs = postgres_.Observe();
      PublishPromoted(obs);
      // Replicas reconnect within a second; their slots must exist by then, not a cycle later.
      (void)SyncSlots(in.cluster, true);
      RecordHistory(in.cluster, obs.timeline);
      (void)postgres_.WriteConfig(dynamic_, false, nullptr);
      return true;
    }
    case ActionKind::kDemote: {
      // Refuse writes at once: stop the primary. Whether it needs pg_rewind and whom it
      // follows is decided on the next cycle, when it is stopped.
      if (StopForDemotion(action.immediate).ok()) {
        PublishStopped();
        Callback("on_stop", false);
      }
      rewind_needed_ = true;
      if (action.target.empty()) {
        // No new leader known (DCS unreachable): come back read-only at once. Without a source
        // of WAL a crashed primary's recovery may not reach consistency for long, so the loop
        // does not wait for it to accept connections: it watches it settle.
        auto written = postgres_.WriteConfig(dynamic_, true, nullptr);
        if (written.ok() && postgres_.Launch().ok()) {
          AfterStart(true);
        }
      }
      return false;
    }
    case ActionKind::kFollowRemote: {
      auto source = StandbyClusterSource(dynamic_);
      if (!source) {
        PGHA_LOG_ERROR(
            "standby_cluster names neither a host to replicate from nor a restore_command");
        return false;
      }
      Status done = OkStatus();
      if (in.local.postgres_running && !in.local.in_recovery) {
        // A primary told it is now a standby cluster's leader: stop, start as a standby.
        done = postgres_.Stop("fast", seconds(config_->postgresql.pg_ctl_timeout));
        if (done.ok()) {
          PublishStopped();
        }
      }
      if (done.ok()) {
        done = postgres_.WriteConfig(dynamic_, true, &*source);
      }
      bool running = in.local.postgres_running && in.local.in_recovery;
      if (done.ok()) {
        done = running ? postgres_.Reload()
                       : postgres_.Start(seconds(config_->postgresql.pg_ctl_timeout));
      }
      if (!done.ok()) {
        PGHA_LOG_ERROR("cannot follow the standby cluster's remote primary: {}",
                       done.error().message());
        return false;
      }
      SetFollowing(model::kStandbyClusterSource);
      NoteRole("standby_leader", !running);
      return true;
    }
    case ActionKind::kFollow: {
      if (target == nullptr) {
        return false;
      }
      auto written = postgres_.WriteConfig(dynamic_, true, target);
      if (!written.ok()) {
        return false;
      }
      // PostgreSQL 13+ re-reads primary_conninfo on reload: no restart needed.
      auto reloaded = postgres_.Reload();
      if (reloaded.ok()) {
        SetFollowing(target->name);
      }
      return reloaded.ok();
    }
    case ActionKind::kRewind: {
      if (target == nullptr) {
        return false;
      }
      if (auto failed_at = rewind_failed_at_.load();
          failed_at != MonoTime::duration::zero() &&
          !RewindRetryDue(MonoTime(failed_at), rewind_failures_, clock_.Now(),
                          ha_config_.loop_wait)) {
        return false;
      }
      model::Member leader = *target;
      StartLongAction(
          ha::LongAction::kRewind,
          [this, leader, dynamic = dynamic_, loop_wait = ha_config_.loop_wait]() -> Status {
            auto rewound = postgres_.Rewind(leader);
            if (!rewound.ok()) {
              if (config_->postgresql.remove_data_directory_on_rewind_failure) {
                PGHA_LOG_WARN(
                    "pg_rewind failed; removing the data directory to re-clone "
                    "(remove_data_directory_on_rewind_failure)");
                (void)postgres_.RemoveDataDirectory();
                rewind_failed_at_ = clock_.Now().time_since_epoch();
                return rewound.error();
              }
              int failures = ++rewind_failures_;
              rewind_failed_at_ = clock_.Now().time_since_epoch();
              // One line per attempt, and attempts back off: the log says what to do once per wait.
              return Error(
                  rewound.error().code(),
                  fmt::format("{} (failure {} in a row; next attempt in {:.0f} s; "
                              "`pghactl reinit {} {}` re-clones this member from the leader)",
                              rewound.error().message(), failures,
                              RewindRetryDelay(failures, loop_wait), config_->scope,
                              config_->name));
            }
            rewind_needed_ = false;
            rewind_failures_ = 0;
            rewind_failed_at_ = MonoTime::duration::zero();
            return StartFollowing(dynamic, leader);
          });
      return true;
    }
    case ActionKind::kLeaderUpkeep: {
      if (!in.cluster.config) {
        // A cluster with no config key (a data directory brought to a new scope): the leader
        // writes what it runs with, so every member runs the same (Patroni does too).
        (void)dcs_.SetConfigValue(model::EncodeConfig(dynamic_), std::nullopt);
      }
      WriteStatusAndSlots(in);
      WriteFailsafeMembers(in);
      if (!ha_config_.standby_cluster) {  // a standby leader acknowledges no commits
        ProcessSyncReplication(in);
      }
      return true;
    }
    case ActionKind::kClearFailover: {
      // Patroni empties the key ("{}") rather than deleting it; readers treat both alike.
      if (in.cluster.failover) {
        auto emptied = dcs_.SetFailoverValue("{}", in.cluster.failover->mod_revision);
        if (!emptied.ok()) {
          PGHA_LOG_WARN("failed to clear the failover key: {}", emptied.error().message());
        }
      }
      return true;
    }
    case ActionKind::kSwitchover: {
      StartLongAction(
          ha::LongAction::kDemote,
          // The loop rewrites ha_config_ every cycle: the handover works on a copy taken now.
          [this, candidate = action.target, cluster = in.cluster, dynamic = dynamic_,
           ha = ha_config_]() -> Status { return HandOver(candidate, cluster, dynamic, ha); });
      return true;
    }
  }
  return true;
}

Status Agent::StopForDemotion(bool immediate) {
  if (!immediate) {
    // A fast shutdown checkpoints and waits for the WAL senders, which stalls while replicas are
    // unreachable: allow it until the lock could expire, then stop at once.
    double left = ha_config_.ttl;
    if (last_lock_renewal_) {
      left -= duration<double>(clock_.Now() - *last_lock_renewal_).count();
    }
    auto fast = postgres_.Stop("fast", seconds(std::max(1, static_cast<int>(left))));
    if (fast.ok()) {
      return fast;
    }
    PGHA_LOG_WARN(
        "fast shutdown did not finish before the leader lock could expire ({}); "
        "shutting down immediately",
        fast.error().message());
  }
  return postgres_.Stop("immediate", seconds(config_->postgresql.pg_ctl_timeout));
}

double RewindRetryDelay(int failures, double loop_wait) {
  constexpr double kLongest = 300;
  double delay = std::max(5.0, loop_wait);
  for (int i = 1; i < failures && delay < kLongest; ++i) {
    delay *= 2;
  }
  return std::min(delay, kLongest);
}

bool RewindRetryDue(MonoTime failed_at, int failures, MonoTime now, double loop_wait) {
  return now - failed_at >= duration<double>(RewindRetryDelay(failures, loop_wait));
}

void Agent::Callback(const std::string& action, bool replica) {
  callbacks_.Call(config_->postgresql.callbacks, action, replica ? "replica" : "master");
}

bool Agent::StartInRole(bool replica) {
  auto started = postgres_.Start(seconds(config_->postgresql.pg_ctl_timeout));
  if (!started.ok()) {
    PGHA_LOG_ERROR("{}", started.error().message());
    return false;
  }
  AfterStart(replica);
  return true;
}

void Agent::AfterStart(bool replica) { NoteRole(replica ? "replica" : "master", true); }

void Agent::NoteRole(const std::string& role, bool started) {
  std::string before;
  {
    MutexLock lock(mutex_);
    before = callback_role_;
    callback_role_ = role;
  }
  if (!before.empty() && before != role) {
    callbacks_.Call(config_->postgresql.callbacks, "on_role_change", role);
  } else if (started) {
    callbacks_.Call(config_->postgresql.callbacks, "on_start", role);
  }
}

}  // namespace pgha::agent
