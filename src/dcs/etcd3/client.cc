#include "dcs/etcd3/client.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "common/log.h"
#include "common/strings.h"

namespace pgha::dcs::etcd3 {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kMinAttemptTimeout{1000};
constexpr milliseconds kRoundPause{100};

// int64 fields arrive as JSON strings from the gateway; accept numbers too.
int64_t GetInt64(const json& object, const char* key) {
  if (!object.is_object()) {
    return 0;
  }
  auto it = object.find(key);
  if (it == object.end()) {
    return 0;
  }
  if (it->is_string()) {
    return ParseInt64(it->get<std::string>()).value_or(0);
  }
  if (it->is_number_integer()) {
    return it->get<int64_t>();
  }
  if (it->is_number_unsigned()) {
    return static_cast<int64_t>(it->get<uint64_t>());
  }
  return 0;
}

std::string Int64Text(int64_t n) { return std::to_string(n); }

Result<std::string> DecodeBase64Field(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return std::string();
  }
  if (!it->is_string()) {
    return Error::Corrupt(fmt::format("etcd field '{}' is not a string", key));
  }
  auto decoded = Base64Decode(it->get<std::string>());
  if (!decoded.ok()) {
    return Error::Corrupt(fmt::format("etcd field '{}': {}", key, decoded.error().message()));
  }
  return decoded;
}

// gRPC status codes that mean "this member cannot serve now; another may".
bool IsRetriableCode(int64_t code) { return code == 14 || code == 4 || code == 1; }

bool IsAuthExpired(int64_t code, const std::string& message) {
  return code == 16 || message.find("invalid auth token") != std::string::npos ||
         message.find("revision of auth store is old") != std::string::npos ||
         message.find("user name is empty") != std::string::npos;
}

Error ErrorFromGrpc(int64_t code, const std::string& message) {
  switch (code) {
    case 5:
      return Error::NotFound(message);
    case 3:
    case 11:
      return Error::Invalid(message);
    case 7:
    case 16:
      return Error::PermissionDenied(message);
    case 9:
    case 10:
      return Error::Conflict(message);
    case 4:
      return Error::Timeout(message);
    case 14:
      return Error::Unavailable(message);
    default:
      return Error::Internal(message);
  }
}

std::string ApiPrefixFor(const std::string& version) {
  // "3.4.0" -> /v3; 3.3 -> /v3beta; 3.0-3.2 -> /v3alpha (Patroni's table).
  auto parts = Split(version, '.');
  int major = parts.size() > 0 ? static_cast<int>(ParseInt64(parts[0]).value_or(0)) : 0;
  int minor = parts.size() > 1 ? static_cast<int>(ParseInt64(parts[1]).value_or(0)) : 0;
  if (major > 3 || (major == 3 && minor >= 4)) {
    return "/v3";
  }
  if (major == 3 && minor == 3) {
    return "/v3beta";
  }
  return "/v3alpha";
}

// The gateway paths are served by the member itself, so its own version says which exist: an
// etcd 3.4 member answers /v3alpha with 404. The cluster version is no guide to them: etcd reports
// 3.0.0 until every member has been reachable at once (two of three members up), and Patroni's
// choice by cluster version then gets 404 until the last member joins. Without a server version
// (an old or unusual gateway) the cluster version decides, as in Patroni.
std::string ApiPrefixForMember(const std::string& server_version,
                               const std::string& cluster_version) {
  if (Split(server_version, '.').size() >= 2) {
    return ApiPrefixFor(server_version);
  }
  return ApiPrefixFor(cluster_version);
}

}  // namespace

Compare Compare::CreateRevision(std::string key, int64_t revision) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kCreate;
  c.number = revision;
  return c;
}

Compare Compare::ModRevision(std::string key, int64_t revision) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kMod;
  c.number = revision;
  return c;
}

Compare Compare::Value(std::string key, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.value = std::move(value);
  return c;
}

