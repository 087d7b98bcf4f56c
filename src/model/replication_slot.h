// A replication slot as PostgreSQL lists it (pg_replication_slots) and as the DCS config asks for
// it (Patroni's `slots` and `ignore_slots`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pgha::model {

struct ReplicationSlot {
  std::string name;
  std::string type;                                        // "physical" or "logical"
  std::string database;                                    // logical only
  std::string plugin;                                      // logical only
  std::optional<uint64_t> confirmed_flush = std::nullopt;  // logical only

  // Patroni's compare_slots: same type, and for logical ones the same database and plugin.
  bool SameKindAs(const ReplicationSlot& other) const {
    return type == other.type &&
           (type != "logical" || (database == other.database && plugin == other.plugin));
  }
};

// The slot a member streams through (Patroni's slot_name_from_member_name): lower case, '-'
// and '.' become '_', any other character outside [a-z0-9_] becomes u and its code in four
// digits, at most 63 characters.
std::string SlotNameForMember(const std::string& member);

}  // namespace pgha::model
