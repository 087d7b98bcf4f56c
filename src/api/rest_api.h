// The whole REST API as one pure function (docs/rest-api.md): routing, access control, request
// validation and the read endpoints. Endpoints that act on the cluster go through Controller so
// the HTTP threads never touch the HA loop's state directly.
#pragma once

#include <memory>

#include "api/access.h"
#include "api/controller.h"
#include "api/request.h"
#include "model/cluster.h"
#include "model/node_status.h"

namespace pgha::api {

// What the API reads: the node's last published status and the cluster snapshot of the same
// cycle (null before the first successful DCS read).
struct ApiState {
  model::NodeStatus node;
  std::shared_ptr<const model::ClusterSnapshot> cluster;
};

// GET/HEAD/OPTIONS: the health-check family, /patroni, /cluster, /history, /config.
// POST/PUT/PATCH/DELETE: Patroni's unsafe endpoints, after CheckAccess and body validation
// (411 without Content-Length, 400 for a body that is not a JSON object).
// `controller` carries out the control endpoints; without one they answer 503.
Reply HandleRequest(const Request& request, const ApiState& state, const AccessPolicy& policy,
                    Controller* controller = nullptr);

}  // namespace pgha::api