json Compare::ToJson() const {
  json out;
  out["key"] = Base64Encode(key);
  switch (result) {
    case Result::kEqual:
      break;  // EQUAL is the default and Patroni leaves it out
    case Result::kNotEqual:
      out["result"] = "NOT_EQUAL";
      break;
    case Result::kLess:
      out["result"] = "LESS";
      break;
    case Result::kGreater:
      out["result"] = "GREATER";
      break;
  }
  switch (target) {
    case Target::kCreate:
      out["target"] = "CREATE";
      out["create_revision"] = Int64Text(number);
      break;
    case Target::kMod:
      out["target"] = "MOD";
      out["mod_revision"] = Int64Text(number);
      break;
    case Target::kVersion:
      out["target"] = "VERSION";
      out["version"] = Int64Text(number);
      break;
    case Target::kValue:
      out["target"] = "VALUE";
      out["value"] = Base64Encode(value);
      break;
  }
  return out;
}

Op Op::Put(std::string key, std::string value, int64_t lease) {
  Op op;
  op.kind = Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

Op Op::Delete(std::string key, std::string range_end) {
  Op op;
  op.kind = Kind::kDeleteRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

Op Op::Get(std::string key, std::string range_end) {
  Op op;
  op.kind = Kind::kRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

namespace {
json TxnBody(const std::vector<Compare>& compare, const std::vector<Op>& success,
             const std::vector<Op>& failure) {
  json body;
  body["compare"] = json::array();
  for (const auto& c : compare) {
    body["compare"].push_back(c.ToJson());
  }
  body["success"] = json::array();
  for (const auto& op : success) {
    body["success"].push_back(op.ToJson());
  }
  if (!failure.empty()) {
    body["failure"] = json::array();
    for (const auto& op : failure) {
      body["failure"].push_back(op.ToJson());
    }
  }
  return body;
}
}  // namespace

Op Op::Txn(const std::vector<Compare>& compare, const std::vector<Op>& success,
           const std::vector<Op>& failure) {
  Op op;
  op.kind = Kind::kTxn;
  op.nested = TxnBody(compare, success, failure);
  return op;
}

json Op::ToJson() const {
  json inner;
  switch (kind) {
    case Kind::kPut:
      inner["key"] = Base64Encode(key);
      inner["value"] = Base64Encode(value);
      if (lease != 0) {
        inner["lease"] = Int64Text(lease);
      }
      return json{{"request_put", inner}};
    case Kind::kDeleteRange:
      inner["key"] = Base64Encode(key);
      if (!range_end.empty()) {
        inner["range_end"] = Base64Encode(range_end);
      }
      return json{{"request_delete_range", inner}};
    case Kind::kRange:
      inner["key"] = Base64Encode(key);
      if (!range_end.empty()) {
        inner["range_end"] = Base64Encode(range_end);
      }
      return json{{"request_range", inner}};
    case Kind::kTxn:
      return json{{"request_txn", nested}};
  }
  return json::object();
}

Result<KeyValue> ParseKeyValue(const json& kv) {
  if (!kv.is_object()) {
    return Error::Corrupt("etcd KeyValue is not an object");
  }
  KeyValue out;
  auto key = DecodeBase64Field(kv, "key");
  if (!key.ok()) {
    return key.error();
  }
  auto value = DecodeBase64Field(kv, "value");
  if (!value.ok()) {
    return value.error();
  }
  out.key = std::move(key).value();
  out.value = std::move(value).value();
  out.create_revision = GetInt64(kv, "create_revision");
  out.mod_revision = GetInt64(kv, "mod_revision");
  out.version = GetInt64(kv, "version");
  out.lease = GetInt64(kv, "lease");
  return out;
}

Result<WatchBatch> ParseWatchResponse(const json& message) {
  if (!message.is_object()) {
    return Error::Corrupt("watch message is not an object");
  }
  if (auto err = message.find("error"); err != message.end()) {
    std::string text = err->is_object() && err->contains("message") && (*err)["message"].is_string()
                           ? (*err)["message"].get<std::string>()
                           : err->dump();
    int64_t code = err->is_object() ? GetInt64(*err, "grpc_code") : 0;
    if (code == 0 && err->is_object()) {
      code = GetInt64(*err, "code");
    }
    return ErrorFromGrpc(code == 0 ? 14 : code, "watch: " + text);
  }
  auto result = message.find("result");
  if (result == message.end() || !result->is_object()) {
    return Error::Corrupt("watch message has no result");
  }
  WatchBatch batch;
  if (auto header = result->find("header"); header != result->end()) {
    batch.revision = GetInt64(*header, "revision");
  }
  batch.compact_revision = GetInt64(*result, "compact_revision");
  if (batch.compact_revision > 0) {
    batch.compacted = true;
    return batch;
  }
  if (auto canceled = result->find("canceled");
      canceled != result->end() && canceled->is_boolean() && canceled->get<bool>()) {
    std::string reason = result->value("cancel_reason", std::string("no reason given"));
    return Error::Unavailable("watch canceled by etcd: " + reason);
  }
  if (auto events = result->find("events"); events != result->end() && events->is_array()) {
    for (const auto& e : *events) {
      WatchEvent event;
      if (e.is_object() && e.value("type", std::string("PUT")) == "DELETE") {
        event.type = WatchEvent::Type::kDelete;
      }
      auto kv = ParseKeyValue(e.is_object() && e.contains("kv") ? e["kv"] : json::object());
      if (!kv.ok()) {
        return kv.error();
      }
      event.kv = std::move(kv).value();
      batch.events.push_back(std::move(event));
    }
  }
  return batch;
}

void Etcd3Client::SetRequestTimeout(std::chrono::milliseconds timeout) {
  request_timeout_ms_ = std::max<std::chrono::milliseconds::rep>(timeout.count(), 100);
}

std::chrono::milliseconds Etcd3Client::RequestTimeout() const {
  return std::chrono::milliseconds(request_timeout_ms_.load());
}

Etcd3Client::Etcd3Client(ClientOptions options, std::unique_ptr<HttpTransport> transport)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      request_timeout_ms_(options_.request_timeout.count()) {
  for (const auto& host : options_.hosts) {
    configured_.push_back(options_.protocol + "://" + host);
  }
  endpoints_ = configured_;
  if (!endpoints_.empty()) {
    current_ = endpoints_.front();
  }
}

Etcd3Client::~Etcd3Client() = default;

std::string Etcd3Client::CurrentEndpoint() const {
  MutexLock lock(mutex_);
  return current_;
}

std::vector<std::string> Etcd3Client::KnownEndpoints() const {
  MutexLock lock(mutex_);
  return endpoints_;
}

std::string Etcd3Client::ApiPrefix() const {
  MutexLock lock(mutex_);
  return api_prefix_;
}

std::vector<std::string> Etcd3Client::EndpointOrder() const {
  MutexLock lock(mutex_);
  std::vector<std::string> order;
  order.push_back(current_);
  for (const auto& e : endpoints_) {
    if (e != current_) {
      order.push_back(e);
    }
  }
  // Configured hosts stay reachable even if discovery returned other addresses.
  for (const auto& e : configured_) {
    if (std::find(order.begin(), order.end(), e) == order.end()) {
      order.push_back(e);
    }
  }
  return order;
}

void Etcd3Client::MarkFailed(const std::string& endpoint) {
  MutexLock lock(mutex_);
  if (current_ != endpoint || endpoints_.size() < 2) {
    return;
  }
  auto it = std::find(endpoints_.begin(), endpoints_.end(), endpoint);
  size_t index = it == endpoints_.end() ? 0 : static_cast<size_t>(it - endpoints_.begin()) + 1;
  current_ = endpoints_[index % endpoints_.size()];
  ++failovers_;
}

HttpHeaders Etcd3Client::AuthHeaders() const {
  MutexLock lock(mutex_);
  HttpHeaders headers;
  if (!token_.empty()) {
    headers["Authorization"] = token_;  // etcd wants the raw token, no "Bearer"
  }
  return headers;
}

Status Etcd3Client::Authenticate(const std::string& endpoint, milliseconds timeout) {
  std::string prefix = ApiPrefix();
  json body = {{"name", options_.username}, {"password", options_.password}};
  auto response =
      transport_->Post(endpoint, prefix + "/auth/authenticate", body.dump(), {}, timeout);
  if (!response.ok()) {
    return response.error();
  }
  json parsed = json::parse(response->body, nullptr, false);
  if (response->status != 200 || parsed.is_discarded() || !parsed.contains("token")) {
    std::string message =
        parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()
            ? parsed["message"].get<std::string>()
            : response->body;
    return Error::PermissionDenied(
        fmt::format("etcd authentication as '{}' failed: {}", options_.username, message));
  }
  MutexLock lock(mutex_);
  token_ = parsed["token"].is_string() ? parsed["token"].get<std::string>() : "";
  return OkStatus();
}

Status Etcd3Client::DiscoverOn(const std::string& endpoint, milliseconds timeout) {
  auto version = transport_->Get(endpoint, "/version", {}, timeout);
  if (!version.ok()) {
    return version.error();
  }
  json parsed = json::parse(version->body, nullptr, false);
  if (version->status != 200 || !parsed.is_object() || !parsed.contains("etcdcluster") ||
      !parsed["etcdcluster"].is_string()) {
    return Error::Unavailable(
        fmt::format("{}/version answered {} '{}'", endpoint, version->status, version->body));
  }
  std::string cluster_version = parsed["etcdcluster"].get<std::string>();
  if (cluster_version == "not_decided") {
    // A member that has not heard from a quorum yet: it will know once the cluster forms.
    return Error::Unavailable(
        fmt::format("{}: etcd has not decided its cluster version yet (no quorum?)", endpoint));
  }
  std::string server_version = parsed.contains("etcdserver") && parsed["etcdserver"].is_string()
                                   ? parsed["etcdserver"].get<std::string>()
                                   : "";
  auto parts = Split(cluster_version, '.');
  if (parts.size() < 2 || ParseInt64(parts[0]).value_or(0) < 3) {
    return Error::Invalid(
        fmt::format("etcd cluster version {} is too old: etcd 3 is required", cluster_version));
  }
  {
    MutexLock lock(mutex_);
    api_prefix_ = ApiPrefixForMember(server_version, cluster_version);
    current_ = endpoint;
  }
  if (!options_.username.empty()) {
    PGHA_RETURN_IF_ERROR(Authenticate(endpoint, timeout));
  }
  if (!options_.discover_members) {
    return OkStatus();
  }
  auto members = transport_->Post(endpoint, ApiPrefix() + "/cluster/member/list", "{}",
                                  AuthHeaders(), timeout);
  if (!members.ok()) {
    return members.error();
  }
  json list = json::parse(members->body, nullptr, false);
  std::vector<std::string> discovered;
  if (members->status == 200 && list.is_object() && list.contains("members") &&
      list["members"].is_array()) {
    for (const auto& m : list["members"]) {
      if (!m.is_object() || !m.contains("clientURLs") || !m["clientURLs"].is_array()) {
        continue;  // a member still joining has no client URLs yet
      }
      for (const auto& url : m["clientURLs"]) {
        if (url.is_string()) {
          std::string u = url.get<std::string>();
          while (!u.empty() && u.back() == '/') {
            u.pop_back();
          }
          discovered.push_back(u);
        }
      }
    }
  }
  if (!discovered.empty()) {
    MutexLock lock(mutex_);
    endpoints_ = discovered;
    if (std::find(endpoints_.begin(), endpoints_.end(), current_) == endpoints_.end()) {
      endpoints_.insert(endpoints_.begin(), current_);
    }
  }
  return OkStatus();
}

Status Etcd3Client::EnsureConnected(Clock::time_point deadline) {
  if (!ApiPrefix().empty()) {
    return OkStatus();
  }
  std::optional<Error> last;
  while (Clock::now() < deadline) {
    for (const auto& endpoint : EndpointOrder()) {
      auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (remaining.count() <= 0) {
        break;
      }
      auto status =
          DiscoverOn(endpoint, std::min(remaining, std::max(kMinAttemptTimeout, remaining / 2)));
      if (status.ok()) {
        return status;
      }
      if (status.error().IsInvalid() || status.error().IsPermissionDenied()) {
        return status;  // configuration problems do not improve on another member
      }
      last = status.error();
    }
    std::this_thread::sleep_for(kRoundPause);
  }
  return Error::Unavailable(fmt::format("no etcd member answered within the deadline ({})",
                                        last ? last->message() : "no endpoints configured"));
}

Status Etcd3Client::Connect() {
  {
    MutexLock lock(mutex_);
    api_prefix_.clear();
  }
  return EnsureConnected(Clock::now() + RequestTimeout());
}

Result<json> Etcd3Client::CallOnce(const std::string& endpoint, const std::string& rpc,
                                   const std::string& body, milliseconds timeout,
                                   bool* retry_elsewhere) {
  *retry_elsewhere = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::string prefix = ApiPrefix();
    auto response = transport_->Post(endpoint, prefix + rpc, body, AuthHeaders(), timeout);
    if (!response.ok()) {
      *retry_elsewhere = true;
      return response.error();
    }
    if (response->status == 404) {
      // No such path on this member (one of another version during a rolling upgrade, or a
      // prefix chosen before the member knew better): the request did nothing, so ask the
      // member again which API it serves and try once more.
      auto rediscovered = DiscoverOn(endpoint, timeout);
      if (attempt == 0 && rediscovered.ok() && ApiPrefix() != prefix) {
        continue;
      }
      *retry_elsewhere = true;
      return Error::Unavailable(
          fmt::format("{}{}{}: not found on this member{}", endpoint, prefix, rpc,
                      rediscovered.ok() ? "" : "; " + rediscovered.error().message()));
    }
    json parsed = json::parse(response->body, nullptr, false);
    if (response->status == 200) {
      if (parsed.is_discarded() || !parsed.is_object()) {
        *retry_elsewhere = true;
        return Error::Corrupt(fmt::format("{}{}: unparsable response", endpoint, rpc));
      }
      return parsed;
    }
    int64_t code = GetInt64(parsed, "code");
    std::string message =
        parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()
            ? parsed["message"].get<std::string>()
            : response->body;
    if (!options_.username.empty() && attempt == 0 && IsAuthExpired(code, message)) {
      auto auth = Authenticate(endpoint, timeout);
      if (!auth.ok()) {
        return auth.error();
      }
      continue;
    }
    if (IsAuthExpired(code, message)) {
      return Error::PermissionDenied(
          fmt::format("etcd {}: {}{}", rpc, message,
                      options_.username.empty() ? " (etcd has auth enabled: set etcd3.username "
                                                  "and etcd3.password)"
                                                : ""));
    }
    if (IsRetriableCode(code) || response->status == 503 || response->status == 502) {
      *retry_elsewhere = true;
      return Error::Unavailable(fmt::format("{}: {}", endpoint, message));
    }
    return ErrorFromGrpc(code, fmt::format("etcd {}: {}", rpc, message));
  }
  return Error::PermissionDenied("etcd rejected the renewed auth token");
}

Result<json> Etcd3Client::Call(const std::string& rpc, const json& body) {
  const auto deadline = Clock::now() + RequestTimeout();
  PGHA_RETURN_IF_ERROR(EnsureConnected(deadline));
  const std::string text = body.dump();
  std::optional<Error> last;
  while (true) {
    auto order = EndpointOrder();
    for (const auto& endpoint : order) {
      auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (remaining.count() <= 0) {
        return Error::Unavailable(fmt::format("etcd {} did not succeed within {} ms: {}", rpc,
                                              RequestTimeout().count(),
                                              last ? last->message() : "deadline passed"));
      }
      // Patroni splits retry_timeout over the members, with at least a second per try.
      auto share = std::max(kMinAttemptTimeout, RequestTimeout() / static_cast<int>(order.size()));
      bool retry_elsewhere = false;
      auto result = CallOnce(endpoint, rpc, text, std::min(share, remaining), &retry_elsewhere);
      if (result.ok()) {
        MutexLock lock(mutex_);
        current_ = endpoint;
        return result;
      }
      if (!retry_elsewhere) {
        return result.error();
      }
      PGHA_LOG_DEBUG("etcd {} failed on {}: {}", rpc, endpoint, result.error().message());
      MarkFailed(endpoint);
      last = result.error();
    }
    std::this_thread::sleep_for(kRoundPause);
  }
}

Result<RangeResult> Etcd3Client::Range(const std::string& key, const std::string& range_end,
                                       bool serializable) {
  json body = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) {
    body["range_end"] = Base64Encode(range_end);
  }
  if (serializable) {
    body["serializable"] = true;
  }
  auto response = Call("/kv/range", body);
  if (!response.ok()) {
    return response.error();
  }
  RangeResult out;
  out.revision = GetInt64((*response)["header"], "revision");
  if (auto kvs = response->find("kvs"); kvs != response->end() && kvs->is_array()) {
    for (const auto& item : *kvs) {
      auto kv = ParseKeyValue(item);
      if (!kv.ok()) {
        return kv.error();
      }
      out.kvs.push_back(std::move(kv).value());
    }
  }
  return out;
}

Result<RangeResult> Etcd3Client::RangePrefix(const std::string& prefix, bool serializable) {
  return Range(prefix, PrefixRangeEnd(prefix), serializable);
}

Result<int64_t> Etcd3Client::Put(const std::string& key, const std::string& value, int64_t lease) {
  json body = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) {
    body["lease"] = Int64Text(lease);
  }
  auto response = Call("/kv/put", body);
  if (!response.ok()) {
    return response.error();
  }
  return GetInt64((*response)["header"], "revision");
}

