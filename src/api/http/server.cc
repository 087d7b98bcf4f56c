#include "api/http/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>

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
    SSL_CTX_set_default_passwd_cb_userdata(&ctx, nullptr);
    error = fmt::format("restapi.certfile {}: {}", config.certfile, OpenSslError());
    return false;
  }
  bool key_loaded = SSL_CTX_use_PrivateKey_file(&ctx, keyfile.c_str(), SSL_FILETYPE_PEM) == 1 &&
                    SSL_CTX_check_private_key(&ctx) == 1;
  // The password is needed only while loading; and asio's context owns (and deletes) whatever
  // is left as the callback's user data.
  SSL_CTX_set_default_passwd_cb(&ctx, nullptr);
  SSL_CTX_set_default_passwd_cb_userdata(&ctx, nullptr);
  if (!key_loaded) {
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

Status RestServer::Start(size_t max_connections) {
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
  ServerOptions options;
  options.name = "REST API";
  options.host = config_.listen_address.host;
  options.port = config_.listen_address.port;
  options.max_connections = max_connections;
  options.limits.max_body_bytes = kMaxBodyBytes;
  if (tls_) {
    options.tls_setup = [this](SSL_CTX& ctx, std::string& error) {
      return SetUpTls(ctx, config_, error);
    };
  }
  const auto& extra_headers = tls_ ? config_.https_extra_headers : config_.http_extra_headers;
  auto handler = [this, &extra_headers](const Request& request) {
    Reply reply = HandleRequest(request, state_(), policy_, controller_);
    HttpResponse response;
    response.status = reply.status;
    if (!reply.body.empty() || request.method == "GET" || request.method == "HEAD") {
      response.headers.emplace_back("Content-Type", reply.content_type);
    }
    for (const auto& [name, value] : extra_headers) {
      response.headers.emplace_back(name, value);
    }
    for (const auto& [name, value] : reply.headers) {
      response.headers.emplace_back(name, value);
    }
    response.body = std::move(reply.body);
    return response;
  };
  // What the request parser refuses (400, 413, 414, ...) gets the same plain-text shape.
  auto on_error = [](int status, const std::string& message) {
    Reply reply = ErrorReply(status, message.empty() ? HttpErrorText(status) : message);
    HttpResponse response;
    response.status = reply.status;
    response.headers.emplace_back("Content-Type", reply.content_type);
    response.body = std::move(reply.body);
    return response;
  };
  server_ = std::make_unique<EventHttpServer>(std::move(options), handler, on_error);
  if (auto started = server_->Start(); !started.ok()) {
    server_.reset();
    return started;
  }
  PGHA_LOG_INFO("REST API listening on {}://{}", tls_ ? "https" : "http",
                config_.listen_address.ToString());
  return OkStatus();
}

void RestServer::Stop() {
  if (server_) {
    server_->Stop();
  }
}

size_t RestServer::open_connections() const { return server_ ? server_->open_connections() : 0; }

}  // namespace pgha::api::http
