#include <fmt/format.h>
#include <httplib.h>

#include <mutex>
#include <utility>
#include <vector>

#include "dcs/etcd3/http_transport.h"

namespace pgha::dcs::etcd3 {

// abort_ is called with mutex_ held: the stream's thread clears it (SetAbort(nullptr)) before
// it destroys the client that abort_ stops, so the client cannot be freed under the call.
void StreamCanceller::Cancel() {
  MutexLock lock(mutex_);
  cancelled_ = true;
  if (abort_) {
    abort_();
  }
}

void StreamCanceller::Interrupt() {
  MutexLock lock(mutex_);
  interrupted_ = true;
  if (abort_) {
    abort_();
  }
}

bool StreamCanceller::TakeInterrupt() {
  MutexLock lock(mutex_);
  return std::exchange(interrupted_, false);
}

bool StreamCanceller::cancelled() const {
  MutexLock lock(mutex_);
  return cancelled_;
}

void StreamCanceller::SetAbort(std::function<void()> abort) {
  MutexLock lock(mutex_);
  abort_ = std::move(abort);
}

namespace {

Error FromHttplibError(httplib::Error error, const std::string& base_url) {
  std::string what = httplib::to_string(error);
  if (error == httplib::Error::Read || error == httplib::Error::Write) {
    // httplib reports a read timeout as a Read error; the caller's deadline decides.
    return Error::Unavailable(fmt::format("{}: {}", base_url, what));
  }
  if (error == httplib::Error::ConnectionTimeout) {
    return Error::Timeout(fmt::format("{}: {}", base_url, what));
  }
  return Error::Unavailable(fmt::format("{}: {}", base_url, what));
}

template <typename Rep, typename Period>
std::pair<time_t, time_t> SecUsec(std::chrono::duration<Rep, Period> d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 1000) {
    us = 1000;
  }
  return {static_cast<time_t>(us / 1000000), static_cast<time_t>(us % 1000000)};
}

class HttplibTransport final : public HttpTransport {
 public:
  explicit HttplibTransport(TlsOptions tls) : tls_(std::move(tls)) {}

  Result<HttpResponse> Post(const std::string& base_url, const std::string& path,
                            const std::string& body, const HttpHeaders& headers,
                            std::chrono::milliseconds timeout) override {
    return Call(base_url, "POST", path, body, headers, timeout);
  }

  Result<HttpResponse> Get(const std::string& base_url, const std::string& path,
                           const HttpHeaders& headers, std::chrono::milliseconds timeout) override {
    return Call(base_url, "GET", path, "", headers, timeout);
  }

  Result<int> PostStream(const std::string& base_url, const std::string& path,
                         const std::string& body, const HttpHeaders& headers,
                         std::chrono::milliseconds connect_timeout,
                         std::chrono::milliseconds idle_timeout,
                         const std::function<bool(std::string_view)>& on_data,
                         StreamCanceller* canceller) override {
    // A stream gets its own connection: it is never returned to the pool.
    auto client = NewClient(base_url);
    auto [cs, cu] = SecUsec(connect_timeout);
    client->set_connection_timeout(cs, cu);
    auto [rs, ru] = SecUsec(idle_timeout);
    client->set_read_timeout(rs, ru);
    client->set_write_timeout(cs, cu);
    if (canceller != nullptr) {
      canceller->SetAbort([raw = client.get()] { raw->stop(); });
      if (canceller->cancelled()) {
        canceller->SetAbort(nullptr);
        return Error::Unavailable("stream cancelled");
      }
    }
    httplib::Request request;
    request.method = "POST";
    request.path = path;
    request.headers = ToHeaders(headers);
    request.body = body;
    request.set_header("Content-Type", "application/json");
    int status = 0;
    request.response_handler = [&status](const httplib::Response& response) {
      status = response.status;
      return true;
    };
    request.content_receiver = [&on_data](const char* data, size_t length, uint64_t, uint64_t) {
      return on_data(std::string_view(data, length));
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    bool sent = client->send(request, response, error);
    if (canceller != nullptr) {
      canceller->SetAbort(nullptr);
    }
    if (status != 0) {
      return status;  // the server answered; the stream ended (or was stopped) after that
    }
    if (!sent) {
      return FromHttplibError(error, base_url);
    }
    return response.status;
  }

 private:
  static httplib::Headers ToHeaders(const HttpHeaders& headers) {
    httplib::Headers out;
    for (const auto& [k, v] : headers) {
      out.emplace(k, v);
    }
    return out;
  }

  std::unique_ptr<httplib::Client> NewClient(const std::string& base_url) {
    std::unique_ptr<httplib::Client> client;
    if (!tls_.cert.empty()) {
      client = std::make_unique<httplib::Client>(base_url, tls_.cert,
                                                 tls_.key.empty() ? tls_.cert : tls_.key);
    } else {
      client = std::make_unique<httplib::Client>(base_url);
    }
    if (base_url.rfind("https://", 0) == 0) {
      if (!tls_.cacert.empty()) {
        client->set_ca_cert_path(tls_.cacert);
      }
      client->enable_server_certificate_verification(tls_.verify);
    }
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);
    return client;
  }

