// Any bytes as a REST request ("METHOD /path?query\nheader: value\n\nbody") and as a member
// key's value: the API answers every request with a status code, never crashes, and every
// error reply (other than a health check's 503) says why in Patroni's plain text.
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

// Carries out control requests against the fuzzed cluster, without I/O or waiting.
class FuzzController final : public pgha::api::Controller {
 public:
  explicit FuzzController(pgha::model::ClusterSnapshot cluster) : cluster_(std::move(cluster)) {}
  pgha::Result<pgha::model::ClusterSnapshot> ReadCluster() override { return cluster_; }
  pgha::Result<bool> WriteConfig(const std::string&, int64_t) override { return true; }
  pgha::Result<bool> WriteFailover(const std::string& value, std::optional<int64_t>) override {
    // What the API writes must decode as the failover key it means.
    if (!pgha::model::DecodeFailover(value).ok()) {
      __builtin_trap();
    }
    return true;
  }
  std::vector<pgha::ha::PeerStatus> FetchStatuses(
      const std::vector<pgha::model::Member>& members) override {
    std::vector<pgha::ha::PeerStatus> out(members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      out[i].name = members[i].name;
      out[i].reachable = i % 2 == 0;
    }
    return out;
  }
  pgha::Status RestartPostgres(std::chrono::seconds) override { return pgha::OkStatus(); }
  pgha::Status Reinitialize(bool, bool) override { return pgha::OkStatus(); }
  pgha::Status Reload() override { return pgha::OkStatus(); }
  pgha::Status ScheduleRestart(pgha::WallTime, const nlohmann::json&,
                               const pgha::model::RestartConditions&,
                               std::chrono::seconds) override {
    return pgha::OkStatus();
  }
  bool CancelScheduledRestart() override { return false; }
  void AcceptFailsafeLeader(const std::string&, const std::string&, const std::string&,
                            const std::map<std::string, uint64_t>&) override {}
  pgha::WallTime Now() override { return pgha::WallTime{} + std::chrono::hours(24 * 365 * 56); }
  void Sleep(std::chrono::milliseconds) override {}

 private:
  pgha::model::ClusterSnapshot cluster_;
};

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
  FuzzController controller(*snapshot);
  pgha::api::Reply reply = pgha::api::HandleRequest(request, state, policy, &controller);
  if (reply.status < 200 || reply.status > 599) {
    __builtin_trap();
  }
  // Errors are Patroni's plain text (a HEAD's reply has no body): patronictl prints them.
  bool text_reply = reply.content_type == "text/plain";
  if (reply.status >= 400 && reply.status != 503 && !reply.body.empty() && !text_reply) {
    __builtin_trap();
  }
  return 0;
}
