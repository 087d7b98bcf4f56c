// Creating this node's data: a new cluster (initdb or a custom method), a standby cluster, or a
// replica following a leader.

#include <fmt/format.h>

#include "agent/agent.h"
#include "common/log.h"
#include "model/codec.h"

namespace pgha::agent {

using std::chrono::milliseconds;
using std::chrono::seconds;

Status Agent::StartFollowing(const model::GlobalConfig& dynamic, const model::Member& leader) {
  PGHA_RETURN_IF_ERROR(postgres_.WriteConfig(dynamic, true, &leader));
  SetFollowing(leader.name);
  PGHA_RETURN_IF_ERROR(postgres_.Start(seconds(config_->postgresql.pg_ctl_timeout)));
  AfterStart(true);
  return OkStatus();
}

Status Agent::Bootstrap() {
  PGHA_LOG_INFO("initializing a new cluster");
  // As Patroni: give the initialize key back, keep what was made for a look (moved aside), and
  // stop; initializing again and again would hide the reason under hundreds of attempts.
  auto fail = [this](const Error& error) -> Status {
    (void)dcs_.CancelInitialization();
    (void)postgres_.Stop("immediate", seconds(30));
    auto moved = postgres_.MoveDataDirectoryAside();
    std::string fatal = "failed to bootstrap the cluster: " + error.message();
    if (moved.ok() && !moved->empty()) {
      fatal += " (the data directory was moved to " + *moved + ")";
    }
    {
      MutexLock lock(mutex_);
      fatal_error_ = fatal;
    }
    stop_ = true;
    Wake();
    return error;
  };
  // bootstrap.method: initdb, or a method section with a command (a restore from a backup, a
  // clone of another cluster); a method without a command means initdb, as in Patroni.
  const std::string& method = config_->bootstrap.method;
  const nlohmann::json* custom = nullptr;
  if (method != "initdb") {
    auto it = config_->bootstrap.raw.find(method);
    if (it != config_->bootstrap.raw.end() && it->is_object() && it->contains("command")) {
      custom = &*it;
    }
  }
  model::GlobalConfig dynamic(config_->bootstrap.dcs);
  if (dynamic.is_standby_cluster()) {
    return BootstrapStandbyCluster(dynamic, fail);
  }
  if (auto s = custom ? postgres_.RunCustomBootstrap(method, *custom) : postgres_.Initdb();
      !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteConfig(dynamic, false, nullptr, custom != nullptr); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteBootstrapHba(); !s.ok()) {
    return fail(s.error());
  }
  if (custom) {
    bool keep = custom->contains("keep_existing_recovery_conf") &&
                model::JsonAsBool(custom->at("keep_existing_recovery_conf")).value_or(false);
    if (custom->contains("recovery_conf")) {
      if (auto s = postgres_.WriteBootstrapRecovery(custom->at("recovery_conf")); !s.ok()) {
        return fail(s.error());
      }
    } else if (!keep) {
      postgres_.RemoveRecoverySignals();
    }
  }
  starting_ = true;
  auto started = postgres_.Start(seconds(config_->postgresql.pg_ctl_timeout));
  starting_ = false;
  if (!started.ok()) {
    return fail(started.error());
  }
  if (custom) {
    // A restored cluster replays (from its archive, to its target) before it is a primary; the
    // initialize key stays ours meanwhile, however long that takes, as in Patroni.
    PGHA_LOG_INFO("waiting for the end of recovery after the custom bootstrap");
    while (true) {
      auto obs = postgres_.Observe();
      if (obs.running && !obs.in_recovery) {
        break;
      }
      if (!postgres_.PostmasterAlive()) {
        return fail(Error::Unavailable("PostgreSQL stopped while recovering the restored data"));
      }
      if (stop_) {
        return fail(Error::Unavailable("stopped while recovering the restored data"));
      }
      clock_.SleepFor(milliseconds(500));
    }
  }
  if (auto s = postgres_.CreateRoles(); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.RunPostBootstrap(); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.CreateBootstrapUsers(); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteConfig(dynamic, false, nullptr); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.Reload(); !s.ok()) {
    return fail(s.error());
  }
  std::string sysid = postgres_.SystemIdentifier();
  auto written = dcs_.Initialize(false, sysid);
  if (!written.ok()) {
    return fail(written.error());
  }
  auto config_set = dcs_.SetConfigValue(model::EncodeConfig(dynamic), std::nullopt);
  if (!config_set.ok()) {
    return fail(config_set.error());
  }
  auto won = dcs_.AttemptToAcquireLeader();
  if (!won.ok() || !*won) {
    return fail(won.ok() ? Error::Conflict("another node took the leader lock during bootstrap")
                         : won.error());
  }
  // last_lock_renewal_ belongs to the loop thread; its first renewal sets it.
  rewind_needed_ = false;
  // The leader key is there now: health checks must not answer "initializing" meanwhile.
  PublishPromoted(postgres_.Observe());
  PGHA_LOG_INFO("initialized a new cluster (system identifier {})", sysid);
  return OkStatus();
}

Status Agent::BootstrapStandbyCluster(const model::GlobalConfig& dynamic,
                                      const std::function<Status(const Error&)>& fail) {
  // A standby cluster starts as a copy of the remote primary, made with the methods its
  // standby_cluster section lists (basebackup from the remote by default), and its first node
  // is the standby leader.
  auto source = StandbyClusterSource(dynamic);
  if (!source) {
    return fail(Error::Invalid(
        "bootstrap.dcs.standby_cluster: neither a host to replicate from nor a restore_command"));
  }
  std::vector<std::string> methods;
  nlohmann::json listed =
      dynamic.standby_cluster().value("create_replica_methods", nlohmann::json());
  if (listed.is_array()) {
    for (const auto& m : listed) {
      if (m.is_string()) methods.push_back(m.get<std::string>());
    }
  }
  if (auto s = postgres_.CreateReplica(&*source, methods); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteConfig(dynamic, true, &*source); !s.ok()) {
    return fail(s.error());
  }
  starting_ = true;
  auto started = postgres_.Start(seconds(config_->postgresql.pg_ctl_timeout));
  starting_ = false;
  if (!started.ok()) {
    return fail(started.error());
  }
  std::string sysid = postgres_.SystemIdentifier();
  if (auto written = dcs_.Initialize(false, sysid); !written.ok()) {
    return fail(written.error());
  }
  if (auto set = dcs_.SetConfigValue(model::EncodeConfig(dynamic), std::nullopt); !set.ok()) {
    return fail(set.error());
  }
  auto won = dcs_.AttemptToAcquireLeader();
  if (!won.ok() || !*won) {
    return fail(won.ok() ? Error::Conflict("another node took the leader lock during bootstrap")
                         : won.error());
  }
  SetFollowing(model::kStandbyClusterSource);
  NoteRole("standby_leader", true);
  PGHA_LOG_INFO("initialized a standby cluster of {} (system identifier {})",
                source->host().empty()
                    ? std::string("the WAL archive (standby_cluster.restore_command)")
                    : fmt::format("{}:{}", source->host(), source->port()),
                sysid);
  return OkStatus();
}

std::optional<model::Member> Agent::StandbyClusterSource(const model::GlobalConfig& dynamic) {
  nlohmann::json section = dynamic.standby_cluster();
  std::string host = section.value("host", std::string());
  auto restore = section.find("restore_command");
  bool archive =
      restore != section.end() && restore->is_string() && !restore->get<std::string>().empty();
  if (host.empty() && !archive) {
    return std::nullopt;
  }
  model::Member source;
  source.name = model::kStandbyClusterSource;
  if (host.empty()) {
    return source;  // the archive alone: no conn_url, so no primary_conninfo
  }
  int64_t port = 5432;
  if (auto it = section.find("port"); it != section.end()) {
    port = static_cast<int64_t>(model::JsonAsNumber(*it).value_or(5432));
  }
  std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  source.data = {{"conn_url", fmt::format("postgres://{}:{}/postgres", url_host, port)}};
  return source;
}

}  // namespace pgha::agent
