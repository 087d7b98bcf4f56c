#include "api/access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "common/strings.h"

namespace pgha::api {

namespace {

std::optional<Network> ParseAddress(const std::string& text) {
  Network n;
  std::string ip = text;
  // An IPv4-mapped IPv6 peer ("::ffff:10.0.0.1") is matched as the IPv4 address it carries.
  if (ip.rfind("::ffff:", 0) == 0 && ip.find('.') != std::string::npos) {
    ip = ip.substr(7);
  }
  if (inet_pton(AF_INET, ip.c_str(), n.address.data()) == 1) {
    n.prefix_length = 32;
    return n;
  }
  if (inet_pton(AF_INET6, ip.c_str(), n.address.data()) == 1) {
    n.v6 = true;
    n.prefix_length = 128;
    return n;
  }
  return std::nullopt;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Timing must not tell how many leading characters of a guessed password were right.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  }
  return diff == 0;
}

// The host part of "scheme://host:port/..." or "postgres://user@host:port/db".
std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t at = url.find('@', start);
  size_t slash = url.find('/', start);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    start = at + 1;
  }
  size_t end = url.find_first_of("/?", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!authority.empty() && authority[0] == '[') {
    return authority.substr(1, authority.find(']') - 1);
  }
  return authority.substr(0, authority.rfind(':'));
}

bool IsClusterMember(const std::string& ip, const model::ClusterSnapshot* cluster) {
  if (cluster == nullptr) {
    return false;
  }
  auto peer = ParseAddress(ip);
  for (const auto& member : cluster->members) {
    for (const std::string& url : {member.api_url(), member.conn_url()}) {
      auto host = ParseAddress(UrlHost(url));
      if (peer && host && host->Contains(ip)) {
        return true;
      }
    }
  }
  return false;
}

Reply Unauthorized(const std::string& message) {
  Reply reply = ErrorReply(401, message);
  reply.headers["WWW-Authenticate"] = "Basic realm=\"Patroni\"";
  return reply;
}

}  // namespace

bool Network::Contains(const std::string& ip) const {
  auto peer = ParseAddress(ip);
  if (!peer || peer->v6 != v6) {
    return false;
  }
  int full_bytes = prefix_length / 8;
  if (std::memcmp(peer->address.data(), address.data(), full_bytes) != 0) {
    return false;
  }
  int rest = prefix_length % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (peer->address[full_bytes] & mask) == (address[full_bytes] & mask);
}

Result<Network> ParseNetwork(const std::string& text) {
  std::string address(Trim(text));
  std::optional<int> prefix;
  if (size_t slash = address.find('/'); slash != std::string::npos) {
    auto parsed = ParseInt64(address.substr(slash + 1));
    if (!parsed) {
      return Error::Invalid("allowlist entry '" + text + "': bad prefix length");
    }
    prefix = static_cast<int>(*parsed);
    address = address.substr(0, slash);
  }
  auto network = ParseAddress(address);
  if (!network) {
    return Error::Invalid("allowlist entry '" + text + "' is not an IP address or network");
  }
  if (prefix) {
    if (*prefix < 0 || *prefix > network->prefix_length) {
      return Error::Invalid("allowlist entry '" + text + "': prefix length out of range");
    }
    network->prefix_length = *prefix;
  }
  return *network;
}

std::optional<Reply> CheckAccess(const Request& request, const AccessPolicy& policy,
                                 const model::ClusterSnapshot* cluster) {
  if (!policy.allowlist.empty() || policy.allowlist_include_members) {
    bool allowed = std::any_of(policy.allowlist.begin(), policy.allowlist.end(),
                               [&](const Network& n) { return n.Contains(request.remote_addr); });
    if (!allowed && policy.allowlist_include_members) {
      allowed = IsClusterMember(request.remote_addr, cluster);
    }
    if (!allowed) {
      return ErrorReply(403, "Access is denied");
    }
  }
  if (policy.require_client_cert && !request.client_cert_verified) {
    return ErrorReply(403, "Access is denied: a client certificate is required");
  }
  if (policy.authentication) {
    auto header = request.Header("authorization");
    if (!header) {
      return Unauthorized("no auth header received");
    }
    const std::string prefix = "Basic ";
    if (header->rfind(prefix, 0) != 0) {
      return Unauthorized("not authenticated");
    }
    auto decoded = Base64Decode(Trim(header->substr(prefix.size())));
    std::string expected = policy.authentication->username + ":" + policy.authentication->password;
    if (!decoded.ok() || !ConstantTimeEquals(*decoded, expected)) {
      return Unauthorized("not authenticated");
    }
  }
  return std::nullopt;
}

}  // namespace pgha::api
