#include "fakes/fake_http_transport.h"

#include <nlohmann/json.hpp>

namespace pgha::testing {

using dcs::etcd3::HttpResponse;

Result<HttpResponse> FakeHttpTransport::Post(const std::string& base_url, const std::string& path,
                                             const std::string& body,
                                             const dcs::etcd3::HttpHeaders& headers,
                                             std::chrono::milliseconds) {
  RecordedRequest request{"POST", base_url, path, body, headers};
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  return handler_ ? handler_(request) : Error::Unavailable("no handler");
}

Result<HttpResponse> FakeHttpTransport::Get(const std::string& base_url, const std::string& path,
                                            const dcs::etcd3::HttpHeaders& headers,
                                            std::chrono::milliseconds) {
  RecordedRequest request{"GET", base_url, path, "", headers};
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  return handler_ ? handler_(request) : Error::Unavailable("no handler");
}

Result<int> FakeHttpTransport::PostStream(const std::string& base_url, const std::string& path,
                                          const std::string& body,
                                          const dcs::etcd3::HttpHeaders& headers,
                                          std::chrono::milliseconds, std::chrono::milliseconds,
                                          const std::function<bool(std::string_view)>& on_data,
                                          dcs::etcd3::StreamCanceller* canceller) {
  RecordedRequest request{"STREAM", base_url, path, body, headers};
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  if (!stream_handler_) {
    return Error::Unavailable("no stream handler");
  }
  ScriptedStream stream = stream_handler_(request);
  if (!stream.status.ok()) {
    return stream.status;
  }
  for (const auto& piece : stream.pieces) {
    if (canceller != nullptr && canceller->cancelled()) {
      break;
    }
    if (!on_data(piece)) {
      break;
    }
  }
  return stream.status;
}

std::vector<RecordedRequest> FakeHttpTransport::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

FakeHttpTransport::Handler EtcdDiscovery(std::vector<std::string> client_urls,
                                         FakeHttpTransport::Handler rest) {
  return [client_urls, rest](const RecordedRequest& r) -> Result<HttpResponse> {
    if (r.path == "/version") {
      return HttpResponse{200, R"({"etcdserver":"3.4.23","etcdcluster":"3.4.0"})"};
    }
    if (r.path == "/v3/cluster/member/list") {
      nlohmann::json members = nlohmann::json::array();
      int id = 1;
      for (const auto& url : client_urls) {
        members.push_back({{"ID", std::to_string(id++)}, {"clientURLs", {url}}});
      }
      return HttpResponse{200, nlohmann::json{{"members", members}}.dump()};
    }
    return rest(r);
  };
}

}  // namespace pgha::testing
