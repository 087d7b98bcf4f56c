// The REST API's HTTP(S) server (api/http/event_server: one I/O thread, so no client can starve
// the health checks) and the HTTP peer client. All decisions are made by api::HandleRequest;
// this file only adapts them.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/http/client.h"
#include "api/http/event_server.h"
#include "api/rest_api.h"
#include "common/result.h"
#include "config/config.h"

namespace pgha::api::http {

class RestServer {
 public:
  // `controller` may be null (then the control endpoints answer 503).
  RestServer(const config::RestApiConfig& config, std::function<ApiState()> state,
             Controller* controller = nullptr);
  ~RestServer();
  // Loads TLS material, resolves the allowlist, binds and starts serving on a background
  // thread. Fails with a clear message when any of these fails. `max_connections`: how many
  // connections stay open at once before new ones get a 503.
  Status Start(size_t max_connections = ServerOptions{}.max_connections);
  void Stop();
  size_t open_connections() const;

 private:
  // A copy: a reload replaces the agent's configuration while requests are served (restapi
  // itself changes only with a restart of pgha).
  const config::RestApiConfig config_;
  std::function<ApiState()> state_;
  Controller* controller_;
  AccessPolicy policy_;
  bool tls_ = false;
  std::unique_ptr<EventHttpServer> server_;
};

// Resolves restapi.allowlist entries (addresses, networks, host names) into networks.
Result<std::vector<Network>> ResolveAllowlist(const std::vector<std::string>& entries);

}  // namespace pgha::api::http
