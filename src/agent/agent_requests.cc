// Requests from the REST API and signals, carried out by the loop's thread: restart (now or
// scheduled), reinitialize, reload, and parameter changes.

#include "agent/agent.h"
#include "common/log.h"
#include "common/time_format.h"
#include "config/reload.h"

namespace pgha::agent {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::optional<Status> Agent::AskLoop(RequestKind kind, ha::LongAction what, bool force,
                                     milliseconds timeout) {
  uint64_t before = 0;
  {
    MutexLock lock(mutex_);
    LoopRequest& request = Request(kind);
    if (request.pending || long_action_ == what) {
      return Error::Unavailable(std::string(ha::LongActionName(what)) + " already in progress");
    }
    if (long_action_ != ha::LongAction::kNone && !force) {
      return Error::Unavailable(std::string(ha::LongActionName(long_action_)) + " in progress");
    }
    request.pending = true;
    before = request.answered;
  }
  Wake();
  // The REST caller waits in real time, whatever clock the loop runs on.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(mutex_);
  if (!WaitUntil(request_answered_, lock, deadline,
                 [&]() REQUIRES(mutex_) { return Request(kind).answered != before; })) {
    return std::nullopt;
  }
  return Request(kind).answer;
}

bool Agent::Asked(RequestKind kind) const {
  MutexLock lock(mutex_);
  return Request(kind).pending && long_action_ == ha::LongAction::kNone;
}

void Agent::Answer(RequestKind kind, Status status) {
  MutexLock lock(mutex_);
  LoopRequest& request = Request(kind);
  request.pending = false;
  request.answer = std::move(status);
  ++request.answered;
  request_answered_.notify_all();
}

Status Agent::RestartPostgres(std::chrono::seconds timeout) {
  auto answer = AskLoop(RequestKind::kRestart, ha::LongAction::kRestart, false, timeout);
  if (!answer) {
    return Error::Unavailable("restart did not finish within " + std::to_string(timeout.count()) +
                              " s; it goes on in the background");
  }
  return *answer;
}

Status Agent::Reinitialize(bool force, bool from_leader) {
  clone_from_leader_ = from_leader;
  // The loop answers within one wait slice; a long action it must wait for (force) may take
  // longer, and then the reinitialize still happens after it.
  return AskLoop(RequestKind::kReinitialize, ha::LongAction::kReinitialize, force, seconds(30))
      .value_or(OkStatus());
}

Status Agent::Reload() {
  if (!config_source_) {
    return Error::Unavailable("this agent has no configuration file to reload");
  }
  {
    MutexLock lock(mutex_);
    Request(RequestKind::kReload).pending = true;
  }
  Wake();
  return OkStatus();
}

// Patroni's reload: the node's own settings (postgresql section, tags, log) take effect now;
// what identifies the node or its DCS (name, scope, namespace, etcd, restapi, bootstrap) needs
// a restart of pgha and is kept as it was, with a warning.
void Agent::ApplyRequestedReload(const ha::HaInput& in) {
  if (!Asked(RequestKind::kReload)) {
    return;
  }
  auto loaded = config_source_();
  if (!loaded.ok()) {
    PGHA_LOG_ERROR("reload: the configuration is not valid, keeping the current one: {}",
                   loaded.error().message());
    Answer(RequestKind::kReload, loaded.error());
    return;
  }
  auto reloaded = config::MergeReload(*config_, std::move(*loaded));
  for (const auto& what : reloaded.kept) {
    PGHA_LOG_WARN("reload: a change of {} needs a restart of pgha; keeping the old value", what);
  }
  // A new snapshot: long actions are not running (Asked), and none kept a reference to the old.
  config_ = std::make_shared<const config::Config>(std::move(reloaded.config));
  postgres_.UseConfig(config_);
  {
    MutexLock lock(mutex_);
    status_.tags = config_->tags.raw;
  }
  SetLogLevel(config_->log.level);
  if (last_obs_.running) {
    const model::Member* target =
        last_obs_.in_recovery ? in.cluster.FindMember(Following()) : nullptr;
    auto written = postgres_.WriteConfig(dynamic_, last_obs_.in_recovery, target);
    if (written.ok()) {
      written = postgres_.Reload();
    }
    if (written.ok()) {
      Callback("on_reload", last_obs_.in_recovery);
    } else {
      PGHA_LOG_ERROR("reload: {}", written.error().message());
    }
  }
  PGHA_LOG_INFO("reload: configuration reloaded");
  Answer(RequestKind::kReload, OkStatus());
}

void Agent::StartRequestedReinitialize(const ha::HaInput& in) {
  if (!Asked(RequestKind::kReinitialize)) {
    return;
  }
  auto answer = [this](Status status) { Answer(RequestKind::kReinitialize, std::move(status)); };
  if (in.cluster.leader && in.cluster.leader->name == config_->name) {
    answer(Error::Unavailable("I am the leader, can not reinitialize"));
    return;
  }
  if (!in.cluster.LeaderMember()) {
    answer(Error::Unavailable("Cluster has no leader, can not reinitialize"));
    return;
  }
  PGHA_LOG_INFO("reinitializing: removing the data directory to clone it again from the leader");
  sysid_.clear();
  StartLongAction(ha::LongAction::kReinitialize, [this]() -> Status {
    (void)postgres_.Stop("immediate", seconds(config_->postgresql.pg_ctl_timeout));
    return postgres_.RemoveDataDirectory();
  });
  answer(OkStatus());
}

void Agent::StartRequestedRestart(const ha::HaInput& in) {
  if (!Asked(RequestKind::kRestart)) {
    return;
  }
  StartRestart(in, [this](Status status) { Answer(RequestKind::kRestart, std::move(status)); });
}

void Agent::StartRestart(const ha::HaInput& in, std::function<void(Status)> finish) {
  // A stopped server is started (Patroni's restart is stop-if-running, then start): in
  // maintenance mode that is how an operator brings a crashed member back.
  // (A stopped server's role is its standby.signal's.)
  bool standby = in.local.in_recovery;
  std::optional<model::Member> leader;
  if (standby) {
    if (const auto* m = in.cluster.FindMember(Following())) {
      leader = *m;
    }
  }
  PGHA_LOG_INFO("restarting PostgreSQL on request");
  StartLongAction(ha::LongAction::kRestart,
                  [this, finish, standby, leader, dynamic = dynamic_]() -> Status {
                    auto timeout = seconds(config_->postgresql.pg_ctl_timeout);
                    Status status = postgres_.Stop("fast", timeout);
                    if (status.ok()) {
                      PublishStopped();
                      status = postgres_.WriteConfig(dynamic, standby, leader ? &*leader : nullptr);
                    }
                    if (status.ok()) {
                      status = postgres_.Start(timeout);
                    }
                    if (status.ok()) {
                      Callback("on_restart", standby);
                    }
                    finish(status);
                    return status;
                  });
}

Status Agent::ScheduleRestart(WallTime at, nlohmann::json shown,
                              model::RestartConditions conditions,
                              std::chrono::seconds /*timeout*/) {
  MutexLock lock(mutex_);
  if (scheduled_restart_) {
    return Error::Conflict("Another restart is already scheduled");
  }
  shown["postmaster_start_time"] = status_.postmaster_start_time;
  scheduled_restart_ =
      ScheduledRestart{at, std::move(shown), std::move(conditions), status_.postmaster_start_time};
  status_.scheduled_restart = scheduled_restart_->shown;
  PGHA_LOG_INFO("restart scheduled at {}", FormatIsoTimestamp(at));
  Wake();
  return OkStatus();
}

bool Agent::CancelScheduledRestart() {
  MutexLock lock(mutex_);
  bool had = scheduled_restart_.has_value();
  scheduled_restart_.reset();
  status_.scheduled_restart = nullptr;
  return had;
}

// Patroni's evaluate_scheduled_restart: at the time, restart if the conditions hold; drop the
// schedule once acted on, when PostgreSQL restarted meanwhile, or when it went stale.
void Agent::EvaluateScheduledRestart(const ha::HaInput& in) {
  restart_recheck_in_.reset();
  std::optional<ScheduledRestart> scheduled;
  model::NodeStatus status;
  {
    MutexLock lock(mutex_);
    scheduled = scheduled_restart_;
    status = status_;
  }
  if (!scheduled || in.config.paused || in.local.long_action != ha::LongAction::kNone) {
    return;
  }
  if (!status.postmaster_start_time.empty() &&
      status.postmaster_start_time != scheduled->postmaster_start_time) {
    PGHA_LOG_INFO("PostgreSQL restarted since the restart was scheduled; dropping the schedule");
    (void)CancelScheduledRestart();
    return;
  }
  double left = 0;
  switch (ha::ScheduledActionState(scheduled->at, in.wall_now, in.config.loop_wait, &left)) {
    case ha::ScheduleState::kWait:
      return;
    case ha::ScheduleState::kStale:
      PGHA_LOG_WARN("found a stale scheduled restart ({}); dropping it",
                    FormatIsoTimestamp(scheduled->at));
      (void)CancelScheduledRestart();
      return;
    case ha::ScheduleState::kDue:
      if (left > 0) {
        restart_recheck_in_ = left;
        return;
      }
      break;
  }
  (void)CancelScheduledRestart();
  if (!model::RestartConditionsMet(scheduled->conditions, status)) {
    PGHA_LOG_INFO("scheduled restart: the conditions do not hold any more; not restarting");
    return;
  }
  PGHA_LOG_INFO("manual scheduled restart at {}", FormatIsoTimestamp(scheduled->at));
  StartRestart(in, [](const Status&) {});
}

// A change of postgresql.parameters in the DCS reaches every node: postgresql.conf is rewritten
// and reloaded; what only a restart can apply then shows as pending_restart (from pg_settings).
void Agent::ApplyParameterChanges(const ha::HaInput& in) {
  const nlohmann::json& wanted = dynamic_.postgresql_parameters();
  if (wanted == applied_parameters_ || !last_obs_.running) {
    return;
  }
  {
    MutexLock lock(mutex_);
    if (long_action_ != ha::LongAction::kNone) {
      return;
    }
  }
  const model::Member* target = nullptr;
  if (last_obs_.in_recovery) {
    target = in.cluster.FindMember(Following());
    if (target == nullptr) {
      return;  // not following anybody known yet; the next follow writes the file anyway
    }
  }
  auto written = postgres_.WriteConfig(dynamic_, last_obs_.in_recovery, target);
  if (written.ok() && postgres_.Reload().ok()) {
    if (!applied_parameters_.is_null()) {
      PGHA_LOG_INFO("postgresql.parameters changed in the DCS; configuration reloaded");
      Callback("on_reload", last_obs_.in_recovery);
    }
    applied_parameters_ = wanted;
  }
}

}  // namespace pgha::agent
