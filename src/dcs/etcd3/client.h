// Etcd3Client: etcd's v3 API through its gRPC-JSON gateway, the way Patroni's etcd3 module
// speaks it (docs/architecture.md): every RPC a POST with a JSON body, keys and values base64,
// int64s as strings. It discovers the API prefix from /version, the cluster's client URLs from
// /cluster/member/list, and moves to another member when one stops answering.
//
// Thread-safety: all methods may be called concurrently from several threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "dcs/etcd3/http_transport.h"

namespace pgha::dcs::etcd3 {

struct ClientOptions {
  std::vector<std::string> hosts;  // "host:port"
  std::string protocol = "http";
  std::string username;
  std::string password;
  // Total time one call may take, across endpoint retries (Patroni: retry_timeout).
  std::chrono::milliseconds request_timeout{10000};
  // Learn every member's client URL from the cluster (off when behind proxies).
  bool discover_members = true;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct RangeResult {
  int64_t revision = 0;  // the store revision the read saw
  std::vector<KeyValue> kvs;
};

// One comparison of a transaction (etcd's Compare).
struct Compare {
  enum class Target { kCreate, kMod, kVersion, kValue };
  enum class Result { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kValue;
  Result result = Result::kEqual;
  int64_t number = 0;  // for kCreate, kMod, kVersion
  std::string value;   // for kValue

  static Compare CreateRevision(std::string key, int64_t revision);
  static Compare ModRevision(std::string key, int64_t revision);
  static Compare Value(std::string key, std::string value);
  nlohmann::json ToJson() const;
};

// One operation of a transaction branch (etcd's RequestOp).
struct Op {
  enum class Kind { kPut, kDeleteRange, kRange, kTxn };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;
  std::string range_end;
  int64_t lease = 0;
  nlohmann::json nested;  // for kTxn: a whole TxnRequest body

  static Op Put(std::string key, std::string value, int64_t lease = 0);
  static Op Delete(std::string key, std::string range_end = "");
  static Op Get(std::string key, std::string range_end = "");
  static Op Txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
                const std::vector<Op>& failure);
  nlohmann::json ToJson() const;
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  nlohmann::json responses;  // as etcd returned them, for nested results
};

// A change seen by a watch.
struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;
};

struct WatchOptions {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;  // 0 = from now
  // Reconnect (from the last revision seen) when nothing arrives for this long; guards against
  // a silently dead connection. Progress notifications keep a healthy stream alive.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
};

// What a watch delivers: events in revision order, or word that history was compacted
// (the caller must re-read the whole range and watch again from the new revision).
struct WatchBatch {
  int64_t revision = 0;  // header revision of the response
  std::vector<WatchEvent> events;
  bool compacted = false;
  int64_t compact_revision = 0;
};

class Etcd3Client {
 public:
  Etcd3Client(ClientOptions options, std::unique_ptr<HttpTransport> transport);
  ~Etcd3Client();

  // Discovers the API prefix and the cluster's members, and authenticates when a username is
  // set. Other calls do this lazily; calling it first surfaces configuration errors early.
  Status Connect();

  // REQUIRES: serializable reads may be served stale by a lagging member; use them only where
  // Patroni does (the daemons' cluster reads).
  Result<RangeResult> Range(const std::string& key, const std::string& range_end = "",
                            bool serializable = false);
  Result<RangeResult> RangePrefix(const std::string& prefix, bool serializable = false);
  // Returns the revision of the put.
  Result<int64_t> Put(const std::string& key, const std::string& value, int64_t lease = 0);
  Result<TxnResult> Txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
                        const std::vector<Op>& failure = {});
  // Returns how many keys were deleted.
  Result<int64_t> DeleteRange(const std::string& key, const std::string& range_end = "");
  Result<int64_t> DeletePrefix(const std::string& prefix);

  // Returns the new lease ID. etcd may raise a TTL below its minimum.
  Result<int64_t> LeaseGrant(int64_t ttl_seconds);
  // Returns the remaining TTL; 0 means the lease no longer exists.
  Result<int64_t> LeaseKeepAlive(int64_t lease_id);
  Status LeaseRevoke(int64_t lease_id);

  // Watches until `on_batch` returns false or `canceller` is cancelled. Survives member
  // failures: it reconnects to another member and resumes from the revision after the last
  // one delivered, so no event is lost or repeated. Returns OK when stopped, or an error when
  // the watch cannot be re-established before `canceller` or `on_batch` ends it (never, in
  // practice: it keeps retrying with backoff while no member answers).
  Status Watch(const WatchOptions& options, const std::function<bool(const WatchBatch&)>& on_batch,
               StreamCanceller* canceller);

  // retry_timeout changed in the dynamic configuration: later calls get `timeout` in all.
  void SetRequestTimeout(std::chrono::milliseconds timeout);

  // The endpoint currently in use ("http://127.0.0.1:2379"), for logs and tests.
  std::string CurrentEndpoint() const;
  std::vector<std::string> KnownEndpoints() const;
  // "/v3", "/v3beta" or "/v3alpha" once discovered.
  std::string ApiPrefix() const;

  // How many times a call moved to another member; for tests and metrics.
  int64_t failovers() const { return failovers_.load(); }

 private:
  Result<nlohmann::json> Call(const std::string& rpc, const nlohmann::json& body);
  Result<nlohmann::json> CallOnce(const std::string& endpoint, const std::string& rpc,
                                  const std::string& body, std::chrono::milliseconds timeout,
                                  bool* retry_elsewhere);
  Status EnsureConnected(std::chrono::steady_clock::time_point deadline);
  Status DiscoverOn(const std::string& endpoint, std::chrono::milliseconds timeout);
  Status Authenticate(const std::string& endpoint, std::chrono::milliseconds timeout);
  void MarkFailed(const std::string& endpoint);
  std::vector<std::string> EndpointOrder() const;
  HttpHeaders AuthHeaders() const;

  ClientOptions options_;
  std::unique_ptr<HttpTransport> transport_;
  mutable Mutex mutex_;
  // From the configuration, as base URLs.
  std::vector<std::string> configured_ GUARDED_BY(mutex_);
  // Discovered (or configured), as base URLs.
  std::vector<std::string> endpoints_ GUARDED_BY(mutex_);
  std::string current_ GUARDED_BY(mutex_);     // preferred endpoint
  std::string api_prefix_ GUARDED_BY(mutex_);  // empty until discovered
  std::string token_ GUARDED_BY(mutex_);       // auth token, when authenticated
  std::atomic<int64_t> failovers_{0};
  std::chrono::milliseconds RequestTimeout() const;
  // ClientOptions::request_timeout, then what SetRequestTimeout says.
  std::atomic<std::chrono::milliseconds::rep> request_timeout_ms_;
};

// Parses one gateway response object of a watch stream.
Result<WatchBatch> ParseWatchResponse(const nlohmann::json& message);
// Parses etcd's KeyValue JSON (base64 key/value, int64s as strings).
Result<KeyValue> ParseKeyValue(const nlohmann::json& kv);

}  // namespace pgha::dcs::etcd3