  // etcd's gateway ends every error response with an HTTP trailer
  // (Grpc-Trailer-Content-Type), which this httplib version cannot parse: it reports a Read
  // error after the whole body has arrived. So the status and body are captured as they come,
  // and a response whose status line was read is returned even when the trailer was not; the
  // connection is then dropped rather than reused.
  Result<HttpResponse> Call(const std::string& base_url, const std::string& method,
                            const std::string& path, const std::string& body,
                            const HttpHeaders& headers, std::chrono::milliseconds timeout) {
    auto client = Borrow(base_url);
    auto [s, u] = SecUsec(timeout);
    client->set_connection_timeout(s, u);
    client->set_read_timeout(s, u);
    client->set_write_timeout(s, u);
    httplib::Request request;
    request.method = method;
    request.path = path;
    request.headers = ToHeaders(headers);
    if (method == "POST") {
      request.body = body;
      request.set_header("Content-Type", "application/json");
    }
    HttpResponse captured;
    request.response_handler = [&captured](const httplib::Response& response) {
      captured.status = response.status;
      return true;
    };
    request.content_receiver = [&captured](const char* data, size_t length, uint64_t, uint64_t) {
      captured.body.append(data, length);
      return captured.body.size() < kMaxBody;
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    bool sent = client->send(request, response, error);
    if (!sent) {
      if (captured.status != 0 && error == httplib::Error::Read) {
        return captured;
      }
      return FromHttplibError(error, base_url);
    }
    GiveBack(base_url, std::move(client));
    return captured;
  }

  std::unique_ptr<httplib::Client> Borrow(const std::string& base_url) {
    {
      MutexLock lock(mutex_);
      auto& idle = idle_[base_url];
      if (!idle.empty()) {
        auto client = std::move(idle.back());
        idle.pop_back();
        return client;
      }
    }
    return NewClient(base_url);
  }

  void GiveBack(const std::string& base_url, std::unique_ptr<httplib::Client> client) {
    MutexLock lock(mutex_);
    auto& idle = idle_[base_url];
    if (idle.size() < kMaxIdlePerEndpoint) {
      idle.push_back(std::move(client));
    }
  }

  static constexpr size_t kMaxIdlePerEndpoint = 4;
  static constexpr size_t kMaxBody = 256u << 20;  // etcd caps requests at 1.5 MiB by default
  TlsOptions tls_;
  Mutex mutex_;
  std::map<std::string, std::vector<std::unique_ptr<httplib::Client>>> idle_ GUARDED_BY(mutex_);
};

}  // namespace

std::unique_ptr<HttpTransport> MakeHttplibTransport(TlsOptions tls) {
  return std::make_unique<HttplibTransport>(std::move(tls));
}

}  // namespace pgha::dcs::etcd3
