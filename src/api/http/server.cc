#include "api/http/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <future>
#include <thread>

#include "common/log.h"
#include "common/strings.h"

namespace pgha::api::http {

namespace {

// Patroni's requests are a few hundred bytes; anything near this is not a REST call.
constexpr size_t kMaxBodyBytes = 1 << 20;

int PasswordCallback(char* buffer, int size, int /*rwflag*/, void* userdata) {
  const auto* password = static_cast<const std::string*>(userdata);
  int n = std::min<int>(size, static_cast<int>(password->size()));
  std::memcpy(buffer, password->data(), static_cast<size_t>(n));
  return n;
}

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  if (code == 0) {
    return "unknown TLS error";
  }
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Configures the server context as Patroni's restapi section describes; on failure `error`
// says which file or setting was refused.
bool SetUpTls(SSL_CTX& ctx, const config::RestApiConfig& config, std::string& error) {
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(&ctx, PasswordCallback);
  SSL_CTX_set_default_passwd_cb_userdata(&ctx, const_cast<std::string*>(&config.keyfile_password));
  std::string keyfile = config.keyfile.empty() ? config.certfile : config.keyfile;
  if (SSL_CTX_use_certificate_chain_file(&ctx, config.certfile.c_str()) != 1) {
    error = fmt::format("restapi.certfile {}: {}", config.certfile, OpenSslError());
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, keyfile.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(&ctx) != 1) {
    error = fmt::format("restapi.keyfile {}: {}", keyfile, OpenSslError());
    return false;
  }
  if (!config.ciphers.empty() && SSL_CTX_set_cipher_list(&ctx, config.ciphers.c_str()) != 1) {
    error = fmt::format("restapi.ciphers '{}': {}", config.ciphers, OpenSslError());
    return false;
  }
  if (!config.cafile.empty()) {
    if (SSL_CTX_load_verify_locations(&ctx, config.cafile.c_str(), nullptr) != 1) {
      error = fmt::format("restapi.cafile {}: {}", config.cafile, OpenSslError());
      return false;
    }
    SSL_CTX_set_client_CA_list(&ctx, SSL_load_client_CA_file(config.cafile.c_str()));
  }
  if (config.verify_client == "required") {
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else if (config.verify_client == "optional") {
    // Accept the handshake either way; unsafe methods then demand a verified certificate.
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER,
                       [](int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; });
  }
  return true;
}

bool ClientCertificateVerified(const httplib::Request& req) {
  if (req.ssl == nullptr) {
    return false;
  }
  X509* cert = SSL_get_peer_certificate(req.ssl);
  if (cert == nullptr) {
    return false;
  }
  X509_free(cert);
  return SSL_get_verify_result(req.ssl) == X509_V_OK;
}

std::string HttpErrorText(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "no such endpoint for this method";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    default:
      return fmt::format("HTTP error {}", status);
  }
}

Request ToRequest(const httplib::Request& req) {
  Request request;
  request.method = req.method;
  request.path = req.path;
  for (const auto& [k, v] : req.params) {
    request.query.emplace(k, v);
  }
  for (const auto& [k, v] : req.headers) {
    request.headers[ToLower(k)] = v;
  }
  request.body = req.body;
  request.remote_addr = req.remote_addr;
  request.client_cert_verified = ClientCertificateVerified(req);
  return request;
}

}  // namespace

Result<std::vector<Network>> ResolveAllowlist(const std::vector<std::string>& entries) {
  std::vector<Network> networks;
  for (const auto& entry : entries) {
    if (auto network = ParseNetwork(entry); network.ok()) {
      networks.push_back(*network);
      continue;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(entry.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
      return Error::Invalid(fmt::format(
          "restapi.allowlist entry '{}' is neither an address, a network nor a resolvable host",
          entry));
    }
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* address =
          a->ai_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
      if (inet_ntop(a->ai_family, address, text, sizeof text) != nullptr) {
        if (auto network = ParseNetwork(text); network.ok()) {
          networks.push_back(*network);
        }
      }
    }
    freeaddrinfo(found);
  }
  return networks;
}

RestServer::RestServer(const config::RestApiConfig& config, std::function<ApiState()> state,
                       Controller* controller)
    : config_(config), state_(std::move(state)), controller_(controller) {}

RestServer::~RestServer() { Stop(); }

