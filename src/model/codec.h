// Codecs for the values Patroni keeps in the DCS (Patroni 3.0.2's key layout;
// docs/architecture.md), byte-compatible with what Patroni 3.0.2 and 4.x write. Decoders never
// throw: a bad value is an Invalid error that says which key and why. Encoders write compact JSON
// in Patroni's field order.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "model/cluster.h"

namespace pgha::model {

// Parses JSON without exceptions; `what` names the key in the error.
Result<nlohmann::json> ParseJson(std::string_view text, std::string_view what);

Result<Leader> DecodeLeader(std::string_view value);
Result<Member> DecodeMember(const std::string& name, std::string_view value);
Result<GlobalConfig> DecodeConfig(std::string_view value);
Result<std::string> DecodeInitialize(std::string_view value);
Result<ClusterStatus> DecodeStatus(std::string_view value);
Result<uint64_t> DecodeLegacyOptime(std::string_view value);
Result<std::vector<HistoryEntry>> DecodeHistory(std::string_view value);
// An empty value means "no failover requested" and decodes to nullopt.
Result<std::optional<Failover>> DecodeFailover(std::string_view value);
Result<SyncState> DecodeSync(std::string_view value);
Result<std::map<std::string, std::string>> DecodeFailsafe(std::string_view value);

// What a member writes about itself in members/<name>. Optional fields are left out when unset,
// as Patroni leaves them out.
struct MemberData {
  std::string conn_url;
  std::string api_url;
  std::string state;
  std::string role;
  std::string version;
  std::string proxy_url;
  nlohmann::json tags = nlohmann::json::object();
  std::optional<uint64_t> xlog_location;
  std::optional<uint64_t> replay_lsn;
  std::optional<uint64_t> receive_lsn;
  std::string replication_state;
  std::optional<int64_t> timeline;
  bool pending_restart = false;
  nlohmann::json pending_restart_reason;  // null when absent
  nlohmann::json scheduled_restart;       // null when absent
  bool pause = false;
  std::optional<bool> checkpoint_after_promote;
};

std::string EncodeMember(const MemberData& member);
std::string EncodeConfig(const GlobalConfig& config);
std::string EncodeStatus(const ClusterStatus& status);
std::string EncodeHistory(const std::vector<HistoryEntry>& history);
// The same value as JSON: [[timeline, lsn, reason, timestamp, new_leader], ...] (GET /history).
nlohmann::ordered_json HistoryToJson(const std::vector<HistoryEntry>& history);
std::string EncodeFailover(const Failover& failover);
std::string EncodeSync(const SyncState& sync, bool with_quorum);
std::string EncodeFailsafe(const std::map<std::string, std::string>& members);

}  // namespace pgha::model
