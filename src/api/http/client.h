// pghactl's calls to a member's REST API (patronictl's request_patroni): Basic authentication
// from ctl.authentication or restapi.authentication, HTTPS verified against ctl.cacert unless
// --insecure.
#pragma once

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
};

// `api_url` as a member key holds it ("http://10.0.0.1:8008/patroni"); `path` replaces its path.
Result<ClientResponse> CallMember(const std::string& api_url, const std::string& method,
                                  const std::string& path, const std::string& json_body,
                                  const ClientOptions& options);

}  // namespace pgha::api::http
