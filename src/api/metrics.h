// GET /metrics: Patroni's gauges (docs/metrics.md, 4.x names and the {scope, name} labels) from the
// node's published status, then what Patroni lacks, prefixed pgha_: promotions and handovers
// with their durations, DCS request latency, the lease-renewal margin, the time since the last
// HA cycle. Prometheus text format 0.0.4.
#pragma once

#include <string>

#include "agent/node_status.h"

namespace pgha::api {

std::string RenderMetrics(const agent::NodeStatus& status);

}  // namespace pgha::api
