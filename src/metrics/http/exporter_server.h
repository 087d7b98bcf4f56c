// pgha-exporter's HTTP side (api/http/event_server, so idle or slow clients cannot hold up a
// scrape): the telemetry path serves one scrape, "/" a page linking to it, anything else 404.
// Scrapes are bounded by the Prometheus scrape timeout the request announces, less a margin, and by
// the configured maximum.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "api/http/event_server.h"
#include "common/result.h"
#include "metrics/postgres_exporter.h"

namespace pgha::metrics::http {

struct ListenAddress {
  std::string host;  // "" for every address
  int port = 0;
};

// ":9187", "0.0.0.0:9187", "localhost:9187", "[::1]:9187".
Result<ListenAddress> ParseListenAddress(const std::string& text);

class ExporterServer {
 public:
  ExporterServer(Exporter& exporter, ListenAddress address, std::string telemetry_path,
                 std::chrono::milliseconds max_scrape_timeout);
  ~ExporterServer();
  Status Start();
  void Stop();
  // The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  Exporter& exporter_;
  ListenAddress address_;
  std::string telemetry_path_;
  std::chrono::milliseconds max_scrape_timeout_;
  int port_ = 0;
  std::unique_ptr<api::http::EventHttpServer> server_;
};

}  // namespace pgha::metrics::http
