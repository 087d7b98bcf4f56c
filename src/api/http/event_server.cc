#include "api/http/event_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cerrno>
#include <optional>
#include <thread>
#include <type_traits>

#include "common/log.h"
#include "common/open_files.h"

namespace pgha::api::http {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool ClientCertificateVerified(SSL* ssl) {
  if (ssl == nullptr) {
    return false;
  }
  X509* cert = SSL_get_peer_certificate(ssl);
  if (cert == nullptr) {
    return false;
  }
  X509_free(cert);
  return SSL_get_verify_result(ssl) == X509_V_OK;
}

}  // namespace

HttpResponse TypedResponse(int status, std::string body, std::string content_type) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::move(content_type));
  response.body = std::move(body);
  return response;
}

std::string SerializeResponse(const HttpResponse& response, bool head_request) {
  std::string out =
      fmt::format("HTTP/1.1 {} {}\r\n", response.status, ReasonPhrase(response.status));
  for (const auto& [name, value] : response.headers) {
    out += name + ": " + value + "\r\n";
  }
  out += fmt::format("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body.size());
  if (!head_request) {
    out += response.body;
  }
  return out;
}

struct EventHttpServer::Impl {
  // Declared before the io_context: sessions still queued in it when it is destroyed count
  // themselves out of `open` and release their TLS streams.
  ServerOptions options;
  RequestHandler handler;
  ErrorResponder on_error;
  std::atomic<size_t> open{0};
  std::optional<asio::ssl::context> tls;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::optional<asio::thread_pool> handlers;
  std::thread io_thread;
  Clock::time_point last_refusal_log{};  // I/O thread only
  int bound_port = 0;

  void Accept();
  void Refuse(tcp::socket socket);
};

namespace {

// One connection: TLS handshake (when configured), request, handler, response, close. Lives on
// the I/O thread; only the parsed request crosses to a handler thread and the response back.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(EventHttpServer::Impl& server, Stream stream)
      : server_(server),
        stream_(std::move(stream)),
        timer_(server.io),
        parser_(server.options.limits) {
    ++server_.open;
  }
  ~Session() { --server_.open; }

  void Start() {
    asio::error_code ec;
    auto remote = Socket().remote_endpoint(ec);
    remote_addr_ = ec ? "" : remote.address().to_string();
    Deadline(server_.options.request_timeout);
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](const asio::error_code& error) {
                                if (!error)
                                  self->Read();
                                else
                                  self->Close();
                              });
    } else {
      Read();
    }
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

  tcp::socket& Socket() {
    if constexpr (kTls)
      return stream_.next_layer();
    else
      return stream_;
  }

  // The connection closes when `after` passes: whatever it waits for then is cancelled.
  void Deadline(std::chrono::milliseconds after) {
    timer_.expires_after(after);
    timer_.async_wait([weak = this->weak_from_this()](const asio::error_code& error) {
      if (error) return;  // cancelled or re-armed
      if (auto self = weak.lock()) self->Close();
    });
  }

  void Read() {
    stream_.async_read_some(asio::buffer(chunk_), [self = this->shared_from_this()](
                                                      const asio::error_code& error, size_t n) {
      if (error) {
        self->Close();  // the client left, or the deadline closed the socket
        return;
      }
      self->OnBytes(n);
    });
  }

  void OnBytes(size_t n) {
    switch (parser_.Feed(std::string_view(chunk_.data(), n))) {
      case RequestParser::State::kNeedMore:
        if (parser_.expects_continue() && !continue_sent_) {
          continue_sent_ = true;
          Write(std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n"), false);
        } else {
          Read();
        }
        return;
      case RequestParser::State::kFailed: {
        auto response = server_.on_error(parser_.error_status(), parser_.error_message());
        Respond(SerializeResponse(response, false));
        return;
      }
      case RequestParser::State::kComplete:
        Dispatch();
        return;
    }
  }

  void Dispatch() {
    timer_.cancel();  // the handler's time is not the client's to spend
    Request request = parser_.request();
    request.remote_addr = remote_addr_;
    if constexpr (kTls) {
      request.client_cert_verified = ClientCertificateVerified(stream_.native_handle());
    }
    bool head = request.method == "HEAD";
    asio::post(*server_.handlers,
               [self = this->shared_from_this(), request = std::move(request), head]() mutable {
                 HttpResponse response;
                 try {
                   response = self->server_.handler(request);
                 } catch (const std::exception& e) {
                   PGHA_LOG_ERROR("{}: {} {} failed: {}", self->server_.options.name,
                                  request.method, request.path, e.what());
                   response = self->server_.on_error(500, "internal error");
                 }
                 auto bytes = SerializeResponse(response, head);
                 asio::post(self->server_.io, [self, bytes = std::move(bytes)]() mutable {
                   self->Respond(std::move(bytes));
                 });
               });
  }

  void Respond(std::string bytes) {
    Deadline(server_.options.response_timeout);
    Write(std::make_shared<std::string>(std::move(bytes)), true);
  }

  void Write(std::shared_ptr<std::string> bytes, bool last) {
    asio::async_write(
        stream_, asio::buffer(*bytes),
        [self = this->shared_from_this(), bytes, last](const asio::error_code& error, size_t) {
          if (error) {
            self->Close();
          } else if (last) {
            self->Finish();
          } else {
            self->Read();
          }
        });
  }

  void Finish() {
    if constexpr (kTls) {
      stream_.async_shutdown(
          [self = this->shared_from_this()](const asio::error_code&) { self->Close(); });
    } else {
      Close();
    }
  }

  void Close() {
    timer_.cancel();
    asio::error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
  }

  EventHttpServer::Impl& server_;
  Stream stream_;
  asio::steady_timer timer_;
  RequestParser parser_;
  std::array<char, 4096> chunk_{};
  std::string remote_addr_;
  bool continue_sent_ = false;
};

}  // namespace

