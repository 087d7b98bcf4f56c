// What the REST API's control endpoints do to the cluster, behind a small interface so the
// request rules stay pure and testable (a fake in unit tests, the DCS in pgha).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "ha/decide.h"
#include "model/cluster.h"
#include "model/node_status.h"

namespace pgha::api {

class Controller {
 public:
  virtual ~Controller() = default;
  // A linearizable read of the cluster (PATCH builds on the newest config, not a cached one).
  virtual Result<model::ClusterSnapshot> ReadCluster() = 0;
  // Writes the config key if its revision is still `mod_revision` (0: only if absent);
  // false when somebody changed it meanwhile.
  virtual Result<bool> WriteConfig(const std::string& value, int64_t mod_revision) = 0;
  // Writes the failover key (unconditionally, or only at `mod_revision`).
  virtual Result<bool> WriteFailover(const std::string& value,
                                     std::optional<int64_t> mod_revision) = 0;
  // GET /patroni of each member (2 s timeout), in order; unreachable ones not `reachable`.
  virtual std::vector<ha::PeerStatus> FetchStatuses(const std::vector<model::Member>& members) = 0;
  // Restarts this node's PostgreSQL in its current role; returns when it runs again.
  virtual Status RestartPostgres(std::chrono::seconds timeout) = 0;
  // Restarts at `at` if `conditions` hold then; Conflict when one is scheduled already.
  virtual Status ScheduleRestart(WallTime at, const nlohmann::json& shown,
                                 const model::RestartConditions& conditions,
                                 std::chrono::seconds timeout) = 0;
  // false when no restart was scheduled.
  virtual bool CancelScheduledRestart() = 0;
  // Drops this replica's data so it is cloned again; returns once that started.
  virtual Status Reinitialize(bool force, bool from_leader) = 0;
  // Re-reads the configuration file (POST /reload); returns once the agent took it up.
  virtual Status Reload() = 0;
  // POST /failsafe: the leader `name` reached this member while the DCS is away, with the
  // positions of its permanent logical slots (Patroni's "slots"), which replicas advance to.
  virtual void AcceptFailsafeLeader(const std::string& name, const std::string& conn_url,
                                    const std::string& api_url,
                                    const std::map<std::string, uint64_t>& slots) = 0;
  // Calendar time, and a pause between polls (a fake clock in tests).
  virtual WallTime Now() = 0;
  virtual void Sleep(std::chrono::milliseconds duration) = 0;
};

}  // namespace pgha::api
