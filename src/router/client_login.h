// The router's side of a client's login in session mode, without I/O: the opening (a TLS or GSS
// encryption request answered, a cancel request recognised), the startup packet's parameters,
// and the authentication the role's stored secret calls for (stored_secret.h), which the caller
// looks up (an auth query) when asked:
//  - a SCRAM-SHA-256 verifier: a SCRAM exchange; a client that proved its password leaves behind
//    its ClientKey (scram.h), with which the router can log in to any node as that role;
//  - an md5 hash: an md5 challenge, as PostgreSQL gives under `md5` in pg_hba.conf;
//  - no password: nothing is asked; the server's pg_hba.conf decides when the router logs in
//    (trust lets the role in, anything else refuses it).
//
// Refusals are PostgreSQL's own, so a client learns no more from the router than from a server:
// a role that does not exist, or whose secret the router cannot read, goes through the same
// SCRAM exchange as one that does (with a made-up verifier) and ends the same way, "password
// authentication failed for user". The session mode's connections use it
// (session_connection.h).
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
#include "router/stored_secret.h"

namespace pgha::router {

class ClientLogin {
 public:
  // `tls_available`: the router has a certificate, so an SSLRequest is answered 'S'.
  explicit ClientLogin(bool tls_available);

  // What the caller does next, after sending what TakeOutput() returns.
  enum class Next {
    kRead,           // read more from the client and Feed it
    kStartTls,       // run the TLS handshake on the client socket, then Feed what it decrypts
    kLookUpSecret,   // find user()'s stored secret and give it to OnSecret
    kCancel,         // a CancelRequest for cancel_key(): pass it on; the client expects no answer
    kAuthenticated,  // log in to a server as user() (client_key(), secret()); its greeting goes on
    kClose,          // refused (the output says why) or the client quit: close
  };

  Next Feed(std::string_view bytes);
  // The secret PostgreSQL stores for user(); nullopt when there is no such role or its stored
  // password could not be read.
  Next OnSecret(std::optional<StoredSecret> secret);
  // Bytes for the client, in order; empties the buffer.
  std::string TakeOutput();

  const std::string& user() const { return user_; }
  const std::string& database() const { return database_; }
  // The startup packet's parameters as sent (user and database included), in order.
  const std::vector<std::pair<std::string, std::string>>& startup_parameters() const {
    return parameters_;
  }
  // After kAuthenticated: the ClientKey when the client proved itself with SCRAM (empty after
  // an md5 answer or none), and the role's secret.
  const std::string& client_key() const { return client_key_; }
  const StoredSecret& secret() const { return secret_; }
  // After kCancel.
  const std::optional<CancelKey>& cancel_key() const { return cancel_key_; }

 private:
  enum class Stage { kOpening, kSecret, kSaslInitial, kSaslResponse, kMd5Response, kDone };

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
  StoredSecret secret_;
  std::optional<scram::ServerExchange> exchange_;
  std::string md5_salt_;  // of the md5 challenge sent
  std::string client_key_;
  std::optional<CancelKey> cancel_key_;
};

}  // namespace pgha::router
