#include "metrics/http/exporter_server.h"

#include <httplib.h>
#include <sys/socket.h>

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
  server_ = std::make_unique<httplib::Server>();
  // Scrapes run one at a time; a few threads answer a scrape, the landing page and a stray
  // connection without httplib's default of one thread per core (each with its stack and arena).
  server_->new_task_queue = [] { return new httplib::ThreadPool(3); };
  server_->Get(telemetry_path_, [this](const httplib::Request& req, httplib::Response& res) {
    auto timeout = ScrapeTimeout(req.has_header("X-Prometheus-Scrape-Timeout-Seconds")
                                     ? std::optional<std::string>(req.get_header_value(
                                           "X-Prometheus-Scrape-Timeout-Seconds"))
                                     : std::nullopt,
                                 max_scrape_timeout_);
    res.set_content(exporter_.Scrape(timeout), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (telemetry_path_ != "/") {
    server_->Get("/", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<html><head><title>pgha-exporter</title></head><body>"
          "<h1>pgha-exporter</h1><p><a href=\"" +
              telemetry_path_ + "\">Metrics</a></p></body></html>\n",
          "text/html; charset=utf-8");
    });
  }
  server_->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(res.status == 404 ? "404 page not found\n" : "error\n", "text/plain");
    }
  });
  server_->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
        PGHA_LOG_ERROR("{} {} failed with an exception", req.method, req.path);
        res.status = 500;
        res.set_content("internal error\n", "text/plain");
      });
  // No SO_REUSEPORT: a second exporter on a taken port must fail, not share it.
  server_->set_socket_options([](int sock) {
    int yes = 1;
    (void)setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // One request per connection, as Patroni's HTTP/1.0 server and HAProxy's checks do: httplib
  // waits for a kept-alive connection's next request by waking every 10 ms for 5 s, which
  // made an idle agent (scraped with keep-alive) cost more CPU than Patroni.
  server_->set_keep_alive_max_count(1);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_payload_max_length(64 * 1024);
  std::string host = address_.host.empty() ? "0.0.0.0" : address_.host;
  if (address_.port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else if (server_->bind_to_port(host, address_.port)) {
    port_ = address_.port;
  }
  if (port_ <= 0) {
    return Error::Unavailable(
        fmt::format("cannot listen on {}:{} (address in use?)", host, address_.port));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  for (int i = 0; i < 500 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  PGHA_LOG_INFO("listening on {}:{}, metrics at {}", host, port_, telemetry_path_);
  return OkStatus();
}

void ExporterServer::Stop() {
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace pgha::metrics::http
