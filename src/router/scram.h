// SCRAM-SHA-256 as PostgreSQL speaks it (RFC 5802 with SHA-256, RFC 7677), both ends, for the
// router's session mode: the router checks a client's proof against the verifier PostgreSQL
// stores for the role (pg_authid.rolpassword), and keeps the ClientKey that a valid proof
// reveals (ClientKey = ClientProof XOR ClientSignature). With it the router can later prove
// itself as that role to any node holding the same verifier — a new server connection after a
// switchover — without ever knowing the password. Keys and verifiers are secrets: no message of
// this file contains one.
//
// Channel binding is not offered (the mechanism is SCRAM-SHA-256, not -PLUS): a client asking for
// it ("p=") is refused, one that could use it ("y") is accepted, as PostgreSQL does without TLS.
// The user name of the SCRAM exchange is ignored; PostgreSQL takes it from the startup packet.
//
// Thread-safety: values and single-session objects; use one exchange from one thread at a time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pgha::router::scram {

// A role's stored SCRAM-SHA-256 secret: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
// (base64 parts); the fields hold the decoded bytes.
struct Verifier {
  int iterations = 0;
  std::string salt;
  std::string stored_key;  // SHA-256(ClientKey)
  std::string server_key;
};

Result<Verifier> ParseVerifier(std::string_view text);
std::string FormatVerifier(const Verifier& verifier);
// The verifier PostgreSQL stores for `password` (an ASCII password: SASLprep changes nothing).
Verifier MakeVerifier(std::string_view password, std::string_view salt, int iterations);
// The ClientKey of `password` under `verifier`'s salt and iterations.
std::string ClientKeyOf(std::string_view password, const Verifier& verifier);

// The router as the server of a client's SCRAM exchange (AuthenticationSASLContinue and
// AuthenticationSASLFinal carry what it returns).
class ServerExchange {
 public:
  // `server_nonce`: printable, without ','; RandomNonce() makes one.
  ServerExchange(Verifier verifier, std::string server_nonce);

  // client-first-message -> server-first-message.
  Result<std::string> OnClientFirst(std::string_view message);
  // client-final-message -> server-final-message ("v=..."), once the proof is valid; a wrong
  // proof is PermissionDenied (the password was wrong), anything malformed Invalid.
  Result<std::string> OnClientFinal(std::string_view message);

  bool authenticated() const { return !client_key_.empty(); }
  // The client's ClientKey, once authenticated.
  const std::string& client_key() const { return client_key_; }

 private:
  Verifier verifier_;
  std::string server_nonce_;
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // the client's and the server's, together
  std::string client_key_;
};

// The router as the client of a server's SCRAM exchange, proving itself with a ClientKey (from a
// ServerExchange) instead of a password.
class ClientExchange {
 public:
  // `verifier`: the role's verifier as the router knows it; the server must use the same salt
  // and iteration count, and its signature is checked with the verifier's ServerKey.
  ClientExchange(std::string client_key, Verifier verifier, std::string client_nonce);

  // client-first-message ("n,,n=,r=<nonce>").
  std::string ClientFirst();
  // server-first-message -> client-final-message.
  Result<std::string> OnServerFirst(std::string_view message);
  // server-final-message: OK when the server proved it knows the verifier.
  Status OnServerFinal(std::string_view message);

 private:
  std::string client_key_;
  Verifier verifier_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
};

// A verifier for a role that has none (no such role, or no SCRAM secret), so that its exchange
// looks like any other: the same salt for the same name for the life of the process, as
// PostgreSQL's mock authentication gives, and keys that match no password.
Verifier MockVerifier(std::string_view user);

// 18 random bytes in base64, as PostgreSQL makes its nonces.
std::string RandomNonce();
// `count` bytes from OpenSSL's generator (the process aborts if it fails: no weak secret).
std::string RandomBytes(size_t count);

}  // namespace pgha::router::scram
