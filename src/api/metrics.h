// GET /metrics: Patroni's gauges (docs/metrics.md, 4.x names and the {scope, name} labels) from the
// node's published status, then what Patroni lacks, prefixed pgha_: promotions and handovers
// with their durations, DCS request latency, the lease-renewal margin, the time since the last
// HA cycle. Prometheus text format 0.0.4.
#pragma once

#include <string>

#include "model/node_status.h"

namespace pgha::api {

std::string RenderMetrics(const model::NodeStatus& status);

}  // namespace pgha::api
