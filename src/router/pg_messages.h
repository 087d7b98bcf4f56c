// PostgreSQL protocol v3 messages after the opening (a type byte, a length, a body), and the ones
// a SCRAM login exchanges, for the router's session mode: the router reads a client's and a
// server's message streams, and speaks the authentication part of both (scram.h does the
// arithmetic).
//
// Thread-safety: pure functions; a MessageReader belongs to one stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgha::router {

// PostgreSQL's own limit for most messages is 1 GB; a router needs far less to act on one, and
// a larger length from a client is refused instead of buffered.
inline constexpr size_t kMaxMessageLength = 64 * 1024 * 1024;

struct Message {
  char type = 0;
  std::string body;  // without the type byte and the length
};

// A message as views into a MessageReader's buffer: valid until the reader is fed again.
struct MessageView {
  char type = 0;
  std::string_view body;
  std::string_view frame;  // the whole message: type, length and body, as it came
};

// Cuts a byte stream, fed in pieces as they arrive, into messages. A length under 4 or over
// `max_length` is a protocol violation: from then on failed() holds and Next() returns nothing.
class MessageReader {
 public:
  explicit MessageReader(size_t max_length = kMaxMessageLength) : max_length_(max_length) {}

  void Feed(std::string_view bytes);
  std::optional<Message> Next();
  // The same without copying: a relay passes the frame on as it came.
  std::optional<MessageView> NextView();
  bool failed() const { return failed_; }

 private:
  size_t max_length_;
  std::string buffer_;   // bytes not yet returned as messages, from `consumed_` on
  size_t consumed_ = 0;  // dropped at the next Feed: one move per read, not one per message
  bool failed_ = false;
};

// A message of `type` with `body`.
std::string Frame(char type, std::string_view body);

// StartupMessage (protocol 3.0) with the given parameters (user, database, ...).
std::string StartupMessage(const std::vector<std::pair<std::string, std::string>>& parameters);

// Authentication requests (type 'R') a server sends.
enum class AuthCode : int32_t {
  kOk = 0,
  kCleartextPassword = 3,
  kMd5Password = 5,
  kSasl = 10,
  kSaslContinue = 11,
  kSaslFinal = 12,
};
std::string AuthenticationOk();
std::string AuthenticationSasl(const std::vector<std::string>& mechanisms);
std::string AuthenticationSaslContinue(std::string_view data);
std::string AuthenticationSaslFinal(std::string_view data);
// `salt`: the 4 bytes the client hashes its md5 answer with.
std::string AuthenticationMd5Password(std::string_view salt);

struct AuthenticationRequest {
  int32_t code = 0;
  std::string data;  // after the code: kSasl's mechanisms, 11's and 12's SCRAM data, kMd5's salt
};
// An 'R' message's code and data; nullopt for another type or a body shorter than the code.
std::optional<AuthenticationRequest> ParseAuthentication(const Message& message);
// The mechanism names of an AuthenticationSASL request's data.
std::vector<std::string> SaslMechanisms(std::string_view data);

// The client's answers (type 'p').
std::string SaslInitialResponse(std::string_view mechanism, std::string_view data);
std::string SaslResponse(std::string_view data);
// A PasswordMessage: a password in clear or an md5 answer, NUL-terminated.
std::string PasswordMessage(std::string_view password);
// Its text; nullopt for another type or a body that is not one NUL-terminated string.
std::optional<std::string> ParsePasswordMessage(const Message& message);

struct SaslInitial {
  std::string mechanism;
  std::string data;
};
// A SASLInitialResponse body: the mechanism, a length (-1: no data) and the data.
std::optional<SaslInitial> ParseSaslInitialResponse(const Message& message);

// The SQLSTATE and message of an ErrorResponse ('E'); nullopt for another type.
struct ServerError {
  std::string severity;  // ERROR, FATAL, PANIC (the untranslated field when there is one)
  std::string sqlstate;
  std::string message;
};
std::optional<ServerError> ParseErrorResponse(const Message& message);
// An ErrorResponse whose severity ends the session (FATAL or PANIC).
bool IsFatalError(const Message& message);

}  // namespace pgha::router
