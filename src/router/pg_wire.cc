#include "router/pg_wire.h"

#include <algorithm>
#include <cstdint>

#include "router/pg_bytes.h"
#include "router/pg_messages.h"

namespace pgha::router {
namespace {

constexpr uint32_t kProtocol3 = 3u << 16;
constexpr uint32_t kSslRequestCode = 80877103;
constexpr uint32_t kGssEncRequestCode = 80877104;
constexpr uint32_t kCancelRequestCode = 80877102;
constexpr size_t kMaxStartupLength = 10000;  // PostgreSQL's MAX_STARTUP_PACKET_LENGTH

void PutField(std::string& out, char code, std::string_view value) {
  out.push_back(code);
  for (char c : value) {
    if (c != '\0') {  // a NUL would end the field early
      out.push_back(c);
    }
  }
  out.push_back('\0');
}

}  // namespace

std::string FatalErrorResponse(std::string_view sqlstate, std::string_view message) {
  return ErrorResponse("FATAL", sqlstate, message);
}

std::string ErrorResponse(std::string_view severity, std::string_view sqlstate,
                          std::string_view message) {
  std::string fields;
  PutField(fields, 'S', severity);
  PutField(fields, 'V', severity);
  PutField(fields, 'C', sqlstate);
  PutField(fields, 'M', message);
  fields.push_back('\0');
  return Frame('E', fields);
}

std::string CancelRequest(const CancelKey& key) {
  std::string out;
  PutInt32(out, 16);
  PutInt32(out, kCancelRequestCode);
  PutInt32(out, key.process_id);
  PutInt32(out, key.secret);
  return out;
}

std::string BackendKeyData(const CancelKey& key) {
  std::string body;
  PutInt32(body, key.process_id);
  PutInt32(body, key.secret);
  return Frame('K', body);
}

OpeningMessage ParseClientOpening(std::string_view bytes) {
  if (bytes.size() < 8) {
    return {};
  }
  uint32_t length = GetInt32(bytes, 0);
  uint32_t code = GetInt32(bytes, 4);
  if (length < 8 || length > kMaxStartupLength) {
    return {ClientOpening::kInvalid, 0};
  }
  if (bytes.size() < length) {
    return {};
  }
  switch (code) {
    case kSslRequestCode:
      return {length == 8 ? ClientOpening::kSslRequest : ClientOpening::kInvalid, length};
    case kGssEncRequestCode:
      return {length == 8 ? ClientOpening::kGssEncRequest : ClientOpening::kInvalid, length};
    case kCancelRequestCode:
      return {length == 16 ? ClientOpening::kCancelRequest : ClientOpening::kInvalid, length};
    default:
      return {
          (code >> 16) == (kProtocol3 >> 16) ? ClientOpening::kStartup : ClientOpening::kInvalid,
          length};
  }
}

std::optional<CancelKey> CancelRequestKey(std::string_view bytes) {
  if (bytes.size() < 16 || GetInt32(bytes, 0) != 16 || GetInt32(bytes, 4) != kCancelRequestCode) {
    return std::nullopt;
  }
  return CancelKey{GetInt32(bytes, 8), GetInt32(bytes, 12)};
}

void BackendKeyScanner::Feed(std::string_view bytes) {
  while (!done_ && !bytes.empty()) {
    if (skip_ > 0) {
      size_t n = std::min(skip_, bytes.size());
      skip_ -= n;
      bytes.remove_prefix(n);
      continue;
    }
    // Gather a header (type + length), and for BackendKeyData its 8-byte body too.
    size_t want = 5;
    if (partial_.size() >= 5 && partial_[0] == 'K') {
      want = 13;
    }
    size_t n = std::min(want - partial_.size(), bytes.size());
    partial_.append(bytes.substr(0, n));
    bytes.remove_prefix(n);
    if (partial_.size() < want) {
      continue;
    }
    char type = partial_[0];
    uint32_t length = GetInt32(partial_, 1);
    if (length < 4 || length > (1u << 30)) {
      done_ = true;  // not a protocol stream the router understands: stop looking
      return;
    }
    if (type == 'K') {
      if (want == 5) {
        if (length != 12) {
          done_ = true;
          return;
        }
        continue;  // now gather the body
      }
      key_ = CancelKey{GetInt32(partial_, 5), GetInt32(partial_, 9)};
      done_ = true;
      return;
    }
    if (type == 'Z' || type == 'E') {
      done_ = true;  // ready for queries, or the login failed: no key comes after
      return;
    }
    skip_ = length - 4;
    partial_.clear();
  }
}

GreetingVerdict ClassifyServerGreeting(std::string_view bytes) {
  if (bytes.empty()) {
    return {};
  }
  if (bytes[0] != 'E') {
    return {ServerGreeting::kPassOn, ""};
  }
  if (bytes.size() < 5) {
    return {};
  }
  uint32_t length = GetInt32(bytes, 1);
  if (length < 4 || length > 30000) {
    return {ServerGreeting::kPassOn, ""};  // not a sane error message: the client decides
  }
  if (bytes.size() < 1 + static_cast<size_t>(length)) {
    return {};
  }
  auto error = ParseErrorResponse(Message{'E', std::string(bytes.substr(5, length - 4))});
  const std::string& sqlstate = error->sqlstate;
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return {ServerGreeting::kRetryable, sqlstate};
  }
  return {ServerGreeting::kPassOn, sqlstate};
}

}  // namespace pgha::router
