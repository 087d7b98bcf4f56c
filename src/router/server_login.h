// The router's login to a server on behalf of a session-mode client, without I/O: the startup
// packet with the client's parameters, the authentication the server asks for answered with what
// the client's own login left (client_login.h) — a SCRAM exchange proven with the client's
// ClientKey, an md5 challenge answered from the stored md5 hash, nothing for a server that trusts
// the connection — and the server's greeting up to its first ReadyForQuery, kept for the client
// (on a first server) or compared (on the next one, after a switchover). The router never knows
// the password: a server that asks for it in clear cannot be logged in to, and says so.
//
// The session mode's connections use it (session_connection.h).
//
// Thread-safety: none; one login runs on one thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/pg_messages.h"
#include "router/pg_wire.h"
#include "router/scram.h"
#include "router/stored_secret.h"

namespace pgha::router {

class ServerLogin {
 public:
  // `parameters`: the client's startup parameters (user and database among them);
  // `client_key` (empty unless the client proved itself with SCRAM) and `secret`: what the
  // client's login left.
  ServerLogin(std::vector<std::pair<std::string, std::string>> parameters, std::string client_key,
              StoredSecret secret);

  enum class Next {
    kRead,    // send TakeOutput() to the server, read more and Feed it
    kReady,   // the server sent ReadyForQuery: greeting() is complete
    kFailed,  // see failure(), and server_error() when the server said why
  };

  // The StartupMessage; the first bytes for the server.
  std::string Start();
  Next Feed(std::string_view bytes);
  // Bytes for the server, in order; empties the buffer.
  std::string TakeOutput();

  // After kReady: what the server sent from AuthenticationOk to ReadyForQuery, in order
  // (ParameterStatus, BackendKeyData, notices, ReadyForQuery).
  const std::vector<Message>& greeting() const { return greeting_; }
  const std::optional<CancelKey>& backend_key() const { return backend_key_; }

  // After kFailed: why, in words.
  const std::string& failure() const { return failure_; }
  // The server's ErrorResponse, when it sent one (to pass on to a client that has seen nothing
  // yet, as the server's own words); for a role without a password that the server does not
  // trust, the refusal the server would give once asked ("password authentication failed").
  const std::optional<ServerError>& server_error() const { return server_error_; }
  // A server that is starting, stopping or in recovery (57P01, 57P02, 57P03): another may take
  // the session.
  bool retryable() const;
  // The server holds another verifier for the role than the router used (the password changed
  // since it was looked up): look it up again.
  bool verifier_outdated() const { return verifier_outdated_; }

 private:
  Next Fail(std::string why);
  Next OnAuthentication(const AuthenticationRequest& request);
  // The server asks for `method`, which what the client's login left cannot answer.
  Next CannotAnswer(std::string_view method);

  std::vector<std::pair<std::string, std::string>> parameters_;
  std::string client_key_;
  StoredSecret secret_;
  std::optional<scram::ClientExchange> exchange_;
  bool sasl_final_seen_ = false;  // the server proved it knows the verifier
  bool authenticated_ = false;    // AuthenticationOk came
  bool done_ = false;
  MessageReader reader_{1 << 20};  // a greeting is small; a server sending more is wrong
  std::string output_;
  std::vector<Message> greeting_;
  std::optional<CancelKey> backend_key_;
  std::string failure_;
  std::optional<ServerError> server_error_;
  bool verifier_outdated_ = false;
};

}  // namespace pgha::router
