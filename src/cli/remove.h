// pghactl remove, as patronictl 3.0.2: three confirmations (the cluster's name, a sentence, the
// leader's name while there is one), then every key of the cluster is deleted.
#pragma once

#include "cli/ctl.h"

namespace pgha::cli {

Result<int> RemoveCluster(CtlContext& ctx);

}  // namespace pgha::cli
