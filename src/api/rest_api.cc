#include "api/rest_api.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "api/health.h"
#include "model/cluster_view.h"
#include "model/codec.h"
#include "model/global_config.h"

namespace pgha::api {

using nlohmann::json;

Reply ErrorReply(int status, const std::string& message) {
  Reply reply;
  reply.status = status;
  reply.body = json({{"error", message}}).dump();
  return reply;
}

namespace {

enum class Body { kNone, kOptional, kRequired };

struct UnsafeEndpoint {
  const char* method;
  const char* path;
  Body body;
};

// Patroni's unsafe endpoints and whether each reads a JSON body.
constexpr UnsafeEndpoint kUnsafeEndpoints[] = {
    {"POST", "/switchover", Body::kRequired},   {"POST", "/failover", Body::kRequired},
    {"POST", "/restart", Body::kOptional},      {"POST", "/reload", Body::kNone},
    {"POST", "/reinitialize", Body::kOptional}, {"POST", "/sigterm", Body::kNone},
    {"POST", "/failsafe", Body::kRequired},     {"POST", "/citus", Body::kRequired},
    {"POST", "/mpp", Body::kRequired},          {"PATCH", "/config", Body::kRequired},
    {"PUT", "/config", Body::kRequired},        {"DELETE", "/switchover", Body::kNone},
    {"DELETE", "/restart", Body::kNone},
};

const UnsafeEndpoint* FindUnsafe(const Request& request) {
  for (const auto& endpoint : kUnsafeEndpoints) {
    if (request.method == endpoint.method && request.path == endpoint.path) {
      return &endpoint;
    }
  }
  return nullptr;
}

// Patroni's _read_json_content: the body must be a JSON object, non-empty unless optional.
std::optional<Reply> ValidateBody(const Request& request, Body body) {
  if (body == Body::kNone) {
    return std::nullopt;
  }
  if (!request.Header("content-length")) {
    if (body == Body::kOptional) {
      return std::nullopt;
    }
    return ErrorReply(411, "a JSON body with Content-Length is required");
  }
  if (request.body.empty() && body == Body::kOptional) {
    return std::nullopt;
  }
  json parsed = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return ErrorReply(400, "the body is not valid JSON");
  }
  if (!parsed.is_object() || (parsed.empty() && body == Body::kRequired)) {
    return ErrorReply(400, "the body must be a non-empty JSON object");
  }
  return std::nullopt;
}

Reply JsonReply(int status, const std::string& body) {
  Reply reply;
  reply.status = status;
  reply.body = body;
  return reply;
}

Reply HandleRead(const Request& request, const ApiState& state) {
  if (request.method == "GET") {
    if (request.path == "/cluster") {
      if (!state.cluster) {
        return ErrorReply(503, "the cluster has not been read from the DCS yet");
      }
      auto body = model::ClusterAsJson(*state.cluster);
      body["scope"] = state.node.scope;
      return JsonReply(200, body.dump());
    }
    if (request.path == "/history") {
      auto history = state.cluster ? model::HistoryToJson(state.cluster->history)
                                   : nlohmann::ordered_json::array();
      return JsonReply(200, history.dump());
    }
    if (request.path == "/config") {
      if (!state.cluster || !state.cluster->config) {
        return ErrorReply(502, "the DCS has no dynamic configuration");
      }
      return JsonReply(200, state.cluster->config->data.raw().dump());
    }
  }
  return Handle(request, state.node);
}

// PATCH /config: a JSON merge patch (null deletes) on the newest config, validated, CAS-written.
// PUT /config: the body replaces the config whole.
Reply ChangeConfig(const Request& request, Controller& controller) {
  json body = json::parse(request.body, nullptr, false);
  auto cluster = controller.ReadCluster();
  if (!cluster.ok()) {
    return ErrorReply(503, "cannot read the cluster from the DCS: " + cluster.error().message());
  }
  json data;
  int64_t revision = 0;
  if (request.method == "PATCH") {
    if (!cluster->config) {
      return ErrorReply(503, "the DCS has no dynamic configuration to patch");
    }
    data = cluster->config->data.raw();
    data.merge_patch(body);
    revision = cluster->config->mod_revision;
  } else {
    data = body;
    revision = cluster->config ? cluster->config->mod_revision : 0;
  }
  if (auto valid = model::GlobalConfig::Validate(data); !valid.ok()) {
    return ErrorReply(400, valid.error().message());
  }
  auto written = controller.WriteConfig(data.dump(), revision);
  if (!written.ok()) {
    return ErrorReply(request.method == "PATCH" ? 503 : 502,
                      "writing the config key failed: " + written.error().message());
  }
  if (!*written) {
    return ErrorReply(409, "the config was changed while we were trying to update it");
  }
  return JsonReply(200, data.dump());
}

}  // namespace

Reply HandleRequest(const Request& request, const ApiState& state, const AccessPolicy& policy,
                    Controller* controller) {
  if (request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS") {
    return HandleRead(request, state);
  }
  const UnsafeEndpoint* endpoint = FindUnsafe(request);
  if (endpoint == nullptr) {
    return ErrorReply(501, fmt::format("unsupported method {} {}", request.method, request.path));
  }
  if (auto denied = CheckAccess(request, policy, state.cluster.get())) {
    return *denied;
  }
  if (auto invalid = ValidateBody(request, endpoint->body)) {
    return *invalid;
  }
  if (request.path == "/config") {
    if (controller == nullptr) {
      return ErrorReply(503, "this node cannot change the configuration");
    }
    return ChangeConfig(request, *controller);
  }
  // The other control endpoints (switchover, restart, ...) arrive with issue 5; until then an
  // authorised, well-formed request is told so rather than silently ignored.
  return ErrorReply(501, fmt::format("{} {} is not implemented in this version of pgha",
                                     request.method, request.path));
}

}  // namespace pgha::api
