// The health-check family as a pure function: a request and the node's published status in, a
// status code and body out (Patroni's do_GET family, docs/rest-api.md).
#pragma once

#include "api/request.h"
#include "model/node_status.h"

namespace pgha::api {

// Status-code rules, as Patroni's (with one deliberate difference: /primary is 503 while
// PostgreSQL is not running, so a load balancer stops sending writes to a dead port).
// "A replica" below means running as a replica, not tagged noloadbalance, within ?lag=,
// matching ?replication_state= and ?tag_k=v.
// - /, /primary, /master, /read-write: holds the leader lock and runs as primary.
// - /leader: holds the leader lock. /standby-leader: never (no standby cluster yet).
// - /replica: a replica. /read-only: the primary or a replica.
// - /synchronous, /sync: a replica the leader's sync key names (synchronous_mode on).
// - /quorum: a replica the leader's sync key names as a voter (synchronous_mode quorum).
// - /asynchronous, /async: a replica the key names in neither way.
// - /read-only-sync, /read-only-quorum: the primary, or a replica as for /sync or /quorum.
// - /health: PostgreSQL is running. /liveness: the HA loop ran within ttl (primary) or 2*ttl.
// - /readiness: the running leader, or a streaming replica within lag.
// - /patroni: always 200. Any other GET path: 503 with the status body.
Reply Handle(const Request& request, const model::NodeStatus& status);

}  // namespace pgha::api
