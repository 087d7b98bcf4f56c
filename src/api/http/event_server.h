// An HTTP(S) server that no client can starve: one I/O thread multiplexes every connection
// (asio), so an idle, slow or half-open client costs a file descriptor and a timer, never a
// thread. Only a complete request reaches a handler thread. Each connection has a deadline for
// its request (TLS handshake included) and for its response; the number of open connections is
// bounded, and a client over the bound gets a 503 and the connection closed.
// One request per connection, as Patroni's server and HAProxy's checks do.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/http/request_parser.h"
#include "api/request.h"
#include "common/result.h"

namespace pgha::api::http {

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // written in this order
  std::string body;
};

struct ServerOptions {
  std::string name = "HTTP server";  // for log lines: "REST API", "exporter"
  std::string host;
  int port = 0;
  // Set: HTTPS, and this configures the context (certificates, client verification); it fills
  // `error` and returns false when it cannot.
  std::function<bool(SSL_CTX&, std::string& error)> tls_setup;
  // Health checks must still answer with a thousand idle clients connected; lowered at start
  // when the process may not open that many descriptors.
  size_t max_connections = 4096;
  std::chrono::milliseconds request_timeout{10000};   // from accept to a complete request
  std::chrono::milliseconds response_timeout{10000};  // writing the answer
  ParseLimits limits;
  size_t handler_threads = 4;
};

// Runs on a handler thread. `request.remote_addr` and `client_cert_verified` are filled in.
using RequestHandler = std::function<HttpResponse(const Request& request)>;
// The answer to a request the parser refused (status and reason given), for the server's own
// error shape.
using ErrorResponder = std::function<HttpResponse(int status, const std::string& message)>;

class EventHttpServer {
 public:
  EventHttpServer(ServerOptions options, RequestHandler handler, ErrorResponder on_error);
  ~EventHttpServer();
  EventHttpServer(const EventHttpServer&) = delete;
  EventHttpServer& operator=(const EventHttpServer&) = delete;

  // Sets up TLS, binds and starts serving on its own thread; a clear error when any fails.
  Status Start();
  // Stops accepting, closes every connection and waits for running handlers.
  void Stop();
  size_t open_connections() const;
  // The port bound (the one chosen by the system when ServerOptions::port is 0).
  int port() const;

  struct Impl;  // the I/O state, defined with the sessions that use it in event_server.cc

 private:
  std::unique_ptr<Impl> impl_;
};

// "HTTP/1.1 200 OK\r\n..." with Content-Length and Connection: close; no body for HEAD.
std::string SerializeResponse(const HttpResponse& response, bool head_request);

// A response with one Content-Type header: what the exporter's and the router's pages send.
HttpResponse TypedResponse(int status, std::string body, std::string content_type);

}  // namespace pgha::api::http
