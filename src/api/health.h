// The health-check family as a pure function: a request and the node's published status in, a
// status code and body out (Patroni's do_GET family, COMPAT.md §3).
#pragma once

#include "agent/node_status.h"
#include "api/request.h"

namespace pgha::api {

// Status-code rules, as Patroni's (with one deliberate difference: /primary is 503 while
// PostgreSQL is not running, so a load balancer stops sending writes to a dead port):
//   /, /primary, /master, /read-write   200 when this node holds the leader lock and runs as
//   primary /leader                             200 when it holds the leader lock /standby-leader,
//   /standby_leader    200 when it holds the lock in a standby cluster (never, yet) /replica 200
//   when running as a replica, not tagged noloadbalance,
//                                       within ?lag=, matching ?replication_state= and ?tag_k=v
//   /read-only                          200 for the primary or a replica as above
//   /asynchronous, /async               200 for a replica as above (no synchronous mode yet)
//   /synchronous, /sync, /quorum        503 (no synchronous mode yet)
//   /read-only-sync, /read-only-quorum  200 for the primary
//   /health                             200 when PostgreSQL is running
//   /liveness                           200 when the HA loop ran within ttl (primary) or 2*ttl
//   /readiness                          200 for the running leader, or a streaming replica within
//   lag /patroni                            always 200 any other GET path                  503 with
//   the status body
Reply Handle(const Request& request, const agent::NodeStatus& status);

}  // namespace pgha::api
