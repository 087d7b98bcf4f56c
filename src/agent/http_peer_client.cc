#include "agent/http_peer_client.h"

#include <future>

namespace pgha::agent {

namespace {

bool PostFailsafeTo(const std::string& api_url, const std::string& body,
                    const api::http::ClientOptions& options) {
  auto result = api::http::CallMember(api_url, "POST", "/failsafe", body, options);
  return result.ok() && result->status == 200 && result->body == "Accepted";
}

ha::PeerStatus FetchOne(const model::Member& member, const api::http::ClientOptions& options) {
  ha::PeerStatus unreachable;
  unreachable.name = member.name;
  std::string url = member.api_url();
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    return unreachable;
  }
  size_t path_start = url.find('/', scheme + 3);
  std::string path = path_start == std::string::npos ? "/patroni" : url.substr(path_start);
  auto result = api::http::CallMember(url, "GET", path, "", options);
  if (!result.ok() || result->status != 200) {
    return unreachable;
  }
  return ha::PeerStatusFromJson(member.name, result->body);
}

}  // namespace

std::vector<bool> HttpPeerClient::PostFailsafe(const std::vector<std::string>& api_urls,
                                               const std::string& body) {
  std::vector<std::future<bool>> pending;
  for (const auto& url : api_urls) {
    pending.push_back(
        std::async(std::launch::async, PostFailsafeTo, url, body, std::cref(options_)));
  }
  std::vector<bool> out;
  for (auto& f : pending) {
    out.push_back(f.get());
  }
  return out;
}

std::vector<ha::PeerStatus> HttpPeerClient::FetchAll(const std::vector<model::Member>& members) {
  std::vector<std::future<ha::PeerStatus>> pending;
  for (const auto& m : members) {
    pending.push_back(std::async(std::launch::async, FetchOne, m, std::cref(options_)));
  }
  std::vector<ha::PeerStatus> out;
  for (auto& f : pending) {
    out.push_back(f.get());
  }
  return out;
}

}  // namespace pgha::agent
