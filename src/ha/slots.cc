#include "ha/slots.h"

#include <algorithm>
#include <set>

#include "model/global_config.h"

namespace pgha::ha {

using nlohmann::json;

namespace {

bool ValidSlotName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// The DCS config's permanent slots: `permanent_replication_slots`, `permanent_slots` or `slots`.
json PermanentSlots(const model::ClusterSnapshot& cluster) {
  if (!cluster.config) return json::object();
  const json& raw = cluster.config->data.raw();
  for (const char* key : {"permanent_replication_slots", "permanent_slots", "slots"}) {
    if (auto it = raw.find(key); it != raw.end() && it->is_object() && !it->empty()) {
      return *it;
    }
  }
  return json::object();
}

std::string StringField(const json& value, const char* key) {
  auto it = value.find(key);
  return it != value.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::map<std::string, model::ReplicationSlot> DesiredSlots(const model::ClusterSnapshot& cluster,
                                                           const std::string& me, bool leader,
                                                           bool nofailover) {
  std::map<std::string, model::ReplicationSlot> slots;
  bool use_slots = !cluster.config || cluster.config->data.use_slots();
  if (!use_slots) return slots;
  std::string leader_name = cluster.leader ? cluster.leader->name : "";
  for (const auto& m : cluster.members) {
    if (m.name == me || m.nostream()) continue;  // a nostream member never connects
    std::string from = m.replicatefrom();
    bool streams_from_me = leader ? (from.empty() || from == me || !cluster.FindMember(from))
                                  : (from == me && m.name != leader_name);
    if (streams_from_me) {
      std::string name = model::SlotNameForMember(m.name);
      slots[name] = model::ReplicationSlot{name, "physical", "", ""};
    }
  }
  if (!leader && nofailover) return slots;  // a nofailover replica never needs them
  // A standby leader keeps the permanent physical slots only: a logical slot cannot be made
  // on a server in recovery, and the remote primary has its own.
  bool standby_leader = leader && cluster.config && cluster.config->data.is_standby_cluster();
  const json permanent = PermanentSlots(cluster);
  for (const auto& [name, value] : permanent.items()) {
    if (!ValidSlotName(name)) continue;
    if (!value.is_null() && !value.is_object()) continue;
    std::string database = value.is_object() ? StringField(value, "database") : "";
    std::string plugin = value.is_object() ? StringField(value, "plugin") : "";
    std::string type = value.is_object() ? StringField(value, "type") : "";
    if (type.empty()) type = !database.empty() && !plugin.empty() ? "logical" : "physical";
    if (type == "physical") {
      if (leader && name != model::SlotNameForMember(me)) {
        slots[name] = model::ReplicationSlot{name, "physical", "", ""};
      }
    } else if (type == "logical" && !standby_leader && !database.empty() && !plugin.empty() &&
               !slots.count(name)) {
      slots[name] = model::ReplicationSlot{name, "logical", database, plugin};
    }
  }
  return slots;
}

bool IsIgnoredSlot(const json& matchers, const model::ReplicationSlot& slot) {
  if (!matchers.is_array()) return false;
  for (const auto& m : matchers) {
    if (!m.is_object()) continue;
    auto matches = [&m](const char* key, const std::string& actual) {
      std::string wanted = StringField(m, key);
      return wanted.empty() || wanted == actual;
    };
    if (matches("name", slot.name) && matches("type", slot.type) &&
        matches("database", slot.database) && matches("plugin", slot.plugin)) {
      return true;
    }
  }
  return false;
}

SlotPlan PlanSlots(const std::map<std::string, model::ReplicationSlot>& desired,
                   const std::vector<model::ReplicationSlot>& existing, const json& ignore_slots,
                   bool paused, bool leader) {
  SlotPlan plan;
  std::set<std::string> kept;
  for (const auto& slot : existing) {
    auto wanted = desired.find(slot.name);
    if (wanted == desired.end()) {
      if (!paused && !IsIgnoredSlot(ignore_slots, slot)) plan.drop.push_back(slot.name);
      continue;
    }
    if (!wanted->second.SameKindAs(slot)) {
      plan.drop.push_back(slot.name);  // recreated below with the kind the config asks for
      continue;
    }
    kept.insert(slot.name);
  }
  for (const auto& [name, slot] : desired) {
    if (kept.count(name)) continue;
    // A replica cannot create a logical slot (before PostgreSQL 16); it gets copies instead.
    if (slot.type == "logical" && !leader) continue;
    plan.create.push_back(slot);
  }
  return plan;
}

LogicalSlotSync PlanLogicalSlotSync(const std::map<std::string, model::ReplicationSlot>& desired,
                                    const std::vector<model::ReplicationSlot>& existing,
                                    const std::map<std::string, uint64_t>& leader_positions) {
  LogicalSlotSync sync;
  for (const auto& [name, slot] : desired) {
    auto position = leader_positions.find(name);
    if (slot.type != "logical" || position == leader_positions.end()) {
      continue;  // only slots the leader publishes, as Patroni copies only those
    }
    auto here = std::find_if(
        existing.begin(), existing.end(),
        [&wanted = name](const model::ReplicationSlot& e) { return e.name == wanted; });
    if (here == existing.end()) {
      sync.copy.push_back(name);
    } else if (here->SameKindAs(slot) && here->confirmed_flush &&
               *here->confirmed_flush < position->second) {
      sync.advance[name] = position->second;
    }
  }
  return sync;
}

}  // namespace pgha::ha