Status RestServer::Start() {
  auto allowlist = ResolveAllowlist(config_.allowlist);
  if (!allowlist.ok()) {
    return allowlist.error();
  }
  policy_.allowlist = *allowlist;
  policy_.allowlist_include_members = config_.allowlist_include_members;
  policy_.authentication = config_.authentication;
  tls_ = !config_.certfile.empty();
  policy_.require_client_cert =
      tls_ && (config_.verify_client == "required" || config_.verify_client == "optional");
  if (tls_) {
    std::string tls_error;
    server_ = std::make_unique<httplib::SSLServer>(
        [&](SSL_CTX& ctx) { return SetUpTls(ctx, config_, tls_error); });
    if (!server_->is_valid()) {
      return Error::Invalid("REST API TLS: " + tls_error);
    }
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  const auto& extra_headers = tls_ ? config_.https_extra_headers : config_.http_extra_headers;
  auto handler = [this, &extra_headers](const httplib::Request& req, httplib::Response& res) {
    Reply reply = HandleRequest(ToRequest(req), state_(), policy_, controller_);
    res.status = reply.status;
    for (const auto& [name, value] : extra_headers) {
      res.set_header(name, value);
    }
    for (const auto& [name, value] : reply.headers) {
      res.set_header(name, value);
    }
    if (!reply.body.empty()) {
      res.set_content(reply.body, reply.content_type);
    } else if (req.method == "GET" || req.method == "HEAD") {
      res.set_header("Content-Type", reply.content_type);
    }
  };
  // HTTP/1.1 allows a POST without Content-Length (no body), but httplib would refuse it with
  // a bare 400 before routing; answer it as Patroni does (e.g. 501 for an unknown endpoint).
  server_->set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
    bool has_body = req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
    if (req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS" || has_body) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    handler(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->Get(".*", handler);
  server_->Options(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Patch(".*", handler);
  server_->Delete(".*", handler);
  // Errors httplib answers itself (413 too large, 400 unparsable, 404 unknown method) get the
  // same plain-text shape as ours.
  // Our own status-only replies (HEAD, OPTIONS health checks) stay without a body.
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    bool status_only = req.method == "HEAD" || req.method == "OPTIONS";
    if (res.body.empty() && !status_only && !res.has_header("Content-Type")) {
      Reply reply = ErrorReply(res.status, HttpErrorText(res.status));
      res.set_content(reply.body, reply.content_type);
    }
  });
  server_->set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
        PGHA_LOG_ERROR("REST API: {} {} failed with an exception", req.method, req.path);
        res.status = 500;
        Reply reply = ErrorReply(500, "internal error");
        res.set_content(reply.body, reply.content_type);
      });
  // httplib's default adds SO_REUSEPORT, which would let a second agent share this port and
  // split the health checks between two nodes; a taken port must be an error instead.
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
  server_->set_payload_max_length(kMaxBodyBytes);
  std::string host = config_.listen_address.host;
  if (!server_->bind_to_port(host.c_str(), config_.listen_address.port)) {
    return Error::Unavailable(fmt::format("REST API cannot listen on {} (address in use?)",
                                          config_.listen_address.ToString()));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs; a Stop() right after Start() would
  // otherwise leave the thread serving forever.
  for (int i = 0; i < 500 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  PGHA_LOG_INFO("REST API listening on {}://{}", tls_ ? "https" : "http",
                config_.listen_address.ToString());
  return OkStatus();
}

void RestServer::Stop() {
  if (server_) {
    server_->stop();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

namespace {

bool PostFailsafeTo(const std::string& api_url, const std::string& body,
                    const ClientOptions& options) {
  auto result = CallMember(api_url, "POST", "/failsafe", body, options);
  return result.ok() && result->status == 200 && result->body == "Accepted";
}

ha::PeerStatus FetchOne(const model::Member& member, const ClientOptions& options) {
  ha::PeerStatus unreachable;
  unreachable.name = member.name;
  std::string url = member.api_url();
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    return unreachable;
  }
  size_t path_start = url.find('/', scheme + 3);
  std::string path = path_start == std::string::npos ? "/patroni" : url.substr(path_start);
  auto result = CallMember(url, "GET", path, "", options);
  if (!result.ok() || result->status != 200) {
    return unreachable;
  }
  return agent::PeerStatusFromJson(member.name, result->body);
}

}  // namespace

std::vector<bool> HttpPeerClient::PostFailsafe(const std::vector<std::string>& api_urls,
                                               const std::string& body) {
  std::vector<std::future<bool>> pending;
  for (const auto& url : api_urls) {
    pending.push_back(
        std::async(std::launch::async, PostFailsafeTo, url, body, std::cref(options_)));
  }
  std::vector<bool> out;
  for (auto& f : pending) {
    out.push_back(f.get());
  }
  return out;
}

std::vector<ha::PeerStatus> HttpPeerClient::FetchAll(const std::vector<model::Member>& members) {
  std::vector<std::future<ha::PeerStatus>> pending;
  for (const auto& m : members) {
    pending.push_back(std::async(std::launch::async, FetchOne, m, std::cref(options_)));
  }
  std::vector<ha::PeerStatus> out;
  for (auto& f : pending) {
    out.push_back(f.get());
  }
  return out;
}

}  // namespace pgha::api::http
