// Who may call the REST API's unsafe methods (Patroni's check_access): the IP allowlist, then a
// verified client certificate when `verify_client` asks for one, then Basic authentication.
// Read-only endpoints are open to everyone, as in Patroni.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "api/request.h"
#include "common/result.h"
#include "config/config.h"
#include "model/cluster.h"

namespace pgha::api {

// An IPv4 or IPv6 network; a plain address is a /32 or /128.
struct Network {
  bool v6 = false;
  std::array<unsigned char, 16> address{};
  int prefix_length = 0;

  bool Contains(const std::string& ip) const;
};

// "10.0.0.0/8", "127.0.0.1", "::1", "fe80::/10". Host names are not networks (see AccessPolicy).
Result<Network> ParseNetwork(const std::string& text);

struct AccessPolicy {
  std::optional<config::BasicAuth> authentication;
  // restapi.allowlist with host names already resolved; empty = everyone.
  std::vector<Network> allowlist;
  bool allowlist_include_members = false;
  bool require_client_cert = false;  // verify_client optional/required over TLS
};

// nullopt when the request may proceed; else the 401/403 reply.
std::optional<Reply> CheckAccess(const Request& request, const AccessPolicy& policy,
                                 const model::ClusterSnapshot* cluster);

}  // namespace pgha::api
