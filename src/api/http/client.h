// Calls to a member's REST API, from pghactl (patronictl's request_patroni) and from one agent to
// another (status for the leader race, POST /failsafe): Basic authentication, a client
// certificate, and HTTPS verified against a CA unless insecure.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.h"
#include "config/config.h"

namespace pgha::api::http {

struct ClientResponse {
  int status = 0;
  std::string body;
};

struct ClientOptions {
  std::optional<config::BasicAuth> authentication;
  std::string cacert, certfile, keyfile;
  bool insecure = false;
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds read_timeout{30};
};

// What pghactl presents, as patronictl: credentials from ctl.authentication, else
// restapi.authentication; ctl's certificate, key and CA; the server verified unless `insecure`
// or ctl.insecure.
ClientOptions CtlOptions(const config::Config& config, bool insecure);

// What one agent presents to another, by Patroni's rules for its own requests: credentials from
// ctl.authentication, else restapi.authentication; the client certificate and key from ctl,
// else restapi (so a member can call peers that set verify_client: required); the server is not
// verified (Patroni's agent calls its peers insecure), and every call gives up after 2 s.
ClientOptions PeerOptions(const config::Config& config);

// `api_url` as a member key holds it ("http://10.0.0.1:8008/patroni"); `path` replaces its path.
Result<ClientResponse> CallMember(const std::string& api_url, const std::string& method,
                                  const std::string& path, const std::string& json_body,
                                  const ClientOptions& options);

}  // namespace pgha::api::http
