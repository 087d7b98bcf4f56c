// pghactl switchover / failover, as patronictl 3.0.2 runs them: the topology, the checks and
// prompts, then POST /switchover or /failover to the leader (to the candidate when there is no
// leader), and the failover key written directly when no REST API answers.
#pragma once

#include <string>

#include "cli/ctl.h"

namespace pgha::cli {

enum class Handover { kSwitchover, kFailover };

struct HandoverOptions {
  std::string leader{};     // --leader / --primary; asked for when empty (unless --force)
  std::string candidate{};  // --candidate; asked for when empty (unless --force)
  std::string scheduled{};  // --scheduled; "now" or an ISO 8601 time
  bool scheduled_given = false;
  bool force = false;
};

Result<int> RunHandover(CtlContext& ctx, Handover kind, HandoverOptions options);

}  // namespace pgha::cli
