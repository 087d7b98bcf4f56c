#include "api/http/server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <future>

#include "api/health.h"
#include "common/log.h"

namespace pgha::api::http {

RestServer::RestServer(const config::RestApiConfig& config,
                       std::function<agent::NodeStatus()> status)
    : config_(config), status_(std::move(status)), server_(std::make_unique<httplib::Server>()) {}

RestServer::~RestServer() { Stop(); }

Status RestServer::Start() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    Request request;
    request.method = req.method;
    request.path = req.path;
    for (const auto& [k, v] : req.params) {
      request.query.emplace(k, v);
    }
    Reply reply = Handle(request, status_());
    res.status = reply.status;
    if (!reply.body.empty()) {
      res.set_content(reply.body, reply.content_type);
    } else if (req.method == "GET" || req.method == "HEAD") {
      res.set_header("Content-Type", reply.content_type);
    }
  };
  server_->Get(".*", handler);
  server_->Options(".*", handler);
  auto unsupported = [](const httplib::Request& req, httplib::Response& res) {
    res.status = 501;
    res.set_content(
        fmt::format("{{\"error\": \"{} {} is not implemented yet\"}}", req.method, req.path),
        "application/json");
  };
  server_->Post(".*", unsupported);
  server_->Put(".*", unsupported);
  server_->Patch(".*", unsupported);
  server_->Delete(".*", unsupported);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_payload_max_length(1 << 20);
  std::string host = config_.listen_address.host;
  if (!server_->bind_to_port(host.c_str(), config_.listen_address.port)) {
    return Error::Unavailable(fmt::format("REST API cannot listen on {} (address in use?)",
                                          config_.listen_address.ToString()));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  PGHA_LOG_INFO("REST API listening on {}", config_.listen_address.ToString());
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

ha::PeerStatus FetchOne(const model::Member& member) {
  ha::PeerStatus unreachable;
  unreachable.name = member.name;
  std::string url = member.api_url();
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    return unreachable;
  }
  size_t path_start = url.find('/', scheme + 3);
  std::string base = url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/patroni" : url.substr(path_start);
  httplib::Client client(base);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  client.set_write_timeout(2, 0);
  client.enable_server_certificate_verification(false);
  auto result = client.Get(path.c_str());
  if (!result || result->status != 200) {
    return unreachable;
  }
  return agent::PeerStatusFromJson(member.name, result->body);
}

}  // namespace

std::vector<ha::PeerStatus> HttpPeerClient::FetchAll(const std::vector<model::Member>& members) {
  std::vector<std::future<ha::PeerStatus>> pending;
  for (const auto& m : members) {
    pending.push_back(std::async(std::launch::async, FetchOne, m));
  }
  std::vector<ha::PeerStatus> out;
  for (auto& f : pending) {
    out.push_back(f.get());
  }
  return out;
}

}  // namespace pgha::api::http
