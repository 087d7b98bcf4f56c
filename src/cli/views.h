// What pghactl's read-only verbs show, as patronictl 3.0.2 shows it: the member list (and its
// topology order), the service lines under it, and the failover history. Pure functions of a
// cluster snapshot.
#pragma once

#include <string>
#include <vector>

#include "cli/table.h"
#include "model/cluster.h"

namespace pgha::cli {

// `list` / `topology`: columns Cluster, Member, Host, Role, State, TL, Lag in MB, plus Pending
// restart / Scheduled restart / Tags when `extended` or when any member has them.
Table MembersTable(const model::ClusterSnapshot& cluster, const std::string& cluster_name,
                   bool extended, bool topology);

// "Maintenance mode: on", "Switchover scheduled at: ..." lines printed under the table.
std::vector<std::string> ServiceInfo(const model::ClusterSnapshot& cluster);

// `history`: TL, LSN, Reason, Timestamp, New Leader.
Table HistoryTable(const model::ClusterSnapshot& cluster);

// The member a role or name selects (patronictl's get_any_member): role is leader, primary,
// master, standby-leader, replica, standby or any. Null when none matches.
const model::Member* SelectMember(const model::ClusterSnapshot& cluster, const std::string& role,
                                  const std::string& name);

}  // namespace pgha::cli
