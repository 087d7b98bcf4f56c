// Any bytes as what a client sends the router's session mode before it is logged in: the login
// never crashes, never lets a client in without a valid SCRAM proof or md5 answer (the secret
// given here matches no password the input could know, an md5 challenge's salt is random, and
// unknown roles get a mock), and ends the same however the bytes are cut.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/client_login.h"
#include "router/scram.h"

using pgha::router::ClientLogin;

namespace {

// Runs a login over `bytes` fed `piece` bytes at a time; the first byte chooses whether the
// router offers TLS, whether the role exists and whether its password is stored as md5.
ClientLogin::Next Run(std::string_view bytes, size_t piece, bool tls, bool role_known, bool md5) {
  ClientLogin login(tls);
  ClientLogin::Next next = ClientLogin::Next::kRead;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    next = login.Feed(bytes.substr(at, piece));
    if (next == ClientLogin::Next::kLookUpSecret) {
      std::optional<pgha::router::StoredSecret> secret;
      if (role_known) {
        secret.emplace();
        if (md5) {
          secret->kind = pgha::router::StoredSecret::Kind::kMd5;
          secret->md5 = pgha::router::Md5Secret("a password no input knows", "any").substr(3);
        } else {
          secret->kind = pgha::router::StoredSecret::Kind::kScram;
          secret->scram = pgha::router::scram::MakeVerifier("a password no input knows", "salt", 1);
        }
      }
      next = login.OnSecret(secret);
    }
    (void)login.TakeOutput();
    if (next == ClientLogin::Next::kAuthenticated) {
      std::abort();  // no input can know the password
    }
    if (next != ClientLogin::Next::kRead && next != ClientLogin::Next::kStartTls) {
      break;
    }
  }
  return next;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  bool tls = (data[0] & 1) != 0;
  bool role_known = (data[0] & 2) != 0;
  bool md5 = (data[0] & 8) != 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto whole = Run(bytes, bytes.size() > 0 ? bytes.size() : 1, tls, role_known, md5);
  auto cut = Run(bytes, 1 + data[0] % 7, tls, role_known, md5);
  // Cut into pieces, a TLS request may be answered before the bytes after it arrive: only then
  // can the endings differ (kStartTls against a refusal of cleartext after the request).
  if (whole != cut && whole != ClientLogin::Next::kClose && cut != ClientLogin::Next::kStartTls) {
    std::abort();
  }
  return 0;
}
