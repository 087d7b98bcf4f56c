// The few PostgreSQL protocol (v3) messages the L4 router itself has to write or recognise: an
// ErrorResponse it sends instead of a server (too many connections, no primary in time), and the
// requests a client may open with (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgha::router {

// A FATAL ErrorResponse with `sqlstate` and `message`, as libpq reports it: also valid as the
// answer to an SSLRequest or GSSENCRequest, which libpq reads as an error from the server.
std::string FatalErrorResponse(std::string_view sqlstate, std::string_view message);
// An ErrorResponse of `severity` ("ERROR", "FATAL").
std::string ErrorResponse(std::string_view severity, std::string_view sqlstate,
                          std::string_view message);

enum class ClientOpening {
  kIncomplete,  // fewer bytes than the length field announces, or than the length field itself
  kStartup,     // StartupMessage (protocol 3.x)
  kSslRequest,
  kGssEncRequest,
  kCancelRequest,
  kInvalid,  // a length or code no PostgreSQL server would accept
};

struct OpeningMessage {
  ClientOpening kind = ClientOpening::kIncomplete;
  size_t length = 0;  // bytes of the message, when complete
};

// Classifies the first message a client sends. Lengths over 10000 bytes are invalid, as
// PostgreSQL refuses startup packets that large.
OpeningMessage ParseClientOpening(std::string_view bytes);

enum class ServerGreeting {
  kIncomplete,  // not enough bytes to tell
  kRetryable,   // an ErrorResponse saying this server cannot take connections now
  kPassOn,      // anything else: the session has begun (or failed for good)
};

struct GreetingVerdict {
  ServerGreeting kind = ServerGreeting::kIncomplete;
  std::string sqlstate;  // of a retryable ErrorResponse
};

// What a server's first message after the startup packet means for the router: an
// ErrorResponse with SQLSTATE 57P01 (admin shutdown), 57P02 (crash shutdown) or 57P03 (cannot
// connect now: starting up, shutting down, in recovery) comes from a server that is going away
// or not there yet, and the client, which has seen nothing, can be taken to another.
GreetingVerdict ClassifyServerGreeting(std::string_view bytes);

// The key a server gives a session (BackendKeyData) and a CancelRequest names.
struct CancelKey {
  uint32_t process_id = 0;
  uint32_t secret = 0;
  bool operator<(const CancelKey& other) const {
    return process_id != other.process_id ? process_id < other.process_id : secret < other.secret;
  }
  bool operator==(const CancelKey&) const = default;
};

// The key of a CancelRequest (16 bytes: length, code, process id, secret); nullopt otherwise.
std::optional<CancelKey> CancelRequestKey(std::string_view bytes);
// A CancelRequest for `key`.
std::string CancelRequest(const CancelKey& key);
// A BackendKeyData message giving `key`.
std::string BackendKeyData(const CancelKey& key);

// Reads a server's messages from the start of a plaintext session, in pieces as they arrive,
// until it has seen the session's BackendKeyData or ReadyForQuery (or anything malformed).
class BackendKeyScanner {
 public:
  void Feed(std::string_view bytes);
  // Done: nothing more to look for.
  bool done() const { return done_; }
  const std::optional<CancelKey>& key() const { return key_; }

 private:
  std::string partial_;  // the start of a message not complete yet (at most a header + 8)
  size_t skip_ = 0;      // bytes of an uninteresting message body still to pass
  bool done_ = false;
  std::optional<CancelKey> key_;
};

}  // namespace pgha::router
