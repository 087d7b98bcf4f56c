#include "metrics/http/exporter_server.h"

#include "common/log.h"
#include "common/strings.h"

namespace pgha::metrics::http {

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    return Error::Invalid("listen address '" + text + "' has no port (use host:port or :port)");
  }
  ListenAddress address;
  address.host = text.substr(0, colon);
  if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  }
  auto port = ParseInt64(text.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {
    return Error::Invalid("listen address '" + text + "' has no valid port");
  }
  address.port = static_cast<int>(*port);
  return address;
}

ExporterServer::ExporterServer(Exporter& exporter, ListenAddress address,
                               std::string telemetry_path,
                               std::chrono::milliseconds max_scrape_timeout)
    : exporter_(exporter),
      address_(std::move(address)),
      telemetry_path_(std::move(telemetry_path)),
      max_scrape_timeout_(max_scrape_timeout) {}

ExporterServer::~ExporterServer() { Stop(); }

Status ExporterServer::Start() {
  api::http::ServerOptions options;
  options.name = "exporter";
  options.host = address_.host;
  options.port = address_.port;
  options.limits.max_body_bytes = 64 * 1024;
  // Scrapes run one at a time; two threads answer a scrape and the landing page.
  options.handler_threads = 2;
  // Longer than the longest scrape the server allows, so it is never cut off while writing.
  options.response_timeout = max_scrape_timeout_ + std::chrono::seconds(10);
  const auto& text = api::http::TypedResponse;
  auto handler = [this](const api::Request& request) {
    bool read = request.method == "GET" || request.method == "HEAD";
    if (read && request.path == telemetry_path_) {
      auto timeout =
          ScrapeTimeout(request.Header("x-prometheus-scrape-timeout-seconds"), max_scrape_timeout_);
      return text(200, exporter_.Scrape(timeout), "text/plain; version=0.0.4; charset=utf-8");
    }
    if (read && request.path == "/") {
      return text(200,
                  "<html><head><title>pgha-exporter</title></head><body>"
                  "<h1>pgha-exporter</h1><p><a href=\"" +
                      telemetry_path_ + "\">Metrics</a></p></body></html>\n",
                  "text/html; charset=utf-8");
    }
    return text(404, "404 page not found\n", "text/plain; charset=utf-8");
  };
  auto on_error = [](int status, const std::string& message) {
    return text(status, message + "\n", "text/plain; charset=utf-8");
  };
  server_ = std::make_unique<api::http::EventHttpServer>(std::move(options), handler, on_error);
  if (auto started = server_->Start(); !started.ok()) {
    server_.reset();
    return started;
  }
  port_ = server_->port();
  PGHA_LOG_INFO("listening on {}:{}, metrics at {}",
                address_.host.empty() ? "0.0.0.0" : address_.host, port_, telemetry_path_);
  return OkStatus();
}

void ExporterServer::Stop() {
  if (server_) {
    server_->Stop();
  }
}

}  // namespace pgha::metrics::http
