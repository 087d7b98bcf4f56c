// HttpTransport: the one seam between the etcd3 client and the network, so the client's logic
// (endpoint failover, auth renewal, error mapping) is tested with a scripted fake.
//
// Thread-safety: implementations must allow concurrent calls from several threads.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/mutex.h"
#include "common/result.h"

namespace pgha::dcs::etcd3 {

struct HttpResponse {
  int status = 0;
  std::string body;
};

using HttpHeaders = std::map<std::string, std::string>;

// Lets another thread end a streaming request that is blocked reading.
class StreamCanceller {
 public:
  void Cancel();
  // Aborts the stream in flight, if any, and asks the watch to return to its caller (which reads
  // the range again) instead of resuming; unlike Cancel, streams started later run.
  void Interrupt();
  bool cancelled() const;
  // Whether Interrupt was called since the last call of this; clears it.
  bool TakeInterrupt();
  // Called by the transport: registers how to abort the stream in flight (or clears it).
  void SetAbort(std::function<void()> abort);

 private:
  mutable Mutex mutex_;
  bool cancelled_ GUARDED_BY(mutex_) = false;
  bool interrupted_ GUARDED_BY(mutex_) = false;
  std::function<void()> abort_ GUARDED_BY(mutex_);
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // A POST with a JSON body to base_url + path ("http://127.0.0.1:2379" + "/v3/kv/range").
  // Returns the response for any HTTP status; an error only when no response arrived
  // (Unavailable: connection refused/reset; Timeout: the deadline passed).
  virtual Result<HttpResponse> Post(const std::string& base_url, const std::string& path,
                                    const std::string& body, const HttpHeaders& headers,
                                    std::chrono::milliseconds timeout) = 0;

  virtual Result<HttpResponse> Get(const std::string& base_url, const std::string& path,
                                   const HttpHeaders& headers,
                                   std::chrono::milliseconds timeout) = 0;

  // A POST whose response body is a long-lived stream. `on_data` receives the body as it
  // arrives (in arbitrary pieces) and returns false to stop. Returns when the stream ends,
  // is stopped, is cancelled through `canceller`, or no byte arrives for `idle_timeout`.
  // Returns the HTTP status when the server answered, else an error.
  virtual Result<int> PostStream(const std::string& base_url, const std::string& path,
                                 const std::string& body, const HttpHeaders& headers,
                                 std::chrono::milliseconds connect_timeout,
                                 std::chrono::milliseconds idle_timeout,
                                 const std::function<bool(std::string_view)>& on_data,
                                 StreamCanceller* canceller) = 0;
};

struct TlsOptions {
  std::string cacert;  // verify the server against this CA; empty = system defaults
  std::string cert;    // client certificate (PEM)
  std::string key;     // client key (PEM); may be empty when cert holds it
  bool verify = true;
};

// The real transport, over cpp-httplib with keep-alive connections pooled per endpoint.
std::unique_ptr<HttpTransport> MakeHttplibTransport(TlsOptions tls);

}  // namespace pgha::dcs::etcd3
