// FakeHttpTransport: a scripted etcd gateway for unit tests of the etcd3 client. Each request
// is recorded; a handler decides the answer. Streams are served as a list of body pieces.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "dcs/etcd3/http_transport.h"

namespace pgha::testing {

struct RecordedRequest {
  std::string method;
  std::string base_url;
  std::string path;
  std::string body;
  dcs::etcd3::HttpHeaders headers;
};

struct ScriptedStream {
  Result<int> status = 200;
  std::vector<std::string> pieces;
};

class FakeHttpTransport final : public dcs::etcd3::HttpTransport {
 public:
  using Handler = std::function<Result<dcs::etcd3::HttpResponse>(const RecordedRequest&)>;
  using StreamHandler = std::function<ScriptedStream(const RecordedRequest&)>;

  void SetHandler(Handler handler) { handler_ = std::move(handler); }
  void SetStreamHandler(StreamHandler handler) { stream_handler_ = std::move(handler); }

  Result<dcs::etcd3::HttpResponse> Post(const std::string& base_url, const std::string& path,
                                        const std::string& body,
                                        const dcs::etcd3::HttpHeaders& headers,
                                        std::chrono::milliseconds timeout) override;
  Result<dcs::etcd3::HttpResponse> Get(const std::string& base_url, const std::string& path,
                                       const dcs::etcd3::HttpHeaders& headers,
                                       std::chrono::milliseconds timeout) override;
  Result<int> PostStream(const std::string& base_url, const std::string& path,
                         const std::string& body, const dcs::etcd3::HttpHeaders& headers,
                         std::chrono::milliseconds connect_timeout,
                         std::chrono::milliseconds idle_timeout,
                         const std::function<bool(std::string_view)>& on_data,
                         dcs::etcd3::StreamCanceller* canceller) override;

  std::vector<RecordedRequest> requests() const;

 private:
  mutable std::mutex mutex_;
  std::vector<RecordedRequest> requests_;
  Handler handler_;
  StreamHandler stream_handler_;
};

// A handler answering /version and /cluster/member/list for the given client URLs, and
// delegating every other path to `rest`.
FakeHttpTransport::Handler EtcdDiscovery(std::vector<std::string> client_urls,
                                         FakeHttpTransport::Handler rest);

}  // namespace pgha::testing
