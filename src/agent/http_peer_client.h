// HttpPeerClient: the agent's PeerClient over members' REST APIs, on the HTTP client that
// pghactl and the router use (api/http/client.h), so peers get the same auth and TLS.
#pragma once

#include <string>
#include <vector>

#include "api/http/client.h"
#include "ha/peer_client.h"

namespace pgha::agent {

class HttpPeerClient final : public ha::PeerClient {
 public:
  // `options`: see PeerOptions (api/http/client.h).
  explicit HttpPeerClient(api::http::ClientOptions options) : options_(std::move(options)) {}
  std::vector<ha::PeerStatus> FetchAll(const std::vector<model::Member>& members) override;
  std::vector<bool> PostFailsafe(const std::vector<std::string>& api_urls,
                                 const std::string& body) override;

 private:
  const api::http::ClientOptions options_;
};

}  // namespace pgha::agent
