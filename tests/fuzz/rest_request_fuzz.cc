// Any bytes as a REST request ("METHOD /path?query\nheader: value\n\nbody") and as a member
// key's value: the API answers every request with a status code, never crashes, and every
// error reply is a JSON object with an "error" field.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "api/access.h"
#include "api/rest_api.h"
#include "model/cluster_view.h"
#include "model/codec.h"

namespace {

pgha::api::Request ParseRequest(const std::string& input) {
  pgha::api::Request request;
  std::istringstream in(input);
  std::string target;
  in >> request.method >> target;
  size_t q = target.find('?');
  request.path = target.substr(0, q);
  if (q != std::string::npos) {
    std::istringstream query(target.substr(q + 1));
    std::string pair;
    while (std::getline(query, pair, '&')) {
      size_t eq = pair.find('=');
      request.query.emplace(pair.substr(0, eq), eq == std::string::npos ? "" : pair.substr(eq + 1));
    }
  }
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && !line.empty()) {
    size_t colon = line.find(':');
    request.headers[line.substr(0, colon)] =
        colon == std::string::npos ? "" : line.substr(colon + 1);
  }
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  request.body = body;
  request.headers["content-length"] = std::to_string(body.size());
  request.remote_addr = request.Header("x-remote").value_or("127.0.0.1");
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  pgha::api::ApiState state;
  state.node.scope = "fuzz";
  auto snapshot = std::make_shared<pgha::model::ClusterSnapshot>();
  if (auto member = pgha::model::DecodeMember("m", input); member.ok()) {
    snapshot->members.push_back(*member);
  }
  snapshot->leader = pgha::model::Leader{"m", 1, 1};
  state.cluster = snapshot;
  (void)pgha::model::ClusterAsJson(*snapshot).dump();

  pgha::api::AccessPolicy policy;
  policy.authentication = pgha::config::BasicAuth{"admin", "secret"};
  if (auto network = pgha::api::ParseNetwork(input.substr(0, 64)); network.ok()) {
    policy.allowlist.push_back(*network);
  }
  policy.allowlist_include_members = true;
  pgha::api::Request request = ParseRequest(input);
  pgha::api::Reply reply = pgha::api::HandleRequest(request, state, policy);
  if (reply.status < 200 || reply.status > 599) {
    __builtin_trap();
  }
  if (reply.status >= 400 && reply.status != 503 && !reply.body.empty()) {
    auto parsed = nlohmann::json::parse(reply.body, nullptr, false);
    if (parsed.is_discarded() || !parsed.contains("error")) {
      __builtin_trap();
    }
  }
  return 0;
}