Result<TxnResult> Etcd3Client::Txn(const std::vector<Compare>& compare,
                                   const std::vector<Op>& success, const std::vector<Op>& failure) {
  auto response = Call("/kv/txn", TxnBody(compare, success, failure));
  if (!response.ok()) {
    return response.error();
  }
  TxnResult out;
  out.succeeded = response->value("succeeded", false);
  out.revision = GetInt64((*response)["header"], "revision");
  out.responses = response->value("responses", json::array());
  return out;
}

Result<int64_t> Etcd3Client::DeleteRange(const std::string& key, const std::string& range_end) {
  json body = {{"key", Base64Encode(key)}};
  if (!range_end.empty()) {
    body["range_end"] = Base64Encode(range_end);
  }
  auto response = Call("/kv/deleterange", body);
  if (!response.ok()) {
    return response.error();
  }
  return GetInt64(*response, "deleted");
}

Result<int64_t> Etcd3Client::DeletePrefix(const std::string& prefix) {
  return DeleteRange(prefix, PrefixRangeEnd(prefix));
}

Result<int64_t> Etcd3Client::LeaseGrant(int64_t ttl_seconds) {
  auto response = Call("/lease/grant", json{{"TTL", Int64Text(ttl_seconds)}});
  if (!response.ok()) {
    return response.error();
  }
  int64_t id = GetInt64(*response, "ID");
  if (id == 0) {
    return Error::Corrupt("etcd granted a lease without an ID: " +
                          response->value("error", std::string("no error given")));
  }
  return id;
}

