// What the router shows about itself on its stats port: Prometheus metrics (pgha_router_*), a
// status page for people, and /health. Rendering is pure (stats in, text out); StatsServer puts
// it on the event-driven HTTP server shared with the REST API and the exporter.
//
// Thread-safety: Render* are pure; StatsServer's methods are called from one thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "common/clock.h"
#include "common/result.h"
#include "config/config.h"
#include "router/proxy.h"
#include "router/topology.h"

namespace pgha::router {

struct RouterView {
  ProxyStats proxy;
  TopologyStatus topology;
  MonoTime now{};
  MonoTime started{};
  bool draining = false;
};

std::string RenderMetrics(const RouterView& view);
std::string RenderStatusPage(const RouterView& view);

class StatsServer {
 public:
  using Snapshot = std::function<RouterView()>;
  StatsServer(config::HostPort address, Snapshot snapshot);
  ~StatsServer();
  Status Start();
  void Stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pgha::router