// Waits until a connection is pending, then takes it with accept4(SOCK_CLOEXEC): the agent
// starts PostgreSQL and scripts from other threads, and an inherited descriptor would keep a
// client's connection (or this port) open in them. asio's own accept cannot set the flag
// atomically.
void EventHttpServer::Impl::Accept() {
  acceptor.async_wait(tcp::acceptor::wait_read, [this](const asio::error_code& error) {
    if (error) {
      return;  // stopping: the acceptor was closed
    }
    for (;;) {
      int fd = accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        // Out of descriptors and the like: try again shortly rather than spin.
        auto retry = std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(100));
        retry->async_wait([this, retry](const asio::error_code& e) {
          if (!e) Accept();
        });
        return;
      }
      asio::error_code assign_error;
      tcp::socket socket(io);
      socket.assign(acceptor.local_endpoint(assign_error).protocol(), fd, assign_error);
      if (assign_error) {
        ::close(fd);
        continue;
      }
      if (open.load() >= options.max_connections) {
        Refuse(std::move(socket));
      } else if (tls) {
        std::make_shared<Session<asio::ssl::stream<tcp::socket>>>(
            *this, asio::ssl::stream<tcp::socket>(std::move(socket), *tls))
            ->Start();
      } else {
        std::make_shared<Session<tcp::socket>>(*this, std::move(socket))->Start();
      }
    }
    Accept();
  });
}

// Over the bound: a plain-text 503 if the socket takes it at once, then close. Never waits.
void EventHttpServer::Impl::Refuse(tcp::socket socket) {
  auto now = Clock::now();
  if (now - last_refusal_log > std::chrono::seconds(10)) {
    last_refusal_log = now;
    PGHA_LOG_WARN("{}: {} connections open, the most it keeps; refusing new ones", options.name,
                  options.max_connections);
  }
  asio::error_code ignored;
  if (!tls) {
    socket.non_blocking(true, ignored);
    auto bytes = SerializeResponse(on_error(503, "too many connections"), false);
    socket.write_some(asio::buffer(bytes), ignored);
  }
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

EventHttpServer::EventHttpServer(ServerOptions options, RequestHandler handler,
                                 ErrorResponder on_error)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->on_error = std::move(on_error);
}

EventHttpServer::~EventHttpServer() { Stop(); }

Status EventHttpServer::Start() {
  auto& s = *impl_;
  if (s.options.tls_setup) {
    s.tls.emplace(asio::ssl::context::tls_server);
    std::string error;
    if (!s.options.tls_setup(*s.tls->native_handle(), error)) {
      return Error::Invalid(fmt::format("{} TLS: {}", s.options.name, error));
    }
  }
  size_t fits = RaiseOpenFileLimit(s.options.max_connections);
  if (fits < s.options.max_connections) {
    PGHA_LOG_WARN("{}: the open-file limit allows {} connections, not {}", s.options.name, fits,
                  s.options.max_connections);
    s.options.max_connections = fits;
  }
  asio::error_code ec;
  auto address = asio::ip::make_address(s.options.host.empty() ? "0.0.0.0" : s.options.host, ec);
  if (ec) {
    // A host name: listen on what it resolves to first.
    tcp::resolver resolver(s.io);
    auto found = resolver.resolve(s.options.host, std::to_string(s.options.port), ec);
    if (ec || found.empty()) {
      return Error::Invalid(
          fmt::format("{}: cannot resolve listen host '{}'", s.options.name, s.options.host));
    }
    address = found.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(s.options.port));
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    // Not inherited by the PostgreSQL and scripts the agent starts: a paused agent's postmaster
    // outlives it and would otherwise keep this port, so the next agent could not listen.
    (void)fcntl(s.acceptor.native_handle(), F_SETFD, FD_CLOEXEC);
    s.acceptor.non_blocking(true, ec);
  }
  if (!ec) {
    // SO_REUSEADDR only: a port taken by another agent must be an error, not a shared port
    // that splits the health checks between two nodes.
    s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::Unavailable(fmt::format("{} cannot listen on {}:{} (address in use?): {}",
                                          s.options.name, s.options.host, s.options.port,
                                          ec.message()));
  }
  s.bound_port = s.acceptor.local_endpoint(ec).port();
  s.handlers.emplace(s.options.handler_threads);
  s.Accept();
  s.io_thread = std::thread([&s] { s.io.run(); });
  return OkStatus();
}

void EventHttpServer::Stop() {
  auto& s = *impl_;
  if (!s.io_thread.joinable()) {
    return;
  }
  asio::post(s.io, [&s] {
    asio::error_code ignored;
    s.acceptor.close(ignored);
  });
  if (s.handlers) {
    s.handlers->join();  // running handlers finish; their answers are dropped below
  }
  s.io.stop();
  s.io_thread.join();
}

size_t EventHttpServer::open_connections() const { return impl_->open.load(); }

int EventHttpServer::port() const { return impl_->bound_port; }

}  // namespace pgha::api::http
