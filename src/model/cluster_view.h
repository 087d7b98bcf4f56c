// The cluster as operators see it: Patroni's `cluster_as_json`, shared by the REST API's
// GET /cluster and pghactl's list/topology, so both always agree.
#pragma once

#include <nlohmann/json.hpp>

#include "model/cluster.h"

namespace pgha::model {

// {members: [{name, role, state, api_url, host, port, timeline, tags, pending_restart,
// scheduled_restart, lag, ...}], pause?, scheduled_switchover?}. Roles are leader /
// standby_leader / sync_standby / replica; `lag` is bytes behind the last known leader position
// (the status key), "unknown" when the member does not report a position. Members sorted by name.
nlohmann::ordered_json ClusterAsJson(const ClusterSnapshot& cluster);

}  // namespace pgha::model
