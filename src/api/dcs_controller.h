// The Controller of a running node: reads and writes go straight to the DCS; restarts,
// reinitialize and reload go to the agent; member statuses come from their REST APIs.
#pragma once

#include <functional>
#include <thread>

#include "api/controller.h"
#include "dcs/dcs.h"
#include "ha/peer_client.h"

namespace pgha::api {

// What the agent does on the API's behalf.
struct AgentHooks {
  std::function<Status(std::chrono::seconds)> restart;
  std::function<Status(bool, bool)> reinitialize;
  std::function<Status()> reload;
  std::function<Status(WallTime, const nlohmann::json&, const model::RestartConditions&,
                       std::chrono::seconds)>
      schedule_restart;
  std::function<bool()> cancel_scheduled_restart;
  std::function<void(const std::string&, const std::string&, const std::string&,
                     const std::map<std::string, uint64_t>&)>
      accept_failsafe_leader;
};

class DcsController final : public Controller {
 public:
  // `dcs` must be safe to use from the REST API's threads (pgha gives it its own uncached
  // instance, apart from the HA loop's).
  DcsController(dcs::Dcs& dcs, ha::PeerClient& peers, AgentHooks hooks)
      : dcs_(dcs), peers_(peers), hooks_(std::move(hooks)) {}
  Result<model::ClusterSnapshot> ReadCluster() override { return dcs_.LoadCluster(); }
  Result<bool> WriteConfig(const std::string& value, int64_t mod_revision) override {
    return dcs_.SetConfigValue(value, mod_revision);
  }
  Result<bool> WriteFailover(const std::string& value,
                             std::optional<int64_t> mod_revision) override {
    return dcs_.SetFailoverValue(value, mod_revision);
  }
  std::vector<ha::PeerStatus> FetchStatuses(const std::vector<model::Member>& members) override {
    return peers_.FetchAll(members);
  }
  Status RestartPostgres(std::chrono::seconds timeout) override { return hooks_.restart(timeout); }
  Status Reinitialize(bool force, bool from_leader) override {
    return hooks_.reinitialize(force, from_leader);
  }
  Status Reload() override { return hooks_.reload(); }
  Status ScheduleRestart(WallTime at, const nlohmann::json& shown,
                         const model::RestartConditions& conditions,
                         std::chrono::seconds timeout) override {
    return hooks_.schedule_restart(at, shown, conditions, timeout);
  }
  bool CancelScheduledRestart() override { return hooks_.cancel_scheduled_restart(); }
  void AcceptFailsafeLeader(const std::string& name, const std::string& conn_url,
                            const std::string& api_url,
                            const std::map<std::string, uint64_t>& slots) override {
    hooks_.accept_failsafe_leader(name, conn_url, api_url, slots);
  }
  WallTime Now() override { return SystemClock::Instance().WallNow(); }
  void Sleep(std::chrono::milliseconds duration) override { std::this_thread::sleep_for(duration); }

 private:
  dcs::Dcs& dcs_;
  ha::PeerClient& peers_;
  AgentHooks hooks_;
};

}  // namespace pgha::api
