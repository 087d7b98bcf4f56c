// pghactl restart, reinit, reload and flush, as patronictl 3.0.2: the members a role and names
// select, a confirmation unless --force, then one REST call per member.
#pragma once

#include <string>
#include <vector>

#include "cli/ctl.h"

namespace pgha::cli {

// patronictl's get_members: the members with `role` (leader, primary, master, standby-leader,
// replica, standby, any), narrowed to `names` (each must exist), confirmed unless `force`.
Result<std::vector<const model::Member*>> ChooseMembers(CtlContext& ctx,
                                                        const model::ClusterSnapshot& cluster,
                                                        const std::vector<std::string>& names,
                                                        const std::string& role, bool force,
                                                        const std::string& action);

struct RestartOptions {
  std::vector<std::string> members{};
  std::string role = "any";
  bool pending = false;      // --pending: only members with pending_restart
  std::string scheduled{};   // --scheduled
  std::string pg_version{};  // --pg-version: only members older than it
  double timeout = 0;        // --timeout
  bool force = false;
};
// POST /restart to each chosen member.
Result<int> RestartMembers(CtlContext& ctx, const RestartOptions& options);

struct ReinitOptions {
  std::vector<std::string> members{};
  bool force = false;
  bool wait = false;         // --wait: until each member runs a new postmaster
  bool from_leader = false;  // --from-leader
};
// POST /reinitialize to each named member.
Result<int> ReinitMembers(CtlContext& ctx, const ReinitOptions& options);

// POST /reload to each chosen member.
Result<int> ReloadMembers(CtlContext& ctx, const std::vector<std::string>& names,
                          const std::string& role, bool force);

// Withdraws scheduled restarts (target "restart": DELETE /restart on the chosen members) or the
// scheduled switchover (target "switchover": DELETE /switchover, leader first; the failover key
// directly when no member answers).
Result<int> Flush(CtlContext& ctx, const std::string& target, const std::vector<std::string>& names,
                  const std::string& role, bool force);

}  // namespace pgha::cli
