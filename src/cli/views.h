// What pghactl's read-only verbs show, as patronictl 3.0.2 shows it: the member list (and its
// topology order), the service lines under it, the failover history, the dynamic configuration
// and a member's DSN. Pure functions of a cluster snapshot.
#pragma once

#include <string>
#include <vector>

#include "cli/table.h"
#include "common/result.h"
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

// `show-config`: the dynamic configuration (the config key) as YAML.
Result<std::string> ShowConfig(const model::ClusterSnapshot& cluster);

// `dsn`: "host=H port=P" of the member `member` names, or else the one `role` selects (the
// leader when both are empty); both at once is an error, as in patronictl.
Result<std::string> Dsn(const model::ClusterSnapshot& cluster, const std::string& role,
                        const std::string& member);

}  // namespace pgha::cli
