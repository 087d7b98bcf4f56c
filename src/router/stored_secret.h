// What PostgreSQL stores as a role's password (pg_authid.rolpassword, or the auth query's secret
// column), as the session mode uses it to check a client and to log in to servers for it:
//  - a SCRAM-SHA-256 verifier: the client proves its password with SCRAM, which leaves the
//    router its ClientKey (scram.h) for servers that ask SCRAM;
//  - an md5 hash ("md5" and md5(password || user) in hex): the client answers an md5 challenge,
//    and the hash itself answers a server's md5 challenge, as it does in PostgreSQL's own
//    protocol (the hash is what the challenge is computed from);
//  - no password (NULL): only a server whose pg_hba.conf trusts the router's connection lets
//    such a role in, so the router asks the client nothing and the server decides.
// A clear-text password is never stored by PostgreSQL 10 and later, and never known here.
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "router/scram.h"

namespace pgha::router {

struct StoredSecret {
  enum class Kind { kScram, kMd5, kNone };
  Kind kind = Kind::kNone;
  scram::Verifier scram;  // kScram
  std::string md5;        // kMd5: the 32 hex digits after "md5", lower case
};

// The secret of a role whose password column is `text` (nullopt: SQL NULL). An unrecognised
// format is an error (say, a clear-text password left by a PostgreSQL 9 upgrade).
Result<StoredSecret> ParseStoredSecret(std::optional<std::string_view> text);

// The salt of an md5 challenge (AuthenticationMD5Password), in bytes.
inline constexpr size_t kMd5SaltBytes = 4;

// The answer to an md5 challenge with `salt` (kMd5SaltBytes): "md5" and md5(md5_hex || salt) in
// hex, which a client computes from the password and the router from the stored hash.
std::string Md5Response(std::string_view md5_hex, std::string_view salt);
// The stored form of `password` for `user` ("md5" and 32 hex digits), as CREATE ROLE makes it
// under password_encryption = md5.
std::string Md5Secret(std::string_view password, std::string_view user);

}  // namespace pgha::router