Result<int64_t> Etcd3Client::LeaseKeepAlive(int64_t lease_id) {
  auto response = Call("/lease/keepalive", json{{"ID", Int64Text(lease_id)}});
  if (!response.ok()) {
    return response.error();
  }
  // The gateway wraps the (streaming) answer in "result"; a missing TTL means the lease is gone.
  const json& result = response->contains("result") ? (*response)["result"] : *response;
  return GetInt64(result, "TTL");
}

Status Etcd3Client::LeaseRevoke(int64_t lease_id) {
  auto response = Call("/lease/revoke", json{{"ID", Int64Text(lease_id)}});
  if (!response.ok()) {
    if (response.error().IsNotFound()) {
      return OkStatus();  // already gone: the goal is reached
    }
    return response.error();
  }
  return OkStatus();
}

Status Etcd3Client::Watch(const WatchOptions& options,
                          const std::function<bool(const WatchBatch&)>& on_batch,
                          StreamCanceller* canceller) {
  int64_t next_revision = options.start_revision;
  milliseconds backoff{100};
  bool stopped = false;
  while (!stopped && (canceller == nullptr || !canceller->cancelled())) {
    auto connected = EnsureConnected(Clock::now() + RequestTimeout());
    if (connected.ok()) {
      for (const auto& endpoint : EndpointOrder()) {
        if (stopped || (canceller != nullptr && canceller->cancelled())) {
          break;
        }
        if (canceller != nullptr && canceller->TakeInterrupt()) {
          // The caller no longer trusts what it built from this watch: it reads the range again.
          return OkStatus();
        }
        json create = {{"key", Base64Encode(options.key)}, {"progress_notify", true}};
        if (!options.range_end.empty()) {
          create["range_end"] = Base64Encode(options.range_end);
        }
        if (next_revision > 0) {
          create["start_revision"] = Int64Text(next_revision);
        }
        std::string body = json{{"create_request", create}}.dump();
        std::string buffer;
        std::optional<Error> stream_error;
        bool saw_data = false;
        auto on_data = [&](std::string_view piece) {
          saw_data = true;
          buffer.append(piece);
          size_t newline;
          // The gateway ends every message with a newline; a piece may hold several or half of one.
          while ((newline = buffer.find('\n')) != std::string::npos) {
            std::string line = buffer.substr(0, newline);
            buffer.erase(0, newline + 1);
            if (Trim(line).empty()) {
              continue;
            }
            json message = json::parse(line, nullptr, false);
            if (message.is_discarded()) {
              stream_error = Error::Corrupt("unparsable watch message");
              return false;
            }
            auto batch = ParseWatchResponse(message);
            if (!batch.ok()) {
              stream_error = batch.error();
              return false;
            }
            if (!batch->events.empty()) {
              next_revision = batch->events.back().kv.mod_revision + 1;
            }
            if (batch->compacted || !batch->events.empty()) {
              if (!on_batch(*batch)) {
                stopped = true;
                return false;
              }
              if (batch->compacted) {
                // The caller re-reads and starts a new watch; this one cannot continue.
                stopped = true;
                return false;
              }
            }
          }
          return buffer.size() < (64u << 20);  // a runaway message is not buffered forever
        };
        auto result = transport_->PostStream(endpoint, ApiPrefix() + "/watch", body, AuthHeaders(),
                                             std::max(kMinAttemptTimeout, RequestTimeout() / 4),
                                             options.idle_timeout, on_data, canceller);
        if (stopped || (canceller != nullptr && canceller->cancelled())) {
          break;
        }
        if (canceller != nullptr && canceller->TakeInterrupt()) {
          return OkStatus();
        }
        if (result.ok() && *result == 200 && saw_data) {
          backoff = milliseconds{100};
          if (stream_error && stream_error->IsPermissionDenied() && !options_.username.empty()) {
            (void)Authenticate(endpoint, RequestTimeout());
          }
          // The stream ended (member stopped, idle timeout): reconnect, this member first.
          // If it is gone the connect fails and the next member is tried.
          PGHA_LOG_DEBUG("etcd watch on {} ended; resuming from revision {}", endpoint,
                         next_revision);
          break;
        }
        PGHA_LOG_DEBUG("etcd watch on {} failed: {}", endpoint,
                       result.ok() ? fmt::format("HTTP {}", *result) : result.error().message());
        if (result.ok() && *result == 404) {
          (void)DiscoverOn(endpoint, RequestTimeout());  // see CallOnce: a prefix it lacks
        }
        MarkFailed(endpoint);
      }
    }
    if (stopped || (canceller != nullptr && canceller->cancelled())) {
      break;
    }
    // Pause before the next round, in small steps so a cancel is noticed quickly.
    for (auto waited = milliseconds{0}; waited < backoff; waited += milliseconds{20}) {
      if (canceller != nullptr && canceller->cancelled()) {
        break;
      }
      std::this_thread::sleep_for(milliseconds{20});
    }
    backoff = std::min(backoff * 2, milliseconds{1000});
  }
  return OkStatus();
}

}  // namespace pgha::dcs::etcd3
