// The router's MemberChecker: GET on a member's REST API with the credentials and certificates
// a node presents to its peers (ctl, else restapi authentication; HTTPS not verified, as
// Patroni's own peer calls), with a deadline of one check interval.
#pragma once

#include "api/http/client.h"
#include "router/topology.h"

namespace pgha::router {

class RestMemberChecker final : public MemberChecker {
 public:
  explicit RestMemberChecker(api::http::ClientOptions options) : options_(std::move(options)) {}
  bool Answers200(const std::string& api_url, const std::string& path) override {
    auto response = api::http::CallMember(api_url, "GET", path, "", options_);
    return response.ok() && response->status == 200;
  }

 private:
  const api::http::ClientOptions options_;
};

}  // namespace pgha::router
