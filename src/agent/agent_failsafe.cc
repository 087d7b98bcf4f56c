// failsafe_mode: a primary confirmed by every member while the DCS is away, and a replica following
// the failsafe leader.

#include "agent/agent.h"
#include "common/log.h"
#include "ha/slots.h"

namespace pgha::agent {

using std::chrono::duration;

bool Agent::FailsafeConfirmedRecently() const {
  return failsafe_confirmed_at_ &&
         duration<double>(clock_.Now() - *failsafe_confirmed_at_).count() < ha_config_.ttl;
}

void Agent::WriteFailsafeMembers(const ha::HaInput& in) {
  if (!ha_config_.failsafe_mode) {
    return;
  }
  nlohmann::json members = nlohmann::json::object();
  for (const auto& m : in.cluster.members) {
    if (!m.api_url().empty()) {
      members[m.name] = m.api_url();
    }
  }
  members[config_->name] = ApiUrl();
  std::string value = members.dump();
  if (value == last_failsafe_written_) {
    return;
  }
  if (auto written = dcs_.WriteFailsafe(value); written.ok()) {
    last_failsafe_written_ = value;
  } else {
    PGHA_LOG_WARN("failed to write the failsafe key: {}", written.error().message());
  }
}

std::string Agent::ConnUrl() const {
  return "postgres://" + config_->postgresql.connect_address + "/" + config_->postgresql.database;
}

std::string Agent::ApiUrl() const {
  return (config_->restapi.certfile.empty() ? "http://" : "https://") +
         config_->restapi.connect_address + "/patroni";
}

bool Agent::ConfirmFailsafe(const model::ClusterSnapshot& last) {
  if (!ha_config_.failsafe_mode || !last.failsafe || !last.failsafe->count(config_->name)) {
    return false;
  }
  auto asked = clock_.Now();
  std::vector<std::string> urls;
  for (const auto& [name, url] : *last.failsafe) {
    if (name != config_->name) {
      urls.push_back(url);
    }
  }
  nlohmann::json body = {{"name", config_->name}, {"conn_url", ConnUrl()}, {"api_url", ApiUrl()}};
  // The positions of the permanent logical slots, so replicas keep their copies in step while
  // the DCS (which carries them in the status key) is away.
  if (auto slots = postgres_.ListSlots(); slots.ok()) {
    if (auto positions = LogicalSlotPositions(last, *slots); !positions.empty()) {
      body["slots"] = positions;
    }
  }
  bool all = true;
  auto answers = peers_.PostFailsafe(urls, body.dump());
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) {
      PGHA_LOG_WARN("failsafe: {} did not accept us as the leader", urls[i]);
      all = false;
    }
  }
  if (all) {
    // Every member took us for the leader for ttl from now: none of them will race before.
    failsafe_confirmed_at_ = asked;
    MutexLock lock(mutex_);
    status_.failsafe_active = true;
  }
  return all;
}

void Agent::AcceptFailsafeLeader(const std::string& name, const std::string& conn_url,
                                 const std::string& api_url,
                                 const std::map<std::string, uint64_t>& slots) {
  MutexLock lock(mutex_);
  failsafe_leader_ = FailsafeLeader{name, conn_url, api_url, clock_.Now(), slots};
  status_.failsafe_active = true;
}

void Agent::AdvanceSlotsFromFailsafeLeader() {
  std::map<std::string, uint64_t> positions;
  {
    MutexLock lock(mutex_);
    if (!failsafe_leader_ ||
        clock_.Now() - failsafe_leader_->at > duration<double>(ha_config_.ttl)) {
      return;
    }
    positions = failsafe_leader_->slots;
  }
  auto cluster = CurrentCluster();
  auto existing =
      positions.empty() || !cluster
          ? Result<std::vector<model::ReplicationSlot>>(std::vector<model::ReplicationSlot>{})
          : postgres_.ListSlots();
  if (!cluster || !existing.ok()) {
    return;
  }
  auto desired = ha::DesiredSlots(*cluster, config_->name, false, config_->tags.nofailover);
  for (const auto& [name, position] :
       ha::PlanLogicalSlotSync(desired, *existing, positions).advance) {
    if (auto advanced = postgres_.AdvanceLogicalSlot(desired.at(name), position); !advanced.ok()) {
      PGHA_LOG_WARN("cannot advance logical slot '{}': {}", name, advanced.error().message());
    }
  }
}

}  // namespace pgha::agent
