// Which replication slots a node keeps, by Patroni 3.0's rules, as pure functions:
// - the leader keeps a physical slot for every member that streams from it, plus the permanent
//   slots of the DCS config (`slots`: physical, and logical ones with database and plugin);
// - a replica keeps physical slots for the members that cascade from it (replicatefrom) and
//   the permanent logical slots (so they survive a failover; nofailover members do not);
// - every other slot is dropped, unless an `ignore_slots` matcher covers it or the cluster is
//   paused; a slot of the wrong kind is dropped and created again.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/cluster.h"
#include "model/replication_slot.h"

namespace pgha::ha {

// Patroni's get_replication_slots: name -> wanted slot. `leader`: this node holds the lock.
std::map<std::string, model::ReplicationSlot> DesiredSlots(const model::ClusterSnapshot& cluster,
                                                           const std::string& me, bool leader,
                                                           bool nofailover);

// Whether one of `ignore_slots`'s matchers ({name, type, database, plugin}, each optional)
// covers `slot`.
bool IsIgnoredSlot(const nlohmann::json& matchers, const model::ReplicationSlot& slot);

struct SlotPlan {
  std::vector<std::string> drop;
  std::vector<model::ReplicationSlot> create;  // logical ones only on the leader
};

// What to do about `existing` (pg_replication_slots, temporary slots left out) so that the
// node keeps `desired`.
SlotPlan PlanSlots(const std::map<std::string, model::ReplicationSlot>& desired,
                   const std::vector<model::ReplicationSlot>& existing,
                   const nlohmann::json& ignore_slots, bool paused, bool leader);

// A replica's permanent logical slots follow the leader's (Patroni 3.0's failover slots): a
// slot the replica lacks is copied from the leader (its state file, with PostgreSQL stopped);
// one behind the position the leader publishes in the status key is advanced.
struct LogicalSlotSync {
  std::vector<std::string> copy;
  std::map<std::string, uint64_t> advance;  // name -> the leader's confirmed_flush_lsn
};
LogicalSlotSync PlanLogicalSlotSync(const std::map<std::string, model::ReplicationSlot>& desired,
                                    const std::vector<model::ReplicationSlot>& existing,
                                    const std::map<std::string, uint64_t>& leader_positions);

}  // namespace pgha::ha
