// pghactl pause / resume, as patronictl 3.0.2: PATCH /config with {"pause": true} (or null) to
// the leader first, then to the other members until one answers; --wait then reads the member
// keys until every member shows the change.
#pragma once

#include "cli/ctl.h"

namespace pgha::cli {

Result<int> SetPaused(CtlContext& ctx, bool paused, bool wait);

}  // namespace pgha::cli
