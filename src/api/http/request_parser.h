// An HTTP/1.x request read from bytes as they arrive, for the event-driven server: the server
// feeds whatever the socket gave and learns whether the request is complete, needs more bytes
// or is refused (with the status to answer). No I/O here, so it is unit-tested and fuzzed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "api/request.h"

namespace pgha::api::http {

struct ParseLimits {
  size_t max_head_bytes = 64 * 1024;  // request line and headers
  size_t max_body_bytes = 1 << 20;    // Patroni's requests are a few hundred bytes
};

class RequestParser {
 public:
  enum class State { kNeedMore, kComplete, kFailed };

  explicit RequestParser(ParseLimits limits = {}) : limits_(limits) {}

  // Appends `bytes` and parses as far as they allow. Bytes after a complete request are kept
  // unread (this server answers one request per connection).
  State Feed(std::string_view bytes);

  State state() const { return state_; }
  // After kComplete: the request (method, path, query, lower-cased headers, body).
  const Request& request() const { return request_; }
  // After kFailed: the status to answer (400, 411, 413, 414, 431, 501, 505) and why.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  // The head is in and the client waits for "100 Continue" before it sends the body.
  bool expects_continue() const {
    return head_done_ && expects_continue_ && state_ == State::kNeedMore;
  }

 private:
  State Fail(int status, std::string message);
  State ParseHead(std::string_view head);

  ParseLimits limits_;
  State state_ = State::kNeedMore;
  std::string buffer_;
  bool head_done_ = false;
  size_t head_scan_from_ = 0;  // where the search for the head's end resumes
  bool expects_continue_ = false;
  size_t body_start_ = 0;
  size_t content_length_ = 0;
  Request request_;
  int error_status_ = 0;
  std::string error_message_;
};

// "%41b+c" -> "Ab c" (with `plus_is_space`, as in a query string); invalid escapes stay as they
// are.
std::string PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace pgha::api::http
