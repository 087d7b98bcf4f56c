// Replication slots: what ha/slots.h says this node keeps, physical and permanent logical ones.

#include "agent/agent.h"
#include "common/log.h"
#include "ha/slots.h"

namespace pgha::agent {

using std::chrono::seconds;

std::string Agent::SlotsWanted(const model::ClusterSnapshot& cluster, bool leader) const {
  std::string key;
  for (const auto& [name, slot] :
       ha::DesiredSlots(cluster, config_->name, leader, config_->tags.nofailover)) {
    key += name + ":" + slot.type + ":" + slot.database + ":" + slot.plugin + ";";
  }
  if (cluster.config) {
    key += cluster.config->data.raw().value("ignore_slots", nlohmann::json()).dump();
    key += cluster.config->data.is_paused() ? "paused" : "";
  }
  if (!leader) {  // a replica follows the leader's logical slot positions
    for (const auto& [name, position] : cluster.status.slots) {
      key += name + "@" + std::to_string(position) + ";";
    }
  }
  return key;
}

Result<std::vector<model::ReplicationSlot>> Agent::SyncSlots(const model::ClusterSnapshot& cluster,
                                                             bool leader) {
  auto existing = postgres_.ListSlots();
  if (!existing.ok()) {
    return existing.error();
  }
  nlohmann::json ignore = nlohmann::json::array();
  bool paused = false;
  if (cluster.config) {
    ignore = cluster.config->data.raw().value("ignore_slots", nlohmann::json::array());
    paused = cluster.config->data.is_paused();
  }
  auto desired = ha::DesiredSlots(cluster, config_->name, leader, config_->tags.nofailover);
  auto plan = ha::PlanSlots(desired, *existing, ignore, paused, leader);
  if (!plan.drop.empty() || !plan.create.empty()) {
    PGHA_RETURN_IF_ERROR(postgres_.ChangeSlots(plan.drop, plan.create));
  }
  if (!leader) {
    SyncLogicalSlotsFromLeader(cluster, desired, *existing);
  }
  return existing;
}

void Agent::SyncLogicalSlotsFromLeader(const model::ClusterSnapshot& cluster,
                                       const std::map<std::string, model::ReplicationSlot>& desired,
                                       const std::vector<model::ReplicationSlot>& existing) {
  auto sync = ha::PlanLogicalSlotSync(desired, existing, cluster.status.slots);
  for (const auto& [name, position] : sync.advance) {
    if (auto advanced = postgres_.AdvanceLogicalSlot(desired.at(name), position); !advanced.ok()) {
      PGHA_LOG_WARN("cannot advance logical slot '{}': {}", name, advanced.error().message());
    }
  }
  const auto* leader = cluster.LeaderMember();
  if (sync.copy.empty() || leader == nullptr || leader->name == config_->name) {
    return;
  }
  // The copy needs PostgreSQL stopped for a moment (Patroni does the same): a long action.
  model::Member source = *leader;
  std::vector<std::string> names = sync.copy;
  StartLongAction(ha::LongAction::kCopyLogicalSlots, [this, source, names]() -> Status {
    auto states = postgres_.ReadLeaderSlotStates(source, names);
    if (!states.ok()) {
      return states.error();
    }
    if (states->empty()) {
      return OkStatus();
    }
    auto timeout = seconds(config_->postgresql.pg_ctl_timeout);
    PGHA_RETURN_IF_ERROR(postgres_.Stop("fast", timeout));
    PublishStopped();
    Status installed = postgres_.InstallSlotStates(*states);
    PGHA_RETURN_IF_ERROR(postgres_.Start(timeout));
    return installed;
  });
}

std::map<std::string, uint64_t> Agent::LogicalSlotPositions(
    const model::ClusterSnapshot& cluster, const std::vector<model::ReplicationSlot>& slots) const {
  // What replicas advance their copies to: the leader's permanent logical slots' positions.
  auto desired = ha::DesiredSlots(cluster, config_->name, true, config_->tags.nofailover);
  std::map<std::string, uint64_t> positions;
  for (const auto& slot : slots) {
    auto wanted = desired.find(slot.name);
    if (wanted != desired.end() && wanted->second.type == "logical" && slot.confirmed_flush) {
      positions[slot.name] = *slot.confirmed_flush;
    }
  }
  return positions;
}

}  // namespace pgha::agent
