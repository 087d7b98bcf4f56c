// The router's side of a client's login in session mode, without I/O: the opening (a TLS or GSS
// encryption request answered, a cancel request recognised), the startup packet's parameters,
// and a SCRAM-SHA-256 exchange against the role's verifier, which the caller looks up (an auth
// query) when asked. What a client that proved its password leaves behind is its ClientKey
// (scram.h), with which the router can log in to any node as that role.
//
// Refusals are PostgreSQL's own, so a client learns no more from the router than from a server:
// a role that does not exist, or has no SCRAM secret, goes through the same exchange as one that
// does (with a made-up verifier) and ends the same way, "password authentication failed for user".
// The session mode's connections use it (session_connection.h).
//
// Thread-safety: none; one client's login runs on one thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/pg_messages.h"
#include "router/pg_wire.h"
#include "router/scram.h"

namespace pgha::router {

class ClientLogin {
 public:
  // `tls_available`: the router has a certificate, so an SSLRequest is answered 'S'.
  explicit ClientLogin(bool tls_available);

  // What the caller does next, after sending what TakeOutput() returns.
  enum class Next {
    kRead,            // read more from the client and Feed it
    kStartTls,        // run the TLS handshake on the client socket, then Feed what it decrypts
    kLookUpVerifier,  // find user()'s verifier and give it to OnVerifier
    kCancel,          // a CancelRequest for cancel_key(): pass it on; the client expects no answer
    kAuthenticated,   // log in to a server as user() with client_key(); its greeting goes on
    kClose,           // refused (the output says why) or the client quit: close
  };

  Next Feed(std::string_view bytes);
  // The verifier PostgreSQL stores for user(); nullopt when there is no such role or its
  // password is not a SCRAM-SHA-256 secret.
  Next OnVerifier(std::optional<scram::Verifier> verifier);
  // Bytes for the client, in order; empties the buffer.
  std::string TakeOutput();

  const std::string& user() const { return user_; }
  const std::string& database() const { return database_; }
  // The startup packet's parameters as sent (user and database included), in order.
  const std::vector<std::pair<std::string, std::string>>& startup_parameters() const {
    return parameters_;
  }
  // After kAuthenticated.
  const std::string& client_key() const { return client_key_; }
  const scram::Verifier& verifier() const { return verifier_; }
  // After kCancel.
  const std::optional<CancelKey>& cancel_key() const { return cancel_key_; }

 private:
  enum class Stage { kOpening, kVerifier, kSaslInitial, kSaslResponse, kDone };

  Next Opening();
  Next Startup(std::string_view packet);
  Next Authentication();
  Next Refuse(std::string_view sqlstate, std::string_view message);

  bool tls_available_;
  bool tls_answered_ = false;  // an SSLRequest has had its answer ('S' or 'N')
  bool gss_answered_ = false;
  Stage stage_ = Stage::kOpening;
  std::string opening_;  // bytes of the opening messages not yet consumed
  MessageReader reader_;
  std::string output_;
  std::string user_;
  std::string database_;
  std::vector<std::pair<std::string, std::string>> parameters_;
  bool role_known_ = false;
  scram::Verifier verifier_;
  std::optional<scram::ServerExchange> exchange_;
  std::string client_key_;
  std::optional<CancelKey> cancel_key_;
};

}  // namespace pgha::router
