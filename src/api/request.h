// A REST request and its reply as plain values, so every rule of the API is a pure function
// tested without sockets; api/http adapts them to cpp-httplib.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace pgha::api {

struct Request {
  std::string method;  // GET, HEAD, OPTIONS, POST, ...
  std::string path;    // without the query string
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote_addr;            // the peer's IP address, as text
  bool client_cert_verified = false;  // a TLS client certificate was presented and verified

  std::optional<std::string> Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::nullopt : std::optional(it->second);
  }
};

struct Reply {
  int status = 200;
  std::string body;  // empty for HEAD and OPTIONS
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
};

// A 4xx/5xx reply whose body is `message` as plain text, as Patroni answers errors (patronictl
// prints the body as it is).
Reply ErrorReply(int status, const std::string& message);

}  // namespace pgha::api
