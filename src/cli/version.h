// pghactl version <cluster> [members]: each member's agent and PostgreSQL versions, read from
// its GET /patroni, as patronictl 3.0.2 prints them.
#pragma once

#include <string>
#include <vector>

#include "cli/ctl.h"

namespace pgha::cli {

Result<int> PrintMemberVersions(CtlContext& ctx, const std::vector<std::string>& names);

}  // namespace pgha::cli
