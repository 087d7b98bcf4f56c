// The REST API's HTTP server (cpp-httplib, its own thread pool) and the HTTP peer client.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/node_status.h"
#include "agent/peer_client.h"
#include "common/result.h"
#include "config/config.h"

namespace httplib {
class Server;
}

namespace pgha::api::http {

class RestServer {
 public:
  RestServer(const config::RestApiConfig& config, std::function<agent::NodeStatus()> status);
  ~RestServer();
  // Binds and starts serving on a background thread. Fails when the address is taken.
  Status Start();
  void Stop();

 private:
  const config::RestApiConfig& config_;
  std::function<agent::NodeStatus()> status_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

class HttpPeerClient final : public agent::PeerClient {
 public:
  std::vector<ha::PeerStatus> FetchAll(const std::vector<model::Member>& members) override;
};

}  // namespace pgha::api::http
