// PeerClient: asks other members for their status (GET <api_url>, 2 s timeout, no retry), as
// Patroni's leader race does. Implemented over HTTP in agent/http_peer_client.h; faked in tests.
#pragma once

#include <string>
#include <vector>

#include "ha/decide.h"
#include "model/cluster.h"

namespace pgha::ha {

class PeerClient {
 public:
  virtual ~PeerClient() = default;
  // One status per member asked, in the same order; unreachable members come back with
  // reachable == false. Members are asked in parallel.
  virtual std::vector<PeerStatus> FetchAll(const std::vector<model::Member>& members) = 0;
  // POST /failsafe with `body` to each REST API base URL ("http://host:port"), in parallel, 2 s
  // timeout: true for a member that answered 200 "Accepted" (failsafe_mode, Patroni's protocol).
  virtual std::vector<bool> PostFailsafe(const std::vector<std::string>& api_urls,
                                         const std::string& body) = 0;
};

// Reads a /patroni body (Patroni's or pgha's) into what the leader race compares.
PeerStatus PeerStatusFromJson(const std::string& name, const std::string& body);

}  // namespace pgha::ha
